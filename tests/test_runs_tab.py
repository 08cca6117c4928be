"""app.tabs.runs.RunsController: the Runs tab's callbacks, called directly on a real run."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from app.context import AppContext
from app.helpers import user_errors
from app.tabs.runs import RunsController
from core.access import AccessError, Caller, set_owner
from core.actions import Actions
from core.runs import open_run


def request(session: str = "page") -> gr.Request:
    """What the controller reads of a request: its session (a visitor's identity)."""
    return SimpleNamespace(session_hash=session, username=None)  # type: ignore[return-value]


@pytest.fixture()
def runs(tmp_path: Path, tiny_run: tuple[Path, str]) -> tuple[Path, str]:
    """A copy of the tiny run in a runs folder of its own (the tests delete and re-time)."""
    source_dir, run_id = tiny_run
    shutil.copytree(source_dir / run_id, tmp_path / "runs" / run_id)
    return tmp_path / "runs", run_id


def controller(runs_dir: Path, public: bool = False) -> RunsController:
    return RunsController(AppContext(Actions(runs_dir), public=public))


def test_refresh_lists_the_run_and_picks_it(runs: tuple[Path, str]) -> None:
    runs_dir, run_id = runs
    board, listing, picker = controller(runs_dir).refresh(None, request())
    assert listing["run"].tolist() == [run_id] and listing["state"].tolist() == ["done"]
    assert {"teacher acc", "student acc"} <= set(listing.columns)
    assert set(board["role"]) == {"teacher", "student", "student_int8"}
    assert set(board["run"]) == {run_id}
    assert board["accuracy"].notna().all()
    assert picker["value"] == run_id and [v for _, v in picker["choices"]] == [run_id]
    # A picked run that is gone falls back to the newest finished one.
    assert controller(runs_dir).refresh("20990101-000000-dead", request())[2]["value"] == run_id


def test_show_gives_the_runs_details_and_falls_back_to_a_scored_role(
        runs: tuple[Path, str]) -> None:
    runs_dir, run_id = runs
    ctl = controller(runs_dir)
    text, curves, spec, confusion, per_class, role = ctl.show(run_id, "baseline", request())
    assert text.startswith(f"**{run_id}** · done · models: teacher, student, student_int8 "
                           "(int8 weights")
    assert "read-only" not in text and "Error" not in text
    assert curves is not None and spec["name"] == "tiny"
    labels = open_run(run_id, runs_dir).read_metrics().label_names
    assert list(confusion.columns) == ["true ↓ predicted →", *labels]
    assert per_class["label"].tolist() == labels
    assert role == {"__type__": "update", "choices": ["teacher", "student", "student_int8"],
                    "value": "student"}
    assert ctl.show(None, "student", request())[0] == "No runs yet."


def test_downloads_hold_the_results_and_the_model(runs: tuple[Path, str]) -> None:
    runs_dir, run_id = runs
    ctl = controller(runs_dir)
    results = ctl.download_results(run_id, request())
    assert results["visible"] and [Path(f).name for f in results["value"]] == [
        f"{run_id}-results.csv", f"{run_id}-predictions.csv"]
    assert "teacher" in Path(results["value"][0]).read_text()
    zipped = ctl.download_model(run_id, "student", request())
    assert zipped["visible"] and Path(zipped["value"][0]).stat().st_size > 0
    with pytest.raises(gr.Error, match="pick a run and a model"):
        ctl.download_model(run_id, None, request())


def test_a_visitor_cannot_see_delete_or_retime_another_visitors_run(
        runs: tuple[Path, str]) -> None:
    runs_dir, run_id = runs
    set_owner(open_run(run_id, runs_dir), Caller.visitor("alice"))
    ctl = controller(runs_dir, public=True)
    _, listing, picker = ctl.refresh(None, request("bob"))
    assert len(listing) == 0 and picker["value"] is None
    for act in (lambda: ctl.show(run_id, "student", request("bob")),
                lambda: ctl.confirm_delete(run_id, request("bob")),
                lambda: ctl.retime(run_id, request("bob")),
                lambda: ctl.download_model(run_id, "student", request("bob"))):
        with pytest.raises(AccessError, match="no run .* of yours"):
            act()
    # As the tab wires it: a toast that says the same.
    with pytest.raises(gr.Error, match="of yours"):
        user_errors(public=True)(ctl.confirm_delete)(run_id, request("bob"))
    assert (runs_dir / run_id).is_dir()
    # Its owner sees it as theirs, and may delete it.
    assert "read-only" not in ctl.show(run_id, "student", request("alice"))[0]
    assert ctl.ask_delete(run_id) == ({"__type__": "update", "visible": True},
                                      f"Delete run **{run_id}** and all its models?")
    row, _, listing, picker = ctl.confirm_delete(run_id, request("alice"))
    assert row == {"__type__": "update", "visible": False} == ctl.keep()
    assert not (runs_dir / run_id).exists() and len(listing) == 0 and picker["value"] is None


@pytest.mark.slow
def test_retime_appends_a_timing_and_the_leaderboard_shows_its_spread(
        runs: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLAB_TIMING_PROCESS", "same")  # no worker process to start
    runs_dir, run_id = runs
    ctl = controller(runs_dir)
    # The shared tiny run may have been re-timed by another test before it was copied here.
    before = len(open_run(run_id, runs_dir).timings())
    board, _, picker = ctl.retime(run_id, request())
    timings = open_run(run_id, runs_dir).timings()
    assert len(timings) == before + 1 and set(timings[-1]["models"]) >= {"teacher", "student"}
    student = board.set_index("role").loc["student", "speed-up"]
    assert "±" in student and picker["value"] == run_id
    ctl.retime(run_id, request())
    assert len(open_run(run_id, runs_dir).timings()) == before + 2
    with pytest.raises(gr.Error, match="pick a run to re-time"):
        ctl.retime(None, request())


def test_push_needs_a_model_and_a_public_visitor_needs_a_token(
        runs: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    runs_dir, run_id = runs
    monkeypatch.delenv("DISTILLAB_ALLOW_PUSH", raising=False)
    with pytest.raises(gr.Error, match="pick a run and a model"):
        controller(runs_dir).push_model(None, "student", "me/x", "", True, request())
    set_owner(open_run(run_id, runs_dir), Caller.visitor("alice"))
    with pytest.raises(AccessError, match="paste a Hugging Face write token"):
        controller(runs_dir, public=True).push_model(run_id, "student", "me/x", "", True,
                                                     request("alice"))
