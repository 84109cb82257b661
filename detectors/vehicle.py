"""Vehicle (telematics) detectors with physical meaning: harsh braking, speeding, fatigue, and
the crash itself (a loss, not a risk: it opens a first notice of loss).

Each is a :class:`~detectors.base.RiskDetector` for one risk type. Scores follow the
convention of :mod:`detectors.physical`: 0 is quiet, at least 0.5 is worth a warning, and the
severity says how urgent. Evidence holds the figures a customer warning quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.risks import check_risk
from detectors.base import Finding, Severity
from detectors.checks import check, in_range, non_negative, positive
from detectors.physical import PhysicalDetector, TwoWayAssess, escalate, ramp, rnd
from detectors.readings import DEFAULT_UTC_OFFSET_H, LastKnown, local_hour, num
from detectors.windows import EventLog, Sustained


class HarshBraking(PhysicalDetector):
    """Harsh braking: longitudinal deceleration of at least ``threshold_g``.

    The score rises from 0.5 at ``threshold_g`` to 1 at ``severe_g`` (an emergency stop,
    critical). Brake readings closer than ``min_gap_s`` together are one event; the evidence
    counts events in the last ``window_s`` and in the current trip (a trip ends with ignition
    off or ``trip_gap_s`` without readings). ``speed_kmh`` is quoted when the reading has it.
    A deceleration beyond what tyres can give (``max_brake_g``) or a reading with an impact of
    ``crash_g`` or more is a collision, not braking: the crash notice (``vehicle_crash``)
    reports it, so it is no harsh-braking event.

    >>> detector = HarshBraking()
    >>> detector.score_one({"ts": 0.0, "accel_long_g": -0.2})
    0.0
    >>> finding = detector.assess_one({"ts": 1.0, "accel_long_g": -0.5, "speed_kmh": 62.0})
    >>> finding.severity, round(finding.score, 2), finding.evidence["events_last_hour"]
    ('warning', 0.67, 1)
    """

    risk = check_risk("harsh_braking")
    metrics = ("accel_long_g",)

    def __init__(
        self,
        threshold_g: float = 0.4,
        severe_g: float = 0.7,
        window_s: float = 3600.0,
        min_gap_s: float = 3.0,
        trip_gap_s: float = 1200.0,
        max_brake_g: float = 1.5,
        crash_g: float = 4.0,
    ) -> None:
        self.threshold_g = in_range("threshold_g", threshold_g, 0.05, 3.0)
        self.severe_g = in_range("severe_g", severe_g, 0.05, 3.0)
        check(threshold_g < severe_g, "threshold_g must be < severe_g")
        self.max_brake_g = in_range("max_brake_g", max_brake_g, 0.05, 10.0)
        check(severe_g < max_brake_g, "severe_g must be < max_brake_g")
        self.crash_g = positive("crash_g", crash_g)
        self.window_s = positive("window_s", window_s)
        self.min_gap_s = non_negative("min_gap_s", min_gap_s)
        self.trip_gap_s = positive("trip_gap_s", trip_gap_s)
        self._events = EventLog(window_s, min_gap_s, maxlen=1024)
        self._trip_events = 0
        self._last_ts: float | None = None

    def _trip_events_if(self, ts: float, x: Mapping[str, float], event: bool) -> int:
        parked = num(x, "ignition") == 0.0
        new_trip = self._last_ts is not None and ts - self._last_ts > self.trip_gap_s
        base = 0 if parked or new_trip else self._trip_events
        return base + (1 if event and not parked and self._events.is_new(ts) else 0)

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        ts, accel = num(x, "ts"), num(x, "accel_long_g")
        if ts is None or accel is None:
            return self._quiet()
        decel = -accel
        if decel < self.threshold_g or self._collision(x, decel):
            return self._quiet()
        evidence: dict[str, Any] = {
            "decel_g": rnd(decel, 2),
            "events_last_hour": self._events.count(ts, True),
            "events_this_trip": self._trip_events_if(ts, x, True),
        }
        speed = num(x, "speed_kmh")
        if speed is not None:
            evidence["speed_kmh"] = rnd(speed, 0)
        score = 0.5 + 0.5 * ramp(decel, self.threshold_g, self.severe_g)
        severity: Severity = "critical" if decel >= self.severe_g else "warning"
        return Finding(self.risk, score, severity, None, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts, accel = num(x, "ts"), num(x, "accel_long_g")
        if ts is None or accel is None:
            return
        event = -accel >= self.threshold_g and not self._collision(x, -accel)
        self._trip_events = self._trip_events_if(ts, x, event)
        self._events.record(ts, event)
        self._last_ts = ts if self._last_ts is None else max(self._last_ts, ts)

    def _collision(self, x: Mapping[str, float], decel: float) -> bool:
        impact = num(x, "impact_g")
        return decel > self.max_brake_g or (impact is not None and impact >= self.crash_g)


class Speeding(PhysicalDetector):
    """Speeding: ``speed_kmh`` more than ``margin`` (20 %) over ``speed_limit_kmh`` for
    ``min_duration_s``.

    The limit may come in an earlier reading (used while at most ``stale_after_s`` old); a
    limit of 0 means unknown. Readings more than ``max_gap_s`` apart restart the clock. The
    score rises from 0.5 at ``margin`` to 1 at ``severe_margin`` over (critical).

    >>> detector = Speeding()
    >>> for second in range(0, 41, 2):  # 130 km/h in a 100 zone for 40 s
    ...     x = {"ts": float(second), "speed_kmh": 130.0, "speed_limit_kmh": 100.0}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, round(finding.score, 2), finding.evidence["over_pct"]
    ('warning', 0.67, 30.0)
    """

    risk = check_risk("speeding")
    metrics = ("speed_kmh", "speed_limit_kmh")

    def __init__(
        self,
        margin: float = 0.2,
        min_duration_s: float = 30.0,
        severe_margin: float = 0.5,
        max_gap_s: float = 60.0,
        stale_after_s: float = 120.0,
    ) -> None:
        self.margin = in_range("margin", margin, 0.0, 5.0)
        self.min_duration_s = non_negative("min_duration_s", min_duration_s)
        self.severe_margin = in_range("severe_margin", severe_margin, 0.0, 5.0)
        check(margin < severe_margin, "margin must be < severe_margin")
        self.max_gap_s = positive("max_gap_s", max_gap_s)
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        self._over = Sustained(max_gap_s=max_gap_s)
        self._last = LastKnown(stale_after_s)

    def _over_ratio(self, x: Mapping[str, float], ts: float) -> tuple[float | None, float | None]:
        speed = num(x, "speed_kmh")
        limit = self._last.get(x, "speed_limit_kmh", ts)
        if speed is None or limit is None or limit <= 0:
            return speed, None
        return speed, speed / limit - 1.0

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        speed, over = self._over_ratio(x, ts)
        if speed is None or over is None or over <= self.margin:
            return self._quiet()
        over_for = self._over.duration_if(ts, True)
        evidence: dict[str, Any] = {
            "speed_kmh": rnd(speed, 0),
            "speed_limit_kmh": rnd(speed / (1.0 + over), 0),
            "over_pct": rnd(100 * over, 0),
            "over_for_s": rnd(over_for, 0),
            "duration_min": rnd(over_for / 60, 1),
        }
        if over_for < self.min_duration_s:
            return self._quiet(evidence)
        score = 0.5 + 0.5 * ramp(over, self.margin, self.severe_margin)
        severity: Severity = "critical" if over >= self.severe_margin else "warning"
        return Finding(self.risk, score, severity, None, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        speed, over = self._over_ratio(x, ts)
        if speed is not None:
            self._over.update(ts, over is not None and over > self.margin)
        self._last.update(x, ts, ("speed_limit_kmh",))


class DriverFatigue(TwoWayAssess, PhysicalDetector):
    """Driver fatigue: continuous driving for longer than ``max_drive_s`` (4 h) without a
    break of at least ``break_s`` (20 min).

    Driving means moving faster than ``moving_kmh`` when the speed is known, else ignition on
    (ignition off is never driving); stops shorter than ``break_s`` (traffic, fuel) do not
    count as a break, and neither does a dropout shorter than ``break_s``. The score rises
    from 0 at ``2·advisory_s − max_drive_s`` through 0.5 at ``advisory_s`` (3.5 h, advisory)
    to 1 at ``max_drive_s`` (warning); from ``critical_s`` it is critical. Between
    ``night_start_h`` and ``night_end_h`` local time (``utc_offset_h`` hours ahead of UTC; by
    default the offset of ``core.localtime.DEFAULT_TIMEZONE``, 8 for China) the severity is
    one level higher. The time to loss is the time left until ``max_drive_s``. With
    ``day_advisory`` off (the vehicle profile's setting) the advisory before ``max_drive_s``
    scores 0.5 or more (opens a warning) only for a drive that has been on the road at night
    (a circadian low); by day the ``max_drive_s`` rule decides.

    >>> detector = DriverFatigue()
    >>> for minute in range(0, 271, 5):  # 4.5 h on the road, no break, from 10:00 local
    ...     x = {"ts": 7200.0 + 60.0 * minute, "ignition": 1.0, "speed_kmh": 90.0}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score, finding.evidence["driving_for_s"]
    ('critical', 1.0, 16200.0)
    """

    risk = check_risk("driver_fatigue")
    metrics = ("ignition", "speed_kmh")

    def __init__(
        self,
        max_drive_s: float = 4 * 3600.0,
        break_s: float = 20 * 60.0,
        advisory_s: float = 3.5 * 3600.0,
        critical_s: float = 4.5 * 3600.0,
        moving_kmh: float = 5.0,
        utc_offset_h: float = DEFAULT_UTC_OFFSET_H,
        night_start_h: float = 0.0,
        night_end_h: float = 5.0,
        stale_after_s: float = 300.0,
        day_advisory: bool = True,
    ) -> None:
        self.max_drive_s = positive("max_drive_s", max_drive_s)
        check(isinstance(day_advisory, bool), "day_advisory must be true or false")
        self.day_advisory = day_advisory
        self.break_s = positive("break_s", break_s)
        self.advisory_s = positive("advisory_s", advisory_s)
        self.critical_s = positive("critical_s", critical_s)
        check(advisory_s < max_drive_s < critical_s, "need advisory_s < max_drive_s < critical_s")
        self.moving_kmh = non_negative("moving_kmh", moving_kmh)
        self.utc_offset_h = in_range("utc_offset_h", utc_offset_h, -12.0, 14.0)
        self.night_start_h = in_range("night_start_h", night_start_h, 0.0, 24.0)
        self.night_end_h = in_range("night_end_h", night_end_h, 0.0, 24.0)
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        self._driving = Sustained(max_gap_s=break_s, min_break_s=break_s)
        self._last = LastKnown(stale_after_s)

    def _is_driving(self, x: Mapping[str, float], ts: float) -> bool:
        ignition = self._last.get(x, "ignition", ts)
        if ignition is not None and ignition < 0.5:
            return False
        speed = self._last.get(x, "speed_kmh", ts)
        if speed is not None:
            return speed > self.moving_kmh
        return ignition is not None

    def _is_night(self, ts: float) -> bool:
        hour = local_hour(ts, self.utc_offset_h)
        start, end = self.night_start_h, self.night_end_h
        return start <= hour < end if start <= end else hour >= start or hour < end

    def _drove_at_night(self, since: float, ts: float) -> bool:
        """Whether the drive from ``since`` to ``ts`` was on the road at night (checked every
        quarter of an hour)."""
        steps = int((ts - since) // 900) + 1
        return any(self._is_night(since + 900.0 * k) for k in range(steps))

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        since, driving_for = self._driving.run_if(ts, self._is_driving(x, ts))
        if since is None:
            return self._quiet()
        onset = max(0.0, 2 * self.advisory_s - self.max_drive_s)
        score = ramp(driving_for, onset, self.max_drive_s)
        if score == 0.0 and not full:  # stays 0 whatever follows (night or not)
            return self._bare()
        night = self._is_night(ts)
        night_drive = night or self._drove_at_night(since, ts)
        if not (self.day_advisory or night_drive) and driving_for < self.max_drive_s:
            score = min(score, 0.49)
        severity: Severity = "advisory"
        if driving_for >= self.critical_s:
            severity = "critical"
        elif driving_for >= self.max_drive_s:
            severity = "warning"
        if night and driving_for >= self.advisory_s:
            severity = escalate(severity)
        evidence: dict[str, Any] = {
            "driving_for_s": rnd(driving_for, 0),
            "drive_h": rnd(driving_for / 3600, 2),
            "driving_since_s": rnd(since, 0),
            "max_drive_s": self.max_drive_s,
            "local_hour": rnd(local_hour(ts, self.utc_offset_h), 1),
            "night": night,
            "night_drive": night_drive,
        }
        if score == 0.0:
            return Finding(self.risk, 0.0, "advisory", None, evidence)
        return Finding(self.risk, score, severity, max(0.0, self.max_drive_s - driving_for), evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        self._last.update(x, ts, self.metrics)
        self._driving.update(ts, self._is_driving(x, ts))


class VehicleCrash(PhysicalDetector):
    """A crash: an impact of at least ``threshold_g`` followed within ``stop_within_s`` by the
    vehicle standing (``speed_kmh`` at most ``stopped_kmh``). A loss, not a risk: the finding is
    critical with a time to loss of 0, and it opens the insurer's first notice of loss.

    It fires once per crash, on the first reading that shows the stop (the impact's own reading
    when it already reports the vehicle standing). An impact while the vehicle keeps moving (a
    pothole, a kerb) is forgotten ``stop_within_s`` later; hard braking without an impact is not
    a crash. The evidence: the impact, the speed before it (the impact's reading's speed when it
    is above ``stopped_kmh``, else the last speed reported at most ``stale_after_s`` before),
    the speed at the stop, how long the stop took, and the place (``lat``/``lon``, this reading's
    or the last known) when the device reports one.

    >>> detector = VehicleCrash()
    >>> for x in ({"ts": 0.0, "speed_kmh": 72.0, "lat": 31.23, "lon": 121.47},
    ...           {"ts": 1.0, "impact_g": 18.5, "speed_kmh": 0.0}):
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score, finding.time_to_loss_s
    ('critical', 1.0, 0.0)
    >>> {k: finding.evidence[k] for k in ("impact_g", "speed_before_kmh", "lat")}
    {'impact_g': 18.5, 'speed_before_kmh': 72.0, 'lat': 31.23}
    >>> detector.score_one({"ts": 2.0, "speed_kmh": 0.0})  # the same crash fires once
    0.0
    """

    risk = check_risk("vehicle_crash")
    metrics = ("impact_g", "speed_kmh")

    def __init__(
        self,
        threshold_g: float = 4.0,
        stop_within_s: float = 60.0,
        stopped_kmh: float = 3.0,
        stale_after_s: float = 30.0,
    ) -> None:
        self.threshold_g = in_range("threshold_g", threshold_g, 1.0, 100.0)
        self.stop_within_s = non_negative("stop_within_s", stop_within_s)
        self.stopped_kmh = in_range("stopped_kmh", stopped_kmh, 0.0, 30.0)
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        # the impact not yet followed by a stop: when, how hard, the speed before (None: unknown)
        self._impact_ts: float | None = None
        self._impact_g = 0.0
        self._speed_before: float | None = None
        self._last = LastKnown(stale_after_s)

    def _impact_if(self, ts: float, x: Mapping[str, float]) -> tuple[float, float, float | None] | None:
        """The impact pending as of reading ``x`` (its own impact included): (time, g, speed
        before), or ``None`` when none was felt within ``stop_within_s``."""
        pending = self._impact_ts is not None and ts - self._impact_ts <= self.stop_within_s
        g = num(x, "impact_g")
        if g is not None and g >= self.threshold_g:
            if pending:  # a second blow of the same crash: the hardest counts, timed from the last
                return ts, max(g, self._impact_g), self._speed_before
            speed = num(x, "speed_kmh")
            before = speed if speed is not None and speed > self.stopped_kmh else self._last.get({}, "speed_kmh", ts)
            return ts, g, before
        if pending and self._impact_ts is not None:
            return self._impact_ts, self._impact_g, self._speed_before
        return None

    def _standing(self, x: Mapping[str, float]) -> bool:
        speed = num(x, "speed_kmh")
        return speed is not None and speed <= self.stopped_kmh

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        impact = self._impact_if(ts, x)
        if impact is None or not self._standing(x):
            return self._quiet()
        impact_ts, g, before = impact
        evidence: dict[str, Any] = {
            "impact_g": rnd(g, 1),
            "speed_kmh": rnd(num(x, "speed_kmh") or 0.0, 0),
            "stopped_after_s": rnd(max(0.0, ts - impact_ts), 0),
            "impact_at_s": rnd(impact_ts, 3),
        }
        if before is not None:
            evidence["speed_before_kmh"] = rnd(before, 0)
        lat, lon = self._last.get(x, "lat", ts), self._last.get(x, "lon", ts)
        if lat is not None and lon is not None:
            evidence["lat"], evidence["lon"] = rnd(lat, 6), rnd(lon, 6)
        return Finding(self.risk, 1.0, "critical", 0.0, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        impact = self._impact_if(ts, x)
        if impact is None or self._standing(x):  # nothing pending, or this crash is reported now
            self._impact_ts, self._impact_g, self._speed_before = None, 0.0, None
        else:
            self._impact_ts, self._impact_g, self._speed_before = impact
        self._last.update(x, ts, ("speed_kmh", "lat", "lon"))
