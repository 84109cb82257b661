"""The argument checks every detector's ``__init__`` runs (river's rule: validate once, raise
:class:`ValueError`, never during processing).

Each check returns the value it was given, so a constructor reads
``self.horizon_s = positive("horizon_s", horizon_s)``.

>>> positive("horizon_s", 3600.0)
3600.0
>>> in_range("margin", 7.0, 0.0, 5.0)
Traceback (most recent call last):
...
ValueError: margin must be in [0, 5], got 7.0
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

_T = TypeVar("_T")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def finite(name: str, value: _T) -> _T:
    """``value`` if it is a finite number (not a bool)."""
    _number(name, value)
    return value


def positive(name: str, value: _T) -> _T:
    """``value`` if it is a finite number above 0."""
    if not _number(name, value) > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def non_negative(name: str, value: _T) -> _T:
    """``value`` if it is a finite number, 0 or above."""
    if not _number(name, value) >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def in_range(name: str, value: _T, low: float, high: float) -> _T:
    """``value`` if it is a finite number in ``[low, high]``."""
    if not low <= _number(name, value) <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return value


def count(name: str, value: _T, minimum: int = 1) -> _T:
    """``value`` if it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check(condition: bool, message: str) -> None:
    """:class:`ValueError` with ``message`` unless ``condition`` holds (a relation between
    parameters: ``check(low < high, "low must be < high")``)."""
    if not condition:
        raise ValueError(message)
