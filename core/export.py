"""Export a run's model: a folder with a generated model card, a zip, or a Hub repository.

The model card (``README.md``) holds the Hub metadata (license, library, pipeline tag, base
model, datasets, metrics) and, from the run folder, the teacher, the student's layers, the
recipe with its values, the training data, the evaluation and speed tables of every model of
the run, intended use and limitations, and how to load the model.

Pushing needs a token (the argument, ``$HF_TOKEN`` or a saved ``hf auth login``) and the
network; without either it fails at once with an :class:`ExportError` that says which.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from core.runs import Run, RunError, open_run
from core.specs import BUNDLED_DATASET, BUNDLED_TEACHER, JobSpec

log = logging.getLogger(__name__)

# Where the bundled checkpoint comes from on the Hub (the card's ``base_model``).
BUNDLED_HUB_IDS = {BUNDLED_TEACHER: "sentence-transformers/all-MiniLM-L6-v2"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt")
_ROLE_TEXT = {
    "teacher": "the teacher of the run (fine-tuned on the dataset by DistilLab unless it "
               "already had a head for these labels)",
    "student": "a student distilled from the teacher",
    "student_int8": "the student with int8 dynamic quantisation",
    "baseline": "the baseline: the same student trained on the labels alone, without the "
                "teacher (what distillation is measured against)",
}


class ExportError(ValueError):
    """An export or push that cannot go ahead, with a message saying why and what to do."""


def _hub_id(ref: str | None) -> str | None:
    """``ref`` as a Hub id for the card's metadata, or None for local paths and run refs."""
    if not ref:
        return None
    if ref in BUNDLED_HUB_IDS:
        return BUNDLED_HUB_IDS[ref]
    if (ref.startswith(("run:", "bundled:")) or ref.lower().endswith(_FILE_SUFFIXES)
            or ref == BUNDLED_DATASET or not _HUB_ID.match(ref) or Path(ref).exists()):
        return None
    return ref


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:", *[f"- {v}" for v in values]] if values else []


def _code(text: Any) -> str:
    return f"`{text}`"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _model_config(run: Run, role: str) -> dict[str, Any]:
    path = run.model_dir(role) / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _describe_build(spec: JobSpec, role: str, config: dict[str, Any]) -> str:
    layers = config.get("num_hidden_layers") or config.get("n_layers")
    width = config.get("hidden_size") or config.get("dim")
    shape = f"{config.get('architectures', ['?'])[0]}, {layers} layers × {width} hidden"
    if role == "teacher":
        return shape
    student = spec.student
    if student.kind == "extract":
        kept = config.get("distillab_teacher_layers") or student.layers
        how = f"built from the teacher: embeddings, head and teacher layers {list(kept or [])}"
    elif student.kind == "pretrained":
        how = f"initialised from the checkpoint `{student.checkpoint}`"
    else:
        how = (f"a fresh config ({student.num_layers} layers × {student.hidden_size} hidden, "
               f"{student.num_heads} heads), randomly initialised")
    return f"{shape}; {how}"


def _recipe_text(spec: JobSpec, role: str) -> str:
    recipe = spec.recipe
    if role in ("baseline", "teacher"):
        return "cross-entropy on the labels alone (no teacher)"
    return (f"`{recipe.name}`: loss = {recipe.alpha_kd} · T² · KL(teacher ‖ student at "
            f"T = {recipe.temperature}) + {recipe.alpha_ce} · CE(labels) + {recipe.alpha_cos} "
            "· (1 − cos(student, teacher last hidden states))")


