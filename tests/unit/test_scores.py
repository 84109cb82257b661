"""Risk scores: the simulator's risky drivers score worse than its calm ones, every point is
explained by a factor, the same data gives the same score, and a home's warnings add up."""

from __future__ import annotations

import doctest
import importlib
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from core.contract import Reading
from core.localtime import zone
from core.settings import Settings
from scores import daily, model
from scores.features import (
    DriverFeatures,
    PropertyFeatures,
    WarningFact,
    driver_features,
    property_features,
)
from scores.model import (
    DRIVER_FACTORS,
    NO_GRADE,
    PROPERTY_FACTORS,
    SCORE_VERSION,
    Score,
    driver_score,
    grade_of,
    model_fingerprint,
    property_score,
    score_json,
)
from simulator.signals import Span, Trace
from simulator.vehicle import DRIVER_TYPES, simulate_driver

START_MS = 1_736_870_400_000  # 2025-01-15 00:00 China standard time
DAYS = 4
SEEDS = (11, 12, 13)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def as_readings(trace: Trace) -> Iterator[Reading]:
    """A simulated trace as the readings a vehicle stores (NaN: not in the reading)."""
    names = list(daily.DRIVING_METRICS)
    columns = [trace.metrics[name].tolist() for name in names]
    for i, ts in enumerate(trace.ts_ms.tolist()):
        yield Reading(int(ts), {n: c[i] for n, c in zip(names, columns, strict=True) if not math.isnan(c[i])})


def simulated(driver_type: str, seed: int) -> list[Reading]:
    trace = simulate_driver(driver_type, np.random.SeedSequence(seed), Span(START_MS, DAYS * 86_400.0))
    return list(as_readings(trace))


@pytest.fixture(scope="module")
def fleet_scores() -> dict[str, list[Score]]:
    """Each driver type's scores over four simulated days, one per seed."""
    out = {kind: [driver_score(driver_features(simulated(kind, seed))) for seed in SEEDS] for kind in DRIVER_TYPES}
    for kind, scores in out.items():
        print(
            f"\n{kind:20s}",
            " ".join(f"{s.value:5.1f} {s.grade}" for s in scores),
            "|",
            ", ".join(f"{f.name} {f.value:g}" for f in scores[0].factors if f.value),
        )
    return out


# ------------------------------------------------------------------ the simulator's drivers


def test_aggressive_and_fatigued_drivers_score_worse_than_calm_ones_by_a_margin(
    fleet_scores: dict[str, list[Score]],
) -> None:
    calm = [s.value for s in fleet_scores["calm"]]
    aggressive = [s.value for s in fleet_scores["aggressive"]]
    fatigued = [s.value for s in fleet_scores["fatigued_long_haul"]]
    assert max(calm) < 5.0
    assert min(aggressive) >= max(calm) + 25.0, (calm, aggressive)
    assert min(fatigued) >= max(calm) + 25.0, (calm, fatigued)
    assert {s.grade for s in fleet_scores["calm"]} == {"A"}
    assert all(s.grade in ("C", "D", "E") for s in fleet_scores["aggressive"] + fleet_scores["fatigued_long_haul"])


def test_each_risky_driver_is_worse_for_the_reason_that_makes_them_risky(
    fleet_scores: dict[str, list[Score]],
) -> None:
    for score in fleet_scores["aggressive"]:
        points = {f.name: f.points for f in score.factors}
        assert points["speeding"] > 10 and points["harsh_braking"] > 5, points
        assert points["fatigue"] == 0
    for score in fleet_scores["fatigued_long_haul"]:
        points = {f.name: f.points for f in score.factors}
        assert points["fatigue"] == 30.0 and score.basis["fatigue_episodes"] == DAYS, (points, score.basis)
        assert points["harsh_braking"] == points["speeding"] == 0
    for score in fleet_scores["night"]:  # (a night shift's short stops are no break: some run past 4 h)
        points = {f.name: f.points for f in score.factors}
        assert points["night_driving"] == 10.0 and score.value == 10.0 + points["fatigue"]
    # a courier drives all day in town, calmly: many kilometres, no risky habit
    assert all(s.value < 5 and s.basis["distance_km"] > 400 for s in fleet_scores["courier"])


