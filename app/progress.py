"""What the Distil tab's progress panel says about a run: stage chips, the bar, an overall
ETA across stages, the status line, and the form values that relaunch a run (pure
functions over a run's status and spec; no gradio)."""

from __future__ import annotations

import html
from typing import Any

from app import forms
from app.helpers import format_eta

STAGES = ("data", "teacher", "student", "baseline", "evaluate", "done")
TRAINING_STAGES = ("teacher", "student", "baseline")
# Cost of a training step relative to a teacher fine-tuning step of the same batch: the
# student has about half the layers (the DistilBERT default) and, distilling, also runs the
# teacher's forward pass; the baseline is the student alone.
STEP_COST = {"teacher": 1.0, "student": 0.8, "baseline": 0.5}
EVALUATE_GUESS_S = 60.0  # before evaluation reports its own ETA (a CPU, a few hundred texts)


def overall_eta(status: dict[str, Any], spec: dict[str, Any]) -> float | None:
    """Seconds left for the whole job, from the current stage's measured step rate.

    The current stage's own ETA, plus each later training stage's steps at the same rate
    scaled by :data:`STEP_COST`, plus evaluation (its own ETA once it runs). None before any
    rate is measured.
    """
    stage, eta = status.get("stage"), status.get("eta_s")
    if status.get("state") != "running" or eta is None:
        return None
    if stage == "evaluate":
        return float(eta)
    if stage not in TRAINING_STAGES:
        return None
    step, total = status.get("step") or 0, status.get("total_steps") or 0
    epochs = status.get("epochs") or 1
    if total <= step:
        return float(eta) + EVALUATE_GUESS_S
    seconds_per_step = float(eta) / (total - step)
    steps_per_epoch = total / epochs
    stages = stage_values(spec)
    later = [s for s in TRAINING_STAGES[TRAINING_STAGES.index(stage) + 1:]
             if s != "baseline" or spec.get("baseline", True)]
    rest = 0.0
    for later_stage in later:
        stage_epochs = stages.get("teacher_epochs" if later_stage == "teacher" else "epochs", 2)
        rest += (stage_epochs * steps_per_epoch * seconds_per_step
                 * STEP_COST[later_stage] / STEP_COST[stage])
    return float(eta) + rest + EVALUATE_GUESS_S


def progress_html(status: dict[str, Any], spec: dict[str, Any] | None = None) -> str:
    """Stage chips and a progress bar for the current stage, with both ETAs."""
    state, stage = status.get("state", "queued"), status.get("stage") or ""
    reached = STAGES.index(stage) if stage in STAGES else -1
    chips = []
    for i, name in enumerate(STAGES[:-1]):
        kind = ("done" if i < reached or state == "done" else
                "now" if i == reached and state == "running" else "todo")
        chips.append(f'<span class="dl-chip dl-{kind}">{name}</span>')
    step, total = status.get("step"), status.get("total_steps")
    bar = ""
    if total and state == "running" and step is not None:
        where = f"{html.escape(stage)}: step {int(step)}/{int(total)}"
        if status.get("epochs"):
            where += f", epoch {status.get('epoch', '–')}/{status['epochs']}"
        whole = overall_eta(status, spec or {})
        eta = f"this stage {format_eta(status.get('eta_s'))}"
        if whole is not None:
            eta = f"ETA {format_eta(whole)} overall ({eta})"
        bar = (f'<progress value="{int(step)}" max="{int(total)}" style="width:100%">'
               f'</progress><div class="dl-small">{where} · {eta}</div>')
    return f'<div class="dl-progress">{" → ".join(chips)}{bar}</div>'


def resume_helps(status: dict[str, Any]) -> bool:
    """Whether Resume can finish this run: it was stopped, or its worker died; a run that
    failed on its own input fails again and is edited and relaunched instead."""
    state = status.get("state")
    if state in ("interrupted", "cancelled"):
        return True
    return state == "failed" and str(status.get("error", "")).startswith("worker exited")


def status_markdown(run_id: str, status: dict[str, Any]) -> str:
    """The status line, and what to do next."""
    state = status.get("state", "?")
    lines = [f"**Run `{run_id}`: {state}**"]
    if status.get("stage"):
        lines[0] += f" · stage **{status['stage']}**"
    if status.get("message"):
        lines.append(f"{status['message']}")
    if state == "failed" and status.get("error"):
        lines.append(f"**Error:** {status['error']}  \n" + (
            "Its worker stopped: **Resume** continues from its checkpoint."
            if resume_helps(status) else
            "Fix the cause: **Edit and relaunch** puts its settings back in the form."))
    if state in ("interrupted", "cancelled"):
        lines.append("Stopped before the end: **Resume** continues from its checkpoint.")
    if state == "done":
        lines.append("Finished: the results are below; see also **Runs**, **Compare** and "
                     "**Trade-offs**.")
    return "  \n".join(lines)


def stage_values(spec: dict[str, Any]) -> dict[str, Any]:
    """A saved spec's stage settings under the Distil form's names (``epochs``,
    ``teacher_epochs``, ``learning_rate``, ``teacher_learning_rate``); {} if unreadable."""
    from core.specs import SpecError, TrainConfig

    try:
        return TrainConfig.from_value(spec.get("train") or "quick").stage_values()
    except SpecError:
        return {}


def _size_of(layers: list[int] | None, teacher_depth: int | None) -> str:
    """The Distil form's size preset that picks ``layers``, else ``custom layers``."""
    if not layers:
        return next(iter(forms.STUDENT_SIZES))
    if teacher_depth:
        from core.specs import layers_for_size

        for name, size in forms.STUDENT_SIZES.items():
            if size is not None and layers_for_size(size, teacher_depth) == list(layers):
                return name
    return "custom layers"


def form_values(spec: dict[str, Any], teacher_depth: int | None = None) -> dict[str, Any]:
    """The Distil form's values (``forms.build_spec``'s names) that make ``spec`` again.

    ``teacher_depth`` (the teacher's layer count) lets layers that a size preset would pick
    show as that preset rather than as custom layers (a run records the layers it used)."""
    data, student = spec.get("dataset") or {}, spec.get("student") or {}
    recipe, train = spec.get("recipe") or {}, spec.get("train") or {}
    layers = student.get("layers")
    size = _size_of(layers, teacher_depth)
    kinds = {value: label for label, value in forms.JOB_KINDS.items()}
    return {
        "kind": kinds.get(spec.get("kind") or "task"),
        "teacher": spec.get("teacher", ""), "dataset": data.get("name", ""),
        "validation": data.get("validation") or "", "text_column": data.get("text_column") or "",
        "text_pair_column": data.get("text_pair_column") or "",
        "task": data.get("task") or "auto",
        "label_column": data.get("label_column") or "",
        "max_train_examples": data.get("max_train_examples") or 0,
        "max_eval_examples": data.get("max_eval_examples") or 0,
        "augment": data.get("augment") or 0,
        "student_size": size,
        "student_layers": ",".join(str(i) for i in layers) if layers and size ==
        "custom layers" else "",
        "recipe": recipe.get("name", "distilbert"), "temperature": recipe.get("temperature"),
        "alpha_kd": recipe.get("alpha_kd"), "alpha_ce": recipe.get("alpha_ce"),
        "alpha_cos": recipe.get("alpha_cos"), "preset": train.get("preset", "quick"),
        **stage_values(spec),
        "batch_size": train.get("batch_size"), "max_length": train.get("max_length"),
        "baseline": spec.get("baseline", True), "seed": spec.get("seed", 42),
        "device": spec.get("device", "auto"), "name": spec.get("name", ""),
    }
