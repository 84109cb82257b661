"""``forewarn train`` on the real PostgreSQL: a few simulated pumps' readings are stored, the
command reads them back through a server-side cursor, writes a model and its manifest, and
the worker's loader takes the model and scores with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from core import db
from core.contract import Reading, ReadingsBatch
from core.settings import Settings
from detectors.fleet import feature_names
from forewarn.cli import app
from simulator.equipment import EquipmentParams, simulate_equipment
from simulator.signals import Span
from streams.fleet import FleetScorer

pytestmark = pytest.mark.integration

TENANT = "fleettrain"
START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
HOURS = 10


def _pump_readings(seed: int) -> list[Reading]:
    params = EquipmentParams(rated_current_a=40.0 + 10 * seed, pressure_kpa=400.0 + 20 * seed)
    trace = simulate_equipment(seed, Span(START_MS, HOURS * 3600.0), params)
    names = list(trace.metrics)
    columns = [trace.metrics[n].tolist() for n in names]
    return [
        Reading(int(ts), {n: c[i] for n, c in zip(names, columns, strict=True) if not math.isnan(c[i])}, i)
        for i, ts in enumerate(trace.ts_ms.tolist())
    ]


async def _store(url: str, device: str, readings: list[Reading]) -> None:
    store = db.Store(url)
    await store.open()
    try:
        for i in range(0, len(readings), 500):
            part = tuple(readings[i : i + 500])
            await store.store_readings([ReadingsBatch(TENANT, device, "equipment", part, part[-1].ts)])
    finally:
        await store.close()


async def test_train_reads_the_stored_fleet_and_writes_a_model_the_worker_loads(  # type: ignore[no-untyped-def]
    services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = services.database_url
    db.add_customer(url, "plant-owner", "Plant Owner", "en", ["json://127.0.0.1:1/x"], tenant=TENANT)
    stored = 0
    for k in range(4):
        device = f"pump-{k}"
        db.add_device(url, device, TENANT, "plant-owner", "equipment")
        readings = _pump_readings(k + 1)
        await _store(url, device, readings)
        stored += len(readings)
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: Settings(database_url=url, state_dir=str(tmp_path)))

    result = CliRunner().invoke(
        app, ["train", "--kind", "equipment", "--tenant", TENANT, "--out", str(tmp_path / "models")]
    )

    assert result.exit_code == 0, result.output
    manifests = list((tmp_path / "models").glob("fleet-equipment-*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["kind"] == "equipment"
    assert manifest["data"]["devices"] == 4
    assert manifest["data"]["readings"] == stored
    assert manifest["data"]["first_ts"] == "2026-01-01T00:00:00Z"
    assert manifest["metrics"] == ["bearing_temp_c", "current_a", "pressure_kpa", "rssi_dbm", "vibration_mm_s"]
    assert manifest["feature_names"] == feature_names(manifest["metrics"])
    assert manifest["data"]["train_rows"] + manifest["data"]["holdout_rows"] == manifest["data"]["rows"]
    assert manifest["validation"]["rows"] == manifest["data"]["holdout_rows"] > 0
    assert set(manifest["libraries"]) == {"python", "scikit-learn", "numpy", "skops"}
    assert manifest["model_version"] in result.output

    scorer = FleetScorer.from_dir(tmp_path / "models", max_wait_s=0.0)
    assert scorer.enabled and scorer.models["equipment"].manifest["sha256"] == manifest["sha256"]
    readings = _pump_readings(2)
    scorer.observe([ReadingsBatch(TENANT, "pump-1", "equipment", tuple(readings), readings[-1].ts)], now=0.0)
    assert scorer.queued > 0
    scorer.score_due(lambda key: None, now=1.0)
    assert scorer.scored > 0 and scorer.queued == 0
    scores, _ = scorer.models["equipment"].model.score_many(np.zeros((1, len(manifest["feature_names"]))))
    assert 0.0 <= float(scores[0]) <= 1.0
