"""A worn bearing is told when it will seize, not when it crosses ISO zone D.

A spreading defect grows the vibration exponentially (each hour by a steady factor) from its
onset until the bearing seizes. The time a bearing warning states follows that growth: a
broken line through the logarithm of the vibration (steady, then rising from the onset) to
the seizure level. A machine whose vibration does not grow so keeps the zone-D forecast (the
earlier time, a lower bound) or, steady in zone D, "now".
"""

from __future__ import annotations

import math
import random

import orjson
import pytest
from detector_feed import FIRES, HOUR, T0, Reading, run

from detectors.base import Finding
from detectors.device import BatteryDrain
from detectors.equipment import BearingWear
from detectors.state import capture, restore
from detectors.trend import Trend

MINUTE = 60.0


def wearing_bearing(
    *, v0: float = 2.0, onset_h: float = 6.0, seize_h: float = 30.0, seize_mm_s: float = 24.0, seed: int = 3
) -> tuple[list[Reading], float]:
    """A reading a minute of a bearing growing exponentially from ``v0`` at ``onset_h`` to
    ``seize_mm_s`` at ``seize_h`` (5 % noise, a tenth of the readings with a 30 % impact);
    and the moment it seizes."""
    rng = random.Random(seed)
    k = math.log(seize_mm_s / v0) / ((seize_h - onset_h) * HOUR)
    readings = []
    for minute in range(int(seize_h * 60)):
        t = minute * MINUTE
        clean = v0 * math.exp(k * max(0.0, t - onset_h * HOUR))
        impact = 0.3 * clean if clean > 1.5 * v0 and rng.random() < 0.1 else 0.0
        readings.append({"ts": T0 + t, "vibration_mm_s": clean * (1 + rng.gauss(0, 0.05)) + impact})
    return readings, T0 + seize_h * HOUR


def relative_errors(results: list[tuple[Reading, Finding]], seizes_at: float) -> list[float]:
    """|stated − true time of seizure| / time really left, of every warning stating a time."""
    out = []
    for x, f in results:
        ttl = f.time_to_loss_s
        if f.score >= FIRES and ttl is not None and ttl > 0:
            left = seizes_at - x["ts"]
            out.append(abs(x["ts"] + ttl - seizes_at) / left)
    return out


