"""Commercial equipment: a motor-driven pump's physics, a wearing bearing, ordinary pumps.

:func:`simulate_equipment` runs a pump on its duty cycle (vibration, bearing temperature,
current, discharge pressure); a :class:`BearingWearFault` grows its vibration until the
bearing seizes. The bearing-failure scenario and the quiet pump profiles are defined here;
:mod:`simulator.scenarios` assembles the library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simulator.incidents import Knob, Outcome, QuietRun, Range, ScenarioSpec, loss_target, uniform
from simulator.signals import (
    HOUR_S,
    SampleIntervals,
    SeedLike,
    Span,
    Trace,
    ar1,
    as_reported,
    child,
    lag,
    rng_for,
    sample_grid,
)

# -------------------------------------------------------------------------------- physics


@dataclass(frozen=True, slots=True)
class EquipmentParams:
    """A motor-driven pump: vibration, bearing temperature, current and discharge pressure."""

    baseline_vibration_mm_s: float = 2.0
    rated_current_a: float = 60.0
    pressure_kpa: float = 450.0
    static_pressure_kpa: float = 110.0
    ambient_c: float = 26.0
    bearing_rise_c: float = 28.0
    stops_per_day: float = 1.0  # planned stops (cleaning, shift change)
    rssi_dbm: float = -72.0


@dataclass(frozen=True, slots=True)
class BearingWearFault:
    onset_s: float
    fail_at_s: float  # seizure: the motor trips and stops for good
    fail_vibration_mm_s: float = 22.0


def simulate_equipment(
    seed: SeedLike,
    span: Span,
    params: EquipmentParams = EquipmentParams(),
    wear: BearingWearFault | None = None,
    *,
    interval_ms: int = 60_000,
    noise: float = 1.0,
) -> Trace:
    """A pump on its duty cycle; a worn bearing grows vibration exponentially until it seizes."""
    p = params
    rng, ts, n, dt, t, hours = sample_grid(seed, span, interval_ms)
    load = 0.8 + 0.1 * np.sin(2 * np.pi * (hours - 10) / 24) + ar1(rng, n, dt, 1800, 0.04)
    running = np.ones(n, dtype=bool)
    n_stops = rng.poisson(p.stops_per_day * span.duration_s / 86_400)
    stop_at = rng.random(max(n_stops, 1)) * span.duration_s
    stop_len = (20 + 40 * rng.random(max(n_stops, 1))) * 60
    for k in range(n_stops):
        running &= ~((t >= stop_at[k]) & (t < stop_at[k] + stop_len[k]))
    growth = np.ones(n)
    failed = np.zeros(n, dtype=bool)
    if wear is not None:
        k_rate = math.log(wear.fail_vibration_mm_s / p.baseline_vibration_mm_s) / max(
            wear.fail_at_s - wear.onset_s, 60.0
        )
        growth = np.exp(k_rate * np.clip(t - wear.onset_s, 0, None))
        failed = t >= wear.fail_at_s
        running &= ~failed
        running |= (t >= wear.fail_at_s - 3 * HOUR_S) & ~failed  # no planned stop near the end
    vib_clean = np.where(running, p.baseline_vibration_mm_s * growth * (0.9 + 0.15 * load), 0.15)
    impulses = rng.random(n)
    vib = vib_clean * (1 + 0.05 * noise * rng.standard_normal(n))
    vib = vib + np.where(running & (growth > 1.5) & (impulses < 0.1), 0.3 * vib_clean, 0.0)
    friction = np.clip((growth - 1) / 10, 0, 1)
    bearing_target = np.where(
        running, p.ambient_c + p.bearing_rise_c * load + 2.2 * (vib_clean - p.baseline_vibration_mm_s), p.ambient_c
    )
    bearing = lag(bearing_target, dt, 25 * 60, p.ambient_c + p.bearing_rise_c * 0.8)
    current = np.where(running, p.rated_current_a * load * (1 + 0.08 * friction), 0.0)
    if wear is not None:
        seize = np.flatnonzero(t >= wear.fail_at_s)
        if seize.size:
            current[seize[0]] = p.rated_current_a * 5.5  # locked rotor before the trip
            bearing[seize[0]] += 25
            vib[seize[0]] = wear.fail_vibration_mm_s * 1.6
    pressure = np.where(running, p.pressure_kpa * (0.85 + 0.2 * load) * (1 - 0.05 * friction), p.static_pressure_kpa)
    z = rng.standard_normal((3, n)) * noise
    values = {
        "vibration_mm_s": np.clip(vib, 0.05, None),
        "bearing_temp_c": bearing + 0.3 * z[0],
        "current_a": np.clip(current * (1 + 0.015 * z[1]), 0, None),
        "pressure_kpa": pressure * (1 + 0.01 * z[2]),
        "rssi_dbm": p.rssi_dbm + ar1(rng, n, dt, 3600, 2.0),
    }
    state = {"vibration_mm_s": vib_clean, "running": running.astype(float), "bearing_c": bearing}
    return Trace(ts, as_reported(values), state)


# ------------------------------------------------------------------------------ scenarios


def _wear_detectable_s(wear: BearingWearFault, baseline_mm_s: float) -> float:
    """When the growing vibration is 30 % above baseline: one ISO 10816 zone step."""
    rate = math.log(wear.fail_vibration_mm_s / baseline_mm_s) / (wear.fail_at_s - wear.onset_s)
    return wear.onset_s + math.log(1.3) / rate


def _bearing_failure(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """An outer-race defect grows (weeks of wear compressed into hours) until the bearing seizes."""
    rng = rng_for(child(seed, 0))
    fail = loss_target(rng, span, at, 0.75, 0.9)
    onset = min(uniform(rng, 0.1, 0.25) * span.duration_s, fail * 0.3)
    v0 = uniform(rng, 1.5, 2.8)
    wear = BearingWearFault(onset, fail, uniform(rng, 18, 28))
    params = EquipmentParams(
        baseline_vibration_mm_s=v0,
        rated_current_a=uniform(rng, 40, 120),
        pressure_kpa=uniform(rng, 350, 650),
        ambient_c=uniform(rng, 20, 30),
    )
    trace = simulate_equipment(child(seed, 1), span, params, wear, interval_ms=iv.equipment_ms, noise=noise)
    return Outcome(trace, span.at(_wear_detectable_s(wear, v0)), span.at(fail))


def _bearing_failure_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    onset = k["onset_h"] * HOUR_S
    fail = onset + k["wear_h"] * HOUR_S
    v0 = k["baseline_mm_s"]
    wear = BearingWearFault(onset, fail, k["seize_mm_s"])
    params = EquipmentParams(
        baseline_vibration_mm_s=v0,
        rated_current_a=uniform(rng, 30, 150),
        pressure_kpa=uniform(rng, 300, 800),
        ambient_c=uniform(rng, 18, 34),
    )
    trace = simulate_equipment(child(seed, 1), span, params, wear, interval_ms=iv.equipment_ms, noise=noise)
    return Outcome(trace, span.at(_wear_detectable_s(wear, v0)), span.at(fail))


# ---------------------------------------------------------------------------- the library


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        "bearing_failure",
        "equipment",
        "Bearing wear to seizure",
        ("bearing_failure",),
        "machinery_breakdown",
        (50_000, 500_000),
        48 * HOUR_S,
        12 * HOUR_S,
        _bearing_failure,
        knobs=(
            Knob("wear_h", 8, 34, "h", "defect onset to seizure (weeks of wear compressed)"),
            Knob("baseline_mm_s", 1.2, 3.5, "mm/s", "healthy vibration"),
            Knob("seize_mm_s", 16, 30, "mm/s", "vibration when the bearing seizes"),
            Knob("onset_h", 2, 10, "h", "defect appears, hours after the span start"),
        ),
        variant=_bearing_failure_variant,
    ),
)


# ---------------------------------------------------------------------------- quiet pumps


def _quiet_pump(
    *, vibration_mm_s: Range = (1.2, 3.0), ambient_c: Range = (18, 32), stops_per_day: Range = (0.5, 2)
) -> QuietRun:
    """A healthy pump on its duty cycle."""

    def run(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
        rng = rng_for(child(seed, 0))
        params = EquipmentParams(
            baseline_vibration_mm_s=uniform(rng, *vibration_mm_s),
            rated_current_a=uniform(rng, 30, 150),
            pressure_kpa=uniform(rng, 300, 800),
            ambient_c=uniform(rng, *ambient_c),
            stops_per_day=uniform(rng, *stops_per_day),
        )
        return simulate_equipment(child(seed, 1), span, params, interval_ms=iv.equipment_ms, noise=noise)

    return run


# Quiet device n of this kind (1-based) runs profile (n - 1) mod their count; its own seed
# draws the parameters inside the profile's ranges. Append new profiles at the end: the
# ordinal of an existing one is what the demo fleet's quiet devices are made of.
QUIET_PROFILES: tuple[tuple[str, QuietRun], ...] = (
    ("pump", _quiet_pump()),
    ("rough_hot_pump", _quiet_pump(vibration_mm_s=(3.0, 4.5), ambient_c=(28, 38))),
    ("stop_start_pump", _quiet_pump(stops_per_day=(4, 8))),
)
QUIET_DURATION_S = 48 * HOUR_S
