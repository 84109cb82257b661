"""Physical models of the insured devices: vehicles, homes, commercial equipment, cold chain.

Each model turns a seed, a time span and its parameters (plus the events a scenario injects:
a cold front, a failed boiler, a leaking pipe, a worn bearing …) into a :class:`Trace`: the
readings a real device would report on a regular grid, and next to them the noise-free
physical state (``Trace.state``) that the scenarios read their ground truth from.

The models are pure and deterministic: the same seed, span and parameters give the same
arrays, and every random draw is made whatever the parameters, so a scenario may re-run a
model while it calibrates one event time without disturbing the rest of the stream.
Times inside a model are seconds since the span start; the local clock is China standard
time (UTC+8), which sets the daily rhythms (weather, water use, commuting, deliveries).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
from scipy.signal import lfilter

from core.contract import METRICS

LOCAL_UTC_OFFSET_H = 8.0
G = 9.80665  # m/s² per g
HOUR_S = 3600.0

SeedLike = int | Sequence[int] | np.random.SeedSequence
E = TypeVar("E")

# Decimals each metric is reported with (what a real sensor's firmware would send).
DECIMALS: dict[str, int] = {
    "speed_kmh": 1,
    "speed_limit_kmh": 0,
    "accel_long_g": 3,
    "accel_lat_g": 3,
    "impact_g": 2,
    "lat": 6,
    "lon": 6,
    "heading_deg": 1,
    "engine_rpm": 0,
    "coolant_temp_c": 1,
    "battery_v": 2,
    "temp_c": 2,
    "outdoor_temp_c": 1,
    "pipe_temp_c": 2,
    "humidity_pct": 1,
    "flow_lpm": 2,
    "co_ppm": 1,
    "mains_v": 1,
    "vibration_mm_s": 2,
    "bearing_temp_c": 1,
    "current_a": 1,
    "pressure_kpa": 1,
    "battery_pct": 0,
    "rssi_dbm": 0,
}


@dataclass(frozen=True, slots=True)
class Span:
    """The simulated time a device covers: ``start_ms`` (epoch ms) plus ``duration_s``."""

    start_ms: int
    duration_s: float

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(round(self.duration_s * 1000))

    def grid(self, interval_ms: int) -> np.ndarray:
        """Sample times (epoch ms, int64) every ``interval_ms`` from the start to the end."""
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        n = int(self.duration_s * 1000 // interval_ms) + 1
        return self.start_ms + np.arange(n, dtype=np.int64) * interval_ms

    def at(self, offset_s: float) -> int:
        """Epoch ms of a moment given in seconds since the start."""
        return self.start_ms + int(round(offset_s * 1000))


@dataclass(frozen=True, slots=True)
class SampleIntervals:
    """How often each kind of device reports (milliseconds)."""

    vehicle_driving_ms: int = 1_000
    vehicle_parked_ms: int = 300_000
    home_ms: int = 60_000
    equipment_ms: int = 60_000
    coldchain_ms: int = 60_000

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 1000:
                raise ValueError(f"{name} must be at least 1000 ms")


DEFAULT_INTERVALS = SampleIntervals()


@dataclass(frozen=True, slots=True)
class Trace:
    """What one device reports over its span, before transport realism is applied.

    ``ts_ms`` are nominal sample times (int64, strictly increasing). ``metrics`` maps catalog
    names to float arrays of the same length, already clipped to the catalog range and
    rounded; NaN means "not in this reading"; booleans are 0.0 / 1.0. ``state`` holds the
    noise-free physical quantities (pipe temperature, leaked litres …) on the same grid.
    """

    ts_ms: np.ndarray
    metrics: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def offsets_s(self) -> np.ndarray:
        return (self.ts_ms - self.ts_ms[0]) / 1000.0 if len(self) else self.ts_ms.astype(float)

    def first_time(self, mask: np.ndarray) -> int | None:
        """Epoch ms of the first sample where ``mask`` holds, or None."""
        hits = np.flatnonzero(mask)
        return int(self.ts_ms[hits[0]]) if hits.size else None


# ------------------------------------------------------------------------------ helpers


def rng_for(seed: SeedLike) -> np.random.Generator:
    return np.random.default_rng(seed)


def local_hours(ts_ms: np.ndarray) -> np.ndarray:
    """Hour of day (0–24, float) on the local clock (UTC+8) for epoch-ms times."""
    return (ts_ms / 3_600_000.0 + LOCAL_UTC_OFFSET_H) % 24.0


def _grid(
    seed: SeedLike, span: Span, interval_ms: int
) -> tuple[np.random.Generator, np.ndarray, int, float, np.ndarray, np.ndarray]:
    """A regularly sampled device's generator and grid: the sample times (epoch ms), their
    count, the step and each sample's offset from the span start (s), its local hour."""
    ts = span.grid(interval_ms)
    return rng_for(seed), ts, ts.size, interval_ms / 1000.0, (ts - span.start_ms) / 1000.0, local_hours(ts)


