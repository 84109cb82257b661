"""Forecasts that hold: the time of loss a warning states follows the physics, not a ruler.

A pipe exchanges heat with its surroundings (Newton's law of cooling): towards a falling
ambient it cools faster and faster, towards a steady one it levels off. A battery whose drain
changes pace empties at the new pace. A pipe bursts once an ice plug has formed, not at 0 °C;
a chilled load spoils some time after it passes 8 °C.
"""

from __future__ import annotations

import math
import random

from detectors.device import BatteryDrain
from detectors.equipment import ColdChain
from detectors.home import FreezeRisk
from detectors.trend import Trend, forecast

MIN = 60.0
H = 3600.0


def newton(t0_c: float, ambient, k_per_h: float, minutes: int, seed: int = 1) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    """A pipe's temperature each minute, cooling towards ``ambient(t_h)`` at rate ``k_per_h``."""
    rng = random.Random(seed)
    temp, out = t0_c, []
    for minute in range(minutes):
        t_h = minute / 60
        out.append((minute * MIN, temp + rng.gauss(0, 0.05)))
        temp += -k_per_h * (temp - ambient(t_h)) / 60
    return out


def crossing_h(series: list[tuple[float, float]], at_s: float, below: float) -> float:
    return next(t for t, v in series if t > at_s and v <= below) / H - at_s / H


def test_a_pipe_cooling_faster_and_faster_is_told_the_time_it_really_has() -> None:
    # the room loses its heating in a cold snap: the pipe's surroundings fall 2 °C an hour
    series = newton(8.0, lambda t_h: 6.0 - 2.0 * t_h, 0.6, 12 * 60)
    detector = FreezeRisk()
    told: list[tuple[float, float]] = []
    for ts, temp in series:
        finding = detector.assess_one({"ts": ts, "pipe_temp_c": temp})
        detector.learn_one({"ts": ts, "pipe_temp_c": temp})
        if finding.score >= 0.5 and finding.severity == "warning" and finding.time_to_loss_s is not None:
            told.append((ts, finding.time_to_loss_s))
    assert told and told[0][0] <= 1.1 * H  # warned within the first hour of cooling
    errors = [abs(ttl / H - crossing_h(series, ts, 0.0)) / crossing_h(series, ts, 0.0) for ts, ttl in told]
    settled = [e for (ts, _), e in zip(told, errors, strict=True) if ts >= 80 * MIN]
    assert settled and max(settled) <= 0.2  # once the pace is clear (80 min of trend), within 20 %
    # the straight line through the same two hours says later
    at = 2 * H
    trend = Trend(2 * H)
    for ts, temp in series:
        if ts <= at:
            trend.add(ts, temp)
    line = trend.fit(at)
    assert line is not None
    line_h = line.time_to(0.0, rising=False)
    left_h = crossing_h(series, at, 0.0)
    assert line_h is not None and (line_h / H - left_h) / left_h > 0.15


def test_a_pipe_levelling_off_below_freezing_keeps_the_lines_earlier_time() -> None:
    """Levelling off may cancel a forecast, never delay one: the exponential still crosses, so
    the straight line's earlier time stands (a warning never comes late)."""
    series = newton(8.0, lambda t_h: -2.0, 0.3, 12 * 60)
    trend = Trend(2 * H)
    for ts, temp in series[:150]:
        trend.add(ts, temp)
    at = series[149][0]
    fc = forecast(trend, at, None, 0.0, rising=False, min_points=8, min_span_s=H, min_t_stat=3.0, within_s=6 * H)
    assert fc is not None and fc.model == "levelling" and fc.time_to_s is not None
    assert fc.settles_at is not None and fc.settles_at < 0
    assert fc.stated_s == fc.time_to_s < crossing_h(series, at, 0.0) * H


def test_a_pipe_levelling_off_above_freezing_is_not_forecast_to_freeze() -> None:
    series = newton(9.0, lambda t_h: 3.0, 0.8, 4 * 60)
    trend = Trend(2 * H)
    for ts, temp in series[: 2 * 60]:
        trend.add(ts, temp)
    fc = forecast(trend, series[119][0], None, 0.0, rising=False, min_points=8, min_span_s=H, min_t_stat=3.0)
    assert fc is not None and fc.time_to_s is None and fc.model == "levelling"


def test_a_battery_draining_faster_since_a_fault_is_told_the_new_pace() -> None:
    detector = BatteryDrain()
    pct, told = 60.0, None
    for minute in range(0, 40 * 60, 5):
        pct -= (0.05 if minute < 20 * 60 else 4.0) * 5 / 60  # 0.05 %/h, then 4 %/h from hour 20
        x = {"ts": minute * MIN, "battery_pct": pct}
        finding = detector.assess_one(x)
        detector.learn_one(x)
        if finding.score >= 0.5 and told is None:
            told = pct, finding.time_to_loss_s
    assert told is not None
    pct_then, ttl = told
    truth_h = (pct_then - 0.0) / 4.0  # offline when the gauge reads 0 %
    assert ttl is not None and abs(ttl / H - truth_h) / truth_h <= 0.2


def test_a_pipe_bursts_once_its_ice_plug_has_formed() -> None:
    series = [(m * MIN, 5.0 - m / 60) for m in range(150)]  # 1 °C an hour
    plain, plugged = FreezeRisk(), FreezeRisk(ice_plug_c=2.5)
    for ts, temp in series:
        a = plain.assess_one({"ts": ts, "pipe_temp_c": temp})
        b = plugged.assess_one({"ts": ts, "pipe_temp_c": temp})
        plain.learn_one({"ts": ts, "pipe_temp_c": temp})
        plugged.learn_one({"ts": ts, "pipe_temp_c": temp})
    assert a.score == b.score and a.evidence["predicted_zero_at_s"] == b.evidence["predicted_zero_at_s"]
    assert a.time_to_loss_s is not None and b.time_to_loss_s is not None
    assert math.isclose(b.time_to_loss_s - a.time_to_loss_s, 2.5 * H, rel_tol=0.05)


def test_a_chilled_load_spoils_its_tolerance_after_passing_the_limit() -> None:
    def told(detector: ColdChain) -> float | None:
        finding = None
        for minute in range(36):
            temp = 3.0 + 0.1 * minute if minute <= 20 else 5.0 + 0.1 * (minute - 20)
            x = {"ts": 60.0 * minute, "temp_c": temp, "compressor_on": float(minute == 20)}
            finding = detector.assess_one(x)
            detector.learn_one(x)
        assert finding is not None and finding.score >= 0.5
        return finding.time_to_loss_s

    crossing, spoiled = told(ColdChain()), told(ColdChain(tolerance_s=5400.0))
    assert crossing is not None and spoiled == crossing + 5400.0
