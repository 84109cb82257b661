"""The learned detectors' own group in ``forewarn eval``: faults no physical rule names.

The standard library's devices run at most ten days, mostly one or two: a baseline that needs
three days to learn a device stays silent on nearly all of them (which is what keeps it from
adding false warnings there). Its faults (``simulator.faults``: a drifting sensor, a
short-cycling compressor, a pump's creeping current, a link that comes and goes) run on devices
of their own, twelve days each (``simulator.fleet.fault_library``, same seed), scored here by
the same rule as every incident (``evaluation.matching.match``).

Two learned detectors warn of them, both as ``unusual_reading`` (one open warning covers
either): each device's own baseline (``detectors.baseline``, in the device's profile) and the
fleet model of its kind (``detectors.fleet``). Each device runs three times through the
worker's decisions (``evaluation.harness.monitor_device``):

- ``baseline``: the device's profile as it is (the baseline, no fleet model);
- ``both``: the profile and the fleet model, as the worker runs with a model loaded — the
  worker's path (``streams.fleet``): the device read through its
  :class:`~detectors.fleet.FleetWindow`, a row per bucket, a finding for a row at the model's
  threshold (``score_rows``, graded by the physical rules' open warnings), decided by the
  device's monitor (``DeviceMonitor.consider``) once the reading that made the row is;
- ``fleet``: the fleet model alone, as on a device whose baseline is configured away
  (``{"unusual_reading": None}``): the same findings decided by a monitor of their own, run
  alongside ``both`` (:class:`FleetDecider`).

The fleet models are trained here (:func:`train_fleet_models`) the way ``forewarn train`` fits
them (same windows, metrics rule, method and calibration), on simulated **healthy** history of a
separate training fleet, seed ``seed + TRAIN_SEED_OFFSET``: the fault library's devices of that
seed before their faults start, and quiet devices of the kinds modelled (each of the kind's
quiet profiles at least once). No evaluated device, and no reading of a fault, is ever read in
training (:func:`healthy_history` refuses the evaluated seed; the sources are in the report).

Per fault and per run: recall, lead time, detection delay; and the ``unusual_reading`` warnings
opened while a device still ran normally (false: before its precursor, less the matching rule's
hour), per device-day of those healthy spans. What opens after the loss is not counted (the
simulated fault goes on unrepaired), nor what the physical rules opened on these devices (the
other rules' business, reported for what they are, from the ``baseline`` run).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.contract import Reading, WarningEvent
from detectors.fleet import (
    FleetModel,
    FleetRow,
    FleetWindow,
    choose_metrics,
    fit_fleet_model,
    observe,
    rows_of_device,
    score_rows,
)
from evaluation.matching import EARLY_SLACK_S, match
from simulator.faults import LEARNED_RISKS
from simulator.fleet import STANDARD_START_MS, Fleet, SimReading, build_fleet, fault_library
from simulator.scenarios import QUIET_PROFILES
from streams.decisions import DeviceMonitor, WarningPolicy
from streams.fleet import finding_of, open_severity

LEARNED_LIBRARY = "standard"
"""The fleet a ``forewarn eval`` runs the learned group beside (``Fleet.library``)."""
RUNS: tuple[str, ...] = ("baseline", "fleet", "both")
"""The learned detectors each device runs with (see the module)."""
TRAIN_SEED_OFFSET = 1_000
"""The training fleet's seed is the evaluated seed plus this: other devices, other readings."""
TRAIN_QUIET_DAYS = 5.0
"""How long each quiet device of the training fleet runs."""
FLEET_THRESHOLD = 0.9995
"""A window at least this unusual is a finding: ``forewarn train``'s default threshold, which the
worker reads from a model's manifest (``forewarn.train.DEFAULT_THRESHOLD``; a test keeps them equal)."""

METHOD, WINDOW_S, BUCKETS = "pca", 3600.0, 6
"""The model ``forewarn train`` fits by default: PCA over windows of an hour in six buckets."""

Progress = Callable[[str], None]


# ----------------------------------------------------------------------------- results


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
class RunResult:
    """One way of running the learned detectors (:data:`RUNS`) over the fault library."""

    name: str
    faults: list[FaultSummary]
    overall: FaultSummary
    false_warnings: int
    healthy_device_days: float

    @property
    def false_warnings_per_device_day(self) -> float:
        return self.false_warnings / self.healthy_device_days if self.healthy_device_days else 0.0

    def fault(self, name: str) -> FaultSummary:
        return next(f for f in [*self.faults, self.overall] if f.fault == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "faults": [asdict(f) for f in self.faults],
            "overall": asdict(self.overall),
            "false_warnings": self.false_warnings,
            "false_warnings_per_healthy_device_day": self.false_warnings_per_device_day,
        }


