"""Homes: a sensor hub's physics, what goes wrong in a home, and ordinary homes.

:func:`simulate_home` models the weather, a first-order house with a thermostat, the water
pipe, household water use, air quality, mains power and the hub's battery; the faults a
scenario injects (:class:`ColdFront`, :class:`HeatingFailure`, :class:`SlowLeakFault`,
:class:`BurstPipeFault`, :class:`Damp`, :class:`ElectricalFault`, :class:`PowerCutFault`,
:class:`BatteryFault`, :class:`StuckSensor`) change it. The home scenarios (frozen pipe,
slow leak, burst pipe, mould, electrical fire, power cut, battery drain, stuck sensor) and
the quiet home profiles are defined here; :mod:`simulator.scenarios` assembles the library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from simulator.incidents import (
    Knob,
    Outcome,
    QuietRun,
    Range,
    ScenarioSpec,
    calibrate,
    city,
    loss_target,
    uniform,
)
from simulator.signals import (
    DAY_S,
    HOUR_S,
    MINUTE_S,
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

E = TypeVar("E")


# -------------------------------------------------------------------------------- physics


@dataclass(frozen=True, slots=True)
class HomeParams:
    """A dwelling: its climate, thermal behaviour, habits and sensor hub."""

    climate_mean_c: float = 6.0
    climate_swing_c: float = 5.0  # daily amplitude around the mean (coldest ~05:00)
    weather_sd_c: float = 1.2
    house_tau_h: float = 9.0  # how fast the inside follows the outside with no heating
    setpoint_c: float = 21.0
    night_setback_c: float = 3.0  # 23:00–06:00
    heater_c_per_h: float = 6.0
    internal_gain_c_per_h: float = 0.3
    pipe_exposure: float = 0.3  # 0 = pipe fully inside, 1 = pipe at outdoor temperature
    pipe_tau_h: float = 1.2
    supply_water_c: float = 7.0
    occupants: int = 3  # 0 = nobody home (holiday, empty flat)
    humidity_base_pct: float = 50.0
    mains_powered: bool = True  # False: a battery sensor pack, no mains_v
    battery_start_pct: float = 100.0
    rssi_dbm: float = -68.0


@dataclass(frozen=True, slots=True)
class ColdFront:
    at_s: float  # middle of the temperature drop
    drop_c: float
    hours: float = 3.0  # how long the drop takes


@dataclass(frozen=True, slots=True)
class HeatingFailure:
    at_s: float  # the boiler locks out and stays off


@dataclass(frozen=True, slots=True)
class SlowLeakFault:
    from_s: float
    lpm: float
    wets_sensor_after_l: float  # litres until the water reaches the leak sensor


@dataclass(frozen=True, slots=True)
class BurstPipeFault:
    at_s: float
    lpm: float
    drip_from_s: float  # a weeping joint before it gives way
    drip_lpm: float = 0.15
    wets_sensor_after_l: float = 25.0


@dataclass(frozen=True, slots=True)
class Damp:
    from_s: float  # broken extractor / hidden seepage: moisture builds up
    target_pct: float
    tau_h: float = 4.0


@dataclass(frozen=True, slots=True)
class ElectricalFault:
    from_s: float  # loose connection starts arcing: mains flicker, local heating
    co_from_s: float  # insulation smoulders
    smoke_at_s: float
    fire_at_s: float  # flames: the device burns out a few minutes later


@dataclass(frozen=True, slots=True)
class PowerCutFault:
    at_s: float
    restored_s: float
    flood_at_s: float | None = None  # sump pit overflows: basement leak sensor wet


@dataclass(frozen=True, slots=True)
class BatteryFault:
    from_s: float
    pct_per_h: float  # radio retry storm / failing cell
    dies_at_pct: float = 2.0


@dataclass(frozen=True, slots=True)
class StuckSensor:
    from_s: float
    metrics: tuple[str, ...] = ("temp_c", "pipe_temp_c", "humidity_pct")


HomeEvent = (
    ColdFront
    | HeatingFailure
    | SlowLeakFault
    | BurstPipeFault
    | Damp
    | ElectricalFault
    | PowerCutFault
    | BatteryFault
    | StuckSensor
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -50, 50))))


def _alive(
    ts_ms: np.ndarray,
    metrics: dict[str, np.ndarray],
    state: dict[str, np.ndarray],
    until_s: float | None,
    start_ms: int,
) -> Trace:
    """Cut a trace where the device stopped sending (flat battery, burnt out)."""
    if until_s is None:
        return Trace(ts_ms, metrics, state)
    keep = ts_ms < start_ms + until_s * 1000
    return Trace(ts_ms[keep], {k: v[keep] for k, v in metrics.items()}, {k: v[keep] for k, v in state.items()})


# Household water use: events per hour (3 occupants) by local hour.
_WATER_USE_PER_H = np.array(
    [
        0.05,
        0.03,
        0.03,
        0.03,
        0.05,
        0.3,
        2.2,
        3.5,
        2.2,
        0.9,
        0.6,
        0.7,
        1.2,
        0.8,
        0.5,
        0.5,
        0.6,
        1.0,
        2.0,
        2.6,
        2.4,
        1.8,
        1.0,
        0.3,
    ]
)


def _household_flow(
    rng: np.random.Generator, t: np.ndarray, hours: np.ndarray, dt: float, occupants: int
) -> tuple[np.ndarray, np.ndarray]:
    """Average flow per sample (l/min) from taps, toilets, showers, appliances; + shower share."""
    n = t.size
    flow = np.zeros(n)
    shower = np.zeros(n)
    lam = _WATER_USE_PER_H[hours.astype(int) % 24] * (occupants / 3.0) * dt / HOUR_S
    counts = rng.poisson(lam)
    kinds = rng.random(n)
    offsets = rng.random(n)
    durations = rng.random(n)
    rates = rng.random(n)
    for i in np.flatnonzero(counts):
        for _ in range(int(counts[i])):
            k, h = kinds[i], hours[i]
            showering = k < 0.14 and (5.5 <= h < 9.5 or 18.5 <= h < 23.5)
            if showering:
                minutes, lpm = 5 + 9 * durations[i], 7.5 + 3.5 * rates[i]
            elif k < 0.45:
                minutes, lpm = 0.6 + 0.5 * durations[i], 6 + 3 * rates[i]  # toilet
            elif k < 0.95:
                minutes, lpm = 0.3 + 2.0 * durations[i], 2.5 + 4 * rates[i]  # tap
            else:
                minutes, lpm = 2 + 2 * durations[i], 8 + 4 * rates[i]  # washing machine fill
            start = t[i] + offsets[i] * dt
            end = start + minutes * 60
            j = i
            while j < n and t[j] < end:
                lo, hi = max(start, t[j]), min(end, t[j] + dt)
                if hi > lo:
                    flow[j] += lpm * (hi - lo) / dt
                    if showering:
                        shower[j] += (hi - lo) / dt
                j += 1
    return flow, shower


def simulate_home(
    seed: SeedLike,
    span: Span,
    params: HomeParams = HomeParams(),
    events: Sequence[HomeEvent] = (),
    *,
    interval_ms: int = 60_000,
    noise: float = 1.0,
) -> Trace:
    """A home sensor hub: weather, a first-order house with a thermostat, water, air, power.

    Indoor air follows the outdoor temperature with time constant ``house_tau_h`` and is kept
    at the set point by a heater with hysteresis; the water pipe follows a blend of outdoor and
    indoor air (``pipe_exposure``) with its own lag, is warmed towards the mains water
    temperature whenever water flows, and lingers near 0 °C while the water in it freezes.
    """
    p = params
    rng, ts, n, dt, t, hours = sample_grid(seed, span, interval_ms)

    def first(cls: type[E]) -> list[E]:
        return [e for e in events if isinstance(e, cls)]

    # weather: daily cycle + slow random weather + cold fronts
    outdoor = (
        p.climate_mean_c
        + p.climate_swing_c * np.cos(2 * np.pi * (hours - 15.0) / 24.0)
        + ar1(rng, n, dt, 5 * HOUR_S, p.weather_sd_c)
    )
    for front in first(ColdFront):
        outdoor = outdoor - front.drop_c * _sigmoid((t - front.at_s) / (front.hours * HOUR_S / 5))

    # water: household use + leaks
    flow, shower = _household_flow(rng, t, hours, dt, p.occupants)
    leak = np.zeros(n)
    wet = np.zeros(n, dtype=bool)
    for sl in first(SlowLeakFault):
        rate = np.where(t >= sl.from_s, sl.lpm * (1 + 0.08 * np.sin(t / 1700.0)), 0.0)
        leak += rate
        vol = np.cumsum(rate * dt / 60)
        wet |= vol >= sl.wets_sensor_after_l
    for bp in first(BurstPipeFault):
        drip = (t >= bp.drip_from_s) & (t < bp.at_s)
        burst = t >= bp.at_s
        rate = np.where(drip, bp.drip_lpm, 0.0) + np.where(burst, bp.lpm, 0.0)
        leak += rate
        wet |= burst & (np.cumsum(np.where(burst, bp.lpm * dt / 60, 0.0)) >= bp.wets_sensor_after_l)
    total_flow = flow + leak
    leak_volume = np.cumsum(leak * dt / 60)

    # power
    mains_on = np.ones(n, dtype=bool)
    flood = np.zeros(n, dtype=bool)
    for cut in first(PowerCutFault):
        mains_on &= ~((t >= cut.at_s) & (t < cut.restored_s))
        if cut.flood_at_s is not None:
            flood |= t >= cut.flood_at_s
    wet |= flood

    # heating availability
    heating_ok = mains_on.copy()
    for hf in first(HeatingFailure):
        heating_ok &= t < hf.at_s
    setpoint = np.where((hours >= 23) | (hours < 6), p.setpoint_c - p.night_setback_c, p.setpoint_c)

    # thermal loop (the thermostat makes it sequential)
    tau_in = p.house_tau_h * HOUR_S
    k_pipe = min(1.0, dt / (p.pipe_tau_h * HOUR_S))
    heat = p.heater_c_per_h / HOUR_S
    gain = p.internal_gain_c_per_h / HOUR_S * (1.0 if p.occupants > 0 else 0.3)
    indoor = np.empty(n)
    pipe = np.empty(n)
    heater = np.zeros(n, dtype=bool)
    t_in = float(setpoint[0])
    t_pipe = p.pipe_exposure * outdoor[0] + (1 - p.pipe_exposure) * t_in
    on = False
    flow_list = total_flow.tolist()
    out_list = outdoor.tolist()
    ok_list = heating_ok.tolist()
    sp_list = setpoint.tolist()
    for i in range(n):
        out = out_list[i]
        if ok_list[i]:
            if t_in < sp_list[i] - 0.4:
                on = True
            elif t_in > sp_list[i] + 0.4:
                on = False
        else:
            on = False
        t_in += ((out - t_in) / tau_in + (heat if on else 0.0) + gain) * dt
        target = p.pipe_exposure * out + (1 - p.pipe_exposure) * t_in
        new = t_pipe + (target - t_pipe) * k_pipe
        mix = min(1.0, flow_list[i] / 3.0) * 0.8
        new += (p.supply_water_c - new) * mix
        if new < t_pipe and -0.8 < t_pipe < 0.2:  # latent heat: the water is freezing
            new = t_pipe + (new - t_pipe) * 0.3
        t_pipe = new
        indoor[i] = t_in
        pipe[i] = t_pipe
        heater[i] = on

    # electrical fault: hot spot near the hub, CO from smouldering insulation, smoke, fire
    hotspot = np.zeros(n)
    co = 0.4 + 0.3 * rng.random(n)
    cooking = rng.poisson(
        np.where(
            (hours >= 11) & (hours < 12.5) | (hours >= 17.5) & (hours < 19.5),
            0.6 * dt / HOUR_S * max(p.occupants, 0) / 3.0,
            0.0,
        )
    )
    co += lag(cooking * (3 + 5 * rng.random(n)) * 20, dt, 20 * 60, 0.0)
    dips = rng.random(n)
    dip_depth = rng.random(n)
    smoke = np.zeros(n, dtype=bool)
    alive_until: float | None = None
    mains_v = 221 - 5 * np.exp(-((hours - 20) ** 2) / 4) + ar1(rng, n, dt, 1800, 1.2)
    for fault in first(ElectricalFault):
        pre = np.clip((t - fault.from_s) / max(fault.fire_at_s - fault.from_s, 1.0), 0, 1)
        hotspot += 4.0 * pre**2
        hotspot += np.where(t >= fault.fire_at_s, 25 + (t - fault.fire_at_s) / 6.0, 0.0)
        arcing = (t >= fault.from_s) & (dips < 0.02 + 0.25 * pre**2)
        mains_v = np.where(arcing, mains_v - 12 - 45 * dip_depth, mains_v)
        smoulder = np.clip((t - fault.co_from_s) / max(fault.fire_at_s - fault.co_from_s, 1.0), 0, 1)
        co += np.where(t >= fault.co_from_s, 2 + 180 * smoulder**2.5, 0.0)
        co += np.where(t >= fault.fire_at_s, 300 + (t - fault.fire_at_s) / 2.0, 0.0)
        smoke |= t >= fault.smoke_at_s
        alive_until = fault.fire_at_s + 180.0
    mains_v = np.where(mains_on, mains_v, 0.0)

    # humidity: occupants' moisture, showers, cold rooms, damp
    rh = (
        p.humidity_base_pct
        + ar1(rng, n, dt, 6 * HOUR_S, 3.0)
        + 14 * lag(shower, dt, 40 * 60, 0.0)
        + 1.1 * np.clip(20 - indoor, 0, None)
    )
    for damp in first(Damp):
        rise = 1 - np.exp(-np.clip(t - damp.from_s, 0, None) / (damp.tau_h * HOUR_S))
        rh = rh + (damp.target_pct - p.humidity_base_pct) * rise
    rh = np.clip(rh, 5, 99)

    # battery of the hub / sensor pack
    # %/h: charging on mains and ~11 h on battery for a hub; a sensor pack lasts months
    drain = np.where(mains_on, -30.0, 9.0) if p.mains_powered else np.full(n, 0.03)
    for bf in first(BatteryFault):
        drain = np.where(t >= bf.from_s, bf.pct_per_h, drain)
    battery = np.empty(n)
    level = p.battery_start_pct
    for i, d in enumerate((drain * dt / HOUR_S).tolist()):
        level = min(100.0, max(0.0, level - d))
        battery[i] = level
    rssi = p.rssi_dbm + ar1(rng, n, dt, 2 * HOUR_S, 2.0)
    for bf in first(BatteryFault):
        rssi = np.where(t >= bf.from_s, rssi - 28 * np.clip((t - bf.from_s) / HOUR_S, 0, 1), rssi)
        dead = np.flatnonzero((t >= bf.from_s) & (battery <= bf.dies_at_pct))
        if dead.size:
            alive_until = float(t[dead[0]])

    # sensor noise (always drawn, scaled by ``noise``)
    z = rng.standard_normal((6, n)) * noise
    temp_c = indoor + hotspot + 0.08 * z[0]
    pipe_c = pipe + hotspot * 0.3 + 0.08 * z[1]
    flow_m = np.where(total_flow > 0.02, total_flow * (1 + 0.03 * z[2]), 0.0)
    values: dict[str, np.ndarray] = {
        "temp_c": temp_c,
        "outdoor_temp_c": outdoor + 0.2 * z[3],
        "pipe_temp_c": pipe_c,
        "humidity_pct": rh + 0.8 * z[4],
        "flow_lpm": np.clip(flow_m, 0, None),
        "water_leak": wet.astype(float),
        "smoke": smoke.astype(float),
        "co_ppm": np.clip(co + 0.3 * z[5], 0, None),
        "battery_pct": battery,
        "rssi_dbm": rssi + 1.5 * noise * rng.standard_normal(n),
    }
    if p.mains_powered:
        values["mains_v"] = mains_v + np.where(mains_on, 0.8 * noise * rng.standard_normal(n), 0.0)
    else:
        rng.standard_normal(n)  # keep the draw sequence independent of the hub type
    values = as_reported(values)
    for stuck in first(StuckSensor):
        idx = np.flatnonzero(t >= stuck.from_s)
        if idx.size:
            for name in stuck.metrics:
                if name in values:
                    values[name][idx] = values[name][idx[0]]
    state = {
        "outdoor_c": outdoor,
        "indoor_c": indoor,
        "pipe_c": pipe,
        "heater_on": heater.astype(float),
        "leak_volume_l": leak_volume,
        "humidity_pct": rh,
        "battery_pct": battery,
        "mains_on": mains_on.astype(float),
    }
    return _alive(ts, values, state, alive_until, span.start_ms)


# ------------------------------------------------------------------------------ scenarios


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
    target = loss_target(rng, span, at, 0.6, 0.8)
    target_ms = span.at(target)
    mean, swing = uniform(rng, 0, 4), uniform(rng, 3, 5)
    drop = uniform(rng, 13, 17)
    front_lead_h, front_hours = uniform(rng, 9, 12), uniform(rng, 2, 4)
    setpoint = uniform(rng, 15, 17)
    exposure_wish = uniform(rng, 0.4, 0.55)
    house_tau_h, pipe_tau_h = uniform(rng, 6, 8), uniform(rng, 1.0, 1.6)
    humidity, supply = uniform(rng, 40, 50), uniform(rng, 4, 7)
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
            return tr, tr.first_time(tr.state["pipe_c"] <= -1.0)

        lo = max(front.at_s - 2 * HOUR_S, 60.0)
        try:
            fail_s, trace, loss = calibrate(run, lo, target - 1.5 * HOUR_S, target_ms)
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
    target = loss_target(rng, span, at, 0.6, 0.8)
    start = max(uniform(rng, 0.12, 0.3) * span.duration_s, 10 * MINUTE_S)
    start = min(start, target - 3 * HOUR_S) if target > 4 * HOUR_S else target * 0.3
    leaking_min = (target - start) / MINUTE_S
    lpm = min(max(uniform(rng, 300, 700) / leaking_min, 0.15), 3.0)
    damage_l = lpm * leaking_min
    _, _, _, winter = city(rng)
    params = HomeParams(
        climate_mean_c=winter + uniform(rng, 2, 8),
        occupants=int(rng.integers(1, 5)),
        humidity_base_pct=uniform(rng, 45, 55),
    )
    leak = SlowLeakFault(start, lpm, damage_l * uniform(rng, 0.3, 0.6))
    trace = _home_trace(seed, span, iv, noise, params, leak)
    loss = trace.first_time(trace.state["leak_volume_l"] >= damage_l * 0.999)
    return Outcome(trace, span.at(start), loss if loss is not None else span.at(target))


def _burst_pipe(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A corroded joint weeps for a while, then gives way: tens of litres a minute."""
    rng = rng_for(child(seed, 0))
    target = loss_target(rng, span, at, 0.35, 0.75)
    delay = uniform(rng, 20, 45) * MINUTE_S  # until the water has spread beyond the room
    burst_at = target - delay
    drip_from = max(burst_at - uniform(rng, 10, 40) * MINUTE_S, 60.0)
    params = HomeParams(climate_mean_c=uniform(rng, 2, 12), occupants=int(rng.integers(1, 5)))
    event = BurstPipeFault(burst_at, uniform(rng, 12, 30), drip_from, uniform(rng, 0.08, 0.25), uniform(rng, 15, 40))
    trace = _home_trace(seed, span, iv, noise, params, event)
    return Outcome(trace, span.at(drip_from), span.at(target))


