"""The whole path on real components: simulator → MQTT → ingest → Kafka → worker →
PostgreSQL, and warnings delivered to the customers' channels through apprise json:// URLs;
a malformed message ends in forewarn.rejects without disturbing the rest."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from core import bus, db
from core.contract import TOPIC_REJECTS, telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port
from forewarn.publish import publish_fleet, register_fleet
from simulator.fleet import demo_fleet
from simulator.wire import to_payload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

HOURS = 12.0
WALL_SECONDS = 25.0


def poll(what: str, probe, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(1.0)
        value = probe()
    assert value, f"timed out waiting for {what}"
    return value


def test_a_simulated_fleet_is_warned_before_the_loss(services, sink, ingest_process, worker_process) -> None:  # type: ignore[no-untyped-def]
    url = services.database_url
    now = int(time.time() * 1000)
    start = now - int(HOURS * 3600_000)
    fleet = demo_fleet(11, start_ms=start, duration_s=HOURS * 3600)
    freeze = next(i for i in fleet.incidents if "freeze_risk" in i.risks)
    braking = next(i for i in fleet.incidents if "harsh_braking" in i.risks)
    owner_of_freeze = fleet.customer(freeze.device).id
    # every customer has a working channel; the frozen pipe's owner's first channel is broken
    # (HTTP 500): it is retried, then the message falls back to the working one
    register_fleet(
        url,
        fleet,
        lambda c: ([sink.url("broken/" + c.id)] if c.id == owner_of_freeze else []) + [sink.url(c.id)],
    )
    time.sleep(2.5)  # ingest refreshes its registry on the first unknown device

    # a malformed message in the middle of the traffic
    publisher = Publisher(*host_port(services.mqtt_url, 1883), client_id="e2e-garbage")
    publisher.start()
    device = fleet.devices[0]
    publisher.flush([publisher.publish(telemetry_topic(device.tenant, device.device), b'{"ts": oops')])
    publisher.stop()

    stats = publish_fleet(services.mqtt_url, fleet, start, HOURS, HOURS * 60 / WALL_SECONDS, garbage=0.0)
    expected = {(r.device.device, metric, r.ts_ms) for r in fleet.merged() for metric in r.metrics}
    assert stats.readings > 1000

    devices = [d.device for d in fleet.devices]

    def stored() -> bool:
        n = db.query(url, "SELECT count(*) AS n FROM readings WHERE device = ANY(%s)", (devices,))[0]["n"]
        return n == len(expected)

    poll(f"{len(expected)} readings stored exactly once", stored, 90)

    def warned(incident):  # type: ignore[no-untyped-def]
        return lambda: db.query(
            url,
            "SELECT w.id, w.opened_at, w.predicted_loss_at, w.status FROM warnings w"
            " WHERE w.device = %s AND w.risk = ANY(%s) ORDER BY opened_at",
            (incident.device, list(incident.risks)),
        )

    freeze_rows = poll("a freeze warning", warned(freeze), 60)
    braking_rows = poll("a harsh-braking warning", warned(braking), 60)
    opened_ms = freeze_rows[0]["opened_at"].timestamp() * 1000
    assert opened_ms < freeze.loss_at_ms, "the freeze warning must come before the pipe freezes"
    assert freeze_rows[0]["predicted_loss_at"] is not None
    assert braking_rows

    def delivered_to(incident):  # type: ignore[no-untyped-def]
        owner = fleet.customer(incident.device).id
        return lambda: [d for d in sink.received if d.path.strip("/") == owner]

    freeze_msgs = poll("the freeze warning on the customer's phone", delivered_to(freeze), 30)
    assert any(
        ("水管冻裂" in m.body.get("title", "")) or ("Frozen pipe" in m.body.get("title", "")) for m in freeze_msgs
    )
    poll("the braking warning on the driver's phone", delivered_to(braking), 30)

    rows = db.query(url, "SELECT status, error, channel FROM deliveries")
    assert any(r["status"] == "sent" for r in rows)
    broken = [r for r in rows if "broken" in r["channel"]]
    assert broken and all(r["status"] == "failed" and r["error"] for r in broken), "a failing channel is recorded"
    attempts = db.query(
        url,
        "SELECT count(*) AS n FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE d.channel LIKE %s AND NOT a.ok",
        ("%broken%",),
    )[0]["n"]
    assert attempts == 3 * len(broken), "every attempt is a row: the first and two retries per message"

    async def rejected() -> list[dict]:
        found = []

        async def read() -> None:
            async for record in bus.read_topic(services.settings.kafka_bootstrap, TOPIC_REJECTS):
                doc = orjson.loads(record.value)
                if doc["topic"].endswith(f"/{device.device}/telemetry") and doc["payload"] == '{"ts": oops':
                    found.append(doc)
                    return

        try:
            await asyncio.wait_for(read(), 20)
        except TimeoutError:
            pass
        return found

    rejects = asyncio.run(rejected())
    assert [r["reason"] for r in rejects] == ["malformed_json"]

    # every message on a phone has exactly one 'sent' delivery record
    sent_before = len(sink.received)
    assert db.query(url, "SELECT count(*) AS n FROM deliveries WHERE status = 'sent'")[0]["n"] == sent_before

    # a device that resends its whole history (at-least-once upstream) changes nothing
    replayed = [r for r in fleet.merged() if r.device.device == braking.device]
    publisher = Publisher(*host_port(services.mqtt_url, 1883), client_id="e2e-replay")
    publisher.start()
    topic = telemetry_topic("demo", braking.device)
    # 500 readings a message: 1,000 of this vehicle's readings are over the contract's 256 KiB,
    # and the broker disconnects a client that sends a packet over its cap
    infos = [publisher.publish(topic, to_payload(replayed[i : i + 500])) for i in range(0, len(replayed), 500)]
    # then one new reading: once it is stored, the replay before it (same partition) was processed
    sentinel_ts = int(time.time() * 1000)
    sentinel = {"ts": sentinel_ts, "seq": 10**9, "metrics": {"speed_kmh": 0.0}}
    infos.append(publisher.publish(topic, orjson.dumps(sentinel)))
    publisher.flush(infos)
    publisher.stop()
    poll(
        "the sentinel reading after the replay",
        lambda: db.query(url, "SELECT 1 FROM readings WHERE device = %s AND seq = %s", (braking.device, 10**9)),
        60,
    )
    time.sleep(3)  # the notifying agent runs behind the storing one
    count = "SELECT count(*) AS n FROM readings WHERE device = ANY(%s)"
    assert db.query(url, count, (devices,))[0]["n"] == len(expected) + 1
    assert len(sink.received) == sent_before, "a replay must not notify anyone twice"
