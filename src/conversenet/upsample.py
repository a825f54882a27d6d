"""Deprecated alias of :mod:`conversenet.operator.upsample` (kept for one release)."""

from __future__ import annotations

from ._deprecated import warn_moved
from .operator.upsample import ConverseUpsample, SumToOne

__all__ = ["ConverseUpsample", "SumToOne"]

warn_moved("conversenet.upsample", "conversenet.operator.upsample (or conversenet)")
