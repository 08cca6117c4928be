"""Take the README's screenshots of the app on a real runs folder.

Usage: ``python scripts/screenshots.py RUNS_DIR [OUT_DIR]`` (OUT_DIR defaults to
assets/screenshots). RUNS_DIR is a folder a ``distillab run`` wrote, such as the bare run on the
bundled BBC News default; the app is served on it (no job queue: nothing is trained here) and
headless Debian Chromium, driven by Playwright, visits the four tabs.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HEADLINES = [
    "Shares in the carmaker rose sharply after it beat profit forecasts for the third quarter.",
    "The striker scored twice as the champions came from behind to win the derby.",
    "Ministers will publish the bill on Tuesday ahead of a vote in the Commons next month.",
    "The band's new album goes straight to number one in the charts.",
    "A new handset lets users stream television over mobile broadband networks.",
    "The film's lead actor said the studio had cut the budget before filming began.",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def take(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Serve the app on ``runs_dir`` and save one full-page screenshot per tab."""
    from playwright.sync_api import expect, sync_playwright

    from app.main import build_app, launch_options

    out_dir.mkdir(parents=True, exist_ok=True)
    demo = build_app(runs_dir)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=_free_port(),
                            prevent_thread_lock=True, quiet=True, **launch_options())
    saved: list[Path] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url, wait_until="load")
            page.locator("#launch").wait_for()

            def shot(name: str) -> None:
                page.wait_for_timeout(1_000)  # let plots finish drawing
                path = out_dir / name
                page.screenshot(path=str(path), full_page=True)
                saved.append(path)

            shot("distil.png")

            page.get_by_role("tab", name="Runs").click()
            expect(page.locator("#run-curves .vega-embed")).to_be_visible()
            shot("runs.png")

            page.get_by_role("tab", name="Compare").click()
            expect(page.locator("#compare-models")).to_contain_text("/student")
            # The tab's own loading (choices, then the disagreement browser) ends first.
            expect(page.locator("#disagreement-summary")).to_contain_text("examples")
            page.locator("#compare-texts textarea").fill("\n".join(HEADLINES))
            page.locator("#compare-button").click()
            # Loading both models and timing each text (warmed, five repeats) takes seconds.
            expect(page.locator("#compare-summary")).to_contain_text("models agree",
                                                                     timeout=60_000)
            expect(page.locator("#disagreements")).to_contain_text("A says")
            shot("compare.png")

            page.get_by_role("tab", name="Trade-offs").click()
            expect(page.locator("#plot-latency .vega-embed")).to_be_visible()
            shot("tradeoffs.png")
            browser.close()
    finally:
        demo.close()
    return saved


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    runs_dir = Path(argv[0]).resolve()
    if not runs_dir.is_dir():
        print(f"no runs folder at {runs_dir}", file=sys.stderr)
        return 2
    out_dir = Path(argv[1] if len(argv) > 1 else "assets/screenshots")
    for path in take(runs_dir, out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