def test_every_point_of_a_driver_score_comes_from_a_factor_with_its_weight(
    fleet_scores: dict[str, list[Score]],
) -> None:
    for scores in fleet_scores.values():
        for score in scores:
            assert [f.name for f in score.factors] == [spec.name for spec in DRIVER_FACTORS]
            assert score.value == pytest.approx(sum(f.points for f in score.factors), abs=1e-9)
            assert sum(f.weight for f in score.factors) == 100
            for f in score.factors:
                assert f.points == pytest.approx(f.weight * f.level, abs=0.005)
                expected = min(max((f.value - f.good) / (f.bad - f.good), 0.0), 1.0)
                assert f.level == pytest.approx(expected, abs=1e-4)
            assert score.version == SCORE_VERSION and score.grade == grade_of(score.value)


def test_the_same_readings_give_byte_identical_scores_and_the_simulator_gives_the_same_readings() -> None:
    first = simulated("aggressive", 7)
    again = simulated("aggressive", 7)
    one = score_json(driver_score(driver_features(first)))
    assert one == score_json(driver_score(driver_features(iter(first))))  # a generator reads the same
    assert one == score_json(driver_score(driver_features(again)))
    assert '"version":"1"' in one and '"points"' in one and '"weight"' in one


# ----------------------------------------------------------------------- driving features


def drive(
    start_ms: int, seconds: int, speed: float = 60.0, limit: float = 60.0, step_s: int = 1, **extra: float
) -> list[Reading]:
    return [
        Reading(start_ms + i * 1000, {"ignition": 1.0, "speed_kmh": speed, "speed_limit_kmh": limit, **extra})
        for i in range(0, seconds, step_s)
    ]


def parked(at_ms: int) -> Reading:
    return Reading(at_ms, {"ignition": 0.0, "speed_kmh": 0.0})


def with_accel(readings: list[Reading], at_s: list[int], g: float) -> list[Reading]:
    t0 = readings[0].ts
    hits = {t0 + s * 1000 for s in at_s}
    return [Reading(r.ts, {**r.metrics, "accel_long_g": g}) if r.ts in hits else r for r in readings]


@pytest.mark.parametrize(
    ("brakes_at_s", "g", "brakes", "accels"),
    [
        ([100, 101, 102], -0.45, 1, 0),  # one brake over three readings
        ([100, 105], -0.45, 1, 0),  # within the refractory period: the same event
        ([100, 130, 400], -0.5, 3, 0),
        ([100, 130], -0.39, 0, 0),  # not harsh
        ([100, 130], 0.36, 0, 2),  # harsh accelerations
        ([100, 130], 0.34, 0, 0),
    ],
)
def test_harsh_events_are_counted_once_each_with_a_refractory_period(
    brakes_at_s: list[int], g: float, brakes: int, accels: int
) -> None:
    f = driver_features(with_accel(drive(START_MS, 600), brakes_at_s, g))
    assert (f.harsh_brakes, f.harsh_accelerations) == (brakes, accels)


def test_a_parked_vehicle_s_knocks_are_not_harsh_braking() -> None:
    knocks = [Reading(START_MS + i * 60_000, {"ignition": 0.0, "accel_long_g": -0.9}) for i in range(10)]
    assert driver_features(knocks).harsh_brakes == 0


