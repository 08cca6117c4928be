"""Compare tab: several models on the same texts side by side, and a disagreement browser."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import pyarrow.parquet

from app import gpu
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
    Run,
    RunState,
)
from core.runs import INT8_ROLE as INT8
from core.specs import DatasetSpec

EXAMPLES_PER_CLICK = 3
SCORE_COLUMNS = ["model", *QUALITY_FIELDS, PARAMS, LATENCY_P50, THROUGHPUT]
SCORE_DIGITS = {ACCURACY: 4, MACRO_F1: 4, LATENCY_P50: 2, THROUGHPUT: 1}
MODE_LABELS = {"disagree": "models disagree", "either_wrong": "either is wrong",
               "all": "all examples"}
PREVIEW_CHARS = 240  # a table cell shows this much of a text; a news article runs to pages
# The disagreement browser as shown: (source column, header, width), labels and confidences
# first, the text's preview after them (one line, cut at its column's edge; a click compares
# the whole text), the example's number last (it finds the whole text again).
TEXT_HEADER = "text (click to compare)"
BROWSER = [("a_label", "A says", "128px"), ("b_label", "B says", "128px"),
           ("true_label", "true", "128px"), ("a_confidence", "A conf", "72px"),
           ("b_confidence", "B conf", "72px"), ("a_correct", "A ✓", "52px"),
           ("b_correct", "B ✓", "52px"), ("text", TEXT_HEADER, "45%"), ("index", "#", "56px")]
BROWSER_HEADERS = [header for _, header, _ in BROWSER]
BROWSER_INDEX, BROWSER_TEXT = BROWSER_HEADERS.index("#"), BROWSER_HEADERS.index(TEXT_HEADER)


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, as one space."""
    return " ".join(str(text).split())


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut at a word boundary to about ``limit`` characters."""
    flat = _one_line(text)
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + " …"


def short_names(refs: list[str]) -> dict[str, str]:
    """Column names for model refs: the roles alone when every ref is a model of one run
    (``run:<id>/student`` -> ``student``), else the refs as given."""
    runs = {ref.partition("/")[0] for ref in refs if ref.startswith("run:")}
    if len(runs) == 1 and all(ref.startswith("run:") for ref in refs):
        return {ref: ref.partition("/")[2] for ref in refs}
    return {ref: ref for ref in refs}


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """One row per text, one column per model ("label (confidence) · latency")."""
    names = short_names(list(dict.fromkeys(table["model"])))
    rows = []
    for index, group in table.groupby("text_index", sort=True):
        row = {"#": int(index) + 1, "text": preview(group["text"].iloc[0])}
        if PAIR_COLUMN in group.columns:  # a sentence pair: its second text beside the first
            row["second text"] = preview(group[PAIR_COLUMN].iloc[0])
        row["agree"] = "yes" if group["agree"].iloc[0] else "NO"
        for record in group.to_dict(orient="records"):
            # A regression's "label" is its value: no confidence to show.
            sure = (f" ({record['confidence']:.2f})" if record["confidence"] == record["confidence"]
                    else "")
            cell = f"{record['label']}{sure} · {record['latency_ms']:.1f} ms"
            row[names[record["model"]]] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def probabilities_table(table: pd.DataFrame) -> pd.DataFrame:
    """Every class probability of every model and text, long format."""
    rows = [{"#": int(r["text_index"]) + 1, "model": r["model"], "label": r["label"],
             **{f"p({k})": round(v, 4) for k, v in r["probabilities"].items()},
             "latency_ms": round(r["latency_ms"], 2)}
            for r in table.to_dict(orient="records")]
    return pd.DataFrame(rows)


def browser_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Found disagreements as the browser shows them (see ``BROWSER``)."""
    shown = rows.copy()
    shown["text"] = shown["text"].map(preview)
    if PAIR_COLUMN in shown.columns:  # a pair reads as "first ‖ second" in one cell
        shown["text"] = shown["text"] + " ‖ " + shown[PAIR_COLUMN].map(preview)
    for column in ("a_confidence", "b_confidence"):  # a regression has none: blank
        rounded = shown[column].astype(float).round(2)
        shown[column] = rounded.astype(object).where(rounded.notna(), "")
    for column in ("a_correct", "b_correct"):
        shown[column] = shown[column].map({True: "✓", False: "✗"})
    return shown[[source for source, _, _ in BROWSER]].set_axis(BROWSER_HEADERS, axis=1)


