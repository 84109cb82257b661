"""Reading a reading: a metric as a finite number (:func:`num`), the last known value of
metrics a reading does not carry (:class:`LastKnown`), and the local hour of a reading's time
(:func:`local_hour`, the offset passed in: a detector has no clock and no time-zone database).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from core.localtime import DEFAULT_TIMEZONE, utc_offset_hours, zone

DEFAULT_UTC_OFFSET_H: float = utc_offset_hours(zone(DEFAULT_TIMEZONE), 1_735_689_600_000)
"""Hours the deployment's default zone (:data:`core.localtime.DEFAULT_TIMEZONE`) is ahead of
UTC, as on 2025-01-01 (Asia/Shanghai: 8, all year): the default of detectors that judge the
time of day."""


def num(x: Mapping[str, Any], name: str) -> float | None:
    """``x[name]`` as a finite float, or ``None`` when absent or not a finite number.

    >>> num({"temp_c": 3}, "temp_c"), num({"temp_c": float("nan")}, "temp_c"), num({}, "temp_c")
    (3.0, None, None)
    """
    value = x.get(name)
    if type(value) is float:  # the common case, fast: finite iff v - v == 0
        return value if value - value == 0.0 else None
    if value is None or isinstance(value, str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def local_hour(ts: float, utc_offset_h: float) -> float:
    """Hour of the local day (0 ≤ h < 24) of epoch seconds ``ts`` at ``utc_offset_h``.

    >>> local_hour(1_763_654_400.0 + 5400.0, DEFAULT_UTC_OFFSET_H)  # 2025-11-21 01:30 in Shanghai
    1.5
    """
    return ((ts / 3600.0) + utc_offset_h) % 24.0


class LastKnown:
    """The last value of each metric, for readings that do not carry all of them.

    A value older than ``max_age_s`` is forgotten (the sensor may have gone quiet).

    >>> last = LastKnown(max_age_s=300.0)
    >>> last.update({"ts": 0.0, "door_open": 1.0}, 0.0, ("door_open",))
    >>> last.get({"ts": 60.0}, "door_open", 60.0), last.get({"ts": 900.0}, "door_open", 900.0)
    (1.0, None)
    """

    __slots__ = ("max_age_s", "_values")

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._values: dict[str, tuple[float, float]] = {}

    def update(self, x: Mapping[str, Any], ts: float, names: Iterable[str]) -> None:
        for name in names:
            value = x.get(name)
            if type(value) is not float or value - value != 0.0:  # num()'s fast path, inline
                value = num(x, name)
            if value is not None:
                seen = self._values.get(name)
                if seen is None or ts >= seen[0] - self.max_age_s:
                    self._values[name] = (ts, value)

    def get(self, x: Mapping[str, Any], name: str, ts: float) -> float | None:
        value = x.get(name)
        if type(value) is float and value - value == 0.0:  # num()'s fast path, inline
            return value
        value = num(x, name)
        if value is not None:
            return value
        seen = self._values.get(name)
        if seen is not None and ts - seen[0] <= self.max_age_s:
            return seen[1]
        return None
