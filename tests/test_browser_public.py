"""Public mode in a real browser: a visitor's runs survive a reload; another browser sees none.

Headless Chromium (Debian's, driven by Playwright). The app serves without a job queue, so
the launched run stays queued and nothing trains.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import serve_app
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
RUN_STATUS = re.compile(r"Run (\S+): queued")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve_app(tmp_path_factory.mktemp("public-browser") / "runs", with_queue=False,
                   public=True) as url, sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium, url
        finally:
            chromium.close()


def open_app(context: object, url: str) -> object:
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="load")
    page.locator("#launch").wait_for()
    return page


def test_a_visitors_run_survives_a_reload_and_stays_private(browser: tuple[object, str]
                                                             ) -> None:
    chromium, url = browser
    alice = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = open_app(alice, url)
    page.locator("#run-status").get_by_text("No run yet").wait_for()
    assert "Runs folder" not in page.content()  # no server path on a public page
    page.locator("#launch-default").click()
    status = page.locator("#run-status").get_by_text(RUN_STATUS)
    status.wait_for()
    run_id = RUN_STATUS.search(status.inner_text()).group(1)

    page.reload(wait_until="load")
    page.locator("#run-status").get_by_text(f"Run {run_id}: queued").wait_for()

    bob = chromium.new_context(viewport={"width": 1400, "height": 1000})
    other = open_app(bob, url)
    other.locator("#run-status").get_by_text("No run yet").wait_for()
    other.locator("#watch-run").click()
    assert run_id not in other.content()
    alice.close()
    bob.close()
