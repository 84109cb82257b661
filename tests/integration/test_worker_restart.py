"""A worker killed with an open warning comes back with its state from the Kafka changelog:
the warning stays open, nothing is sent twice, and the readings sent meanwhile are stored.

(Runs last among the integration tests: it kills the session's worker.)"""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from core import db
from core.contract import telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port
from forewarn.children import Child, spawn

pytestmark = pytest.mark.integration


def leak_readings(publisher: Publisher, start_ms: int, seqs: range) -> None:
    topic = telemetry_topic("acme", "restart-home")
    publisher.flush(
        [
            publisher.publish(
                topic,
                orjson.dumps({"ts": start_ms + s * 60_000, "seq": s, "metrics": {"water_leak": True, "flow_lpm": 4.0}}),
            )
            for s in seqs
        ]
    )


def scored(worker: Child) -> int:
    """Batches scored, from the worker's status file (reported every 15 s)."""
    return int(worker.status().get("batches_scored", 0))


def wait(what: str, probe, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_state_survives_a_worker_crash(services, sink, ingest_process, worker_process, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = services.database_url
    db.add_customer(url, "restart-c", "Restart Test", "en", [sink.url("restart-c")], tenant="acme")
    db.add_device(url, "restart-home", "acme", "restart-c", "home")
    time.sleep(2.5)  # ingest refreshes its registry on the first unknown device
    mine = lambda: [d for d in sink.received if d.path.strip("/") == "restart-c"]  # noqa: E731
    stored = lambda: db.query(url, "SELECT count(*) AS n FROM readings WHERE device = 'restart-home'")[0]["n"]  # noqa: E731

    publisher = Publisher(*host_port(services.mqtt_url, 1883), client_id="restart-pub")
    publisher.start()
    start = int(time.time() * 1000) - 3600_000
    leak_readings(publisher, start, range(0, 5))
    wait("the leak warning on the phone", lambda: len(mine()) == 1, 60)
    time.sleep(5)  # let the worker commit offsets and flush its changelog

    session_worker = worker_process.unsupervised()  # killed for good: this test starts its own
    session_worker.proc.send_signal(signal.SIGKILL)
    session_worker.proc.wait(10)
    leak_readings(publisher, start, range(5, 20))  # the leak goes on while the worker is down
    publisher.stop()

    restarted = spawn("worker", ["worker"], services.env, tmp_path / "worker-2.log")
    try:
        restarted.ready(150)
        wait("the readings sent during the outage", lambda: stored() == 20 * 2, 90)
        # the restarted worker did score the new readings (with the state it recovered) …
        wait("the restarted worker to score the outage's readings", lambda: scored(restarted) >= 1, 60)
        time.sleep(3)  # … and its notifier had time to act on them
        assert len(mine()) == 1, "the open warning must not be sent again after a restart"
        rows = db.query(url, "SELECT status FROM warnings WHERE device = 'restart-home'")
        assert [r["status"] for r in rows] == ["notified"]
    finally:
        restarted.stop()
