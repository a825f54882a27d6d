"""Deprecated module paths: a module that moved keeps its old path for one release."""

from __future__ import annotations

import warnings

__all__ = ["warn_moved"]


def warn_moved(old: str, new: str) -> None:
    """Warn, from the top level of the module ``old``, that it moved to ``new`` (the warning
    points at the line that imported it)."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )
