"""``python -m app``: serve the DistilLab app."""

import os

from app.cli import parse_args

# --help and a bad argument end here, before gradio and torch load (seconds); main() reads
# the same arguments again.
parse_args()

# Before gradio is imported: it reads the flag at import time.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app.main import main  # noqa: E402

main()