def _ar1(rng: np.random.Generator, n: int, dt_s: float, tau_s: float, sd: float) -> np.ndarray:
    """A stationary first-order autoregressive process (slow weather, drifting driver)."""
    phi = math.exp(-dt_s / tau_s)
    shocks = rng.standard_normal(n) * sd * math.sqrt(1 - phi * phi)
    y0 = sd * rng.standard_normal()
    out, _ = lfilter([1.0], [1.0, -phi], shocks, zi=[phi * y0])
    return np.asarray(out)


def _lag(x: np.ndarray, dt_s: float, tau_s: float, y0: float) -> np.ndarray:
    """First-order lag of ``x`` with time constant ``tau_s`` (thermal mass, sensor lag)."""
    a = math.exp(-dt_s / tau_s)
    out, _ = lfilter([1.0 - a], [1.0, -a], x, zi=[a * y0])
    return np.asarray(out)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -50, 50))))


def _finish(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Clip to the catalog's plausible range and round like the firmware does."""
    out: dict[str, np.ndarray] = {}
    for name, arr in values.items():
        metric = METRICS[name]  # KeyError here = a model emitting a name outside the contract
        a = np.asarray(arr, dtype=float)
        if metric.kind == "bool":
            out[name] = np.where(np.isnan(a), np.nan, (a > 0.5).astype(float))
            continue
        a = np.clip(a, metric.low, metric.high)
        if name == "heading_deg":
            a = np.where(a >= 359.95, 0.0, a)
        out[name] = np.round(a, DECIMALS.get(name, 3))
    return out


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


# ================================================================================= homes


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
class SlowLeak:
    from_s: float
    lpm: float
    wets_sensor_after_l: float  # litres until the water reaches the leak sensor


@dataclass(frozen=True, slots=True)
class BurstPipe:
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
class PowerCut:
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
    ColdFront | HeatingFailure | SlowLeak | BurstPipe | Damp | ElectricalFault | PowerCut | BatteryFault | StuckSensor
)

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
    rng, ts, n, dt, t, hours = _grid(seed, span, interval_ms)

    def first(cls: type[E]) -> list[E]:
        return [e for e in events if isinstance(e, cls)]

    # weather: daily cycle + slow random weather + cold fronts
    outdoor = (
        p.climate_mean_c
        + p.climate_swing_c * np.cos(2 * np.pi * (hours - 15.0) / 24.0)
        + _ar1(rng, n, dt, 5 * HOUR_S, p.weather_sd_c)
    )
    for front in first(ColdFront):
        outdoor = outdoor - front.drop_c * _sigmoid((t - front.at_s) / (front.hours * HOUR_S / 5))

    # water: household use + leaks
    flow, shower = _household_flow(rng, t, hours, dt, p.occupants)
    leak = np.zeros(n)
    wet = np.zeros(n, dtype=bool)
    for sl in first(SlowLeak):
        rate = np.where(t >= sl.from_s, sl.lpm * (1 + 0.08 * np.sin(t / 1700.0)), 0.0)
        leak += rate
        vol = np.cumsum(rate * dt / 60)
        wet |= vol >= sl.wets_sensor_after_l
    for bp in first(BurstPipe):
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
    for cut in first(PowerCut):
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
    co += _lag(cooking * (3 + 5 * rng.random(n)) * 20, dt, 20 * 60, 0.0)
    dips = rng.random(n)
    dip_depth = rng.random(n)
    smoke = np.zeros(n, dtype=bool)
    alive_until: float | None = None
    mains_v = 221 - 5 * np.exp(-((hours - 20) ** 2) / 4) + _ar1(rng, n, dt, 1800, 1.2)
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
        + _ar1(rng, n, dt, 6 * HOUR_S, 3.0)
        + 14 * _lag(shower, dt, 40 * 60, 0.0)
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
    rssi = p.rssi_dbm + _ar1(rng, n, dt, 2 * HOUR_S, 2.0)
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
    values = _finish(values)
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


