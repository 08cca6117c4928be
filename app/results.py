"""The results card the Distil tab shows when a job ends: scores, what distillation bought,
and warnings a user should not miss (pure functions over a run's metrics; no gradio)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.runs import REGRESSION, ModelMetrics, RunMetrics, RunTiming, quality_pair

ROLE_NAMES = {"teacher": "Teacher", "student": "Distilled student",
              "student_int8": "Student, int8", "baseline": "No-teacher baseline"}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _typed(metrics: dict[str, Any] | RunMetrics) -> RunMetrics:
    return metrics if isinstance(metrics, RunMetrics) else RunMetrics.from_dict(metrics)


def speedup_text(model: ModelMetrics, teacher: ModelMetrics | None = None) -> str:
    """``1.74x ± 0.06`` (the spread across timing rounds where there is one), else ``–``."""
    speedup = model.speedup(teacher)
    if not speedup:
        return "–"
    spread = "" if model.speedup_spread is None else f" ± {model.speedup_spread:.2f}"
    return f"{speedup:.2f}x{spread}"


def one_class_roles(metrics: dict[str, Any] | RunMetrics,
                    predictions: pd.DataFrame | None = None) -> list[str]:
    """Roles whose predictions on the validation set are all one class."""
    metrics = _typed(metrics)
    labels = metrics.label_names or []
    found = []
    for role, model in metrics.models.items():
        classes = model.predicted_classes
        if classes is None and predictions is not None and f"{role}_pred" in predictions:
            classes = predictions[f"{role}_pred"].nunique()
        if classes == 1 and len(labels) > 1:
            found.append(role)
    return found


def warnings_for(metrics: dict[str, Any] | RunMetrics,
                 predictions: pd.DataFrame | None = None) -> list[str]:
    """What is wrong with a finished run's results, worst first, in plain words."""
    metrics = _typed(metrics)
    models = metrics.models
    notes = []
    for role in one_class_roles(metrics, predictions):
        accuracy = models[role].accuracy
        notes.append(f"**{ROLE_NAMES.get(role, role)} predicts one class for every example** "
                     f"({_pct(accuracy)} is the share of that class): it learned nothing "
                     "useful. More data or epochs, a higher learning rate, or a balanced "
                     "dataset usually help.")
    student, baseline = metrics.model("student"), metrics.model("baseline")
    if student.accuracy is not None and baseline.accuracy is not None and \
            student.accuracy <= baseline.accuracy:
        notes.append(f"**The distilled student ({_pct(student.accuracy)}) is no better than "
                     f"the same student trained without the teacher "
                     f"({_pct(baseline.accuracy)})**: on this data the teacher added "
                     "nothing; try more epochs, a transfer set (unlabelled text, or "
                     "`--augment N` variants of the training texts), or another temperature.")
    busy = [ROLE_NAMES.get(r, r) for r, m in models.items() if m.machine_busy]
    if busy:
        notes.append(f"**Timings taken on a busy machine** ({', '.join(busy)}: other processes "
                     "used the CPUs while timing); the speed-up may be off. Re-time the run "
                     "on a quiet machine (`distillab time RUN_ID`).")
    return notes


def general_card(metrics: dict[str, Any]) -> str:
    """Markdown for a finished general-distillation run: its student and how to use it."""
    history = metrics.get("history") or []
    losses = ", ".join(f"{row['val_loss']:.4f}" for row in history if "val_loss" in row)
    what = ("MLM soft targets, the student's MLM loss and the hidden-state cosine"
            if metrics.get("loss") == "general-mlm" else
            "hidden-state cosine and per-layer MSE")
    return "\n\n".join([
        "### General student",
        f"**`{metrics.get('student')}`**: teacher layers {metrics.get('layers')} of "
        f"`{metrics.get('teacher')}`, distilled on {metrics.get('texts', 0):,} unlabelled texts "
        f"({what}).",
        f"Held-out loss per epoch: {losses or '–'}; best epoch {metrics.get('best_epoch')}.",
        f"Start a task job from it: the CLI's `--student {metrics.get('student')}`, or the "
        f"spec's `student: {{kind: pretrained, checkpoint: {metrics.get('student')}}}`."])