@pytest.mark.parametrize(
    ("legs", "episodes"),
    [
        ([(4.5, 0)], 1),  # 4.5 h at the wheel
        ([(3.9, 0)], 0),
        ([(3.0, 25), (3.0, 0)], 0),  # a 25-min break resets the stint
        ([(3.0, 10), (2.0, 0)], 1),  # a 10-min stop does not
        ([(4.5, 30), (4.5, 0)], 2),  # one episode per stint
        ([(8.0, 0)], 1),  # however long it goes on
    ],
)
def test_fatigue_episodes_are_stints_over_4_hours_without_a_20_minute_break(
    legs: list[tuple[float, int]], episodes: int
) -> None:
    readings: list[Reading] = []
    t = START_MS
    for hours, stop_min in legs:
        readings += drive(t, int(hours * 3600), step_s=10)
        t += int(hours * HOUR_MS)
        if stop_min:
            readings += [parked(t + m * 60_000) for m in range(stop_min)]
            t += stop_min * 60_000
    assert driver_features(readings).fatigue_episodes == episodes


def test_a_dropout_longer_than_a_break_is_a_break_and_a_shorter_one_is_not() -> None:
    three_hours = 3 * 3600
    long_gap = drive(START_MS, three_hours, step_s=10) + drive(START_MS + 3 * HOUR_MS + 30 * 60_000, 2 * 3600)
    short_gap = drive(START_MS, three_hours, step_s=10) + drive(START_MS + 3 * HOUR_MS + 5 * 60_000, 2 * 3600)
    assert driver_features(long_gap).fatigue_episodes == 0
    assert driver_features(short_gap).fatigue_episodes == 1


def test_speeding_is_driving_time_more_than_10_percent_over_the_limit() -> None:
    readings = drive(START_MS, 1800, speed=66.0, limit=60.0) + drive(START_MS + 1_800_000, 1800, speed=70.0)
    f = driver_features(readings)
    assert f.speeding_share == pytest.approx(0.5, abs=0.001)
    assert f.distance_km == pytest.approx(0.5 * 66 + 0.5 * 70, abs=0.1)


def test_night_is_22_to_5_on_the_driver_s_own_clock() -> None:
    at_23 = START_MS - HOUR_MS  # 23:00 in Shanghai, 16:00 in Berlin
    readings = drive(at_23, 3600, step_s=5)
    assert driver_features(readings).night_share == pytest.approx(1.0, abs=0.01)
    assert driver_features(readings, zone("Europe/Berlin")).night_share == 0.0
    morning = drive(START_MS + 5 * HOUR_MS, 3600, step_s=5)  # 05:00–06:00
    assert driver_features(morning).night_share == 0.0


def test_distance_across_a_dropout_comes_from_the_positions() -> None:
    before = drive(START_MS, 60, lat=31.0, lon=121.0)
    after = drive(START_MS + 10 * 60_000, 60, lat=31.1, lon=121.0)  # 10 min later, 11.1 km north
    f = driver_features(before + after)
    assert f.distance_km == pytest.approx(1.0 + 1.0 + 11.12, abs=0.1)
    assert f.driving_h == pytest.approx(118 / 3600, abs=1e-6)  # the dropout's time is not counted


def test_a_few_kilometres_are_judged_over_at_least_50_and_too_little_driving_is_not_graded() -> None:
    few = DriverFeatures(distance_km=5.0, driving_h=0.2, harsh_brakes=2, limit_known_h=0.2)
    score = driver_score(few)
    braking = next(f for f in score.factors if f.name == "harsh_braking")
    assert braking.value == 4.0  # 2 per 50 km, not 40 per 100 km
    assert score.grade == NO_GRADE and score.value > 0
    enough = DriverFeatures(distance_km=60.0, driving_h=1.5, limit_known_h=1.5)
    assert driver_score(enough).grade == "A"


def test_readings_out_of_order_or_repeated_are_skipped() -> None:
    readings = drive(START_MS, 600)
    shuffled = readings[:300] + [readings[10], readings[299]] + readings[300:]
    assert driver_features(shuffled) == driver_features(readings)


# ---------------------------------------------------------------------------- property


WINDOW = (START_MS, START_MS + 30 * DAY_MS)
END = WINDOW[1]


