"""Home and building detectors with physical meaning: water, frost, mould, fire, mains power.

Each is a :class:`~detectors.base.RiskDetector` for one risk type. Scores follow the
convention of :mod:`detectors.physical`: 0 is quiet, at least 0.5 is worth a warning, and the
severity says how urgent. Evidence holds the figures a customer warning quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.risks import check_risk
from detectors.base import Finding, Severity
from detectors.checks import check, count, finite, non_negative, positive
from detectors.physical import FIRING, PhysicalDetector, TwoWayAssess, WorstJudgement, ramp, rnd
from detectors.readings import LastKnown, num
from detectors.trend import Forecast, HeldForecast, Trend, TrendForecaster
from detectors.windows import RollingMin, Sustained


class WaterLeak(TwoWayAssess, PhysicalDetector):
    """A leak sensor is wet: water is escaping now.

    ``debounce_s`` > 0 waits until the sensor has been wet that long (splash-prone spots).

    >>> detector = WaterLeak()
    >>> detector.score_one({"ts": 0.0, "water_leak": 0.0})
    0.0
    >>> finding = detector.assess_one({"ts": 60.0, "water_leak": 1.0})
    >>> finding.score, finding.severity, finding.time_to_loss_s
    (1.0, 'critical', 0.0)
    """

    risk = check_risk("water_leak")
    metrics = ("water_leak",)

    def __init__(self, debounce_s: float = 0.0) -> None:
        self.debounce_s = non_negative("debounce_s", debounce_s)
        self._wet = Sustained()

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts, wet = num(x, "ts"), num(x, "water_leak")
        if ts is None or wet is None:
            return self._quiet()
        is_wet = wet >= 0.5
        wet_for = self._wet.duration_if(ts, is_wet)
        if not full and (not is_wet or wet_for < self.debounce_s):
            return self._bare()
        evidence: dict[str, Any] = {
            "water_leak": is_wet,
            "wet_for_s": rnd(wet_for, 0),
            "duration_min": rnd(wet_for / 60, 1),
        }
        if not is_wet or wet_for < self.debounce_s:
            return self._quiet(evidence)
        return Finding(self.risk, 1.0, "critical", 0.0, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts, wet = num(x, "ts"), num(x, "water_leak")
        if ts is not None and wet is not None:
            self._wet.update(ts, wet >= 0.5)


HOLDING = 0.3
"""The score of a finding that keeps an open warning open (at least the policy's ``clear_score``)
but never opens one (below ``open_score``)."""


class FreezeRisk(TwoWayAssess, TrendForecaster):
    """A water pipe forecast to freeze: the trend of its standing-water temperature crosses
    ``freeze_c`` within ``horizon_s``.

    The trend is the least-squares line over the last ``window_s`` seconds, used once it has
    ``min_points`` readings over ``min_span_s`` and its slope is ``min_t_stat`` standard
    errors below zero (sensor noise alone does not fire). A cooling that is clearly levelling
    off towards a temperature above freezing (a heated room) does not fire either. The score
    rises from 0.5 at the horizon to 1 at the crossing; a pipe whose fitted temperature is
    already at or below ``freeze_c + margin_c`` is critical. With no crossing forecast, a pipe
    at or levelling off within ``near_c`` of freezing still holds an open warning open
    (:data:`HOLDING`), so a cold night is one warning, not one per wobble of the forecast.

    Only standing water freezes, and only its heat loss to the pipe's surroundings tells where
    it is heading. Water drawn through the pipe (a tap, a toilet, a shower, a drip that never
    stops) pulls it towards the mains supply temperature, above freezing: it falls or rises by
    degrees within minutes, then drifts back once the water stands again. A line through that
    is no cooling trend. So the trend takes only readings taken while no water flows
    (``flow_lpm`` below ``draw_lpm``, in the reading or reported at most ``stale_after_s``
    before); while it flows, the standing-water trend is judged as it stands. If the flow
    moved this pipe ``draw_c`` or more off its trend, the trend restarts from the first
    standing reading after it, and until the new trend has formed (at most ``window_s``) the
    crossing forecast before the restart stands: a draw changes the water in the pipe, not its
    surroundings. Flow elsewhere in the house, which leaves this pipe on its trend, restarts
    nothing. A sensor without a flow meter sees a draw as a jump of ``jump_c`` or more since
    the last reading at ``max_rate_c_per_h`` or faster, quicker than heat loss through a
    pipe's insulation moves it: the trend restarts at the jump.

    The trend's forecast follows Newton's law of cooling (:func:`detectors.trend.forecast`): an
    exponential approach when the cooling levels off, the newest pace when it goes faster and
    faster (the room or the weather getting colder). A pipe does not burst when its water
    reaches ``freeze_c``: the water must give up its latent heat while an ice plug forms, and
    that holds it near freezing. The time to loss adds that: ``ice_plug_c``, the latent heat
    given up before the plug bursts the pipe, as degrees of cooling at the pace the forecast
    has at ``freeze_c`` (the home profile: 2.5 °C; 0 by default: the crossing itself). The
    warning's score and the crossing time in the evidence stay those of ``freeze_c``.

    >>> import random
    >>> rng = random.Random(3)
    >>> detector = FreezeRisk()
    >>> for minute in range(0, 150, 5):  # 6 °C, cooling 1 °C per hour, ±0.3 °C noise
    ...     x = {"ts": 60.0 * minute, "pipe_temp_c": 6.0 - minute / 60 + rng.uniform(-0.3, 0.3)}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score > 0.5, round(finding.time_to_loss_s / 3600, 1)
    ('warning', True, 3.9)
    >>> x = {"ts": 9000.0, "pipe_temp_c": 6.5, "flow_lpm": 8.0}  # a tap: mains water at 6.5 °C
    >>> finding = detector.assess_one(x)
    >>> finding.evidence["water_drawn"], finding.score > 0.5  # the cooling trend still stands
    (True, True)
    """

    risk = check_risk("freeze_risk")
    metrics = ("pipe_temp_c", "flow_lpm")

    def __init__(
        self,
        horizon_s: float = 6 * 3600.0,
        window_s: float = 2 * 3600.0,
        freeze_c: float = 0.0,
        margin_c: float = 0.5,
        min_points: int = 8,
        min_span_s: float = 3600.0,
        min_t_stat: float = 3.0,
        max_buckets: int = 120,
        draw_lpm: float = 0.05,
        draw_c: float = 1.0,
        jump_c: float = 1.0,
        max_rate_c_per_h: float = 30.0,
        stale_after_s: float = 300.0,
        ice_plug_c: float = 0.0,
        near_c: float = 3.0,
    ) -> None:
        self._trend_settings(horizon_s, window_s, min_points, min_span_s, min_t_stat)
        self.near_c = non_negative("near_c", near_c)
        self.freeze_c = finite("freeze_c", freeze_c)
        self.ice_plug_c = non_negative("ice_plug_c", ice_plug_c)
        self.margin_c = non_negative("margin_c", margin_c)
        self.max_buckets = count("max_buckets", max_buckets, 4)
        self.draw_lpm = positive("draw_lpm", draw_lpm)
        self.draw_c = positive("draw_c", draw_c)
        self.jump_c = positive("jump_c", jump_c)
        self.max_rate_c_per_h = positive("max_rate_c_per_h", max_rate_c_per_h)
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        self._trend = Trend(window_s, max_buckets)  # standing water only
        self._flow = LastKnown(stale_after_s)
        self._prev: tuple[float, float] | None = None  # the last pipe reading (ts, °C)
        self._standing: float | None = None  # the last reading the trend took
        self._drawn = False  # water was drawn through the pipe since the trend last took one
        self._held = HeldForecast(window_s)  # a forecast carried over a draw

    def _judge(self, x: Mapping[str, float], ts: float, temp: float) -> tuple[str, bool]:
        """What the reading is — ``"standing"`` (the trend takes it), ``"drawn"`` (water is
        flowing: left out), ``"restart"`` (the first standing reading after water was drawn
        through this pipe, or a jump: the trend starts again from it) — and whether water
        flowing now has moved this pipe off its trend."""
        flow = self._flow.get(x, "flow_lpm", ts)
        if flow is not None and flow >= self.draw_lpm:
            fit = self._trend.fit(ts)
            expected = fit.level if fit is not None and fit.n >= 3 else self._standing
            moved = expected is not None and abs(temp - expected) >= self.draw_c
            return "drawn", moved
        prev = self._prev
        if prev is not None:
            moved_c, dt = abs(temp - prev[1]), ts - prev[0]
            if moved_c >= self.jump_c and dt > 0 and moved_c * 3600.0 >= self.max_rate_c_per_h * dt:
                return "restart", False
        return ("restart" if self._drawn else "standing"), False

    def _forecast(self, ts: float, temp: float | None) -> Forecast | None:
        return self._forecast_trend(self._trend, ts, temp, self.freeze_c, rising=False)

    def _carry_over(self, ts: float) -> tuple[float, float] | None:
        """What a restart at ``ts`` carries over: the crossing the standing-water trend
        forecast, or, if no trend had formed since the last restart, what that one carried."""
        return self._held.carry_over(ts, self._forecast(ts, None), self.horizon_s)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts, temp = num(x, "ts"), num(x, "pipe_temp_c")
        if ts is None or temp is None:
            return self._quiet()
        # Unless ``full``, the figures are left out; a finding that is not quiet is then made
        # again with them (assessing is pure): only a quiet one goes without.
        evidence: dict[str, Any] = {"pipe_temp_c": rnd(temp), "freeze_c": self.freeze_c} if full else {}
        kind, _ = self._judge(x, ts, temp)
        fc: Forecast | None = None
        carried: tuple[float, float] | None = None
        if kind == "restart":  # the new trend has one reading: nothing to fit yet
            carried = self._carry_over(ts)
            level = temp
        else:
            fc = self._forecast(ts, temp if kind == "standing" else None)
            if fc is None:  # too little history for a trend: smooth the noise with the mean
                carried = self._held.get(ts)
                mean = self._trend.mean(ts, (ts, temp))
                level = temp if mean is None else mean
            else:
                level = fc.level
            if kind == "drawn":  # the water in the pipe now, not the standing-water line
                if full:
                    evidence["water_drawn"] = True
                level = temp
        stated: float | None = None
        if fc is not None:
            eta, stated = fc.time_to_s, fc.stated_s
            if full:
                evidence["fitted_temp_c"] = rnd(fc.level)
                evidence["trend_c_per_h"] = rnd(fc.fit.slope * 3600, 3)
                if fc.settles_at is not None:
                    evidence["levelling_off_at_c"] = rnd(fc.settles_at)
        else:
            eta = None if carried is None else max(0.0, carried[0] - ts)
            if full and carried is not None:
                evidence["forecast_made_at_s"] = rnd(carried[1], 0)  # before the last draw
        stated = eta if stated is None or eta is None else min(stated, eta)
        if full and stated is not None:
            evidence["predicted_zero_at_s"] = rnd(ts + stated, 0)
        if level <= self.freeze_c + self.margin_c:
            if not full:
                return self._assess(x, True)
            return Finding(self.risk, 1.0, "critical", self._to_burst(stated or 0.0, fc), evidence)
        if eta is None or stated is None or eta > self.horizon_s:
            finding = self._near_freezing(level, fc, evidence)
            return finding if full or finding.score == 0.0 else self._assess(x, True)
        if not full:
            return self._assess(x, True)
        score = min(0.99, FIRING + (1 - FIRING) * (1 - eta / self.horizon_s))
        return Finding(self.risk, score, "warning", self._to_burst(stated, fc), evidence)

    def _near_freezing(self, level: float, fc: Forecast | None, evidence: dict[str, Any]) -> Finding:
        """No crossing forecast: quiet, unless the pipe is, or is levelling off, within
        ``near_c`` of freezing. Then the finding holds (:data:`HOLDING`: keeps an open warning
        open, never opens one). A pipe that levels off at 1 °C on a cold night has not been
        made safe: the forecast that put it just above freezing flips back below with the next
        few readings, and resolving the warning in between would only warn again of the same
        night's cold (hysteresis: the warning resolves once the pipe is clear of freezing)."""
        settles = None if fc is None else fc.settles_at
        nearest = level if settles is None else min(level, settles)
        if nearest > self.freeze_c + self.near_c:
            return self._quiet(evidence)
        evidence["near_freezing"] = True
        return Finding(self.risk, HOLDING, "advisory", None, evidence)

    def _to_burst(self, eta: float, fc: Forecast | None) -> float:
        """The time to loss of a pipe reaching ``freeze_c`` in ``eta`` seconds: plus the time to
        give up ``ice_plug_c`` of latent heat at the forecast's pace there."""
        if self.ice_plug_c == 0.0 or fc is None:
            return eta
        rate = abs(fc.rate_at(self.freeze_c))
        return eta + (self.ice_plug_c / rate if rate > 0 else 0.0)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        temp = num(x, "pipe_temp_c")
        if temp is not None:
            kind, moved = self._judge(x, ts, temp)
            if kind == "drawn":
                self._drawn = self._drawn or moved
            else:
                if kind == "restart":
                    self._held.held = self._carry_over(ts)
                    self._trend.clear()
                    self._drawn = False
                self._trend.add(ts, temp)
                self._standing = temp
                self._held.release(self._trend, ts, self.min_points, self.min_span_s)
            if self._prev is None or ts >= self._prev[0]:
                self._prev = (ts, temp)
        self._flow.update(x, ts, ("flow_lpm",))


class SlowLeak(TwoWayAssess, PhysicalDetector):
    """A slow leak: water flows without ever stopping for ``min_duration_s``.

    A household's use comes in bursts with zero-flow gaps between them; a dripping pipe or a
    running toilet never lets the meter reach zero. Fires when the flow has stayed above
    ``zero_lpm`` for ``min_duration_s`` and its lowest value in that time was below
    ``max_flow_lpm`` (hours of large flow are deliberate use, such as irrigation). A data gap
    longer than ``max_gap_s`` restarts the clock.

    >>> detector = SlowLeak()
    >>> for minute in range(0, 181, 5):  # 0.4 l/min, never zero, for three hours
    ...     x = {"ts": 60.0 * minute, "flow_lpm": 0.4}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score >= 0.5, finding.evidence["lost_litres"]
    ('warning', True, 72.0)
    """

    risk = check_risk("slow_leak")
    metrics = ("flow_lpm",)

    def __init__(
        self,
        max_flow_lpm: float = 2.0,
        zero_lpm: float = 0.0,
        min_duration_s: float = 2 * 3600.0,
        max_gap_s: float = 1800.0,
    ) -> None:
        self.max_flow_lpm = positive("max_flow_lpm", max_flow_lpm)
        self.zero_lpm = non_negative("zero_lpm", zero_lpm)
        check(zero_lpm < max_flow_lpm, "zero_lpm must be < max_flow_lpm")
        self.min_duration_s = positive("min_duration_s", min_duration_s)
        self.max_gap_s = positive("max_gap_s", max_gap_s)
        self._flowing = Sustained(max_gap_s=max_gap_s)
        self._run_min: float | None = None

    def _run_min_if(self, ts: float, flow: float) -> tuple[float | None, float | None]:
        since = self._flowing.next_since(ts, flow > self.zero_lpm)
        if since is None:
            return None, None
        if since != self._flowing.since or self._run_min is None:
            return since, flow
        return since, min(self._run_min, flow)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts, flow = num(x, "ts"), num(x, "flow_lpm")
        if ts is None or flow is None:
            return self._quiet()
        since, low = self._run_min_if(ts, flow)
        if since is None or low is None:
            return self._quiet({"flow_lpm": rnd(flow)} if full else None)
        flowing_for = max(0.0, ts - since)
        if not full and (flowing_for < self.min_duration_s or low >= self.max_flow_lpm):
            return self._bare()
        evidence: dict[str, Any] = {
            "flow_lpm": rnd(flow),
            "min_flow_lpm": rnd(low),
            "flowing_for_s": rnd(flowing_for, 0),
            "duration_min": rnd(flowing_for / 60, 1),
            "flowing_since_s": rnd(since, 0),
            "lost_litres": rnd(low * flowing_for / 60, 0),
        }
        if flowing_for < self.min_duration_s or low >= self.max_flow_lpm:
            return self._quiet(evidence)
        score = 0.6 + 0.4 * ramp(flowing_for, self.min_duration_s, 4 * self.min_duration_s)
        return Finding(self.risk, score, "warning", None, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts, flow = num(x, "ts"), num(x, "flow_lpm")
        if ts is None or flow is None:
            return
        _, self._run_min = self._run_min_if(ts, flow)
        self._flowing.update(ts, flow > self.zero_lpm)


class BurstPipe(TwoWayAssess, PhysicalDetector):
    """A burst pipe: a flow far above household use (``burst_lpm``) for ``min_duration_s``,
    or a wet leak sensor while the flow is that high (critical at once).

    Sustained high flow is a warning, critical from twice ``min_duration_s``. A leak-sensor
    state from another reading counts while it is at most ``stale_after_s`` old.

    >>> detector = BurstPipe()
    >>> for minute in range(16):  # 35 l/min for a quarter of an hour
    ...     x = {"ts": 60.0 * minute, "flow_lpm": 35.0}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score >= 0.5, finding.evidence["lost_litres"]
    ('warning', True, 525.0)
    >>> detector.assess_one({"ts": 961.0, "flow_lpm": 35.0, "water_leak": 1.0}).severity
    'critical'
    """

    risk = check_risk("burst_pipe")
    metrics = ("flow_lpm", "water_leak")

    def __init__(
        self,
        burst_lpm: float = 20.0,
        min_duration_s: float = 600.0,
        max_gap_s: float = 180.0,
        stale_after_s: float = 900.0,
    ) -> None:
        self.burst_lpm = positive("burst_lpm", burst_lpm)
        self.min_duration_s = positive("min_duration_s", min_duration_s)
        self.max_gap_s = positive("max_gap_s", max_gap_s)
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        self._high = Sustained(max_gap_s=max_gap_s)
        self._last = LastKnown(stale_after_s)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        flow = self._last.get(x, "flow_lpm", ts)
        wet = (self._last.get(x, "water_leak", ts) or 0.0) >= 0.5
        if flow is None:
            return self._quiet({"water_leak": wet} if full else None)
        high = flow > self.burst_lpm
        high_for = self._high.duration_if(ts, high)
        if not full and not high:  # quiet: not high, so neither wet-and-high nor high for long
            return self._bare()
        evidence: dict[str, Any] = {
            "flow_lpm": rnd(flow),
            "water_leak": wet,
            "high_flow_for_s": rnd(high_for, 0),
            "duration_min": rnd(high_for / 60, 1),
            "lost_litres": rnd(flow * high_for / 60, 0),
        }
        if high and wet:
            return Finding(self.risk, 1.0, "critical", 0.0, evidence)
        if not high or high_for < self.min_duration_s:
            return self._quiet(evidence)
        score = 0.7 + 0.3 * ramp(high_for, self.min_duration_s, 2 * self.min_duration_s)
        severity: Severity = "critical" if high_for >= 2 * self.min_duration_s else "warning"
        return Finding(self.risk, score, severity, 0.0, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        flow = num(x, "flow_lpm")
        if flow is not None:
            self._high.update(ts, flow > self.burst_lpm)
        self._last.update(x, ts, self.metrics)


class MouldRisk(TwoWayAssess, PhysicalDetector):
    """Mould: relative humidity above ``threshold_pct`` for ``min_duration_s`` (48 h).

    A dip shorter than ``min_break_s`` (airing a room) does not restart the clock, a data gap
    longer than ``max_gap_s`` does. Advisory: the score rises from 0.5 at ``min_duration_s``
    to 1 at twice that.

    >>> detector = MouldRisk(min_duration_s=6 * 3600.0)  # scaled down for the example
    >>> for hour in range(8):
    ...     x = {"ts": 3600.0 * hour, "humidity_pct": 82.0}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, round(finding.score, 2), finding.evidence["humid_for_s"]
    ('advisory', 0.58, 25200.0)
    """

    risk = check_risk("mould_risk")
    metrics = ("humidity_pct",)

    def __init__(
        self,
        threshold_pct: float = 70.0,
        min_duration_s: float = 48 * 3600.0,
        min_break_s: float = 2 * 3600.0,
        max_gap_s: float = 6 * 3600.0,
    ) -> None:
        self.threshold_pct = finite("threshold_pct", threshold_pct)
        check(0 < threshold_pct < 100, "threshold_pct must be in (0, 100)")
        self.min_duration_s = positive("min_duration_s", min_duration_s)
        self.min_break_s = non_negative("min_break_s", min_break_s)
        self.max_gap_s = positive("max_gap_s", max_gap_s)
        self._humid = Sustained(max_gap_s=max_gap_s, min_break_s=min_break_s)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts, rh = num(x, "ts"), num(x, "humidity_pct")
        if ts is None or rh is None:
            return self._quiet()
        since, humid_for = self._humid.run_if(ts, rh > self.threshold_pct)
        if not full and (since is None or humid_for < self.min_duration_s):
            return self._bare()
        evidence: dict[str, Any] = {
            "humidity_pct": rnd(rh, 1),
            "threshold_pct": self.threshold_pct,
            "humid_for_s": rnd(humid_for, 0),
            "duration_min": rnd(humid_for / 60, 1),
        }
        if since is None or humid_for < self.min_duration_s:
            return self._quiet(evidence)
        evidence["humid_since_s"] = rnd(since, 0)
        score = FIRING + (1 - FIRING) * ramp(humid_for, self.min_duration_s, 2 * self.min_duration_s)
        return Finding(self.risk, score, "advisory", None, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts, rh = num(x, "ts"), num(x, "humidity_pct")
        if ts is not None and rh is not None:
            self._humid.update(ts, rh > self.threshold_pct)


class FireRisk(TwoWayAssess, PhysicalDetector):
    """Fire: smoke is critical; before smoke, a fast temperature rise or carbon monoxide warns.

    Like a rate-of-rise heat detector: a rise of ``rise_c`` within ``rise_window_s`` warns, a
    fixed ``hot_c`` (57 °C, a fixed-temperature heat detector's rating) is critical. CO from
    ``co_warning_ppm`` warns and from ``co_critical_ppm`` is critical (a danger to life by
    itself). A smoke or CO value from another reading counts while at most ``stale_after_s``
    old. The evidence's ``triggers`` name what fired: ``smoke``, ``hot``, ``temp_rise`` (by
    ``temp_rise_c`` within ``rise_window_s``), ``co`` (``co_ppm`` at or above ``co_limit_ppm``).

    >>> detector = FireRisk()
    >>> for minute in range(9):  # 21 °C climbing 0.8 °C a minute
    ...     x = {"ts": 60.0 * minute, "temp_c": 21.0 + 0.8 * minute}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score >= 0.5, finding.evidence["temp_rise_c"], finding.evidence["triggers"]
    ('warning', True, 6.4, ['temp_rise'])
    >>> detector.assess_one({"ts": 600.0, "smoke": 1.0}).severity
    'critical'
    """

    risk = check_risk("fire_risk")
    metrics = ("smoke", "temp_c", "co_ppm")

    def __init__(
        self,
        rise_c: float = 5.0,
        rise_window_s: float = 600.0,
        hot_c: float = 57.0,
        co_warning_ppm: float = 50.0,
        co_critical_ppm: float = 200.0,
        stale_after_s: float = 300.0,
    ) -> None:
        self.rise_c = positive("rise_c", rise_c)
        self.rise_window_s = positive("rise_window_s", rise_window_s)
        self.hot_c = finite("hot_c", hot_c)
        self.co_warning_ppm = positive("co_warning_ppm", co_warning_ppm)
        self.co_critical_ppm = positive("co_critical_ppm", co_critical_ppm)
        check(co_warning_ppm < co_critical_ppm, "co_warning_ppm must be < co_critical_ppm")
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        self._low = RollingMin(rise_window_s)
        self._last = LastKnown(stale_after_s)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        smoke = (self._last.get(x, "smoke", ts) or 0.0) >= 0.5
        temp = num(x, "temp_c")
        co = self._last.get(x, "co_ppm", ts)
        if not (full or smoke) and (co is None or co < self.co_warning_ppm):  # quiet unless the temperature says
            if temp is None:
                return self._bare()
            low = self._low.min(ts, temp)
            rise = 0.0 if low is None else max(0.0, temp - low)
            if temp < self.hot_c and rise < self.rise_c:
                return self._bare()
        evidence: dict[str, Any] = {"smoke": smoke}
        worst = WorstJudgement()
        if smoke:
            worst.add(1.0, "critical", 0.0, reason="smoke")
        if temp is not None:
            low = self._low.min(ts, temp)
            rise = 0.0 if low is None else max(0.0, temp - low)
            evidence.update(temp_c=rnd(temp, 1), temp_rise_c=rnd(rise, 1))
            evidence["rise_window_s"] = self.rise_window_s
            if temp >= self.hot_c:
                evidence["hot_c"] = self.hot_c
                worst.add(1.0, "critical", 0.0, reason="hot")
            elif rise >= self.rise_c:
                worst.add(0.6 + 0.3 * ramp(rise, self.rise_c, 2 * self.rise_c), "warning", reason="temp_rise")
        if co is not None:
            evidence["co_ppm"] = rnd(co, 0)
            if co >= self.co_critical_ppm:
                evidence["co_limit_ppm"] = self.co_critical_ppm
                worst.add(0.9, "critical", 0.0, reason="co")
            elif co >= self.co_warning_ppm:
                evidence["co_limit_ppm"] = self.co_warning_ppm
                worst.add(0.5 + 0.3 * ramp(co, self.co_warning_ppm, self.co_critical_ppm), "warning", reason="co")
        return self._judged(worst, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        temp = num(x, "temp_c")
        if temp is not None:
            self._low.add(ts, temp)
        self._last.update(x, ts, ("smoke", "co_ppm"))


class PowerCut(TwoWayAssess, PhysicalDetector):
    """A power cut: mains voltage below ``min_v`` for ``min_duration_s``.

    What is at risk is what runs on mains: a freezer's food, a sump pump. ``hold_s`` is how
    long that lasts without power (a closed freezer: about 4 h), so the time to loss is
    ``hold_s`` minus the outage so far; the warning turns critical in the last quarter.

    >>> detector = PowerCut()
    >>> for second in range(0, 301, 30):  # mains gone for five minutes
    ...     x = {"ts": float(second), "mains_v": 0.0}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score >= 0.5, finding.time_to_loss_s
    ('warning', True, 14100.0)
    """

    risk = check_risk("power_cut")
    metrics = ("mains_v",)

    def __init__(
        self,
        min_v: float = 150.0,
        min_duration_s: float = 120.0,
        hold_s: float = 4 * 3600.0,
        max_gap_s: float = 900.0,
    ) -> None:
        self.min_v = positive("min_v", min_v)
        self.min_duration_s = positive("min_duration_s", min_duration_s)
        self.hold_s = positive("hold_s", hold_s)
        check(min_duration_s < hold_s, "min_duration_s must be < hold_s")
        self.max_gap_s = positive("max_gap_s", max_gap_s)
        self._out = Sustained(max_gap_s=max_gap_s)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts, volts = num(x, "ts"), num(x, "mains_v")
        if ts is None or volts is None:
            return self._quiet()
        since, out_for = self._out.run_if(ts, volts < self.min_v)
        if not full and (since is None or out_for < self.min_duration_s):
            return self._bare()
        evidence: dict[str, Any] = {
            "mains_v": rnd(volts, 0),
            "outage_for_s": rnd(out_for, 0),
            "duration_min": rnd(out_for / 60, 1),
        }
        if since is None or out_for < self.min_duration_s:
            return self._quiet(evidence)
        eta = max(0.0, self.hold_s - out_for)
        evidence.update(outage_since_s=rnd(since, 0), hold_s=self.hold_s)
        score = FIRING + (1 - FIRING) * ramp(out_for, self.min_duration_s, self.hold_s)
        severity: Severity = "critical" if eta <= self.hold_s / 4 else "warning"
        return Finding(self.risk, score, severity, eta, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts, volts = num(x, "ts"), num(x, "mains_v")
        if ts is not None and volts is not None:
            self._out.update(ts, volts < self.min_v)
