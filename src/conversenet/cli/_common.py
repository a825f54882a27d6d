"""Helpers shared by the sub-commands."""

from __future__ import annotations

import sys
import traceback

import torch


def select_device(name: str) -> torch.device:
    """Parse --device, with a clear error when CUDA is asked for but absent."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device must be cpu, cuda or cuda:N, got {name!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} was requested but CUDA is not available here")
    return device


def fail(err: BaseException, args=None) -> int:
    """Report an error on stderr (traceback only with --debug) and return exit code 1."""
    if getattr(args, "debug", False):
        traceback.print_exception(err)
    print(f"error: {err}", file=sys.stderr)
    return 1
