"""The Distil tab's form: its fields by name (``forms.build_spec``'s names) and the helpers
that fill them: uploads, the example files, and the recipe and size presets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from app import forms
from app.components import Components
from app.context import AppContext
from app.helpers import user_errors
from core.access import scrub_paths
from core.actions import UPLOAD_EXTENSIONS, describe_dataset, device_choices
from core.specs import BUNDLED_TEACHER, PRESETS, RECIPES, DatasetSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"
PRIVATE = {"api_visibility": "private"}


def build_form(ctx: AppContext) -> tuple[Components, Components]:
    """The form inside its accordion (call inside a ``gr.Tab``).

    Returns:
        ``(fields, parts)``: the fields by the names ``forms.build_spec`` reads, and the
        other parts by name (``setup`` accordion, uploads, notes, ``launch_button``).
    """
    fields, parts = Components(), Components()
    with gr.Accordion("Set up your own job", open=True, elem_id="setup") as setup:
        parts["setup"] = setup
        _model_fields(fields, ctx)
        _data_fields(fields, parts, ctx)
        _recipe_fields(fields, parts)
        _training_fields(fields, parts)
        parts["launch_button"] = gr.Button("Launch with these settings", variant="primary",
                                           elem_id="launch")
    return fields, parts


def _model_fields(fields: Components, ctx: AppContext) -> None:
    """The job kind, the teacher and the student's size."""
    teachers_from = ("bundled:minilm, a model from one of your runs, or a Hub id" if ctx.public
                     else "bundled:minilm, a model from an earlier run, a local folder or a "
                     "Hub id (online)")
    fields["kind"] = gr.Radio(list(forms.JOB_KINDS), value=next(iter(forms.JOB_KINDS)),
                              label="Job", elem_id="job-kind",
                              info="general: the student learns the teacher on unlabelled text "
                                   "(the dataset's texts), to start task jobs from "
                                   "(Student: run:<id>/general)")
    with gr.Row():
        fields["teacher"] = gr.Dropdown([BUNDLED_TEACHER], value=BUNDLED_TEACHER,
                                        label="Teacher", allow_custom_value=True, scale=2,
                                        elem_id="teacher", info=teachers_from)
        fields["student_size"] = gr.Radio(
            list(forms.STUDENT_SIZES), value=next(iter(forms.STUDENT_SIZES)),
            label="Student size", scale=2, elem_id="student-size",
            info="layers copied from the teacher (DistilBERT initialisation)")
        fields["student_layers"] = gr.Textbox(
            label="Custom layers", placeholder="e.g. 0,2,4",
            info="teacher layers to keep (for 'custom layers')", elem_id="student-layers")


def _data_fields(fields: Components, parts: Components, ctx: AppContext) -> None:
    """The dataset, its uploads and example files, its columns, task and sizes."""
    where = ("bbc_news (bundled), an uploaded file, or a Hub id" if ctx.public else
             "bbc_news (bundled), an uploaded file, a local CSV/TSV/JSONL/Parquet path or "
             "folder, or a Hub id")
    with gr.Row():
        fields["dataset"] = gr.Textbox("bbc_news", label="Dataset", scale=2, elem_id="dataset",
                                       info=where)
        fields["validation"] = gr.Textbox(
            label="Validation file (optional)", scale=2, elem_id="validation",
            info="a separate validation file; empty: a stratified split (bbc_news 20%, a "
                 "file 10%)")
        parts["train_upload"] = gr.File(label="Upload training data", file_types=list(
            UPLOAD_EXTENSIONS), height=110, elem_id="upload-train")
        parts["validation_upload"] = gr.File(label="Upload validation data", file_types=list(
            UPLOAD_EXTENSIONS), height=110, elem_id="upload-validation")
    with gr.Row():
        parts["upload_note"] = gr.Markdown(elem_id="upload-note")
        parts["example_button"] = gr.Button("Use the example files (movie reviews)", size="sm",
                                            scale=0, min_width=280, elem_id="use-examples")
    with gr.Row():
        fields["text_column"] = gr.Textbox(label="Text column",
                                           placeholder="auto: text, sentence…")
        fields["text_pair_column"] = gr.Textbox(
            label="Second text column (pairs)", elem_id="text-pair-column",
            placeholder="auto: sentence2, hypothesis…",
            info="sentence pairs; found by itself for sentence1/sentence2, "
                 "premise/hypothesis, question1/question2…")
        fields["label_column"] = gr.Textbox(label="Label column",
                                            placeholder="auto: label, class…")
        fields["task"] = gr.Dropdown(["auto", "classification", "regression"], value="auto",
                                     label="Task", elem_id="task",
                                     info="regression: a numeric target (e.g. a 0-5 score)")
        fields["max_train_examples"] = gr.Number(
            0, label="Max training examples", precision=0,
            info="0: all (else a stratified subset)", elem_id="max-train")
        fields["max_eval_examples"] = gr.Number(0, label="Max validation examples", precision=0,
                                                info="0: all", elem_id="max-eval")
        fields["augment"] = gr.Number(
            0, label="Augment: variants per training text", precision=0, minimum=0,
            maximum=32, elem_id="augment",
            info="0: none. N masked / cut / shuffled variants of each training text, "
                 "labelled by the teacher (transfer set)")


