"""One action façade: submit, cancel, resume, delete, status, export and the read views.

The UI, the HTTP API and the CLI all call an :class:`Actions` over one runs folder with the
:class:`~core.access.Caller` who asks, so ownership (:mod:`core.access`) and limits
(:mod:`core.limits`) are checked in one place, before anything is queued or opened.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from core import access, jobs
from core import limits as limits_module
from core.access import AccessError, Caller
from core.cleanup import tree_bytes

# The rest of what the app needs: it imports core.actions, .access, .runs, .specs and .jobs only.
from core.compare import DISAGREEMENT_MODES  # noqa: F401
from core.limits import LimitError, Limits
from core.preflight import teacher_depth  # noqa: F401
from core.runs import (
    ACTIVE_STATES,
    FINISHED_STATES,
    ModelRef,
    Run,
    RunState,
    create_run,
    leaderboard,
    list_run_objects,
    list_runs,
    runs_root,
    scalar_fields,
)
from core.specs import DatasetSpec, JobSpec, SpecError
from core.texts import Text
from core.uploads import (
    UPLOAD_EXTENSIONS,  # noqa: F401
    describe_dataset,  # noqa: F401
    resolve_dataset,
    store_upload,
)

__all__ = ["DISAGREEMENT_MODES", "UPLOAD_EXTENSIONS", "Actions", "Limits", "describe_dataset",
           "device_choices", "teacher_depth"]

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 10.0  # the same spec from the same caller this soon is one job


def device_choices() -> list[str]:
    """The ``device`` values this machine can run: auto, cpu, and cuda / mps where present."""
    import torch

    from core.devices import mps_available

    return ["auto", "cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * mps_available()


def compare_texts(texts: Sequence[Text], model_refs: Sequence[str],
                  runs_dir: str | os.PathLike | None, max_length: int = 0) -> pd.DataFrame:
    """Each model's label, probabilities and latency on each text (``max_length`` 0: each
    model's own). Check the caller first (:meth:`Actions.check_compare`)."""
    from core.compare import compare

    return compare(list(texts), list(model_refs), runs_dir=runs_dir,
                   max_length=max_length or None)


def score_models(model_refs: Sequence[str], dataset: DatasetSpec,
                 runs_dir: str | os.PathLike | None, max_length: int = 128,
                 measure_speed: bool = False) -> tuple[str, pd.DataFrame]:
    """``distillab eval``'s twin: the data's description and one row of scores per model.
    Check the caller first (:meth:`Actions.check_evaluation`)."""
    from core.scoring import evaluate_models

    description, models = evaluate_models(model_refs, dataset, runs_dir, max_length=max_length,
                                          measure=measure_speed)
    rows = [{"model": ref, **scalar_fields(metrics)} for ref, metrics in models.items()]
    return description, pd.DataFrame(rows)


