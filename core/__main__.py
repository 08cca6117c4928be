"""``python -m core`` is the ``distillab`` command."""

import sys

from core.cli import main

sys.exit(main())