def _recipe_fields(fields: Components, parts: Components) -> None:
    """The recipe preset, its note and its four loss settings."""
    with gr.Row():
        with gr.Column(min_width=220):
            fields["recipe"] = gr.Dropdown(list(RECIPES), value="distilbert", label="Recipe",
                                           elem_id="recipe")
            parts["recipe_note"] = gr.Markdown(forms.RECIPE_NOTES["distilbert"])
        fields["temperature"] = gr.Slider(0.5, 10, 2.0, step=0.5, label="Temperature T",
                                          info=forms.KNOB_INFO["temperature"])
        fields["alpha_kd"] = gr.Slider(0, 2, 0.5, step=0.05, label="α soft targets",
                                       info=forms.KNOB_INFO["alpha_kd"])
        fields["alpha_ce"] = gr.Slider(0, 2, 0.5, step=0.05, label="α hard labels",
                                       info=forms.KNOB_INFO["alpha_ce"])
        fields["alpha_cos"] = gr.Slider(0, 2, 1.0, step=0.05, label="α hidden cosine",
                                        info=forms.KNOB_INFO["alpha_cos"])


def _training_fields(fields: Components, parts: Components) -> None:
    """The size preset, its note and its training settings; baseline, seed, device, name."""
    quick = forms.preset_values("quick")
    info = forms.KNOB_INFO
    with gr.Row():
        with gr.Column(min_width=200):
            fields["preset"] = gr.Dropdown(list(PRESETS), value="quick", label="Size preset",
                                           elem_id="preset")
            parts["preset_note"] = gr.Markdown(forms.PRESET_NOTES["quick"])
        fields["epochs"] = gr.Number(quick["epochs"], label="Epochs", precision=0, minimum=1,
                                     info=info["epochs"], elem_id="epochs")
        fields["teacher_epochs"] = gr.Number(
            quick["teacher_epochs"], label="Teacher epochs", precision=0, minimum=0,
            info=info["teacher_epochs"], elem_id="teacher-epochs")
        fields["learning_rate"] = gr.Number(quick["learning_rate"], label="Learning rate",
                                            step=1e-5, minimum=0, info=info["learning_rate"])
        fields["teacher_learning_rate"] = gr.Number(
            quick["teacher_learning_rate"], label="Teacher learning rate", step=1e-5,
            minimum=0, info=info["teacher_learning_rate"])
        fields["batch_size"] = gr.Number(quick["batch_size"], label="Batch size", precision=0,
                                         minimum=1, info=info["batch_size"],
                                         elem_id="batch-size")
        fields["max_length"] = gr.Number(quick["max_length"], label="Max length", precision=0,
                                         minimum=8, info=info["max_length"],
                                         elem_id="max-length")
    with gr.Row():
        fields["baseline"] = gr.Checkbox(True, label="Train the no-teacher baseline",
                                         info="the same student trained on labels alone",
                                         elem_id="baseline")
        fields["seed"] = gr.Number(42, label="Seed", precision=0)
        fields["device"] = gr.Dropdown(device_choices(), value="auto", label="Device",
                                       info="the devices this server has")
        fields["name"] = gr.Textbox(label="Run name", placeholder="optional", elem_id="run-name")


