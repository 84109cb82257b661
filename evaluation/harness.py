"""How early do we warn? Run labelled scenarios through the worker's own code and measure.

Every device of a simulated fleet is fed, reading by reading, to a
:class:`streams.decisions.DeviceMonitor` — the very class the Faust worker keeps per device —
and every warning it opens is matched against the simulator's ground truth:

- an incident is **warned** when a warning of one of its risk types opens on its device at or
  before the moment of loss (recall = warned / incidents);
- **lead time** = moment of loss − first such warning; **detection delay** = first warning −
  start of the precursor;
- only an incident's first warning is a hit: **every other warning is false**, counted per
  device-day and by cause (:func:`evaluation.matching.false_warnings`: a second risk type on a
  device with an incident, the same risk warned of again, a warning on a quiet device), and
  how many of them report a loss under way (a leak, burst or smoke happening now);
- **forecast error**: every message of an incident's warning that states a time of loss ahead
  (an open or an escalation before the loss, ``predicted_loss_at_ms`` at least a minute away)
  is scored |predicted − actual loss| / (actual loss − message time), per risk type and
  overall (median, p90);
- **loss avoidable**: an incident warned at least ``min_lead_s`` before the loss (time for the
  customer to act) counts its scenario's expected cost as avoidable;
- **people in the loop** (:mod:`evaluation.people`): each warning followed with the fleet's
  simulated customers and staff — quiet hours, reminders, staff escalation — and the loss
  avoidable counting only the incidents a person acted on at least ``min_lead_s`` ahead;
- **outcomes fed back** (:func:`feedback_round`): the false alarms the simulated people
  record (:func:`evaluation.people.reported_false_alarms`) become each device's
  ``false_alarms`` configuration, as ``core.db.record_outcome`` keeps it, and those devices run
  again with it (:mod:`detectors.feedback`): their false warnings, incidents warned and lead
  times before and after;
- **crash notices**: a ``vehicle_crash`` warning reports a loss, it does not warn of one, so it
  is left out of all the above (recall, lead times, false warnings, people in the loop) and
  counted apart: how many opened, and how many answer a crash incident, opened within a few
  minutes of its loss (:func:`evaluation.matching.match_loss_notice`).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.contract import Reading, WarningEvent
from core.risks import LOSS_NOW_S, RISKS, preventive
from detectors.feedback import FALSE_ALARMS
from evaluation.learned import learned_group
from evaluation.matching import (
    FALSE_CAUSES,
    LOSS_NOTICE_SLACK_S,
    NOTICE_LOSS_TYPES,
    false_warnings,
    loss_notices,
    match,
    match_loss_notice,
)
from evaluation.people import (
    DEFAULT_PEOPLE,
    PeopleReport,
    PeopleSettings,
    people_in_the_loop,
    reported_false_alarms,
)
from streams.decisions import DeviceMonitor, WarningPolicy, detectors_for

DEFAULT_MIN_LEAD_S = 30 * 60.0


@dataclass(frozen=True, slots=True)
class IncidentResult:
    device: str
    scenario: str
    loss_type: str
    risks: tuple[str, ...]
    precursor_start_ms: int
    loss_at_ms: int
    expected_cost_cny: float
    first_warning_ms: int | None
    first_warning_risk: str | None
    warned_after_loss: bool

    @property
    def warned(self) -> bool:
        return self.first_warning_ms is not None

    @property
    def lead_time_s(self) -> float | None:
        return None if self.first_warning_ms is None else (self.loss_at_ms - self.first_warning_ms) / 1000

    @property
    def detection_delay_s(self) -> float | None:
        return None if self.first_warning_ms is None else (self.first_warning_ms - self.precursor_start_ms) / 1000


@dataclass(frozen=True, slots=True)
class LossNoticeResult:
    """A loss notice (a crash notice) the monitor opened, and the incident it reports, if any."""

    device: str
    risk: str
    at_ms: int
    scenario: str | None
    """The scenario of the incident it reports (``None``: it reports none: a false crash notice)."""
    after_loss_s: float | None
    """Notice − the incident's moment of loss."""


@dataclass(frozen=True, slots=True)
class ScenarioSummary:
    scenario: str
    incidents: int
    warned: int
    recall: float
    lead_time_median_h: float | None
    lead_time_p10_h: float | None
    lead_time_p90_h: float | None
    detection_delay_median_h: float | None
    loss_avoidable_cny: float


@dataclass(frozen=True, slots=True)
class ForecastError:
    """How far the times of loss that warnings stated were from the real one, relative to the
    time that was really left: |predicted − actual| / (actual − when it was said)."""

    risk: str
    messages: int
    median: float | None
    p90: float | None


