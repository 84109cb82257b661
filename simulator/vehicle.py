"""Vehicles: a telematics box's physics, what goes wrong on the road, and ordinary drivers.

:func:`simulate_vehicle` drives :class:`Trip` s second by second (roads, posted limits,
lights and junctions, the :class:`DriverProfile`) and parks in between; a trip carries the
events a scenario injects (harsh brakes, speeding stretches, fatigue, a crash).
:func:`plan_trips` gives an ordinary driver's trips. The vehicle scenarios (fatigue crash,
risky driving crash, harsh braking trip) and the quiet driver profiles are defined here;
:mod:`simulator.scenarios` assembles the library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from simulator.incidents import Knob, Outcome, QuietRun, ScenarioSpec, city, uniform
from simulator.signals import (
    DEFAULT_INTERVALS,
    HOUR_S,
    MINUTE_S,
    SampleIntervals,
    SeedLike,
    Span,
    Trace,
    ar1,
    as_reported,
    child,
    local_hours,
    rng_for,
)

G = 9.80665  # m/s² per g


# -------------------------------------------------------------------------------- physics


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
    factor = driver.speed_factor + ar1(rng, n, dt, 240.0, driver.speed_sd)
    fatigue = np.zeros(n)
    if trip.fatigue_from_s is not None:
        fatigue = np.clip((t - trip.fatigue_from_s) / (2 * HOUR_S), 0, 1)
        factor = factor - 0.03 * fatigue + ar1(rng, n, dt, 90.0, 0.05) * fatigue
    else:
        ar1(rng, n, dt, 90.0, 0.05)
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
    curvature = ar1(rng, m, dt, 20.0, 1.0) * sd
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
        "rssi_dbm": p.rssi_dbm + ar1(rng, n, 60.0, 900.0, 4.0) + np.where(driving, -4.0, 0.0),
    }
    ts = span.start_ms + np.round(t * 1000).astype(np.int64)
    state = {
        "speed_kmh": speed_kmh,
        "speed_limit_kmh": limit,
        "accel_long_g": accel / G,
        "ignition": ign,
    }
    return Trace(ts, as_reported(values), state)


def plan_trips(rng: np.random.Generator, span: Span, habit: str) -> list[Trip]:
    """An ordinary driver's trips over the span, by local time of day.

    ``habit``: ``commuter`` (morning and evening trips, sometimes an errand), ``night``
    (a ride-hailing night shift with a proper break every ~2.5 h of driving), ``long_haul``
    (daytime legs of at most 3.5 h separated by 30–50 min rests), ``courier`` (a daytime
    multi-drop round of short city trips, a lunch break), ``night_long_haul`` (overnight legs
    of at most 3.5 h separated by 30–50 min rests), ``long_haul_tired`` (daytime legs with only
    a fuel stop between the first two: over 4 h at the wheel without a break, every day).
    """
    trips: list[Trip] = []
    start_h = float(local_hours(np.array([span.start_ms]), span)[0])
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
        elif habit == "long_haul_tired":
            s = midnight + (5.5 + 1.5 * rng.random()) * HOUR_S
            stint = s  # a 5–15 min fuel stop is no break: the first two legs are one stint
            for leg, (lo_h, hi_h) in enumerate(((2.5, 3.5), (1.5, 2.5), (1.5, 2.5))):
                dur = (lo_h + (hi_h - lo_h) * rng.random()) * HOUR_S
                trips.append(Trip(s, dur, "long_haul", fatigue_from_s=stint + 3 * HOUR_S))
                rest = (30 + 20 * rng.random()) * 60 if leg == 1 else (5 + 10 * rng.random()) * 60
                s += dur + rest
                stint = s if leg == 1 else stint
        else:
            raise ValueError(f"unknown driving habit {habit!r}")
    kept: list[Trip] = []
    cursor = 0.0
    for trip in sorted(trips, key=lambda tr: tr.start_s):
        if trip.start_s >= cursor and trip.start_s + 60 < span.duration_s:
            kept.append(trip)
            cursor = trip.start_s + trip.duration_s + 120
    return kept


# ------------------------------------------------------------------------------ scenarios


def _vehicle_params(rng: np.random.Generator, driver: str) -> VehicleParams:
    _, lat, lon, winter = city(rng)
    return VehicleParams(
        driver=DRIVERS[driver],
        home_lat=lat + uniform(rng, -0.05, 0.05),
        home_lon=lon + uniform(rng, -0.05, 0.05),
        ambient_c=winter + uniform(rng, 0, 6),
        battery_rest_v=uniform(rng, 12.4, 12.75),
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
    hit = trace.first_time(harsh | speeding)
    return hit if hit is not None else fallback_ms


def _fatigue_crash(
    seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float, at: float | None
) -> Outcome:
    """A long-haul driver keeps going past four hours without a break and crashes."""
    rng = rng_for(child(seed, 0))
    driving_h = uniform(rng, 4.6, 6.2)
    if at is not None:
        crash = at * span.duration_s
        start = max(crash - driving_h * HOUR_S, 60.0)
    else:
        start = uniform(rng, 0.04, 0.12) * span.duration_s
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
    first = start + uniform(rng, 4, 12) * MINUTE_S
    last = end_event - 3 * MINUTE_S
    harsh = tuple(sorted([first] + [uniform(rng, first, last) for _ in range(brakes - 1)]))
    speeding = []
    for _ in range(stretches):
        a = uniform(rng, start + 8 * MINUTE_S, last - 6 * MINUTE_S)
        duration = uniform(rng, 2, 6) * MINUTE_S
        factor = uniform(rng, 1.25, 1.42) if over_limit is None else over_limit * uniform(rng, 0.97, 1.03)
        speeding.append((a, a + duration, factor))
    decel: tuple[float, ...] = ()
    if brake_g is not None:
        decel = tuple(min(max(brake_g + uniform(rng, -0.05, 0.05), 0.4), 0.85) for _ in harsh)
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
    length = uniform(rng, 60, 100) * MINUTE_S
    into = uniform(rng, 0.7, 0.9) * length
    if at is not None:
        crash = at * span.duration_s
        start = max(crash - into, 60.0)
    else:
        start = uniform(rng, 0.1, 0.3) * span.duration_s
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
    length = uniform(rng, 40, 70) * MINUTE_S
    if at is not None:
        end = at * span.duration_s
        start = max(end - length, 60.0)
        length = end - start
    else:
        start = uniform(rng, 0.1, 0.3) * span.duration_s
    trip = _risky_trip(
        rng, start, length, start + length, int(rng.integers(4, 8)), int(rng.integers(1, 3)), "suburban", crash=False
    )
    trace = _vehicle_trace(seed, span, iv, noise, _vehicle_params(rng, "aggressive"), trip)
    end_ms = _trip_end_ms(trace, iv)
    end_ms = span.at(start + length) if end_ms is None else end_ms
    return Outcome(trace, _first_harsh_or_speeding(trace, span.at(start)), end_ms)


# -------------------------------------------------------------------- replicas (variants)


# Each variant takes its knobs (drawn by ScenarioSpec.simulate_variant from the ranges in
# its spec below) and runs the physics forward: the loss lands where the physics puts it.
# Secondary, non-knob details (the city, the set point …) come from the device's seed.
# A variant returns None when its loss does not happen in the span; the draw is then redone.


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
    length = crash - start + uniform(rng, 10, 40) * MINUTE_S  # where the trip was going
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


# ---------------------------------------------------------------------------- the library


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        "fatigue_crash",
        "vehicle",
        "Long haul past 4 h without a break ends in a crash",
        ("driver_fatigue",),
        "collision",
        (10_000, 200_000),
        12 * HOUR_S,
        8 * HOUR_S,
        _fatigue_crash,
        knobs=(
            Knob("driving_h", 4.4, 7.0, "h", "non-stop driving until the crash"),
            Knob("trip_starts_h", 0.3, 4.0, "h", "departure, hours after the span start (a night run)"),
            Knob("fatigue_from_h", 2.0, 3.5, "h", "weaving and lapses grow from this far into the trip"),
        ),
        variant=_fatigue_crash_variant,
    ),
    ScenarioSpec(
        "risky_driving_crash",
        "vehicle",
        "Harsh braking and speeding, then a crash",
        ("harsh_braking", "speeding"),
        "collision",
        (10_000, 200_000),
        6 * HOUR_S,
        3 * HOUR_S,
        _risky_driving_crash,
        knobs=(
            Knob("crash_after_min", 30, 110, "min", "minutes into the trip when it rear-ends a car"),
            Knob("harsh_brakes", 3, 9, "", "harsh brakes before the crash", integer=True),
            Knob("brake_g", 0.4, 0.8, "g", "deceleration of the harsh brakes (each ±0.05 g)"),
            Knob("speeding_stretches", 1, 5, "", "stretches well over the limit", integer=True),
            Knob("over_limit", 1.2, 1.45, "", "speed / limit while speeding"),
            Knob("trip_starts_h", 0.5, 3.0, "h", "hours after the span start"),
        ),
        variant=_risky_driving_crash_variant,
    ),
    ScenarioSpec(
        "harsh_braking_trip",
        "vehicle",
        "A trip of harsh braking and speeding",
        ("harsh_braking", "speeding"),
        "risky_driving",
        (1_000, 10_000),
        4 * HOUR_S,
        1.5 * HOUR_S,
        _harsh_braking_trip,
        knobs=(
            Knob("trip_min", 25, 90, "min", "trip length (the loss is its end)"),
            Knob("harsh_brakes", 2, 9, "", "harsh brakes on the trip", integer=True),
            Knob("brake_g", 0.4, 0.8, "g", "deceleration of the harsh brakes (each ±0.05 g)"),
            Knob("speeding_stretches", 0, 3, "", "stretches well over the limit", integer=True),
            Knob("over_limit", 1.2, 1.45, "", "speed / limit while speeding"),
            Knob("trip_starts_h", 0.3, 1.4, "h", "hours after the span start"),
        ),
        variant=_harsh_braking_trip_variant,
    ),
)


# -------------------------------------------------------------------------- quiet drivers


def _quiet_vehicle(habit: str, driver: str) -> QuietRun:
    def run(seed: np.random.SeedSequence, span: Span, iv: SampleIntervals, noise: float) -> Trace:
        rng = rng_for(child(seed, 0))
        params = _vehicle_params(rng, driver)
        return _vehicle_trace(seed, span, iv, noise, params, *plan_trips(rng, span, habit))

    return run


# Quiet device n of this kind (1-based) runs profile (n - 1) mod their count; its own seed
# draws the parameters inside the profile's ranges. Append new profiles at the end: the
# ordinal of an existing one is what the demo fleet's quiet devices are made of.
QUIET_PROFILES: tuple[tuple[str, QuietRun], ...] = (
    ("commuter", _quiet_vehicle("commuter", "calm")),
    ("night_driver", _quiet_vehicle("night", "night")),
    ("long_haul_rested", _quiet_vehicle("long_haul", "calm")),
    ("courier", _quiet_vehicle("courier", "calm")),
    ("night_long_haul_rested", _quiet_vehicle("night_long_haul", "night")),
)
QUIET_DURATION_S = 24 * HOUR_S


# ------------------------------------------------------------------ driver types over days


DRIVER_TYPES: dict[str, tuple[str, str]] = {
    # driver type: (habit for plan_trips, driver profile)
    "calm": ("commuter", "calm"),
    "aggressive": ("commuter", "aggressive"),
    "fatigued_long_haul": ("long_haul_tired", "fatigued"),
    "night": ("night", "night"),
    "courier": ("courier", "calm"),
}
"""The drivers :func:`simulate_driver` knows: an ordinary day's habit, and how they drive."""