def int8_refs(runs: list[Run]) -> list[str]:
    """``run:<id>/student_int8`` of the done runs that saved its validation predictions.

    The int8 student is saved as quantised weights without ``config.json``, which
    ``core.inference.Predictor`` (so ``core.compare.compare``) cannot load; its saved
    predictions are enough for the disagreement browser.
    """
    refs = []
    for run in reversed(runs):
        path = run.path / "predictions.parquet"
        if (run.status().get("state") == RunState.DONE and INT8 in run.read_metrics().models
                and path.exists()
                and f"{INT8}_pred" in pyarrow.parquet.read_schema(path).names):
            refs.append(str(ModelRef(run.id, INT8)))
    return refs


def loadable(refs: list[str]) -> list[str]:
    """The refs :func:`core.compare.compare` can load (not the int8 students)."""
    return [ref for ref in refs if ref and not ref.endswith(f"/{INT8}")]


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


def build_compare_tab(ready: Any, ctx: AppContext, tab: gr.Tab) -> None:
    """The Compare tab's layout and wiring (call inside ``tab``; ``ready`` is the page load)."""
    actions, runs_dir = ctx.actions, ctx.runs_dir
    errors = user_errors(public=ctx.public)
    models_from = ("run:<id>/<role> of your runs or the shared examples, bundled:minilm, or "
                   "a Hub id" if ctx.public else "run:<id>/<role> or a local model folder")
    data_from = ("bbc_news, an upload:<id>/<file> reference from the Distil tab, or a Hub id"
                 if ctx.public else "bbc_news, a local CSV/TSV/JSONL/Parquet file or folder, "
                 "or a Hub id (online)")
    gr.Markdown("Pick two or more models (from any runs, or a model folder), type or paste "
                "texts (one per line), and compare labels, probabilities and latency. For "
                "sentence-pair models put each pair's second text on the same line of the "
                "second box.")
    models = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="Models",
                         elem_id="compare-models",
                         info=models_from)
    with gr.Row():
        texts = gr.Textbox(label="Texts, one per line", lines=4, elem_id="compare-texts",
                           placeholder="Shares rose sharply after the company beat forecasts.")
        text_pairs = gr.Textbox(label="Second texts of pairs, one per line (optional)", lines=4,
                                elem_id="compare-text-pairs",
                                info="sentence-pair models (premise → hypothesis, "
                                     "question → question): line n pairs with line n",
                                placeholder="empty: single texts")
    with gr.Row():
        compare_button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        examples_button = gr.Button(f"+ {EXAMPLES_PER_CLICK} validation examples")
        max_length = gr.Number(0, label="Max length", precision=0, minimum=0, scale=0,
                               min_width=120, info="0: each model's own (its run's)")
    summary = gr.Markdown(elem_id="compare-summary")
    result = gr.Dataframe(pd.DataFrame(columns=["#", "text", "agree"]), interactive=False,
                          label="Side by side: label (confidence) · latency end to end",
                          wrap=True, elem_id="compare-result")
    with gr.Accordion("Class probabilities", open=False):
        probabilities = gr.Dataframe(interactive=False)
    with gr.Accordion("Score these models on a dataset", open=False):
        with gr.Row():
            score_data = gr.Textbox("bbc_news", label="Dataset", scale=2,
                                    info=data_from)
            score_validation = gr.Textbox(label="Validation file (optional)", scale=2)
            score_limit = gr.Number(0, label="Max examples", precision=0, info="0: all")
            score_timed = gr.Checkbox(False, label="Also time them")
            score_button = gr.Button("Score", scale=0, min_width=120, elem_id="score-button")
        score_summary = gr.Markdown()
        scores = gr.Dataframe(interactive=False, elem_id="scores")

    gr.Markdown("### Disagreement browser\nValidation examples where two models disagree or "
                "either is wrong, largest confidence gap first. Click a row to compare it.")
    with gr.Row():
        model_a = gr.Dropdown([], label="Model A", allow_custom_value=True, elem_id="model-a")
        model_b = gr.Dropdown([], label="Model B", allow_custom_value=True, elem_id="model-b")
        mode = gr.Radio([(MODE_LABELS[m], m) for m in DISAGREEMENT_MODES], value="disagree",
                        label="Show", elem_id="disagreement-mode")
    with gr.Row():
        true_label = gr.Dropdown([""], value="", label="True label", info="empty: any")
        predicted_label = gr.Dropdown([""], value="", label="Predicted label (either model)",
                                      info="empty: any")
        find_button = gr.Button("Find examples", scale=0, min_width=160,
                                elem_id="find-examples")
    browser_summary = gr.Markdown(elem_id="disagreement-summary")
    browser = gr.Dataframe(pd.DataFrame(columns=BROWSER_HEADERS), interactive=False,
                           max_height=420, elem_id="disagreements",
                           column_widths=[width for _, _, width in BROWSER])

    def refresh(selected: list[str] | None, a: str | None, b: str | None,
                request: gr.Request) -> tuple[Any, ...]:
        caller = ctx.caller(request)
        runs = actions.visible_runs(caller)
        choices = model_choices(runs)
        chosen = [m for m in (selected or []) if m in choices or not m.startswith("run:")]
        chosen = chosen or default_pair(runs)
        # The browser reads saved predictions, so it also offers the int8 students.
        browsable = choices + int8_refs(runs)
        pair = default_pair(runs) + [None, None]
        a = a if a in browsable else pair[0]
        b = b if b in browsable else pair[1]
        labels = [""] + _label_names(a, caller, runs_dir)
        return (gr.Dropdown(choices=choices, value=chosen),
                gr.Dropdown(choices=browsable, value=a), gr.Dropdown(choices=browsable, value=b),
                gr.Dropdown(choices=labels), gr.Dropdown(choices=labels))

    def browse_quietly(a: str | None, b: str | None, how: str, true: str | None,
                       predicted: str | None, request: gr.Request) -> tuple[Any, Any, Any]:
        # On opening the tab: fill the browser when it can be, without error toasts.
        try:
            rows = find.__wrapped__(a, b, how, true, predicted, request)
        except (ValueError, gr.Error):
            return gr.update(), gr.update(), gr.update()
        return (rows, *show_found(rows, how))

    @errors
    def run_compare(text: str, pairs: str, refs: list[str] | None, length: float | None,
                    request: gr.Request) -> pd.DataFrame:
        firsts, seconds = texts_and_pairs(text, pairs)
        texts, refs, length = actions.check_compare(firsts, refs or [], int(length or 0),
                                                    ctx.caller(request), seconds)
        return gpu.compare_models(texts, refs, runs_dir, length)

    @errors
    def run_score(refs: list[str] | None, data: str, validation: str, limit: float | None,
                  length: float | None, timed: bool, request: gr.Request
                  ) -> tuple[str, pd.DataFrame]:
        spec = DatasetSpec(name=(data or "").strip() or "bbc_news",
                           validation=(validation or "").strip() or None,
                           max_eval_examples=int(limit) if limit else None)
        refs, spec, length = actions.check_evaluation(refs or [], spec, int(length or 128),
                                                      ctx.caller(request))
        description, table = gpu.evaluate_models(refs, spec, runs_dir, length, bool(timed))
        shown = table[[c for c in SCORE_COLUMNS if c in table.columns]]
        return f"Scored on {description}.", round_table(shown, SCORE_DIGITS)

    def show_compare(table: pd.DataFrame) -> tuple[Any, ...]:
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
        return note, gr.Dataframe(shown, column_widths=widths), probabilities_table(table)

    @errors
    def add_examples(text: str, pairs: str, refs: list[str] | None, request: gr.Request
                     ) -> tuple[str, str]:
        run_refs = [r for r in refs or [] if ModelRef.is_run_ref(r)]
        if not run_refs:
            raise gr.Error("pick a run model first: its run's validation examples are used")
        run = open_run_for(ModelRef.parse(run_refs[0]).run_id, ctx.caller(request), runs_dir)
        table = run.predictions()
        if table.empty:
            raise gr.Error(f"run {run.id} has no validation predictions yet")
        picked = table.sample(min(EXAMPLES_PER_CLICK, len(table)),
                              random_state=random.randrange(2**31))
        lines = [_one_line(t) for t in picked["text"]]
        if PAIR_COLUMN not in table.columns:
            return "\n".join(_split_texts(text) + lines), pairs
        seconds = [_one_line(t) for t in picked[PAIR_COLUMN]]
        return ("\n".join(_split_texts(text) + lines),
                "\n".join(_split_texts(pairs) + seconds))

    @errors
    def find(a: str | None, b: str | None, how: str, true: str | None, predicted: str | None,
             request: gr.Request) -> pd.DataFrame:
        if not a or not b:
            raise gr.Error("pick model A and model B (run models)")
        return actions.disagreements(a, b, ctx.caller(request), mode=how,
                                     true_label=true or None, predicted_label=predicted or None)

    def show_found(rows: pd.DataFrame, how: str) -> tuple[str, pd.DataFrame]:
        return f"{len(rows)} examples ({MODE_LABELS[how]}).", browser_rows(rows)

    def labels_of(a: str | None, request: gr.Request) -> tuple[Any, Any]:
        labels = [""] + _label_names(a, ctx.caller(request), runs_dir)
        return gr.Dropdown(choices=labels, value=""), gr.Dropdown(choices=labels, value="")

    def pick_row(a: str | None, b: str | None, rows: pd.DataFrame | None,
                 evt: gr.SelectData) -> tuple[str, str, list[str]]:
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
        return _one_line(text), _one_line(second), models

    private = {"api_visibility": "private"}
    compared, found = gr.State(), gr.State()
    choice_outputs = [models, model_a, model_b, true_label, predicted_label]
    browse_inputs = [model_a, model_b, mode, true_label, predicted_label]
    for trigger in (ready.then, tab.select):
        trigger(refresh, [models, model_a, model_b], choice_outputs, concurrency_limit=None,
                **private).then(browse_quietly, browse_inputs,
                                [found, browser_summary, browser], **private)
    # Computations write a hidden State and raise gr.Error on bad input; the visible panels
    # update on success only, so an error shows one message and leaves them as they were.
    compare_button.click(run_compare, [texts, text_pairs, models, max_length], compared,
                         **private).success(
        show_compare, compared, [summary, result, probabilities], **private)
    examples_button.click(add_examples, [texts, text_pairs, models], [texts, text_pairs],
                          **private)
    score_button.click(run_score, [models, score_data, score_validation, score_limit,
                                   max_length, score_timed], [score_summary, scores], **private)
    model_a.input(labels_of, model_a, [true_label, predicted_label], **private)
    gr.on([find_button.click, mode.input, true_label.input, predicted_label.input], find,
          browse_inputs, found, **private).success(
        show_found, [found, mode], [browser_summary, browser], **private)
    browser.select(pick_row, [model_a, model_b, found], [texts, text_pairs, models],
                   **private).then(
        run_compare, [texts, text_pairs, models, max_length], compared, **private).success(
        show_compare, compared, [summary, result, probabilities], **private)
