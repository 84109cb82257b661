"""The scenario library: what goes wrong, on which kind of device, and when the loss happens.

A scenario is a device kind, the events injected into its physical model, and the ground
truth an evaluation scores against: an :class:`Incident` with the risk types that count as
warning it, the moment the precursor becomes observable, the moment of loss, and what the
loss costs a Chinese P&C insurer (CNY). Ground truth is read from the simulated physics
(the pipe reaching −1 °C, the leaked litres reaching the damage threshold), never assumed.

Every scenario also has *knobs* (:class:`Knob`): the physical parameters its replicas vary
over plausible ranges (how cold the night gets, how fast a joint leaks, how quickly a
bearing wears …). :meth:`ScenarioSpec.simulate_variant` draws them and runs the physics
forward; the loss lands wherever the physics puts it, so lead times vary as they would in
a real book of policies. :meth:`ScenarioSpec.simulate` is the scenario with its typical,
narrow parameter ranges and an optional requested loss moment (the live demo's).

Quiet profiles (:data:`QUIET_PROFILES`) are ordinary devices with no incident: everything
they trigger is a false warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from simulator.devices import (
    DEFAULT_INTERVALS,
    DRIVERS,
    HOUR_S,
    BatteryFault,
    BearingWear,
    BurstPipe,
    ColdChainParams,
    ColdFront,
    Damp,
    ElectricalFault,
    EquipmentParams,
    HeatingFailure,
    HomeEvent,
    HomeParams,
    PowerCut,
    RefrigerantLeak,
    SampleIntervals,
    SlowLeak,
    Span,
    StuckSensor,
    Trace,
    Trip,
    VehicleParams,
    plan_trips,
    rng_for,
    simulate_coldchain,
    simulate_equipment,
    simulate_home,
    simulate_vehicle,
)

RISK_TYPES: tuple[str, ...] = (
    "water_leak",
    "freeze_risk",
    "harsh_braking",
    "speeding",
    "driver_fatigue",
    "slow_leak",
    "burst_pipe",
    "mould_risk",
    "fire_risk",
    "power_cut",
    "bearing_failure",
    "coldchain_failure",
    "battery_drain",
    "sensor_stuck",
)

MINUTE_S = 60.0

# Cities the fleet lives in: (name, lat, lon, winter mean °C).
CITIES: tuple[tuple[str, float, float, float], ...] = (
    ("shanghai", 31.2304, 121.4737, 5.0),
    ("hangzhou", 30.2741, 120.1551, 5.0),
    ("nanjing", 32.0603, 118.7969, 3.0),
    ("wuhan", 30.5928, 114.3055, 4.0),
    ("chengdu", 30.5728, 104.0668, 7.0),
    ("beijing", 39.9042, 116.4074, -3.0),
)


@dataclass(frozen=True, slots=True)
class Incident:
    """Ground truth for one device: a warning for any of ``risks`` between
    ``precursor_start_ms`` and ``loss_at_ms`` counts as warning this incident in time."""

    device: str
    scenario: str
    risks: tuple[str, ...]
    precursor_start_ms: int
    loss_at_ms: int
    loss_type: str
    cost_band_cny: tuple[float, float]
    expected_cost_cny: float
    tenant: str = "demo"
    kind: str = ""

    def __post_init__(self) -> None:
        unknown = [r for r in self.risks if r not in RISK_TYPES]
        if not self.risks or unknown:
            raise ValueError(f"risks must be non-empty and from RISK_TYPES, got {self.risks}")
        if not self.precursor_start_ms < self.loss_at_ms:
            raise ValueError(
                f"{self.device}: precursor_start_ms {self.precursor_start_ms} must be before "
                f"loss_at_ms {self.loss_at_ms}"
            )
        lo, hi = self.cost_band_cny
        if not 0 < lo <= self.expected_cost_cny <= hi:
            raise ValueError(f"expected_cost_cny {self.expected_cost_cny} outside {self.cost_band_cny}")

    @property
    def warning_window_s(self) -> float:
        """How long the precursor is observable before the loss."""
        return (self.loss_at_ms - self.precursor_start_ms) / 1000.0

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "scenario": self.scenario,
            "risks": list(self.risks),
            "precursor_start_ms": self.precursor_start_ms,
            "loss_at_ms": self.loss_at_ms,
            "loss_type": self.loss_type,
            "cost_band_cny": list(self.cost_band_cny),
            "expected_cost_cny": self.expected_cost_cny,
            "tenant": self.tenant,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Incident:
        lo, hi = doc["cost_band_cny"]
        return cls(
            device=str(doc["device"]),
            scenario=str(doc["scenario"]),
            risks=tuple(doc["risks"]),
            precursor_start_ms=int(doc["precursor_start_ms"]),
            loss_at_ms=int(doc["loss_at_ms"]),
            loss_type=str(doc["loss_type"]),
            cost_band_cny=(float(lo), float(hi)),
            expected_cost_cny=float(doc["expected_cost_cny"]),
            tenant=str(doc.get("tenant", "demo")),
            kind=str(doc.get("kind", "")),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running a scenario produced: the device's trace and the moments that matter.

    ``params`` holds knob values a variant run had to adjust (e.g. a pipe exposure capped so
    the pipe stays warm while the heating works); they replace the drawn values.
    """

    trace: Trace
    precursor_start_ms: int
    loss_at_ms: int
    params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Knob:
    """One physical parameter a scenario's replicas vary, uniform over [low, high]."""

    name: str
    low: float
    high: float
    unit: str
    about: str
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"knob {self.name}: low {self.low} above high {self.high}")

    def at(self, u: float) -> float:
        """The value at quantile ``u`` (0–1) of the range (integers: equal-width bins)."""
        u = min(max(u, 0.0), 1.0)
        if self.integer:
            return float(min(int(self.low) + math.floor(u * (self.high - self.low + 1)), int(self.high)))
        return round(self.low + (self.high - self.low) * u, 3)


ScenarioRun = Callable[[np.random.SeedSequence, Span, SampleIntervals, float, float | None], Outcome]
# a variant run: knobs in, the outcome out, or None when the loss does not happen in the span
VariantRun = Callable[[np.random.SeedSequence, Span, SampleIntervals, float, Mapping[str, float]], Outcome | None]