# Mould on indoor surfaces (VTT mould model, Hukka & Viitanen 1999; Sedlbauer's isopleths for
# biodegradable materials): nothing grows below ~75 % RH, growth is full from 80 % (VTT's
# critical RH at room temperature) and speeds up steeply with humidity (the brief's "one to
# two weeks at 80 %, several days at 90 %"), a little with warmth (VTT: rate ~ T^0.68).
MOULD_RH_FROM_PCT = 75.0
MOULD_RH_FULL_PCT = 80.0
MOULD_SPEEDUP_PER_10_PCT = 2.5  # growth rate at 90 % RH over the rate at 80 %


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
    return trace, trace.first_time(mould_dose_days(trace) >= mould_days)


def _mould(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None) -> Outcome:
    """Broken bathroom extractor and seepage: the room stays damp for days until mould takes hold."""
    rng = rng_for(child(seed, 0))
    target = loss_target(rng, span, at, 0.6, 0.85)
    params = HomeParams(
        climate_mean_c=uniform(rng, 6, 12),
        occupants=int(rng.integers(2, 5)),
        humidity_base_pct=uniform(rng, 55, 62),
        setpoint_c=uniform(rng, 18, 20),
    )
    damp_rh, damp_tau_h, mould_days = uniform(rng, 85, 91), uniform(rng, 3, 8), uniform(rng, 6, 8)
    for wetter in (0.0, 3.0, 6.0):  # a wetter room if the span is too short for this one
        damp_pct = min(damp_rh + wetter, 95.0)

        def run(from_s: float, damp_pct: float = damp_pct) -> tuple[Trace, int | None]:
            return _mould_run(seed, span, iv, noise, params, Damp(from_s, damp_pct, damp_tau_h), mould_days)

        try:
            damp_from, trace, loss = calibrate(run, 60.0, max(target - DAY_S, 120.0), span.at(target))
        except RuntimeError:
            continue
        return Outcome(trace, span.at(damp_from), loss)
    raise RuntimeError("mould: no mould inside the span; the span is too short")


