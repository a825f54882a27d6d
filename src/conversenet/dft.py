"""Deprecated alias of :mod:`conversenet.operator.dft` (kept for one release)."""

from __future__ import annotations

from ._deprecated import warn_moved
from .operator.dft import forward_spectrum, inverse_real

__all__ = ["forward_spectrum", "inverse_real"]

warn_moved("conversenet.dft", "conversenet.operator.dft")
