"""The ``conversenet`` command: one sub-module per sub-command.

Each sub-module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returning the exit code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..runtime import reuse_freed_memory

SUBCOMMANDS: tuple[str, ...] = ("eval", "reproduce", "restore", "models", "demo", "train")
SUBCOMMANDS += ("export", "serve")  # deployment: ONNX export, browser app


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conversenet",
        description="Image restoration with reverse convolution (Converse2D).",
    )
    parser.add_argument("--version", action="version", version=f"conversenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
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
