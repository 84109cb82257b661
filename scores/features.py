"""What a score is computed from: plain figures measured in stored readings and warnings (pure).

:func:`driver_features` reads a vehicle's readings in time order, once (a generator of a
month of 1 Hz readings is fine): distance, driving time, harsh brakes and accelerations
(events, with a refractory period), time over the limit, time at night on the local clock
(:mod:`core.localtime`) and fatigue episodes (stints of more than 4 h without a 20-minute
break, the rule of the fatigue detector). :func:`property_features` counts a home's or a
site's warnings in the window: open at its end and closed within it, by severity, freeze
forecasts, and the warnings that say a sensor cannot be trusted.

The definitions are constants here; changing one changes the scores, so it bumps
:data:`scores.model.SCORE_VERSION` (a test pins them to it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from core.contract import Reading
from core.localtime import utc_offset_hours, zone
from core.risks import RISKS

# ----------------------------------------------------------------------------- driving

HARSH_BRAKE_G = -0.4
"""A harsh brake: longitudinal acceleration at or below this (the harsh-braking detector's)."""
HARSH_ACCEL_G = 0.35
"""A harsh acceleration: longitudinal acceleration at or above this."""
REFRACTORY_S = 10.0
"""Readings past a harsh threshold within this long of the previous one are the same event."""
SPEEDING_MARGIN = 0.10
"""Over the limit: faster than the posted limit plus this share (speedometers read high; the
insurer counts sustained speeding, not 51 in a 50 zone)."""
LIMIT_STALE_S = 120.0
"""A posted limit from an earlier reading is used for this long."""
MOVING_KMH = 5.0
"""Driving: ignition on and faster than this (ignition on, when the speed is not known)."""
MAX_STEP_S = 30.0
"""Readings further apart than this are a dropout: the time between them is not counted in
the shares (distance is, from the positions at both ends, when known)."""
NIGHT_FROM_H = 22.0
NIGHT_UNTIL_H = 5.0
"""Night on the driver's local clock: from 22:00 to 05:00."""
FATIGUE_STINT_S = 4 * 3600.0
FATIGUE_BREAK_S = 20 * 60.0
"""A fatigue episode: a stint of more than 4 h of driving without a break of 20 min (parked,
stopped, or no readings); one episode per stint, however long it goes on."""
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class DriverFeatures:
    """A vehicle's driving over a window, as measured (totals, not yet rates)."""

    distance_km: float = 0.0
    driving_h: float = 0.0
    """Observed driving time (dropouts left out)."""
    harsh_brakes: int = 0
    harsh_accelerations: int = 0
    speeding_h: float = 0.0
    """Driving time faster than the limit + :data:`SPEEDING_MARGIN` (where the limit is known)."""
    limit_known_h: float = 0.0
    """Driving time with a known posted limit (the denominator of the speeding share)."""
    night_h: float = 0.0
    fatigue_episodes: int = 0
    longest_stint_h: float = 0.0
    readings: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    @property
    def speeding_share(self) -> float:
        return self.speeding_h / self.limit_known_h if self.limit_known_h > 0 else 0.0

    @property
    def night_share(self) -> float:
        return self.night_h / self.driving_h if self.driving_h > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _finite(metrics: Mapping[str, float], name: str) -> float | None:
    value = metrics.get(name)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class _LocalClock:
    """Is an epoch-ms time at night on ``tz``'s clock? (The offset is looked up once per UTC
    hour: zone transitions fall on whole hours.)"""

    __slots__ = ("tz", "_offsets")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[int, float] = {}

    def at_night(self, ts_ms: int) -> bool:
        hour = ts_ms // 3_600_000
        offset = self._offsets.get(hour)
        if offset is None:
            offset = self._offsets[hour] = utc_offset_hours(self.tz, hour * 3_600_000)
        local = (ts_ms / 3_600_000 + offset) % 24.0
        return local >= NIGHT_FROM_H or local < NIGHT_UNTIL_H


def driver_features(readings: Iterable[Reading], tz: ZoneInfo | None = None) -> DriverFeatures:
    """Measure a vehicle's driving in ``readings`` (time order; an earlier or repeated
    timestamp is skipped). ``tz``: the driver's zone for night (default: the deployment's).

    Each interval between two readings at most :data:`MAX_STEP_S` apart is counted with the
    state of the reading that starts it (driving, speeding, night); its distance is the mean
    of the two speeds times its length. Across a longer gap while driving, the distance is the
    great-circle distance between the two positions.

    >>> rs = [Reading(i * 1000, {"ignition": 1.0, "speed_kmh": 72.0, "speed_limit_kmh": 60.0}) for i in range(3601)]
    >>> f = driver_features(rs)
    >>> round(f.distance_km, 1), round(f.driving_h, 2), f.speeding_share
    (72.0, 1.0, 1.0)
    """
    clock = _LocalClock(tz or zone(None))
    distance_m = driving_s = speeding_s = limit_known_s = night_s = 0.0
    brakes = accels = episodes = count = 0
    last_brake = last_accel = -math.inf
    limit: float | None = None
    limit_at = -math.inf
    ignition: float | None = None
    stint_start: float | None = None
    last_driving = -math.inf
    longest = 0.0
    flagged = False
    first_ts: int | None = None
    prev_ts: int | None = None
    prev: tuple[bool, float, bool, bool, float | None, float | None] | None = None
    for reading in readings:
        ts = reading.ts
        if prev_ts is not None and ts <= prev_ts:
            continue
        m = reading.metrics
        count += 1
        first_ts = ts if first_ts is None else first_ts
        t = ts / 1000.0
        ign = _finite(m, "ignition")
        ignition = ign if ign is not None else ignition
        speed = _finite(m, "speed_kmh")
        lim = _finite(m, "speed_limit_kmh")
        if lim is not None and lim > 0:
            limit, limit_at = lim, t
        known_limit = limit if t - limit_at <= LIMIT_STALE_S else None
        on = ignition is not None and ignition > 0.5
        driving = on and (speed is None or speed > MOVING_KMH)
        limit_known = driving and speed is not None and known_limit is not None
        over = limit_known and speed > known_limit * (1 + SPEEDING_MARGIN)  # type: ignore[operator]
        lat, lon = _finite(m, "lat"), _finite(m, "lon")
        # the interval from the previous reading, counted with the previous reading's state
        if prev is not None and prev_ts is not None:
            dt = t - prev_ts / 1000.0
            was_driving, was_speed, was_limit_known, was_over, was_lat, was_lon = prev
            if dt <= MAX_STEP_S:
                if was_driving:
                    driving_s += dt
                    distance_m += (was_speed + (speed or 0.0)) / 2 / 3.6 * dt
                    if was_limit_known:
                        limit_known_s += dt
                        speeding_s += dt if was_over else 0.0
                    night_s += dt if clock.at_night(prev_ts) else 0.0
            elif was_driving and driving and None not in (was_lat, was_lon, lat, lon):
                distance_m += 1000 * _haversine_km(was_lat, was_lon, lat, lon)  # type: ignore[arg-type]
        # harsh events: only with the ignition on (a parked box's knocks are not driving)
        accel = _finite(m, "accel_long_g")
        if on and accel is not None:
            if accel <= HARSH_BRAKE_G:
                brakes += 1 if t - last_brake > REFRACTORY_S else 0
                last_brake = t
            elif accel >= HARSH_ACCEL_G:
                accels += 1 if t - last_accel > REFRACTORY_S else 0
                last_accel = t
        # fatigue: a stint ends with a break of FATIGUE_BREAK_S without driving
        if driving:
            if stint_start is None or t - last_driving >= FATIGUE_BREAK_S:
                stint_start, flagged = t, False
            last_driving = t
            longest = max(longest, t - stint_start)
            if not flagged and t - stint_start > FATIGUE_STINT_S:
                episodes, flagged = episodes + 1, True
        prev = (driving, speed or 0.0, limit_known, over, lat, lon)
        prev_ts = ts
    return DriverFeatures(
        distance_km=distance_m / 1000.0,
        driving_h=driving_s / 3600.0,
        harsh_brakes=brakes,
        harsh_accelerations=accels,
        speeding_h=speeding_s / 3600.0,
        limit_known_h=limit_known_s / 3600.0,
        night_h=night_s / 3600.0,
        fatigue_episodes=episodes,
        longest_stint_h=longest / 3600.0,
        readings=count,
        first_ts=first_ts,
        last_ts=prev_ts,
    )


# ---------------------------------------------------------------------------- property

SENSOR_HEALTH_RISKS: tuple[str, ...] = ("device_silent", "sensor_stuck", "battery_drain")
"""Warnings that say a sensor cannot be trusted (the home is not watched as it should be)."""
FREEZE_RISK = "freeze_risk"
"""A freeze forecast: the pipe-temperature trend crossing 0 °C within hours (exposure)."""
SEVERITY_POINTS: dict[str, int] = {"advisory": 1, "warning": 2, "critical": 4}
"""How much a warning weighs by its severity."""
assert set(SENSOR_HEALTH_RISKS) | {FREEZE_RISK} <= set(RISKS)


@dataclass(frozen=True, slots=True)
class WarningFact:
    """One stored warning, as a score sees it: what, how bad, and from when to when."""

    risk: str
    severity: str
    opened_at_ms: int
    closed_at_ms: int | None = None
    """Resolved or expired at; ``None`` while it is open."""

    def open_at(self, ms: int) -> bool:
        return self.opened_at_ms < ms and (self.closed_at_ms is None or self.closed_at_ms >= ms)


@dataclass(frozen=True, slots=True)
class PropertyFeatures:
    """A home's or a site's warnings over a window ``[start_ms, end_ms)``."""

    open_by_severity: dict[str, int] = field(default_factory=dict)
    """Warnings open at the end of the window (sensor-health ones aside)."""
    past_by_severity: dict[str, int] = field(default_factory=dict)
    """Warnings opened and closed in the window (freeze forecasts and sensor health aside)."""
    freeze_forecasts: int = 0
    """Freeze forecasts opened in the window."""
    sensor_health: dict[str, int] = field(default_factory=dict)
    """Sensor-health warnings opened in the window or open at its end, by risk."""
    start_ms: int = 0
    end_ms: int = 0

    @property
    def open_points(self) -> int:
        return sum(SEVERITY_POINTS.get(s, 2) * n for s, n in self.open_by_severity.items())

    @property
    def past_points(self) -> int:
        return sum(SEVERITY_POINTS.get(s, 2) * n for s, n in self.past_by_severity.items())

    @property
    def sensor_issues(self) -> int:
        return sum(self.sensor_health.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def property_features(warnings: Sequence[WarningFact], start_ms: int, end_ms: int) -> PropertyFeatures:
    """Count a home's or site's ``warnings`` over ``[start_ms, end_ms)``: open at the end and
    closed within the window by severity, freeze forecasts, sensor-health warnings.

    >>> day = 86_400_000
    >>> f = property_features([WarningFact("water_leak", "critical", 5 * day, 5 * day + 600_000),
    ...                        WarningFact("freeze_risk", "warning", 9 * day)], 0, 10 * day)
    >>> f.past_points, f.open_points, f.freeze_forecasts
    (4, 2, 1)
    """
    if end_ms <= start_ms:
        raise ValueError("the window must end after it starts")
    open_now: dict[str, int] = {}
    past: dict[str, int] = {}
    health: dict[str, int] = {}
    freeze = 0
    for w in warnings:
        opened_in = start_ms <= w.opened_at_ms < end_ms
        open_at_end = w.open_at(end_ms)
        if w.risk in SENSOR_HEALTH_RISKS:
            if opened_in or open_at_end:
                health[w.risk] = health.get(w.risk, 0) + 1
            continue
        if w.risk == FREEZE_RISK and opened_in:
            freeze += 1
        if open_at_end:
            open_now[w.severity] = open_now.get(w.severity, 0) + 1
        elif opened_in and w.risk != FREEZE_RISK:
            past[w.severity] = past.get(w.severity, 0) + 1
    return PropertyFeatures(
        open_by_severity=dict(sorted(open_now.items())),
        past_by_severity=dict(sorted(past.items())),
        freeze_forecasts=freeze,
        sensor_health=dict(sorted(health.items())),
        start_ms=start_ms,
        end_ms=end_ms,
    )
