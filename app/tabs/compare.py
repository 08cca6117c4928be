"""Compare tab: several models on the same texts side by side, and a disagreement browser."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import pandas as pd

from app import gpu
from app.compare_tables import (
    BROWSER,
    BROWSER_HEADERS,
    BROWSER_INDEX,
    BROWSER_TEXT,
    browser_rows,
    int8_refs,
    loadable,
    one_line,
    probabilities_table,
    short_names,
    side_by_side,
)
from app.components import Components
from app.context import AppContext
from app.helpers import default_pair, model_choices, round_table, user_errors
from core.access import Caller, open_run_for
from core.actions import DISAGREEMENT_MODES
from core.runs import (
    ACCURACY,
    LATENCY_P50,
    MACRO_F1,
    PAIR_COLUMN,
    PARAMS,
    QUALITY_FIELDS,
    THROUGHPUT,
    ModelRef,
)
from core.specs import DatasetSpec

F = TypeVar("F", bound=Callable[..., Any])
PRIVATE = {"api_visibility": "private"}
EXAMPLES_PER_CLICK = 3
SCORE_COLUMNS = ["model", *QUALITY_FIELDS, PARAMS, LATENCY_P50, THROUGHPUT]
SCORE_DIGITS = {ACCURACY: 4, MACRO_F1: 4, LATENCY_P50: 2, THROUGHPUT: 1}
MODE_LABELS = {"disagree": "models disagree", "either_wrong": "either is wrong",
               "all": "all examples"}
def _split_texts(texts: str) -> list[str]:
    return [line.strip() for line in (texts or "").splitlines() if line.strip()]


def texts_and_pairs(texts: str, pairs: str) -> tuple[list[str], list[str] | None]:
    """The first texts and, when the second box has lines, the second text of each pair
    (line by line; the counts must match)."""
    firsts, seconds = _split_texts(texts), _split_texts(pairs)
    if not seconds:
        return firsts, None
    if len(seconds) != len(firsts):
        raise gr.Error(f"{len(firsts)} texts but {len(seconds)} second texts: a sentence pair "
                       f"is one line in each box (or leave the second box empty)")
    return firsts, seconds


def _label_names(ref: str | None, caller: Caller, runs_dir: Path) -> list[str]:
    if not ref or not ModelRef.is_run_ref(ref):
        return []
    try:
        run = open_run_for(ModelRef.parse(ref).run_id, caller, runs_dir)
        return list(run.read_metrics().label_names or [])
    except ValueError:
        return []


def _shown_errors(method: F) -> F:
    """``method`` of a :class:`CompareController` with its errors as readable toasts
    (``app.helpers.user_errors``, path-free in public mode)."""
    @functools.wraps(method)  # Gradio reads the signature (gr.Request) through this
    def wrapper(self: CompareController, *args: Any, **kwargs: Any) -> Any:
        return user_errors(method, public=self.ctx.public)(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


class CompareController:
    """The Compare tab's callbacks, one method each, testable without a browser.

    Methods take the components' values (and the ``gr.Request``, for the caller) and return
    plain values: DataFrames, Markdown text and ``gr.update`` dicts. A method's outputs are
    the components named in its class constant (``REFRESHED`` for :meth:`refresh`, ...), in
    that order; :func:`build_compare_tab` wires them by those names.
    """

    REFRESHED = ("models", "model_a", "model_b", "true_label", "predicted_label")
    COMPARE_INPUTS = ("texts", "text_pairs", "models", "max_length")
    SHOWN = ("summary", "result", "probabilities")
    SCORE_INPUTS = ("models", "score_data", "score_validation", "score_limit", "max_length",
                    "score_timed")
    SCORED = ("score_summary", "scores")
    BROWSE_INPUTS = ("model_a", "model_b", "mode", "true_label", "predicted_label")
    BROWSED = ("found", "browser_summary", "browser")
    LABELS = ("true_label", "predicted_label")
    PICKED = ("texts", "text_pairs", "models")

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def _label_names(self, ref: str | None, request: gr.Request | None) -> list[str]:
        return _label_names(ref, self.ctx.caller(request), self.ctx.runs_dir)

    # --- model choices ----------------------------------------------------------------
    def refresh(self, selected: list[str] | None, a: str | None, b: str | None,
                request: gr.Request) -> tuple[dict[str, Any], ...]:
        """The caller's models as choices (``REFRESHED``): the picks that are still there,
        else the newest done run's teacher and student; A's labels for the label filters."""
        runs = self.ctx.actions.visible_runs(self.ctx.caller(request))
        choices = model_choices(runs)
        chosen = [m for m in (selected or []) if m in choices or not m.startswith("run:")]
        chosen = chosen or default_pair(runs)
        # The browser reads saved predictions, so it also offers the int8 students.
        browsable = choices + int8_refs(runs)
        pair = default_pair(runs) + [None, None]
        a = a if a in browsable else pair[0]
        b = b if b in browsable else pair[1]
        labels = [""] + self._label_names(a, request)
        return (gr.update(choices=choices, value=chosen),
                gr.update(choices=browsable, value=a), gr.update(choices=browsable, value=b),
                gr.update(choices=labels), gr.update(choices=labels))

    def labels_of(self, a: str | None, request: gr.Request) -> tuple[dict[str, Any], ...]:
        """Model A's label names for both label filters (``LABELS``), reset to any."""
        labels = [""] + self._label_names(a, request)
        return gr.update(choices=labels, value=""), gr.update(choices=labels, value="")

    # --- side by side -----------------------------------------------------------------
    @_shown_errors
    def run_compare(self, text: str, pairs: str, refs: list[str] | None, length: float | None,
                request: gr.Request) -> pd.DataFrame:
        """Each model on each text (``COMPARE_INPUTS``; ``core.compare.compare``'s table)."""
        firsts, seconds = texts_and_pairs(text, pairs)
        texts, refs, length = self.ctx.actions.check_compare(
            firsts, refs or [], int(length or 0), self.ctx.caller(request), seconds)
        return gpu.compare_models(texts, refs, self.ctx.runs_dir, length)

    @staticmethod
    def show_compare(table: pd.DataFrame) -> tuple[str, dict[str, Any], pd.DataFrame]:
        """A comparison as shown (``SHOWN``): how many texts all models agree on, the side
        by side table (with its column widths) and every class probability."""
        agreed = table.groupby("text_index")["agree"].first()
        count = table["model"].nunique()
        note = (f"**{int(agreed.sum())} of {len(agreed)}** texts: all {count} models agree."
                if count > 1 else f"One model on {len(agreed)} text{'s' * (len(agreed) > 1)}.")
        refs = list(dict.fromkeys(table["model"]))
        if any(name != ref for ref, name in short_names(refs).items()):  # columns: roles only
            note += f" Models of run `{ModelRef.parse(refs[0]).run_id}`."
        shown = side_by_side(table)
        # Fixed widths: left to its content, the text column pushed the models off screen.
        models = len(refs)
        text_width = f"{max(25, 60 - 10 * models) // (len(shown.columns) - models - 2)}%"
        widths = (["48px"] + [text_width] * (len(shown.columns) - models - 2) + ["64px"]
                  + ["auto"] * models)
        return (note, gr.update(value=shown, column_widths=widths),
                probabilities_table(table))

    @_shown_errors
    def add_examples(self, text: str, pairs: str, refs: list[str] | None,
                     request: gr.Request) -> tuple[str, str]:
        """The texts (and second texts) with ``EXAMPLES_PER_CLICK`` random validation
        examples of the first run model's run added (``PICKED[:2]``)."""
        run_refs = [r for r in refs or [] if ModelRef.is_run_ref(r)]
        if not run_refs:
            raise gr.Error("pick a run model first: its run's validation examples are used")
        run = open_run_for(ModelRef.parse(run_refs[0]).run_id, self.ctx.caller(request),
                           self.ctx.runs_dir)
        table = run.predictions()
        if table.empty:
            raise gr.Error(f"run {run.id} has no validation predictions yet")
        picked = table.sample(min(EXAMPLES_PER_CLICK, len(table)),
                              random_state=random.randrange(2**31))
        lines = [one_line(t) for t in picked["text"]]
        if PAIR_COLUMN not in table.columns:
            return "\n".join(_split_texts(text) + lines), pairs
        seconds = [one_line(t) for t in picked[PAIR_COLUMN]]
        return ("\n".join(_split_texts(text) + lines),
                "\n".join(_split_texts(pairs) + seconds))

    @_shown_errors
    def run_score(self, refs: list[str] | None, data: str, validation: str, limit: float | None,
              length: float | None, timed: bool, request: gr.Request
              ) -> tuple[str, pd.DataFrame]:
        """The models scored on a dataset's validation set (``SCORE_INPUTS`` -> ``SCORED``)."""
        spec = DatasetSpec(name=(data or "").strip() or "bbc_news",
                           validation=(validation or "").strip() or None,
                           max_eval_examples=int(limit) if limit else None)
        refs, spec, length = self.ctx.actions.check_evaluation(
            refs or [], spec, int(length or 128), self.ctx.caller(request))
        description, table = gpu.evaluate_models(refs, spec, self.ctx.runs_dir, length,
                                                 bool(timed))
        shown = table[[c for c in SCORE_COLUMNS if c in table.columns]]
        return f"Scored on {description}.", round_table(shown, SCORE_DIGITS)

    # --- disagreement browser ---------------------------------------------------------
    def _disagreements(self, a: str | None, b: str | None, how: str, true: str | None,
                       predicted: str | None, request: gr.Request | None) -> pd.DataFrame:
        if not a or not b:
            raise gr.Error("pick model A and model B (run models)")
        return self.ctx.actions.disagreements(a, b, self.ctx.caller(request), mode=how,
                                              true_label=true or None,
                                              predicted_label=predicted or None)

    @_shown_errors
    def find(self, a: str | None, b: str | None, how: str, true: str | None,
             predicted: str | None, request: gr.Request) -> pd.DataFrame:
        """The validation examples A and B disagree on (``BROWSE_INPUTS``; ``how`` one of
        ``DISAGREEMENT_MODES``), largest confidence gap first."""
        return self._disagreements(a, b, how, true, predicted, request)

    @staticmethod
    def show_found(rows: pd.DataFrame, how: str) -> tuple[str, pd.DataFrame]:
        """Found examples as shown (``BROWSED[1:]``): their count and the browser's rows."""
        return f"{len(rows)} examples ({MODE_LABELS[how]}).", browser_rows(rows)

    def browse_quietly(self, a: str | None, b: str | None, how: str, true: str | None,
                       predicted: str | None, request: gr.Request) -> tuple[Any, Any, Any]:
        """On opening the tab: :meth:`find` and :meth:`show_found` (``BROWSED``) when the
        pick allows, else nothing changes (no error toast)."""
        try:
            rows = self._disagreements(a, b, how, true, predicted, request)
        except (ValueError, gr.Error):
            return gr.update(), gr.update(), gr.update()
        return (rows, *self.show_found(rows, how))

    @staticmethod
    def pick_row(a: str | None, b: str | None, rows: pd.DataFrame | None,
                 evt: gr.SelectData) -> tuple[str, str, list[str]]:
        """A clicked browser row's whole text (and second text) and the models to compare
        it with (``PICKED``): A and B less the int8 students, which cannot be loaded."""
        # The table shows previews; the whole text comes from the found rows, by the example's
        # number (the "#" column, whichever cell was clicked).
        row = evt.row_value or []
        text = str(row[BROWSER_TEXT]) if len(row) == len(BROWSER) else ""
        second = ""
        if rows is not None and len(row) > BROWSER_INDEX:
            match = rows.loc[rows["index"].astype(str) == str(row[BROWSER_INDEX])]
            text = str(match["text"].iloc[0]) if len(match) else text
            if len(match) and PAIR_COLUMN in match.columns:
                second = str(match[PAIR_COLUMN].iloc[0])
        models = loadable([a or "", b or ""])
        if len(models) < len([m for m in (a, b) if m]):
            gr.Info("An int8 student is saved as quantised weights that the comparison cannot "
                    "load: its prediction is the one in the row.")
        return one_line(text), one_line(second), models