@dataclass(frozen=True, slots=True)
class FeedbackEffect:
    """One round of outcomes fed back: the devices whose people recorded false alarms, run again
    with them in their configuration."""

    reported: dict[str, int]
    """``device/risk`` → false alarms recorded."""
    devices: int
    false_before: int
    false_after: int
    incidents: int
    warned_before: int
    warned_after: int
    lead_median_before_h: float | None
    lead_median_after_h: float | None


@dataclass
class EvalReport:
    incidents: list[IncidentResult]
    scenarios: list[ScenarioSummary]
    overall: ScenarioSummary
    false_warnings: int
    false_warnings_by_risk: dict[str, int]
    device_days: float
    warnings_total: int
    readings: int
    devices: int
    seconds: float
    min_lead_s: float
    false_warning_examples: list[dict[str, Any]] = field(default_factory=list)
    people: PeopleReport | None = None
    """People in the loop (``evaluation.people``): who acted on the warnings, and when."""
    crash_notices: list[LossNoticeResult] = field(default_factory=list)
    """The loss notices opened (reports of a crash, not warnings: in none of the figures above)."""
    crash_incidents: int = 0
    """Incidents of a loss type a loss notice reports (crashes)."""
    false_warnings_by_cause: dict[str, int] = field(default_factory=dict)
    """False warnings by cause (``evaluation.matching.FALSE_CAUSES``)."""
    false_loss_under_way: int = 0
    """False warnings that report a loss under way (a leak, burst or smoke happening now)."""
    forecast_errors: list[ForecastError] = field(default_factory=list)
    """Per risk type, then ``overall`` (of :data:`FORECAST_RISKS`)."""
    feedback: FeedbackEffect | None = None
    """Outcomes fed back (with people in the loop only)."""
    learned: Any = None
    """The learned detectors' faults (``evaluation.learned``), beside the standard library only."""

    @property
    def crash_notices_on_a_crash(self) -> int:
        """Crash notices opened within ``LOSS_NOTICE_SLACK_S`` of a crash incident's loss."""
        return sum(1 for n in self.crash_notices if n.scenario is not None)

    @property
    def crashes_noticed(self) -> int:
        """Crash incidents with a crash notice."""
        return len({(n.device, n.scenario) for n in self.crash_notices if n.scenario is not None})

    @property
    def false_warnings_per_device_day(self) -> float:
        return self.false_warnings / self.device_days if self.device_days else 0.0

    @property
    def loss_avoidable_cny(self) -> float:
        return self.overall.loss_avoidable_cny

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": asdict(self.overall),
            "scenarios": [asdict(s) for s in self.scenarios],
            "incidents": [
                {**asdict(i), "lead_time_s": i.lead_time_s, "detection_delay_s": i.detection_delay_s}
                for i in self.incidents
            ],
            "false_warnings": self.false_warnings,
            "false_warnings_by_risk": self.false_warnings_by_risk,
            "false_warnings_by_cause": self.false_warnings_by_cause,
            "false_loss_under_way": self.false_loss_under_way,
            "forecast_error": [asdict(f) for f in self.forecast_errors],
            "false_warnings_per_device_day": self.false_warnings_per_device_day,
            "false_warning_examples": self.false_warning_examples,
            "device_days": self.device_days,
            "warnings_total": self.warnings_total,
            "readings": self.readings,
            "devices": self.devices,
            "seconds": self.seconds,
            "min_lead_s": self.min_lead_s,
            "loss_avoidable_cny": self.loss_avoidable_cny,
            "people": (
                {**self.people.to_json(), "feedback": asdict(self.feedback) if self.feedback else None}
                if self.people
                else None
            ),
            "crash_notices": {
                "opened": len(self.crash_notices),
                "on_a_crash": self.crash_notices_on_a_crash,
                "crash_incidents": self.crash_incidents,
                "crashes_noticed": self.crashes_noticed,
                "slack_s": LOSS_NOTICE_SLACK_S,
                "notices": [asdict(n) for n in self.crash_notices],
            },
            "learned": self.learned.to_json() if self.learned is not None else None,
        }


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def monitor_device(
    device: Any,
    readings: Iterable[Any],
    policy: WarningPolicy | None = None,
    until_ms: int | None = None,
    overrides: Any = None,
    after: Callable[[DeviceMonitor, int], list[WarningEvent]] | None = None,
) -> tuple[list[WarningEvent], int]:
    """Feed one simulated device's readings to a fresh DeviceMonitor; return its warning events.

    The simulated clock also runs between readings, as the worker's timer does: each reading
    arrives at its own time (:meth:`DeviceMonitor.heard`), and the monitor is asked for
    silence at every moment it names before the next one arrives, and up to ``until_ms`` (the
    end of the device's span) after the last. ``overrides``: the device's configured detector
    parameters (as the worker loads them), else its profile's. ``after(monitor, i)``, once the
    ``i``-th reading (from 0) is observed: the events of findings made outside the device's own
    detectors then (the fleet model's, which the worker decides after the batch's readings)."""
    detectors = detectors_for(device.kind, overrides, device.device) if overrides else None
    monitor = DeviceMonitor(device.tenant, device.device, device.kind, detectors, policy=policy)
    events: list[WarningEvent] = []
    n = 0
    for sim in readings:
        ts = int(sim.ts_ms)
        events.extend(_silence_until(monitor, ts))
        events.extend(monitor.heard(ts))
        metrics = {k: float(v) for k, v in sim.metrics.items()}
        events.extend(monitor.observe(Reading(ts=ts, metrics=metrics, seq=sim.seq)))
        if after is not None:
            events.extend(after(monitor, n))
        n += 1
    if until_ms is not None:
        events.extend(_silence_until(monitor, until_ms + 1))
    return events, n


