"""Risk scores from stored data: two vehicles' days of readings and a home's warnings go into
PostgreSQL, the daily recompute scores them, and the scores read back are the ones the same
data gives in memory."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from core import db
from core.contract import Reading, ReadingsBatch
from core.localtime import zone
from core.settings import Settings
from scores import daily
from scores.features import driver_features
from scores.model import driver_score, score_json
from simulator.signals import Span
from simulator.vehicle import simulate_driver

pytestmark = pytest.mark.integration

TENANT = "scoring"
TZ = "Asia/Shanghai"
DAYS = 3


def _readings(driver_type: str, seed: int, start_ms: int) -> list[Reading]:
    trace = simulate_driver(driver_type, np.random.SeedSequence(seed), Span(start_ms, DAYS * 86_400.0))
    names = [*daily.DRIVING_METRICS, "battery_v"]  # battery_v: stored, and not read by the score
    columns = [trace.metrics[n].tolist() for n in names]
    return [
        Reading(int(ts), {n: c[i] for n, c in zip(names, columns, strict=True) if not math.isnan(c[i])}, i)
        for i, ts in enumerate(trace.ts_ms.tolist())
    ]


async def _store(url: str, device: str, kind: str, readings: list[Reading]) -> None:
    store = db.Store(url)
    await store.open()
    try:
        for i in range(0, len(readings), 2000):
            part = tuple(readings[i : i + 2000])
            await store.store_readings([ReadingsBatch(TENANT, device, kind, part, part[-1].ts)])
    finally:
        await store.close()


async def test_the_daily_recompute_scores_stored_vehicles_and_homes_and_reads_them_back(services) -> None:  # type: ignore[no-untyped-def]
    url = services.database_url
    tz = zone(TZ)
    today = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=DAYS)  # three whole local days, the last one yesterday
    day = (today - timedelta(days=1)).date()
    start_ms = int(first.timestamp() * 1000)
    db.add_customer(url, "fleet-owner", "Fleet Owner", "en", ["json://127.0.0.1:1/x"], tenant=TENANT)
    in_memory = {}
    for device, driver_type, seed in (("van-calm", "calm", 21), ("van-wild", "aggressive", 21)):
        db.add_device(url, device, TENANT, "fleet-owner", "vehicle")
        readings = _readings(driver_type, seed, start_ms)
        await _store(url, device, "vehicle", readings)
        in_memory[device] = driver_score(driver_features(readings, tz))
    db.add_device(url, "flat-1", TENANT, "fleet-owner", "home")
    await _store(url, "flat-1", "home", [Reading(start_ms + k * 3_600_000, {"pipe_temp_c": 6.0}, k) for k in range(48)])
    opened = first + timedelta(days=1, hours=3)
    with psycopg.connect(url, autocommit=True) as conn:
        for risk, severity, at, resolved in (
            ("freeze_risk", "warning", opened, opened + timedelta(hours=5)),
            ("water_leak", "critical", opened + timedelta(hours=4), opened + timedelta(hours=5)),
            ("sensor_stuck", "advisory", opened + timedelta(days=1), None),
        ):
            conn.execute(
                "INSERT INTO warnings (id, tenant, device, risk, severity, status, score, opened_at, resolved_at)"
                " VALUES (%s, %s, 'flat-1', %s, %s, %s, 0.9, %s, %s)",
                (uuid.uuid4(), TENANT, risk, severity, "resolved" if resolved else "open", at, resolved),
            )

    progress: list[str] = []
    report = daily.recompute(url, day, tenant=TENANT, timezone=TZ, progress=lambda i, n, key: progress.append(key))
    # the session's worker runs this same recompute on its daily timer (any tenant): it may have
    # scored some of these devices first, which leaves them unchanged here
    assert (report.devices, report.written + report.unchanged, report.failed, report.busy) == (3, 3, [], False)
    assert progress == [f"{TENANT}/flat-1", f"{TENANT}/van-calm", f"{TENANT}/van-wild"]

    rows = {r["device"]: r for r in daily.stored_scores(url, TENANT)}
    assert set(rows) == {"flat-1", "van-calm", "van-wild"} and {r["day"] for r in rows.values()} == {day}
    calm, wild, flat = rows["van-calm"], rows["van-wild"], rows["flat-1"]
    assert wild["score"] >= calm["score"] + 25 and wild["grade"] in ("C", "D", "E") and calm["grade"] == "A"
    for device in ("van-calm", "van-wild"):  # from the database = from memory, to the byte
        stored = {k: rows[device][k] for k in ("kind", "grade", "version", "factors", "basis")}
        stored["value"] = rows[device]["score"]
        assert json.dumps(stored, sort_keys=True) == json.dumps(
            {k: v for k, v in json.loads(score_json(in_memory[device])).items()}, sort_keys=True
        )
    points = {f["name"]: f["points"] for f in flat["factors"]}
    assert flat["kind"] == "property" and points["freeze_exposure"] == 5.0 and points["sensor_health"] > 0
    assert points["past_warnings"] > 0 and points["open_warnings"] == 0.0  # a stuck sensor is health
    assert flat["score"] == pytest.approx(sum(points.values()), abs=1e-9)

    again = daily.recompute(url, day, tenant=TENANT, timezone=TZ)  # idempotent: nothing changes
    assert (again.devices, again.written, again.unchanged) == (3, 0, 3)
    assert daily.recompute(url, day, tenant=TENANT, timezone=TZ, only_missing=True).devices == 0
    beyond = daily.recompute(url, day, tenant=TENANT, timezone=TZ, retention_days=7)  # readings dropped: keep
    assert (beyond.kept_stored, beyond.devices) == (True, 0)
    assert {r["computed_at"] for r in daily.stored_scores(url, TENANT)} == {r["computed_at"] for r in rows.values()}

    with db.session(url) as other, db.scores_lock(other) as held:  # another recompute running
        assert held and daily.recompute(url, day, tenant=TENANT, timezone=TZ).busy

    # what the worker's daily timer runs, as a child process
    env = {**services.env, "FOREWARN_TIMEZONE": TZ}
    child = subprocess.run(
        [sys.executable, "-m", "scores.daily", day.isoformat()], env=env, capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert f"risk scores for {day}" in child.stderr


def test_scores_show_prints_the_factor_table(services, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from forewarn.cli import app

    url = services.database_url
    monkeypatch.setattr("forewarn.scores_cli.get_settings", lambda: Settings(database_url=url, timezone=TZ))
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    db.add_customer(url, "owner-2", "Owner", "en", ["json://127.0.0.1:1/x"], tenant="showing")
    db.add_device(url, "car-1", "showing", "owner-2", "vehicle")
    runner = CliRunner()
    computed = runner.invoke(app, ["scores", "compute", "--tenant", "showing", "--day", day.isoformat()])
    assert computed.exit_code == 0, computed.output
    assert "1 devices scored, 1 new or changed" in computed.output and "grades -" in computed.output
    shown = runner.invoke(app, ["scores", "show", "--tenant", "showing", "--device", "car-1"])
    assert shown.exit_code == 0, shown.output
    for word in ("driver score 0.0", "grade -", "harsh_braking", "fatigue", "weight", "total"):
        assert word in shown.output
    listed = runner.invoke(app, ["scores", "show", "--tenant", "showing"])
    assert listed.exit_code == 0 and "car-1" in listed.output
    missing = runner.invoke(app, ["scores", "show", "--tenant", "nobody-here"])
    assert missing.exit_code == 2 and "forewarn scores compute" in missing.output
