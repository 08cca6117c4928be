"""The model card (``README.md``) of one model of a run.

The card holds the Hub metadata (license, library, pipeline tag, base model, datasets,
metrics) and, from the run folder, the teacher, the student's layers, the recipe with its
values, the training data, the evaluation and speed tables of every model of the run,
intended use and limitations, and how to load the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.runs import Run
from core.specs import BUNDLED_DATASET, BUNDLED_TEACHER, JobSpec

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


# The evaluation table's columns: (header, the cell from a model's metrics).
REGRESSION_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("Spearman", lambda m: _num(m.get("spearman"), 4)),
    ("Pearson", lambda m: _num(m.get("pearson"), 4)),
    ("MSE", lambda m: _num(m.get("mse"), 4)),
    ("parameters", lambda m: _num(m.get("params"), 0)),
    ("size (MB)", lambda m: _num(m.get("size_mb"))),
    ("correlation with teacher", lambda m: _num(m.get("correlation_with_teacher"), 4)),
]
CLASSIFICATION_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("accuracy", lambda m: _pct(m.get("accuracy"))),
    ("macro-F1", lambda m: _pct(m.get("macro_f1"))),
    ("parameters", lambda m: _num(m.get("params"), 0)),
    ("size (MB)", lambda m: _num(m.get("size_mb"))),
    ("agreement with teacher", lambda m: _pct(m.get("agreement_with_teacher"))),
]


def _models_table(models: dict[str, dict[str, Any]], role: str,
                  columns: list[tuple[str, Callable[[dict[str, Any]], str]]],
                  main_metric: str = "") -> list[str]:
    """Every model of the run in one Markdown table, ``role`` marked as this model."""
    lines = [f"Every model of the run, scored on the same validation set{main_metric}:", "",
             "| model | " + " | ".join(h for h, _ in columns) + " |",
             "|" + " --- |" * (len(columns) + 1)]
    for other, m in models.items():
        label = f"**{other}** (this model)" if other == role else other
        lines.append(f"| {label} | " + " | ".join(cell(m) for _, cell in columns) + " |")
    return lines


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
    epochs, lr = train.stage(role).epochs, train.stage(role).learning_rate
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
        lines += _models_table(models, role, REGRESSION_COLUMNS, " (Spearman is the main "
                               "metric)")
        lines += [""] + _speed_section(models, role)
    else:
        lines += _models_table(models, role, CLASSIFICATION_COLUMNS)
        if mine.get("per_class"):
            lines += ["", "Per class (this model):", "",
                      "| label | precision | recall | F1 | support |",
                      "| --- | --- | --- | --- | --- |"]
            for label, c in mine["per_class"].items():
                # .get: a field an older or hand-written record lacks leaves its cell empty.
                lines.append(f"| {label} | {_pct(c.get('precision'))} | "
                             f"{_pct(c.get('recall'))} | {_pct(c.get('f1'))} | "
                             f"{c.get('support', '–')} |")
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
