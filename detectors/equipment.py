"""Commercial equipment and cold-chain detectors with physical meaning.

:class:`BearingWear` watches a rotating machine's vibration and bearing temperature;
:class:`ColdChain` watches a refrigerated box. Scores follow the convention of
:mod:`detectors.physical`: 0 is quiet, at least 0.5 is worth a warning, and the severity says
how urgent. Evidence holds the figures a customer warning quotes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.risks import check_risk
from detectors.base import Finding, Severity
from detectors.checks import check, count, finite, in_range, non_negative, positive
from detectors.physical import TwoWayAssess, WorstJudgement, ramp, rnd
from detectors.readings import LastKnown, num
from detectors.trend import Forecast, HeldForecast, Trend, TrendForecaster
from detectors.windows import Ewma, RollingQuantile, Sustained


class BearingWear(TwoWayAssess, TrendForecaster):
    """A failing bearing: vibration in the ISO 10816 alarm zones, a vibration trend heading
    for the critical zone, or a hot bearing.

    Vibration velocity (RMS) of ``warning_mm_s`` (4.5 mm/s, zone C) warns and of
    ``critical_mm_s`` (7.1 mm/s, zone D) is critical. The zone is judged on a sustained level,
    not on one reading, as a vibration analyst sets an alarm with a delay: the level the
    vibration has held for three quarters of the last ``zone_window_s`` (15 min), the lower
    quartile of its readings. A rough but healthy machine running just below a zone limit
    scatters across it with every noisy reading, and a worn bearing's impacts add short
    spikes; vibration in the zone for most of a quarter of an hour is
    neither. A level from fewer than ``min_zone_readings`` readings (a sensor that reports
    less often than that, or the first readings) must clear a limit by ``few_margin`` (10 %,
    the scatter of a reading) to count. Once that held level has entered zone C, the machine
    counts as there until the median of the window falls ``deadband`` (5 %) below the limit:
    the alarm hysteresis that keeps a machine running at the limit from raising a new alarm
    with every swing of its load. While the machine runs (vibration at least ``running_mm_s``) a
    least-squares trend over ``window_s`` forecasts when the
    critical level will be reached; within ``horizon_s`` that warns.

    The loss is the seizure, not zone D. A spreading defect grows the vibration exponentially
    until the bearing seizes at about ``seizure_mm_s`` (24 mm/s, over three times the zone D
    limit; an installer who knows the machine sets its own): the time to loss every judgement
    of a running machine states (trend, zone C, zone D) is when the vibration's growth over the
    last ``growth_window_s`` (12 h: a broken line through its logarithm, steady until the
    defect's onset, :meth:`_seizure_s`) reaches that level. Without a growth that stands out of
    the noise, the trend states when zone D is reached (earlier: a lower bound), zone D "now",
    zone C no time.

    An EWMA baseline (``alpha``) of normal running (below the warning zone) is learnt; after
    ``grace_period`` readings, vibration ``baseline_ratio`` times the baseline is an advisory.
    ``bearing_temp_c`` from ``bearing_warning_c`` warns, from ``bearing_critical_c`` is
    critical. With a growth known, the evidence holds ``growth_pct_per_h``, ``seizure_mm_s``
    and ``predicted_seizure_at_s``. The evidence's ``triggers`` name what fired: ``zone_d``
    (with ``critical_mm_s``), ``zone_c`` (with ``warning_mm_s``), ``trend`` (towards
    ``critical_mm_s``), ``baseline``, ``bearing_hot`` (at or above ``bearing_limit_c``).

    With ``zone_c_rise`` above 1 (the equipment profile's 1.1), entering zone C is judged
    against the machine's own normal too: it counts once the baseline is learnt and the level
    is that much above it — a machine that has always run at the zone's edge is not wearing
    (zone D and the trend need no baseline). A stopped machine
    (vibration below ``running_mm_s``) says nothing about its bearing: its zone judgement is
    held from the last running readings (``held_while_stopped`` in the triggers), so a stop
    neither clears a warning nor, on restart, opens a second one.

    >>> import random
    >>> rng = random.Random(5)
    >>> detector = BearingWear()
    >>> for hour in range(24 * 6):  # 2 mm/s growing 0.4 mm/s a day, ±0.3 mm/s noise
    ...     x = {"ts": 3600.0 * hour, "vibration_mm_s": 2.0 + 0.4 * hour / 24 + rng.uniform(-0.3, 0.3)}
    ...     finding = detector.assess_one(x)
    ...     detector.learn_one(x)
    >>> finding.severity, finding.score >= 0.5, round(finding.time_to_loss_s / 86400, 1)
    ('warning', True, 6.3)
    """

    risk = check_risk("bearing_failure")
    metrics = ("vibration_mm_s", "bearing_temp_c")

    def __init__(
        self,
        warning_mm_s: float = 4.5,
        critical_mm_s: float = 7.1,
        bearing_warning_c: float = 80.0,
        bearing_critical_c: float = 90.0,
        horizon_s: float = 7 * 86400.0,
        window_s: float = 2 * 86400.0,
        min_points: int = 12,
        min_span_s: float = 12 * 3600.0,
        min_t_stat: float = 3.0,
        running_mm_s: float = 0.5,
        alpha: float = 0.01,
        baseline_ratio: float = 2.0,
        grace_period: int = 50,
        stale_after_s: float = 3600.0,
        zone_window_s: float = 900.0,
        deadband: float = 0.05,
        min_zone_readings: int = 5,
        few_margin: float = 0.1,
        zone_c_rise: float = 1.0,
        seizure_mm_s: float = 24.0,
        growth_window_s: float = 12 * 3600.0,
    ) -> None:
        self.warning_mm_s = positive("warning_mm_s", warning_mm_s)
        self.critical_mm_s = positive("critical_mm_s", critical_mm_s)
        check(warning_mm_s < critical_mm_s, "warning_mm_s must be < critical_mm_s")
        self.bearing_warning_c = finite("bearing_warning_c", bearing_warning_c)
        self.bearing_critical_c = finite("bearing_critical_c", bearing_critical_c)
        check(bearing_warning_c < bearing_critical_c, "bearing_warning_c must be < bearing_critical_c")
        self._trend_settings(horizon_s, window_s, min_points, min_span_s, min_t_stat)
        self.running_mm_s = non_negative("running_mm_s", running_mm_s)
        check(running_mm_s < warning_mm_s, "running_mm_s must be < warning_mm_s")
        self.alpha = in_range("alpha", alpha, 1e-6, 1.0)
        self.baseline_ratio = positive("baseline_ratio", baseline_ratio)
        check(baseline_ratio > 1, "baseline_ratio must be > 1")
        self.grace_period = count("grace_period", grace_period, 1)
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        self.zone_window_s = positive("zone_window_s", zone_window_s)
        self._trend = Trend(window_s, max_buckets=96)
        self.deadband = in_range("deadband", deadband, 0.0, 0.5)
        self.min_zone_readings = count("min_zone_readings", min_zone_readings, 1)
        self.few_margin = in_range("few_margin", few_margin, 0.0, 1.0)
        self.zone_c_rise = in_range("zone_c_rise", zone_c_rise, 1.0, 3.0)
        self.seizure_mm_s = positive("seizure_mm_s", seizure_mm_s)
        check(seizure_mm_s > critical_mm_s, "seizure_mm_s must be > critical_mm_s")
        self.growth_window_s = positive("growth_window_s", growth_window_s)
        # ln(vibration) of the running readings, in hour-long buckets, all of them saved (no
        # merging: a restored detector forecasts as the live one): about 0.5 KB of state.
        self._growth = Trend(growth_window_s, max_buckets=12, saved_buckets=13)
        self._hold_score = 0.0  # the zone judgement of the last running readings
        self._hold_severity = "advisory"
        self._level = RollingQuantile(zone_window_s, q=0.25)
        self._in_zone = False  # the level entered zone C and has not left it by the deadband
        self._baseline = Ewma(alpha)
        self._last = LastKnown(stale_after_s)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        """The finding of ``x``; unless ``full``, without the evidence of a quiet one (the
        figures are rounded only for a finding that is not, :meth:`assess_one`'s very own)."""
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        vib = num(x, "vibration_mm_s")
        temp = self._last.get(x, "bearing_temp_c", ts)
        worst = WorstJudgement()
        evidence: dict[str, Any] = {}
        if vib is not None and vib < self.running_mm_s:
            if full:
                evidence["vibration_mm_s"] = rnd(vib)
            if self._hold_score > 0:
                worst.add(self._hold_score, self._hold_severity, reason="held_while_stopped")  # type: ignore[arg-type]
        elif vib is not None:
            held, level, margin = self._zone_level(ts, vib)
            if full:
                evidence["vibration_mm_s"] = rnd(vib)
                evidence.update(vibration_held_mm_s=rnd(held), vibration_level_mm_s=rnd(level))
            zone = self._zone(held, level, margin)
            fc = self._forecast_trend(self._trend, ts, vib, self.critical_mm_s, rising=True)
            seizure = self._seizure_s(ts, vib, evidence) if zone is not None or self._trend_fires(fc) else None
            if zone is not None:
                score, severity, reason = zone
                evidence["critical_mm_s" if reason == "zone_d" else "warning_mm_s"] = (
                    self.critical_mm_s if reason == "zone_d" else self.warning_mm_s
                )
                now = 0.0 if reason == "zone_d" else None
                worst.add(score, severity, now if seizure is None else seizure, reason=reason)
            self._judge_trend(ts, vib, fc, seizure, worst, evidence, full)
        if temp is not None:
            if full:
                evidence["bearing_temp_c"] = rnd(temp, 1)
            if temp >= self.bearing_critical_c:
                evidence["bearing_limit_c"] = self.bearing_critical_c
                worst.add(1.0, "critical", 0.0, reason="bearing_hot")
            elif temp >= self.bearing_warning_c:
                evidence["bearing_limit_c"] = self.bearing_warning_c
                worst.add(0.6, "warning", reason="bearing_hot")
        if not full:
            # quiet: its evidence is not wanted; else the finding with it (assessing is pure)
            return self._bare() if worst.score == 0.0 else self._assess(x, True)
        return self._judged(worst, evidence)

    def _zone_level(self, ts: float, vib: float) -> tuple[float, float, float]:
        """The vibration the zones are judged on over ``zone_window_s``: the level it held
        for three quarters of the window, its median, and the factor a zone limit is raised
        by (``1 + few_margin`` when the window holds fewer than ``min_zone_readings``)."""
        n, (held, level) = self._level.levels(ts, vib, (self._level.q, 0.5))
        few = n < self.min_zone_readings
        return (
            vib if held is None else held,
            vib if level is None else level,
            1.0 + self.few_margin if few else 1.0,
        )

    def _zone(self, held: float, level: float, margin: float) -> tuple[float, Severity, str] | None:
        """The ISO zone judgement of a running machine: (score, severity, trigger) or None."""
        if held >= self.critical_mm_s * margin:
            return 1.0, "critical", "zone_d"
        if self._in_zone_c(held, level, margin):
            return 0.5 + 0.3 * ramp(level, self.warning_mm_s, self.critical_mm_s), "warning", "zone_c"
        return None

    def _above_own_normal(self, level: float) -> bool:
        """Whether ``level`` is ``zone_c_rise`` above the learnt baseline (always, with the rise
        at 1: the ISO limit alone decides)."""
        if self.zone_c_rise == 1.0:
            return True
        baseline = self._baseline
        return baseline.n >= self.grace_period and level >= baseline.mean * self.zone_c_rise

    def _in_zone_c(self, held: float, level: float, margin: float) -> bool:
        if held >= self.warning_mm_s * margin and (self._in_zone or self._above_own_normal(level)):
            return True
        return self._in_zone and level >= self.warning_mm_s * (1 - self.deadband)

    def _trend_fires(self, fc: Forecast | None) -> bool:
        """Whether the trend towards zone D warns: a crossing within ``horizon_s``."""
        eta = None if fc is None or fc.stated_s is None else fc.time_to_s
        return eta is not None and 0 < eta <= self.horizon_s

    def _seizure_s(self, ts: float, vib: float, evidence: dict[str, Any]) -> float | None:
        """Seconds until the bearing seizes, by the exponential growth of its vibration, or
        ``None`` when no growth stands out of the noise.

        A spreading defect grows the vibration exponentially, each hour by a steady factor,
        until the bearing seizes at about ``seizure_mm_s``: a straight line through it
        forecasts the seizure far too late early on, and zone D is not the loss. So the
        logarithm of the vibration over ``growth_window_s`` gets a broken line
        (:meth:`Trend.fit_knee`: steady before the defect's onset, straight after it); its
        slope is the growth rate, counted from ``min_points`` readings after the onset and
        ``min_t_stat`` standard errors above 0."""
        found = self._growth.fit_knee(ts, (ts, math.log(vib)))
        if found is None:
            return None
        fit, _ = found
        if fit.n < self.min_points or fit.slope <= 0 or fit.t_stat < self.min_t_stat:
            return None
        eta = fit.time_to(math.log(self.seizure_mm_s), rising=True) or 0.0
        evidence.update(
            growth_pct_per_h=rnd(100 * math.expm1(fit.slope * 3600), 1),
            seizure_mm_s=self.seizure_mm_s,
            predicted_seizure_at_s=rnd(ts + eta, 0),
        )
        return eta

    def _judge_trend(
        self,
        ts: float,
        vib: float,
        fc: Forecast | None,
        seizure: float | None,
        worst: WorstJudgement,
        evidence: dict[str, Any],
        full: bool = True,
    ) -> None:
        """The trend towards zone D warns; the time it states is the seizure's when the
        growth is known, else zone D's (the earlier: a lower bound). Unless ``full``, the
        figures of a quiet judgement are left out of ``evidence``."""
        if fc is not None:
            if full:
                evidence["trend_mm_s_per_day"] = rnd(fc.fit.slope * 86400, 3)
            if self._trend_fires(fc):
                eta, stated = fc.time_to_s or 0.0, fc.stated_s or 0.0
                evidence["predicted_critical_at_s"] = rnd(ts + stated, 0)
                evidence["critical_mm_s"] = self.critical_mm_s
                score = 0.5 + 0.3 * (1 - eta / self.horizon_s)
                worst.add(score, "warning", stated if seizure is None else seizure, reason="trend")
        baseline = self._baseline
        if baseline.n >= self.grace_period and baseline.mean > 0:
            ratio = vib / baseline.mean
            if full:
                evidence.update(baseline_mm_s=rnd(baseline.mean), ratio_to_baseline=rnd(ratio))
            if ratio >= self.baseline_ratio:
                worst.add(0.5, "advisory", reason="baseline")

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        vib = num(x, "vibration_mm_s")
        if vib is not None and vib >= self.running_mm_s:
            held, level, margin = self._zone_level(ts, vib)
            in_zone = self._in_zone_c(held, level, margin)
            # Too few readings (a gap) may end the alarm, never start one.
            self._in_zone = in_zone if margin == 1.0 else self._in_zone and in_zone
            zone = self._zone(held, level, margin)
            self._hold_score, self._hold_severity = (0.0, "advisory") if zone is None else zone[:2]
            self._level.add(ts, vib)
        if vib is not None and vib >= self.running_mm_s:
            self._trend.add(ts, vib)
            self._growth.add(ts, math.log(vib))
            if vib < self.warning_mm_s:
                self._baseline.update(vib)
        self._last.update(x, ts, ("bearing_temp_c",))


class ColdChain(TwoWayAssess, TrendForecaster):
    """A cold-chain failure: the box temperature above ``max_c`` (8 °C) with the door closed
    for ``min_duration_s`` (critical, the goods are damaged), or heading there within
    ``horizon_s`` while the refrigeration is not doing its job (warning, with the time to
    loss).

    A healthy box cycles: its thermostat stops the compressor at the cut-out temperature, the
    box warms while it is off, and the thermostat starts it again at the cut-in temperature,
    well below ``max_c``. Warming while the compressor is off is therefore normal, however fast
    it goes and however long the off cycle lasts on a hot afternoon; what is not normal is a
    box warming *past its cut-in* with the compressor still off (it tripped or lost power), or
    still warming past it with the compressor running (refrigerant lost: it can no longer keep
    up). The cut-in is ``cut_in_c`` if the installer knows it, else learnt from the
    temperatures at which the compressor was seen to start (door closed, below ``max_c``);
    until the first start is seen it is taken as ``max_c - 2 * margin_c``. A warning needs the
    box ``margin_c`` above the cut-in (``min_off_s`` after the compressor stopped: an
    anti-short-cycle timer may hold it off that long) and a rising trend that reaches ``max_c``
    within ``horizon_s``: the least-squares trend over ``window_s`` of the door-closed readings
    since the compressor last started or stopped.

    Door-open excursions (loading) are expected and do not count. A door or compressor state
    from another reading counts while at most ``stale_after_s`` old; readings more than
    ``max_gap_s`` apart restart the excursion clock. The evidence's ``triggers`` name what
    fired: ``above_limit`` (``temp_c`` above ``max_c`` for ``excursion_for_s``) or ``warming``
    (``trend_c_per_h``, positive: warming, towards ``max_c``). A warning's time to loss is the
    time to ``max_c`` plus ``tolerance_s``, how long the load keeps above it before it spoils
    (the coldchain profile: 90 minutes; 0 by default: the crossing itself).

    >>> detector = ColdChain()
    >>> for minute in range(36):  # warming 0.1 °C a minute; the compressor starts at 5 °C ...
    ...     temp = 3.0 + 0.1 * minute if minute <= 20 else 5.0 + 0.1 * (minute - 20)
    ...     x = {"ts": 60.0 * minute, "temp_c": temp, "compressor_on": float(minute == 20)}
    ...     finding = detector.assess_one(x)  # ... and trips at once: the box keeps warming
    ...     detector.learn_one(x)
    >>> detector.cut_in(), finding.score >= 0.5, round(finding.time_to_loss_s / 60)
    ((5.0, 'learnt'), True, 15)
    """

    risk = check_risk("coldchain_failure")
    metrics = ("temp_c", "door_open", "compressor_on")

    def __init__(
        self,
        max_c: float = 8.0,
        min_duration_s: float = 600.0,
        horizon_s: float = 3600.0,
        window_s: float = 1800.0,
        min_points: int = 5,
        min_span_s: float = 600.0,
        min_t_stat: float = 3.0,
        min_off_s: float = 300.0,
        max_gap_s: float = 600.0,
        stale_after_s: float = 900.0,
        cut_in_c: float | None = None,
        margin_c: float = 1.0,
        tolerance_s: float = 0.0,
    ) -> None:
        self.max_c = finite("max_c", max_c)
        self.tolerance_s = non_negative("tolerance_s", tolerance_s)
        self.min_duration_s = positive("min_duration_s", min_duration_s)
        self._trend_settings(horizon_s, window_s, min_points, min_span_s, min_t_stat)
        self.min_off_s = non_negative("min_off_s", min_off_s)
        self.max_gap_s = positive("max_gap_s", max_gap_s)
        self.stale_after_s = non_negative("stale_after_s", stale_after_s)
        if cut_in_c is not None:
            check(finite("cut_in_c", cut_in_c) < max_c, "cut_in_c must be < max_c")
        self.cut_in_c = cut_in_c
        self.margin_c = positive("margin_c", margin_c)
        self._trend = Trend(window_s, max_buckets=60)
        self._excursion = Sustained(max_gap_s=max_gap_s)
        self._off = Sustained(max_gap_s=max_gap_s)
        self._last = LastKnown(stale_after_s)
        self._cut_in = Ewma(alpha=0.2)  # temperatures at which the compressor started
        self._running: bool | None = None  # the compressor state at the last reading
        self._door_open = False  # the door state at the last reading
        self._held = HeldForecast(window_s)  # a forecast carried over a door opening

    def _state(self, x: Mapping[str, float], ts: float) -> tuple[float | None, bool, float | None]:
        temp = self._last.get(x, "temp_c", ts)
        door_open = (self._last.get(x, "door_open", ts) or 0.0) >= 0.5
        return temp, door_open, self._last.get(x, "compressor_on", ts)

    def cut_in(self) -> tuple[float, str]:
        """The thermostat's cut-in temperature and where it comes from."""
        if self.cut_in_c is not None:
            return self.cut_in_c, "configured"
        if self._cut_in.n:
            return self._cut_in.mean, "learnt"
        return self.max_c - 2 * self.margin_c, "assumed"

    def _forecast(self, ts: float, temp: float | None) -> Forecast | None:
        return self._forecast_trend(self._trend, ts, temp, self.max_c, rising=True)

    def _carry_over(self, ts: float) -> tuple[float, float] | None:
        """What the door opening at ``ts`` carries over: the crossing of a trend that was
        warning (above the cut-in), or, if no trend had formed since the door last opened,
        what that opening carried."""
        before = self._forecast(ts, None)
        warning = before is not None and before.level > self.cut_in()[0] + self.margin_c
        return self._held.carry_over(ts, before, self.horizon_s, warning)

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        """The finding of ``x``; unless ``full``, without the evidence of a quiet one (the
        figures are rounded only for a finding that is not, :meth:`assess_one`'s very own)."""
        ts = num(x, "ts")
        if ts is None:
            return self._quiet()
        temp, door_open, compressor = self._state(x, ts)
        if temp is None:
            return self._quiet()
        above = temp > self.max_c and not door_open
        above_for = self._excursion.duration_if(ts, above) if not door_open else 0.0
        off = compressor is not None and compressor < 0.5
        off_for = self._off.duration_if(ts, off)
        evidence: dict[str, Any] = {}
        if full:
            evidence = {
                "temp_c": rnd(temp, 1),
                "max_c": self.max_c,
                "door_open": door_open,
                "excursion_for_s": rnd(above_for, 0),
                "duration_min": rnd(above_for / 60, 1),
            }
            if compressor is not None:
                evidence.update(compressor_on=not off, compressor_off_for_s=rnd(off_for, 0))
        worst = WorstJudgement()
        if above and above_for >= self.min_duration_s:
            score = 0.8 + 0.2 * ramp(above_for, self.min_duration_s, 3 * self.min_duration_s)
            worst.add(score, "critical", 0.0, reason="above_limit")
        current = num(x, "temp_c")
        cut_in, source = self.cut_in()
        if (
            compressor is not None
            and current is not None
            and current > cut_in + self.margin_c
            and (not off or off_for >= self.min_off_s)
            and self._running == (not off)  # the trend restarts when the compressor switches
        ):
            # The door lets in a lump of heat: a step, not a trend. The trend restarts when it
            # opens; until the new one has formed, the crossing forecast before it stands.
            fc = None if door_open else self._forecast(ts, current)
            stated: float | None = None
            if fc is not None and fc.level > cut_in + self.margin_c:
                if full:
                    evidence["trend_c_per_h"] = rnd(fc.fit.slope * 3600, 2)
                eta, stated = fc.time_to_s, fc.stated_s
            else:
                carried = None
                if fc is None:
                    carried = self._carry_over(ts) if door_open and not self._door_open else self._held.get(ts)
                eta = None if carried is None else max(0.0, carried[0] - ts)
            if eta is not None and eta <= self.horizon_s:
                stated = eta if stated is None else stated
                evidence.update(cut_in_c=rnd(cut_in, 1), cut_in_source=source)
                evidence["predicted_limit_at_s"] = rnd(ts + stated, 0)
                score = 0.5 + 0.3 * (1 - eta / self.horizon_s)
                worst.add(score, "warning", stated + self.tolerance_s, reason="warming")
        if not full:
            # quiet: its evidence is not wanted; else the finding with it (assessing is pure)
            return self._bare() if worst.score == 0.0 else self._assess(x, True)
        return self._judged(worst, evidence)

    def learn_one(self, x: Mapping[str, float]) -> None:
        ts = num(x, "ts")
        if ts is None:
            return
        self._last.update(x, ts, self.metrics)
        temp, door_open, compressor = self._state(x, ts)
        if temp is not None and not door_open:  # an open door neither starts nor ends one
            self._excursion.update(ts, temp > self.max_c)
        if compressor is not None:
            self._off.update(ts, compressor < 0.5)
        current = num(x, "temp_c")
        running = None if compressor is None else compressor >= 0.5
        if running and self._running is False and not door_open and temp is not None and temp <= self.max_c:
            self._cut_in.update(temp)  # the thermostat's cut-in (above max_c: a restart after a failure)
        if running is None or running != self._running:
            self._trend.clear()
            self._held.held = None
        elif door_open and not self._door_open:
            self._held.held = self._carry_over(ts)
            self._trend.clear()
        if running is not None and not door_open and current is not None:
            self._trend.add(ts, current)
            self._held.release(self._trend, ts, self.min_points, self.min_span_s)
        self._running = running
        self._door_open = door_open