def home(*facts: WarningFact, reported: bool = True) -> Score:
    return property_score(property_features(list(facts), *WINDOW), reported=reported)


def points(score: Score) -> dict[str, float]:
    return {f.name: f.points for f in score.factors}


def test_a_home_without_warnings_scores_0_and_grade_a() -> None:
    score = home()
    assert (score.value, score.grade) == (0.0, "A")
    assert [f.name for f in score.factors] == [spec.name for spec in PROPERTY_FACTORS]


def test_an_open_critical_leak_and_a_history_of_warnings_make_a_riskier_home() -> None:
    leak_now = WarningFact("water_leak", "critical", END - HOUR_MS)
    history = [
        WarningFact("slow_leak", "warning", START_MS + d * DAY_MS, START_MS + d * DAY_MS + HOUR_MS) for d in (2, 9)
    ]
    quiet, one_past, leaking = home(history[0]), home(*history), home(leak_now, *history)
    assert 0 < quiet.value < one_past.value < leaking.value
    assert points(leaking)["open_warnings"] == pytest.approx(30 * 4 / 6, abs=0.01)  # critical = 4 of 6 points
    assert points(leaking)["past_warnings"] == pytest.approx(25 * (4 - 1) / 11, abs=0.01)  # two warnings = 4 points
    assert leaking.basis["open_by_severity"] == {"critical": 1}


def test_freeze_forecasts_are_exposure_and_silent_or_stuck_sensors_are_sensor_health() -> None:
    nights = [
        WarningFact("freeze_risk", "warning", START_MS + d * DAY_MS, START_MS + d * DAY_MS + 6 * HOUR_MS)
        for d in range(5)
    ]
    health = [
        WarningFact("device_silent", "warning", START_MS + DAY_MS, START_MS + DAY_MS + HOUR_MS),
        WarningFact("sensor_stuck", "advisory", START_MS + 2 * DAY_MS),  # still open: counts once
    ]
    score = home(*nights, *health)
    assert points(score)["freeze_exposure"] == 20.0  # 5 forecasts, full at 4
    assert points(score)["past_warnings"] == 0.0  # a forecast is exposure, not a warning history
    assert points(score)["sensor_health"] == pytest.approx(25 * 2 / 4, abs=0.01)
    assert points(score)["open_warnings"] == 0.0  # a stuck sensor is health, not an open risk
    assert score.basis["sensor_health"] == {"device_silent": 1, "sensor_stuck": 1}


def test_only_the_window_counts_and_a_warning_still_open_from_before_it_is_open() -> None:
    before = WarningFact("mould_risk", "warning", START_MS - 40 * DAY_MS, START_MS - 39 * DAY_MS)
    after = WarningFact("fire_risk", "critical", END + HOUR_MS)
    lingering = WarningFact("mould_risk", "advisory", START_MS - 10 * DAY_MS)
    assert home(before, after).value == 0.0
    assert points(home(lingering))["open_warnings"] == pytest.approx(30 / 6, abs=0.01)


def test_a_home_that_reported_nothing_in_the_window_is_not_graded() -> None:
    assert home(reported=False).grade == NO_GRADE


def test_property_scores_are_reproducible_and_explained() -> None:
    facts = [
        WarningFact("water_leak", "critical", START_MS + 3 * DAY_MS, START_MS + 3 * DAY_MS + 600_000),
        WarningFact("freeze_risk", "warning", START_MS + 20 * DAY_MS),
        WarningFact("battery_drain", "advisory", START_MS + 25 * DAY_MS),
    ]
    one, two = home(*facts), home(*reversed(facts))
    assert score_json(one) == score_json(two)
    assert one.value == pytest.approx(sum(points(one).values()), abs=1e-9)


def test_features_refuse_an_empty_window() -> None:
    with pytest.raises(ValueError, match="end after"):
        property_features([], START_MS, START_MS)
    assert isinstance(property_features([], *WINDOW), PropertyFeatures)


