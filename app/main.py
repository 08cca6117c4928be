"""Build and serve the DistilLab app: four tabs, the named API endpoints, the job queue.

``python -m app`` honours ``GRADIO_SERVER_NAME``, ``GRADIO_SERVER_PORT`` (Gradio reads them)
and ``DISTILLAB_RUNS_DIR``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr

from app.api import register_api
from app.forms import max_upload_mb
from app.tabs.compare import build_compare_tab
from app.tabs.distil import build_distil_tab
from app.tabs.runs import build_runs_tab
from app.tabs.tradeoffs import build_tradeoffs_tab
from core.jobs import JobQueue
from core.runs import runs_root

CSS = """
.dl-progress { font-size: 0.95em; }
.dl-chip { padding: 2px 8px; border-radius: 10px; border: 1px solid #ccc; }
.dl-done { background: #d1fae5; border-color: #10b981; }
.dl-now { background: #fef3c7; border-color: #f59e0b; font-weight: 600; }
.dl-todo { color: #888; }
.dl-small { font-size: 0.85em; color: #666; }
"""


def build_app(runs_dir: str | os.PathLike | None = None) -> gr.Blocks:
    """The app's Blocks over one runs folder (it starts no jobs; see :func:`main`).

    Args:
        runs_dir: the runs folder (default ``$DISTILLAB_RUNS_DIR`` or ``./runs``).
    Returns:
        The ``gr.Blocks``, ready to ``launch()``.
    """
    root = runs_root(runs_dir).resolve()
    with gr.Blocks(title="DistilLab") as demo:
        # First, so the endpoints get their plain names (UI events are named after their
        # functions too, and a later duplicate gets a suffix).
        register_api(root)
        gr.Markdown("# DistilLab\nDistilBERT-style knowledge distillation of text "
                    f"classifiers. Runs folder: `{root}`")
        with gr.Tabs():
            with gr.Tab("Distil", id="distil"):
                build_distil_tab(demo, root)
            with gr.Tab("Runs", id="runs") as runs_tab:
                build_runs_tab(demo, root, runs_tab)
            with gr.Tab("Compare", id="compare") as compare_tab:
                build_compare_tab(demo, root, compare_tab)
            with gr.Tab("Trade-offs", id="tradeoffs") as tradeoffs_tab:
                build_tradeoffs_tab(demo, root, tradeoffs_tab)
    return demo


def launch_options() -> dict[str, object]:
    """Keyword arguments of ``launch()`` shared by ``main`` and the tests."""
    # Bytes: Gradio refuses bigger uploads in the browser before they reach a callback.
    return {"max_file_size": int(max_upload_mb() * 2**20), "css": CSS,
            "footer_links": ["api", "gradio"]}


def main() -> None:
    """Serve the app and a job queue that trains queued runs one at a time."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    root = Path(runs_root()).resolve()
    queue = JobQueue(root).start()
    demo = build_app(root)
    try:
        # Gradio reads GRADIO_SERVER_NAME and GRADIO_SERVER_PORT itself.
        demo.launch(**launch_options())
    finally:
        queue.stop()
