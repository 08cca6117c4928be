"""``python -m app``: serve the DistilLab app."""

import os

# Before gradio is imported: it reads the flag at import time.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app.main import main  # noqa: E402

main()
