"""The ``conversenet`` command: one sub-module per command (``restore`` holds the three
restoration commands ``denoise``, ``sr`` and ``deblur``).

Each sub-module exposes ``register(subparsers)``, which adds its parser(s) and sets
``func`` (called with the parsed namespace, returning the exit code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..runtime import reuse_freed_memory
from . import demo, export, models, reproduce, restore, serve, train
from . import eval as evaluate

#: The modules that register the sub-commands, in the order of ``conversenet --help``.
COMMAND_MODULES = (restore, evaluate, reproduce, models, demo, train, export, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conversenet",
        description="Image restoration with reverse convolution (Converse2D).",
    )
    parser.add_argument("-V", "--version", action="version", version=f"conversenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    reuse_freed_memory()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