VARIANT_DRAWS = 40  # redraws allowed before a replica gives up (a pipe that never freezes …)
LOSS_MARGIN_S = 3600.0  # a replica's loss lands at least this long before its span ends


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """One entry of the library. ``run(seed, span, intervals, noise, at)`` simulates it;
    ``at`` (0–1) asks for the loss at that fraction of the span, None lets the seed choose."""

    name: str
    kind: str
    title: str
    risks: tuple[str, ...]
    loss_type: str
    cost_band_cny: tuple[float, float]
    natural_duration_s: float
    min_duration_s: float
    run: ScenarioRun
    knobs: tuple[Knob, ...] = ()  # what replicas vary; the first is spread evenly by the fleet
    variant: VariantRun | None = None

    def simulate(
        self,
        seed: np.random.SeedSequence,
        span: Span,
        intervals: SampleIntervals = DEFAULT_INTERVALS,
        noise: float = 1.0,
        at: float | None = None,
    ) -> Outcome:
        if span.duration_s < self.min_duration_s:
            raise ValueError(
                f"scenario {self.name} needs at least {self.min_duration_s / HOUR_S:g} h, "
                f"got {span.duration_s / HOUR_S:g} h"
            )
        if at is not None and not 0 < at < 1:
            raise ValueError(f"at must be a fraction of the span in (0, 1), got {at}")
        out = self.run(seed, span, intervals, noise, at)
        if not span.start_ms <= out.precursor_start_ms < out.loss_at_ms <= span.end_ms:
            raise RuntimeError(f"scenario {self.name}: ground truth outside the span ({out})")
        return out

    def simulate_variant(
        self,
        seed: np.random.SeedSequence,
        span: Span,
        intervals: SampleIntervals = DEFAULT_INTERVALS,
        noise: float = 1.0,
        spread: float | None = None,
    ) -> tuple[Outcome, dict[str, float]]:
        """One replica: the knobs drawn over their plausible ranges, the physics run forward.

        Returns the outcome and the knob values used. ``spread`` (0–1) places the first knob
        at that quantile of its range (a fleet spreads its replicas evenly); None draws it.
        A draw whose loss does not happen inside the span (a mild night and a lagged pipe
        that never freezes) is redrawn: a replica is the scenario *given* that the loss
        happens, at least :data:`LOSS_MARGIN_S` before the span ends. The draws come from
        the device's own seed, so a replica never depends on the rest of the fleet.
        """
        if self.variant is None or not self.knobs:
            raise ValueError(f"scenario {self.name} has no variants")
        if span.duration_s < self.natural_duration_s:
            raise ValueError(
                f"scenario {self.name}'s variants need its natural {self.natural_duration_s / HOUR_S:g} h, "
                f"got {span.duration_s / HOUR_S:g} h"
            )
        if spread is not None and not 0 <= spread < 1:
            raise ValueError(f"spread must be in [0, 1), got {spread}")
        rng = rng_for(child(seed, 11))
        latest_ms = span.end_ms - int(LOSS_MARGIN_S * 1000)
        for attempt in range(VARIANT_DRAWS):
            u = rng.random(len(self.knobs))
            if spread is not None and attempt < VARIANT_DRAWS // 2:
                u[0] = spread  # keep the fleet's placement while the others are redrawn
            knobs = {k.name: k.at(float(x)) for k, x in zip(self.knobs, u, strict=True)}
            out = self.variant(seed, span, intervals, noise, knobs)
            if out is not None and span.start_ms <= out.precursor_start_ms < out.loss_at_ms <= latest_ms:
                return out, {**knobs, **out.params}
        raise RuntimeError(f"scenario {self.name}: no loss inside the span after {VARIANT_DRAWS} draws")

    def incident(self, device: str, outcome: Outcome, seed: np.random.SeedSequence, tenant: str = "demo") -> Incident:
        rng = rng_for(child(seed, 9))
        lo, hi = self.cost_band_cny
        expected = round(lo * (hi / lo) ** float(rng.beta(2.0, 3.0)), -2)
        return Incident(
            device=device,
            scenario=self.name,
            risks=self.risks,
            precursor_start_ms=outcome.precursor_start_ms,
            loss_at_ms=outcome.loss_at_ms,
            loss_type=self.loss_type,
            cost_band_cny=self.cost_band_cny,
            expected_cost_cny=min(max(expected, lo), hi),
            tenant=tenant,
            kind=self.kind,
        )


def child(seed: np.random.SeedSequence, key: int) -> np.random.SeedSequence:
    """A named sub-stream of a device's seed (unlike ``spawn``, the same key every time)."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, key))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * rng.random())


def _city(rng: np.random.Generator) -> tuple[str, float, float, float]:
    return CITIES[int(rng.integers(len(CITIES)))]


def _first_ms(trace: Trace, mask: np.ndarray) -> int | None:
    return trace.first_time(mask)


def _calibrate(
    simulate: Callable[[float], tuple[Trace, int | None]], lo: float, hi: float, target_ms: int, iters: int = 14
) -> tuple[float, Trace, int]:
    """Find the event time ``x`` in [lo, hi] whose simulated loss lands nearest ``target_ms``.

    The loss time grows with ``x`` (a later failure, a later loss); bisection on that.
    """
    best: tuple[float, float, Trace, int] | None = None
    for _ in range(iters):
        x = (lo + hi) / 2
        trace, loss = simulate(x)
        if loss is not None:
            err = abs(loss - target_ms)
            if best is None or err < best[0]:
                best = (err, x, trace, loss)
        if loss is None or loss > target_ms:
            hi = x
        else:
            lo = x
    if best is None:
        x = lo
        trace, loss = simulate(x)
        if loss is None:
            raise RuntimeError("calibration found no loss in the span")
        return x, trace, loss
    return best[1], best[2], best[3]


def _target(rng: np.random.Generator, span: Span, at: float | None, lo: float, hi: float) -> float:
    """The loss moment in seconds from the span start: ``at`` or a draw in [lo, hi]."""
    frac = at if at is not None else _u(rng, lo, hi)
    return frac * span.duration_s


# ---------------------------------------------------------------------------------- homes


def _home_trace(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, params: HomeParams, *events: HomeEvent
) -> Trace:
    """A scenario home's trace: its physics on the device's model stream (``child(seed, 1)``)."""
    return simulate_home(child(seed, 1), span, params, list(events), interval_ms=iv.home_ms, noise=noise)


def _frozen_pipe(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """Empty home in a cold snap; the boiler locks out; an exposed pipe freezes and bursts."""
    rng = rng_for(child(seed, 0))
    target = _target(rng, span, at, 0.6, 0.8)
    target_ms = span.at(target)
    mean, swing = _u(rng, 0, 4), _u(rng, 3, 5)
    drop = _u(rng, 13, 17)
    front_lead_h, front_hours = _u(rng, 9, 12), _u(rng, 2, 4)
    setpoint = _u(rng, 15, 17)
    exposure_wish = _u(rng, 0.4, 0.55)
    house_tau_h, pipe_tau_h = _u(rng, 6, 8), _u(rng, 1.0, 1.6)
    humidity, supply = _u(rng, 40, 50), _u(rng, 4, 7)
    best: tuple[float, Trace, int] | None = None
    for colder in (0.0, 4.0, 8.0):  # a harder frost if the day is too mild to freeze in time
        front = ColdFront(target - front_lead_h * HOUR_S, drop + colder, front_hours)
        coldest = mean - swing - front.drop_c - 2.5
        # exposed, but not so exposed that it freezes while the heating still works
        exposure = min(exposure_wish, (setpoint - 4) / (setpoint - coldest))
        params = HomeParams(
            climate_mean_c=mean,
            climate_swing_c=swing,
            house_tau_h=house_tau_h,
            setpoint_c=setpoint,
            night_setback_c=0.0,
            pipe_exposure=exposure,
            pipe_tau_h=pipe_tau_h,
            occupants=0,
            humidity_base_pct=humidity,
            supply_water_c=supply,
        )

        def run(fail_s: float, params: HomeParams = params, front: ColdFront = front) -> tuple[Trace, int | None]:
            tr = _home_trace(seed, span, iv, noise, params, front, HeatingFailure(fail_s))
            return tr, _first_ms(tr, tr.state["pipe_c"] <= -1.0)

        lo = max(front.at_s - 2 * HOUR_S, 60.0)
        try:
            fail_s, trace, loss = _calibrate(run, lo, target - 1.5 * HOUR_S, target_ms)
        except RuntimeError:  # too mild to freeze at all: try a harder frost
            continue
        if best is None or abs(loss - target_ms) < abs(best[2] - target_ms):
            best = (fail_s, trace, loss)
        if abs(loss - target_ms) <= HOUR_S * 1000:
            break
    if best is None:
        raise RuntimeError("frozen_pipe: the pipe never froze; the span is too short or too mild")
    fail_s, trace, loss = best
    return Outcome(trace, span.at(fail_s), loss)


def _slow_leak(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A weeping joint under the sink: low flow that never stops, water soaking the floor."""
    rng = rng_for(child(seed, 0))
    target = _target(rng, span, at, 0.6, 0.8)
    start = max(_u(rng, 0.12, 0.3) * span.duration_s, 10 * MINUTE_S)
    start = min(start, target - 3 * HOUR_S) if target > 4 * HOUR_S else target * 0.3
    leaking_min = (target - start) / MINUTE_S
    lpm = min(max(_u(rng, 300, 700) / leaking_min, 0.15), 3.0)
    damage_l = lpm * leaking_min
    _, lat, _, winter = _city(rng)
    params = HomeParams(
        climate_mean_c=winter + _u(rng, 2, 8), occupants=int(rng.integers(1, 5)), humidity_base_pct=_u(rng, 45, 55)
    )
    leak = SlowLeak(start, lpm, damage_l * _u(rng, 0.3, 0.6))
    trace = _home_trace(seed, span, iv, noise, params, leak)
    loss = _first_ms(trace, trace.state["leak_volume_l"] >= damage_l * 0.999)
    return Outcome(trace, span.at(start), loss if loss is not None else span.at(target))