# ------------------------------------------------------------------------------- the model


def test_the_model_is_pinned_to_its_version() -> None:
    """Changing a weight, a threshold, a grade band or a feature's definition changes every
    score: bump SCORE_VERSION, then pin the new fingerprint here (and update the README)."""
    assert (SCORE_VERSION, model_fingerprint()) == ("1", "a69ffb608ad5a144")


@pytest.mark.parametrize(
    ("value", "grade"), [(0.0, "A"), (9.99, "A"), (10.0, "B"), (20.0, "C"), (35.0, "D"), (55.0, "E"), (100.0, "E")]
)
def test_grade_bands(value: float, grade: str) -> None:
    assert grade_of(value) == grade


def test_weights_sum_to_100_and_bad_lies_beyond_good() -> None:
    for table in (DRIVER_FACTORS, PROPERTY_FACTORS):
        assert sum(spec.weight for spec in table) == 100
    with pytest.raises(ValueError, match="bad > good"):
        model.FactorSpec("x", "x", "x", 10, 5, 5)


@pytest.mark.parametrize("module", ["scores.features", "scores.model", "scores.daily", "simulator.vehicle"])
def test_doctests_pass(module: str) -> None:
    assert doctest.testmod(importlib.import_module(module)).failed == 0


# ------------------------------------------------------------------------ the daily clock


def test_the_worker_scores_the_day_that_ended_half_an_hour_after_local_midnight() -> None:
    tz = zone("Asia/Shanghai")
    at = datetime(2025, 1, 31, 16, 29, tzinfo=UTC)  # 00:29 on Feb 1 in Shanghai
    assert daily.due_day(at, tz, None) is None
    assert daily.due_day(at.replace(minute=31), tz, None) == date(2025, 1, 31)
    assert daily.due_day(at.replace(hour=22), tz, date(2025, 1, 31)) is None
    start, end = daily.score_window(date(2025, 1, 31), tz)
    assert (end - start).days == daily.WINDOW_DAYS


def test_scores_show_without_a_database_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    from forewarn.cli import app

    monkeypatch.setattr("forewarn.scores_cli.get_settings", lambda: Settings(database_url=NO_DATABASE))
    result = CliRunner().invoke(app, ["scores", "show", "--tenant", "acme"])
    assert result.exit_code == 2
    assert "cannot reach PostgreSQL at 127.0.0.1:1/nowhere" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["scores", "compute", "--day", "yesterday"])
    assert result.exit_code == 2 and "must be a date" in result.output


NO_DATABASE = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1


class _Child:
    def __init__(self, code: int) -> None:
        self.code = code

    async def wait(self) -> int:
        return self.code


@pytest.mark.parametrize(
    ("code", "done", "logged"), [(0, True, False), (1, False, True), (daily.EXIT_BUSY, False, False)]
)
async def test_the_worker_runs_the_day_s_scores_in_a_child_and_remembers_only_a_full_day(
    code: int, done: bool, logged: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import streams.app as worker

    ran: list[tuple[str, ...]] = []

    async def spawn(*args: str) -> _Child:
        ran.append(args)
        return _Child(code)

    monkeypatch.setattr(worker, "_scores_done", {})
    monkeypatch.setattr(worker, "due_day", lambda now, tz, last: None if last else date(2026, 1, 15))
    monkeypatch.setattr(worker.asyncio, "create_subprocess_exec", spawn)
    await worker.score_the_day(datetime.now(UTC))
    assert [args[1:] for args in ran] == [("-m", "scores.daily", "2026-01-15")]
    assert (worker._scores_done.get("day") == date(2026, 1, 15)) is done
    assert ("risk scores for 2026-01-15" in caplog.text) is logged
    await worker.score_the_day(datetime.now(UTC))  # the next check: again unless the day was done
    assert len(ran) == (1 if done else 2)
