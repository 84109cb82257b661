"""Health means progress: table of status documents → healthy or the reason why not."""

import json

import pytest
from typer.testing import CliRunner

from core.readiness import StatusFile, health, read_status
from forewarn.cli import app

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("doc", "unhealthy"),
    [
        (None, "no status reported"),
        ({"ready": False, "at": NOW}, "not ready yet"),
        ({"ready": True, "at": NOW, "stopped": True}, "stopped"),
        ({"ready": True, "at": NOW - 120}, "no report for 120 s"),
        ({"ready": True, "at": NOW, "pending": 0, "progress_at": NOW - 600}, None),  # idle is healthy
        ({"ready": True, "at": NOW, "pending": 5, "progress_at": NOW - 30}, None),
        ({"ready": True, "at": NOW, "pending": 5, "progress_at": NOW - 90}, "holds 5 unmoved for 90 s"),
        (
            {"ready": True, "at": NOW, "pending": 40, "behind": 40, "progress_at": NOW - 90},
            "holds 40 unmoved for 90 s, 40 of them waiting on Kafka",
        ),
    ],
)
def test_health_of_a_status(doc, unhealthy):
    why = health(doc, NOW, stall_s=60)
    if unhealthy is None:
        assert why is None
    else:
        assert why is not None and unhealthy in why


def test_work_reports_progress_only_when_work_moved(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    status = StatusFile(path)
    status.mark_ready()
    clock = iter([100.0, 200.0, 300.0])
    monkeypatch.setattr("core.readiness.time.time", lambda: next(clock))
    status.work(pending=3, moved=1)  # progress at 100, written at 200
    status.work(pending=3, moved=0)  # stuck: progress stays at 100
    doc = read_status(path)
    assert doc["pending"] == 3 and doc["progress_at"] == 100.0 and doc["at"] == 300.0


def test_health_command_exits_1_with_the_reason(tmp_path):
    path = tmp_path / "worker.status.json"
    runner = CliRunner()
    result = runner.invoke(app, ["health", str(path)])
    assert result.exit_code == 1 and "no status reported" in result.output
    path.write_text(json.dumps({"pid": 1, "ready": True, "at": 1e12, "pending": 0}))
    result = runner.invoke(app, ["health", str(path), "--stall-s", "30"])
    assert result.exit_code == 0 and "healthy" in result.output