def write_model_card(run: Run, role: str, repo_id: str | None = None,
                     license: str = "apache-2.0") -> str:
    """The model card (``README.md`` text) of one model of a run.

    Args:
        run: the run.
        role: ``student``, ``teacher``, ``baseline`` (any role saved in the run).
        repo_id: the Hub repository it goes to (used in the loading snippet), or None.
        license: the license named in the metadata; it must fit the teacher's and data's.
    Returns:
        Markdown with YAML front matter.
    """
    spec = JobSpec.from_dict(run.spec)
    config = _model_config(run, role)
    metrics = run.metrics
    models = metrics.get("models", {})
    mine = models.get(role, {})
    training = config.get("distillab_training") or {}
    train = spec.train
    is_teacher = role == "teacher"
    epochs = train.teacher_epochs if is_teacher else train.epochs
    lr = train.teacher_learning_rate if is_teacher else train.learning_rate
    labels = metrics.get("label_names") or [config.get("id2label", {}).get(str(i))
                                            for i in range(len(config.get("id2label", {})))]
    base_model, dataset_id = _hub_id(spec.teacher), _hub_id(spec.dataset.name)
    name = repo_id.split("/")[-1] if repo_id else f"{run.id}-{role}"

    lines = ["---", f"license: {license}", "library_name: transformers",
             "pipeline_tag: text-classification"]
    if base_model:
        lines.append(f"base_model: {base_model}")
    lines += _yaml_list("datasets", [dataset_id] if dataset_id else [])
    regression = len(labels) == 1
    lines += _yaml_list("metrics", ["spearmanr", "pearsonr", "mse"] if regression
                        else ["accuracy", "f1"])
    lines += _yaml_list("tags", ["distillab", "knowledge-distillation", "text-classification"])
    lines += ["---", "", f"# {name}", "",
              f"This is {_ROLE_TEXT.get(role, role)}, made with DistilLab (DistilBERT-style "
              f"knowledge distillation of text classifiers) in run `{run.id}`. " + (
                  f"It predicts a number, `{labels[0]}` (a regression: one output)."
                  if regression else f"It classifies a text into one of {len(labels)} "
                  f"labels: {', '.join(map(_code, labels))}."), ""]

    lines += ["## Model description", "", "| | |", "| --- | --- |",
              f"| teacher | `{spec.teacher}`" + (f" ({base_model})" if base_model else "") + " |",
              f"| this model | {_describe_build(spec, role, config)} |",
              f"| parameters | {_num(mine.get('params'), 0)} "
              f"({_num(mine.get('params_non_embedding'), 0)} outside the embeddings) |",
              f"| size on disk | {_num(mine.get('size_mb'))} MB (weights) |",
              *_training_rows(spec, role, training, epochs, lr), ""]

    lines += ["## Training data", "",
              f"{metrics.get('dataset') or spec.dataset.name}.",
              f"Training rows: {metrics.get('train_size', '–')}; unlabelled transfer rows: "
              f"{metrics.get('transfer_size', '–')}; validation rows: "
              f"{metrics.get('validation_size', '–')}; max length "
              f"{metrics.get('max_length', train.max_length)} tokens.", ""]

    lines += ["## Evaluation results", ""]
    if not models:
        lines += ["The run has not been scored yet.", ""]
    elif regression:
        lines += ["Every model of the run, scored on the same validation set (Spearman is "
                  "the main metric):", "",
                  "| model | Spearman | Pearson | MSE | parameters | size (MB) | correlation "
                  "with teacher |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for other, m in models.items():
            label = f"**{other}** (this model)" if other == role else other
            lines.append(f"| {label} | {_num(m.get('spearman'), 4)} | "
                         f"{_num(m.get('pearson'), 4)} | {_num(m.get('mse'), 4)} | "
                         f"{_num(m.get('params'), 0)} | {_num(m.get('size_mb'))} | "
                         f"{_num(m.get('correlation_with_teacher'), 4)} |")
        lines += [""] + _speed_section(models, role)
    else:
        lines += ["Every model of the run, scored on the same validation set:", "",
                  "| model | accuracy | macro-F1 | parameters | size (MB) | agreement with "
                  "teacher |", "| --- | --- | --- | --- | --- | --- |"]
        for other, m in models.items():
            label = f"**{other}** (this model)" if other == role else other
            lines.append(f"| {label} | {_pct(m.get('accuracy'))} | {_pct(m.get('macro_f1'))} "
                         f"| {_num(m.get('params'), 0)} | {_num(m.get('size_mb'))} | "
                         f"{_pct(m.get('agreement_with_teacher'))} |")
        if mine.get("per_class"):
            lines += ["", "Per class (this model):", "",
                      "| label | precision | recall | F1 | support |",
                      "| --- | --- | --- | --- | --- |"]
            for label, c in mine["per_class"].items():
                lines.append(f"| {label} | {_pct(c['precision'])} | {_pct(c['recall'])} | "
                             f"{_pct(c['f1'])} | {c['support']} |")
        lines += [""] + _speed_section(models, role)

    lines += ["## Intended use and limitations", "",
              "- Intended for classifying texts like the training data into the labels above; "
              "texts from another domain, language or label set need their own evaluation.",
              f"- The scores come from one run (seed {spec.seed}) on "
              f"{metrics.get('validation_size', 'the')} validation examples; expect a few "
              "points of variation across seeds and data.",
              f"- Inputs longer than {train.max_length} tokens are truncated.",
              "- It inherits the biases and errors of its teacher and training data.",
              "- Speed figures hold for the hardware named; measure on your own.",
              f"- The license above ({license}) must fit the teacher's and the dataset's.", ""]

    target = repo_id or "path/to/this/folder"
    lines += ["## How to use", "", "```python",
              "from transformers import pipeline", "",
              f'classifier = pipeline("text-classification", model="{target}")',
              *_usage_example(run, metrics), "```", "",
              "or with the classes:", "", "```python",
              "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
              f'tokenizer = AutoTokenizer.from_pretrained("{target}")',
              f'model = AutoModelForSequenceClassification.from_pretrained("{target}")', "```",
              "", "## Reproduce", "", "The DistilLab job spec of this run "
              "(`distillab run --spec spec.json`):", "", "```json",
              json.dumps(spec.to_dict(), indent=2), "```", ""]
    return "\n".join(lines)


def _usage_example(run: Run, metrics: dict[str, Any]) -> list[str]:
    """The card's ``classifier(...)`` line: a text, or for a sentence-pair model a pair
    (``{"text": ..., "text_pair": ...}``, the pipeline's pair input) from the validation set."""
    columns = metrics.get("text_columns") or []
    if len(columns) < 2:
        return ['print(classifier("Shares rose after the results were announced."))']
    first, second = "A man is playing a guitar.", "A person plays an instrument."
    table = run.predictions()
    if len(table) and "text_pair" in table.columns:
        first, second = str(table["text"].iloc[0]), str(table["text_pair"].iloc[0])
    return [f"# a sentence pair: {columns[0]} and {columns[1]}",
            f"print(classifier({{\"text\": {json.dumps(first)}, "
            f"\"text_pair\": {json.dumps(second)}}}))"]


def _training_rows(spec: JobSpec, role: str, training: dict[str, Any], epochs: int,
                   lr: float) -> list[str]:
    if role == "teacher" and not training:
        return ["| training | none: the checkpoint already had a head for these labels |"]
    train = spec.train
    best = f"; best epoch {training['best_epoch']}" if training.get("best_epoch") else ""
    plural = "s" if epochs != 1 else ""
    return [f"| recipe | {_recipe_text(spec, role)} |",
            f"| training | {epochs} epoch{plural}, learning rate {lr:g}, batch "
            f"{train.batch_size}, max length {train.max_length} tokens, warm-up "
            f"{train.warmup_ratio:.0%}, weight decay {train.weight_decay}, seed "
            f"{spec.seed}{best} |"]


def _speed_section(models: dict[str, dict[str, Any]], role: str) -> list[str]:
    timed = {r: m for r, m in models.items() if m.get("latency_ms_p50") is not None}
    if not timed:
        return []
    lines = ["## Speed", "",
             "| model | latency p50 (ms) | latency p95 (ms) | throughput (texts/s) | "
             "model-only latency p50 (ms) | model-only throughput (texts/s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for other, m in timed.items():
        label = f"**{other}** (this model)" if other == role else other
        lines.append(f"| {label} | {_num(m.get('latency_ms_p50'))} | "
                     f"{_num(m.get('latency_ms_p95'))} | {_num(m.get('throughput_per_s'), 1)} "
                     f"| {_num(m.get('model_latency_ms_p50'))} | "
                     f"{_num(m.get('model_throughput_per_s'), 1)} |")
    ref = timed.get(role) or next(iter(timed.values()))
    lines += ["", f"Measured on {ref.get('device', 'an unnamed device')} in "
              f"{ref.get('precision', '?')}; latency at "
              f"batch {ref.get('latency_batch', 1)}, throughput at batch "
              f"{ref.get('throughput_batch', '?')}, max length {ref.get('max_length', '?')} "
              "tokens. What each timer includes:", ""]
    for name, text in (ref.get("timer_includes") or {}).items():
        lines.append(f"- `{name}`: {text}")
    return lines + [""]


def _open_model(run_id: str, role: str, runs_dir: str | os.PathLike | None) -> Run:
    try:
        run = open_run(run_id, runs_dir)
    except RunError as error:
        raise ExportError(str(error)) from None
    if role not in run.models():
        raise ExportError(f"run {run_id} has no saved {role!r} model; saved: "
                          f"{', '.join(run.models()) or 'none yet'}")
    return run


def export_model(run_id: str, role: str, out_dir: str | os.PathLike,
                 runs_dir: str | os.PathLike | None = None, repo_id: str | None = None) -> Path:
    """Copy a run's model into ``out_dir`` with its model card as ``README.md``.

    Args:
        run_id: the run; role: the model (``student``, ``teacher``, ``baseline``).
        out_dir: the folder to write (created; files of the same names are replaced).
        runs_dir: the runs folder (default ``$DISTILLAB_RUNS_DIR`` or ``runs``).
        repo_id: the Hub repository named in the card's loading snippet, if any.
    Returns:
        ``out_dir``, loadable by ``AutoModelForSequenceClassification.from_pretrained``.
    Raises:
        ExportError: no such run or model, or ``out_dir`` is the run's own model folder.
    """
    run = _open_model(run_id, role, runs_dir)
    source, target = run.model_dir(role), Path(out_dir)
    if target.resolve() == source.resolve():
        raise ExportError(f"{target} is the run's own model folder: export somewhere else")
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
    (target / "README.md").write_text(write_model_card(run, role, repo_id=repo_id))
    log.info("exported %s/%s to %s", run_id, role, target)
    return target


def zip_model(run_id: str, role: str, runs_dir: str | os.PathLike | None = None,
              out_path: str | os.PathLike | None = None) -> Path:
    """A zip of the exported model folder (files under ``<run_id>-<role>/``).

    Args:
        run_id, role, runs_dir: as for :func:`export_model`.
        out_path: the zip file to write; default ``<run_id>-<role>.zip`` in a new
            temporary folder (where a web app may serve it from).
    Returns:
        The zip file's path.
    """
    name = f"{run_id}-{role}"
    zip_path = Path(out_path) if out_path else Path(tempfile.mkdtemp(prefix="distillab-")) / (
        f"{name}.zip")
    with tempfile.TemporaryDirectory(prefix="distillab-export-") as tmp:
        folder = export_model(run_id, role, Path(tmp) / name, runs_dir)
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        partial = zip_path.with_name(f".{zip_path.name}.tmp")
        # Weights barely compress; deflate only helps the tokenizer and card.
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, f"{name}/{path.name}")
        os.replace(partial, zip_path)
    return zip_path


def _hub_offline() -> bool:
    import huggingface_hub.constants as hub_constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(hub_constants.HF_HUB_OFFLINE) or flag in ("1", "ON", "YES", "TRUE")


def push_to_hub(run_id: str, role: str, repo_id: str, token: str | None = None,
                private: bool = True, runs_dir: str | os.PathLike | None = None,
                commit_message: str | None = None, use_saved_token: bool = True) -> str:
    """Push a run's model with its model card to a Hub model repository.

    Args:
        run_id, role, runs_dir: as for :func:`export_model`.
        repo_id: ``user/name`` or ``org/name`` (created if missing).
        token: a write token; default ``$HF_TOKEN`` or the token of ``hf auth login``.
        private: create the repository private (an existing one keeps its visibility).
        commit_message: default "Upload <role> from DistilLab run <run_id>".
        use_saved_token: without ``token``, use ``$HF_TOKEN`` or the saved login; False (a
            public server's visitors) pushes with the given token only.
    Returns:
        The repository's URL.
    Raises:
        ExportError: bad repo id, no model, no token, offline (``HF_HUB_OFFLINE``), Hub
            unreachable, token refused, or the upload failed; each says what to do.
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from core.models import _hub_reachable

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ExportError(f"{repo_id!r} is not a Hub repository id (e.g. 'your-name/"
                          f"distilled-sst2'): {error}") from None
    _open_model(run_id, role, runs_dir)
    if not token and not use_saved_token:
        raise ExportError("no Hugging Face token: paste a write token for this push "
                          "(https://huggingface.co/settings/tokens)")
    token = token or get_token()
    if not token:
        raise ExportError("no Hugging Face token: set HF_TOKEN to a write token "
                          "(https://huggingface.co/settings/tokens), paste one in the app, or "
                          "run `hf auth login`; or download the model as a zip instead")
    if _hub_offline():
        raise ExportError("offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE on a "
                          "machine with internet to push, or download the model as a zip")
    import huggingface_hub.constants as hub_constants

    # Without this probe an unreachable Hub costs ~20 s of client retries before failing.
    if not _hub_reachable():
        raise ExportError(f"cannot reach the Hugging Face Hub at {hub_constants.ENDPOINT} "
                          "(no network, or blocked): connect and retry, or download the "
                          "model as a zip")
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="distillab-push-") as tmp:
        folder = export_model(run_id, role, Path(tmp) / "model", runs_dir, repo_id=repo_id)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(repo_id=url.repo_id, folder_path=folder, repo_type="model",
                              commit_message=commit_message
                              or f"Upload {role} from DistilLab run {run_id}")
        except HfHubHTTPError as error:
            status = getattr(error.response, "status_code", None)
            if status in (401, 403):
                raise ExportError(f"the Hub refused the token for {repo_id} (HTTP {status}): "
                                  "use a token with write access to that namespace") from None
            raise ExportError(f"push to {repo_id} failed: {error}") from None
        except OSError as error:  # connection reset, DNS failure, timeouts
            raise ExportError(f"push to {repo_id} failed, the Hub could not be reached: "
                              f"{error}") from None
    log.info("pushed %s/%s to %s", run_id, role, url)
    return str(url)