def _silence_until(monitor: DeviceMonitor, now_ms: int) -> list[WarningEvent]:
    """The monitor's silence decisions due before ``now_ms``, each taken at its due time."""
    events: list[WarningEvent] = []
    due = monitor.silence_due_ms()
    while due is not None and due < now_ms:
        events.extend(monitor.tick(due))
        following = monitor.silence_due_ms()
        if following is not None and following <= due:
            break  # nothing more to decide before the next arrival
        due = following
    return events


def evaluate(
    fleet: Any,
    policy: WarningPolicy | None = None,
    min_lead_s: float = DEFAULT_MIN_LEAD_S,
    progress: Callable[[str], None] | None = None,
    people: PeopleSettings | None = DEFAULT_PEOPLE,
    fleet_model: bool = True,
) -> EvalReport:
    """Run every device of ``fleet`` through the worker's decisions and score the warnings;
    with ``people`` (None: left out), follow each warning with the fleet's simulated people;
    beside the standard library, the learned group, with a fleet model trained for it unless
    ``fleet_model`` is false (``evaluation.learned``)."""
    t0 = time.perf_counter()
    opened: dict[str, list[WarningEvent]] = {}
    notices: dict[str, list[WarningEvent]] = {}
    every: dict[str, list[WarningEvent]] = {}
    spans: dict[str, tuple[int, int]] = {}
    total_readings = 0
    devices = list(fleet.devices)
    for i, device in enumerate(devices, 1):
        until = fleet.span(device).end_ms if hasattr(fleet, "span") else None  # a hand-made fleet has none
        events, n = monitor_device(device, _spanned(fleet.readings(device), device.device, spans), policy, until)
        total_readings += n
        opened[device.device] = [e for e in events if e.action == "open" and preventive(e.risk)]
        notices[device.device] = loss_notices(e for e in events if e.action == "open")
        every[device.device] = [e for e in events if preventive(e.risk)]
        if progress:
            crash = f", {len(notices[device.device])} crash notice(s)" if notices[device.device] else ""
            progress(
                f"[{i}/{len(devices)}] {device.device} ({device.kind}, {device.scenario or 'quiet'}): "
                f"{n} readings, {len(opened[device.device])} warnings{crash}"
            )
    by_device: dict[str, list[Any]] = defaultdict(list)
    for incident in fleet.incidents:
        by_device[incident.device].append(incident)
    results: list[IncidentResult] = []
    errors: dict[str, list[float]] = defaultdict(list)
    for incident in fleet.incidents:
        found = match(incident, opened.get(incident.device, []))
        first = found.first
        if first is not None:
            for risk, error in forecast_errors(incident.loss_at_ms, every.get(incident.device, []), first.warning_id):
                errors[risk].append(error)
        results.append(
            IncidentResult(
                device=incident.device,
                scenario=incident.scenario,
                loss_type=incident.loss_type,
                risks=tuple(incident.risks),
                precursor_start_ms=incident.precursor_start_ms,
                loss_at_ms=incident.loss_at_ms,
                expected_cost_cny=float(incident.expected_cost_cny),
                first_warning_ms=first.at_ms if first else None,
                first_warning_risk=first.risk if first else None,
                warned_after_loss=found.warned_after_loss,
            )
        )
    crashes = [i for i in fleet.incidents if any(i.loss_type in types for types in NOTICE_LOSS_TYPES.values())]
    reported: dict[str, Any] = {}
    for incident in crashes:
        notice = match_loss_notice(incident, notices.get(incident.device, []))
        if notice is not None:
            reported.setdefault(notice.warning_id, incident)
    crash_notices = [
        LossNoticeResult(
            device=e.device,
            risk=e.risk,
            at_ms=e.at_ms,
            scenario=reported[e.warning_id].scenario if e.warning_id in reported else None,
            after_loss_s=(e.at_ms - reported[e.warning_id].loss_at_ms) / 1000 if e.warning_id in reported else None,
        )
        for events in notices.values()
        for e in events
    ]
    flagged = false_warnings(fleet.incidents, [e for events in opened.values() for e in events])
    false = [e for e, _ in flagged]
    false_by_risk: dict[str, int] = defaultdict(int)
    for e in false:
        false_by_risk[e.risk] += 1
    by_cause = {cause: sum(1 for _, c in flagged if c == cause) for cause in FALSE_CAUSES}
    device_days = sum((hi - lo) / 86_400_000 for lo, hi in spans.values())
    followed = people_in_the_loop(fleet, every, min_lead_s, people) if people is not None else None
    groups: dict[str, list[IncidentResult]] = defaultdict(list)
    for r in results:
        groups[r.scenario].append(r)
    scenarios = [_summarise(name, rs, min_lead_s) for name, rs in sorted(groups.items())]
    return EvalReport(
        incidents=results,
        scenarios=scenarios,
        overall=_summarise("overall", results, min_lead_s),
        false_warnings=len(false),
        false_warnings_by_risk=dict(sorted(false_by_risk.items())),
        device_days=device_days,
        warnings_total=sum(len(v) for v in opened.values()),
        readings=total_readings,
        devices=len(devices),
        seconds=time.perf_counter() - t0,
        min_lead_s=min_lead_s,
        false_warning_examples=[
            {
                "device": e.device,
                "risk": e.risk,
                "cause": cause,
                "at_ms": e.at_ms,
                "severity": e.severity,
                "evidence": e.evidence,
            }
            for e, cause in flagged[:20]
        ],
        false_warnings_by_cause=by_cause,
        false_loss_under_way=sum(1 for e in false if reports_loss_under_way(e)),
        forecast_errors=[
            *(_forecast_error(risk, values) for risk, values in sorted(errors.items())),
            _forecast_error("overall", [v for risk in FORECAST_RISKS for v in errors.get(risk, [])]),
        ],
        people=followed,
        feedback=feedback_round(fleet, opened, followed, policy) if followed is not None else None,
        crash_notices=crash_notices,
        crash_incidents=len(crashes),
        learned=learned_group(fleet, policy, progress, fleet_model),
    )


