"""ingest on real Mosquitto and Kafka: good readings become one record per device batch, bad
messages end in forewarn.rejects with their reason, and nothing stops the flow."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from core import bus, db
from core.contract import TOPIC_READINGS, TOPIC_REJECTS, telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port

pytestmark = pytest.mark.integration


async def collect(bootstrap: str, topic: str, want: int, match, timeout: float = 30.0) -> list[dict]:  # type: ignore[no-untyped-def]
    found: list[dict] = []

    async def read() -> None:
        async for record in bus.read_topic(bootstrap, topic):
            doc = orjson.loads(record.value)
            if match(doc):
                found.append(doc)
                if len(found) >= want:
                    return

    try:
        await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        pass
    return found


async def test_good_and_bad_messages(services, ingest_process) -> None:  # type: ignore[no-untyped-def]
    db.add_customer(services.database_url, "ingest-c", "Ingest Test", "en", ["json://127.0.0.1:9/x"], tenant="acme")
    db.add_device(services.database_url, "ingest-d1", "acme", "ingest-c", "home")
    time.sleep(2.5)  # let ingest's registry refresh on the first miss
    now = int(time.time() * 1000)
    topic = telemetry_topic("acme", "ingest-d1")
    publisher = Publisher(*host_port(services.mqtt_url, 1883), client_id="test-ingest-pub")
    publisher.start()
    infos = [
        publisher.publish(topic, b'{"ts": 1, "metrics": {NaN}}'),
        publisher.publish(
            topic,
            orjson.dumps(
                {
                    "batch": [
                        {"ts": now - 2000, "seq": 1, "metrics": {"temp_c": 20.1}},
                        {"ts": now - 1000, "seq": 2, "metrics": {"temp_c": 999}},
                        {"ts": now, "seq": 3, "metrics": {"temp_c": 20.3, "water_leak": False}},
                    ]
                }
            ),
        ),
        publisher.publish(telemetry_topic("acme", "ghost"), orjson.dumps({"ts": now, "metrics": {"temp_c": 1}})),
        publisher.publish(topic, orjson.dumps({"ts": now + 3600_000, "metrics": {"temp_c": 1}})),
    ]
    publisher.flush(infos)
    publisher.stop()
    bootstrap = services.settings.kafka_bootstrap
    rejects = await collect(bootstrap, TOPIC_REJECTS, 4, lambda d: "ingest-d1" in d["topic"] or "ghost" in d["topic"])
    assert sorted(r["reason"] for r in rejects) == ["future_ts", "malformed_json", "out_of_range", "unknown_device"]
    assert all(r["v"] == 1 and r["detail"] for r in rejects)
    readings = await collect(bootstrap, TOPIC_READINGS, 1, lambda d: d["device"] == "ingest-d1")
    assert [r["seq"] for r in readings[0]["readings"]] == [1, 3]
    assert readings[0]["kind"] == "home"