AGGRESSIVE_HARSH_BRAKES_PER_H = 3.0
"""How often an aggressive driver brakes hard on ordinary trips (Poisson, per hour driven)."""


def _aggressive_trip(rng: np.random.Generator, trip: Trip) -> Trip:
    """An aggressive driver's ordinary trip: harsh brakes (0.42–0.6 g) and, on half the trips,
    a few minutes at 20–35 % over the limit."""
    lo, hi = trip.start_s + 2 * MINUTE_S, trip.start_s + trip.duration_s - 2 * MINUTE_S
    if hi - lo < 6 * MINUTE_S:
        return trip
    n = int(rng.poisson(AGGRESSIVE_HARSH_BRAKES_PER_H * trip.duration_s / HOUR_S))
    brakes = sorted(uniform(rng, lo, hi) for _ in range(n))
    decel = tuple(uniform(rng, 0.42, 0.6) for _ in brakes)
    speeding: tuple[tuple[float, float, float], ...] = ()
    if rng.random() < 0.5:
        a = uniform(rng, lo, hi - 5 * MINUTE_S)
        speeding = ((a, a + uniform(rng, 2, 5) * MINUTE_S, uniform(rng, 1.2, 1.35)),)
    return replace(trip, harsh_brakes_at_s=tuple(brakes), harsh_brake_g=decel, speeding=speeding)


def simulate_driver(
    driver_type: str,
    seed: np.random.SeedSequence,
    span: Span,
    intervals: SampleIntervals = DEFAULT_INTERVALS,
    noise: float = 1.0,
) -> Trace:
    """Ordinary days of one of :data:`DRIVER_TYPES` (for risk scores): the quiet drivers'
    trips and physics — the same seed plans the same trips for the calm and the aggressive
    commuter — with the aggressive driver's harsh brakes and speeding stretches drawn on a
    stream of their own, and the fatigued long-haul driver over 4 h at the wheel every day."""
    if driver_type not in DRIVER_TYPES:
        raise ValueError(f"unknown driver type {driver_type!r}; known: {', '.join(DRIVER_TYPES)}")
    habit, driver = DRIVER_TYPES[driver_type]
    rng = rng_for(child(seed, 0))
    params = _vehicle_params(rng, driver)
    trips = plan_trips(rng, span, habit)
    if driver_type == "aggressive":
        style = rng_for(child(seed, 2))
        trips = [_aggressive_trip(style, trip) for trip in trips]
    return _vehicle_trace(seed, span, intervals, noise, params, *trips)
