"""Cold chain: a refrigerated box's physics, a failing refrigeration unit, ordinary boxes.

:func:`simulate_coldchain` holds a truck body or cold room at 2–8 °C with a cycling
compressor and delivery-hour door openings; a :class:`RefrigerantLeak` takes its cooling
away. The cold-chain failure scenario and the quiet reefer profiles are defined here;
:mod:`simulator.scenarios` assembles the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simulator.incidents import Knob, Outcome, QuietRun, Range, ScenarioSpec, calibrate, loss_target, uniform
from simulator.signals import (
    HOUR_S,
    MINUTE_S,
    SampleIntervals,
    SeedLike,
    Span,
    Trace,
    ar1,
    as_reported,
    child,
    rng_for,
    sample_grid,
)

# -------------------------------------------------------------------------------- physics


@dataclass(frozen=True, slots=True)
class ColdChainParams:
    """A refrigerated box (truck body or cold room) held at 2–8 °C by a cycling compressor."""

    setpoint_c: float = 4.0
    band_c: float = 1.0  # compressor on above setpoint + band, off below setpoint − band
    ambient_mean_c: float = 28.0
    ambient_swing_c: float = 4.0
    box_tau_h: float = 5.0
    cooling_c_per_h: float = 10.0
    door_openings_per_h: float = 1.2  # during delivery hours 08–18
    door_tau_h: float = 1.2  # how fast the box warms with the door open
    battery_start_pct: float = 92.0
    rssi_dbm: float = -80.0


@dataclass(frozen=True, slots=True)
class RefrigerantLeak:
    onset_s: float  # cooling capacity starts to fall
    trip_s: float  # compressor trips on low pressure and stays off


def simulate_coldchain(
    seed: SeedLike,
    span: Span,
    params: ColdChainParams = ColdChainParams(),
    leak: RefrigerantLeak | None = None,
    *,
    interval_ms: int = 60_000,
    noise: float = 1.0,
) -> Trace:
    """Box temperature with thermostat cycling, door openings, and an optional failing unit."""
    p = params
    rng, ts, n, dt, t, hours = sample_grid(seed, span, interval_ms)
    ambient = (
        p.ambient_mean_c + p.ambient_swing_c * np.cos(2 * np.pi * (hours - 15) / 24) + ar1(rng, n, dt, 4 * HOUR_S, 0.8)
    )
    delivering = (hours >= 8) & (hours < 18)
    door_start = rng.random(n) < np.where(delivering, p.door_openings_per_h * dt / HOUR_S, 0.0)
    door_len = (1 + 3 * rng.random(n)) * 60
    door = np.zeros(n, dtype=bool)
    for opened in np.flatnonzero(door_start).tolist():
        door |= (t >= t[opened]) & (t < t[opened] + door_len[opened])
    capacity = np.ones(n)
    tripped = np.zeros(n, dtype=bool)
    if leak is not None:
        capacity = np.clip(1 - 0.8 * (t - leak.onset_s) / max(leak.trip_s - leak.onset_s, 60), 0.2, 1)
        tripped = t >= leak.trip_s
    box = np.empty(n)
    comp = np.zeros(n, dtype=bool)
    temp = p.setpoint_c
    on = False
    tau = p.box_tau_h * HOUR_S
    tau_door = p.door_tau_h * HOUR_S
    cool = p.cooling_c_per_h / HOUR_S
    amb, cap, trip, dr = ambient.tolist(), capacity.tolist(), tripped.tolist(), door.tolist()
    for k in range(n):
        if trip[k]:
            on = False
        elif temp > p.setpoint_c + p.band_c:
            on = True
        elif temp < p.setpoint_c - p.band_c:
            on = False
        rate = (amb[k] - temp) / (tau_door if dr[k] else tau) - (cool * cap[k] if on else 0.0)
        temp += rate * dt
        box[k] = temp
        comp[k] = on
    battery = p.battery_start_pct - 0.05 * t / HOUR_S
    values = {
        "temp_c": box + 0.1 * noise * rng.standard_normal(n),
        "door_open": door.astype(float),
        "compressor_on": comp.astype(float),
        "battery_pct": battery,
        "rssi_dbm": p.rssi_dbm + ar1(rng, n, dt, 1800, 3.0),
    }
    state = {"box_c": box, "ambient_c": ambient, "capacity": capacity}
    return Trace(ts, as_reported(values), state)


# ------------------------------------------------------------------------------ scenarios


def _spoiled_ms(trace: Trace, iv: SampleIntervals, tolerance_min: float) -> int | None:
    """The first moment the load has been above 8 °C for ``tolerance_min`` minutes in all."""
    warm_min = np.cumsum((trace.state["box_c"] > 8.0) * (iv.coldchain_ms / 1000 / MINUTE_S))
    return trace.first_time(warm_min >= tolerance_min)


def _coldchain_failure(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """Refrigerant leak: the compressor runs flat out, then trips; the load warms past 8 °C."""
    rng = rng_for(child(seed, 0))
    target = loss_target(rng, span, at, 0.5, 0.75)
    tolerance_min = uniform(rng, 60, 120)  # minutes above 8 °C the product tolerates
    ramp = uniform(rng, 1.5, 3) * HOUR_S
    params = ColdChainParams(
        setpoint_c=uniform(rng, 3, 5),
        ambient_mean_c=uniform(rng, 24, 32),
        box_tau_h=uniform(rng, 4, 6),
        cooling_c_per_h=uniform(rng, 8, 12),
        door_openings_per_h=uniform(rng, 0.6, 1.6),
    )
    model_seed = child(seed, 1)

    def run(onset: float) -> tuple[Trace, int | None]:
        tr = simulate_coldchain(
            model_seed, span, params, RefrigerantLeak(onset, onset + ramp), interval_ms=iv.coldchain_ms, noise=noise
        )
        return tr, _spoiled_ms(tr, iv, tolerance_min)

    onset, trace, loss = calibrate(run, 60.0, max(target - ramp - 10 * MINUTE_S, 120.0), span.at(target))
    return Outcome(trace, span.at(onset), loss)


def _coldchain_failure_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    params = ColdChainParams(
        setpoint_c=uniform(rng, 2.5, 5),
        ambient_mean_c=k["ambient_c"],
        box_tau_h=k["box_tau_h"],
        cooling_c_per_h=uniform(rng, 8, 12),
        door_openings_per_h=uniform(rng, 0.6, 1.8),
    )
    onset = k["leak_starts_h"] * HOUR_S
    leak = RefrigerantLeak(onset, onset + k["leak_ramp_h"] * HOUR_S)
    trace = simulate_coldchain(child(seed, 1), span, params, leak, interval_ms=iv.coldchain_ms, noise=noise)
    loss = _spoiled_ms(trace, iv, k["tolerance_min"])
    return None if loss is None else Outcome(trace, span.at(onset), loss)


# ---------------------------------------------------------------------------- the library


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        "coldchain_failure",
        "coldchain",
        "Refrigerant leak: compressor trips, load spoils",
        ("coldchain_failure",),
        "spoiled_goods",
        (20_000, 200_000),
        24 * HOUR_S,
        8 * HOUR_S,
        _coldchain_failure,
        knobs=(
            Knob("ambient_c", 20, 35, "°C", "mean ambient temperature around the box"),
            Knob("leak_ramp_h", 0.5, 4, "h", "cooling capacity falls this long before the compressor trips"),
            Knob("tolerance_min", 45, 150, "min", "minutes above 8 °C the load tolerates"),
            Knob("box_tau_h", 3, 7, "h", "insulation: how fast the box follows the ambient"),
            Knob("leak_starts_h", 2, 12, "h", "hours after the span start"),
        ),
        variant=_coldchain_failure_variant,
    ),
)


# -------------------------------------------------------------------------- quiet reefers


def _quiet_reefer(
    *, ambient_c: Range = (15, 32), box_tau_h: Range = (4, 7), doors_per_h: Range = (0.5, 2.0)
) -> QuietRun:
    """A working refrigerated box: the compressor cycles, the doors open on deliveries."""

    def run(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
        rng = rng_for(child(seed, 0))
        params = ColdChainParams(
            setpoint_c=uniform(rng, 3, 5),
            ambient_mean_c=uniform(rng, *ambient_c),
            box_tau_h=uniform(rng, *box_tau_h),
            cooling_c_per_h=uniform(rng, 9, 13),
            door_openings_per_h=uniform(rng, *doors_per_h),
        )
        return simulate_coldchain(child(seed, 1), span, params, interval_ms=iv.coldchain_ms, noise=noise)

    return run


# Quiet device n of this kind (1-based) runs profile (n - 1) mod their count; its own seed
# draws the parameters inside the profile's ranges. Append new profiles at the end: the
# ordinal of an existing one is what the demo fleet's quiet devices are made of.
QUIET_PROFILES: tuple[tuple[str, QuietRun], ...] = (
    ("reefer", _quiet_reefer()),
    ("hot_depot_reefer", _quiet_reefer(ambient_c=(30, 35), doors_per_h=(1.5, 3.0))),
    ("cold_room", _quiet_reefer(ambient_c=(12, 22), box_tau_h=(8, 12), doors_per_h=(0.2, 0.8))),
)
QUIET_DURATION_S = 24 * HOUR_S
