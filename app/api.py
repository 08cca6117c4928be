"""The app's named API endpoints for ``gradio_client``: every UI action, callable from code.

``launch``, ``status``, ``cancel``, ``resume``, ``delete``, ``runs``, ``compare``,
``evaluate``, ``disagreements``, ``tradeoffs`` and ``export``. Each returns JSON (dicts and
lists of row dicts) and reports bad input as an error whose message says what to fix. Each
acts as the caller behind the request (``app.context``): in public mode one Client sees and
manages only its own runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

import gradio as gr

from app import gpu
from app.context import AppContext
from app.helpers import json_safe, to_records, user_errors
from app.settings import check_training_allowed
from core.specs import DatasetSpec, JobSpec, SpecError

MAX_SPEC_CHARS = 100_000


def parse_spec(spec: str | dict[str, Any] | None) -> JobSpec:
    """A JobSpec from JSON text, YAML text or a dict; empty means the bundled default job."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return JobSpec()
    if isinstance(spec, str):
        if len(spec) > MAX_SPEC_CHARS:
            raise SpecError(f"the spec is too long ({len(spec):,} characters; at most "
                            f"{MAX_SPEC_CHARS:,})")
        try:
            data = json.loads(spec)
        except json.JSONDecodeError as json_error:
            import yaml

            try:
                data = yaml.safe_load(spec)
            except yaml.YAMLError:
                raise SpecError(f"the spec is neither JSON nor YAML: {json_error}") from None
    else:
        data = spec
    if not isinstance(data, dict):
        raise SpecError(f"a spec is a JSON object of JobSpec fields, got {type(data).__name__}")
    return JobSpec.from_dict(data)


# (endpoint, concurrency limit): one at a time where a call loads models or writes; compare
# has its own slot so a short comparison never waits behind an evaluation.
ENDPOINTS = (("launch", 1), ("status", None), ("cancel", None), ("resume", 1), ("delete", 1),
             ("runs", None), ("compare", 1), ("evaluate", 1), ("disagreements", None),
             ("tradeoffs", None), ("export", 1))