def build_compare_tab(ready: Any, ctx: AppContext, tab: gr.Tab) -> None:
    """The Compare tab's layout and wiring (call inside ``tab``; ``ready`` is the page load)."""
    ui = _build_comparison(ctx).merged(_build_browser())
    _wire(ui, CompareController(ctx), ready, tab)


def _build_comparison(ctx: AppContext) -> Components:
    """Models, texts, the side by side result and the scores, by name."""
    models_from = ("run:<id>/<role> of your runs or the shared examples, bundled:minilm, or "
                   "a Hub id" if ctx.public else "run:<id>/<role> or a local model folder")
    gr.Markdown("Pick two or more models (from any runs, or a model folder), type or paste "
                "texts (one per line), and compare labels, probabilities and latency. For "
                "sentence-pair models put each pair's second text on the same line of the "
                "second box.")
    ui = Components()
    ui["models"] = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="Models",
                               elem_id="compare-models", info=models_from)
    with gr.Row():
        ui["texts"] = gr.Textbox(
            label="Texts, one per line", lines=4, elem_id="compare-texts",
            placeholder="Shares rose sharply after the company beat forecasts.")
        ui["text_pairs"] = gr.Textbox(
            label="Second texts of pairs, one per line (optional)", lines=4,
            elem_id="compare-text-pairs", info="sentence-pair models (premise → hypothesis, "
                                               "question → question): line n pairs with line n",
            placeholder="empty: single texts")
    with gr.Row():
        ui["compare_button"] = gr.Button("Compare", variant="primary",
                                         elem_id="compare-button")
        ui["examples_button"] = gr.Button(f"+ {EXAMPLES_PER_CLICK} validation examples")
        ui["max_length"] = gr.Number(0, label="Max length", precision=0, minimum=0, scale=0,
                                     min_width=120, info="0: each model's own (its run's)")
    ui["summary"] = gr.Markdown(elem_id="compare-summary")
    ui["result"] = gr.Dataframe(pd.DataFrame(columns=["#", "text", "agree"]),
                                interactive=False, wrap=True, elem_id="compare-result",
                                label="Side by side: label (confidence) · latency end to end")
    with gr.Accordion("Class probabilities", open=False):
        ui["probabilities"] = gr.Dataframe(interactive=False)
    with gr.Accordion("Score these models on a dataset", open=False):
        scores = _build_scores(ctx)
    return ui.merged(scores)


