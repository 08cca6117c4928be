"""The Runs tab's buttons in Chromium: results download, delete (kept, then confirmed), and a
push without a run. No training: a finished run is written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import serve_app
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_browser_tables import fabricate_finished_run, news_model_dir  # noqa: F401

pytestmark = pytest.mark.browser


def test_runs_tab_downloads_results_and_deletes_a_run_only_once_confirmed(
        tmp_path: Path, news_model_dir: str) -> None:  # noqa: F811
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    done = fabricate_finished_run(runs_dir, news_model_dir, "news", "cpu")
    with serve_app(runs_dir, with_queue=False) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Runs").click()
        expect(page.locator("#run-details")).to_contain_text(f"{done} · done")
        page.get_by_role("button", name="↓ Results as CSV").click()
        expect(page.locator("a[href$='-results.csv']").first).to_be_attached()
        expect(page.locator("a[href$='-predictions.csv']").first).to_be_attached()
        confirm = page.get_by_role("button", name="Yes, delete it")
        page.get_by_role("button", name="Delete run").click()
        expect(page.get_by_text(f"Delete run {done} and all its models?")).to_be_visible()
        page.get_by_role("button", name="Keep it").click()
        expect(confirm).to_be_hidden()
        assert (runs_dir / done).is_dir()
        page.get_by_role("button", name="Delete run").click()
        confirm.click()
        expect(page.locator("#run-details")).to_contain_text("No runs yet.")
        expect(confirm).to_be_hidden()
        assert not (runs_dir / done).exists()
        page.get_by_text("Push the model to the Hugging Face Hub").click()
        page.locator("#export-push").click()
        expect(page.get_by_text("pick a run and a model").first).to_be_visible()
        browser.close()