@dataclass(frozen=True, slots=True)
class TrainingSource:
    """One device whose readings a fleet model was fitted on."""

    fleet_seed: int
    device: str
    kind: str
    first_ms: int
    last_ms: int
    readings: int
    fault_start_ms: int | None
    """Its fault's precursor start (the readings stop before it); ``None``: a quiet device."""


@dataclass
class FleetTraining:
    """The fleet models ``forewarn eval`` trained, and on what."""

    seed: int
    models: dict[str, FleetModel]
    sources: list[TrainingSource]
    rows: dict[str, int]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "threshold": FLEET_THRESHOLD,
            "kinds": {
                kind: {
                    "method": m.method,
                    "metrics": list(m.metrics),
                    "rows": self.rows.get(kind, 0),
                    "devices": sum(1 for s in self.sources if s.kind == kind),
                    "readings": sum(s.readings for s in self.sources if s.kind == kind),
                }
                for kind, m in self.models.items()
            },
            "sources": [asdict(s) for s in self.sources],
            "seconds": self.seconds,
        }


@dataclass
class LearnedReport:
    runs: dict[str, RunResult]
    """Per run (:data:`RUNS`; only ``baseline`` without a fleet model)."""
    device_days: float
    healthy_device_days: float
    other_warnings: dict[str, int] = field(default_factory=dict)
    devices: int = 0
    readings: int = 0
    training: FleetTraining | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": {name: run.to_json() for name, run in self.runs.items()},
            "device_days": self.device_days,
            "healthy_device_days": self.healthy_device_days,
            "other_warnings": self.other_warnings,
            "devices": self.devices,
            "readings": self.readings,
            "fleet_training": self.training.to_json() if self.training is not None else None,
        }


# ----------------------------------------------------------------------------- training


def _x(reading: SimReading) -> dict[str, float]:
    return {"ts": reading.ts_ms / 1000.0, **{k: float(v) for k, v in reading.metrics.items()}}


def healthy_history(
    evaluated_seed: int,
    kinds: set[str],
    *,
    offset: int = TRAIN_SEED_OFFSET,
    replicas: int = 5,
    quiet_days: float = TRAIN_QUIET_DAYS,
) -> Iterator[tuple[TrainingSource, list[SimReading]]]:
    """The training fleet's healthy readings of ``kinds``, device by device: the fault library of
    seed ``evaluated_seed + offset`` (``replicas`` devices per fault) up to each fault's start, and
    quiet devices, each of a kind's quiet profiles once, ``quiet_days`` long. Refuses an offset
    of 0: that would be the evaluated devices themselves."""
    seed = evaluated_seed + offset
    if seed == evaluated_seed:
        raise ValueError("the training fleet must not be the evaluated one: give a non-zero seed offset")
    faults = fault_library(seed, replicas=replicas)
    for device in faults.devices:
        incident = faults.incident(device)
        if device.kind not in kinds or incident is None:
            continue
        readings = [r for r in faults.readings(device) if r.ts_ms < incident.precursor_start_ms]
        if readings:
            yield _source(seed, device.device, device.kind, readings, incident.precursor_start_ms), readings
    quiet = _quiet_fleet(seed, quiet_days)
    for device in quiet.devices:
        if device.kind in kinds:
            readings = list(quiet.readings(device))
            if readings:
                yield _source(seed, device.device, device.kind, readings, None), readings


def _quiet_fleet(seed: int, days: float) -> Fleet:
    """Quiet devices of every kind, as many of each as the kind with most quiet profiles has, so
    each profile of every kind runs at least once."""
    per_kind = max(len(profiles) for profiles in QUIET_PROFILES.values())
    return build_fleet(
        seed,
        devices=per_kind * len(QUIET_PROFILES),
        quiet_ratio=1.0,
        start_ms=STANDARD_START_MS,
        duration_s=days * 86_400.0,
    )


def _source(seed: int, device: str, kind: str, readings: list[SimReading], fault_ms: int | None) -> TrainingSource:
    return TrainingSource(seed, device, kind, readings[0].ts_ms, readings[-1].ts_ms, len(readings), fault_ms)


