"""What the commands share when they run: the device, the threads, error reporting (their
options are in :mod:`.parsers`)."""

from __future__ import annotations

import sys
import traceback

import torch

__all__ = ["fail", "select_device", "set_threads"]


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
