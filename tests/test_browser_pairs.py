"""Compare with a sentence pair, in Chromium: a pair run's disagreement row fills both
boxes, and the comparison shows the pair's second text beside the first."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import serve_app
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

LABELS = ["negative", "positive"]


def fabricate_pair_run(runs_dir: Path, model_dir: str) -> str:
    """A done run on sentence pairs: teacher and student folders and saved predictions."""
    from core.runs import create_run
    from core.scores import predictions_table

    run = create_run({"name": "pairs", "teacher": model_dir,
                      "dataset": {"name": "train.csv"}}, runs_dir)
    for role in ("teacher", "student"):
        shutil.copytree(model_dir, run.model_dir(role))
    pairs = [(f"premise number {i} about the film", f"hypothesis {i}: it was fine")
             for i in range(12)]
    labels = np.arange(12) % 2
    rng = np.random.default_rng(0)
    probabilities = {role: rng.dirichlet(np.ones(2), size=12) for role in ("teacher", "student")}
    run.write_predictions(predictions_table(pairs, labels, probabilities, LABELS))
    models = {role: {"accuracy": 0.5, "macro_f1": 0.5, "params": 1000, "size_mb": 1.0,
                     "latency_ms_p50": 1.0, "throughput_per_s": 100.0, "device": "cpu"}
              for role in probabilities}
    run.write_metrics({"models": models, "label_names": LABELS, "max_length": 32,
                       "text_columns": ["sentence1", "sentence2"],
                       "dataset": "train.csv: 40 train / 12 validation, 2 labels, sentence "
                                  "pairs (sentence1 + sentence2)"})
    run.set_status("done", stage="done")
    return run.id


@pytest.fixture(scope="module")
def page_and_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str
                 ) -> Iterator[tuple[object, str]]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    runs_dir = tmp_path_factory.mktemp("pairs_browser") / "runs"
    runs_dir.mkdir()
    run_id = fabricate_pair_run(runs_dir, tiny_bert_dir)
    with serve_app(runs_dir, with_queue=False) as url, \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url, wait_until="load")
        page.locator("#launch").wait_for()
        try:
            yield page, run_id
        finally:
            browser.close()


def test_compare_a_sentence_pair_in_the_browser(page_and_run, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page, run_id = page_and_run
    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#compare-models")).to_contain_text(f"run:{run_id}/teacher")

    # Typed: one pair, a line in each box.
    page.locator("#compare-texts textarea").fill("A man is playing a guitar.")
    page.locator("#compare-text-pairs textarea").fill("Someone plays an instrument.")
    page.locator("#compare-button").click()
    result = page.locator("#compare-result")
    expect(result).to_contain_text("second text")
    expect(result).to_contain_text("A man is playing a guitar.")
    expect(result).to_contain_text("Someone plays an instrument.")
    expect(result).to_contain_text(re.compile(r"(positive|negative) \(0\.\d\d\) · [\d.]+ ms"))

    # A half pair is refused with a message, the panels stay as they were.
    page.locator("#compare-text-pairs textarea").fill("one\ntwo")
    page.locator("#compare-button").click()
    expect(page.get_by_text("1 texts but 2 second texts")).to_be_visible()

    # The disagreement browser shows both texts; a click puts each in its box and compares.
    page.locator("#disagreement-mode label", has_text="all examples").click()
    expect(page.locator("#disagreement-summary")).to_contain_text("12 examples (all examples)")
    cell = page.locator('#disagreements [data-testid="cell-0-7"]')
    expect(cell).to_contain_text(" ‖ hypothesis")
    cell.click()
    expect(page.locator("#compare-texts textarea")).to_have_value(
        re.compile(r"^premise number \d+ about the film$"))
    expect(page.locator("#compare-text-pairs textarea")).to_have_value(
        re.compile(r"^hypothesis \d+: it was fine$"))
    expect(result).to_contain_text(re.compile(r"hypothesis \d+: it was fine"))
    page.screenshot(path=str(tmp_path / "compare_pairs.png"), full_page=True)
