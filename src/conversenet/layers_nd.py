"""Deprecated alias of :mod:`conversenet.operator.layers` (kept for one release)."""

from __future__ import annotations

from ._deprecated import warn_moved
from .operator.layers import Converse1d, Converse3d

__all__ = ["Converse1d", "Converse3d"]

warn_moved("conversenet.layers_nd", "conversenet.operator.layers (or conversenet)")
