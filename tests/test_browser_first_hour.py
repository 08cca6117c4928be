"""The first hour in the browser: what a new user trips over, in headless Chromium.

The app serves without a job queue, so launched runs stay queued and nothing trains; the
finished and failed runs the results card and Edit-and-relaunch need are written by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import serve_app
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_public import fake_finished_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str
        ) -> Iterator[dict]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    runs_dir = tmp_path_factory.mktemp("first-hour") / "runs"
    runs_dir.mkdir()
    with serve_app(runs_dir, with_queue=False) as url, \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield {"browser": browser, "url": url, "runs_dir": runs_dir,
                   "model": tiny_bert_dir}
        finally:
            browser.close()


def open_page(app: dict) -> object:
    page = app["browser"].new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(app["url"], wait_until="load")
    page.locator("#launch").wait_for()
    page.locator("#run-status").get_by_text("Run").or_(
        page.locator("#run-status").get_by_text("No run yet")).first.wait_for()
    return page


def run_ids(runs_dir: Path) -> set[str]:
    return {p.name for p in runs_dir.iterdir() if (p / "spec.json").exists()}


def test_a_rejected_upload_never_queues_a_job_and_its_error_stays(app: dict,
                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = open_page(app)
    before = run_ids(app["runs_dir"])
    bad = tmp_path / "no_labels.csv"
    bad.write_text("text,score_note\n" + "".join(f"row {i},x\n" for i in range(20)))
    page.locator("#upload-train input[type=file]").set_input_files(str(bad))
    note = page.locator("#upload-note")
    expect(note).to_contain_text("no_labels.csv was not accepted")
    expect(page.locator("#dataset textarea, #dataset input").first).to_have_value("")
    page.locator("#launch").click()
    error = page.locator("#action-error")
    expect(error).to_contain_text("Dataset is empty")
    # The toast goes (closed here rather than waited out); the message where it happened stays.
    toast = page.locator(".toast-body")
    expect(toast.first).to_be_visible()
    for close in toast.locator(".toast-close").all():
        close.click()
    expect(toast).to_have_count(0)
    expect(error).to_contain_text("Dataset is empty")
    expect(note).to_contain_text("was not accepted")
    assert run_ids(app["runs_dir"]) == before
    page.close()


def test_launch_folds_the_form_brings_progress_into_view_and_queues_one_job_per_click(
        app: dict) -> None:
    from playwright.sync_api import expect

    page = open_page(app)
    before = run_ids(app["runs_dir"])
    page.locator("#launch-default").dblclick()
    expect(page.locator("#run-status")).to_contain_text("queued")
    page.wait_for_timeout(1500)  # the smooth scroll
    heading = page.locator("#progress-heading").bounding_box()
    assert heading is not None and 0 <= heading["y"] < 900, heading
    expect(page.locator("#setup #launch")).to_be_hidden()  # the form folded away
    assert len(run_ids(app["runs_dir"]) - before) == 1
    page.close()


def test_a_degenerate_finished_run_shows_its_results_card_with_warnings(app: dict) -> None:
    import json

    from playwright.sync_api import expect

    from core.runs import Run

    run_id = fake_finished_run(app["runs_dir"], app["model"], "degenerate")
    run = Run(app["runs_dir"] / run_id)
    metrics = run.metrics
    metrics["models"] = {
        "teacher": {"accuracy": 0.55, "macro_f1": 0.35, "latency_ms_p50": 10.0,
                    "predicted_classes": 1, "device": "cpu", "precision": "fp32"},
        "student": {"accuracy": 0.545, "macro_f1": 0.35, "latency_ms_p50": 5.0,
                    "predicted_classes": 1, "machine_busy": True},
        "baseline": {"accuracy": 0.545, "macro_f1": 0.35, "latency_ms_p50": 5.0,
                     "predicted_classes": 1}}
    (run.path / "metrics.json").write_text(json.dumps(metrics))
    page = open_page(app)
    picker = page.locator("#watch-run input")
    picker.click()
    picker.fill(run_id)
    page.get_by_role("option", name=run_id).first.click()
    card = page.locator("#results-card")
    expect(card).to_contain_text("Results")
    expect(card).to_contain_text("2.00x")  # the student's speed-up
    expect(card).to_contain_text("predicts one class")
    expect(card).to_contain_text("no better than")
    expect(card).to_contain_text("busy machine")
    page.close()


def test_a_failed_run_offers_edit_and_relaunch_instead_of_resume(app: dict) -> None:
    from playwright.sync_api import expect

    from core.runs import create_run

    run = create_run({"name": "bad-teacher", "teacher": "no-such/teacher",
                      "train": {"epochs": 3}}, app["runs_dir"])
    run.set_status("failed", error="ModelError: no-such/teacher: not found on the Hub")
    page = open_page(app)
    picker = page.locator("#watch-run input")
    picker.click()
    picker.fill(run.id)
    page.get_by_role("option", name=run.id).first.click()
    expect(page.locator("#run-status")).to_contain_text("Edit and relaunch")
    expect(page.locator("#resume")).to_be_hidden()
    page.locator("#edit-relaunch").click()
    expect(page.locator("#run-name textarea, #run-name input").first).to_have_value(
        "bad-teacher")
    expect(page.locator("#teacher input")).to_have_value("no-such/teacher")
    expect(page.locator("#epochs input[type=number]")).to_have_value("3")
    expect(page.locator("#action-error")).to_contain_text("are in the form")
    page.close()


def test_the_example_files_fill_the_form_with_what_will_run(app: dict) -> None:
    import re

    from playwright.sync_api import expect

    page = open_page(app)
    page.locator("#use-examples").click()
    expect(page.locator("#upload-note")).to_contain_text(
        re.compile(r"example files will be used: reviews_train\.csv \+ reviews_dev\.csv: "
                   r"240 train / 60 validation, 2 labels"))
    expect(page.locator("#dataset textarea, #dataset input").first).to_have_value(
        re.compile(r"^upload:.*reviews_train\.csv$"))
    page.close()


def test_the_job_choice_queues_a_general_distillation_with_the_form_s_settings(
        app: dict) -> None:
    import json

    from playwright.sync_api import expect

    page = open_page(app)
    before = run_ids(app["runs_dir"])
    page.locator("#job-kind label", has_text="general distillation").click()
    teacher = page.locator("#teacher input")
    teacher.click()
    teacher.fill(app["model"])
    teacher.press("Enter")
    page.locator("#student-size label", has_text="custom layers").click()
    page.locator("#student-layers textarea, #student-layers input").first.fill("0,2")
    page.locator("#run-name textarea, #run-name input").first.fill("general-from-ui")
    page.locator("#launch").click()
    # The status may already read "queued" for an earlier test's run: wait for the folder.
    deadline = time.monotonic() + 60
    while not run_ids(app["runs_dir"]) - before and time.monotonic() < deadline:
        time.sleep(0.25)
    new = run_ids(app["runs_dir"]) - before
    assert len(new) == 1
    expect(page.locator("#run-status")).to_contain_text("queued")
    spec = json.loads((app["runs_dir"] / new.pop() / "spec.json").read_text())
    assert spec["kind"] == "general" and spec["name"] == "general-from-ui"
    assert spec["teacher"] == app["model"] and list(spec["student"]["layers"]) == [0, 2]
    page.close()