# ============================================================================== vehicles


@dataclass(frozen=True, slots=True)
class DriverProfile:
    """How someone drives: cruising speed against the limit, pedal and steering habits."""

    name: str
    speed_factor: float  # cruising speed / posted limit
    speed_sd: float  # slow variation of that factor
    max_speed_factor: float  # never cruises above this (outside scheduled speeding stretches)
    accel_g: float  # strongest normal acceleration
    brake_g: float  # normal braking for lights and limit changes (positive)
    turn_s: float  # how long a 90° turn takes
    cornering: float  # multiplier on lateral acceleration in turns


DRIVERS: dict[str, DriverProfile] = {
    d.name: d
    for d in (
        DriverProfile("calm", 0.93, 0.025, 1.02, 0.16, 0.16, 9.0, 1.0),
        DriverProfile("aggressive", 1.08, 0.05, 1.22, 0.32, 0.30, 5.5, 1.6),
        DriverProfile("fatigued", 0.95, 0.03, 1.04, 0.15, 0.17, 9.0, 1.0),
        DriverProfile("night", 0.96, 0.03, 1.03, 0.18, 0.18, 8.0, 1.1),
    )
}


@dataclass(frozen=True, slots=True)
class Trip:
    """One journey: ignition on at ``start_s``, off ``duration_s`` later (seconds from span start)."""

    start_s: float
    duration_s: float
    route: str = "suburban"  # city | suburban | highway | long_haul
    harsh_brakes_at_s: tuple[float, ...] = ()
    speeding: tuple[tuple[float, float, float], ...] = ()  # (from_s, to_s, factor on the limit)
    crash_at_s: float | None = None
    fatigue_from_s: float | None = None  # weaving and lapses grow from here
    # deceleration (g) of each harsh brake, in time order; empty: the model draws 0.45–0.75 g
    harsh_brake_g: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.harsh_brake_g and len(self.harsh_brake_g) != len(self.harsh_brakes_at_s):
            raise ValueError("harsh_brake_g needs one deceleration per harsh brake")


@dataclass(frozen=True, slots=True)
class VehicleParams:
    driver: DriverProfile = DRIVERS["calm"]
    home_lat: float = 31.2304
    home_lon: float = 121.4737
    battery_rest_v: float = 12.6
    coolant_running_c: float = 90.0
    ambient_c: float = 8.0
    rssi_dbm: float = -78.0


_ROUTES: dict[str, tuple[tuple[str, float], ...]] = {
    # (road type, share of the trip)
    "city": (("urban", 1.0),),
    "suburban": (("urban", 0.2), ("arterial", 0.6), ("urban", 0.2)),
    "highway": (("urban", 0.1), ("arterial", 0.1), ("expressway", 0.7), ("urban", 0.1)),
    "long_haul": (("urban", 0.03), ("expressway", 0.94), ("urban", 0.03)),
}
_LIMITS = {"urban": (40.0, 50.0, 60.0), "arterial": (60.0, 70.0, 80.0), "expressway": (100.0, 110.0, 120.0)}
_LIMIT_SEGMENT_S = {"urban": (120, 400), "arterial": (240, 900), "expressway": (600, 2400)}
_STOPS_PER_MIN = {"urban": 0.7, "arterial": 0.2, "expressway": 0.0}
_CURVATURE_SD = {"urban": 1 / 900, "arterial": 1 / 2500, "expressway": 1 / 6000}