def feedback_round(
    fleet: Any, opened: dict[str, list[WarningEvent]], people: PeopleReport, policy: WarningPolicy | None = None
) -> FeedbackEffect:
    """The false alarms ``people`` record (not those of a loss under way) fed back into each
    device's configuration (``false_alarms`` per risk type, as ``core.db.record_outcome`` keeps
    it); the devices concerned run again with it. Their false warnings, incidents warned and
    median lead time, before and after."""
    under_way = [e.warning_id for events in opened.values() for e in events if reports_loss_under_way(e)]
    reported = reported_false_alarms(people, under_way)
    overrides: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (device, risk), n in reported.items():
        overrides[device][risk] = {FALSE_ALARMS: n}
    incidents = [i for i in fleet.incidents if i.device in overrides]
    after: dict[str, list[WarningEvent]] = {}
    for name, params in overrides.items():
        device = fleet.device(name)
        until = fleet.span(device).end_ms if hasattr(fleet, "span") else None
        events, _ = monitor_device(device, fleet.readings(device), policy, until, params)
        after[name] = [e for e in events if e.action == "open" and preventive(e.risk)]
    before = {name: opened.get(name, []) for name in overrides}

    def leads(warnings: dict[str, list[WarningEvent]]) -> list[float]:
        found = [match(i, warnings.get(i.device, [])).lead_time_s(i.loss_at_ms) for i in incidents]
        return [lead / 3600 for lead in found if lead is not None]

    lead_before, lead_after = leads(before), leads(after)
    return FeedbackEffect(
        reported={f"{device}/{risk}": n for (device, risk), n in sorted(reported.items())},
        devices=len(overrides),
        false_before=len(false_warnings(incidents, [e for es in before.values() for e in es])),
        false_after=len(false_warnings(incidents, [e for es in after.values() for e in es])),
        incidents=len(incidents),
        warned_before=len(lead_before),
        warned_after=len(lead_after),
        lead_median_before_h=statistics.median(lead_before) if lead_before else None,
        lead_median_after_h=statistics.median(lead_after) if lead_after else None,
    )


