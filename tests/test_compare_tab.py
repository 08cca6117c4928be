"""The Compare tab's callbacks (``CompareController``'s methods) called directly, without a
browser, on a finished tiny run (``tiny_run`` in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from app.compare_tables import BROWSER_HEADERS, browser_rows
from app.context import AppContext
from app.tabs.compare import EXAMPLES_PER_CLICK, CompareController
from core.actions import Actions
from core.runs import open_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")
OWNER = None  # off public mode every request is the owner's
LABELS = ["", "negative", "positive"]


@pytest.fixture()
def control(tiny_run: tuple[Path, str]) -> CompareController:
    return CompareController(AppContext(Actions(tiny_run[0])))


@pytest.fixture()
def refs(tiny_run: tuple[Path, str]) -> list[str]:
    return [f"run:{tiny_run[1]}/teacher", f"run:{tiny_run[1]}/student"]


def test_refresh_offers_the_runs_models_keeps_picks_and_fills_the_label_filters(
        control: CompareController, refs: list[str]) -> None:
    models, a, b, true, predicted = control.refresh(None, None, None, OWNER)
    assert set(refs) <= set(models["choices"]) and models["value"] == refs
    assert (a["value"], b["value"]) == tuple(refs)
    assert set(models["choices"]) <= set(a["choices"]) == set(b["choices"])
    assert true["choices"] == predicted["choices"] == LABELS
    # A pick still there stays; a vanished run's model goes; a model folder stays.
    gone = "run:20000101-000000-dead/student"
    models, a, b, *_ = control.refresh([refs[1], gone, "/models/mine"], refs[1], gone, OWNER)
    assert models["value"] == [refs[1], "/models/mine"]
    assert (a["value"], b["value"]) == (refs[1], refs[1])
    true, predicted = control.labels_of(refs[0], OWNER)
    assert true == {"__type__": "update", "choices": LABELS, "value": ""} == predicted


def test_compare_gives_one_row_per_text_and_model_and_shows_one_per_text(
        control: CompareController, refs: list[str]) -> None:
    texts = "the film was superb and the plot\n\nits cast was dreadful and the score"
    table = control.run_compare(texts, "", refs, 0, OWNER)
    assert len(table) == 2 * 2 and set(table["model"]) == set(refs)
    assert set(table["label"]) <= set(LABELS[1:])
    note, shown, probabilities = control.show_compare(table)
    side = shown["value"]
    assert side["#"].tolist() == [1, 2]
    assert list(side.columns) == ["#", "text", "agree", "teacher", "student"]
    assert side["teacher"].str.match(r"^(negative|positive) \(\d\.\d\d\) · \d+\.\d ms$").all()
    assert len(shown["column_widths"]) == len(side.columns)
    assert f"run `{refs[0][4:].split('/')[0]}`" in note and "of 2** texts" in note
    assert len(probabilities) == 4
    assert {"p(negative)", "p(positive)"} <= set(probabilities.columns)


def test_compare_refuses_unmatched_pairs_and_no_models(control: CompareController,
                                                       refs: list[str]) -> None:
    with pytest.raises(gr.Error, match="2 texts but 1 second texts"):
        control.run_compare("one\ntwo", "only one", refs, 0, OWNER)
    with pytest.raises(gr.Error, match="no models"):
        control.run_compare("one", "", [], 0, OWNER)


def test_examples_come_from_the_first_run_models_validation_set(
        control: CompareController, refs: list[str], tiny_run: tuple[Path, str]) -> None:
    validation = set(open_run(tiny_run[1], tiny_run[0]).predictions()["text"])
    texts, pairs = control.add_examples("my own text", "", ["/models/mine", refs[1]], OWNER)
    lines = texts.splitlines()
    assert lines[0] == "my own text" and len(lines) == 1 + EXAMPLES_PER_CLICK
    assert set(lines[1:]) <= validation and pairs == ""
    with pytest.raises(gr.Error, match="pick a run model first"):
        control.add_examples("", "", ["/models/mine"], OWNER)


def test_disagreement_browser_finds_filters_and_shows_rows(
        control: CompareController, refs: list[str]) -> None:
    everything = control.find(*refs, "all", "", "", OWNER)
    assert len(everything) == 50  # the run's validation set
    differing = control.find(*refs, "disagree", "", "", OWNER)
    assert (differing["a_label"] != differing["b_label"]).all()
    assert len(differing) == (everything["a_label"] != everything["b_label"]).sum()
    positives = control.find(*refs, "all", "positive", "", OWNER)
    assert len(positives) == 25 and (positives["true_label"] == "positive").all()
    said = control.find(*refs, "all", "", "negative", OWNER)
    assert ((said["a_label"] == "negative") | (said["b_label"] == "negative")).all()
    summary, shown = control.show_found(positives, "all")
    assert summary == "25 examples (all examples)."
    assert list(shown.columns) == BROWSER_HEADERS and len(shown) == 25
    # Opening the tab fills the browser the same way, and says nothing when it cannot.
    found, summary, shown = control.browse_quietly(*refs, "all", "positive", "", OWNER)
    assert found.equals(positives) and summary == "25 examples (all examples)."
    assert control.browse_quietly(refs[0], None, "all", "", "", OWNER) == (
        gr.update(), gr.update(), gr.update())
    with pytest.raises(gr.Error, match="pick model A and model B"):
        control.find(refs[0], "", "all", "", "", OWNER)
    with pytest.raises(gr.Error, match="run:<id>/<role>"):
        control.find(refs[0], "/models/mine", "all", "", "", OWNER)


def test_a_clicked_row_gives_its_whole_text_and_the_loadable_models(
        control: CompareController, refs: list[str]) -> None:
    found = control.find(*refs, "all", "", "", OWNER)
    found.loc[found.index[1], "text"] = "a long text " * 40  # shown as a preview only
    row = browser_rows(found).iloc[1].tolist()
    text, second, models = control.pick_row(*refs, found, SimpleNamespace(row_value=row))
    assert text == ("a long text " * 40).strip() != row[BROWSER_HEADERS.index(
        "text (click to compare)")]
    assert second == "" and models == refs
    int8 = refs[0].replace("/teacher", "/student_int8")
    assert control.pick_row(int8, refs[1], found, SimpleNamespace(row_value=row))[2] == [
        refs[1]]


def test_a_visitor_sees_none_of_the_owners_models_and_cannot_use_them(
        tiny_run: tuple[Path, str], refs: list[str]) -> None:
    control = CompareController(AppContext(Actions(tiny_run[0]), public=True, auth=True))
    visitor = SimpleNamespace(session_hash="a-visitors-session", username=None)
    signed_in = SimpleNamespace(session_hash="the-owners-session", username="owner")
    models, a, b, true, _ = control.refresh(refs, refs[0], refs[1], visitor)
    assert models["choices"] == [] and models["value"] == []
    assert a["value"] is None and b["value"] is None and true["choices"] == [""]
    assert control.labels_of(refs[0], visitor)[0]["choices"] == [""]
    refused = f"no run '{tiny_run[1]}' of yours"
    with pytest.raises(gr.Error, match=refused):
        control.run_compare("the film was superb", "", refs, 0, visitor)
    with pytest.raises(gr.Error, match=refused):
        control.find(*refs, "all", "", "", visitor)
    with pytest.raises(gr.Error, match=refused):
        control.add_examples("", "", refs, visitor)
    assert control.browse_quietly(*refs, "all", "", "", visitor)[0] == gr.update()
    # A --auth login is the server's owner: the same calls go through.
    assert control.refresh(None, None, None, signed_in)[0]["value"] == refs
    assert len(control.find(*refs, "all", "", "", signed_in)) == 50