def train_fleet_models(
    evaluated_seed: int,
    kinds: set[str],
    progress: Progress | None = None,
    *,
    offset: int = TRAIN_SEED_OFFSET,
    **history: Any,
) -> FleetTraining:
    """A fleet model per kind, fitted as ``forewarn train`` fits one (its metrics rule, windows,
    method and calibration; all rows, no held-out slice) on :func:`healthy_history`'s readings."""
    t0 = time.perf_counter()
    sources: list[TrainingSource] = []
    models: dict[str, FleetModel] = {}
    rows: dict[str, int] = {}
    for kind in sorted(kinds):  # one kind's readings in memory at a time
        history_of_kind = list(healthy_history(evaluated_seed, {kind}, offset=offset, **history))
        sources += [source for source, _ in history_of_kind]
        devices = [readings for _, readings in history_of_kind]
        counts: Counter[str] = Counter(m for rs in devices for r in rs for m in r.metrics)
        metrics = choose_metrics(counts, sum(len(rs) for rs in devices))
        X = [row for rs in devices for row in _rows(metrics, rs)] if metrics else []
        if len(X) < 10:
            continue
        models[kind] = fit_fleet_model(
            kind, metrics, np.array(X, dtype=float), method=METHOD, window_s=WINDOW_S, buckets=BUCKETS
        )
        rows[kind] = len(X)
        if progress:
            progress(
                f"[learned] fleet model of {kind}: {len(devices)} healthy devices of seed {evaluated_seed + offset}, "
                f"{sum(len(rs) for rs in devices):,} readings, {len(X):,} windows, {len(metrics)} metrics"
            )
    return FleetTraining(evaluated_seed + offset, models, sources, rows, time.perf_counter() - t0)


def _rows(metrics: list[str], readings: list[SimReading]) -> list[list[float]]:
    """One device's feature rows, read as the worker and ``forewarn train`` read a device."""
    window = FleetWindow(metrics, WINDOW_S, BUCKETS)
    return [list(row.features) for row in rows_of_device(window, (_x(r) for r in readings))]


# ----------------------------------------------------------------------------- evaluation


def learned_group(
    fleet: Any,
    policy: WarningPolicy | None = None,
    progress: Progress | None = None,
    fleet_model: bool = True,
) -> LearnedReport | None:
    """The learned group beside a standard library's evaluation (``None`` beside any other fleet)."""
    if getattr(fleet, "library", "") != LEARNED_LIBRARY:
        return None
    return evaluate_learned(int(fleet.seed), policy, progress, fleet_model=fleet_model)


def evaluate_learned(
    seed: int = 7,
    policy: WarningPolicy | None = None,
    progress: Progress | None = None,
    replicas: int = 5,
    *,
    fleet_model: bool = True,
    training: FleetTraining | None = None,
) -> LearnedReport:
    """Run the fault library of ``seed`` (``replicas`` devices per fault) through the worker's
    decisions with each of :data:`RUNS` (only ``baseline`` without ``fleet_model``); score
    ``unusual_reading``. ``training``: fleet models trained already (else trained here)."""
    faults = fault_library(seed, replicas=replicas)
    training = _trained(seed, faults, training, progress) if fleet_model else None
    models = training.models if training is not None else {}
    runs = [r for r in RUNS if models or r == "baseline"]
    rows: dict[str, list[_Row]] = {r: [] for r in runs}
    false: Counter[str] = Counter()
    other: Counter[str] = Counter()
    readings = 0
    device_days = healthy_days = 0.0
    for device in faults.devices:
        span, incident = faults.span(device), faults.incident(device)
        assert incident is not None
        sims = list(faults.readings(device))
        readings += len(sims)
        device_days += (span.end_ms - span.start_ms) / 86_400_000
        healthy_end = incident.precursor_start_ms - int(EARLY_SLACK_S * 1000)
        healthy_days += max(healthy_end - span.start_ms, 0) / 86_400_000
        model = models.get(device.kind)
        hot = hot_rows(model, sims, device.device) if model is not None else {}
        opened = _run_device(device, sims, policy, span.end_ms, model, hot)
        other.update(e.risk for e in opened["baseline"] if e.risk not in LEARNED_RISKS)
        said = []
        for run in runs:
            row, n_false = _score(incident, [e for e in opened[run] if e.risk in LEARNED_RISKS])
            rows[run].append(row)
            false[run] += n_false
            said.append(f"{run} {_lead(row[1])}")
        if progress:
            found = f", {len(hot)} fleet findings" if model is not None else ""
            progress(f"[learned] {device.device}: {len(sims)} readings{found}; lead {', '.join(said)}")
    return LearnedReport(
        runs={r: _run(r, rows[r], false[r], healthy_days) for r in runs},
        device_days=device_days,
        healthy_device_days=healthy_days,
        other_warnings=dict(sorted(other.items())),
        devices=len(faults.devices),
        readings=readings,
        training=training if models else None,
    )


