"""Hugging Face Space entry point (``app_file`` in README.md's front matter): the Space runs
``python space_app.py``, which serves ``python -m app`` on 0.0.0.0:7860."""

import contextlib
import os

# Before gradio is imported: it reads the flag at import time.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# ZeroGPU wants `spaces` imported before torch touches CUDA; off Spaces it is absent.
with contextlib.suppress(ImportError):
    import spaces  # noqa: F401

from app.main import main  # noqa: E402

if __name__ == "__main__":
    main()
