"""``python -m conversenet``: the same as the ``conversenet`` command."""

import sys

from .cli import main

sys.exit(main())
