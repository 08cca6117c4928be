"""The Distil tab's form: presets, one-line explanations, and the JobSpec it builds.

Pure functions (no gradio), so the spec a form makes is tested without a browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.specs import PRESETS, RECIPES, JobSpec, SpecError

# The Distil form's job choices -> JobSpec.kind.
JOB_KINDS = {"distil for a task (labelled data)": "task",
             "general distillation (unlabelled text)": "general"}

# The Distil form's choices -> core.students sizes (None: the layers typed in).
STUDENT_SIZES = {
    "half the layers (DistilBERT)": "half",
    "a third of the layers": "third",
    "a quarter of the layers": "quarter",
    "custom layers": None,
}
RECIPE_NOTES = {
    "distilbert": "DistilBERT (Sanh et al. 2019): soft targets at temperature T, hard labels "
                  "and the cosine between student and teacher hidden states.",
    "logits": "Hinton et al. 2015: soft targets and hard labels only; the teacher's logits "
              "are computed once and cached, so it trains fastest.",
    "baseline": "No teacher: the student learns from the labels alone (what distillation is "
                "measured against).",
}
PRESET_NOTES = {
    "quick": "quick: sized for a 2-core CPU (the default job takes 2 to 5 minutes).",
    "full": "full: sized for a GPU (longer texts, more epochs).",
}
KNOB_INFO = {
    "temperature": "T softens both models' probabilities; higher shows more of the "
                   "teacher's 'dark knowledge'.",
    "alpha_kd": "Weight of the soft-target loss T²·KL(teacher ‖ student).",
    "alpha_ce": "Weight of the hard-label cross-entropy.",
    "alpha_cos": "Weight of 1 − cos(student, teacher) on the last hidden states "
                 "(needs the same width).",
    "epochs": "Passes over the training data when distilling the student.",
    "teacher_epochs": "Passes when fine-tuning a teacher that has no head for these labels "
                      "(cached and reused).",
    "learning_rate": "Student learning rate (AdamW, linear warm-up and decay).",
    "teacher_learning_rate": "Learning rate of the teacher's fine-tuning.",
    "batch_size": "Texts per optimisation step.",
    "max_length": "Texts are truncated to this many tokens.",
}


def student_layers(size: str, custom: list[int] | None, teacher: str,
                   runs_dir: Path) -> list[int] | None:
    """The teacher layers the student keeps, or None for the engine's default (every other).

    Args:
        size: a key of ``STUDENT_SIZES``.
        custom: the layers typed in (used for ``custom layers``).
        teacher: the teacher reference (its layer count sizes the presets).
        runs_dir: the runs folder for ``run:`` refs.
    Returns:
        Layer indices, evenly spread from the first to the last layer, or None.
    """
    from core.actions import teacher_depth
    from core.specs import layers_for_size

    if size not in STUDENT_SIZES:
        raise SpecError(f"student size must be one of {list(STUDENT_SIZES)}, got {size!r}")
    core_size = STUDENT_SIZES[size]
    if core_size is None:
        if not custom:
            raise SpecError("custom layers: list the teacher layers to keep, e.g. 0,2,4")
        return custom
    if core_size == "half":
        return None  # the engine's DistilBERT default: every other layer
    return layers_for_size(core_size, teacher_depth(teacher, runs_dir))


def build_spec(form: dict[str, Any], runs_dir: Path) -> JobSpec:
    """A validated JobSpec from the Distil form's values.

    Args:
        form: widget values by name: ``teacher, dataset, validation, text_column,
            text_pair_column, label_column, max_train_examples, max_eval_examples, augment,
            student_size,
            student_layers, recipe, temperature, alpha_kd, alpha_ce, alpha_cos, preset,
            epochs, teacher_epochs, learning_rate, teacher_learning_rate, batch_size,
            max_length, baseline, seed, device, name``.
        runs_dir: the runs folder (``run:`` teachers).
    Returns:
        The spec the job runs.
    Raises:
        SpecError: what to change in the form.
    """
    teacher = (form.get("teacher") or "").strip() or "bundled:minilm"
    layers = student_layers(form["student_size"], form.get("student_layers"), teacher, runs_dir)
    data_name = (form.get("dataset") or "").strip()
    if not data_name:
        raise SpecError("Dataset is empty: type bbc_news, or upload a training file")
    dataset = {"name": data_name}
    for key in ("validation", "text_column", "text_pair_column", "label_column"):
        value = (form.get(key) or "").strip()
        if value:
            dataset[key] = value
    for key in ("max_train_examples", "max_eval_examples"):
        if form.get(key):
            dataset[key] = int(form[key])
    if form.get("augment"):
        dataset["augment"] = int(form["augment"])
    if form.get("task") and form["task"] != "auto":
        dataset["task"] = form["task"]
    recipe = {"name": form.get("recipe") or "distilbert"}
    for key in ("temperature", "alpha_kd", "alpha_ce", "alpha_cos"):
        if form.get(key) is not None:
            recipe[key] = float(form[key])
    train: dict[str, Any] = {"preset": form.get("preset") or "quick"}
    for key, cast in (("epochs", int), ("teacher_epochs", int), ("batch_size", int),
                      ("max_length", int), ("learning_rate", float),
                      ("teacher_learning_rate", float)):
        if form.get(key) is not None:
            train[key] = cast(form[key])
    kind = JOB_KINDS.get(form.get("kind") or "", "task")
    spec: dict[str, Any] = {
        "kind": kind, "teacher": teacher, "dataset": dataset,
        "student": {"kind": "extract", "layers": layers}, "recipe": recipe, "train": train,
        # A general job has no labels: no baseline to train.
        "baseline": bool(form.get("baseline", True)) and kind == "task",
        "seed": int(form.get("seed") or 42), "device": form.get("device") or "auto",
        "name": (form.get("name") or "").strip(),
    }
    return JobSpec.from_dict(spec)


def recipe_values(name: str) -> dict[str, float]:
    """A recipe preset's loss settings by form field: temperature and the three weights."""
    recipe = RECIPES[name]
    return {"temperature": recipe.temperature, "alpha_kd": recipe.alpha_kd,
            "alpha_ce": recipe.alpha_ce, "alpha_cos": recipe.alpha_cos}


def preset_values(name: str) -> dict[str, int | float]:
    """A size preset's training settings by form field (epochs, learning rates, batch size,
    max length)."""
    preset = PRESETS[name]
    return {**preset.stage_values(), "batch_size": preset.batch_size,
            "max_length": preset.max_length}
