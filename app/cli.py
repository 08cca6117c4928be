"""``python -m app``'s command line, kept free of heavy imports.

``python -m app`` reads its arguments before gradio and the engine (torch) load, which takes
seconds, so ``--help`` and a mistyped flag answer at once (see ``app/__main__.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``python -m app``'s command line (every flag also has an environment variable)."""
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve DistilLab's app.")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; "
                        "GRADIO_SERVER_NAME; 0.0.0.0 on a Space)")
    parser.add_argument("--port", type=int, help="port (default 7860 or the next free one; "
                        "GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also serve at a temporary "
                        "public gradio.live link (DISTILLAB_SHARE=1)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="ask for this login "
                        "(DISTILLAB_AUTH); use it with --share")
    parser.add_argument("--public", action="store_true", default=None,
                        help="public mode: visitors are strangers who see only their own runs, "
                        "give no server paths and use no server token (DISTILLAB_PUBLIC=1; on "
                        "by default on a Space and with --share without --auth)")
    parser.add_argument("--no-public", dest="public", action="store_false",
                        help="turn public mode off (only together with --auth)")
    parser.add_argument("--runs-dir", help="the runs folder (DISTILLAB_RUNS_DIR; default ./runs, "
                        "on a Space /data/distillab-runs or ~/distillab-runs)")
    return parser.parse_args(argv)
