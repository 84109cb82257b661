"""The learned detector's *watched* channels (``UnusualReading(watched=...)``): every other
metric of a device learnt and scored like the opening ones, named when unusual, but never
opening a warning on its own; silent while it learns; restored devices decide exactly as live."""

from __future__ import annotations

import math
import random
import statistics
import struct
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from core.contract import METRICS
from detectors.baseline import _SCALE_MIN, _SCALE_STEPS, UnusualReading, _round16, _scale_byte, _uniforms
from detectors.profiles import _BASELINED, _WATCHED, PROFILES, build_detectors
from detectors.state import capture, restore
from simulator.fleet import build_fleet, fault_library

T0 = 1_763_654_400.0  # 2025-11-21 00:00 in Shanghai (a Friday)


def house(days: float, step_from_day: float | None = None, seed: int = 5) -> list[dict[str, float]]:
    """A home every 5 min: a steady radio link, an indoor temperature warmer by day; from
    ``step_from_day`` the temperature 6 °C above its usual."""
    rng = random.Random(seed)
    out = []
    for i in range(int(days * 288)):
        day = i / 288
        step = 6.0 if step_from_day is not None and day >= step_from_day else 0.0
        temp = 20.0 + 1.5 * math.sin(2 * math.pi * (day - 0.3)) + rng.gauss(0, 0.2) + step
        out.append({"ts": T0 + 300 * i, "rssi_dbm": round(-70.0 + rng.gauss(0, 1.0), 1), "temp_c": round(temp, 2)})
    return out


def run(detector: UnusualReading, readings: list[dict[str, float]]) -> list[tuple[float, str, dict[str, Any]]]:
    out: list[tuple[float, str, dict[str, Any]]] = []
    for x in readings:
        f = detector.assess_one(x)
        out.append((f.score, f.severity, f.evidence))
        detector.learn_one(x)
    return out


def test_a_watched_channel_that_is_unusual_names_itself_but_never_opens_alone() -> None:
    findings = run(UnusualReading(metrics=("rssi_dbm",), watched=("temp_c",)), house(10, step_from_day=7))
    assert max(score for score, _, _ in findings) == 0.0  # never a warning
    named = [i for i, (_, _, ev) in enumerate(findings) if ev.get("watched_unusual") == "temp_c"]
    assert named and 7 * 288 < named[0] < 8 * 288  # named within a day of the step
    assert all("watched_unusual" not in ev for _, _, ev in findings[: 7 * 288])  # and not before
    # the same step on an opening channel opens: the watched one was found as readily
    opening = run(UnusualReading(metrics=("rssi_dbm", "temp_c")), house(10, step_from_day=7))
    first = next(i for i, (score, _, _) in enumerate(opening) if score >= 0.5)
    assert abs(first - named[0]) <= 12


def test_an_opening_warning_names_the_watched_channels_unusual_with_it() -> None:
    readings = house(10, step_from_day=7)
    for x in readings:
        if x["ts"] >= T0 + 7 * 86400:
            x["rssi_dbm"] -= 15.0  # the link weakens as the room warms
    findings = run(UnusualReading(metrics=("rssi_dbm",), watched=("temp_c", "humidity_pct")), readings)
    warned = [ev for score, _, ev in findings if score >= 0.5]
    assert warned and all(ev["metric"] == "rssi_dbm" for ev in warned)
    named = {ev.get("watched_unusual") for ev in warned}
    assert "temp_c" in named and named <= {"temp_c", None}  # humidity is never sent: never named


def test_watched_channels_change_nothing_the_opening_ones_decide() -> None:
    readings = house(10, step_from_day=7)
    for x in readings:
        if x["ts"] >= T0 + 7.5 * 86400:
            x["rssi_dbm"] -= 15.0
    alone = run(UnusualReading(metrics=("rssi_dbm",)), readings)
    watched = run(UnusualReading(metrics=("rssi_dbm",), watched=("temp_c",)), readings)
    assert [(s, sev) for s, sev, _ in alone] == [(s, sev) for s, sev, _ in watched]
    assert any(s >= 0.5 for s, _, _ in alone)


def test_silent_during_the_warm_up_however_odd_a_watched_reading() -> None:
    readings = house(2.9)
    for x in readings[len(readings) // 2 :]:
        x["temp_c"] += 30.0
    findings = run(UnusualReading(metrics=("rssi_dbm",), watched=("temp_c",)), readings)
    assert all(score == 0.0 and not ev for score, _, ev in findings)


def test_a_restored_device_decides_exactly_as_the_live_one_watched_channels_too() -> None:
    readings = house(10, step_from_day=6)
    live = UnusualReading(metrics=("rssi_dbm",), watched=("temp_c", "pipe_temp_c"))
    run(live, readings[:1500])
    restored = UnusualReading(metrics=("rssi_dbm",), watched=("temp_c", "pipe_temp_c"))
    assert restore(restored, orjson.loads(orjson.dumps(capture(live))))
    assert run(restored, readings[1500:]) == run(live, readings[1500:])
    assert capture(restored) == capture(live)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(min_value=-60.0, max_value=80.0, allow_nan=False), min_size=50, max_size=400),
    st.integers(min_value=1, max_value=3600),
)
def test_whatever_a_watched_metric_reads_it_never_opens_a_warning(values: list[float], every_s: int) -> None:
    detector = UnusualReading(metrics=("rssi_dbm",), watched=("temp_c",), warmup_s=3600.0, sample_s=60.0)
    for i, v in enumerate(values * 4):
        x = {"ts": T0 + every_s * i, "rssi_dbm": -70.0, "temp_c": v}
        assert detector.assess_one(x).score == 0.0
        detector.learn_one(x)


