"""ingest killed mid-stream loses nothing: the broker keeps the durable session's
unacknowledged and queued messages, and a restarted ingest with the same client id gets them."""

from __future__ import annotations

import signal
import time
import uuid

import orjson
import pytest

from core import db
from core.contract import telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port
from forewarn.children import spawn
from forewarn.launcher import LocalStack, start_mosquitto

pytestmark = pytest.mark.integration

MESSAGES = 3000


def test_a_killed_ingest_loses_no_accepted_reading(services, worker_process, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = services.database_url
    db.add_customer(url, "crash-c", "Crash Test", "en", ["json://127.0.0.1:9/x"], tenant="acme")
    db.add_device(url, "crash-d", "acme", "crash-c", "equipment")
    broker = start_mosquitto(log_dir=tmp_path)  # a broker of its own: this ingest is its only subscriber
    mqtt_url = broker.url
    env = {
        **services.env,
        "FOREWARN_MQTT_URL": mqtt_url,
        "FOREWARN_INGEST_CLIENT_ID": f"crash-ingest-{uuid.uuid4().hex[:6]}",
    }
    ingest = spawn("ingest", ["ingest"], env, tmp_path / "ingest-1.log").ready(60)

    publisher = Publisher(*host_port(mqtt_url, 1883), client_id="crash-pub")
    publisher.start()
    now = int(time.time() * 1000) - MESSAGES * 1000
    topic = telemetry_topic("acme", "crash-d")
    infos = []
    for i in range(MESSAGES):
        payload = {"ts": now + i * 1000, "seq": i, "metrics": {"vibration_mm_s": 2.0, "current_a": 10.0}}
        infos.append(publisher.publish(topic, orjson.dumps(payload)))
        if i == MESSAGES // 3:
            ingest.proc.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
            ingest.proc.wait(10)
    publisher.flush(infos)
    publisher.stop()

    restarted = spawn("ingest", ["ingest"], env, tmp_path / "ingest-2.log")
    try:
        restarted.ready(60)
        deadline = time.monotonic() + 90
        stored = 0
        while time.monotonic() < deadline:
            stored = db.query(url, "SELECT count(*) AS n FROM readings WHERE device = 'crash-d'")[0]["n"]
            if stored >= 2 * MESSAGES:
                break
            time.sleep(1)
        assert stored == 2 * MESSAGES, f"{stored} of {2 * MESSAGES} values stored after the crash"
    finally:
        restarted.stop()
        LocalStack("", "", "", [broker]).stop()