def results_card(metrics: dict[str, Any] | RunMetrics, predictions: pd.DataFrame | None = None,
                 timing: dict[str, Any] | None = None) -> str:
    """Markdown: each model's score, % of the teacher kept, speed-up, the KD gain, warnings.

    Args:
        metrics: the run's ``metrics.json``.
        predictions: its ``predictions.parquet`` (for runs scored before
            ``predicted_classes`` was recorded).
        timing: the run's latest re-timing (``distillab time``): its speed-ups, with their
            spread across rounds, replace the ones measured when the run was scored.
    Returns:
        The card, or "" when the run has no scores.
    """
    metrics = _typed(metrics)
    if metrics.kind == "general":
        return general_card(metrics.to_dict())
    models = metrics.models
    if not models:
        return ""
    retimed = RunTiming.from_dict(timing)
    teacher = metrics.model("teacher")
    # The task's main metric and its companion: accuracy and macro-F1 (as %), or a
    # regression's Spearman and MSE (as numbers).
    regression = metrics.task == REGRESSION
    main, other = quality_pair(metrics.task)
    shown_as = (lambda v: "–" if v is None else f"{v:.3f}") if regression else _pct
    rows = [f"| model | {'Spearman' if regression else 'accuracy'} | "
            f"{'MSE' if regression else 'macro-F1'} | of the teacher | speed-up (batch 1) "
            "| size |", "| --- | --- | --- | --- | --- | --- |"]
    for role in [r for r in ROLE_NAMES if r in models] + [r for r in models
                                                           if r not in ROLE_NAMES]:
        model = models[role]
        # A re-timing's speed-ups, with their spread, supersede the ones taken when scored.
        shown = speedup_text(retimed.models.get(role, model), teacher)
        size = f"{model.size_mb:.0f} MB" if model.size_mb else "–"
        rows.append(f"| {ROLE_NAMES.get(role, role)} | {shown_as(model.get(main))} | "
                    f"{shown_as(model.get(other))} | "
                    f"{_pct(model.kept(teacher, main)) if role != 'teacher' else '–'}"
                    f" | {shown if role != 'teacher' else '–'} | {size} |")
    lines = ["### Results", "\n".join(rows)]
    student, baseline = metrics.model("student"), metrics.model("baseline")
    if student.get(main) is not None and baseline.get(main) is not None:
        gain = 100 * (student.get(main) - baseline.get(main))
        lines.append(f"**What the teacher bought:** {gain:+.1f} {main} points (x100) over "
                     "the same student trained on the labels alone." if regression else
                     f"**What the teacher bought:** {gain:+.1f} accuracy points over the same "
                     "student trained on the labels alone.")
    augmentation = metrics.augmentation or {}
    if augmentation.get("added"):
        lines.append(f"**Transfer set:** {augmentation['added']:,} augmented texts "
                     f"({augmentation.get('per_text')} per training text, "
                     f"{augmentation.get('method')}), labelled by the teacher.")
    if timing:
        lines.append(f"<span class='dl-small'>Speed-ups re-timed {retimed.time} on "
                     f"{retimed.device}: {retimed.rounds} interleaved rounds, the "
                     "median and ± half the range across rounds.</span>")
    elif teacher.device:
        rounds = (f"; {teacher.rounds} interleaved rounds, the median ± half the range"
                  if teacher.rounds else "")
        where = f" in {teacher.timed_in}" if teacher.timed_in else ""
        lines.append(f"<span class='dl-small'>Scored on {metrics.get('validation_size', '?')} "
                     f"validation examples; timed{where} on {teacher.device} in "
                     f"{teacher.get('precision', '?')}, end to end at batch 1{rounds}.</span>")
    notes = warnings_for(metrics, predictions)
    if timing and retimed.machine_busy:
        notes.append("**The re-timing ran on a busy machine** (other processes used the CPUs); "
                     "time it again when the machine is quiet.")
    if notes:
        lines.append("#### Warnings\n" + "\n".join(f"- ⚠ {note}" for note in notes))
    return "\n\n".join(lines)
