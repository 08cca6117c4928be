"""``python -m core.cli`` is the ``distillab`` command too, like ``python -m core``."""

import sys

from core.cli import main

sys.exit(main())