def wire_form_helpers(ui: Components, ctx: AppContext) -> None:
    """Uploads fill the data fields, the example button both, and picking a recipe or a
    size preset fills its settings (``ui``: the form's fields and parts by name)."""
    actions, runs_dir = ctx.actions, ctx.runs_dir
    errors = user_errors(public=ctx.public)

    def upload(path: str | None, kind: str, request: gr.Request) -> dict[str, Any]:
        """The data field, the drop zone and the note: an accepted file fills the field; a
        refused one empties it, so Launch refuses rather than train on something else."""
        field, zone = ("dataset", "train_upload") if kind == "train" else (
            "validation", "validation_upload")
        if not path:
            return {field: gr.update(), zone: None, "upload_note": gr.update()}
        name = Path(path).name
        try:
            stored = actions.store_upload(path, ctx.caller(request))
            if kind == "train":
                note = (f"✓ **{name}** will be used: "
                        f"{describe_dataset(DatasetSpec(name=stored), runs_dir)}.")
            else:
                note = f"✓ **{name}** will be the validation set."
        except ValueError as error:
            message = scrub_paths(str(error)) if ctx.public else str(error)
            gr.Warning(message)
            label = "Dataset" if kind == "train" else "Validation file"
            return {field: "", zone: None,
                    "upload_note": f"⚠ **{name} was not accepted:** {message}  \n{label} is "
                                   "now empty: upload a fixed file, or type bbc_news."}
        # The upload's reference goes into the text box; the drop zone is freed for another.
        return {field: stored, zone: None, "upload_note": note}

    def upload_train(path: str | None, request: gr.Request) -> dict[Any, Any]:
        return ui.write(upload(path, "train", request))

    def upload_validation(path: str | None, request: gr.Request) -> dict[Any, Any]:
        return ui.write(upload(path, "validation", request))

    @errors
    def use_examples(request: gr.Request) -> dict[Any, Any]:
        caller = ctx.caller(request)
        train = actions.store_upload(EXAMPLES / "reviews_train.csv", caller)
        dev = actions.store_upload(EXAMPLES / "reviews_dev.csv", caller)
        description = describe_dataset(DatasetSpec(name=train, validation=dev), runs_dir)
        return ui.write({"dataset": train, "validation": dev, "upload_note": (
            f"✓ The example files will be used: {description}. A tiny teacher trains "
            "on them in a minute or two.")})

    def set_recipe(name: str) -> dict[Any, Any]:
        return ui.write({"recipe_note": forms.RECIPE_NOTES.get(name, ""),
                         **forms.recipe_values(name)})

    def set_preset(name: str) -> dict[Any, Any]:
        return ui.write({"preset_note": forms.PRESET_NOTES.get(name, ""),
                         **forms.preset_values(name)})

    ui["train_upload"].upload(upload_train, ui["train_upload"],
                              ui.pick("dataset", "train_upload", "upload_note"), **PRIVATE)
    ui["validation_upload"].upload(upload_validation, ui["validation_upload"],
                                   ui.pick("validation", "validation_upload", "upload_note"),
                                   **PRIVATE)
    ui["example_button"].click(use_examples, None,
                               ui.pick("dataset", "validation", "upload_note"), **PRIVATE)
    ui["recipe"].input(set_recipe, ui["recipe"],
                       ui.pick("recipe_note", *forms.recipe_values("distilbert")), **PRIVATE)
    ui["preset"].input(set_preset, ui["preset"],
                       ui.pick("preset_note", *forms.preset_values("quick")), **PRIVATE)
