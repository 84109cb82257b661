"""Faults no physical rule names: what only a device's own learned baseline can see.

Each fault is an ordinary device of its kind (one of the kind's quiet profiles, drawn from the
device's own seed) running normally for days — long enough for a baseline to learn it — then
going wrong in a way that crosses no physical threshold until the loss:

- ``sensor_drift`` (cold chain): the box's temperature sensor starts reading low, drifting
  0.6–1.5 °C a day, while the box itself is as before; the loss is a box that may be warming
  unseen, once the sensor is 3 °C off (a load whose temperature record no longer holds).
- ``compressor_short_cycling`` (cold chain): the compressor switches on and off every 2–5
  minutes instead of a few times an hour (a faulty thermostat or refrigerant charge); it burns
  out 1.5–3 days later.
- ``rising_current`` (equipment): a pump's motor draws 5–12 % more current every day while it
  runs (a failing winding, a clogging impeller); at 30 % over its usual draw it trips or burns.
- ``intermittent_connection`` (home): the home's sensors lose their link for 5–40 minutes
  several times a day, more often as days pass, and after each gap send a burst of readings
  every 5 s; 2–3 days later the link is gone for good — the home is unprotected (the loss).

Each is labelled like every incident (:class:`~simulator.incidents.Incident`: the risk that
warns it, ``unusual_reading``; the start of the precursor; the loss), and is kept apart from the
standard library (:data:`FAULTS`, ``simulator.fleet.fault_library``): its devices are new, with
their own seeds, so the standard library's devices and readings are unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulator.incidents import Outcome, ScenarioSpec, uniform
from simulator.scenarios import QUIET_PROFILES, simulate_quiet
from simulator.signals import DAY_S, HOUR_S, MINUTE_S, SampleIntervals, Span, Trace, as_reported, child, rng_for

FAULT_DURATION_S = 12 * DAY_S
"""A fault device runs 12 days: a normal week first (a baseline's warm-up is 3 days)."""

LEARNED_RISKS: tuple[str, ...] = ("unusual_reading",)


def _normal(kind: str, seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
    """The device as it runs normally: one of its kind's quiet profiles, picked by its seed."""
    ordinal = int(rng_for(child(seed, 20)).integers(len(QUIET_PROFILES[kind])))
    return simulate_quiet(kind, ordinal, child(seed, 21), span, iv, noise)


def _faulty(
    kind: str, seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float
) -> tuple[Trace, np.random.Generator, int, np.ndarray]:
    """The device running normally, the fault's own generator, when the fault starts (day 5–7 of
    the span) and each sample's days since then (0 before)."""
    trace = _normal(kind, seed, span, iv, noise)
    rng = rng_for(child(seed, 22))
    start_ms = span.at(uniform(rng, 5 * DAY_S, 7 * DAY_S))
    days = np.clip((trace.ts_ms - start_ms) / 1000.0 / DAY_S, 0.0, None)
    return trace, rng, start_ms, days


def _with(trace: Trace, **metrics: np.ndarray) -> Trace:
    reported = as_reported(metrics)
    return replace(trace, metrics={**trace.metrics, **reported})


def _sensor_drift(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    trace, rng, start_ms, days = _faulty("coldchain", seed, span, iv, noise)
    per_day = uniform(rng, 0.6, 1.5)
    trace = _with(trace, temp_c=trace.metrics["temp_c"] - per_day * days)
    loss_ms = start_ms + int(3.0 / per_day * DAY_S * 1000)
    return Outcome(trace, start_ms, loss_ms, {"drift_c_per_day": round(per_day, 3)})


def _short_cycling(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    trace, rng, start_ms, days = _faulty("coldchain", seed, span, iv, noise)
    period_s = uniform(rng, 4 * MINUTE_S, 10 * MINUTE_S)  # a whole on/off cycle
    t = (trace.ts_ms - start_ms) / 1000.0
    cycling = (np.mod(t, period_s) < period_s / 2).astype(float)
    compressor = np.where(days > 0, cycling, trace.metrics["compressor_on"])
    loss_ms = start_ms + int(uniform(rng, 1.5 * DAY_S, 3 * DAY_S) * 1000)
    return Outcome(_with(trace, compressor_on=compressor), start_ms, loss_ms, {"cycle_min": round(period_s / 60, 2)})


def _rising_current(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    trace, rng, start_ms, days = _faulty("equipment", seed, span, iv, noise)
    days_left = (span.end_ms - start_ms) / 1000.0 / DAY_S
    per_day = max(uniform(rng, 0.05, 0.12), 0.30 / (days_left - 0.25))  # the loss within the span
    current = trace.metrics["current_a"] * (1.0 + per_day * days)
    loss_ms = start_ms + int(0.30 / per_day * DAY_S * 1000)
    return Outcome(_with(trace, current_a=current), start_ms, loss_ms, {"creep_per_day": round(per_day, 3)})


def _intermittent(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    trace, rng, start_ms, _ = _faulty("home", seed, span, iv, noise)
    loss_ms = start_ms + int(uniform(rng, 2 * DAY_S, 3 * DAY_S) * 1000)
    ts = trace.ts_ms
    keep = ts < loss_ms  # the link is gone for good at the loss
    bursts: list[int] = []  # indices of readings resent in a burst after a gap
    t = float(start_ms)
    while True:
        progress = (t - start_ms) / (loss_ms - start_ms)
        t += rng.exponential(HOUR_S / (0.3 + 1.2 * progress)) * 1000  # gaps come more often
        if t >= loss_ms:
            break
        gap_end = t + uniform(rng, 5 * MINUTE_S, 40 * MINUTE_S) * 1000
        keep &= ~((ts >= t) & (ts < gap_end))
        bursts += np.flatnonzero((ts >= gap_end) & (ts < gap_end + 2 * MINUTE_S * 1000)).tolist()
        t = gap_end
    rows = np.flatnonzero(keep).tolist()
    resent = sorted(set(bursts) & set(rows))
    extra_ts = []
    extra_rows = []
    for i in resent:  # each reading of a burst is sent again every 5 s until the next one
        step_ms = 5_000
        for k in range(1, int(iv.home_ms // step_ms)):
            extra_ts.append(int(ts[i]) + k * step_ms)
            extra_rows.append(i)
    all_ts = np.concatenate([ts[rows], np.asarray(extra_ts, dtype=np.int64)])
    all_rows = np.asarray(rows + extra_rows, dtype=np.int64)
    order = np.argsort(all_ts, kind="stable")
    metrics = {name: values[all_rows[order]] for name, values in trace.metrics.items()}
    state = {name: values[all_rows[order]] for name, values in trace.state.items()}
    out = Trace(all_ts[order], metrics, state)
    return Outcome(out, start_ms, loss_ms, {"gaps_per_h_at_end": 1.5})


def _spec(name: str, kind: str, title: str, loss_type: str, band: tuple[float, float], run: object) -> ScenarioSpec:
    return ScenarioSpec(
        name=name,
        kind=kind,
        title=title,
        risks=LEARNED_RISKS,
        loss_type=loss_type,
        cost_band_cny=band,
        natural_duration_s=FAULT_DURATION_S,
        min_duration_s=FAULT_DURATION_S,
        run=run,  # type: ignore[arg-type]
    )


FAULTS: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "sensor_drift",
            "coldchain",
            "a cold-chain temperature sensor drifting low",
            "unseen_temperature_excursion",
            (5_000.0, 60_000.0),
            _sensor_drift,
        ),
        _spec(
            "compressor_short_cycling",
            "coldchain",
            "a compressor switching on and off every few minutes",
            "compressor_burnout",
            (8_000.0, 80_000.0),
            _short_cycling,
        ),
        _spec(
            "rising_current",
            "equipment",
            "a pump motor drawing more current day after day",
            "motor_burnout",
            (10_000.0, 120_000.0),
            _rising_current,
        ),
        _spec(
            "intermittent_connection",
            "home",
            "home sensors whose link comes and goes, then fails",
            "protection_lost",
            (2_000.0, 30_000.0),
            _intermittent,
        ),
    )
}
"""The faults no rule names, by name (apart from ``simulator.scenarios.SCENARIOS``)."""
