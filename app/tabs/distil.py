"""Distil tab: choose teacher, data, student and recipe; launch, watch, cancel, resume,
see the results card, edit and relaunch."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import gradio as gr

from app import forms
from app.context import AppContext
from app.helpers import (
    TERMINAL_STATES,
    latest_run_id,
    model_choices,
    parse_int_list,
    run_choices,
    user_errors,
)
from app.plots import training_charts
from app.progress import form_values, progress_html, resume_helps, status_markdown
from app.results import results_card
from app.settings import check_training_allowed
from core.access import Caller, check_model_ref, scrub_paths
from core.data import load_data
from core.runs import Run
from core.specs import BUNDLED_TEACHER, PRESETS, RECIPES, DatasetSpec, JobSpec
from core.uploads import UPLOAD_EXTENSIONS, resolve_dataset

POLL_S = 2.0
EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"


def watch(run_id: str | None, ctx: AppContext, caller: Caller) -> tuple[Any, ...]:
    """Everything the watch panel shows about one run, read from its folder: status, progress,
    charts, log, spec, the results card, which of Resume / Edit and relaunch apply, timer."""
    hidden = (gr.Button(visible=False), gr.Button(visible=False))
    if not run_id:
        return ("No run yet: **launch the default job** above, or set up your own.", "",
                None, None, "", None, "", *hidden, gr.Timer(active=False))
    try:
        status = ctx.actions.status(run_id, caller)
        spec = ctx.actions.spec(run_id, caller)
    except ValueError as error:
        return (f"**Error:** {error}", "", None, None, "", None, "", *hidden,
                gr.Timer(active=False))
    run = Run(ctx.runs_dir / run_id)
    state = status.get("state")
    logs = "\n".join(status.get("log_tail", []))
    if state == "failed" and status.get("error"):
        logs += f"\nerror: {status['error']}"
    card = (results_card(run.metrics, run.predictions(), (run.timings() or [None])[-1])
            if state == "done" else "")
    mine = bool(status.get("mine"))
    return (status_markdown(run_id, status), progress_html(status, spec), *training_charts(run),
            logs.strip(), spec, card,
            gr.Button(visible=mine and resume_helps(status)),
            gr.Button(visible=state == "failed" and not resume_helps(status)),
            gr.Timer(active=state not in TERMINAL_STATES))


def available_devices() -> list[str]:
    """The device choices this machine has: auto and cpu, and cuda / mps where present."""
    import torch

    from core.devices import mps_available

    return ["auto", "cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * mps_available()


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
    with gr.Accordion("Set up your own job", open=True, elem_id="setup") as setup:
        kind = gr.Radio(list(forms.JOB_KINDS), value=next(iter(forms.JOB_KINDS)), label="Job",
                        elem_id="job-kind",
                        info="general: the student learns the teacher on unlabelled text "
                             "(the dataset's texts), to start task jobs from "
                             "(Student: run:<id>/general)")
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
                                         "split (bbc_news 20%, a file 10%)")
            train_upload = gr.File(label="Upload training data", file_types=list(
                UPLOAD_EXTENSIONS), height=110, elem_id="upload-train")
            validation_upload = gr.File(label="Upload validation data", file_types=list(
                UPLOAD_EXTENSIONS), height=110, elem_id="upload-validation")
        with gr.Row():
            upload_note = gr.Markdown(elem_id="upload-note")
            example_button = gr.Button("Use the example files (movie reviews)", size="sm",
                                       scale=0, min_width=280, elem_id="use-examples")
        with gr.Row():
            text_column = gr.Textbox(label="Text column", placeholder="auto: text, sentence…")
            text_pair_column = gr.Textbox(
                label="Second text column (pairs)", elem_id="text-pair-column",
                placeholder="auto: sentence2, hypothesis…",
                info="sentence pairs; found by itself for sentence1/sentence2, "
                     "premise/hypothesis, question1/question2…")
            label_column = gr.Textbox(label="Label column", placeholder="auto: label, class…")
            task = gr.Dropdown(["auto", "classification", "regression"], value="auto",
                               label="Task", elem_id="task",
                               info="regression: a numeric target (e.g. a 0-5 score)")
            max_train = gr.Number(0, label="Max training examples", precision=0,
                                  info="0: all (else a stratified subset)", elem_id="max-train")
            max_eval = gr.Number(0, label="Max validation examples", precision=0,
                                 info="0: all", elem_id="max-eval")
            augment = gr.Number(0, label="Augment: variants per training text", precision=0,
                                minimum=0, maximum=32, elem_id="augment",
                                info="0: none. N masked / cut / shuffled variants of each "
                                     "training text, labelled by the teacher (transfer set)")
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
            lr = gr.Number(quick[2], label="Learning rate", step=1e-5, minimum=0,
                           info=forms.KNOB_INFO["learning_rate"])
            teacher_lr = gr.Number(quick[3], label="Teacher learning rate", step=1e-5,
                                   minimum=0, info=forms.KNOB_INFO["teacher_learning_rate"])
            batch_size = gr.Number(quick[4], label="Batch size", precision=0, minimum=1,
                                   info=forms.KNOB_INFO["batch_size"], elem_id="batch-size")
            max_length = gr.Number(quick[5], label="Max length", precision=0, minimum=8,
                                   info=forms.KNOB_INFO["max_length"], elem_id="max-length")
        with gr.Row():
            baseline = gr.Checkbox(True, label="Train the no-teacher baseline",
                                   info="the same student trained on labels alone",
                                   elem_id="baseline")
            seed = gr.Number(42, label="Seed", precision=0)
            device = gr.Dropdown(available_devices(), value="auto", label="Device",
                                 info="the devices this server has")
            name = gr.Textbox(label="Run name", placeholder="optional", elem_id="run-name")
        launch_button = gr.Button("Launch with these settings", variant="primary",
                                  elem_id="launch")
    # A refused launch says why here, where it happened, and stays until the next action.
    action_error = gr.Markdown(elem_id="action-error")

    gr.Markdown("### Progress", elem_id="progress-heading")
    with gr.Row():
        run_picker = gr.Dropdown([], label="Run", scale=4, elem_id="watch-run",
                                 info="the run folder is the truth: any browser sees the same")
        refresh_button = gr.Button("↻ Refresh", scale=1)
        cancel_button = gr.Button("■ Cancel", variant="stop", scale=1, elem_id="cancel")
        resume_button = gr.Button("▶ Resume", scale=1, elem_id="resume", visible=False)
        edit_button = gr.Button("✎ Edit and relaunch", scale=1, elem_id="edit-relaunch",
                                visible=False)
    status_md = gr.Markdown(elem_id="run-status")
    progress_bar = gr.HTML(elem_id="run-progress")
    results_md = gr.Markdown(elem_id="results-card")
    with gr.Row():
        loss_plot = gr.Plot(show_label=False, elem_id="loss-plot")
        val_plot = gr.Plot(show_label=False, elem_id="validation-plot")
    log_box = gr.Textbox(label="Log", lines=6, max_lines=12, interactive=False,
                         elem_id="run-log")
    with gr.Accordion("Spec of this run", open=False):
        spec_json = gr.JSON()
    timer = gr.Timer(POLL_S, active=False)

    watch_outputs = [status_md, progress_bar, loss_plot, val_plot, log_box, spec_json,
                     results_md, resume_button, edit_button, timer]

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

    # Actions return (run id or None, error text): a refused action says why in the panel
    # under the form, where it stays until the next action (and in a toast); the progress
    # panels update only when the action went through.
    def in_panel(action: Any) -> Any:
        @functools.wraps(action)  # Gradio reads the signature (gr.Request) through this
        def run(*args: Any) -> tuple[str | None, str]:
            try:
                return errors(action)(*args), ""
            except gr.Error as error:
                gr.Warning(error.message)
                return None, f"**Not done:** {error.message}"
        return run

    def launch_default(request: gr.Request) -> str:
        check_training_allowed(os.environ)
        run_id = actions.submit(JobSpec(), ctx.caller(request))
        gr.Info(f"Queued the default job as {run_id}")
        return run_id

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

    def cancel(run_id: str | None, request: gr.Request) -> str:
        if not run_id:
            raise gr.Error("pick a run to cancel")
        state = actions.cancel(run_id, ctx.caller(request))
        gr.Info({"running": f"{run_id}: stopping at its next step (it keeps a checkpoint)",
                 "cancelled": f"{run_id}: cancelled before it started",
                 "interrupted": f"{run_id}: its worker had stopped; marked interrupted"}.get(
                     state, f"{run_id}: {state}"))
        return run_id

    def resume(run_id: str | None, request: gr.Request) -> str:
        if not run_id:
            raise gr.Error("pick a run to resume")
        check_training_allowed(os.environ)
        actions.resume(run_id, ctx.caller(request))
        gr.Info(f"{run_id} queued to resume from its checkpoint")
        return run_id

    def _teacher_depth(teacher: str) -> int | None:
        """The teacher's layer count when its config is readable here (else None: the
        form shows the run's layers as custom)."""
        from core.preflight import teacher_depth

        try:
            return teacher_depth(teacher, runs_dir)
        except Exception:  # a Hub teacher offline, a deleted run: custom layers it is
            return None

    @errors
    def edit(run_id: str | None, request: gr.Request) -> dict[Any, Any]:
        if not run_id:
            raise gr.Error("pick a run to edit")
        spec = actions.spec(run_id, ctx.caller(request))
        values = form_values(spec, _teacher_depth(spec.get("teacher") or BUNDLED_TEACHER))
        updates: dict[Any, Any] = {form_widgets[name]: value for name, value in values.items()
                                   if value is not None}
        updates[setup] = gr.Accordion(open=True)
        updates[action_error] = (f"Settings of `{run_id}` are in the form: fix what failed, "
                                 "then **Launch with these settings**.")
        return updates

    def upload(path: str | None, kind: str, request: gr.Request) -> tuple[Any, Any, str]:
        """(data field, drop zone, note): an accepted file fills the field; a refused one
        empties it, so Launch refuses rather than train on something else."""
        if not path:
            return gr.update(), None, gr.update()
        name = Path(path).name
        try:
            stored = actions.store_upload(path, ctx.caller(request))
            if kind == "train":
                data = load_data(resolve_dataset(DatasetSpec(name=stored), runs_dir))
                note = f"✓ **{name}** will be used: {data.description}."
            else:
                note = f"✓ **{name}** will be the validation set."
        except ValueError as error:
            message = scrub_paths(str(error)) if ctx.public else str(error)
            gr.Warning(message)
            field = "Dataset" if kind == "train" else "Validation file"
            return "", None, (f"⚠ **{name} was not accepted:** {message}  \n{field} is now "
                              "empty: upload a fixed file, or type bbc_news.")
        # The upload's reference goes into the text box; the drop zone is freed for another.
        return stored, None, note

    @errors
    def use_examples(request: gr.Request) -> tuple[str, str, str]:
        caller = ctx.caller(request)
        train = actions.store_upload(EXAMPLES / "reviews_train.csv", caller)
        dev = actions.store_upload(EXAMPLES / "reviews_dev.csv", caller)
        data = load_data(resolve_dataset(DatasetSpec(name=train, validation=dev), runs_dir))
        return train, dev, (f"✓ The example files will be used: {data.description}. "
                            "A tiny teacher trains on them in a minute or two.")

    def set_recipe(name: str) -> tuple[Any, ...]:
        values = forms.recipe_values(name)
        return (forms.RECIPE_NOTES.get(name, ""), *values)

    def set_preset(name: str) -> tuple[Any, ...]:
        return (forms.PRESET_NOTES.get(name, ""), *forms.preset_values(name))

    # Widgets by the form field they fill (forms.build_spec's names); the launch callback
    # gets their values as one dict, so no list of inputs is matched by position.
    form_widgets = {
        "kind": kind, "teacher": teacher, "dataset": dataset, "validation": validation,
        "text_column": text_column, "text_pair_column": text_pair_column,
        "label_column": label_column, "task": task,
        "max_train_examples": max_train, "max_eval_examples": max_eval, "augment": augment,
        "student_size": student_size, "student_layers": layers, "recipe": recipe,
        "temperature": temperature, "alpha_kd": alpha_kd, "alpha_ce": alpha_ce,
        "alpha_cos": alpha_cos, "preset": preset, "epochs": epochs,
        "teacher_epochs": teacher_epochs, "learning_rate": lr, "teacher_learning_rate": teacher_lr,
        "batch_size": batch_size, "max_length": max_length, "baseline": baseline, "seed": seed,
        "device": device, "name": name}
    form_inputs = set(form_widgets.values())
    private = {"api_visibility": "private"}
    acted_on = gr.State()
    after = [run_picker, *watch_outputs]

    def watched_if(run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not run_id:
            return tuple(gr.update() for _ in after)
        return watched(run_id, request)

    def launched(run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        # After a launch the form folds away and Progress comes into view (script below).
        if not run_id:
            return (gr.update(), *watched_if(None, request))
        return (gr.Accordion(open=False), *watched(run_id, request))

    scroll = ("() => { const e = document.querySelector('#action-error');"
              " if (!e || !e.innerText.trim()) document.querySelector('#progress-heading')"
              "?.scrollIntoView({behavior: 'smooth', block: 'start'}); }")
    for button, action in ((default_button, launch_default), (launch_button, launch)):
        # One job per click: the button is disabled until the submission is answered.
        button.click(lambda: gr.Button(interactive=False), None, button, queue=False,
                     **private).then(
            in_panel(action), form_inputs if action is launch else None,
            [acted_on, action_error], **private).then(
            lambda: gr.Button(interactive=True), None, button, queue=False, **private).then(
            launched, acted_on, [setup, *after], **private).then(None, js=scroll)
    for button, action in ((cancel_button, cancel), (resume_button, resume)):
        button.click(in_panel(action), run_picker, [acted_on, action_error], **private).then(
            watched_if, acted_on, after, **private)
    edit_button.click(edit, run_picker, [*form_widgets.values(), setup, action_error],
                      **private).then(None, js="() => document.querySelector('#setup')"
                                               "?.scrollIntoView({behavior: 'smooth'})")
    run_picker.input(on_watch, run_picker, watch_outputs, **private)
    timer.tick(on_watch, run_picker, watch_outputs, show_progress="hidden",
               concurrency_limit=None, **private)
    refresh_button.click(refresh, [teacher, run_picker], [teacher, run_picker, *watch_outputs],
                         **private)
    ready.then(refresh, [teacher, run_picker], [teacher, run_picker, *watch_outputs], **private)

    def upload_train(path: str | None, request: gr.Request) -> tuple[Any, Any, str]:
        return upload(path, "train", request)

    def upload_validation(path: str | None, request: gr.Request) -> tuple[Any, Any, str]:
        return upload(path, "validation", request)

    train_upload.upload(upload_train, train_upload, [dataset, train_upload, upload_note],
                        **private)
    validation_upload.upload(upload_validation, validation_upload,
                             [validation, validation_upload, upload_note], **private)
    example_button.click(use_examples, None, [dataset, validation, upload_note], **private)
    recipe.input(set_recipe, recipe, [recipe_note, temperature, alpha_kd, alpha_ce, alpha_cos],
                  **private)
    preset.input(set_preset, preset, [preset_note, epochs, teacher_epochs, lr, teacher_lr,
                                       batch_size, max_length], **private)