def _electrical_fire(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A loose connection in the consumer unit arcs, heats, smoulders, then catches fire."""
    rng = rng_for(child(seed, 0))
    fire = loss_target(rng, span, at, 0.55, 0.8)
    lead = min(uniform(rng, 3, 6) * HOUR_S, fire * 0.8)
    fault = ElectricalFault(
        from_s=fire - lead,
        co_from_s=fire - min(uniform(rng, 60, 120) * MINUTE_S, lead * 0.6),
        smoke_at_s=fire - uniform(rng, 5, 15) * MINUTE_S,
        fire_at_s=fire,
    )
    params = HomeParams(climate_mean_c=uniform(rng, 0, 10), occupants=int(rng.integers(1, 5)))
    trace = _home_trace(seed, span, iv, noise, params, fault)
    return Outcome(trace, span.at(fault.from_s), span.at(fire))


def _power_cut(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """Storm cuts the power; the sump pump stops and the basement floods hours later."""
    rng = rng_for(child(seed, 0))
    flood = loss_target(rng, span, at, 0.45, 0.7)
    cut = max(flood - uniform(rng, 2.5, 5) * HOUR_S, flood * 0.3)
    cut_event = PowerCutFault(cut, flood + uniform(rng, 2, 4) * HOUR_S, flood)
    params = HomeParams(
        climate_mean_c=uniform(rng, 8, 14), occupants=int(rng.integers(2, 5)), humidity_base_pct=uniform(rng, 55, 65)
    )
    trace = _home_trace(seed, span, iv, noise, params, cut_event)
    return Outcome(trace, span.at(cut), span.at(flood))


def _battery_drain(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A battery sensor pack in a holiday flat drains fast (retry storm) and goes silent."""
    rng = rng_for(child(seed, 0))
    dies = loss_target(rng, span, at, 0.6, 0.85)
    onset = uniform(rng, 0.1, 0.3) * span.duration_s
    start_pct = uniform(rng, 35, 60)
    level = start_pct - 0.03 * onset / HOUR_S
    rate = (level - 2.0) / ((dies - onset) / HOUR_S)
    params = HomeParams(
        climate_mean_c=uniform(rng, 3, 10),
        occupants=int(rng.integers(0, 2)),
        mains_powered=False,
        battery_start_pct=start_pct,
        rssi_dbm=uniform(rng, -85, -75),
    )
    trace = _home_trace(seed, span, iv, noise, params, BatteryFault(onset, rate))
    loss = int(trace.ts_ms[-1]) + iv.home_ms  # the first reading that never comes
    return Outcome(trace, span.at(onset), min(loss, span.end_ms))


def _stuck_sensor(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """The hub's temperature/humidity board hangs: the same values forever, nothing watched."""
    rng = rng_for(child(seed, 0))
    stuck = uniform(rng, 0.2, 0.4) * span.duration_s
    if at is not None:
        loss = at * span.duration_s
        stuck = min(stuck, loss * 0.5)
    else:
        loss = min(stuck + uniform(rng, 8, 14) * HOUR_S, 0.95 * span.duration_s)
    params = HomeParams(climate_mean_c=uniform(rng, 0, 8), occupants=int(rng.integers(1, 5)))
    trace = _home_trace(seed, span, iv, noise, params, StuckSensor(stuck))
    return Outcome(trace, span.at(stuck), span.at(loss))


# -------------------------------------------------------------------- replicas (variants)


# Each variant takes its knobs (drawn by ScenarioSpec.simulate_variant from the ranges in
# its spec below) and runs the physics forward: the loss lands where the physics puts it.
# Secondary, non-knob details (the city, the set point …) come from the device's seed.
# A variant returns None when its loss does not happen in the span; the draw is then redone.


def _frozen_pipe_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    mean, swing = uniform(rng, 0, 6), uniform(rng, 3, 5)  # the weather before the cold snap
    front_lead_h, front_hours = uniform(rng, 1, 6), uniform(rng, 2, 4)
    setpoint = uniform(rng, 15, 17)  # an empty home kept cool
    humidity, supply = uniform(rng, 40, 50), uniform(rng, 4, 7)
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
    loss = trace.first_time(trace.state["pipe_c"] <= -1.0)
    if loss is None:
        return None
    return Outcome(trace, span.at(fail), loss, {"pipe_exposure": round(exposure, 3)})


def _slow_leak_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    _, _, _, winter = city(rng)
    params = HomeParams(
        climate_mean_c=winter + uniform(rng, 2, 8),
        occupants=int(k["occupants"]),
        humidity_base_pct=uniform(rng, 45, 55),
    )
    start, damage_l = k["leak_starts_h"] * HOUR_S, k["damage_l"]
    leak = SlowLeakFault(start, k["leak_lpm"], damage_l * k["sensor_wet_share"])
    trace = _home_trace(seed, span, iv, noise, params, leak)
    loss = trace.first_time(trace.state["leak_volume_l"] >= damage_l)
    return None if loss is None else Outcome(trace, span.at(start), loss)


def _burst_pipe_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    params = HomeParams(climate_mean_c=uniform(rng, 2, 12), occupants=int(rng.integers(1, 5)))
    burst_at = k["burst_h"] * HOUR_S
    drip_from = max(burst_at - k["drip_min"] * MINUTE_S, 60.0)
    event = BurstPipeFault(burst_at, k["burst_lpm"], drip_from, k["drip_lpm"], k["sensor_wet_l"])
    trace = _home_trace(seed, span, iv, noise, params, event)
    t, volume = trace.offsets_s(), trace.state["leak_volume_l"]
    released = volume - float(np.interp(burst_at, t, volume))  # litres since it gave way
    loss = trace.first_time((t >= burst_at) & (released >= k["spread_l"]))
    return None if loss is None else Outcome(trace, span.at(drip_from), loss)


def _mould_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    params = HomeParams(
        climate_mean_c=uniform(rng, 6, 12),
        occupants=int(rng.integers(2, 5)),
        humidity_base_pct=k["base_rh_pct"],
        setpoint_c=uniform(rng, 18, 20),
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
    params = HomeParams(climate_mean_c=uniform(rng, 0, 10), occupants=int(rng.integers(1, 5)))
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
    cut_event = PowerCutFault(cut, flood + uniform(rng, 2, 4) * HOUR_S, flood)
    params = HomeParams(
        climate_mean_c=uniform(rng, 8, 14), occupants=int(rng.integers(2, 5)), humidity_base_pct=uniform(rng, 55, 65)
    )
    trace = _home_trace(seed, span, iv, noise, params, cut_event)
    return Outcome(trace, span.at(cut), span.at(flood), {"pit_fill_h": round(fill_h, 3)})


def _battery_drain_variant(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, k: Mapping[str, float]
) -> Outcome | None:
    rng = rng_for(child(seed, 0))
    onset = k["fault_starts_h"] * HOUR_S
    params = HomeParams(
        climate_mean_c=uniform(rng, 3, 10),
        occupants=int(rng.integers(0, 2)),
        mains_powered=False,
        battery_start_pct=k["start_pct"],
        rssi_dbm=uniform(rng, -85, -75),
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
        climate_mean_c=uniform(rng, 0, 8), climate_swing_c=k["climate_swing_c"], occupants=int(rng.integers(1, 5))
    )
    trace = _home_trace(seed, span, iv, noise, params, StuckSensor(stuck))
    return Outcome(trace, span.at(stuck), span.at(stuck + k["unmonitored_h"] * HOUR_S))


# ---------------------------------------------------------------------------- the library


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        "frozen_pipe",
        "home",
        "Empty home in a cold snap, boiler out: pipe freezes",
        ("freeze_risk",),
        "frozen_pipe_burst",
        (5_000, 30_000),
        36 * HOUR_S,
        8 * HOUR_S,
        _frozen_pipe,
        knobs=(
            Knob("outdoor_low_c", -15, -6, "°C", "night low of the cold snap"),
            Knob("heating_fails_h", 2, 16, "h", "boiler locks out, hours after the span start"),
            Knob("house_tau_h", 4, 12, "h", "how fast the empty house cools (poor to good insulation)"),
            Knob("pipe_tau_h", 0.6, 2.5, "h", "pipe time constant (bare to lagged)"),
            Knob(
                "pipe_exposure",
                0.35,
                0.65,
                "",
                "share of outdoor air at the pipe (capped so it stays above 4 °C while heated)",
            ),
        ),
        variant=_frozen_pipe_variant,
    ),
    ScenarioSpec(
        "slow_leak",
        "home",
        "Weeping joint: low flow that never stops",
        ("slow_leak", "water_leak"),
        "water_damage",
        (8_000, 60_000),
        48 * HOUR_S,
        8 * HOUR_S,
        _slow_leak,
        knobs=(
            Knob("leak_lpm", 0.3, 1.5, "l/min", "weeping joint's flow"),
            Knob("damage_l", 250, 700, "l", "litres soaked up when the damage is done (the loss)"),
            Knob("leak_starts_h", 1, 12, "h", "hours after the span start"),
            Knob("sensor_wet_share", 0.2, 1.0, "", "share of those litres before the leak sensor is wet"),
            Knob("occupants", 1, 4, "", "household water use masking the leak", integer=True),
        ),
        variant=_slow_leak_variant,
    ),
    ScenarioSpec(
        "burst_pipe",
        "home",
        "Pipe gives way: high flow, leak sensor wet",
        ("burst_pipe", "water_leak"),
        "water_damage",
        (20_000, 100_000),
        24 * HOUR_S,
        2 * HOUR_S,
        _burst_pipe,
        knobs=(
            Knob("burst_lpm", 10, 35, "l/min", "flow once the joint gives way"),
            Knob("drip_min", 5, 120, "min", "the joint weeps this long before it bursts"),
            Knob("drip_lpm", 0.05, 0.3, "l/min", "weeping flow"),
            Knob("spread_l", 300, 800, "l", "litres after the burst until water leaves the room (the loss)"),
            Knob("sensor_wet_l", 15, 60, "l", "litres after the burst until the leak sensor is wet"),
            Knob("burst_h", 3, 18, "h", "hours after the span start"),
        ),
        variant=_burst_pipe_variant,
    ),
    ScenarioSpec(
        "mould",
        "home",
        "Humidity above 80 % for days: mould",
        ("mould_risk",),
        "mould_damage",
        (5_000, 40_000),
        10 * 24 * HOUR_S,
        6 * 24 * HOUR_S,
        _mould,
        knobs=(
            Knob("damp_rh_pct", 83, 93, "%", "humidity the damp drives the room towards"),
            Knob(
                "mould_days",
                5,
                10,
                "d",
                "days at 80 % RH (20 °C) equivalent until mould damage"
                " (one to two weeks at 80 %, several days at 90 %)",
            ),
            Knob("damp_tau_h", 3, 18, "h", "how fast the damp builds up (hours to most of a day)"),
            Knob("base_rh_pct", 52, 62, "%", "the room's humidity before the damp"),
            Knob("damp_starts_h", 6, 30, "h", "hours after the span start"),
        ),
        variant=_mould_variant,
    ),
    ScenarioSpec(
        "electrical_fire",
        "home",
        "Arcing connection: heat, CO, smoke, fire",
        ("fire_risk", "device_silent"),  # the fire silences the sensor too
        "fire",
        (100_000, 1_000_000),
        24 * HOUR_S,
        8 * HOUR_S,
        _electrical_fire,
        knobs=(
            Knob("arcing_h", 1.5, 8, "h", "arcing and heating before flames"),
            Knob("smoulder_min", 30, 150, "min", "insulation smoulders (CO) this long before the fire"),
            Knob("smoke_min", 3, 20, "min", "smoke alarm this long before the fire"),
            Knob("arcing_starts_h", 1, 12, "h", "hours after the span start"),
        ),
        variant=_electrical_fire_variant,
    ),
    ScenarioSpec(
        "power_cut",
        "home",
        "Power cut stops the sump pump: basement floods",
        ("power_cut",),
        "basement_flood",
        (10_000, 80_000),
        24 * HOUR_S,
        8 * HOUR_S,
        _power_cut,
        knobs=(
            Knob("inflow_lph", 40, 160, "l/h", "storm water into the sump pit"),
            Knob("pit_free_l", 120, 400, "l", "free volume in the pit when the pump stops"),
            Knob("cut_h", 2, 14, "h", "power goes, hours after the span start"),
        ),
        variant=_power_cut_variant,
    ),
    ScenarioSpec(
        "battery_drain",
        "home",
        "Sensor pack drains and goes silent",
        ("battery_drain", "device_silent"),  # its loss: the silent device
        "device_offline",
        (1_000, 10_000),
        48 * HOUR_S,
        12 * HOUR_S,
        _battery_drain,
        knobs=(
            Knob("drain_pct_per_h", 2, 8, "%/h", "retry storm / failing cell"),
            Knob("start_pct", 25, 65, "%", "charge when the span starts"),
            Knob("fault_starts_h", 3, 16, "h", "hours after the span start"),
        ),
        variant=_battery_drain_variant,
    ),
    ScenarioSpec(
        "stuck_sensor",
        "home",
        "Temperature board hangs: flatline",
        ("sensor_stuck",),
        "unmonitored_exposure",
        (2_000, 20_000),
        36 * HOUR_S,
        12 * HOUR_S,
        _stuck_sensor,
        knobs=(
            Knob("unmonitored_h", 6, 18, "h", "flatline until it matters (the loss)"),
            Knob("stuck_h", 4, 16, "h", "board hangs, hours after the span start"),
            Knob("climate_swing_c", 1.5, 6, "°C", "daily outdoor swing (small: a flatline hides better)"),
        ),
        variant=_stuck_sensor_variant,
    ),
)


# ---------------------------------------------------------------------------- quiet homes


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
            climate_mean_c=uniform(rng, *climate),
            climate_swing_c=uniform(rng, 3, 6),
            house_tau_h=uniform(rng, *house_tau_h),
            setpoint_c=uniform(rng, *setpoint_c),
            pipe_exposure=uniform(rng, *exposure),
            occupants=int(rng.integers(occupants[0], occupants[1] + 1)),
            humidity_base_pct=uniform(rng, *humidity_pct),
            mains_powered=mains,
            battery_start_pct=100.0 if mains else uniform(rng, 70, 100),
        )
        return _home_trace(seed, span, iv, noise, params)

    return run


# Quiet device n of this kind (1-based) runs profile (n - 1) mod their count; its own seed
# draws the parameters inside the profile's ranges. Append new profiles at the end: the
# ordinal of an existing one is what the demo fleet's quiet devices are made of.
QUIET_PROFILES: tuple[tuple[str, QuietRun], ...] = (
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
)
QUIET_DURATION_S = 48 * HOUR_S
