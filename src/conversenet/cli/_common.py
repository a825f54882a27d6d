"""Helpers shared by the sub-commands: common options, device, threads, error reporting."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import torch
import yaml

__all__ = [
    "add_command",
    "add_common_options",
    "add_model_options",
    "add_tile_options",
    "fail",
    "model_option",
    "parse_tile",
    "select_device",
    "set_threads",
]


def add_command(subparsers, name: str, doc: str) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` described by its module docstring ``doc``: the summary
    line (after "``conversenet NAME``:") is its one-line help, the next paragraph its
    ``--help`` description."""
    summary, description = (part.strip() for part in doc.split("\n\n")[:2])
    help_text = summary.split(":", 1)[1].strip().rstrip(".")
    return subparsers.add_parser(name, help=help_text, description=description.replace("``", ""))


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--weights FILE`` and ``--model-option KEY=VALUE`` (after ``--model``)."""
    parser.add_argument("--weights", type=Path, metavar="FILE", help="weights file for the model")
    parser.add_argument(
        "--model-option",
        type=model_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="constructor argument of the model (repeatable), over those stored in the "
        "weights file by conversenet train",
    )


def add_tile_options(parser: argparse.ArgumentParser, default: int | str, what: str) -> None:
    """``--tile N|auto`` (``what`` says what the default does) and ``--tile-overlap M``."""
    parser.add_argument(
        "--tile",
        type=parse_tile,
        default=default,
        metavar="N",
        help=f"tile side in input pixels, or 'auto' (from the image size); {what}",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        metavar="M",
        help="overlap between tiles (below half the tile)",
    )


def add_common_options(
    parser: argparse.ArgumentParser, *, threads: bool = True, download: bool = True
) -> None:
    """``--device``, ``--threads``, ``--no-download``, ``--quiet`` and ``--debug``."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    if threads:
        parser.add_argument(
            "--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)"
        )
    if download:
        parser.add_argument(
            "--no-download",
            dest="download",
            action="store_false",
            help="never download missing official weights",
        )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def model_option(text: str) -> tuple[str, object]:
    """``--model-option KEY=VALUE``: the value read as YAML (4, 0.5, circular, [1, 2])."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. num_blocks=4), got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"cannot read the value of {text!r}") from None


def parse_tile(text: str) -> int | str:
    """``--tile``: ``auto``, or a tile side in input pixels (0: no tiling)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a whole number of pixels (0: no tiling), got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: no tiling), got {value}")
    return value


def select_device(name: str) -> torch.device:
    """Parse --device, with a clear error when CUDA is asked for but absent."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device must be cpu, cuda or cuda:N, got {name!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} was requested but CUDA is not available here")
    return device


def set_threads(threads: int | None) -> None:
    """Apply --threads (on a busy machine, fewer threads than cores can be much faster)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def fail(err: BaseException, args=None) -> int:
    """Report an error on stderr (traceback only with --debug) and return exit code 1."""
    if getattr(args, "debug", False):
        traceback.print_exception(err)
    print(f"error: {err}", file=sys.stderr)
    return 1
