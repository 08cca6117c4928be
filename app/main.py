"""Build and serve the DistilLab app: four tabs, the named API endpoints, the job queue.

``python -m app [--host H] [--port P] [--share] [--auth user:password] [--public]
[--runs-dir DIR]``; the environment gives the same: ``GRADIO_SERVER_NAME``,
``GRADIO_SERVER_PORT``, ``DISTILLAB_SHARE=1``, ``DISTILLAB_AUTH``, ``DISTILLAB_PUBLIC=1``,
``DISTILLAB_RUNS_DIR`` (flags win). On a Hugging Face Space it serves on 0.0.0.0:7860 with
runs on persistent storage, in public mode (see ``app.settings`` and docs/SECURITY.md).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from app.api import register_api
from app.cli import parse_args
from app.context import AppContext
from app.guard import FileReferenceGuard
from app.settings import ZERO_GPU_MESSAGE, on_zero_gpu, resolve_settings
from app.share import serve
from app.tabs.compare import build_compare_tab
from app.tabs.distil import build_distil_tab
from app.tabs.runs import build_runs_tab
from app.tabs.tradeoffs import build_tradeoffs_tab
from core.actions import Actions, Limits
from core.jobs import JobQueue
from core.runs import runs_root

GRADIO_CACHE_CLEANUP = (3600, 7200)  # (every s, older than s)
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def build_app(runs_dir: str | os.PathLike | None = None, public: bool = False,
              auth: bool = False, limits: Limits | None = None) -> gr.Blocks:
    """The app's Blocks over one runs folder (it starts no jobs; see :func:`main`).

    Args:
        runs_dir: the runs folder (default ``$DISTILLAB_RUNS_DIR`` or ``./runs``).
        public: public mode: every caller is a stranger (docs/SECURITY.md).
        auth: a ``--auth`` login guards the app (signed-in users are the owner).
        limits: the server's limits (default: the mode's, with ``DISTILLAB_LIMIT_*``).
    Returns:
        The ``gr.Blocks``, ready to ``launch()``.
    """
    root = runs_root(runs_dir).resolve()
    ctx = AppContext(Actions(root, limits or Limits.for_mode(public)), public=public, auth=auth)
    # Gradio's own cache (uploads as received, files served for download): every hour, drop
    # what is older than two (docs/SECURITY.md; core.cleanup keeps the runs folder's).
    with gr.Blocks(title="DistilLab", delete_cache=GRADIO_CACHE_CLEANUP) as demo:
        # First, so the endpoints get their plain names (UI events are named after their
        # functions too, and a later duplicate gets a suffix).
        register_api(ctx)
        where = ("Public mode: you see your own runs and the shared examples." if public
                 else f"Runs folder: `{root}`")
        gr.Markdown("# DistilLab\nDistilBERT-style knowledge distillation of text "
                    f"classifiers. {where}")
        if on_zero_gpu(os.environ):
            gr.Markdown(f"**ZeroGPU hardware.** {ZERO_GPU_MESSAGE}", elem_id="zero-gpu-note")
        # The browser's visitor token (local storage) is registered before the tabs load,
        # so a reload shows the same visitor's runs.
        token = gr.BrowserState(None, storage_key="distillab-visitor")
        ready = demo.load(ctx.register_browser, token, token, api_visibility="private",
                          concurrency_limit=None)
        with gr.Tabs():
            with gr.Tab("Distil", id="distil"):
                build_distil_tab(ready, ctx)
            with gr.Tab("Runs", id="runs") as runs_tab:
                build_runs_tab(ready, ctx, runs_tab)
            with gr.Tab("Compare", id="compare") as compare_tab:
                build_compare_tab(ready, ctx, compare_tab)
            with gr.Tab("Trade-offs", id="tradeoffs") as tradeoffs_tab:
                build_tradeoffs_tab(ready, ctx, tradeoffs_tab)
    return demo


def launch_options(limits: Limits | None = None) -> dict[str, object]:
    """Keyword arguments of ``launch()`` shared by ``main`` and the tests."""
    limits = limits or Limits.for_mode(public=False)
    # Bytes: Gradio refuses bigger uploads in the browser before they reach a callback.
    css, logo = ASSETS / "app.css", ASSETS / "logo.svg"
    # The assets sit beside app/ in a checkout or the Docker image; an install without them
    # serves unstyled rather than failing.
    return {"max_file_size": int(limits.max_upload_mb * 2**20),
            "css": css.read_text() if css.is_file() else None,
            "favicon_path": str(logo) if logo.is_file() else None,
            "footer_links": ["api", "gradio"],
            # Before Gradio reads a request: file references only to this app's uploads.
            "app_kwargs": {"middleware": [Middleware(FileReferenceGuard)]}}


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the app and a job queue that trains queued runs one at a time.

    Args:
        argv: the command line without the program name (default ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        settings = resolve_settings(os.environ, host=args.host, port=args.port,
                                    share=args.share, auth=args.auth, runs_dir=args.runs_dir,
                                    public=args.public)
        limits = Limits.for_mode(settings.public)
    except ValueError as error:
        sys.exit(f"python -m app: {error}")
    root = Path(runs_root(settings.runs_dir)).resolve()
    # On ZeroGPU nothing trains (see app.settings), so no worker may pick up queued runs.
    queue = None if settings.zero_gpu else JobQueue(root).start()
    demo = build_app(root, public=settings.public, auth=settings.auth is not None,
                     limits=limits)
    try:
        serve(demo, settings, **launch_options(limits))
    finally:
        if queue is not None:
            queue.stop()