def _build_scores(ctx: AppContext) -> Components:
    """The dataset to score the models on, and the scores."""
    data_from = ("bbc_news, an upload:<id>/<file> reference from the Distil tab, or a Hub id"
                 if ctx.public else "bbc_news, a local CSV/TSV/JSONL/Parquet file or folder, "
                 "or a Hub id (online)")
    ui = Components()
    with gr.Row():
        ui["score_data"] = gr.Textbox("bbc_news", label="Dataset", scale=2, info=data_from)
        ui["score_validation"] = gr.Textbox(label="Validation file (optional)", scale=2)
        ui["score_limit"] = gr.Number(0, label="Max examples", precision=0, info="0: all")
        ui["score_timed"] = gr.Checkbox(False, label="Also time them")
        ui["score_button"] = gr.Button("Score", scale=0, min_width=120,
                                       elem_id="score-button")
    ui["score_summary"] = gr.Markdown()
    ui["scores"] = gr.Dataframe(interactive=False, elem_id="scores")
    return ui


def _build_browser() -> Components:
    """The disagreement browser: models A and B, the filters and the found examples."""
    gr.Markdown("### Disagreement browser\nValidation examples where two models disagree or "
                "either is wrong, largest confidence gap first. Click a row to compare it.")
    ui = Components()
    with gr.Row():
        ui["model_a"] = gr.Dropdown([], label="Model A", allow_custom_value=True,
                                    elem_id="model-a")
        ui["model_b"] = gr.Dropdown([], label="Model B", allow_custom_value=True,
                                    elem_id="model-b")
        ui["mode"] = gr.Radio([(MODE_LABELS[m], m) for m in DISAGREEMENT_MODES],
                              value="disagree", label="Show", elem_id="disagreement-mode")
    with gr.Row():
        ui["true_label"] = gr.Dropdown([""], value="", label="True label", info="empty: any")
        ui["predicted_label"] = gr.Dropdown([""], value="", info="empty: any",
                                            label="Predicted label (either model)")
        ui["find_button"] = gr.Button("Find examples", scale=0, min_width=160,
                                      elem_id="find-examples")
    ui["browser_summary"] = gr.Markdown(elem_id="disagreement-summary")
    ui["browser"] = gr.Dataframe(pd.DataFrame(columns=BROWSER_HEADERS), interactive=False,
                                 max_height=420, elem_id="disagreements",
                                 column_widths=[width for _, _, width in BROWSER])
    ui["compared"], ui["found"] = gr.State(), gr.State()
    return ui


