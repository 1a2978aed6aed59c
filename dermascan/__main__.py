"""Entry point for ``python -m dermascan``."""

import sys

from .cli import main

sys.exit(main())