def test_stochastic_rounding_moves_a_value_by_steps_far_below_float16s_precision() -> None:
    x = 20.0
    for k in range(2000):  # +0.001 a step: a sixteenth of float16's step at 20
        x = _round16(x + 0.001, _uniforms(k)[0])
    assert abs(x - 22.0) < 0.5  # 128 steps of 1/64 expected, give or take 11 (rounding to the nearest: 20.0)
    assert _round16(20.0 + 0.001, 0.99) == 20.0
    us = [u for k in range(5_000) for u in _uniforms(k)]
    assert abs(statistics.mean(us) - 0.5) < 0.01 and min(us) >= 0.0 and max(us) < 1.0
    code = _scale_byte(1.0, 0.0)
    for k in range(400):  # the scale's byte grid (9 % steps) follows a slow change too
        s = _SCALE_MIN * 2.0 ** (code / _SCALE_STEPS)
        code = _scale_byte(s + 0.005 * (2.0 - s), _uniforms(k)[2])
    assert 1.6 < _SCALE_MIN * 2.0 ** (code / _SCALE_STEPS) < 2.4


@given(st.floats(min_value=-65000.0, max_value=65000.0, allow_nan=False), st.floats(min_value=0.0, max_value=0.9999))
def test_a_stochastically_rounded_value_is_a_float16_next_to_it(x: float, u: float) -> None:
    r = _round16(x, u)
    assert struct.unpack("<e", struct.pack("<e", r))[0] == r  # a float16, stored as it is live
    assert abs(r - x) <= max(abs(x), 2.0**-14) * 2.0**-10  # one of the two around x


def test_every_metric_a_device_sends_has_a_baseline_but_positions_limits_and_alarms() -> None:
    fleet = build_fleet(7, devices=4, quiet_ratio=1.0, start_ms=int(T0 * 1000), duration_s=6 * 3600)
    excluded = {"lat", "lon", "heading_deg", "speed_limit_kmh", "water_leak", "smoke"}
    for sim in fleet.devices:
        sent = {m for r in fleet.readings(sim) for m in r.metrics}
        detector = next(d for d in build_detectors(sim.kind) if d.risk == "unusual_reading")
        assert isinstance(detector, UnusualReading)
        assert sent - excluded <= set(detector.metrics) | set(detector.watched), sim.kind
        assert detector.metrics == _BASELINED[sim.kind][0] and detector.watched == _WATCHED[sim.kind]
    assert all(METRICS[m].kind in ("number", "bool") for ms in _WATCHED.values() for m in ms)


def test_bad_watched_configuration_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown watched metric"):
        UnusualReading(watched=("temperature",))
    with pytest.raises(ValueError, match="both"):
        UnusualReading(metrics=("temp_c",), watched=("temp_c",))


def _first(detector: UnusualReading, readings: list[dict[str, float]]) -> tuple[float, dict[str, Any]] | None:
    for x in readings:
        finding = detector.assess_one(x)
        detector.learn_one(x)
        if finding.score >= 0.5:
            return x["ts"], finding.evidence
    return None


def _simulated(device: str) -> tuple[list[dict[str, float]], float, float]:
    """A device of the learned group ``forewarn eval`` scores (``simulator.fleet.fault_library``):
    its readings, when its fault starts and when the loss comes (s)."""
    fleet = fault_library(7)
    sim = fleet.device(device)
    incident = fleet.incident(sim)
    assert incident is not None
    readings = [{"ts": r.ts_ms / 1000.0, **{k: float(v) for k, v in r.metrics.items()}} for r in fleet.readings(sim)]
    return readings, incident.precursor_start_ms / 1000.0, incident.loss_at_ms / 1000.0


def test_a_sensor_drifting_slower_than_the_level_learns_is_found_as_drifting() -> None:
    readings, start, loss = _simulated("coldchain-sensor-drift-02")  # 0.8 °C a day, the box cycling ±1 °C
    params = next(p for risk, p in PROFILES["coldchain"] if risk == "unusual_reading")
    found = _first(UnusualReading(**params), readings)
    assert found is not None and start < found[0] < loss
    assert found[1]["metric"] == "temp_c" and found[1]["pattern"] == "drifting" and found[1]["above"] is False
    without = _first(UnusualReading(**{**params, "drift_limit": 0.0}), readings)
    assert without is None or without[0] > loss  # the CUSUM alone: too late


def flaky(days: float, from_day: float, seed: int = 4) -> list[dict[str, float]]:
    """A home reading every minute; from ``from_day`` its link drops for 10-30 min about every
    70 min, each gap followed by two minutes of readings resent every 5 s."""
    rng = random.Random(seed)
    out: list[dict[str, float]] = []
    t, gap_at = T0, T0 + from_day * 86400
    while t < T0 + days * 86400:
        if t >= gap_at:
            t += rng.uniform(600, 1800)
            end = t + 120
            while t < end:
                out.append({"ts": t, "rssi_dbm": -70.0})
                t += 5
            gap_at = t + rng.uniform(1800, 6600)
        out.append({"ts": t, "rssi_dbm": round(-70.0 + rng.gauss(0, 1.0), 1)})
        t += 60
    return out


def test_a_link_that_comes_and_goes_is_found_as_irregular() -> None:
    readings = flaky(10, from_day=6)
    found = _first(UnusualReading(metrics=("rssi_dbm",)), readings)
    assert found is not None and T0 + 6 * 86400 < found[0] < T0 + 8 * 86400
    assert found[1]["metric"] == "readings_per_h" and found[1]["pattern"] == "irregular"
    assert _first(UnusualReading(metrics=("rssi_dbm",), spread_limit=0.0), readings) is None  # the CUSUM alone
    assert _first(UnusualReading(metrics=("rssi_dbm",)), flaky(10, from_day=99)) is None