@dataclass(slots=True)
class _TripRun:
    t: np.ndarray  # seconds from span start (1 Hz)
    speed: np.ndarray  # m/s
    limit: np.ndarray  # km/h
    accel: np.ndarray  # m/s²
    lat_acc: np.ndarray  # m/s²
    heading: np.ndarray  # rad
    impact: np.ndarray  # g, NaN where no event
    ended_by_crash: bool


def _drive(rng: np.random.Generator, trip: Trip, driver: DriverProfile, heading0: float, dt: float) -> _TripRun:
    """Second-by-second driving: road, limits, lights, driver, events; then heading."""
    n = max(int(trip.duration_s // dt), 30)
    t = trip.start_s + np.arange(n) * dt
    # road types and posted limits
    road = np.empty(n, dtype=object)
    limit = np.empty(n)
    legs = _ROUTES[trip.route]
    bounds = np.round(np.cumsum([0.0] + [share for _, share in legs]) * n).astype(int)
    bounds[-1] = n
    for (kind, _), a, b in zip(legs, bounds[:-1], bounds[1:], strict=True):
        road[a:b] = kind
        lo, hi = _LIMIT_SEGMENT_S[kind]
        j = a
        while j < b:
            seg = int(lo + (hi - lo) * rng.random())
            limit[j : min(j + seg, b)] = _LIMITS[kind][int(rng.integers(3))]
            j += seg
    # driver's cruising factor, drifting slowly; fatigue makes it wander
    factor = driver.speed_factor + _ar1(rng, n, dt, 240.0, driver.speed_sd)
    fatigue = np.zeros(n)
    if trip.fatigue_from_s is not None:
        fatigue = np.clip((t - trip.fatigue_from_s) / (2 * HOUR_S), 0, 1)
        factor = factor - 0.03 * fatigue + _ar1(rng, n, dt, 90.0, 0.05) * fatigue
    else:
        _ar1(rng, n, dt, 90.0, 0.05)
    factor = np.minimum(factor, driver.max_speed_factor)
    for lo_s, hi_s, f in trip.speeding:
        factor = np.where((t >= lo_s) & (t < hi_s), f + 0.02 * np.sin(t / 23.0), factor)
    # look a few seconds ahead so a lower limit is met, not discovered
    ahead = limit.copy()
    for k in range(1, 8):
        ahead[:-k] = np.minimum(ahead[:-k], limit[k:])
    target = ahead * factor / 3.6
    # traffic lights and junctions: stop, wait, sometimes turn
    stop_rate = np.array([_STOPS_PER_MIN[r] for r in road]) * dt / 60.0
    stop_draw = rng.random(n)
    wait_draw = rng.random(n)
    turn_draw = rng.random(n)
    turn_rate = np.zeros(n)
    k = 60
    while k < n - 60:
        if stop_draw[k] < stop_rate[k] * 2 and wait_draw[k] < 0.5:  # red light
            wait = int(12 + 60 * wait_draw[k] * 2)
            target[k : k + wait] = 0.0
            if turn_draw[k] < 0.35:  # turn at the junction when moving off
                steps = int(driver.turn_s / dt)
                sign = 1.0 if turn_draw[k] < 0.175 else -1.0
                a, b = k + wait, min(k + wait + steps, n)
                turn_rate[a:b] = sign * (math.pi / 2) / driver.turn_s
                target[a:b] = np.minimum(target[a:b], (22.0 if driver.turn_s < 7 else 16.0) / 3.6)
            k += wait + 20
        k += 1
    target[-12:] = 0.0  # park at the end
    # braking envelope: start slowing early enough for stops and lower limits
    comfy = driver.brake_g * G * 0.8
    for k in range(n - 2, -1, -1):
        cap = target[k + 1] + comfy * dt
        if target[k] > cap:
            target[k] = cap
    # longitudinal dynamics with the scheduled harsh brakes and the crash
    harsh = sorted(trip.harsh_brakes_at_s)
    harsh_g = (0.45 + 0.3 * rng.random(max(len(harsh), 1))).tolist()
    if trip.harsh_brake_g:  # given decelerations (the draw above is made all the same)
        order = sorted(range(len(harsh)), key=lambda i: trip.harsh_brakes_at_s[i])
        harsh_g = [trip.harsh_brake_g[i] for i in order]
    harsh_dv = (4.5 + 5.0 * rng.random(max(len(harsh), 1))).tolist()  # m/s shed
    crash_idx = None if trip.crash_at_s is None else int((trip.crash_at_s - trip.start_s) // dt)
    speed = np.zeros(n)
    accel = np.zeros(n)
    impact = np.full(n, np.nan)
    v = 0.0
    h_i = 0
    braking_left = 0.0
    braking_g = 0.0
    tgt = target.tolist()
    tt = t.tolist()
    end = n
    for k in range(n):
        if crash_idx is not None and k >= crash_idx:
            if k == crash_idx:
                impact[k] = 8.0 + 27.0 * rng.random()
                a = -v / dt
                v = 0.0
                speed[k], accel[k] = v, a
                continue
            if k > crash_idx + 120:  # engine off two minutes after the impact
                end = k
                break
            speed[k], accel[k] = 0.0, 0.0
            continue
        if braking_left <= 0 and h_i < len(harsh) and tt[k] >= harsh[h_i] and v > 8.0:
            braking_g, braking_left = harsh_g[h_i], harsh_dv[h_i]
            h_i += 1
        if braking_left > 0:
            a = -braking_g * G
            braking_left += a * dt
        else:
            a_max = driver.accel_g * G * max(0.25, 1 - v / 45.0)
            a = min(max((tgt[k] - v) * 1.0, -driver.brake_g * G * 1.3), a_max)
        nv = max(0.0, v + a * dt)
        accel[k] = (nv - v) / dt
        v = nv
        speed[k] = v
    t, speed, accel, limit, impact, turn_rate, fatigue, road = (
        t[:end],
        speed[:end],
        accel[:end],
        limit[:end],
        impact[:end],
        turn_rate[:end],
        fatigue[:end],
        road[:end],
    )
    m = t.size
    # lateral: road curvature, junction turns, lane weaving and lapses when tired
    sd = np.array([_CURVATURE_SD[r] for r in road])
    curvature = _ar1(rng, m, dt, 20.0, 1.0) * sd
    yaw = speed * curvature + turn_rate * (speed > 0.5)
    lapse_draw = rng.random(m)
    lapse_size = 0.18 + 0.15 * rng.random(m)
    lapse_sign = np.sign(rng.random(m) - 0.5)
    weave = 0.04 * fatigue * np.sin(2 * np.pi * t / 11.0) * (speed > 15)
    lapses = (lapse_draw < fatigue * 10 / HOUR_S * dt) & (speed > 15)
    lat_acc = (speed * yaw * driver.cornering) + weave * G
    lat_acc = lat_acc + np.where(lapses, lapse_sign * lapse_size * G, 0.0)
    heading = heading0 + np.cumsum(yaw) * dt
    return _TripRun(t, speed, limit, accel, lat_acc, heading, impact, crash_idx is not None)


def _gear_rpm(speed_kmh: np.ndarray, accel: np.ndarray, aggressive: bool) -> np.ndarray:
    bands = np.array([0, 18, 32, 50, 68, 88, 1000.0])
    gear = np.clip(np.searchsorted(bands, speed_kmh, side="right") - 1, 0, 5)
    lo, hi = bands[gear], np.minimum(bands[gear + 1], 160)
    frac = np.clip((speed_kmh - lo) / (hi - lo), 0, 1.5)
    rpm = 1300 + 1500 * frac + np.clip(accel, 0, None) * (350 if aggressive else 180)
    rpm = np.where(gear == 5, 1500 + 17 * np.clip(speed_kmh - 88, 0, None), rpm)
    return np.where(speed_kmh < 1.0, 780.0, rpm)


def simulate_vehicle(
    seed: SeedLike,
    span: Span,
    params: VehicleParams = VehicleParams(),
    trips: Sequence[Trip] = (),
    *,
    intervals: SampleIntervals = DEFAULT_INTERVALS,
    noise: float = 1.0,
) -> Trace:
    """A telematics box: 1 Hz while the ignition is on, a heartbeat while parked.

    Speed follows the driver's target against the posted limit (braking envelope for lights
    and lower limits, acceleration limits), lateral acceleration comes from road curvature,
    junction turns and — when tired — weaving and lapses; position integrates speed and heading.
    """
    p = params
    rng = rng_for(seed)
    dt = intervals.vehicle_driving_ms / 1000.0
    parked_dt = intervals.vehicle_parked_ms / 1000.0
    end_s = span.duration_s
    heading0 = 2 * math.pi * rng.random()
    chunks: list[dict[str, np.ndarray]] = []
    cursor = 0.0
    heading = heading0
    crashed = False
    trip_seeds = rng.integers(0, 2**63, size=max(len(trips), 1))
    trip_runs: list[_TripRun] = []
    for idx, trip in enumerate(sorted(trips, key=lambda tr: tr.start_s)):
        if crashed or trip.start_s >= end_s or trip.start_s < cursor:
            continue
        trip = replace(trip, duration_s=min(trip.duration_s, end_s - trip.start_s))
        if trip.duration_s < 60:
            continue
        if trip.start_s > cursor:
            pt = np.arange(cursor, trip.start_s - dt, parked_dt)
            chunks.append({"t": pt, "ign": np.zeros(pt.size)})
        run = _drive(rng_for(int(trip_seeds[idx])), trip, p.driver, heading, dt)
        trip_runs.append(run)
        heading = float(run.heading[-1]) if run.t.size else heading
        chunks.append({"t": run.t, "ign": np.ones(run.t.size), "run": np.array([len(trip_runs) - 1])})
        cursor = float(run.t[-1] + dt) if run.t.size else trip.start_s
        crashed = run.ended_by_crash
    if cursor <= end_s:
        pt = np.arange(cursor, end_s + 1e-9, parked_dt)
        chunks.append({"t": pt, "ign": np.zeros(pt.size)})

    t = np.concatenate([c["t"] for c in chunks]) if chunks else np.zeros(0)
    ign = np.concatenate([c["ign"] for c in chunks]) if chunks else np.zeros(0)
    n = t.size
    speed = np.zeros(n)
    limit = np.full(n, np.nan)
    accel = np.full(n, np.nan)
    lat_acc = np.full(n, np.nan)
    impact = np.full(n, np.nan)
    hdg = np.full(n, heading0)
    pos = 0
    last_heading = heading0
    for c in chunks:
        m = c["t"].size
        if "run" in c:
            run = trip_runs[int(c["run"][0])]
            speed[pos : pos + m] = run.speed
            limit[pos : pos + m] = run.limit
            accel[pos : pos + m] = run.accel
            lat_acc[pos : pos + m] = run.lat_acc
            impact[pos : pos + m] = run.impact
            hdg[pos : pos + m] = run.heading
            last_heading = float(run.heading[-1])
        else:
            hdg[pos : pos + m] = last_heading
        pos += m
    # position: integrate speed along heading (flat-earth is fine over a city)
    step = np.diff(t, append=t[-1] if n else 0.0)
    north = np.cumsum(speed * np.cos(hdg) * step)
    east = np.cumsum(speed * np.sin(hdg) * step)
    north = np.concatenate([[0.0], north[:-1]]) if n else north
    east = np.concatenate([[0.0], east[:-1]]) if n else east
    lat = p.home_lat + north / 111_320.0
    lon = p.home_lon + east / (111_320.0 * math.cos(math.radians(p.home_lat)))
    # engine temperature and battery, per ignition period (closed-form first-order curves)
    coolant = np.empty(n)
    battery = np.empty(n)
    temp = p.ambient_c + 5.0
    last_t = 0.0
    last_ign = 0.0
    since_on = 0.0
    for k, (tk, ik) in enumerate(zip(t.tolist(), ign.tolist(), strict=True)):
        gap = tk - last_t
        if ik > 0:
            if last_ign > 0:
                since_on += gap
                temp = p.coolant_running_c - (p.coolant_running_c - temp) * math.exp(-gap / 420.0)
            else:  # engine just started: it cooled while parked
                since_on = 0.0
                temp = p.ambient_c - (p.ambient_c - temp) * math.exp(-gap / 2400.0)
            battery[k] = 10.6 if since_on < dt * 0.5 else 14.1
        else:
            temp = p.ambient_c - (p.ambient_c - temp) * math.exp(-gap / 2400.0)
            battery[k] = p.battery_rest_v - 0.004 * (tk / HOUR_S)
        coolant[k] = temp
        last_t, last_ign = tk, ik
    speed_kmh = speed * 3.6
    rpm = np.where(ign > 0, _gear_rpm(speed_kmh, np.nan_to_num(accel), p.driver.name == "aggressive"), np.nan)
    z = rng.standard_normal((6, n)) * noise
    driving = ign > 0
    values: dict[str, np.ndarray] = {
        "speed_kmh": np.where(speed_kmh > 0.3, speed_kmh + 0.4 * z[0], 0.0),
        "speed_limit_kmh": limit,
        "accel_long_g": accel / G + 0.012 * z[1],
        "accel_lat_g": lat_acc / G + 0.012 * z[2],
        "impact_g": impact,
        "lat": lat,
        "lon": lon,
        "heading_deg": np.degrees(hdg) % 360.0,
        "ignition": ign,
        "engine_rpm": rpm * (1 + 0.01 * z[3]),
        "coolant_temp_c": coolant + 0.3 * z[4],
        "battery_v": battery + 0.03 * z[5],
        "rssi_dbm": p.rssi_dbm + _ar1(rng, n, 60.0, 900.0, 4.0) + np.where(driving, -4.0, 0.0),
    }
    ts = span.start_ms + np.round(t * 1000).astype(np.int64)
    state = {
        "speed_kmh": speed_kmh,
        "speed_limit_kmh": limit,
        "accel_long_g": accel / G,
        "ignition": ign,
    }
    return Trace(ts, _finish(values), state)


def plan_trips(rng: np.random.Generator, span: Span, habit: str) -> list[Trip]:
    """An ordinary driver's trips over the span, by local time of day.

    ``habit``: ``commuter`` (morning and evening trips, sometimes an errand), ``night``
    (a ride-hailing night shift with a proper break every ~2.5 h of driving), ``long_haul``
    (daytime legs of at most 3.5 h separated by 30–50 min rests), ``courier`` (a daytime
    multi-drop round of short city trips, a lunch break), ``night_long_haul`` (overnight legs
    of at most 3.5 h separated by 30–50 min rests).
    """
    trips: list[Trip] = []
    start_h = float(local_hours(np.array([span.start_ms]))[0])
    day0 = -start_h * HOUR_S  # local midnight of the first day, seconds from span start
    days = int(span.duration_s // 86_400) + 2
    for d in range(-1, days):  # from the day before: a night shift may run over the start
        midnight = day0 + d * 86_400
        if habit == "commuter":
            trips.append(
                Trip(midnight + (7.0 + 1.5 * rng.random()) * HOUR_S, (25 + 30 * rng.random()) * 60, "suburban")
            )
            if rng.random() < 0.4:
                trips.append(
                    Trip(midnight + (12.0 + 1.5 * rng.random()) * HOUR_S, (10 + 15 * rng.random()) * 60, "city")
                )
            trips.append(
                Trip(midnight + (17.0 + 2.0 * rng.random()) * HOUR_S, (30 + 30 * rng.random()) * 60, "suburban")
            )
        elif habit == "night":
            s = midnight + (21.0 + 1.5 * rng.random()) * HOUR_S
            shift_end = s + (4.5 + 1.5 * rng.random()) * HOUR_S
            since_break = 0.0
            while s < shift_end:
                dur = (12 + 28 * rng.random()) * 60
                trips.append(Trip(s, dur, "city"))
                since_break += dur
                if since_break > 2.5 * HOUR_S:
                    s += dur + (30 + 15 * rng.random()) * 60
                    since_break = 0.0
                else:
                    s += dur + (5 + 10 * rng.random()) * 60
        elif habit == "long_haul":
            s = midnight + (6.0 + 2.0 * rng.random()) * HOUR_S
            for _ in range(3):
                dur = (2.5 + 1.0 * rng.random()) * HOUR_S
                trips.append(Trip(s, dur, "long_haul"))
                s += dur + (30 + 20 * rng.random()) * 60
        elif habit == "courier":
            s = midnight + (8.0 + 1.0 * rng.random()) * HOUR_S
            lunch = midnight + (12.0 + 0.5 * rng.random()) * HOUR_S
            shift_end = midnight + (17.0 + 1.5 * rng.random()) * HOUR_S
            lunched = False
            round_start = s
            while s < shift_end:
                dur = (8 + 22 * rng.random()) * 60
                trips.append(Trip(s, dur, "city"))
                s += dur + (5 + 12 * rng.random()) * 60  # a drop: park, deliver
                if not lunched and s >= lunch:
                    s += (45 + 15 * rng.random()) * 60
                    lunched = True
                    round_start = s
                elif s - round_start > 2.5 * HOUR_S:  # back to the depot to reload
                    s += (25 + 15 * rng.random()) * 60
                    round_start = s
        elif habit == "night_long_haul":
            s = midnight + (20.0 + 2.5 * rng.random()) * HOUR_S
            for _ in range(2 + int(rng.random() < 0.5)):
                dur = (2.0 + 1.5 * rng.random()) * HOUR_S
                trips.append(Trip(s, dur, "long_haul"))
                s += dur + (30 + 20 * rng.random()) * 60
        else:
            raise ValueError(f"unknown driving habit {habit!r}")
    kept: list[Trip] = []
    cursor = 0.0
    for trip in sorted(trips, key=lambda tr: tr.start_s):
        if trip.start_s >= cursor and trip.start_s + 60 < span.duration_s:
            kept.append(trip)
            cursor = trip.start_s + trip.duration_s + 120
    return kept


# ============================================================================= equipment


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
class BearingWear:
    onset_s: float
    fail_at_s: float  # seizure: the motor trips and stops for good
    fail_vibration_mm_s: float = 22.0


def simulate_equipment(
    seed: SeedLike,
    span: Span,
    params: EquipmentParams = EquipmentParams(),
    wear: BearingWear | None = None,
    *,
    interval_ms: int = 60_000,
    noise: float = 1.0,
) -> Trace:
    """A pump on its duty cycle; a worn bearing grows vibration exponentially until it seizes."""
    p = params
    rng, ts, n, dt, t, hours = _grid(seed, span, interval_ms)
    load = 0.8 + 0.1 * np.sin(2 * np.pi * (hours - 10) / 24) + _ar1(rng, n, dt, 1800, 0.04)
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
    bearing = _lag(bearing_target, dt, 25 * 60, p.ambient_c + p.bearing_rise_c * 0.8)
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
        "rssi_dbm": p.rssi_dbm + _ar1(rng, n, dt, 3600, 2.0),
    }
    state = {"vibration_mm_s": vib_clean, "running": running.astype(float), "bearing_c": bearing}
    return Trace(ts, _finish(values), state)


# ============================================================================ cold chain


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
    rng, ts, n, dt, t, hours = _grid(seed, span, interval_ms)
    ambient = (
        p.ambient_mean_c + p.ambient_swing_c * np.cos(2 * np.pi * (hours - 15) / 24) + _ar1(rng, n, dt, 4 * HOUR_S, 0.8)
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
        "rssi_dbm": p.rssi_dbm + _ar1(rng, n, dt, 1800, 3.0),
    }
    state = {"box_c": box, "ambient_c": ambient, "capacity": capacity}
    return Trace(ts, _finish(values), state)