@pytest.mark.parametrize(("onset_h", "seize_h", "seed"), [(6.0, 30.0, 3), (4.0, 16.0, 4), (8.0, 44.0, 5)])
def test_an_exponentially_wearing_bearing_is_told_when_it_seizes(onset_h: float, seize_h: float, seed: int) -> None:
    readings, seizes_at = wearing_bearing(onset_h=onset_h, seize_h=seize_h, seed=seed)
    results = run(BearingWear(), readings)
    warned = [(x, f) for x, f in results if f.score >= FIRES]
    assert warned, "the wear warns"
    first_x, first = warned[0]
    assert first.time_to_loss_s is not None
    assert abs(first_x["ts"] + first.time_to_loss_s - seizes_at) <= 0.25 * (seizes_at - first_x["ts"])
    errors = relative_errors(results, seizes_at)
    assert sorted(errors)[len(errors) // 2] <= 0.1  # median within 10 % of the time really left
    in_zone_d = [(x, f) for x, f in results if "zone_d" in f.evidence.get("triggers", ())]
    assert in_zone_d and all(f.severity == "critical" and (f.time_to_loss_s or 0) > HOUR for _, f in in_zone_d[:5])
    assert {"growth_pct_per_h", "seizure_mm_s", "predicted_seizure_at_s"} <= first.evidence.keys()


def test_zone_d_alone_forecasts_far_too_early_what_the_growth_forecasts_well() -> None:
    """What the issue measured: zone D is hours before the seizure (the old time's error)."""
    readings, seizes_at = wearing_bearing(onset_h=6.0, seize_h=30.0, seed=7)
    results = run(BearingWear(), readings)
    x, f = next((x, f) for x, f in results if f.score >= FIRES)
    zone_d_at = f.evidence["predicted_critical_at_s"]
    left = seizes_at - x["ts"]
    assert abs(zone_d_at - seizes_at) / left > 0.3
    assert abs(x["ts"] + (f.time_to_loss_s or 0.0) - seizes_at) / left < 0.25


def test_a_bearing_seizing_below_the_assumed_level_is_told_a_time_somewhat_late() -> None:
    """The seizure level is an assumption (``seizure_mm_s``): a bearing that seizes at 18 mm/s
    is told a time somewhat late, by the log of the ratio over the growth still to come."""
    readings, seizes_at = wearing_bearing(seize_mm_s=18.0, seed=8)
    errors = relative_errors(run(BearingWear(), readings), seizes_at)
    assert sorted(errors)[len(errors) // 2] <= 0.3


def test_a_steady_machine_in_zone_d_is_critical_now() -> None:
    rng = random.Random(9)
    readings = [{"ts": T0 + 60 * m, "vibration_mm_s": 8.0 * (1 + rng.gauss(0, 0.05))} for m in range(6 * 60)]
    finding = run(BearingWear(), readings)[-1][1]
    assert finding.severity == "critical" and finding.time_to_loss_s == 0.0
    assert "predicted_seizure_at_s" not in finding.evidence


def test_a_restored_bearing_forecasts_the_seizure_as_the_live_one() -> None:
    readings, _ = wearing_bearing(seed=10)
    half = len(readings) * 3 // 4
    live = BearingWear()
    run(live, readings[:half])
    restored = BearingWear()
    assert restore(restored, orjson.loads(orjson.dumps(capture(live))))
    for (_, a), (_, b) in zip(run(restored, readings[half:]), run(live, readings[half:]), strict=True):
        assert (a.score, a.severity) == (b.score, b.severity)
        if b.time_to_loss_s is None:
            assert a.time_to_loss_s is None
        else:
            assert a.time_to_loss_s == pytest.approx(b.time_to_loss_s, abs=60.0)


def test_the_knee_of_a_noisy_steady_then_rising_series_is_found() -> None:
    rng = random.Random(11)
    trend = Trend(window_s=12 * HOUR, max_buckets=12)
    for minute in range(12 * 60):
        t = minute * MINUTE
        trend.add(t, 0.7 + 0.12 * max(0.0, t / HOUR - 7.0) + rng.gauss(0, 0.05))
    found = trend.fit_knee(12 * HOUR)
    assert found is not None
    fit, knee = found
    assert knee == pytest.approx(7 * HOUR, abs=HOUR)
    assert fit.slope * HOUR == pytest.approx(0.12, rel=0.1)
    assert fit.level == pytest.approx(0.7 + 0.12 * 5, abs=0.05)
    line = trend.fit(12 * HOUR)
    assert line is not None and line.slope < 0.8 * fit.slope  # the whole window's line: too flat


def test_a_knee_needs_buckets_after_it() -> None:
    trend = Trend(window_s=12 * HOUR, max_buckets=12)
    trend.add(0.0, 1.0)
    assert trend.fit_knee(60.0) is None


def test_a_battery_is_told_when_it_goes_flat_not_when_it_reaches_its_margin() -> None:
    """The warning is judged by ``empty_pct`` (5 %), the loss is the device going offline at
    the gauge's 0 %: the time stated is the latter's, at the pace of the drain."""
    detector = BatteryDrain()
    told = []
    for minute in range(0, 30 * 60, 10):
        pct = round(60.0 - 3.0 * minute / 60)  # 3 % an hour, reported in whole per cent
        finding = detector.assess_one({"ts": minute * MINUTE, "battery_pct": float(pct)})
        detector.learn_one({"ts": minute * MINUTE, "battery_pct": float(pct)})
        if finding.severity == "warning" and finding.time_to_loss_s is not None:
            told.append((minute * MINUTE + finding.time_to_loss_s, finding.evidence["predicted_empty_at_s"]))
    assert told, "the drain warns"
    flat_at, empty_at = 20 * HOUR, (60.0 - 5.0) / 3.0 * HOUR
    assert all(abs(t - flat_at) <= 0.5 * HOUR for t, _ in told)
    assert all(abs(e - empty_at) <= 0.5 * HOUR for _, e in told)  # the margin's time, in the evidence
