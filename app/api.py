"""The app's named API endpoints for ``gradio_client``: every UI action, callable from code.

``launch``, ``status``, ``cancel``, ``resume``, ``delete``, ``runs``, ``compare``,
``evaluate``, ``disagreements``, ``tradeoffs`` and ``export``. Each returns JSON (dicts and
lists of row dicts) and reports bad input as an error whose message says what to fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gradio as gr

from app import gpu
from app.forms import preflight
from app.helpers import json_safe, to_records, user_errors
from app.settings import check_training_allowed
from core import compare as compare_core
from core import jobs
from core.export import push_to_hub
from core.runs import delete_run, leaderboard, list_runs, open_run
from core.specs import DatasetSpec, JobSpec, SpecError


def parse_spec(spec: str | dict[str, Any] | None) -> JobSpec:
    """A JobSpec from JSON text, YAML text or a dict; empty means the bundled default job."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return JobSpec()
    if isinstance(spec, str):
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


def run_status(run_id: str, runs_dir: Path) -> dict[str, Any]:
    """Progress of a run plus the models it has saved and, when done, their metrics."""
    if not run_id or not run_id.strip():
        raise ValueError("give a run id (the value `launch` returned)")
    status = jobs.progress(run_id.strip(), runs_dir)
    run = open_run(run_id.strip(), runs_dir)
    status["models"] = [f"run:{run.id}/{role}" for role in run.models()]
    if status.get("state") == "done":
        status["metrics"] = {role: {k: v for k, v in m.items() if not isinstance(v, (dict,
                                                                                      list))}
                             for role, m in run.metrics.get("models", {}).items()}
    return status


def register_api(runs_dir: Path) -> None:
    """Add the named endpoints to the Blocks being built (call inside ``gr.Blocks()``)."""

    @user_errors
    def launch(spec: str = "") -> str:
        """Queue a distillation job; returns its run id.

        Args:
            spec: the job as JSON (or YAML) with JobSpec fields, e.g. {"teacher": ...,
                "dataset": {"name": ...}, "train": {"epochs": 1}}; empty: the bundled default.
        """
        check_training_allowed(os.environ)
        job = parse_spec(spec)
        preflight(job, runs_dir)
        return jobs.submit(job, runs_dir)

    @user_errors
    def status(run_id: str) -> dict:
        """Status and progress of a run: state, stage, epoch, step, ETA, log tail, models.

        Args:
            run_id: the id `launch` returned.
        """
        return json_safe(run_status(run_id, runs_dir))

    @user_errors
    def cancel(run_id: str) -> dict:
        """Stop a running job at its next step (it keeps a checkpoint) or drop a queued one.

        Args:
            run_id: the run to stop.
        """
        return {"run_id": run_id, "state": jobs.cancel(run_id.strip(), runs_dir)}

    @user_errors
    def resume(run_id: str) -> dict:
        """Queue an interrupted, cancelled or failed run again; it continues from its checkpoint.

        Args:
            run_id: the run to resume.
        """
        check_training_allowed(os.environ)
        jobs.resume(run_id.strip(), runs_dir)
        return {"run_id": run_id, "state": open_run(run_id.strip(), runs_dir).status()["state"]}

    @user_errors
    def delete(run_id: str) -> dict:
        """Delete a run folder (not while it runs).

        Args:
            run_id: the run to delete.
        """
        delete_run(run_id.strip(), runs_dir)
        return {"run_id": run_id, "deleted": True}

    @user_errors
    def runs(per_model: bool = True) -> list[dict]:
        """The leaderboard: one row per scored model (or per run with per_model=False).

        Args:
            per_model: True: accuracy, macro-F1, parameters, MB, latency, throughput, speed-up
                and accuracy retained per model; False: one row per run with its state.
        """
        return to_records(leaderboard(runs_dir) if per_model else list_runs(runs_dir))

    @user_errors
    def compare(texts: list[str], models: list[str], max_length: int = 128) -> list[dict]:
        """Each model's label, confidence, class probabilities and latency on each text.

        Args:
            texts: the texts to classify.
            models: model references: run:<id>/<role>, a model folder.
            max_length: truncation length in tokens.
        """
        return to_records(gpu.compare_models(texts, models, runs_dir, int(max_length)))

    @user_errors
    def evaluate(models: list[str], dataset: str = "bbc_news", validation: str = "",
                 max_eval_examples: int = 0, max_length: int = 128,
                 measure_speed: bool = False) -> dict:
        """Score models on a dataset's validation set: accuracy, macro-F1, per class, size.

        Args:
            models: model references: run:<id>/<role>, a model folder.
            dataset: bbc_news, a CSV/TSV/JSONL/Parquet file or folder, or a Hub id (online).
            validation: a separate validation file ("": a stratified split of the dataset).
            max_eval_examples: score a stratified subset of this many (0: all).
            max_length: truncation length in tokens.
            measure_speed: also time latency and throughput.
        """
        data = DatasetSpec(name=dataset.strip() or "bbc_news", validation=validation.strip()
                           or None, max_eval_examples=int(max_eval_examples) or None)
        description, table = gpu.evaluate_models(models, data, runs_dir, int(max_length),
                                                 bool(measure_speed))
        return {"dataset": description, "models": to_records(table)}

    @user_errors
    def disagreements(model_a: str, model_b: str, mode: str = "disagree",
                      true_label: str = "", predicted_label: str = "") -> list[dict]:
        """Validation examples where two run models disagree (or either is wrong).

        Args:
            model_a: run:<id>/<role>.
            model_b: run:<id>/<role>, scored on the same validation set.
            mode: disagree, either_wrong or all.
            true_label: keep only this true label ("" for all).
            predicted_label: keep only examples where either model predicted this label.
        """
        return to_records(compare_core.disagreements(
            model_a, model_b, runs_dir=runs_dir, mode=mode, true_label=true_label or None,
            predicted_label=predicted_label or None))

    @user_errors
    def tradeoffs() -> list[dict]:
        """Every scored model's accuracy, latency, size and throughput, with Pareto flags."""
        return to_records(compare_core.tradeoffs(runs_dir))

    @user_errors
    def export(run_id: str, role: str = "student", repo_id: str = "", token: str = "",
               private: bool = True) -> dict:
        """Push a run's model with a generated model card to a Hugging Face Hub repository.

        Args:
            run_id: the run.
            role: student, teacher, baseline (a model the run saved).
            repo_id: the Hub repository, e.g. your-name/distilled-bbc (created if missing).
            token: a write token; "" uses HF_TOKEN (a Space secret) or `hf auth login`.
            private: create the repository private.
        """
        if not repo_id.strip():
            raise SpecError("export: give the Hub repository id, e.g. your-name/distilled-bbc")
        url = push_to_hub(run_id.strip(), role.strip(), repo_id.strip(),
                          token=token.strip() or None, private=bool(private), runs_dir=runs_dir)
        return {"run_id": run_id, "role": role, "url": url}

    for fn, limit in ((launch, 1), (status, None), (cancel, None), (resume, 1), (delete, 1),
                      (runs, None), (compare, 1), (evaluate, 1), (disagreements, None),
                      (tradeoffs, None), (export, 1)):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=limit)

