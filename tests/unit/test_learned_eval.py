"""``forewarn eval``'s learned group (``evaluation.learned``): the faults no rule names, scored
beside the standard library only, by the same matching rule as every incident, with the device's
own baseline, the fleet model trained for the evaluation, and both."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from core.contract import Reading, ReadingsBatch
from evaluation import learned
from evaluation.harness import monitor_device
from evaluation.learned import (
    FleetDecider,
    LearnedReport,
    evaluate_learned,
    healthy_history,
    hot_rows,
    learned_group,
    summary_lines,
    table_rows,
)
from forewarn import train
from simulator.fleet import build_fleet, fault_library
from streams.decisions import DeviceMonitor
from streams.fleet import LEARNED_RISK, FleetScorer, LoadedModel

SEED = 7
FAULTS = {"sensor_drift", "compressor_short_cycling", "rising_current", "intermittent_connection"}


@pytest.fixture(scope="module")
def report() -> LearnedReport:
    """One device per fault of seed 7, with the fleet models ``forewarn eval`` trains (~15 s)."""
    return evaluate_learned(SEED, replicas=1)


def test_only_a_standard_library_gets_the_learned_group() -> None:
    small = build_fleet(7, devices=2, quiet_ratio=1.0, start_ms=1_763_654_400_000, duration_s=3600)
    assert learned_group(small) is None


def test_the_baseline_warns_of_most_faults_days_ahead_and_of_nothing_else(report: LearnedReport) -> None:
    baseline = report.runs["baseline"]
    assert baseline.overall.incidents == 4 and report.devices == 4
    assert baseline.overall.warned >= 2, table_rows(report)
    assert baseline.overall.lead_time_median_h is not None and baseline.overall.lead_time_median_h >= 6
    assert baseline.false_warnings == 0, summary_lines(report)
    assert {f.fault for f in baseline.faults} == FAULTS
    assert report.to_json()["runs"]["baseline"]["overall"]["incidents"] == 4


def test_the_fleet_model_warns_of_a_fault_kind_hours_ahead_and_takes_nothing_from_the_baseline(
    report: LearnedReport,
) -> None:
    """Measured on seed 7 (``forewarn eval``, 5 devices per fault): the fleet model alone warns of
    3 of 5 intermittent connections and 1 of 5 short-cycling compressors. With one device per
    fault it warns of the first connection 27.9 h ahead; the baseline (which now also watches the
    spread of a device's reporting) warns of it 40.2 h ahead, so together they warn as early as
    the earlier of the two, and never of fewer faults than the baseline alone."""
    fleet, both, baseline = (report.runs[r] for r in ("fleet", "both", "baseline"))
    caught = {f.fault for f in fleet.faults if f.warned}
    assert caught, table_rows(report)
    assert "intermittent_connection" in caught, table_rows(report)
    lead = fleet.fault("intermittent_connection").lead_time_median_h
    assert lead is not None and lead >= 6, table_rows(report)
    assert both.overall.warned >= baseline.overall.warned, table_rows(report)
    alone = baseline.fault("intermittent_connection").lead_time_median_h
    together = both.fault("intermittent_connection").lead_time_median_h
    assert together is not None and together >= max(alone or 0.0, lead) - 0.01, table_rows(report)
    assert {f.fault for f in both.faults} == FAULTS


def test_training_never_reads_an_evaluated_device_or_a_fault(report: LearnedReport) -> None:
    training = report.training
    assert training is not None and set(training.models) == {"coldchain", "equipment", "home"}
    evaluated = fault_library(SEED, replicas=1)
    assert training.sources and all(s.fleet_seed != SEED for s in training.sources)
    faulty = [s for s in training.sources if s.fault_start_ms is not None]
    assert faulty and all(s.last_ms < s.fault_start_ms for s in faulty if s.fault_start_ms is not None)
    assert {s.kind for s in training.sources if s.fault_start_ms is None} == set(training.models), "quiet devices too"
    # the readings themselves: none of an evaluated fault's span is in the training history
    spans = {}
    for device in evaluated.devices:
        incident = evaluated.incident(device)
        assert incident is not None
        spans[device.device] = {
            (r.ts_ms, tuple(sorted(r.metrics.items())))
            for r in evaluated.readings(device)
            if r.ts_ms >= incident.precursor_start_ms
        }
    assert all(spans.values())
    seen = {
        (r.ts_ms, tuple(sorted(r.metrics.items())))
        for _, readings in healthy_history(SEED, set(training.models), replicas=1)
        for r in readings
    }
    assert all(not (span & seen) for span in spans.values())


def test_the_evaluated_fleet_is_never_the_training_fleet() -> None:
    with pytest.raises(ValueError, match="seed offset"):
        next(healthy_history(SEED, {"home"}, offset=0))


def test_the_fleet_run_decides_as_a_device_with_its_baseline_configured_away(report: LearnedReport) -> None:
    """The ``fleet`` run's monitor has no detector of its own (it saves a run of the physics):
    what it opens is what the device running its profile without the baseline opens."""
    assert report.training is not None
    faults = fault_library(SEED, replicas=1)
    compared = 0
    for device in faults.devices:
        model = report.training.models[device.kind]
        readings = list(faults.readings(device))
        hot = hot_rows(model, readings, device.device)
        until = faults.span(device).end_ms
        full, _ = monitor_device(
            device, readings, None, until, {LEARNED_RISK: None}, FleetDecider(model, hot, readings, None)
        )
        decider = FleetDecider(model, hot, readings, DeviceMonitor(device.tenant, device.device, device.kind, []))
        monitor_device(device, readings, None, until, after=decider)
        alone = [e for e in decider.alone_events if e.action == "open"]
        expected = [(e.at_ms, e.severity) for e in full if e.action == "open" and e.risk == LEARNED_RISK]
        assert [(e.at_ms, e.severity) for e in alone] == expected, device.device
        compared += len(expected)
    assert compared >= 2


def test_the_rows_scored_are_the_workers(report: LearnedReport) -> None:
    """The worker's ``FleetScorer`` fed the same device reading by reading finds the same rows."""
    assert report.training is not None
    faults = fault_library(SEED, replicas=1)
    device = next(d for d in faults.devices if d.kind == "home")
    model = report.training.models["home"]
    readings = list(faults.readings(device))
    hot = hot_rows(model, readings, device.device)
    scorer = FleetScorer({"home": LoadedModel(model, {"threshold": learned.FLEET_THRESHOLD}, Path("-"))})
    found = []
    for r in readings:
        metrics = {k: float(v) for k, v in r.metrics.items()}
        batch = ReadingsBatch(device.tenant, device.device, "home", (Reading(r.ts_ms, metrics, r.seq),), 0)
        scorer.observe([batch], now=0.0)
        found += [f.ts for f in scorer.score_due(lambda _: None, now=0.0, force=True)]
    assert hot and found == [row.ts for _, row in sorted(hot.items())]


def test_the_model_is_the_one_forewarn_train_fits() -> None:
    defaults = inspect.signature(train.train_kind).parameters
    assert learned.FLEET_THRESHOLD == train.DEFAULT_THRESHOLD == defaults["threshold"].default
    trained = tuple(defaults[p].default for p in ("method", "window_s", "buckets"))
    assert trained == (learned.METHOD, learned.WINDOW_S, learned.BUCKETS)


def test_the_table_has_a_column_per_run_and_the_json_says_what_was_trained(report: LearnedReport) -> None:
    rows = table_rows(report)
    assert rows[-1][0] == "overall" and len(rows) == 5
    assert all(len(row) == len(learned.headers(report)) for row in rows)
    doc = report.to_json()
    assert set(doc["runs"]) == {"baseline", "fleet", "both"}
    assert doc["fleet_training"]["seed"] == SEED + learned.TRAIN_SEED_OFFSET
    assert np.isclose(
        doc["runs"]["fleet"]["false_warnings_per_healthy_device_day"],
        report.runs["fleet"].false_warnings / report.healthy_device_days,
    )
    assert len(summary_lines(report)) == 3


def test_without_the_fleet_model_only_the_baseline_runs() -> None:
    alone = evaluate_learned(SEED, replicas=1, fleet_model=False)
    assert list(alone.runs) == ["baseline"] and alone.training is None
    assert len(table_rows(alone)[0]) == len(learned.headers(alone))
