"""Detectors about the device itself, for every kind: a draining battery, a stuck sensor.

A device that goes offline or reports a frozen value no longer protects anything, so these
warn before the protection is lost. Scores follow the convention of :mod:`detectors.physical`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.risks import check_risk
from detectors.base import Finding, Severity
from detectors.checks import check, count, in_range, non_negative, positive
from detectors.physical import PhysicalDetector, TwoWayAssess, WorstJudgement, ramp, rnd
from detectors.readings import num
from detectors.trend import Forecast, Trend, TrendForecaster


class BatteryDrain(TwoWayAssess, TrendForecaster):
    """A device battery about to run flat: the ``battery_pct`` trend reaches ``empty_pct``
    (5 %) within ``horizon_s`` (24 h), or the battery is already below ``low_pct`` (10 %).

    The trend is a least-squares line over ``window_s``; a rise of more than ``jump_pct``
    (recharged, replaced) starts it afresh. At or below ``empty_pct`` is critical: the
    device is about to go offline. The evidence's ``triggers`` name what fired: ``empty``,
    ``draining`` (``drain_pct_per_h``, reaching ``empty_pct`` within the horizon, at
    ``predicted_empty_at_s``), ``low`` (below ``low_pct``).

    The loss is the device going offline when its battery runs flat: a warning states the
    time the trend reaches ``flat_pct`` (0 %: a fuel gauge reads 0 % at the cut-off voltage),
    at the pace it has at ``empty_pct``, the margin a warning is judged by.

    >>> detector = BatteryDrain()
    >>> for hour in range(13):  # 2 % an hour from 60 %
    ...     x = {"ts": 3600.0 * hour, "battery_pct": 60.0 - 2.0 * hour}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score >= 0.5, round(finding.time_to_loss_s / 3600, 1)
    ('warning', True, 18.0)
    """

    risk = check_risk("battery_drain")
    metrics = ("battery_pct",)

    def __init__(
        self,
        empty_pct: float = 5.0,
        low_pct: float = 10.0,
        horizon_s: float = 86400.0,
        window_s: float = 86400.0,
        min_points: int = 6,
        min_span_s: float = 6 * 3600.0,
        min_t_stat: float = 3.0,
        jump_pct: float = 5.0,
        flat_pct: float = 0.0,
    ) -> None:
        self.empty_pct = in_range("empty_pct", empty_pct, 0.0, 100.0)
        self.flat_pct = in_range("flat_pct", flat_pct, 0.0, 100.0)
        check(flat_pct <= empty_pct, "flat_pct must be <= empty_pct")
        self.low_pct = in_range("low_pct", low_pct, 0.0, 100.0)
        check(empty_pct < low_pct, "empty_pct must be < low_pct")
        self._trend_settings(horizon_s, window_s, min_points, min_span_s, min_t_stat)
        self.jump_pct = positive("jump_pct", jump_pct)
        self._trend = Trend(window_s, max_buckets=96, saved_buckets=12)
        self._last_pct: float | None = None

    def _recharged(self, pct: float) -> bool:
        return self._last_pct is not None and pct > self._last_pct + self.jump_pct

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts, pct = num(x, "ts"), num(x, "battery_pct")
        if ts is None or pct is None:
            return self._quiet()
        if pct <= self.empty_pct:
            empty = {"battery_pct": rnd(pct, 1), "empty_pct": self.empty_pct, "triggers": ["empty"]}
            return Finding(self.risk, 1.0, "critical", 0.0, empty)
        fc = None
        if not self._recharged(pct):
            fc = self._forecast_trend(self._trend, ts, pct, self.empty_pct, rising=False)
        eta = None if fc is None else fc.time_to_s
        if not full and (eta is None or eta > self.horizon_s) and pct >= self.low_pct:
            return self._bare()  # quiet (below), without its figures
        evidence: dict[str, Any] = {"battery_pct": rnd(pct, 1), "empty_pct": self.empty_pct}
        stated = None if fc is None or eta is None else fc.stated_s
        if fc is not None:
            evidence["drain_pct_per_h"] = rnd(-(fc.slope if fc.slope is not None else fc.fit.slope) * 3600, 3)
        if fc is not None and stated is not None:
            evidence["predicted_empty_at_s"] = rnd(ts + stated, 0)
            stated += self._empty_to_flat_s(fc)
        if (eta is None or eta > self.horizon_s) and pct >= self.low_pct:
            return self._quiet(evidence)  # the common case, without judging
        worst = WorstJudgement()
        if eta is not None and eta <= self.horizon_s:
            worst.add(0.5 + 0.3 * (1 - eta / self.horizon_s), "warning", stated, reason="draining")
        if pct < self.low_pct:
            evidence["low_pct"] = self.low_pct
            worst.add(0.8, "warning", reason="low")
        if worst.score == 0.0:
            return self._quiet(evidence)
        evidence["triggers"] = worst.triggers
        return Finding(self.risk, worst.score, worst.severity, stated if stated is not None else eta, evidence)

    def _empty_to_flat_s(self, fc: Forecast) -> float:
        """Seconds from ``empty_pct`` to ``flat_pct`` at the pace the forecast has there."""
        rate = -fc.rate_at(self.empty_pct)
        return (self.empty_pct - self.flat_pct) / rate if rate > 0 else 0.0

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts, pct = num(x, "ts"), num(x, "battery_pct")
        if ts is None or pct is None:
            return
        if self._recharged(pct):
            self._trend.clear()
        self._trend.add(ts, pct)
        self._last_pct = pct


class SensorStuck(TwoWayAssess, PhysicalDetector):
    """A stuck sensor: ``metric`` reports the very same value (within ``tolerance``) for
    ``min_duration_s`` (6 h) and ``min_readings`` readings, although it has changed at least
    ``min_changes`` times before (it normally varies).

    One instance watches one metric; a profile may run several (the risk stays
    ``sensor_stuck``, the evidence names the metric). ``ignore_values`` are legitimate resting
    values (a parked vehicle's speed of 0). The score rises from 0.5 at ``min_duration_s`` to
    1 at four times that.

    >>> detector = SensorStuck(metric="pipe_temp_c")
    >>> readings = [11.2, 11.0, 10.9, 11.1] + [10.7] * 40  # then frozen at 10.7 °C
    >>> for i, value in enumerate(readings):
    ...     x = {"ts": 900.0 * i, "pipe_temp_c": value}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.evidence["metric"], finding.evidence["flat_for_s"]
    ('warning', 'pipe_temp_c', 35100.0)
    """

    risk = check_risk("sensor_stuck")
    metrics = ("temp_c",)  # the default; an instance reads ``(metric,)``

    def __init__(
        self,
        metric: str = "temp_c",
        min_duration_s: float = 6 * 3600.0,
        tolerance: float = 0.0,
        min_changes: int = 3,
        min_readings: int = 10,
        ignore_values: tuple[float, ...] = (),
    ) -> None:
        check(isinstance(metric, str) and metric != "" and metric != "ts", f"bad metric {metric!r}")
        self.metric = metric
        self.min_duration_s = positive("min_duration_s", min_duration_s)
        self.tolerance = non_negative("tolerance", tolerance)
        self.min_changes = count("min_changes", min_changes, 1)
        self.min_readings = count("min_readings", min_readings, 2)
        check(isinstance(ignore_values, tuple), "ignore_values must be a tuple of numbers")
        for value in ignore_values:
            in_range("ignore_values", value, -1e12, 1e12)
        self.ignore_values = ignore_values
        # `metrics` is a ClassVar on RiskDetector; this detector reads the metric it is given.
        object.__setattr__(self, "metrics", (metric,))
        self._value: float | None = None
        self._since = 0.0
        self._readings = 0
        self._changes = 0

    @property
    def instance_name(self) -> str:
        return f"{self.risk}:{self.metric}"

    def _flat_if(self, ts: float, value: float) -> tuple[float, int]:
        if self._value is None or abs(value - self._value) > self.tolerance:
            return 0.0, 1
        return max(0.0, ts - self._since), self._readings + 1

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        value = num(x, self.metric)
        last = self._value
        if value is None or last is None or abs(value - last) > self.tolerance:
            # the common case, quiet at once: no value, or a change (flat for 0 s, below
            # min_duration_s, which is positive), whatever the time
            return self._quiet() if full else self._bare()
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        flat_for, readings = self._flat_if(ts, value)
        if (
            flat_for < self.min_duration_s
            or readings < self.min_readings
            or self._changes < self.min_changes
            or any(abs(value - v) <= self.tolerance for v in self.ignore_values)
        ):
            return self._quiet()
        evidence: dict[str, Any] = {
            "metric": self.metric,
            "value": value,
            "flat_for_s": rnd(flat_for, 0),
            "duration_min": rnd(flat_for / 60, 1),
            "flat_since_s": rnd(self._since, 0),
            "readings": readings,
        }
        score = 0.5 + 0.5 * ramp(flat_for, self.min_duration_s, 4 * self.min_duration_s)
        severity: Severity = "warning"
        return Finding(self.risk, score, severity, None, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        value = num(x, self.metric)
        if value is None:
            return
        ts = num(x, "ts")
        if ts is None:
            return
        if self._value is not None and abs(value - self._value) <= self.tolerance:
            self._readings += 1
            return
        if self._value is not None:
            self._changes = min(self._changes + 1, 1_000_000)
        self._value, self._since, self._readings = value, ts, 1
