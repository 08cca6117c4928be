"""Distil tab: choose teacher, data, student and recipe; launch, watch, cancel, resume."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import gradio as gr

from app import forms
from app.context import AppContext
from app.helpers import (
    TERMINAL_STATES,
    format_eta,
    latest_run_id,
    model_choices,
    parse_int_list,
    run_choices,
    user_errors,
)
from app.plots import training_charts
from app.settings import check_training_allowed
from core.access import Caller, check_model_ref, scrub_paths
from core.data import load_data
from core.runs import Run
from core.specs import BUNDLED_TEACHER, PRESETS, RECIPES, DatasetSpec, JobSpec
from core.uploads import UPLOAD_EXTENSIONS, resolve_dataset

POLL_S = 2.0
STAGES = ("data", "teacher", "student", "baseline", "evaluate", "done")

def _progress_html(status: dict[str, Any]) -> str:
    """Stage chips and a progress bar for the current stage."""
    state, stage = status.get("state", "queued"), status.get("stage") or ""
    reached = STAGES.index(stage) if stage in STAGES else -1
    chips = []
    for i, name in enumerate(STAGES[:-1]):
        kind = ("done" if i < reached or state == "done" else
                "now" if i == reached and state == "running" else "todo")
        chips.append(f'<span class="dl-chip dl-{kind}">{name}</span>')
    step, total = status.get("step"), status.get("total_steps")
    bar = ""
    if step and total and state == "running":
        bar = (f'<progress value="{int(step)}" max="{int(total)}" style="width:100%"></progress>'
               f'<div class="dl-small">{html.escape(stage)}: step {int(step)}/{int(total)}, '
               f'epoch {status.get("epoch", "–")}/{status.get("epochs", "–")}, '
               f'ETA {format_eta(status.get("eta_s"))}</div>')
    return f'<div class="dl-progress">{" → ".join(chips)}{bar}</div>'


def _status_markdown(run_id: str, status: dict[str, Any]) -> str:
    state = status.get("state", "?")
    lines = [f"**Run `{run_id}`: {state}**"]
    if status.get("stage"):
        lines[0] += f" · stage **{status['stage']}**"
    if status.get("message"):
        lines.append(f"{status['message']}")
    if state == "failed" and status.get("error"):
        lines.append(f"**Error:** {status['error']}  \n"
                     "Fix the cause, then **Resume** or launch again.")
    if state in ("interrupted", "cancelled"):
        lines.append("Stopped before the end: **Resume** continues from its checkpoint.")
    if state == "done":
        lines.append("Finished: see **Runs**, **Compare** and **Trade-offs**.")
    return "  \n".join(lines)


def watch(run_id: str | None, ctx: AppContext, caller: Caller) -> tuple[Any, ...]:
    """Everything the watch panel shows about one run, read from its folder."""
    if not run_id:
        return ("No run yet: **launch the default job** above, or set up your own.", "",
                None, None, "", None, gr.Timer(active=False))
    try:
        status = ctx.actions.status(run_id, caller)
        spec = ctx.actions.spec(run_id, caller)
    except ValueError as error:
        return (f"**Error:** {error}", "", None, None, "", None, gr.Timer(active=False))
    run = Run(ctx.runs_dir / run_id)
    logs = "\n".join(status.get("log_tail", []))
    if status.get("state") == "failed" and status.get("error"):
        logs += f"\nerror: {status['error']}"
    return (_status_markdown(run_id, status), _progress_html(status), *training_charts(run),
            logs.strip(), spec,
            gr.Timer(active=status.get("state") not in TERMINAL_STATES))


def build_distil_tab(ready: Any, ctx: AppContext) -> None:
    """The Distil tab's layout and wiring (call inside a ``gr.Tab``; ``ready`` is the page
    load)."""
    actions, runs_dir = ctx.actions, ctx.runs_dir
    errors = user_errors(public=ctx.public)
    where = ("bbc_news (bundled), an uploaded file, or a Hub id" if ctx.public else
             "bbc_news (bundled), an uploaded file, a local CSV/TSV/JSONL/Parquet path or "
             "folder, or a Hub id")
    teachers_from = ("bundled:minilm, a model from one of your runs, or a Hub id" if ctx.public
                     else "bundled:minilm, a model from an earlier run, a local folder or a "
                     "Hub id (online)")
    gr.Markdown("Distil a smaller, faster student from a teacher. One click runs the bundled "
                "default: **all-MiniLM-L6-v2** fine-tuned on **BBC News** (5 topics), then a "
                "3-layer student distilled from it, plus a no-teacher baseline (2-5 min on a "
                "2-core CPU).")
    default_button = gr.Button("Launch the default job", variant="primary", size="lg",
                               elem_id="launch-default")
    with gr.Accordion("Set up your own job", open=True):
        with gr.Row():
            teacher = gr.Dropdown([BUNDLED_TEACHER], value=BUNDLED_TEACHER, label="Teacher",
                                  allow_custom_value=True, scale=2, elem_id="teacher",
                                  info=teachers_from)
            student_size = gr.Radio(list(forms.STUDENT_SIZES), value=next(iter(
                forms.STUDENT_SIZES)), label="Student size", scale=2, elem_id="student-size",
                info="layers copied from the teacher (DistilBERT initialisation)")
            layers = gr.Textbox(label="Custom layers", placeholder="e.g. 0,2,4",
                                info="teacher layers to keep (for 'custom layers')",
                                elem_id="student-layers")
        with gr.Row():
            dataset = gr.Textbox("bbc_news", label="Dataset", scale=2, elem_id="dataset",
                                 info=where)
            validation = gr.Textbox(label="Validation file (optional)", scale=2,
                                    elem_id="validation",
                                    info="a separate validation file; empty: a stratified "
                                         "20% split")
            train_upload = gr.File(label="Upload training data", file_types=list(
                UPLOAD_EXTENSIONS), height=110, elem_id="upload-train")
            validation_upload = gr.File(label="Upload validation data", file_types=list(
                UPLOAD_EXTENSIONS), height=110, elem_id="upload-validation")
        with gr.Row():
            text_column = gr.Textbox(label="Text column", placeholder="auto: text, sentence…")
            label_column = gr.Textbox(label="Label column", placeholder="auto: label, class…")
            max_train = gr.Number(0, label="Max training examples", precision=0,
                                  info="0: all (else a stratified subset)", elem_id="max-train")
            max_eval = gr.Number(0, label="Max validation examples", precision=0,
                                 info="0: all", elem_id="max-eval")
        with gr.Row():
            with gr.Column(min_width=220):
                recipe = gr.Dropdown(list(RECIPES), value="distilbert", label="Recipe",
                                     elem_id="recipe")
                recipe_note = gr.Markdown(forms.RECIPE_NOTES["distilbert"])
            temperature = gr.Slider(0.5, 10, 2.0, step=0.5, label="Temperature T",
                                    info=forms.KNOB_INFO["temperature"])
            alpha_kd = gr.Slider(0, 2, 0.5, step=0.05, label="α soft targets",
                                 info=forms.KNOB_INFO["alpha_kd"])
            alpha_ce = gr.Slider(0, 2, 0.5, step=0.05, label="α hard labels",
                                 info=forms.KNOB_INFO["alpha_ce"])
            alpha_cos = gr.Slider(0, 2, 1.0, step=0.05, label="α hidden cosine",
                                  info=forms.KNOB_INFO["alpha_cos"])
        quick = forms.preset_values("quick")
        with gr.Row():
            with gr.Column(min_width=200):
                preset = gr.Dropdown(list(PRESETS), value="quick", label="Size preset",
                                     elem_id="preset")
                preset_note = gr.Markdown(forms.PRESET_NOTES["quick"])
            epochs = gr.Number(quick[0], label="Epochs", precision=0, minimum=1,
                               info=forms.KNOB_INFO["epochs"], elem_id="epochs")
            teacher_epochs = gr.Number(quick[1], label="Teacher epochs", precision=0, minimum=0,
                                       info=forms.KNOB_INFO["teacher_epochs"],
                                       elem_id="teacher-epochs")
            lr = gr.Number(quick[2], label="Learning rate", info=forms.KNOB_INFO["learning_rate"])
            teacher_lr = gr.Number(quick[3], label="Teacher learning rate",
                                   info=forms.KNOB_INFO["teacher_learning_rate"])
            batch_size = gr.Number(quick[4], label="Batch size", precision=0, minimum=1,
                                   info=forms.KNOB_INFO["batch_size"], elem_id="batch-size")
            max_length = gr.Number(quick[5], label="Max length", precision=0, minimum=8,
                                   info=forms.KNOB_INFO["max_length"], elem_id="max-length")
        with gr.Row():
            baseline = gr.Checkbox(True, label="Train the no-teacher baseline",
                                   info="the same student trained on labels alone",
                                   elem_id="baseline")
            seed = gr.Number(42, label="Seed", precision=0)
            device = gr.Dropdown(["auto", "cpu", "cuda", "mps"], value="auto", label="Device")
            name = gr.Textbox(label="Run name", placeholder="optional", elem_id="run-name")
        launch_button = gr.Button("Launch with these settings", variant="primary",
                                  elem_id="launch")

    gr.Markdown("### Progress")
    with gr.Row():
        run_picker = gr.Dropdown([], label="Run", scale=4, elem_id="watch-run",
                                 info="the run folder is the truth: any browser sees the same")
        refresh_button = gr.Button("↻ Refresh", scale=1)
        cancel_button = gr.Button("■ Cancel", variant="stop", scale=1, elem_id="cancel")
        resume_button = gr.Button("▶ Resume", scale=1, elem_id="resume")
    status_md = gr.Markdown(elem_id="run-status")
    progress_html = gr.HTML()
    with gr.Row():
        loss_plot = gr.Plot(show_label=False, elem_id="loss-plot")
        val_plot = gr.Plot(show_label=False, elem_id="validation-plot")
    log_box = gr.Textbox(label="Log", lines=6, max_lines=12, interactive=False,
                         elem_id="run-log")
    with gr.Accordion("Spec of this run", open=False):
        spec_json = gr.JSON()
    timer = gr.Timer(POLL_S, active=False)

    watch_outputs = [status_md, progress_html, loss_plot, val_plot, log_box, spec_json, timer]

    def on_watch(run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        return watch(run_id, ctx, ctx.caller(request))

    def refresh(teacher_value: str | None, current: str | None, request: gr.Request
                ) -> tuple[Any, ...]:
        runs = actions.visible_runs(ctx.caller(request))
        choices = run_choices(runs)
        known = {value for _, value in choices}
        run_id = current if current in known else latest_run_id(runs)
        teachers = [BUNDLED_TEACHER] + model_choices(runs)
        return (gr.Dropdown(choices=teachers, value=teacher_value or BUNDLED_TEACHER),
                gr.Dropdown(choices=choices, value=run_id), *on_watch(run_id, request))

    def watched(run_id: str, request: gr.Request) -> tuple[Any, ...]:
        runs = actions.visible_runs(ctx.caller(request))
        return (gr.Dropdown(choices=run_choices(runs), value=run_id),
                *on_watch(run_id, request))

    # Actions write only a hidden State and raise gr.Error on bad input, so a mistake shows
    # one message instead of error badges over every panel; the panels update on success.
    @errors
    def launch_default(request: gr.Request) -> str:
        check_training_allowed(os.environ)
        run_id = actions.submit(JobSpec(), ctx.caller(request))
        gr.Info(f"Queued the default job as {run_id}")
        return run_id

    @errors
    def launch(values: dict[Any, Any], request: gr.Request) -> str:
        check_training_allowed(os.environ)
        caller = ctx.caller(request)
        form = {name: values[widget] for name, widget in form_widgets.items()}
        form["student_layers"] = parse_int_list(form["student_layers"], "custom layers")
        for key in ("max_train_examples", "max_eval_examples"):
            form[key] = int(form[key]) if form[key] else None
        # The teacher is checked before the form reads its config (the layer presets).
        check_model_ref((form["teacher"] or "").strip() or BUNDLED_TEACHER, caller, runs_dir,
                        "teacher")
        run_id = actions.submit(forms.build_spec(form, runs_dir), caller)
        gr.Info(f"Queued {run_id}")
        return run_id

    @errors
    def cancel(run_id: str | None, request: gr.Request) -> str:
        if not run_id:
            raise gr.Error("pick a run to cancel")
        state = actions.cancel(run_id, ctx.caller(request))
        gr.Info(f"{run_id}: cancel requested ({state}); it stops at its next step"
                if state == "running" else f"{run_id}: {state}")
        return run_id

    @errors
    def resume(run_id: str | None, request: gr.Request) -> str:
        if not run_id:
            raise gr.Error("pick a run to resume")
        check_training_allowed(os.environ)
        actions.resume(run_id, ctx.caller(request))
        gr.Info(f"{run_id} queued to resume from its checkpoint")
        return run_id

    def upload(path: str | None, kind: str, request: gr.Request) -> tuple[Any, Any]:
        if not path:
            return gr.update(), None
        try:
            stored = actions.store_upload(path, ctx.caller(request))
            if kind == "train":
                data = load_data(resolve_dataset(DatasetSpec(name=stored), runs_dir))
                gr.Info(f"{Path(path).name}: {data.description}")
        except ValueError as error:
            gr.Warning(scrub_paths(str(error)) if ctx.public else str(error))
            return gr.update(), None
        # The upload's reference goes into the text box; the drop zone is freed for another.
        return stored, None

    def set_recipe(name: str) -> tuple[Any, ...]:
        values = forms.recipe_values(name)
        return (forms.RECIPE_NOTES.get(name, ""), *values)

    def set_preset(name: str) -> tuple[Any, ...]:
        return (forms.PRESET_NOTES.get(name, ""), *forms.preset_values(name))

    # Widgets by the form field they fill (forms.build_spec's names); the launch callback
    # gets their values as one dict, so no list of inputs is matched by position.
    form_widgets = {
        "teacher": teacher, "dataset": dataset, "validation": validation,
        "text_column": text_column, "label_column": label_column,
        "max_train_examples": max_train, "max_eval_examples": max_eval,
        "student_size": student_size, "student_layers": layers, "recipe": recipe,
        "temperature": temperature, "alpha_kd": alpha_kd, "alpha_ce": alpha_ce,
        "alpha_cos": alpha_cos, "preset": preset, "epochs": epochs,
        "teacher_epochs": teacher_epochs, "learning_rate": lr, "teacher_learning_rate": teacher_lr,
        "batch_size": batch_size, "max_length": max_length, "baseline": baseline, "seed": seed,
        "device": device, "name": name}
    form_inputs = set(form_widgets.values())
    private = {"api_visibility": "private"}
    acted_on = gr.State()
    for button, action, inputs in ((default_button, launch_default, None),
                                   (launch_button, launch, form_inputs),
                                   (cancel_button, cancel, run_picker),
                                   (resume_button, resume, run_picker)):
        button.click(action, inputs, acted_on, **private).success(
            watched, acted_on, [run_picker, *watch_outputs], **private)
    run_picker.input(on_watch, run_picker, watch_outputs, **private)
    timer.tick(on_watch, run_picker, watch_outputs, show_progress="hidden",
               concurrency_limit=None, **private)
    refresh_button.click(refresh, [teacher, run_picker], [teacher, run_picker, *watch_outputs],
                         **private)
    ready.then(refresh, [teacher, run_picker], [teacher, run_picker, *watch_outputs], **private)

    def upload_train(path: str | None, request: gr.Request) -> tuple[Any, Any]:
        return upload(path, "train", request)

    def upload_validation(path: str | None, request: gr.Request) -> tuple[Any, Any]:
        return upload(path, "validation", request)

    train_upload.upload(upload_train, train_upload, [dataset, train_upload], **private)
    validation_upload.upload(upload_validation, validation_upload,
                             [validation, validation_upload], **private)
    recipe.input(set_recipe, recipe, [recipe_note, temperature, alpha_kd, alpha_ce, alpha_cos],
                  **private)
    preset.input(set_preset, preset, [preset_note, epochs, teacher_epochs, lr, teacher_lr,
                                       batch_size, max_length], **private)
