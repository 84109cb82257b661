"""Outcomes feed back: a device's recorded false alarms for a risk make its detector for that
risk less eager, one step per false alarm, within bounds.

Staff record what happened after a warning (``forewarn warning outcome ID false_alarm``); the
database keeps the count of a device's false alarms per risk type in that device's detector
configuration, as the parameter :data:`FALSE_ALARMS` of the risk (``core.db.record_outcome``),
so the worker picks it up as it picks up any ``forewarn detectors set``, and ``forewarn
detectors show`` names it. This module says what the count means (:data:`FEEDBACK`): each false
alarm moves one parameter of the risk's detector one step towards "warn later, on more
evidence" — a shorter forecast horizon, a higher limit, a longer duration — at most
:data:`MAX_STEPS` steps and never past the parameter's bound. Pure: the caller logs.

A risk whose warning means a loss under way (a wet leak sensor, a burst pipe, smoke) is never
made less eager, nor is a crash notice or a silent device: a false one calls for the sensor to
be checked, not for a threshold to rise. Their count is accepted and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FALSE_ALARMS = "false_alarms"
"""The configuration parameter, per risk type, that holds a device's recorded false alarms."""

MAX_STEPS = 3
"""False alarms beyond this many change nothing more."""


@dataclass(frozen=True, slots=True)
class Step:
    """Per false alarm, ``parameter`` is multiplied by ``factor``, never past ``bound``."""

    parameter: str
    factor: float
    bound: float

    def apply(self, value: float, false_alarms: int) -> float:
        """``value`` after ``false_alarms`` steps (at most :data:`MAX_STEPS`), held at ``bound``;
        a value already past the bound (configured so) stays as it is.

        >>> Step("horizon_s", 0.75, 7200.0).apply(21600.0, 2)
        12150.0
        >>> Step("horizon_s", 0.75, 7200.0).apply(21600.0, 9), Step("threshold_g", 1.15, 0.6).apply(0.4, 5)
        (9112.5, 0.6)
        """
        steps = max(0, min(int(false_alarms), MAX_STEPS))
        moved = value * self.factor**steps
        if self.factor < 1:
            return value if value <= self.bound else max(moved, self.bound)
        return value if value >= self.bound else min(moved, self.bound)


FEEDBACK: dict[str, Step] = {
    "freeze_risk": Step("horizon_s", 0.75, 2 * 3600.0),
    "coldchain_failure": Step("horizon_s", 0.75, 900.0),
    "battery_drain": Step("horizon_s", 0.75, 6 * 3600.0),
    "bearing_failure": Step("warning_mm_s", 1.1, 6.0),
    "harsh_braking": Step("threshold_g", 1.15, 0.6),
    "speeding": Step("margin", 1.25, 0.4),
    "driver_fatigue": Step("advisory_s", 1.03, 3.9 * 3600.0),
    "slow_leak": Step("min_duration_s", 1.5, 8 * 3600.0),
    "mould_risk": Step("min_duration_s", 1.25, 4 * 86400.0),
    "power_cut": Step("min_duration_s", 2.0, 1800.0),
    "sensor_stuck": Step("min_duration_s", 1.5, 24 * 3600.0),
}
"""Risk type → what one false alarm changes. Each bound keeps the detector's own checks true
(a harsh-braking threshold below its severe level, a fatigue advisory before the 4-hour rule)."""


def desensitised(risk: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` (a detector's configured parameters, possibly with :data:`FALSE_ALARMS`) as
    the detector takes them: the count taken out and, for a risk in :data:`FEEDBACK`, its
    parameter moved (from its configured value, else ``defaults``).

    >>> desensitised("freeze_risk", {"false_alarms": 1}, {"horizon_s": 21600.0})
    {'horizon_s': 16200.0}
    >>> desensitised("water_leak", {"false_alarms": 3, "debounce_s": 5.0}, {"debounce_s": 0.0})
    {'debounce_s': 5.0}
    """
    found = {name: value for name, value in params.items() if name != FALSE_ALARMS}
    count = params.get(FALSE_ALARMS)
    step = FEEDBACK.get(risk)
    if step is None or not count:
        return found
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"{risk}: {FALSE_ALARMS} must be a whole number >= 0, got {count!r}")
    base = found.get(step.parameter, defaults.get(step.parameter))
    if isinstance(base, int | float) and not isinstance(base, bool):
        found[step.parameter] = step.apply(float(base), count)
    return found
