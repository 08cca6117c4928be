"""Serve the app, with a public share link when asked for and one can be made.

Gradio makes share links through its share server (``api.gradio.app``, or
``GRADIO_SHARE_SERVER_ADDRESS``), a tunnel binary downloaded on first use, and up to 30 s
timeouts on each step. Offline or behind a firewall that costs time and ends in several lines
of advice; here a quick probe decides first, and a link that cannot be made is reported in one
line while the app keeps serving locally.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import gradio as gr

from app.settings import ServeSettings

SHARE_PROBE_TIMEOUT_S = 5.0
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
SHARE_HINT = "To create a public link, run with --share (or DISTILLAB_SHARE=1)."


def share_server_address(env: Mapping[str, str]) -> tuple[str, int]:
    """(host, port) of the server Gradio asks for a share link."""
    from gradio.networking import GRADIO_API_SERVER

    custom = env.get("GRADIO_SHARE_SERVER_ADDRESS")
    if custom:
        host, _, port = custom.rpartition(":")
        return host, int(port)
    url = urlparse(GRADIO_API_SERVER)
    return url.hostname or "api.gradio.app", url.port or 443


def share_server_problem(env: Mapping[str, str] | None = None,
                         timeout_s: float = SHARE_PROBE_TIMEOUT_S) -> str | None:
    """Why no share link can be made from here, or None when the share server answers.

    Args:
        env: the environment (default ``os.environ``): a custom share server, proxies.
        timeout_s: the longest the probe (DNS and TCP connect) may take.
    Returns:
        A short reason, e.g. ``"cannot reach api.gradio.app:443 (gaierror: ...)"``, or None.
    """
    env = os.environ if env is None else env
    if any(env.get(name) for name in PROXY_VARIABLES):
        return None  # a direct probe proves nothing behind a proxy; let Gradio try
    host, port = share_server_address(env)
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(error)

    # A daemon thread: a DNS lookup that never returns cannot hold up the app or its exit.
    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout_s)
    if not outcome:
        return f"no answer from {host}:{port} within {timeout_s:g} s"
    error = outcome[0]
    return None if error is None else f"cannot reach {host}:{port} ({type(error).__name__}: " \
                                      f"{error})"


def serve(demo: gr.Blocks, settings: ServeSettings, block: bool = True,
          env: Mapping[str, str] | None = None, **launch_options: Any) -> None:
    """Launch ``demo`` as ``settings`` say; a share link that cannot be made is one line.

    Without a share link Gradio would end its lines with "set `share=True` in `launch()`",
    advice for its Python API: Gradio stays quiet then and this prints the address and the
    app's own switch (``--share``) instead.

    Args:
        demo: the app.
        settings: address, share, auth (see :func:`app.settings.resolve_settings`).
        block: wait until the server stops (False: return once it serves, for tests).
        env: the environment for the share probe (default ``os.environ``).
        launch_options: more ``launch()`` keyword arguments (``quiet=True``: only notices).
    """
    quiet = bool(launch_options.pop("quiet", False))
    share, notice = settings.share, None
    if share and settings.space_id:
        # Gradio refuses share links on Spaces; the Space's own URL is the public one.
        print("Share link not needed: this Space is already served at its own URL.", flush=True)
        share = False
    elif share:
        problem = share_server_problem(env)
        if problem:
            share = False
            notice = f"Public share link not created: {problem}."
    demo.launch(server_name=settings.host, server_port=settings.port, share=share,
                auth=settings.auth, prevent_thread_lock=True, quiet=quiet or not share,
                **launch_options)
    if share and not demo.share_url:
        notice = ("Public share link not created: Gradio's share tunnel failed "
                  "(its message is above).")
    if notice:
        print(f"{notice} Serving locally only at {demo.local_url}", flush=True)
    elif not share and not quiet:
        print(f"* Running on local URL:  {demo.local_url}", flush=True)
        if not settings.space_id:
            print(f"* {SHARE_HINT}", flush=True)
    elif share and settings.auth is None:
        print("Anyone with the share link can use this app: public mode is on (each visitor "
              "sees only their own runs; see docs/SECURITY.md).", flush=True)
    if block:
        demo.block_thread()
