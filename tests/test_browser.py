"""The main flow in a real browser: launch a small job, watch it finish, compare, plot.

Headless Chromium (Debian's, driven by Playwright; never ``playwright install``). Saves a
screenshot of each tab into the test's temporary folder, and also into the folder named by
``DISTILLAB_SCREENSHOTS_DIR`` when set, so a plain test run leaves the checkout unchanged
(the README's pictures come from ``scripts/screenshots.py`` on a real run)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import serve_app, write_sentiment_csvs

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
JOB_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_app(tmp_path_factory.mktemp("browser") / "runs") as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url: str) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(60_000)
        # Not "networkidle": Gradio keeps a heartbeat connection open.
        tab.goto(app_url, wait_until="load")
        tab.locator("#launch").wait_for()
        try:
            yield tab
        finally:
            browser.close()


def screenshot(page: object, name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("DISTILLAB_SCREENSHOTS_DIR"):
        folder = Path(os.environ["DISTILLAB_SCREENSHOTS_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)


def fill_number(page: object, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def test_a_person_distils_compares_and_reads_the_plots(page: object, tmp_path: Path,
                                                       tiny_bert_dir: str) -> None:
    from playwright.sync_api import expect

    train, dev = write_sentiment_csvs(tmp_path)

    # Distil: the tiny teacher, uploaded data, small settings.
    teacher = page.locator("#teacher input")
    teacher.click()
    teacher.fill(tiny_bert_dir)
    teacher.press("Enter")
    page.locator("#upload-train input[type=file]").set_input_files(train)
    expect(page.locator("#dataset textarea, #dataset input").first).to_have_value(
        re.compile(r"^upload:.*train\.csv$"))
    page.locator("#upload-validation input[type=file]").set_input_files(dev)
    expect(page.locator("#validation textarea, #validation input").first).to_have_value(
        re.compile(r"^upload:.*dev\.csv$"))
    page.locator("#student-size label", has_text="custom layers").click()
    page.locator("#student-layers textarea, #student-layers input").first.fill("0,2")
    for elem_id, value in (("epochs", 1), ("teacher-epochs", 1), ("batch-size", 16),
                           ("max-length", 32)):
        fill_number(page, elem_id, value)
    page.locator("#baseline input[type=checkbox]").uncheck()
    page.locator("#run-name textarea, #run-name input").first.fill("browser")
    expect(page.locator("#upload-note")).to_contain_text("will be the validation set")
    page.locator("#launch").click()

    status = page.locator("#run-status")
    expect(status).to_contain_text("done", timeout=JOB_TIMEOUT_MS)
    run_id = re.search(r"Run (\S+): done", status.inner_text()).group(1)
    expect(page.locator("#loss-plot .vega-embed")).to_be_visible()
    screenshot(page, "distil.png", tmp_path)

    # Runs: the leaderboard has the new run's models.
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#leaderboard")).to_contain_text(run_id)
    expect(page.locator("#leaderboard")).to_contain_text("student")
    expect(page.locator("#run-details")).to_contain_text(f"{run_id} · done")
    expect(page.locator("#run-curves .vega-embed")).to_be_visible()
    screenshot(page, "runs.png", tmp_path)

    # Compare: the run's teacher and student are preselected; type a sentence.
    page.get_by_role("tab", name="Compare").click()
    models = page.locator("#compare-models")
    expect(models).to_contain_text(f"run:{run_id}/teacher")
    expect(models).to_contain_text(f"run:{run_id}/student")
    page.locator("#compare-texts textarea").fill("the film was wonderful and the cast superb")
    page.locator("#compare-button").click()
    result = page.locator("#compare-result")
    expect(result).to_contain_text("the film was wonderful")
    expect(result).to_contain_text("teacher")  # one run's models: the columns are roles
    expect(result).to_contain_text("student")
    expect(result).to_contain_text(re.compile(r"(positive|negative) \(0\.\d\d\) · [\d.]+ ms"))
    expect(page.locator("#compare-summary")).to_contain_text("models agree")
    expect(page.locator("#compare-summary")).to_contain_text(f"Models of run {run_id}")
    expect(page.locator("#disagreements")).to_be_visible()
    screenshot(page, "compare.png", tmp_path)

    # Disagreement browser: list every example, click one, and it is compared in full.
    page.locator("#disagreement-mode label", has_text="all examples").click()
    expect(page.locator("#disagreement-summary")).to_contain_text("examples (all examples)")
    first_text = page.locator('#disagreements [data-testid="cell-0-7"]')  # row 0, the text
    clicked = first_text.inner_text().strip()
    first_text.click()
    expect(page.locator("#compare-texts textarea")).to_have_value(clicked)
    expect(result).to_contain_text(clicked)

    # Trade-offs: the plot is drawn and the table under it lists the models.
    page.get_by_role("tab", name="Trade-offs").click()
    expect(page.locator("#plot-latency .vega-embed")).to_be_visible()
    expect(page.locator("#table-latency")).to_contain_text("student")  # one run: roles
    expect(page.locator("#tradeoffs-summary")).to_contain_text(re.compile(r"models? from 1 run;"))
    screenshot(page, "tradeoffs.png", tmp_path)