def _wire(ui: Components, control: CompareController, ready: Any, tab: gr.Tab) -> None:
    """Each event to its :class:`CompareController` method, inputs and outputs by name."""
    c = CompareController
    for trigger in (ready.then, tab.select):
        trigger(control.refresh, ui.pick("models", "model_a", "model_b"),
                ui.pick(*c.REFRESHED), concurrency_limit=None, **PRIVATE).then(
            control.browse_quietly, ui.pick(*c.BROWSE_INPUTS), ui.pick(*c.BROWSED), **PRIVATE)
    # Computations write a hidden State and raise gr.Error on bad input; the visible panels
    # update on success only, so an error shows one message and leaves them as they were.
    ui["compare_button"].click(control.run_compare, ui.pick(*c.COMPARE_INPUTS), ui["compared"],
                               **PRIVATE).success(
        control.show_compare, ui["compared"], ui.pick(*c.SHOWN), **PRIVATE)
    ui["examples_button"].click(control.add_examples, ui.pick(*c.PICKED),
                                ui.pick("texts", "text_pairs"), **PRIVATE)
    ui["score_button"].click(control.run_score, ui.pick(*c.SCORE_INPUTS), ui.pick(*c.SCORED),
                             **PRIVATE)
    ui["model_a"].input(control.labels_of, ui["model_a"], ui.pick(*c.LABELS), **PRIVATE)
    gr.on([ui["find_button"].click, ui["mode"].input, ui["true_label"].input,
           ui["predicted_label"].input], control.find, ui.pick(*c.BROWSE_INPUTS),
          ui["found"], **PRIVATE).success(
        control.show_found, ui.pick("found", "mode"), ui.pick(*c.BROWSED[1:]), **PRIVATE)
    ui["browser"].select(control.pick_row, ui.pick("model_a", "model_b", "found"),
                         ui.pick(*c.PICKED), **PRIVATE).then(
        control.run_compare, ui.pick(*c.COMPARE_INPUTS), ui["compared"], **PRIVATE).success(
        control.show_compare, ui["compared"], ui.pick(*c.SHOWN), **PRIVATE)
