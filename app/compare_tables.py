"""The Compare tab's tables, built from ``core.compare``'s results: texts side by side,
class probabilities, and the disagreement browser's rows (no widgets here)."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet

from core.runs import INT8_ROLE as INT8
from core.runs import PAIR_COLUMN, ModelRef, Run, RunState

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


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, as one space."""
    return " ".join(str(text).split())


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut at a word boundary to about ``limit`` characters."""
    flat = one_line(text)
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
