"""The worker's fleet scoring (streams.fleet) and the artefact ``forewarn train`` writes
(forewarn.train), without a database: the readings come from the simulator."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from core.contract import Reading, ReadingsBatch
from detectors.fleet import feature_names
from forewarn import train
from notifiers.catalog import METRIC_LABELS
from notifiers.render import render_warning
from simulator.equipment import BearingWearFault, EquipmentParams, simulate_equipment
from simulator.signals import Span
from streams.decisions import DeviceMonitor
from streams.fleet import FleetModelError, FleetScorer, finding_of, load_model, newest_manifests, open_severity

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
HOURS = 24


def _pump(seed: int, wear: BearingWearFault | None = None) -> list[Reading]:
    rng = np.random.default_rng(seed)
    params = EquipmentParams(rated_current_a=float(rng.uniform(40, 120)), pressure_kpa=float(rng.uniform(350, 650)))
    trace = simulate_equipment(seed, Span(START_MS, HOURS * 3600.0), params, wear)
    names = list(trace.metrics)
    columns = [trace.metrics[n].tolist() for n in names]
    return [
        Reading(int(ts), {n: c[i] for n, c in zip(names, columns, strict=True) if not math.isnan(c[i])}, i)
        for i, ts in enumerate(trace.ts_ms.tolist())
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[train.TrainReport, Path]:
    """Six normal pumps 'stored', trained by forewarn.train with the database calls replaced."""
    fleet = {f"pump-{k}": _pump(k) for k in range(1, 7)}

    def kind_readings(url: str, kind: str, **_: object) -> Iterator[tuple[str, str, Reading]]:
        assert kind == "equipment"
        for device, readings in sorted(fleet.items()):
            for r in readings:
                yield "plant", device, r

    def score_targets(url: str, tenant: str | None = None) -> list[dict[str, str]]:
        return [{"tenant": "plant", "device": d, "kind": "equipment"} for d in fleet] + [
            {"tenant": "plant", "device": "car", "kind": "vehicle"}
        ]

    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train.db, "kind_readings", kind_readings)
        mp.setattr(train.db, "score_targets", score_targets)
        seen: list[tuple[int, int, str]] = []
        report = train.train_kind("postgresql://unused", "equipment", folder, progress=lambda *a: seen.append(a))
    assert seen[-1] == (6, 6, "plant/pump-6")  # progress per device, out of the kind's devices
    return report, folder


def test_the_manifest_describes_the_model_its_data_and_its_validation(trained) -> None:  # type: ignore[no-untyped-def]
    report, folder = trained
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest == report.manifest
    assert manifest["kind"] == "equipment" and manifest["method"] == "pca"
    assert manifest["metrics"] == ["bearing_temp_c", "current_a", "pressure_kpa", "rssi_dbm", "vibration_mm_s"]
    assert manifest["feature_names"] == feature_names(manifest["metrics"])
    data = manifest["data"]
    assert (data["devices"], data["readings"]) == (6, 6 * (HOURS * 60 + 1))
    assert data["first_ts"] == "2026-01-01T00:00:00Z" and data["last_ts"] == "2026-01-02T00:00:00Z"
    assert data["train_rows"] + data["holdout_rows"] == data["rows"] > 0
    assert datetime.fromisoformat(data["holdout_from"]) > datetime.fromisoformat(data["first_ts"])
    assert set(manifest["libraries"]) == {"python", "scikit-learn", "numpy", "skops"}
    v = manifest["validation"]
    assert v["rows"] == data["holdout_rows"] and 0.0 <= v["share_at_or_above_threshold"] <= 1.0
    assert v["synthetic_shift_auc"] > 0.8  # one metric moved 6 robust sd: the model sees it
    assert manifest["model_version"].endswith(manifest["sha256"][:12])
    assert manifest["file"] == report.model_path.name and report.model_path.parent == folder
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None


def test_the_worker_loads_the_newest_model_and_refuses_a_changed_file(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report, folder = trained
    assert newest_manifests(folder) == {"equipment": report.manifest_path}
    assert load_model(report.manifest_path).manifest["sha256"] == report.manifest["sha256"]
    copy = tmp_path / report.model_path.name
    copy.write_bytes(report.model_path.read_bytes()[:-1] + b"x")
    (tmp_path / report.manifest_path.name).write_text(report.manifest_path.read_text())
    with pytest.raises(FleetModelError, match="SHA-256"):
        load_model(tmp_path / report.manifest_path.name)
    assert not FleetScorer.from_dir(tmp_path).enabled  # logged and left out
    assert not FleetScorer.from_dir("").enabled


def test_the_worker_scores_queued_rows_in_one_batch_and_flags_the_failing_pump(trained) -> None:  # type: ignore[no-untyped-def]
    _, folder = trained
    scorer = FleetScorer.from_dir(folder, batch_rows=100_000, max_wait_s=60.0)
    wear = BearingWearFault(onset_s=3 * 3600.0, fail_at_s=23 * 3600.0)
    devices = {"plant/pump-9": _pump(9), "plant/pump-bad": _pump(10, wear)}
    for start in range(0, HOURS * 60, 500):  # records of up to 500 readings, as Kafka brings them
        batches = [
            ReadingsBatch("plant", key.split("/")[1], "equipment", tuple(rs[start : start + 500]), 0)
            for key, rs in devices.items()
        ]
        scorer.observe([*batches, ReadingsBatch("plant", "car", "vehicle", (Reading(START_MS, {"speed_kmh": 1}),), 0)])
    assert scorer.queued > 200 and scorer.score_due(lambda key: None, now=0.0) == []  # not due yet
    findings = scorer.score_due(lambda key: "warning" if key == "plant/pump-bad" else None, force=True)
    assert scorer.queued == 0 and scorer.scored > 200
    bad = [f for f in findings if f.key == "plant/pump-bad"]
    assert len(bad) > 3 * len([f for f in findings if f.key == "plant/pump-9"])
    assert all(f.severity == "warning" and f.corroborated for f in bad)
    assert bad[-1].unusual[0].metric in ("vibration_mm_s", "bearing_temp_c")


def test_open_severity_is_the_strongest_open_warning() -> None:
    monitor = DeviceMonitor("t", "home-1", "home")
    assert open_severity(None) is None and open_severity(monitor) is None
    monitor.observe(Reading(START_MS, {"water_leak": 1.0}))
    assert open_severity(monitor) == "critical"


def test_a_fleet_finding_is_one_advisory_warning_naming_the_metrics_most_unusual(trained) -> None:  # type: ignore[no-untyped-def]
    """The failing pump's fleet findings, decided by its monitor: one ``unusual_reading`` warning
    (advisory: no physical rule is open), kept open by the findings after it, whose message says
    which metrics behave unlike the fleet, in both languages."""
    _, folder = trained
    scorer = FleetScorer.from_dir(folder, batch_rows=100_000, max_wait_s=60.0)
    wear = BearingWearFault(onset_s=3 * 3600.0, fail_at_s=23 * 3600.0)
    readings = _pump(10, wear)
    scorer.observe([ReadingsBatch("plant", "pump-bad", "equipment", tuple(readings), 0)])
    monitor = DeviceMonitor("plant", "pump-bad", "equipment", detectors=[])
    findings = scorer.score_due(lambda key: open_severity(monitor), force=True)
    assert len(findings) > 3
    events = [e for f in findings for e in monitor.consider(finding_of(f), int(f.ts * 1000))]
    assert [(e.action, e.risk, e.severity) for e in events] == [("open", "unusual_reading", "advisory")]
    assert open_severity(monitor) is None, "the learned warning is no physical rule's: it corroborates nothing"
    [event] = events
    assert event.evidence["triggers"] == ["fleet"] and event.evidence["corroborated"] is False
    first = event.evidence["unusual_metrics"][0]
    for locale in ("zh-CN", "en"):
        message = render_warning(event, locale, "Plant")
        label = METRIC_LABELS[locale][first][0]
        assert label in message.body, message.body
        assert ("同类设备" if locale == "zh-CN" else "devices of its kind") in message.body