def _burst_pipe(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A corroded joint weeps for a while, then gives way: tens of litres a minute."""
    rng = rng_for(child(seed, 0))
    target = _target(rng, span, at, 0.35, 0.75)
    delay = _u(rng, 20, 45) * MINUTE_S  # until the water has spread beyond the room
    burst_at = target - delay
    drip_from = max(burst_at - _u(rng, 10, 40) * MINUTE_S, 60.0)
    params = HomeParams(climate_mean_c=_u(rng, 2, 12), occupants=int(rng.integers(1, 5)))
    event = BurstPipe(burst_at, _u(rng, 12, 30), drip_from, _u(rng, 0.08, 0.25), _u(rng, 15, 40))
    trace = _home_trace(seed, span, iv, noise, params, event)
    return Outcome(trace, span.at(drip_from), span.at(target))


# Mould on indoor surfaces (VTT mould model, Hukka & Viitanen 1999; Sedlbauer's isopleths for
# biodegradable materials): nothing grows below ~75 % RH, growth is full from 80 % (VTT's
# critical RH at room temperature) and speeds up steeply with humidity (the brief's "one to
# two weeks at 80 %, several days at 90 %"), a little with warmth (VTT: rate ~ T^0.68).
MOULD_RH_FROM_PCT = 75.0
MOULD_RH_FULL_PCT = 80.0
MOULD_SPEEDUP_PER_10_PCT = 2.5  # growth rate at 90 % RH over the rate at 80 %
DAY_S = 24 * HOUR_S


def mould_dose_days(trace: Trace) -> np.ndarray:
    """Cumulative mould dose along ``trace``: days at 80 % RH and 20 °C that grow as much.

    A room at 80 % accrues one day per day, at 90 % 2.5, at 77.5 % 0.4 (half way up the onset
    ramp), below 75 % nothing; mould damage is done when the dose reaches the material's
    ``mould_days``.
    """
    rh, temp = trace.state["humidity_pct"], trace.state["indoor_c"]
    onset = np.clip((rh - MOULD_RH_FROM_PCT) / (MOULD_RH_FULL_PCT - MOULD_RH_FROM_PCT), 0.0, 1.0)
    speed = MOULD_SPEEDUP_PER_10_PCT ** ((rh - MOULD_RH_FULL_PCT) / 10.0)
    warmth = (np.clip(temp, 0.0, None) / 20.0) ** 0.68
    dt_s = np.diff(trace.offsets_s(), prepend=trace.offsets_s()[0])
    return np.cumsum(onset * speed * warmth * dt_s) / DAY_S


def _mould_run(
    seed: np.random.SeedSequence,
    span: Span,
    iv: SampleIntervals,
    noise: float,
    params: HomeParams,
    damp: Damp,
    mould_days: float,
) -> tuple[Trace, int | None]:
    trace = _home_trace(seed, span, iv, noise, params, damp)
    return trace, _first_ms(trace, mould_dose_days(trace) >= mould_days)


def _mould(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None) -> Outcome:
    """Broken bathroom extractor and seepage: the room stays damp for days until mould takes hold."""
    rng = rng_for(child(seed, 0))
    target = _target(rng, span, at, 0.6, 0.85)
    params = HomeParams(
        climate_mean_c=_u(rng, 6, 12),
        occupants=int(rng.integers(2, 5)),
        humidity_base_pct=_u(rng, 55, 62),
        setpoint_c=_u(rng, 18, 20),
    )
    damp_rh, damp_tau_h, mould_days = _u(rng, 85, 91), _u(rng, 3, 8), _u(rng, 6, 8)
    for wetter in (0.0, 3.0, 6.0):  # a wetter room if the span is too short for this one
        damp_pct = min(damp_rh + wetter, 95.0)

        def run(from_s: float, damp_pct: float = damp_pct) -> tuple[Trace, int | None]:
            return _mould_run(seed, span, iv, noise, params, Damp(from_s, damp_pct, damp_tau_h), mould_days)

        try:
            damp_from, trace, loss = _calibrate(run, 60.0, max(target - DAY_S, 120.0), span.at(target))
        except RuntimeError:
            continue
        return Outcome(trace, span.at(damp_from), loss)
    raise RuntimeError("mould: no mould inside the span; the span is too short")


def _electrical_fire(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A loose connection in the consumer unit arcs, heats, smoulders, then catches fire."""
    rng = rng_for(child(seed, 0))
    fire = _target(rng, span, at, 0.55, 0.8)
    lead = min(_u(rng, 3, 6) * HOUR_S, fire * 0.8)
    fault = ElectricalFault(
        from_s=fire - lead,
        co_from_s=fire - min(_u(rng, 60, 120) * MINUTE_S, lead * 0.6),
        smoke_at_s=fire - _u(rng, 5, 15) * MINUTE_S,
        fire_at_s=fire,
    )
    params = HomeParams(climate_mean_c=_u(rng, 0, 10), occupants=int(rng.integers(1, 5)))
    trace = _home_trace(seed, span, iv, noise, params, fault)
    return Outcome(trace, span.at(fault.from_s), span.at(fire))


def _power_cut(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """Storm cuts the power; the sump pump stops and the basement floods hours later."""
    rng = rng_for(child(seed, 0))
    flood = _target(rng, span, at, 0.45, 0.7)
    cut = max(flood - _u(rng, 2.5, 5) * HOUR_S, flood * 0.3)
    cut_event = PowerCut(cut, flood + _u(rng, 2, 4) * HOUR_S, flood)
    params = HomeParams(
        climate_mean_c=_u(rng, 8, 14), occupants=int(rng.integers(2, 5)), humidity_base_pct=_u(rng, 55, 65)
    )
    trace = _home_trace(seed, span, iv, noise, params, cut_event)
    return Outcome(trace, span.at(cut), span.at(flood))


def _battery_drain(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A battery sensor pack in a holiday flat drains fast (retry storm) and goes silent."""
    rng = rng_for(child(seed, 0))
    dies = _target(rng, span, at, 0.6, 0.85)
    onset = _u(rng, 0.1, 0.3) * span.duration_s
    start_pct = _u(rng, 35, 60)
    level = start_pct - 0.03 * onset / HOUR_S
    rate = (level - 2.0) / ((dies - onset) / HOUR_S)
    params = HomeParams(
        climate_mean_c=_u(rng, 3, 10),
        occupants=int(rng.integers(0, 2)),
        mains_powered=False,
        battery_start_pct=start_pct,
        rssi_dbm=_u(rng, -85, -75),
    )
    trace = _home_trace(seed, span, iv, noise, params, BatteryFault(onset, rate))
    loss = int(trace.ts_ms[-1]) + iv.home_ms  # the first reading that never comes
    return Outcome(trace, span.at(onset), min(loss, span.end_ms))


def _stuck_sensor(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """The hub's temperature/humidity board hangs: the same values forever, nothing watched."""
    rng = rng_for(child(seed, 0))
    stuck = _u(rng, 0.2, 0.4) * span.duration_s
    if at is not None:
        loss = at * span.duration_s
        stuck = min(stuck, loss * 0.5)
    else:
        loss = min(stuck + _u(rng, 8, 14) * HOUR_S, 0.95 * span.duration_s)
    params = HomeParams(climate_mean_c=_u(rng, 0, 8), occupants=int(rng.integers(1, 5)))
    trace = _home_trace(seed, span, iv, noise, params, StuckSensor(stuck))
    return Outcome(trace, span.at(stuck), span.at(loss))


# ------------------------------------------------------------------------------- vehicles


def _vehicle_params(rng: np.random.Generator, driver: str) -> VehicleParams:
    _, lat, lon, winter = _city(rng)
    return VehicleParams(
        driver=DRIVERS[driver],
        home_lat=lat + _u(rng, -0.05, 0.05),
        home_lon=lon + _u(rng, -0.05, 0.05),
        ambient_c=winter + _u(rng, 0, 6),
        battery_rest_v=_u(rng, 12.4, 12.75),
    )


def _vehicle_trace(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, params: VehicleParams, *trips: Trip
) -> Trace:
    """A vehicle's trace: its physics on the device's model stream (``child(seed, 1)``)."""
    return simulate_vehicle(child(seed, 1), span, params, list(trips), intervals=iv, noise=noise)


def _trip_end_ms(trace: Trace, iv: SampleIntervals) -> int | None:
    """Just after the last reading with the ignition on (None: the car never moved)."""
    on = np.flatnonzero(trace.state["ignition"] > 0)
    return int(trace.ts_ms[on[-1]]) + iv.vehicle_driving_ms if on.size else None


def _first_harsh_or_speeding(trace: Trace, fallback_ms: int) -> int:
    st = trace.state
    harsh = st["accel_long_g"] <= -0.4
    speeding = st["speed_kmh"] > np.nan_to_num(st["speed_limit_kmh"], nan=1e9) * 1.1
    hit = _first_ms(trace, harsh | speeding)
    return hit if hit is not None else fallback_ms


def _fatigue_crash(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A long-haul driver keeps going past four hours without a break and crashes."""
    rng = rng_for(child(seed, 0))
    driving_h = _u(rng, 4.6, 6.2)
    if at is not None:
        crash = at * span.duration_s
        start = max(crash - driving_h * HOUR_S, 60.0)
    else:
        start = _u(rng, 0.04, 0.12) * span.duration_s
        crash = min(start + driving_h * HOUR_S, 0.95 * span.duration_s)
    if crash - start < 4.2 * HOUR_S:
        raise ValueError("fatigue_crash needs more than 4.2 h of driving before the crash")
    trip = Trip(start, crash - start + 30 * MINUTE_S, "long_haul", crash_at_s=crash, fatigue_from_s=start + 3 * HOUR_S)
    trace = _vehicle_trace(seed, span, iv, noise, _vehicle_params(rng, "fatigued"), trip)
    return Outcome(trace, span.at(start + 4 * HOUR_S), span.at(crash))


def _risky_trip(
    rng: np.random.Generator,
    start: float,
    length: float,
    end_event: float,
    brakes: int,
    stretches: int,
    route: str,
    crash: bool,
    brake_g: float | None = None,
    over_limit: float | None = None,
) -> Trip:
    """Harsh brakes from 4–12 min in until 3 min before ``end_event``; speeding stretches.

    ``brake_g`` (each brake within ±0.05 g of it) and ``over_limit`` (speed / limit while
    speeding, ±3 %) are a variant's knobs; None keeps the model's and the typical draws.
    """
    first = start + _u(rng, 4, 12) * MINUTE_S
    last = end_event - 3 * MINUTE_S
    harsh = tuple(sorted([first] + [_u(rng, first, last) for _ in range(brakes - 1)]))
    speeding = []
    for _ in range(stretches):
        a = _u(rng, start + 8 * MINUTE_S, last - 6 * MINUTE_S)
        duration = _u(rng, 2, 6) * MINUTE_S
        factor = _u(rng, 1.25, 1.42) if over_limit is None else over_limit * _u(rng, 0.97, 1.03)
        speeding.append((a, a + duration, factor))
    decel: tuple[float, ...] = ()
    if brake_g is not None:
        decel = tuple(min(max(brake_g + _u(rng, -0.05, 0.05), 0.4), 0.85) for _ in harsh)
    return Trip(
        start,
        length,
        route,
        harsh_brakes_at_s=harsh,
        speeding=tuple(speeding),
        crash_at_s=end_event if crash else None,
        harsh_brake_g=decel,
    )


def _risky_driving_crash(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """An aggressive driver brakes hard again and again, speeds, and finally rear-ends a car."""
    rng = rng_for(child(seed, 0))
    length = _u(rng, 60, 100) * MINUTE_S
    into = _u(rng, 0.7, 0.9) * length
    if at is not None:
        crash = at * span.duration_s
        start = max(crash - into, 60.0)
    else:
        start = _u(rng, 0.1, 0.3) * span.duration_s
        crash = start + into
    trip = _risky_trip(
        rng, start, length, crash, int(rng.integers(5, 9)), int(rng.integers(3, 5)), "highway", crash=True
    )
    trace = _vehicle_trace(seed, span, iv, noise, _vehicle_params(rng, "aggressive"), trip)
    return Outcome(trace, _first_harsh_or_speeding(trace, span.at(start)), span.at(crash))


def _harsh_braking_trip(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A trip of repeated harsh braking and speeding, labelled risky at its end (no crash)."""
    rng = rng_for(child(seed, 0))
    length = _u(rng, 40, 70) * MINUTE_S
    if at is not None:
        end = at * span.duration_s
        start = max(end - length, 60.0)
        length = end - start
    else:
        start = _u(rng, 0.1, 0.3) * span.duration_s
    trip = _risky_trip(
        rng, start, length, start + length, int(rng.integers(4, 8)), int(rng.integers(1, 3)), "suburban", crash=False
    )
    trace = _vehicle_trace(seed, span, iv, noise, _vehicle_params(rng, "aggressive"), trip)
    end_ms = _trip_end_ms(trace, iv)
    end_ms = span.at(start + length) if end_ms is None else end_ms
    return Outcome(trace, _first_harsh_or_speeding(trace, span.at(start)), end_ms)


# ------------------------------------------------------------------ equipment, cold chain


def _wear_detectable_s(wear: BearingWear, baseline_mm_s: float) -> float:
    """When the growing vibration is 30 % above baseline: one ISO 10816 zone step."""
    rate = math.log(wear.fail_vibration_mm_s / baseline_mm_s) / (wear.fail_at_s - wear.onset_s)
    return wear.onset_s + math.log(1.3) / rate


def _spoiled_ms(trace: Trace, iv: SampleIntervals, tolerance_min: float) -> int | None:
    """The first moment the load has been above 8 °C for ``tolerance_min`` minutes in all."""
    warm_min = np.cumsum((trace.state["box_c"] > 8.0) * (iv.coldchain_ms / 1000 / MINUTE_S))
    return _first_ms(trace, warm_min >= tolerance_min)


def _bearing_failure(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """An outer-race defect grows (weeks of wear compressed into hours) until the bearing seizes."""
    rng = rng_for(child(seed, 0))
    fail = _target(rng, span, at, 0.75, 0.9)
    onset = min(_u(rng, 0.1, 0.25) * span.duration_s, fail * 0.3)
    v0 = _u(rng, 1.5, 2.8)
    wear = BearingWear(onset, fail, _u(rng, 18, 28))
    params = EquipmentParams(
        baseline_vibration_mm_s=v0,
        rated_current_a=_u(rng, 40, 120),
        pressure_kpa=_u(rng, 350, 650),
        ambient_c=_u(rng, 20, 30),
    )
    trace = simulate_equipment(child(seed, 1), span, params, wear, interval_ms=iv.equipment_ms, noise=noise)
    return Outcome(trace, span.at(_wear_detectable_s(wear, v0)), span.at(fail))


def _coldchain_failure(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """Refrigerant leak: the compressor runs flat out, then trips; the load warms past 8 °C."""
    rng = rng_for(child(seed, 0))
    target = _target(rng, span, at, 0.5, 0.75)
    tolerance_min = _u(rng, 60, 120)  # minutes above 8 °C the product tolerates
    ramp = _u(rng, 1.5, 3) * HOUR_S
    params = ColdChainParams(
        setpoint_c=_u(rng, 3, 5),
        ambient_mean_c=_u(rng, 24, 32),
        box_tau_h=_u(rng, 4, 6),
        cooling_c_per_h=_u(rng, 8, 12),
        door_openings_per_h=_u(rng, 0.6, 1.6),
    )
    model_seed = child(seed, 1)

    def run(onset: float) -> tuple[Trace, int | None]:
        tr = simulate_coldchain(
            model_seed, span, params, RefrigerantLeak(onset, onset + ramp), interval_ms=iv.coldchain_ms, noise=noise
        )
        return tr, _spoiled_ms(tr, iv, tolerance_min)

    onset, trace, loss = _calibrate(run, 60.0, max(target - ramp - 10 * MINUTE_S, 120.0), span.at(target))
    return Outcome(trace, span.at(onset), loss)


# ------------------------------------------------------------------- replicas (variants)
#
# Each variant takes its knobs (drawn by ScenarioSpec.simulate_variant from the ranges in
# the library below) and runs the physics forward: the loss lands where the physics puts
# it. Secondary, non-knob details (the city, the set point …) come from the device's seed.
# A variant returns None when its loss does not happen in the span; the draw is then redone.


def _frozen_pipe_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    mean, swing = _u(rng, 0, 6), _u(rng, 3, 5)  # the weather before the cold snap
    front_lead_h, front_hours = _u(rng, 1, 6), _u(rng, 2, 4)
    setpoint = _u(rng, 15, 17)  # an empty home kept cool
    humidity, supply = _u(rng, 40, 50), _u(rng, 4, 7)
    fail = k["heating_fails_h"] * HOUR_S
    low = k["outdoor_low_c"]
    # the snap arrives before the boiler locks out, bringing night lows of ``low``
    front = ColdFront(fail - front_lead_h * HOUR_S, max(mean - swing - low, 0.0), front_hours)
    # exposed, but not so exposed that it freezes while the heating still works
    exposure = min(k["pipe_exposure"], (setpoint - 4) / (setpoint - (low - 2.5)))
    params = HomeParams(
        climate_mean_c=mean,
        climate_swing_c=swing,
        house_tau_h=k["house_tau_h"],
        setpoint_c=setpoint,
        night_setback_c=0.0,
        pipe_exposure=exposure,
        pipe_tau_h=k["pipe_tau_h"],
        occupants=0,
        humidity_base_pct=humidity,
        supply_water_c=supply,
    )
    trace = _home_trace(seed, span, iv, noise, params, front, HeatingFailure(fail))
    loss = _first_ms(trace, trace.state["pipe_c"] <= -1.0)
    if loss is None:
        return None
    return Outcome(trace, span.at(fail), loss, {"pipe_exposure": round(exposure, 3)})


def _slow_leak_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    _, _, _, winter = _city(rng)
    params = HomeParams(
        climate_mean_c=winter + _u(rng, 2, 8), occupants=int(k["occupants"]), humidity_base_pct=_u(rng, 45, 55)
    )
    start, damage_l = k["leak_starts_h"] * HOUR_S, k["damage_l"]
    leak = SlowLeak(start, k["leak_lpm"], damage_l * k["sensor_wet_share"])
    trace = _home_trace(seed, span, iv, noise, params, leak)
    loss = _first_ms(trace, trace.state["leak_volume_l"] >= damage_l)
    return None if loss is None else Outcome(trace, span.at(start), loss)


def _burst_pipe_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    params = HomeParams(climate_mean_c=_u(rng, 2, 12), occupants=int(rng.integers(1, 5)))
    burst_at = k["burst_h"] * HOUR_S
    drip_from = max(burst_at - k["drip_min"] * MINUTE_S, 60.0)
    event = BurstPipe(burst_at, k["burst_lpm"], drip_from, k["drip_lpm"], k["sensor_wet_l"])
    trace = _home_trace(seed, span, iv, noise, params, event)
    t, volume = trace.offsets_s(), trace.state["leak_volume_l"]
    released = volume - float(np.interp(burst_at, t, volume))  # litres since it gave way
    loss = _first_ms(trace, (t >= burst_at) & (released >= k["spread_l"]))
    return None if loss is None else Outcome(trace, span.at(drip_from), loss)


def _mould_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    params = HomeParams(
        climate_mean_c=_u(rng, 6, 12),
        occupants=int(rng.integers(2, 5)),
        humidity_base_pct=k["base_rh_pct"],
        setpoint_c=_u(rng, 18, 20),
    )
    damp_from = k["damp_starts_h"] * HOUR_S
    damp = Damp(damp_from, k["damp_rh_pct"], k["damp_tau_h"])
    trace, loss = _mould_run(seed, span, iv, noise, params, damp, k["mould_days"])
    return None if loss is None else Outcome(trace, span.at(damp_from), loss)


def _electrical_fire_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    start = k["arcing_starts_h"] * HOUR_S
    fire = start + k["arcing_h"] * HOUR_S
    co_lead = min(k["smoulder_min"] * MINUTE_S, 0.6 * (fire - start))
    smoke_lead = min(k["smoke_min"] * MINUTE_S, 0.5 * co_lead)
    fault = ElectricalFault(from_s=start, co_from_s=fire - co_lead, smoke_at_s=fire - smoke_lead, fire_at_s=fire)
    params = HomeParams(climate_mean_c=_u(rng, 0, 10), occupants=int(rng.integers(1, 5)))
    trace = _home_trace(seed, span, iv, noise, params, fault)
    return Outcome(
        trace,
        span.at(start),
        span.at(fire),
        {"smoulder_min": round(co_lead / MINUTE_S, 3), "smoke_min": round(smoke_lead / MINUTE_S, 3)},
    )


def _power_cut_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    cut = k["cut_h"] * HOUR_S
    fill_h = k["pit_free_l"] / k["inflow_lph"]  # the stopped sump pump's pit fills up
    flood = cut + fill_h * HOUR_S
    cut_event = PowerCut(cut, flood + _u(rng, 2, 4) * HOUR_S, flood)
    params = HomeParams(
        climate_mean_c=_u(rng, 8, 14), occupants=int(rng.integers(2, 5)), humidity_base_pct=_u(rng, 55, 65)
    )
    trace = _home_trace(seed, span, iv, noise, params, cut_event)
    return Outcome(trace, span.at(cut), span.at(flood), {"pit_fill_h": round(fill_h, 3)})


def _battery_drain_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    onset = k["fault_starts_h"] * HOUR_S
    params = HomeParams(
        climate_mean_c=_u(rng, 3, 10),
        occupants=int(rng.integers(0, 2)),
        mains_powered=False,
        battery_start_pct=k["start_pct"],
        rssi_dbm=_u(rng, -85, -75),
    )
    fault = BatteryFault(onset, k["drain_pct_per_h"])
    trace = _home_trace(seed, span, iv, noise, params, fault)
    if not len(trace) or len(trace) == len(span.grid(iv.home_ms)):
        return None  # still alive at the end of the span
    return Outcome(trace, span.at(onset), int(trace.ts_ms[-1]) + iv.home_ms)


def _stuck_sensor_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    stuck = k["stuck_h"] * HOUR_S
    params = HomeParams(
        climate_mean_c=_u(rng, 0, 8), climate_swing_c=k["climate_swing_c"], occupants=int(rng.integers(1, 5))
    )
    trace = _home_trace(seed, span, iv, noise, params, StuckSensor(stuck))
    return Outcome(trace, span.at(stuck), span.at(stuck + k["unmonitored_h"] * HOUR_S))


def _fatigue_crash_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    start = k["trip_starts_h"] * HOUR_S
    crash = start + k["driving_h"] * HOUR_S
    trip = Trip(
        start,
        crash - start + 30 * MINUTE_S,
        "long_haul",
        crash_at_s=crash,
        fatigue_from_s=start + k["fatigue_from_h"] * HOUR_S,
    )
    trace = _vehicle_trace(seed, span, iv, noise, _vehicle_params(rng, "fatigued"), trip)
    return Outcome(trace, span.at(start + 4 * HOUR_S), span.at(crash))


def _risky_driving_crash_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    start = k["trip_starts_h"] * HOUR_S
    crash = start + k["crash_after_min"] * MINUTE_S
    length = crash - start + _u(rng, 10, 40) * MINUTE_S  # where the trip was going
    trip = _risky_trip(
        rng,
        start,
        length,
        crash,
        int(k["harsh_brakes"]),
        int(k["speeding_stretches"]),
        "highway",
        crash=True,
        brake_g=k["brake_g"],
        over_limit=k["over_limit"],
    )
    trace = _vehicle_trace(seed, span, iv, noise, _vehicle_params(rng, "aggressive"), trip)
    return Outcome(trace, _first_harsh_or_speeding(trace, span.at(start)), span.at(crash))


def _harsh_braking_trip_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    start, length = k["trip_starts_h"] * HOUR_S, k["trip_min"] * MINUTE_S
    trip = _risky_trip(
        rng,
        start,
        length,
        start + length,
        int(k["harsh_brakes"]),
        int(k["speeding_stretches"]),
        "suburban",
        crash=False,
        brake_g=k["brake_g"],
        over_limit=k["over_limit"],
    )
    trace = _vehicle_trace(seed, span, iv, noise, _vehicle_params(rng, "aggressive"), trip)
    end_ms = _trip_end_ms(trace, iv)
    return None if end_ms is None else Outcome(trace, _first_harsh_or_speeding(trace, span.at(start)), end_ms)


def _bearing_failure_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    onset = k["onset_h"] * HOUR_S
    fail = onset + k["wear_h"] * HOUR_S
    v0 = k["baseline_mm_s"]
    wear = BearingWear(onset, fail, k["seize_mm_s"])
    params = EquipmentParams(
        baseline_vibration_mm_s=v0,
        rated_current_a=_u(rng, 30, 150),
        pressure_kpa=_u(rng, 300, 800),
        ambient_c=_u(rng, 18, 34),
    )
    trace = simulate_equipment(child(seed, 1), span, params, wear, interval_ms=iv.equipment_ms, noise=noise)
    return Outcome(trace, span.at(_wear_detectable_s(wear, v0)), span.at(fail))


def _coldchain_failure_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    params = ColdChainParams(
        setpoint_c=_u(rng, 2.5, 5),
        ambient_mean_c=k["ambient_c"],
        box_tau_h=k["box_tau_h"],
        cooling_c_per_h=_u(rng, 8, 12),
        door_openings_per_h=_u(rng, 0.6, 1.8),
    )
    onset = k["leak_starts_h"] * HOUR_S
    leak = RefrigerantLeak(onset, onset + k["leak_ramp_h"] * HOUR_S)
    trace = simulate_coldchain(child(seed, 1), span, params, leak, interval_ms=iv.coldchain_ms, noise=noise)
    loss = _spoiled_ms(trace, iv, k["tolerance_min"])
    return None if loss is None else Outcome(trace, span.at(onset), loss)


_K = Knob
KNOBS: dict[str, tuple[Knob, ...]] = {
    "frozen_pipe": (
        _K("outdoor_low_c", -15, -6, "°C", "night low of the cold snap"),
        _K("heating_fails_h", 2, 16, "h", "boiler locks out, hours after the span start"),
        _K("house_tau_h", 4, 12, "h", "how fast the empty house cools (poor to good insulation)"),
        _K("pipe_tau_h", 0.6, 2.5, "h", "pipe time constant (bare to lagged)"),
        _K(
            "pipe_exposure",
            0.35,
            0.65,
            "",
            "share of outdoor air at the pipe (capped so it stays above 4 °C while heated)",
        ),
    ),
    "slow_leak": (
        _K("leak_lpm", 0.3, 1.5, "l/min", "weeping joint's flow"),
        _K("damage_l", 250, 700, "l", "litres soaked up when the damage is done (the loss)"),
        _K("leak_starts_h", 1, 12, "h", "hours after the span start"),
        _K("sensor_wet_share", 0.2, 1.0, "", "share of those litres before the leak sensor is wet"),
        _K("occupants", 1, 4, "", "household water use masking the leak", integer=True),
    ),
    "burst_pipe": (
        _K("burst_lpm", 10, 35, "l/min", "flow once the joint gives way"),
        _K("drip_min", 5, 120, "min", "the joint weeps this long before it bursts"),
        _K("drip_lpm", 0.05, 0.3, "l/min", "weeping flow"),
        _K("spread_l", 300, 800, "l", "litres after the burst until water leaves the room (the loss)"),
        _K("sensor_wet_l", 15, 60, "l", "litres after the burst until the leak sensor is wet"),
        _K("burst_h", 3, 18, "h", "hours after the span start"),
    ),
    "mould": (
        _K("damp_rh_pct", 83, 93, "%", "humidity the damp drives the room towards"),
        _K(
            "mould_days",
            5,
            10,
            "d",
            "days at 80 % RH (20 °C) equivalent until mould damage (one to two weeks at 80 %, several days at 90 %)",
        ),
        _K("damp_tau_h", 3, 18, "h", "how fast the damp builds up (hours to most of a day)"),
        _K("base_rh_pct", 52, 62, "%", "the room's humidity before the damp"),
        _K("damp_starts_h", 6, 30, "h", "hours after the span start"),
    ),
    "electrical_fire": (
        _K("arcing_h", 1.5, 8, "h", "arcing and heating before flames"),
        _K("smoulder_min", 30, 150, "min", "insulation smoulders (CO) this long before the fire"),
        _K("smoke_min", 3, 20, "min", "smoke alarm this long before the fire"),
        _K("arcing_starts_h", 1, 12, "h", "hours after the span start"),
    ),
    "power_cut": (
        _K("inflow_lph", 40, 160, "l/h", "storm water into the sump pit"),
        _K("pit_free_l", 120, 400, "l", "free volume in the pit when the pump stops"),
        _K("cut_h", 2, 14, "h", "power goes, hours after the span start"),
    ),
    "battery_drain": (
        _K("drain_pct_per_h", 2, 8, "%/h", "retry storm / failing cell"),
        _K("start_pct", 25, 65, "%", "charge when the span starts"),
        _K("fault_starts_h", 3, 16, "h", "hours after the span start"),
    ),
    "stuck_sensor": (
        _K("unmonitored_h", 6, 18, "h", "flatline until it matters (the loss)"),
        _K("stuck_h", 4, 16, "h", "board hangs, hours after the span start"),
        _K("climate_swing_c", 1.5, 6, "°C", "daily outdoor swing (small: a flatline hides better)"),
    ),
    "fatigue_crash": (
        _K("driving_h", 4.4, 7.0, "h", "non-stop driving until the crash"),
        _K("trip_starts_h", 0.3, 4.0, "h", "departure, hours after the span start (a night run)"),
        _K("fatigue_from_h", 2.0, 3.5, "h", "weaving and lapses grow from this far into the trip"),
    ),
    "risky_driving_crash": (
        _K("crash_after_min", 30, 110, "min", "minutes into the trip when it rear-ends a car"),
        _K("harsh_brakes", 3, 9, "", "harsh brakes before the crash", integer=True),
        _K("brake_g", 0.4, 0.8, "g", "deceleration of the harsh brakes (each ±0.05 g)"),
        _K("speeding_stretches", 1, 5, "", "stretches well over the limit", integer=True),
        _K("over_limit", 1.2, 1.45, "", "speed / limit while speeding"),
        _K("trip_starts_h", 0.5, 3.0, "h", "hours after the span start"),
    ),
    "harsh_braking_trip": (
        _K("trip_min", 25, 90, "min", "trip length (the loss is its end)"),
        _K("harsh_brakes", 2, 9, "", "harsh brakes on the trip", integer=True),
        _K("brake_g", 0.4, 0.8, "g", "deceleration of the harsh brakes (each ±0.05 g)"),
        _K("speeding_stretches", 0, 3, "", "stretches well over the limit", integer=True),
        _K("over_limit", 1.2, 1.45, "", "speed / limit while speeding"),
        _K("trip_starts_h", 0.3, 1.4, "h", "hours after the span start"),
    ),
    "bearing_failure": (
        _K("wear_h", 8, 34, "h", "defect onset to seizure (weeks of wear compressed)"),
        _K("baseline_mm_s", 1.2, 3.5, "mm/s", "healthy vibration"),
        _K("seize_mm_s", 16, 30, "mm/s", "vibration when the bearing seizes"),
        _K("onset_h", 2, 10, "h", "defect appears, hours after the span start"),
    ),
    "coldchain_failure": (
        _K("ambient_c", 20, 35, "°C", "mean ambient temperature around the box"),
        _K("leak_ramp_h", 0.5, 4, "h", "cooling capacity falls this long before the compressor trips"),
        _K("tolerance_min", 45, 150, "min", "minutes above 8 °C the load tolerates"),
        _K("box_tau_h", 3, 7, "h", "insulation: how fast the box follows the ambient"),
        _K("leak_starts_h", 2, 12, "h", "hours after the span start"),
    ),
}

_VARIANTS: dict[str, VariantRun] = {
    "frozen_pipe": _frozen_pipe_variant,
    "slow_leak": _slow_leak_variant,
    "burst_pipe": _burst_pipe_variant,
    "mould": _mould_variant,
    "electrical_fire": _electrical_fire_variant,
    "power_cut": _power_cut_variant,
    "battery_drain": _battery_drain_variant,
    "stuck_sensor": _stuck_sensor_variant,
    "fatigue_crash": _fatigue_crash_variant,
    "risky_driving_crash": _risky_driving_crash_variant,
    "harsh_braking_trip": _harsh_braking_trip_variant,
    "bearing_failure": _bearing_failure_variant,
    "coldchain_failure": _coldchain_failure_variant,
}


# ---------------------------------------------------------------------------- the library

_H = HOUR_S
SCENARIOS: dict[str, ScenarioSpec] = {
    s.name: replace(s, knobs=KNOBS[s.name], variant=_VARIANTS[s.name])
    for s in (
        ScenarioSpec(
            "frozen_pipe",
            "home",
            "Empty home in a cold snap, boiler out: pipe freezes",
            ("freeze_risk",),
            "frozen_pipe_burst",
            (5_000, 30_000),
            36 * _H,
            8 * _H,
            _frozen_pipe,
        ),
        ScenarioSpec(
            "slow_leak",
            "home",
            "Weeping joint: low flow that never stops",
            ("slow_leak", "water_leak"),
            "water_damage",
            (8_000, 60_000),
            48 * _H,
            8 * _H,
            _slow_leak,
        ),
        ScenarioSpec(
            "burst_pipe",
            "home",
            "Pipe gives way: high flow, leak sensor wet",
            ("burst_pipe", "water_leak"),
            "water_damage",
            (20_000, 100_000),
            24 * _H,
            2 * _H,
            _burst_pipe,
        ),
        ScenarioSpec(
            "mould",
            "home",
            "Humidity above 80 % for days: mould",
            ("mould_risk",),
            "mould_damage",
            (5_000, 40_000),
            10 * 24 * _H,
            6 * 24 * _H,
            _mould,
        ),
        ScenarioSpec(
            "electrical_fire",
            "home",
            "Arcing connection: heat, CO, smoke, fire",
            ("fire_risk",),
            "fire",
            (100_000, 1_000_000),
            24 * _H,
            8 * _H,
            _electrical_fire,
        ),
        ScenarioSpec(
            "power_cut",
            "home",
            "Power cut stops the sump pump: basement floods",
            ("power_cut",),
            "basement_flood",
            (10_000, 80_000),
            24 * _H,
            8 * _H,
            _power_cut,
        ),
        ScenarioSpec(
            "battery_drain",
            "home",
            "Sensor pack drains and goes silent",
            ("battery_drain",),
            "device_offline",
            (1_000, 10_000),
            48 * _H,
            12 * _H,
            _battery_drain,
        ),
        ScenarioSpec(
            "stuck_sensor",
            "home",
            "Temperature board hangs: flatline",
            ("sensor_stuck",),
            "unmonitored_exposure",
            (2_000, 20_000),
            36 * _H,
            12 * _H,
            _stuck_sensor,
        ),
        ScenarioSpec(
            "fatigue_crash",
            "vehicle",
            "Long haul past 4 h without a break ends in a crash",
            ("driver_fatigue",),
            "collision",
            (10_000, 200_000),
            12 * _H,
            8 * _H,
            _fatigue_crash,
        ),
        ScenarioSpec(
            "risky_driving_crash",
            "vehicle",
            "Harsh braking and speeding, then a crash",
            ("harsh_braking", "speeding"),
            "collision",
            (10_000, 200_000),
            6 * _H,
            3 * _H,
            _risky_driving_crash,
        ),
        ScenarioSpec(
            "harsh_braking_trip",
            "vehicle",
            "A trip of harsh braking and speeding",
            ("harsh_braking", "speeding"),
            "risky_driving",
            (1_000, 10_000),
            4 * _H,
            1.5 * _H,
            _harsh_braking_trip,
        ),
        ScenarioSpec(
            "bearing_failure",
            "equipment",
            "Bearing wear to seizure",
            ("bearing_failure",),
            "machinery_breakdown",
            (50_000, 500_000),
            48 * _H,
            12 * _H,
            _bearing_failure,
        ),
        ScenarioSpec(
            "coldchain_failure",
            "coldchain",
            "Refrigerant leak: compressor trips, load spoils",
            ("coldchain_failure",),
            "spoiled_goods",
            (20_000, 200_000),
            24 * _H,
            8 * _H,
            _coldchain_failure,
        ),
    )
}


# -------------------------------------------------------------------------- quiet devices

QuietRun = Callable[[np.random.SeedSequence, Span, SampleIntervals, float], Trace]


def _quiet_vehicle(habit: str, driver: str) -> QuietRun:
    def run(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
        rng = rng_for(child(seed, 0))
        params = _vehicle_params(rng, driver)
        return _vehicle_trace(seed, span, iv, noise, params, *plan_trips(rng, span, habit))

    return run


Range = tuple[float, float]


def _quiet_home(
    occupants: tuple[int, int],
    climate: Range,
    mains: bool,
    *,
    house_tau_h: Range = (7, 12),
    setpoint_c: Range = (19, 22),
    exposure: Range = (0.15, 0.3),
    humidity_pct: Range = (42, 58),
) -> QuietRun:
    """A lived-in home with working heating in a climate whose winter mean is ``climate``."""

    def run(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
        rng = rng_for(child(seed, 0))
        params = HomeParams(
            climate_mean_c=_u(rng, *climate),
            climate_swing_c=_u(rng, 3, 6),
            house_tau_h=_u(rng, *house_tau_h),
            setpoint_c=_u(rng, *setpoint_c),
            pipe_exposure=_u(rng, *exposure),
            occupants=int(rng.integers(occupants[0], occupants[1] + 1)),
            humidity_base_pct=_u(rng, *humidity_pct),
            mains_powered=mains,
            battery_start_pct=100.0 if mains else _u(rng, 70, 100),
        )
        return _home_trace(seed, span, iv, noise, params)

    return run


def _quiet_pump(
    *, vibration_mm_s: Range = (1.2, 3.0), ambient_c: Range = (18, 32), stops_per_day: Range = (0.5, 2)
) -> QuietRun:
    """A healthy pump on its duty cycle."""

    def run(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
        rng = rng_for(child(seed, 0))
        params = EquipmentParams(
            baseline_vibration_mm_s=_u(rng, *vibration_mm_s),
            rated_current_a=_u(rng, 30, 150),
            pressure_kpa=_u(rng, 300, 800),
            ambient_c=_u(rng, *ambient_c),
            stops_per_day=_u(rng, *stops_per_day),
        )
        return simulate_equipment(child(seed, 1), span, params, interval_ms=iv.equipment_ms, noise=noise)

    return run


def _quiet_reefer(
    *, ambient_c: Range = (15, 32), box_tau_h: Range = (4, 7), doors_per_h: Range = (0.5, 2.0)
) -> QuietRun:
    """A working refrigerated box: the compressor cycles, the doors open on deliveries."""

    def run(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
        rng = rng_for(child(seed, 0))
        params = ColdChainParams(
            setpoint_c=_u(rng, 3, 5),
            ambient_mean_c=_u(rng, *ambient_c),
            box_tau_h=_u(rng, *box_tau_h),
            cooling_c_per_h=_u(rng, 9, 13),
            door_openings_per_h=_u(rng, *doors_per_h),
        )
        return simulate_coldchain(child(seed, 1), span, params, interval_ms=iv.coldchain_ms, noise=noise)

    return run


# Quiet device n of a kind (1-based) runs profile (n - 1) mod the kind's count; its own seed
# draws the parameters inside the profile's ranges. Append new profiles at the end: the
# ordinal of an existing one is what the demo fleet's quiet devices are made of.
QUIET_PROFILES: dict[str, tuple[tuple[str, QuietRun], ...]] = {
    "vehicle": (
        ("commuter", _quiet_vehicle("commuter", "calm")),
        ("night_driver", _quiet_vehicle("night", "night")),
        ("long_haul_rested", _quiet_vehicle("long_haul", "calm")),
        ("courier", _quiet_vehicle("courier", "calm")),
        ("night_long_haul_rested", _quiet_vehicle("night_long_haul", "night")),
    ),
    "home": (
        ("family_home", _quiet_home((2, 5), (-3, 6), True)),
        ("city_flat", _quiet_home((1, 2), (4, 14), True)),
        ("sensor_pack", _quiet_home((1, 3), (0, 10), False)),
        # a northern home in a hard winter, well built, heating on: cold outside, warm pipes
        (
            "cold_north_home",
            _quiet_home((2, 4), (-12, -4), True, house_tau_h=(10, 16), setpoint_c=(20, 23), exposure=(0.08, 0.2)),
        ),
        # a humid southern flat in a mild winter, heating hardly ever on
        (
            "mild_south_flat",
            _quiet_home((1, 3), (10, 17), True, house_tau_h=(5, 8), setpoint_c=(17, 19), humidity_pct=(55, 66)),
        ),
    ),
    "equipment": (
        ("pump", _quiet_pump()),
        ("rough_hot_pump", _quiet_pump(vibration_mm_s=(3.0, 4.5), ambient_c=(28, 38))),
        ("stop_start_pump", _quiet_pump(stops_per_day=(4, 8))),
    ),
    "coldchain": (
        ("reefer", _quiet_reefer()),
        ("hot_depot_reefer", _quiet_reefer(ambient_c=(30, 35), doors_per_h=(1.5, 3.0))),
        ("cold_room", _quiet_reefer(ambient_c=(12, 22), box_tau_h=(8, 12), doors_per_h=(0.2, 0.8))),
    ),
}

QUIET_DURATION_S: dict[str, float] = {
    "vehicle": 24 * HOUR_S,
    "home": 48 * HOUR_S,
    "equipment": 48 * HOUR_S,
    "coldchain": 24 * HOUR_S,
}


def quiet_profile(kind: str, ordinal: int) -> str:
    """The name of the quiet profile ``ordinal`` (0-based) of ``kind`` runs."""
    profiles = QUIET_PROFILES[kind]
    return profiles[ordinal % len(profiles)][0]


def simulate_quiet(
    kind: str,
    ordinal: int,
    seed: np.random.SeedSequence,
    span: Span,
    intervals: SampleIntervals = DEFAULT_INTERVALS,
    noise: float = 1.0,
) -> Trace:
    """An ordinary device of ``kind``; ``ordinal`` picks among the kind's quiet profiles."""
    profiles = QUIET_PROFILES[kind]
    _, run = profiles[ordinal % len(profiles)]
    return run(seed, span, intervals, noise)
