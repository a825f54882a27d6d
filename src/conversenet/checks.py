"""Argument checks shared by the operator, the layers, the models and the front ends.

Each raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value out
of range, naming the argument, what was expected and what was given.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

__all__ = ["check_choice", "check_int", "check_positive_ints", "check_real"]


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an ``int``: an integral number that is not a bool, ``>= minimum``.

    Example:
        >>> check_int("num_blocks", 4, minimum=1)
        4
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive_ints(**values: Any) -> None:
    """Each keyword's value an ``int`` >= 1 (a model's channels, widths and counts).

    Example:
        >>> check_positive_ints(in_channels=1, num_blocks=0)
        Traceback (most recent call last):
        ValueError: num_blocks must be >= 1, got 0
    """
    for name, value in values.items():
        check_int(name, value, minimum=1)


def check_real(
    name: str, value: Any, minimum: float | None = None, *, finite: bool = True
) -> float:
    """``value`` as a ``float``: a real number that is not a bool, ``>= minimum``, finite
    unless ``finite=False``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