def _trained(seed: int, faults: Fleet, training: FleetTraining | None, progress: Progress | None) -> FleetTraining:
    """``training`` if given, else fleet models of the kinds of ``faults`` trained now."""
    if training is not None:
        return training
    if progress:
        progress(f"[learned] training a fleet model per kind on the healthy history of seed {seed + TRAIN_SEED_OFFSET}")
    return train_fleet_models(seed, {d.kind for d in faults.devices}, progress)


def hot_rows(model: FleetModel, readings: list[SimReading], key: str) -> dict[int, FleetRow]:
    """The device's feature rows that score at least :data:`FLEET_THRESHOLD`, by the index of the
    reading that made each (the worker queues a row when that reading arrives). Every row is
    scored in one call; :class:`FleetDecider` scores the hot ones again as the worker does."""
    window = model.new_window()
    made: list[tuple[int, FleetRow]] = []
    for i, reading in enumerate(readings):
        x = _x(reading)
        row = observe(window, x)
        if row is not None:
            made.append((i, FleetRow(key, model.kind, x["ts"], row)))
    if not made:
        return {}
    scores, _ = model.score_many(np.array([row.features for _, row in made], dtype=float))
    return {made[k][0]: made[k][1] for k in np.flatnonzero(scores >= FLEET_THRESHOLD)}


def _run_device(
    device: Any,
    readings: list[SimReading],
    policy: WarningPolicy | None,
    until_ms: int,
    model: FleetModel | None,
    hot: dict[int, FleetRow],
) -> dict[str, list[WarningEvent]]:
    """The warnings each run opens on one device: ``baseline`` alone, then ``both`` with the
    ``fleet`` run alongside (:class:`FleetDecider`); without a model, ``baseline`` only."""
    from evaluation.harness import monitor_device  # the harness calls this module: import when used

    events, _ = monitor_device(device, readings, policy, until_ms)
    opened = {"baseline": [e for e in events if e.action == "open"]}
    if model is None:
        return opened
    decider = FleetDecider(model, hot, readings, DeviceMonitor(device.tenant, device.device, device.kind, [], policy))
    events, _ = monitor_device(device, readings, policy, until_ms, after=decider)
    opened["both"] = [e for e in events if e.action == "open"]
    opened["fleet"] = [e for e in decider.alone_events if e.action == "open"]
    return opened


class FleetDecider:
    """``monitor_device``'s ``after``: the fleet model's finding on the row a reading made (of
    ``hot``), graded by the physical warnings open on the device then and decided by its monitor
    — the worker's ``FleetScorer.score_due`` (``score_rows``) and ``DeviceMonitor.consider``.

    ``alone`` is the ``fleet`` run: a monitor of the same device with no detector of its own,
    fed the same readings (for its warnings' expiry) and the same findings, graded alike. It
    decides ``unusual_reading`` as the device with its baseline configured away would: the
    physical rules' warnings, which grade the findings, are the same whether the baseline runs
    or not (a test compares it with that device run in full, which would cost another whole run
    of the physical rules here)."""

    def __init__(
        self, model: FleetModel, hot: dict[int, FleetRow], readings: list[SimReading], alone: DeviceMonitor | None
    ) -> None:
        self.model, self.hot, self.readings, self.alone = model, hot, readings, alone
        self.alone_events: list[WarningEvent] = []

    def __call__(self, monitor: DeviceMonitor, i: int) -> list[WarningEvent]:
        if self.alone is not None:
            sim = self.readings[i]
            metrics = {k: float(v) for k, v in sim.metrics.items()}
            self.alone_events += self.alone.observe(Reading(ts=int(sim.ts_ms), metrics=metrics, seq=sim.seq))
        row = self.hot.get(i)
        if row is None:
            return []
        physical = {row.key: open_severity(monitor)}
        events: list[WarningEvent] = []
        for found in score_rows({self.model.kind: self.model}, [row], physical, threshold=FLEET_THRESHOLD):
            finding, at_ms = finding_of(found), int(found.ts * 1000)
            events += monitor.consider(finding, at_ms)
            if self.alone is not None:
                self.alone_events += self.alone.consider(finding, at_ms)
        return events


