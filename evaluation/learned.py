"""The learned detector's own group in ``forewarn eval``: faults no physical rule names.

The standard library's devices run at most ten days, mostly one or two: a baseline that needs
three days to learn a device stays silent on nearly all of them (which is what keeps it from
adding false warnings there). Its faults (``simulator.faults``: a drifting sensor, a
short-cycling compressor, a pump's creeping current, a link that comes and goes) run on devices
of their own, twelve days each (``simulator.fleet.fault_library``, same seed), scored here by
the same rule as every incident (``evaluation.matching.match``): recall, lead time, detection
delay per fault, the ``unusual_reading`` warnings opened while a device ran normally (false;
after the loss the simulated fault goes on unrepaired, so what opens then is not counted), and what the
physical rules opened on those devices (not counted as false here: they are the other rules'
business, reported for what they are).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from core.contract import WarningEvent
from evaluation.matching import match
from simulator.faults import LEARNED_RISKS
from simulator.fleet import fault_library
from streams.decisions import WarningPolicy

LEARNED_LIBRARY = "standard"
"""The fleet a ``forewarn eval`` runs the learned group beside (``Fleet.library``)."""


@dataclass(frozen=True, slots=True)
class FaultSummary:
    fault: str
    incidents: int
    warned: int
    recall: float
    lead_time_median_h: float | None
    lead_time_min_h: float | None
    detection_delay_median_h: float | None
    severities: dict[str, int]


@dataclass
class LearnedReport:
    faults: list[FaultSummary]
    overall: FaultSummary
    false_warnings: int
    device_days: float
    other_warnings: dict[str, int] = field(default_factory=dict)
    devices: int = 0
    readings: int = 0

    @property
    def false_warnings_per_device_day(self) -> float:
        return self.false_warnings / self.device_days if self.device_days else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "faults": [asdict(f) for f in self.faults],
            "overall": asdict(self.overall),
            "false_warnings": self.false_warnings,
            "false_warnings_per_device_day": self.false_warnings_per_device_day,
            "device_days": self.device_days,
            "other_warnings": self.other_warnings,
            "devices": self.devices,
            "readings": self.readings,
        }


def learned_group(
    fleet: Any,
    policy: WarningPolicy | None = None,
    progress: Callable[[str], None] | None = None,
) -> LearnedReport | None:
    """The learned group beside a standard library's evaluation (``None`` beside any other fleet)."""
    if getattr(fleet, "library", "") != LEARNED_LIBRARY:
        return None
    return evaluate_learned(int(fleet.seed), policy, progress)


def evaluate_learned(
    seed: int = 7,
    policy: WarningPolicy | None = None,
    progress: Callable[[str], None] | None = None,
    replicas: int = 5,
) -> LearnedReport:
    """Run the fault library of ``seed`` (``replicas`` devices per fault) through the worker's
    decisions; score ``unusual_reading``."""
    from evaluation.harness import monitor_device  # the harness calls this module: import when used

    faults = fault_library(seed, replicas=replicas)
    rows: list[tuple[str, float | None, float | None, str | None]] = []
    false = 0
    other: Counter[str] = Counter()
    readings = 0
    device_days = 0.0
    for device in faults.devices:
        span = faults.span(device)
        events, n = monitor_device(device, faults.readings(device), policy, span.end_ms)
        readings += n
        device_days += (span.end_ms - span.start_ms) / 86_400_000
        opened: list[WarningEvent] = [e for e in events if e.action == "open"]
        learned = [e for e in opened if e.risk in LEARNED_RISKS]
        other.update(e.risk for e in opened if e.risk not in LEARNED_RISKS)
        incident = faults.incident(device)
        assert incident is not None
        found = match(incident, learned)
        # false: opened while the device still ran normally (before the precursor, less the
        # matching rule's hour); after the loss the simulated fault simply goes on (no repair)
        false += sum(1 for e in learned if e not in found.candidates and e.at_ms < incident.loss_at_ms)
        first = found.first
        lead = None if first is None else (incident.loss_at_ms - first.at_ms) / 3_600_000
        delay = None if first is None else (first.at_ms - incident.precursor_start_ms) / 3_600_000
        severity = None if first is None else next(e.severity for e in learned if e.warning_id == first.warning_id)
        rows.append((incident.scenario, lead, delay, severity))
        if progress:
            progress(f"[learned] {device.device}: {n} readings, lead {'missed' if lead is None else f'{lead:.1f} h'}")
    names = list(dict.fromkeys(name for name, *_ in rows))
    summaries = [_summary(name, [r for r in rows if r[0] == name]) for name in names]
    return LearnedReport(
        faults=summaries,
        overall=_summary("overall", rows),
        false_warnings=false,
        device_days=device_days,
        other_warnings=dict(sorted(other.items())),
        devices=len(faults.devices),
        readings=readings,
    )


def _summary(name: str, rows: list[tuple[str, float | None, float | None, str | None]]) -> FaultSummary:
    leads = [lead for _, lead, _, _ in rows if lead is not None]
    delays = [delay for _, lead, delay, _ in rows if lead is not None and delay is not None]
    return FaultSummary(
        fault=name,
        incidents=len(rows),
        warned=len(leads),
        recall=len(leads) / len(rows) if rows else 0.0,
        lead_time_median_h=statistics.median(leads) if leads else None,
        lead_time_min_h=min(leads) if leads else None,
        detection_delay_median_h=statistics.median(delays) if delays else None,
        severities=dict(Counter(s for *_, s in rows if s is not None)),
    )


HEADERS = ("fault", "incidents", "warned", "recall", "lead median", "lead min", "detection delay", "severity")
TITLE = "learned detector (unusual_reading): faults no physical rule names"


def table_rows(report: LearnedReport) -> list[list[str]]:
    """The learned group's table, one row per fault and the overall row last (``evaluation.report``
    prints it)."""
    return [
        [
            s.fault,
            str(s.incidents),
            str(s.warned),
            f"{s.recall:.0%}",
            _h(s.lead_time_median_h),
            _h(s.lead_time_min_h),
            _h(s.detection_delay_median_h),
            ", ".join(f"{k} {v}" for k, v in sorted(s.severities.items())) or "—",
        ]
        for s in [*report.faults, report.overall]
    ]


def summary_line(report: LearnedReport) -> str:
    others = ", ".join(f"{k} {v}" for k, v in report.other_warnings.items()) or "none"
    return (
        f"learned group: {report.devices} devices, {report.readings:,} readings, {report.device_days:.0f} device-days; "
        f"unusual_reading warnings answering no fault: {report.false_warnings} "
        f"({report.false_warnings_per_device_day:.3f} per device-day); the physical rules opened there: {others}"
    )


def _h(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} h"
