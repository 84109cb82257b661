"""Scenario tests of the physical detectors: what a policyholder would (not) be warned about.

Each scenario is a stream of readings the way a device sends them; every reading goes through
``assess_one`` then ``learn_one`` like ``streams.decisions`` does. A finding "fires" when its
score reaches 0.5 (``WarningPolicy.open_score``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from detector_feed import DAY, FIRES, HOUR, T0, Reading, firing, run

from detectors.base import Finding
from detectors.device import BatteryDrain, SensorStuck
from detectors.equipment import BearingWear, ColdChain
from detectors.home import (
    BurstPipe,
    FireRisk,
    FreezeRisk,
    MouldRisk,
    PowerCut,
    SlowLeak,
    WaterLeak,
)
from detectors.vehicle import DriverFatigue, HarshBraking, Speeding


def first_firing(results: list[tuple[Reading, Finding]]) -> tuple[Reading, Finding]:
    fired = firing(results)
    assert fired, "expected the detector to fire"
    return fired[0]


def quiet(results: list[tuple[Reading, Finding]]) -> bool:
    return all(f.score < FIRES for _, f in results)


def series(
    metric: str, f: Callable[[float], float], hours: float, every_s: float = 60.0, **extra: float
) -> list[Reading]:
    """Readings of ``metric = f(seconds since T0)`` every ``every_s`` for ``hours``."""
    n = int(hours * HOUR / every_s) + 1
    return [{"ts": T0 + i * every_s, metric: f(i * every_s), **extra} for i in range(n)]


# --------------------------------------------------------------------------- water


def test_wet_leak_sensor_is_critical_at_once() -> None:
    results = run(WaterLeak(), [{"ts": T0, "water_leak": 0.0}, {"ts": T0 + 60, "water_leak": 1.0}])
    (_, dry), (_, wet) = results
    assert dry.score == 0.0
    assert (wet.score, wet.severity, wet.time_to_loss_s) == (1.0, "critical", 0.0)
    assert wet.evidence["water_leak"] is True


def test_a_splash_shorter_than_the_debounce_does_not_fire() -> None:
    splash = [{"ts": T0, "water_leak": 1.0}, {"ts": T0 + 10, "water_leak": 0.0}]
    assert quiet(run(WaterLeak(debounce_s=30.0), splash))


def household_day(rng: random.Random, days: int = 1) -> list[float]:
    """Flow (l/min) each minute of a household's days: showers, toilets, taps, a dishwasher;
    between uses the meter reads zero."""
    flow = [0.0] * (days * 1440)
    for day in range(days):
        base = day * 1440
        uses = [(7 * 60, 10, 9.0), (19 * 60, 60, 4.0), (22 * 60, 8, 9.0)]  # showers, dishwasher
        uses += [(rng.randrange(6 * 60, 23 * 60), 1, 6.0) for _ in range(12)]  # toilets
        uses += [(rng.randrange(6 * 60, 23 * 60), rng.randrange(1, 4), 3.0) for _ in range(20)]
        for start, minutes, lpm in uses:
            for m in range(start, min(start + minutes, 1440)):
                flow[base + m] = max(flow[base + m], lpm)
    return flow


def test_a_dripping_pipe_under_a_normal_household_day_is_a_slow_leak() -> None:
    flow = household_day(random.Random(1))
    readings = [{"ts": T0 + 60 * m, "flow_lpm": v + 0.4} for m, v in enumerate(flow)]
    x, finding = first_firing(run(SlowLeak(), readings))
    assert x["ts"] - T0 == pytest.approx(2 * HOUR, abs=60)
    assert finding.severity == "warning"
    assert finding.evidence["min_flow_lpm"] == 0.4
    assert finding.evidence["lost_litres"] == pytest.approx(48, abs=1)


def test_a_normal_household_day_is_not_a_slow_leak() -> None:
    flow = household_day(random.Random(2), days=3)
    readings = [{"ts": T0 + 60 * m, "flow_lpm": v} for m, v in enumerate(flow)]
    assert quiet(run(SlowLeak(), readings))


def test_hours_of_garden_irrigation_are_not_a_slow_leak() -> None:
    assert quiet(run(SlowLeak(), series("flow_lpm", lambda t: 12.0, hours=4)))


def test_a_meter_dropout_restarts_the_slow_leak_clock() -> None:
    readings = series("flow_lpm", lambda t: 0.5, hours=1.5)
    readings += [{"ts": T0 + 3 * HOUR + 60 * m, "flow_lpm": 0.5} for m in range(60)]  # 1.5 h gap
    assert quiet(run(SlowLeak(), readings))


def test_a_burst_pipe_fires_after_ten_minutes_of_high_flow_and_turns_critical() -> None:
    results = run(BurstPipe(), series("flow_lpm", lambda t: 35.0, hours=0.5))
    x, finding = first_firing(results)
    assert x["ts"] - T0 == pytest.approx(600, abs=60)
    assert finding.severity == "warning" and finding.time_to_loss_s == 0.0
    assert results[-1][1].severity == "critical"
    assert results[-1][1].evidence["lost_litres"] == pytest.approx(35 * 30, abs=35)


def test_a_bath_and_a_hose_are_not_a_burst_pipe() -> None:
    bath = [{"ts": T0 + 60 * m, "flow_lpm": 18.0} for m in range(12)]
    hose = [{"ts": T0 + HOUR + 60 * m, "flow_lpm": 25.0} for m in range(9)]
    shower = [{"ts": T0 + 2 * HOUR + 60 * m, "flow_lpm": 9.0} for m in range(30)]
    assert quiet(run(BurstPipe(), bath + hose + shower))


def test_a_wet_floor_with_high_flow_is_a_burst_at_once() -> None:
    readings = [
        {"ts": T0, "flow_lpm": 0.0, "water_leak": 0.0},
        {"ts": T0 + 60, "flow_lpm": 30.0, "water_leak": 1.0},
    ]
    finding = run(BurstPipe(), readings)[-1][1]
    assert (finding.score, finding.severity, finding.time_to_loss_s) == (1.0, "critical", 0.0)


def test_a_wet_sensor_reported_separately_still_counts_with_high_flow() -> None:
    readings = [{"ts": T0, "water_leak": 1.0}, {"ts": T0 + 30, "flow_lpm": 30.0}]
    assert run(BurstPipe(), readings)[-1][1].severity == "critical"


# --------------------------------------------------------------------------- frost


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pipe_cooling_one_degree_an_hour_gets_a_freeze_warning_hours_ahead(seed: int) -> None:
    rng = random.Random(seed)
    readings = series("pipe_temp_c", lambda t: 6.0 - t / HOUR + rng.uniform(-0.3, 0.3), hours=6)
    results = run(FreezeRisk(), readings)
    freezes_at = T0 + 6 * HOUR
    x, first = first_firing(results)
    assert freezes_at - x["ts"] >= 4 * HOUR
    assert first.severity == "warning"
    assert first.evidence["trend_c_per_h"] == pytest.approx(-1.0, abs=0.3)
    with_full_window = [(x, f) for x, f in results if T0 + 2 * HOUR <= x["ts"] <= T0 + 5 * HOUR]
    for x, f in with_full_window:
        assert f.score >= FIRES
        assert f.evidence["predicted_zero_at_s"] == pytest.approx(freezes_at, abs=30 * 60)
        assert f.time_to_loss_s == pytest.approx(f.evidence["predicted_zero_at_s"] - x["ts"], abs=1)
    scores = [f.score for _, f in with_full_window]
    assert scores[-1] > scores[0]  # nearer the frost, higher the score
    critical = [x for x, f in results if f.severity == "critical"]
    assert critical and critical[0]["ts"] < freezes_at  # critical while still above 0 °C


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pipe_cooling_slowly_to_a_stable_8c_never_warns(seed: int) -> None:
    rng = random.Random(seed)
    readings = series(
        "pipe_temp_c",
        lambda t: 8.0 + 6.0 * math.exp(-t / (3 * HOUR)) + rng.uniform(-0.3, 0.3),
        hours=24,
    )
    assert quiet(run(FreezeRisk(), readings))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pipe_levelling_off_above_freezing_does_not_warn(seed: int) -> None:
    """Heating off in a house at 5 °C: a straight line through the first hour would reach
    0 °C in about two hours, but the cooling visibly slows down (Newton's law)."""
    rng = random.Random(seed)
    readings = series(
        "pipe_temp_c",
        lambda t: 5.0 + 9.0 * math.exp(-t / HOUR) + rng.uniform(-0.3, 0.3),
        hours=12,
    )
    results = run(FreezeRisk(), readings)
    assert quiet(results)
    assert any(f.evidence.get("levelling_off_at_c", 0) > 2 for _, f in results)


def test_a_noisy_pipe_holding_at_3c_never_warns() -> None:
    rng = random.Random(4)
    readings = series("pipe_temp_c", lambda t: 3.0 + rng.gauss(0, 0.3), hours=48, every_s=300)
    assert quiet(run(FreezeRisk(), readings))


def test_a_pipe_at_freezing_point_is_critical() -> None:
    readings = series("pipe_temp_c", lambda t: -0.5, hours=2)
    finding = run(FreezeRisk(), readings)[-1][1]
    assert (finding.score, finding.severity, finding.time_to_loss_s) == (1.0, "critical", 0.0)


# --------------------------------------------------------------------------- mould


def test_humidity_above_70_for_two_days_is_a_mould_advisory() -> None:
    results = run(MouldRisk(), series("humidity_pct", lambda t: 82.0, hours=60, every_s=900))
    x, finding = first_firing(results)
    assert x["ts"] - T0 == 48 * HOUR
    assert finding.severity == "advisory"
    assert results[-1][1].score > finding.score


def test_a_bathroom_steaming_up_after_each_shower_is_not_mould_risk() -> None:
    def humidity(t: float) -> float:
        return 90.0 if (t % DAY) < 1.5 * HOUR else 55.0

    assert quiet(run(MouldRisk(), series("humidity_pct", humidity, hours=24 * 7, every_s=600)))


def test_airing_a_damp_room_briefly_does_not_reset_the_mould_clock() -> None:
    def humidity(t: float) -> float:
        return 60.0 if 24 * HOUR <= t < 25 * HOUR else 80.0

    results = run(MouldRisk(), series("humidity_pct", humidity, hours=50, every_s=900))
    assert results[-1][1].score >= FIRES


# --------------------------------------------------------------------------- fire


def test_smoke_is_critical() -> None:
    finding = run(FireRisk(), [{"ts": T0, "smoke": 1.0, "temp_c": 22.0}])[-1][1]
    assert (finding.score, finding.severity, finding.time_to_loss_s) == (1.0, "critical", 0.0)


def test_a_room_heating_fast_warns_before_the_smoke() -> None:
    readings = series("temp_c", lambda t: 21.0 + 0.75 * t / 60, hours=8 / 60, every_s=30)
    x, finding = first_firing(run(FireRisk(), readings))
    assert finding.severity == "warning"
    assert finding.evidence["temp_rise_c"] >= 5.0
    assert x["ts"] - T0 <= 7 * 60


def test_carbon_monoxide_warns_then_is_critical() -> None:
    low = run(FireRisk(), [{"ts": T0, "co_ppm": 80.0}])[-1][1]
    high = run(FireRisk(), [{"ts": T0, "co_ppm": 300.0}])[-1][1]
    assert (low.severity, high.severity) == ("warning", "critical")
    assert low.score >= FIRES and high.score > low.score


def test_cooking_and_afternoon_sun_are_not_a_fire() -> None:
    cooking = series("temp_c", lambda t: 21.0 + min(2.5, 0.25 * t / 60), hours=0.5, every_s=30)
    sun = series("temp_c", lambda t: 21.0 + 7.0 * t / (3 * HOUR), hours=3, every_s=60)
    later = [{**x, "ts": x["ts"] + HOUR} for x in sun]
    assert quiet(run(FireRisk(), cooking + later + [{"ts": T0 + 5 * HOUR, "co_ppm": 9.0}]))


# --------------------------------------------------------------------------- mains power


def test_a_power_cut_warns_with_the_time_the_freezer_has_left() -> None:
    results = run(PowerCut(), series("mains_v", lambda t: 0.0 if t >= 60 else 230.0, hours=4))
    x, finding = first_firing(results)
    assert x["ts"] - T0 == 180  # 2 min into the outage
    assert finding.severity == "warning"
    assert finding.time_to_loss_s == pytest.approx(4 * HOUR - 120)
    last = results[-1][1]
    assert last.severity == "critical" and last.time_to_loss_s == pytest.approx(60)


def test_a_brown_out_dip_is_not_a_power_cut() -> None:
    readings = series("mains_v", lambda t: 120.0 if 600 <= t < 660 else 228.0, hours=1, every_s=10)
    assert quiet(run(PowerCut(), readings))


# --------------------------------------------------------------------------- driving


def test_a_half_g_brake_fires_and_a_gentle_one_does_not() -> None:
    detector = HarshBraking()
    gentle = detector.assess_one({"ts": T0, "accel_long_g": -0.2, "speed_kmh": 50.0})
    hard = detector.assess_one({"ts": T0, "accel_long_g": -0.5, "speed_kmh": 50.0})
    emergency = detector.assess_one({"ts": T0, "accel_long_g": -0.9, "speed_kmh": 50.0})
    assert gentle.score == 0.0
    assert hard.score >= FIRES and hard.severity == "warning"
    assert hard.evidence["decel_g"] == 0.5 and hard.evidence["speed_kmh"] == 50.0
    assert emergency.score == 1.0 and emergency.severity == "critical"


def test_harsh_brakes_are_counted_per_hour_and_per_trip() -> None:
    readings: list[Reading] = []
    for brake_at in (600.0, 1500.0, 2400.0):  # three 2-second brakes at 10 Hz
        readings += [{"ts": T0 + brake_at + i / 10, "accel_long_g": -0.55, "speed_kmh": 60.0} for i in range(20)]
    readings.append({"ts": T0 + 2500, "accel_long_g": 0.0, "ignition": 0.0})  # parked
    readings.append({"ts": T0 + 3000, "accel_long_g": -0.6, "ignition": 1.0})  # next trip
    results = firing(run(HarshBraking(), readings))
    assert results[-2][1].evidence["events_last_hour"] == 3
    assert results[-2][1].evidence["events_this_trip"] == 3
    assert results[-1][1].evidence["events_last_hour"] == 4
    assert results[-1][1].evidence["events_this_trip"] == 1


def drive(start: float, hours: float, speed: float = 90.0, every_s: float = 60.0) -> list[Reading]:
    n = int(hours * HOUR / every_s)
    return [{"ts": start + i * every_s, "ignition": 1.0, "speed_kmh": speed} for i in range(n + 1)]


def park(start: float, minutes: float, every_s: float = 300.0) -> list[Reading]:
    n = int(minutes * 60 / every_s)
    return [{"ts": start + i * every_s, "ignition": 0.0, "speed_kmh": 0.0} for i in range(1, n)]


def test_four_and_a_half_hours_at_the_wheel_is_driver_fatigue() -> None:
    results = run(DriverFatigue(), drive(T0 + 9 * HOUR, 4.5))
    by_hour = {round((x["ts"] - T0 - 9 * HOUR) / HOUR, 2): f for x, f in results}
    assert by_hour[3.0].score < FIRES
    assert by_hour[3.5].severity == "advisory" and by_hour[3.5].score >= FIRES
    assert by_hour[3.5].time_to_loss_s == pytest.approx(0.5 * HOUR)
    assert by_hour[4.0].severity == "warning" and by_hour[4.0].score == 1.0
    assert by_hour[4.5].severity == "critical"


def test_four_one_hour_trips_with_proper_breaks_are_not_fatigue() -> None:
    readings: list[Reading] = []
    start = T0 + 8 * HOUR
    for _ in range(4):
        readings += drive(start, 1.0) + park(start + HOUR, 30)
        start += 1.5 * HOUR
    assert quiet(run(DriverFatigue(), readings))


def test_four_one_hour_trips_with_ten_minute_stops_are_fatigue() -> None:
    readings: list[Reading] = []
    start = T0 + 8 * HOUR
    for _ in range(4):
        readings += drive(start, 1.0) + park(start + HOUR, 10, every_s=120)
        start += HOUR + 600
    assert run(DriverFatigue(), readings)[-1][1].score >= FIRES


def test_a_break_without_readings_counts_as_a_break() -> None:
    readings = drive(T0 + 8 * HOUR, 2.5) + drive(T0 + 11 * HOUR, 2.5)  # 30 min silent
    assert quiet(run(DriverFatigue(), readings))


def test_long_driving_after_midnight_is_one_level_more_urgent() -> None:
    results = run(DriverFatigue(), drive(T0 - 2 * HOUR, 3.6))  # from 22:00, ends 01:36 local
    last = results[-1][1]
    assert last.evidence["night"] is True
    assert last.severity == "warning"  # an advisory by day


def test_speeding_20_percent_over_for_30_seconds_fires() -> None:
    readings = [{"ts": T0 + s, "speed_kmh": 130.0, "speed_limit_kmh": 100.0} for s in range(0, 61, 5)]
    x, finding = first_firing(run(Speeding(), readings))
    assert x["ts"] - T0 == 30
    assert finding.evidence["over_pct"] == 30.0 and finding.severity == "warning"


def test_speeding_uses_the_last_posted_limit_and_flags_extreme_speed() -> None:
    readings = [{"ts": T0, "speed_kmh": 50.0, "speed_limit_kmh": 60.0}]
    readings += [{"ts": T0 + s, "speed_kmh": 100.0} for s in range(1, 61, 5)]
    finding = run(Speeding(), readings)[-1][1]
    assert finding.severity == "critical" and finding.evidence["speed_limit_kmh"] == 60.0


def test_a_little_over_the_limit_or_a_short_overtake_is_not_speeding() -> None:
    steady = [{"ts": T0 + s, "speed_kmh": 115.0, "speed_limit_kmh": 100.0} for s in range(0, 600, 5)]
    overtake = [
        {"ts": T0 + 600 + s, "speed_kmh": 130.0 if s < 20 else 95.0, "speed_limit_kmh": 100.0} for s in range(0, 120, 5)
    ]
    assert quiet(run(Speeding(), steady + overtake))


# --------------------------------------------------------------------------- equipment


def test_a_wearing_bearing_is_forecast_days_before_zone_d() -> None:
    rng = random.Random(11)
    readings = series(
        "vibration_mm_s",
        lambda t: 2.0 + 0.4 * t / DAY + rng.uniform(-0.3, 0.3),
        hours=24 * 10,
        every_s=HOUR,
    )
    results = run(BearingWear(), readings)
    reaches_critical = T0 + (7.1 - 2.0) / 0.4 * DAY
    x, finding = first_firing(results)
    assert reaches_critical - x["ts"] >= 6 * DAY
    assert finding.evidence["vibration_mm_s"] < 4.5  # forecast while still in zone B
    assert finding.time_to_loss_s is not None and finding.time_to_loss_s > 5 * DAY
    last_days = [(x, f) for x, f in results if x["ts"] >= T0 + 8 * DAY]
    assert all(f.score >= FIRES and f.time_to_loss_s is not None for _, f in last_days)
    predicted = sorted(x["ts"] + (f.time_to_loss_s or 0.0) for x, f in last_days)
    assert predicted[len(predicted) // 2] == pytest.approx(reaches_critical, abs=0.5 * DAY)


def test_a_healthy_machine_that_starts_and_stops_is_quiet() -> None:
    rng = random.Random(12)

    def vibration(t: float) -> float:
        running = (t % DAY) < 16 * HOUR
        return 2.2 + rng.uniform(-0.4, 0.4) if running else 0.0

    readings = series("vibration_mm_s", vibration, hours=24 * 30, every_s=600)
    assert quiet(run(BearingWear(), readings))


def test_vibration_in_zone_d_or_a_hot_bearing_is_critical() -> None:
    shaking = run(BearingWear(), [{"ts": T0, "vibration_mm_s": 8.0}])[-1][1]
    hot = run(BearingWear(), [{"ts": T0, "vibration_mm_s": 2.0, "bearing_temp_c": 95.0}])[-1][1]
    zone_c = run(BearingWear(), [{"ts": T0, "vibration_mm_s": 5.0}])[-1][1]
    assert (shaking.severity, hot.severity, zone_c.severity) == ("critical", "critical", "warning")
    assert zone_c.score >= FIRES


def test_vibration_twice_the_learnt_baseline_is_an_advisory() -> None:
    rng = random.Random(13)
    readings = series("vibration_mm_s", lambda t: 1.0 + rng.uniform(-0.1, 0.1), hours=100, every_s=HOUR)
    detector = BearingWear()
    assert quiet(run(detector, readings))
    finding = detector.assess_one({"ts": T0 + 101 * HOUR, "vibration_mm_s": 2.6})
    assert finding.severity == "advisory" and finding.score >= FIRES
    assert finding.evidence["ratio_to_baseline"] == pytest.approx(2.6, abs=0.1)


def test_a_failed_compressor_warns_before_the_box_leaves_the_band() -> None:
    rng = random.Random(21)
    readings = series(
        "temp_c",
        lambda t: 25.0 - 21.0 * math.exp(-t / (3 * HOUR)) + rng.uniform(-0.1, 0.1),
        hours=1.5,
        compressor_on=0.0,
        door_open=0.0,
    )
    results = run(ColdChain(), readings)
    leaves_band = T0 - 3 * HOUR * math.log((25.0 - 8.0) / 21.0)
    x, warning = first_firing(results)
    assert warning.severity == "warning" and x["ts"] < leaves_band
    assert warning.time_to_loss_s is not None
    assert x["ts"] + warning.time_to_loss_s == pytest.approx(leaves_band, abs=10 * 60)
    critical = [x for x, f in results if f.severity == "critical"]
    assert critical and critical[0]["ts"] - leaves_band == pytest.approx(600, abs=120)


def test_a_thermostat_cycling_and_a_door_opened_for_loading_are_not_a_failure() -> None:
    def temp(t: float) -> float:
        phase = t % 1200  # 10 min off warming, 10 min on cooling, between 3 and 6 °C
        return 3.0 + 0.3 * phase / 60 if phase < 600 else 6.0 - 0.3 * (phase - 600) / 60

    readings = series("temp_c", temp, hours=24)
    for x in readings:
        x["compressor_on"] = 0.0 if (x["ts"] - T0) % 1200 < 600 else 1.0
        x["door_open"] = 0.0
    loading = [
        {"ts": T0 + 25 * HOUR + 60 * m, "temp_c": 12.0, "door_open": 1.0, "compressor_on": 1.0} for m in range(8)
    ]
    assert quiet(run(ColdChain(), readings + loading))


# --------------------------------------------------------------------------- any device


def test_a_draining_battery_is_forecast_to_go_flat() -> None:
    rng = random.Random(31)
    readings = series(
        "battery_pct",
        lambda t: round(80.0 - 2.0 * t / HOUR + rng.uniform(-0.5, 0.5)),
        hours=36,
        every_s=900,
    )
    results = run(BatteryDrain(), readings)
    flat_at = T0 + (80.0 - 0.0) / 2.0 * HOUR  # offline when the gauge reads 0 %
    x, finding = first_firing(results)
    assert finding.severity == "warning"
    assert flat_at - x["ts"] >= 20 * HOUR
    assert finding.time_to_loss_s is not None
    assert x["ts"] + finding.time_to_loss_s == pytest.approx(flat_at, abs=2 * HOUR)
    assert results[-1][1].severity == "warning" and results[-1][1].evidence["battery_pct"] < 10


def test_a_healthy_battery_and_a_recharge_are_quiet() -> None:
    slow = series("battery_pct", lambda t: round(95.0 - 0.05 * t / HOUR), hours=24 * 20, every_s=HOUR)
    recharge = series("battery_pct", lambda t: 30.0 - t / HOUR, hours=10, every_s=900)
    recharge += [{"ts": recharge[-1]["ts"] + 900 * (i + 1), "battery_pct": 100.0} for i in range(4)]
    assert quiet(run(BatteryDrain(), slow))
    assert run(BatteryDrain(), recharge)[-1][1].score == 0.0


def test_a_sensor_frozen_at_one_value_for_six_hours_is_stuck() -> None:
    rng = random.Random(41)
    varying = series("pipe_temp_c", lambda t: round(12.0 + rng.uniform(-1, 1), 1), hours=12, every_s=600)
    frozen = [{"ts": T0 + 12 * HOUR + 600 * (i + 1), "pipe_temp_c": 11.3} for i in range(48)]
    results = run(SensorStuck(metric="pipe_temp_c"), varying + frozen)
    x, finding = first_firing(results)
    assert x["ts"] - frozen[0]["ts"] == pytest.approx(6 * HOUR, abs=600)
    assert finding.evidence["metric"] == "pipe_temp_c" and finding.evidence["value"] == 11.3


def test_a_varying_sensor_a_constant_flag_and_a_parked_car_are_not_stuck() -> None:
    rng = random.Random(42)
    varying = series("temp_c", lambda t: round(21.0 + rng.gauss(0, 0.3), 1), hours=72, every_s=600)
    assert quiet(run(SensorStuck(), varying))
    always_flat = series("temp_c", lambda t: 20.0, hours=72, every_s=600)
    assert quiet(run(SensorStuck(), always_flat))
    trips = series("speed_kmh", lambda t: 50.0 + t / 60, hours=1) + [
        {"ts": T0 + 2 * HOUR + 600 * i, "speed_kmh": 0.0} for i in range(100)
    ]
    assert quiet(run(SensorStuck(metric="speed_kmh", ignore_values=(0.0,)), trips))