_Row = tuple[str, float | None, float | None, str | None]
"""(fault, lead h, detection delay h, severity of the first warning) of one incident."""


def _score(incident: Any, learned: list[WarningEvent]) -> tuple[_Row, int]:
    """One incident's row, and the learned warnings opened on its device while it ran normally
    (before the precursor, less the matching rule's hour: those :func:`match` does not take);
    after the loss the simulated fault simply goes on (no repair): not counted."""
    found = match(incident, learned)
    false = sum(1 for e in learned if e not in found.candidates and e.at_ms < incident.loss_at_ms)
    first = found.first
    lead = None if first is None else (incident.loss_at_ms - first.at_ms) / 3_600_000
    delay = None if first is None else (first.at_ms - incident.precursor_start_ms) / 3_600_000
    severity = None if first is None else next(e.severity for e in learned if e.warning_id == first.warning_id)
    return (incident.scenario, lead, delay, severity), false


def _run(name: str, rows: list[_Row], false: int, healthy_days: float) -> RunResult:
    names = list(dict.fromkeys(fault for fault, *_ in rows))
    return RunResult(
        name=name,
        faults=[_summary(fault, [r for r in rows if r[0] == fault]) for fault in names],
        overall=_summary("overall", rows),
        false_warnings=false,
        healthy_device_days=healthy_days,
    )


def _summary(name: str, rows: list[_Row]) -> FaultSummary:
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


# ----------------------------------------------------------------------------- tables

TITLE = "learned detectors (unusual_reading): faults no physical rule names"
RUN_TITLES = {"baseline": "baseline", "fleet": "fleet model", "both": "both"}


CAPTION = "each run: incidents warned, median lead; lead min, detection delay and severity: of the last run"


def headers(report: LearnedReport) -> list[str]:
    runs = [RUN_TITLES[name] for name in report.runs]
    return ["fault", "incidents", *runs, "lead min", "detection delay", "severity"]


def table_rows(report: LearnedReport) -> list[list[str]]:
    """The learned group's table, one row per fault and the overall row last: each run's
    incidents warned and median lead, then the lead min, detection delay and severities of the
    last run (``both`` when the fleet model ran). ``evaluation.report`` prints it."""
    runs = list(report.runs.values())
    last = runs[-1]
    out = []
    for s in [*last.faults, last.overall]:
        cells = [_warned(run.fault(s.fault)) for run in runs]
        severities = ", ".join(f"{k} {v}" for k, v in sorted(s.severities.items())) or "—"
        out.append(
            [s.fault, str(s.incidents), *cells, _h(s.lead_time_min_h), _h(s.detection_delay_median_h), severities]
        )
    return out


def _warned(s: FaultSummary) -> str:
    return f"{s.warned}" + ("" if s.lead_time_median_h is None else f", {s.lead_time_median_h:.1f} h")


def summary_lines(report: LearnedReport) -> list[str]:
    others = ", ".join(f"{k} {v}" for k, v in report.other_warnings.items()) or "none"
    false = "; ".join(
        f"{RUN_TITLES[name]} {run.false_warnings} ({run.false_warnings_per_device_day:.3f} per device-day)"
        for name, run in report.runs.items()
    )
    lines = [
        f"learned group: {report.devices} devices, {report.readings:,} readings, {report.device_days:.0f} device-days "
        f"({report.healthy_device_days:.0f} healthy: before each fault's precursor); the physical rules opened there: "
        f"{others}",
        f"unusual_reading warnings while the devices ran normally: {false}",
    ]
    t = report.training
    if t is not None:
        kinds = ", ".join(f"{k} {n:,} windows" for k, n in t.rows.items())
        lines.append(
            f"fleet models (PCA, threshold {FLEET_THRESHOLD}) trained on the healthy history of seed {t.seed} "
            f"({len(t.sources)} devices, {sum(s.readings for s in t.sources):,} readings; none evaluated): {kinds}; "
            f"{t.seconds:.1f} s"
        )
    return lines


def _lead(value: float | None) -> str:
    return "missed" if value is None else f"{value:.1f} h"


def _h(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} h"