FORECAST_RISKS: tuple[str, ...] = ("freeze_risk", "coldchain_failure", "bearing_failure", "battery_drain")
"""The risks whose stated time of loss is a physical forecast (``overall`` forecast error):
a fatigue warning's time is the 4-hour rule, a power cut's the sump pump's battery."""


def reports_loss_under_way(event: WarningEvent) -> bool:
    """The warning says a loss of a kind that happens all at once is happening now."""
    known = RISKS.get(event.risk)
    predicted = event.predicted_loss_at_ms
    now = predicted is not None and predicted - event.at_ms < LOSS_NOW_S * 1000
    return bool(known and known.loss_under_way and now)


def forecast_errors(loss_at_ms: int, events: Iterable[WarningEvent], warning_id: str) -> list[tuple[str, float]]:
    """(risk, relative error) of every message of warning ``warning_id`` (its open and its
    escalations) sent before the loss that states a time of loss at least a minute ahead."""
    found = []
    for e in events:
        if e.warning_id != warning_id or e.action not in ("open", "escalate") or e.predicted_loss_at_ms is None:
            continue
        left = loss_at_ms - e.at_ms
        if left <= 0 or e.predicted_loss_at_ms - e.at_ms < LOSS_NOW_S * 1000:
            continue
        found.append((e.risk, abs(e.predicted_loss_at_ms - loss_at_ms) / left))
    return found


def _forecast_error(risk: str, values: list[float]) -> ForecastError:
    return ForecastError(risk, len(values), statistics.median(values) if values else None, percentile(values, 90))


def _spanned(readings: Iterable[Any], device: str, spans: dict[str, tuple[int, int]]) -> Iterable[Any]:
    lo = hi = None
    for r in readings:
        lo = r.ts_ms if lo is None else min(lo, r.ts_ms)
        hi = r.ts_ms if hi is None else max(hi, r.ts_ms)
        yield r
    if lo is not None and hi is not None:
        spans[device] = (lo, hi)


def _summarise(name: str, results: list[IncidentResult], min_lead_s: float) -> ScenarioSummary:
    warned = [r for r in results if r.warned]
    leads = [r.lead_time_s / 3600 for r in warned if r.lead_time_s is not None]
    delays = [r.detection_delay_s / 3600 for r in warned if r.detection_delay_s is not None]
    avoidable = sum(r.expected_cost_cny for r in warned if (r.lead_time_s or 0) >= min_lead_s)
    return ScenarioSummary(
        scenario=name,
        incidents=len(results),
        warned=len(warned),
        recall=len(warned) / len(results) if results else 0.0,
        lead_time_median_h=statistics.median(leads) if leads else None,
        lead_time_p10_h=percentile(leads, 10),
        lead_time_p90_h=percentile(leads, 90),
        detection_delay_median_h=statistics.median(delays) if delays else None,
        loss_avoidable_cny=avoidable,
    )


def lead_time_chart(report: EvalReport, path: Path) -> Path:
    """PNG: lead-time distribution per scenario type (missed incidents marked at zero)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.scenario for s in report.scenarios]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(names) + 1.5))
    for y, name in enumerate(names):
        rs = [r for r in report.incidents if r.scenario == name]
        leads = [r.lead_time_s / 3600 for r in rs if r.lead_time_s is not None]
        missed = sum(1 for r in rs if not r.warned)
        if leads:
            ax.scatter(leads, [y] * len(leads), color="tab:green", zorder=3)
            ax.hlines(y, min(leads), max(leads), color="tab:green", alpha=0.4)
        if missed:
            ax.scatter([0], [y], marker="x", color="tab:red", zorder=3)
            ax.annotate(f"{missed} missed", (0, y), textcoords="offset points", xytext=(8, -4), color="tab:red")
    ax.set_yticks(range(len(names)), names)
    ax.axvline(report.min_lead_s / 3600, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("lead time before the loss (hours); × = missed; dashed = time needed to act")
    ax.set_title(
        f"forewarn: recall {report.overall.recall:.0%}, "
        f"{report.false_warnings_per_device_day:.2f} false warnings per device-day, "
        f"loss avoidable ¥{report.loss_avoidable_cny:,.0f}"
    )
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