class ApiController:
    """The named endpoints: each method is one, named after it; its docstring and parameters
    are what the app's API page shows. Each acts as the caller behind its request."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.actions = ctx.actions

    def launch(self, spec: str = "", request: gr.Request = None) -> str:
        """Queue a distillation job; returns its run id.

        Args:
            spec: the job as JSON (or YAML) with JobSpec fields, e.g. {"teacher": ...,
                "dataset": {"name": ...}, "train": {"epochs": 1}}; empty: the bundled default.
        """
        check_training_allowed(os.environ)
        return self.actions.submit(parse_spec(spec), self.ctx.caller(request))

    def status(self, run_id: str, request: gr.Request = None) -> dict:
        """Status and progress of a run: state, stage, epoch, step, ETA, log tail, models.

        Args:
            run_id: the id `launch` returned.
        """
        return json_safe(self.actions.status(run_id, self.ctx.caller(request)))

    def cancel(self, run_id: str, request: gr.Request = None) -> dict:
        """Stop a running job at its next step (it keeps a checkpoint) or drop a queued one.

        Args:
            run_id: the run to stop.
        """
        return {"run_id": run_id, "state": self.actions.cancel(run_id, self.ctx.caller(request))}

    def resume(self, run_id: str, request: gr.Request = None) -> dict:
        """Queue an interrupted, cancelled or failed run again; it continues from its checkpoint.

        Args:
            run_id: the run to resume.
        """
        check_training_allowed(os.environ)
        return {"run_id": run_id, "state": self.actions.resume(run_id, self.ctx.caller(request))}

    def delete(self, run_id: str, request: gr.Request = None) -> dict:
        """Delete a run folder (not while it runs).

        Args:
            run_id: the run to delete.
        """
        self.actions.delete(run_id, self.ctx.caller(request))
        return {"run_id": run_id, "deleted": True}

    def runs(self, per_model: bool = True, request: gr.Request = None) -> list[dict]:
        """The leaderboard: one row per scored model (or per run with per_model=False).

        Args:
            per_model: True: accuracy, macro-F1, parameters, MB, latency, throughput, speed-up
                and accuracy retained per model; False: one row per run with its state.
        """
        caller = self.ctx.caller(request)
        return to_records(self.actions.leaderboard(caller) if per_model
                          else self.actions.runs_table(caller))

    def compare(self, texts: list[str], models: list[str], max_length: int = 0,
                text_pairs: list[str] | None = None, request: gr.Request = None) -> list[dict]:
        """Each model's label, confidence, class probabilities and latency on each text
        (batch 1, end to end, warmed, the median of repeats: as the leaderboard times it).

        Args:
            texts: the texts to classify (the first texts of pairs).
            models: model references: run:<id>/<role>, bundled:minilm, a Hub id.
            max_length: truncation length in tokens; 0: each model's own (its run's).
            text_pairs: for sentence-pair models, the second text of each pair, in order.
        """
        texts, refs, length = self.actions.check_compare(texts, models, max_length,
                                                         self.ctx.caller(request), text_pairs)
        return to_records(gpu.compare_models(texts, refs, self.ctx.runs_dir, length))

    def evaluate(self, models: list[str], dataset: str = "bbc_news", validation: str = "",
                 max_eval_examples: int = 0, max_length: int = 128,
                 measure_speed: bool = False, request: gr.Request = None) -> dict:
        """Score models on a dataset's validation set: accuracy, macro-F1, per class, size.

        Args:
            models: model references: run:<id>/<role>, bundled:minilm, a Hub id.
            dataset: bbc_news, an upload:<id>/<file> reference, or a Hub id (online).
            validation: a separate validation file ("": a stratified split of the dataset).
            max_eval_examples: score a stratified subset of this many (0: all).
            max_length: truncation length in tokens.
            measure_speed: also time latency and throughput.
        """
        data = DatasetSpec(name=str(dataset or "").strip() or "bbc_news",
                           validation=str(validation or "").strip() or None,
                           max_eval_examples=int(max_eval_examples or 0) or None)
        refs, data, length = self.actions.check_evaluation(models, data, max_length,
                                                           self.ctx.caller(request))
        description, table = gpu.evaluate_models(refs, data, self.ctx.runs_dir, length,
                                                 bool(measure_speed))
        return {"dataset": description, "models": to_records(table)}

    def disagreements(self, model_a: str, model_b: str, mode: str = "disagree",
                      true_label: str = "", predicted_label: str = "",
                      request: gr.Request = None) -> list[dict]:
        """Validation examples where two run models disagree (or either is wrong).

        Args:
            model_a: run:<id>/<role>.
            model_b: run:<id>/<role>, scored on the same validation set.
            mode: disagree, either_wrong or all.
            true_label: keep only this true label ("" for all).
            predicted_label: keep only examples where either model predicted this label.
        """
        return to_records(self.actions.disagreements(
            model_a, model_b, self.ctx.caller(request), mode=mode, true_label=true_label or None,
            predicted_label=predicted_label or None))

    def tradeoffs(self, request: gr.Request = None) -> list[dict]:
        """Every scored model's accuracy, latency, size and throughput, with Pareto flags."""
        return to_records(self.actions.tradeoffs(self.ctx.caller(request)))

    def export(self, run_id: str, role: str = "student", repo_id: str = "", token: str = "",
               private: bool = True, request: gr.Request = None) -> dict:
        """Push a run's model with a generated model card to a Hugging Face Hub repository.

        Args:
            run_id: the run (one of yours).
            role: student, teacher, baseline (a model the run saved).
            repo_id: the Hub repository, e.g. your-name/distilled-bbc (created if missing).
            token: a write token for this push (required on a public server; locally ""
                uses HF_TOKEN or `hf auth login`). Never stored or logged.
            private: create the repository private.
        """
        url = self.actions.export(run_id, role, repo_id, token, private, self.ctx.caller(request))
        return {"run_id": run_id, "role": role, "url": url}


def register_api(ctx: AppContext) -> None:
    """Add the named endpoints to the Blocks being built (call inside ``gr.Blocks()``)."""
    api, errors = ApiController(ctx), user_errors(public=ctx.public)
    for name, limit in ENDPOINTS:
        gr.api(errors(getattr(api, name)), api_name=name, concurrency_limit=limit)