class Actions:
    """What any caller can do with one runs folder, under one set of limits.

    Args:
        runs_dir: the runs folder.
        limits: the server's limits (default: the local defaults with ``DISTILLAB_LIMIT_*``).
    """

    def __init__(self, runs_dir: str | os.PathLike | None = None,
                 limits: Limits | None = None) -> None:
        self.runs_dir = Path(runs_root(runs_dir)).resolve()
        self.limits = limits or Limits.for_mode(public=False)
        self._submit_lock = threading.Lock()

    # jobs ------------------------------------------------------------------------------
    def check_job(self, spec: JobSpec, caller: Caller) -> JobSpec:
        """The spec as it would be queued, or the first reason it cannot be.

        Checks the references the caller may use, the limits, then what the engine can check
        in well under a second (teacher folder, layers, data files: ``core.preflight``).

        Raises:
            AccessError, LimitError, SpecError, ModelError, DataError: what to change.
        """
        from core.preflight import check_job

        access.check_spec_refs(spec, caller, self.runs_dir)
        limits_module.check_spec(spec, self.limits)
        if caller.public:
            spec = limits_module.capped_examples(spec, self.limits)
        check_job(replace(spec, dataset=resolve_dataset(spec.dataset, self.runs_dir)),
                  self.runs_dir)
        return spec

    def submit(self, spec: JobSpec, caller: Caller) -> str:
        """Queue a job for ``caller``; returns its run id.

        The same spec sent twice by the same caller within a few seconds (a double click)
        returns the first run instead of queueing a second.

        Raises:
            AccessError, LimitError, SpecError, ModelError, DataError: nothing was queued.
        """
        spec = self.check_job(spec, caller)
        with self._submit_lock:
            active, mine = self._active_runs(caller)
            for run in reversed(mine):
                created = run.status().get("created", 0)
                if run.spec == spec.to_dict() and time.time() - created < DUPLICATE_WINDOW_S:
                    return run.id
            self._check_queue(active, mine, caller)
            self._make_room(caller)
            run = create_run(spec.to_dict(), self.runs_dir)
            access.set_owner(run, caller)
        log.info("queued %s for %s", run.id, caller.id)
        return run.id

    def _active_runs(self, caller: Caller) -> tuple[list[Run], list[Run]]:
        """Every queued or running run, and the caller's among them, oldest first."""
        active = [run for run in list_run_objects(self.runs_dir)
                  if run.status().get("state") in ACTIVE_STATES]
        return active, [run for run in active if access.run_owner(run) == caller.id]

    def _check_queue(self, active: list[Run], mine: list[Run], caller: Caller) -> None:
        """Refuse when the queue, or the caller's share of it, is full."""
        if len(active) >= self.limits.max_queued_total:
            raise LimitError(f"the queue is full ({len(active)} jobs queued or running, the "
                             f"limit is {self.limits.max_queued_total}): try again later")
        cap = self.limits.max_queued_per_visitor
        if cap and not caller.admin and len(mine) >= cap:
            raise LimitError(f"you already have {len(mine)} jobs queued or running (the limit "
                             f"is {cap}): wait for one to finish or cancel one")

    def _make_room(self, caller: Caller) -> None:
        """Keep a visitor's runs within their disk budget: oldest finished runs go first."""
        budget = self.limits.visitor_disk_gb * 2**30
        if caller.admin or not budget:
            return
        runs = access.owned_runs(self.runs_dir, caller)
        sizes = {run.id: tree_bytes(run.path) for run in runs}
        used = sum(sizes.values())
        for run in runs:  # oldest first
            if used < budget:
                return
            if run.status().get("state") in FINISHED_STATES:
                shutil.rmtree(run.path, ignore_errors=True)
                used -= sizes[run.id]
                log.info("disk budget: deleted %s of %s", run.id, caller.id)
        if used >= budget:
            raise LimitError(f"your runs use {used / 2**30:.1f} GB, over the "
                             f"{self.limits.visitor_disk_gb:g} GB each visitor may keep, and "
                             "none of them is finished: wait for one, or cancel and delete one")

    def cancel(self, run_id: str, caller: Caller) -> str:
        """Stop the caller's running job at its next step, or drop a queued one; its state."""
        run = access.open_run_for(run_id, caller, self.runs_dir, manage=True)
        return jobs.cancel(run.id, self.runs_dir)

    def resume(self, run_id: str, caller: Caller) -> str:
        """Queue the caller's interrupted, cancelled or failed run again; its new state."""
        run = access.open_run_for(run_id, caller, self.runs_dir, manage=True)
        with self._submit_lock:
            self._check_queue(*self._active_runs(caller), caller)
            jobs.resume(run.id, self.runs_dir)
        return run.status()["state"]

    def delete(self, run_id: str, caller: Caller) -> None:
        """Delete one of the caller's runs (not while it runs)."""
        from core.runs import delete_run

        run = access.open_run_for(run_id, caller, self.runs_dir, manage=True)
        delete_run(run.id, self.runs_dir)

    def share(self, run_id: str, shared: bool, caller: Caller) -> None:
        """Mark a run as a read-only example every visitor sees (the server's owner only)."""
        if not caller.admin:
            raise AccessError("only the server's owner shares runs as examples")
        access.set_shared(access.open_run_for(run_id, caller, self.runs_dir), shared)

    def status(self, run_id: str, caller: Caller) -> dict[str, Any]:
        """A run's progress, the models it saved and, once done, their scalar metrics."""
        run = access.open_run_for(run_id, caller, self.runs_dir)
        status = jobs.progress(run.id, self.runs_dir)
        for key in [key for key in status if key.startswith("pid")]:
            del status[key]  # the worker's process is the server's business
        status["models"] = [str(ModelRef(run.id, role)) for role in run.models()]
        status["mine"] = access.can_manage(run, caller)
        if status.get("state") == RunState.DONE:
            status["metrics"] = {role: m.scalars()
                                 for role, m in run.read_metrics().models.items()}
        if caller.public:
            status = {key: access.scrub_paths(value) if isinstance(value, str) else value
                      for key, value in status.items()}
            status["log_tail"] = [access.scrub_paths(line) for line in status["log_tail"]]
        return status

    def spec(self, run_id: str, caller: Caller) -> dict[str, Any]:
        """A run's spec as the caller may see it."""
        run = access.open_run_for(run_id, caller, self.runs_dir)
        return access.redacted_spec(run.spec, caller)

    def export(self, run_id: str, role: str, repo_id: str, token: str | None, private: bool,
               caller: Caller) -> str:
        """Push one of the caller's models to the Hub; returns the repository's URL.

        A public caller's push uses only the token given in this call (never the server's,
        never stored or logged); ``DISTILLAB_ALLOW_PUSH=0`` turns pushes off.
        """
        from core.export import push_allowed, push_to_hub

        if not push_allowed():
            raise AccessError("pushing to the Hub is turned off on this server "
                              "(DISTILLAB_ALLOW_PUSH=0): download the model as a zip instead")
        if not (repo_id or "").strip():
            raise SpecError("export: give the Hub repository id, e.g. your-name/distilled-bbc")
        run = access.open_run_for(run_id, caller, self.runs_dir, manage=True)
        token = (token or "").strip() or None
        if caller.public and not token:
            raise AccessError("export: paste a Hugging Face write token for this push (this "
                              "public server never uses its own)")
        return push_to_hub(run.id, role.strip(), repo_id.strip(), token=token,
                           private=bool(private), runs_dir=self.runs_dir,
                           use_saved_token=not caller.public)

    def time_run(self, run_id: str, caller: Caller, rounds: int = 3) -> dict[str, Any]:
        """Re-time one of the caller's finished runs on this machine (``core.timing``); the
        dated timing is kept beside the run's own."""
        from core.timing import time_run

        run = access.open_run_for(run_id, caller, self.runs_dir, manage=True)
        if run.status().get("state") != RunState.DONE:
            raise SpecError(f"run {run.id} is {run.status().get('state')}: only finished runs "
                            "are re-timed")
        rounds = _integer(rounds, "rounds")
        if not 1 <= rounds <= 10:
            raise LimitError(f"rounds must be 1 to 10, got {rounds}")
        return time_run(run, rounds=rounds)

    def zip_model(self, run_id: str, role: str, caller: Caller) -> Path:
        """A zip of a readable run's model with its model card."""
        from core.export import zip_model

        run = access.open_run_for(run_id, caller, self.runs_dir)
        return zip_model(run.id, role, self.runs_dir)

    def store_upload(self, path: str | os.PathLike, caller: Caller) -> str:
        """Keep an uploaded data file for the caller; returns its ``upload:`` reference."""
        return store_upload(path, self.runs_dir, caller.id,
                            max_bytes=self.limits.max_upload_mb * 2**20)

    # read views ------------------------------------------------------------------------
    def visible_runs(self, caller: Caller) -> list[Run]:
        return access.visible_runs(self.runs_dir, caller)

    def runs_table(self, caller: Caller) -> pd.DataFrame:
        """One row per readable run (``mine`` says which the caller may change)."""
        runs = self.visible_runs(caller)
        table = list_runs(self.runs_dir, runs=runs)
        if len(table):
            table["mine"] = [access.can_manage(run, caller) for run in runs]
            if caller.public:
                for column in ("teacher", "dataset"):
                    table[column] = table[column].map(lambda v: access.scrub_paths(str(v)))
        return table

    def leaderboard(self, caller: Caller) -> pd.DataFrame:
        return leaderboard(self.runs_dir, runs=self.visible_runs(caller))

    def tradeoffs(self, caller: Caller) -> pd.DataFrame:
        from core.compare import tradeoffs

        return tradeoffs(self.runs_dir, runs=self.visible_runs(caller))

    def disagreements(self, model_a: str, model_b: str, caller: Caller, **filters: Any
                      ) -> pd.DataFrame:
        from core.compare import disagreements

        for ref in (model_a, model_b):
            if not ModelRef.is_run_ref(ref):
                raise SpecError(f"{ref!r}: the browser reads the validation predictions saved "
                                "with runs, so give models as run:<id>/<role>")
            access.check_model_ref(ref, caller, self.runs_dir)
        return disagreements(model_a.strip(), model_b.strip(), runs_dir=self.runs_dir,
                             **filters)

    # inference -------------------------------------------------------------------------
    def check_models(self, refs: Sequence[str], caller: Caller) -> list[str]:
        """The model references a caller may load in one compare or evaluate call."""
        refs = [r for r in (ref.strip() for ref in _strings(refs, "models")) if r]
        if not refs:
            raise SpecError("no models: give at least one model reference")
        limits_module.check_models(refs, self.limits)
        return [access.check_model_ref(ref, caller, self.runs_dir) for ref in refs]

    def check_compare(self, texts: Sequence[str], refs: Sequence[str], max_length: int,
                      caller: Caller, text_pairs: Sequence[str] | None = None
                      ) -> tuple[list[Text], list[str], int]:
        """(texts, model refs, max_length) of a compare or predict call within the limits;
        with ``text_pairs`` (one second text per text) the texts are sentence pairs."""
        texts = _strings(texts, "texts")
        seconds = _strings(text_pairs, "text_pairs")
        if seconds:
            if len(seconds) != len(texts):
                raise SpecError(f"{len(texts)} texts but {len(seconds)} text_pairs: give one "
                                f"second text per text (or no text_pairs)")
            for i, (first, second) in enumerate(zip(texts, seconds, strict=True), start=1):
                if bool(first.strip()) != bool(second.strip()):
                    raise SpecError(f"pair {i}: both texts are needed, the "
                                    f"{'first' if not first.strip() else 'second'} is blank")
            texts = [(a.strip(), b.strip()) for a, b in zip(texts, seconds, strict=True)
                     if a.strip()]
        else:
            texts = [t for t in texts if t.strip()]
        if not texts:
            raise SpecError("no texts to compare: give at least one non-empty text")
        limits_module.check_texts(texts, self.limits)
        max_length = _integer(max_length, "max_length")
        if max_length:  # 0: each model's own (its run's), within the limits already
            limits_module.check_max_length(max_length, self.limits)
        return texts, self.check_models(refs, caller), max_length

    def check_evaluation(self, refs: Sequence[str], dataset: DatasetSpec, max_length: int,
                         caller: Caller) -> tuple[list[str], DatasetSpec, int]:
        """(model refs, dataset with paths, max_length) of an evaluate call within limits."""
        refs = self.check_models(refs, caller)
        access.check_data_ref(dataset.name, caller, self.runs_dir)
        if dataset.validation:
            access.check_data_ref(dataset.validation, caller, self.runs_dir,
                                  "dataset.validation")
        max_length = _integer(max_length, "max_length")
        limits_module.check_max_length(max_length, self.limits)
        cap = self.limits.max_eval_examples
        if dataset.max_eval_examples is not None and dataset.max_eval_examples > cap:
            raise LimitError(f"max_eval_examples is {dataset.max_eval_examples}, over this "
                             f"server's limit of {cap} (DISTILLAB_LIMIT_MAX_EVAL_EXAMPLES)")
        if caller.public and dataset.max_eval_examples is None:
            dataset = replace(dataset, max_eval_examples=cap)
        return refs, resolve_dataset(dataset, self.runs_dir), max_length


def _strings(values: Any, what: str) -> list[str]:
    """``values`` as a list of strings, or a SpecError naming ``what``."""
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or not all(
            isinstance(v, str) for v in values):
        raise SpecError(f"{what} must be a list of strings")
    return list(values)


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"{what} must be an integer, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SpecError(f"{what} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise SpecError(f"{what} must be an integer, got {value!r}")
    return int(number)
