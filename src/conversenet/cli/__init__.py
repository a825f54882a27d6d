"""The ``conversenet`` command: :mod:`.parsers` holds every command's options; one module
per command runs it (``restore`` holds the three restoration commands ``denoise``, ``sr``
and ``deblur``), imported only then.

Each command module exposes ``run(args)``, called with the parsed namespace and returning
the exit code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from ..runtime import reuse_freed_memory
from .parsers import build_parser

#: The exit code of a command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``conversenet`` with ``argv`` (default: the process's arguments); the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "module", None):
            parser.print_help()
            return 2
        reuse_freed_memory()
        # the command's module, and with it PyTorch and the models, loads only now
        command = importlib.import_module(f"{__name__}.{args.module}")
        return int(command.run(args) or 0)
    except KeyboardInterrupt:  # commands that write files clean up and return 130 themselves
        print("conversenet: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
