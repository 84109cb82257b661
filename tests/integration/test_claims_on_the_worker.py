"""First notice of loss on real services: a vehicle's crash (an impact, then standing) and a wet
leak sensor, published over MQTT → ingest → Kafka → worker, open a claim notice that reaches the
tenant's claims channel with its reference, and the customer's message gives the same reference.
Replaying the readings, or the warning record itself, opens no second notice and sends nothing
twice. The desk's CLI shows the notice (``forewarn warning show``, ``forewarn claims list``)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import orjson
import pytest
from typer.testing import CliRunner

from core import db
from core.bus import Producer
from core.contract import TOPIC_WARNINGS, WarningEvent, telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port
from forewarn.cli import app as cli

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REF = re.compile(r"FNOL-\d{8}-[0-9A-F]{6,}")


def poll(what: str, probe, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(0.5)
        value = probe()
    assert value, f"timed out waiting for {what}"
    return value


def to(sink, path: str) -> list:  # type: ignore[no-untyped-def]
    return [d for d in sink.received if d.path.strip("/") == path]


def publish_readings(services, tenant: str, device: str, readings: list[dict]) -> None:  # type: ignore[no-untyped-def]
    publisher = Publisher(*host_port(services.mqtt_url, 1883), client_id=f"claims-{uuid.uuid4().hex[:6]}")
    publisher.start()
    try:
        topic = telemetry_topic(tenant, device)
        publisher.flush(
            [
                publisher.publish(topic, orjson.dumps({"batch": readings[i : i + 50]}))
                for i in range(0, len(readings), 50)
            ]
        )
    finally:
        publisher.stop()


def publish_warning(services, event: WarningEvent) -> None:  # type: ignore[no-untyped-def]
    async def send() -> None:
        producer = Producer(services.settings.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC_WARNINGS, event.key, orjson.dumps(event.to_json()))
        finally:
            await producer.stop()

    asyncio.run(send())


@pytest.fixture
def desk(services, monkeypatch):  # type: ignore[no-untyped-def]
    """The CLI, pointed at the test services."""
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: services.settings)
    monkeypatch.setattr("forewarn.desk.get_settings", lambda: services.settings)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def crash_drive(start_ms: int) -> list[dict]:
    """40 s at 70 km/h, the impact (the car stands in the same reading), then 10 s standing."""
    readings = []
    for s in range(40):
        lat, lon = 31.2304 + 0.0002 * s, 121.4737
        metrics = {"speed_kmh": 70.0, "accel_long_g": 0.01, "ignition": True, "lat": lat, "lon": lon}
        readings.append({"ts": start_ms + 1000 * s, "seq": s, "metrics": metrics})
    crash = {
        "impact_g": 19.5,
        "speed_kmh": 0.0,
        "accel_long_g": -2.9,
        "ignition": True,
        "lat": 31.2384,
        "lon": 121.4737,
    }
    readings.append({"ts": start_ms + 40_000, "seq": 40, "metrics": crash})
    for s in range(41, 51):
        metrics = {"speed_kmh": 0.0, "accel_long_g": 0.0, "ignition": True, "lat": 31.2384, "lon": 121.4737}
        readings.append({"ts": start_ms + 1000 * s, "seq": s, "metrics": metrics})
    return readings


def test_a_crash_and_a_leak_open_one_claim_notice_each_for_the_claims_desk_and_the_customer_reads_the_ref(  # type: ignore[no-untyped-def]
    services, sink, ingest_process, worker_process, desk
) -> None:
    url = services.database_url
    tag = uuid.uuid4().hex[:6]
    tenant, customer, car, home = f"fnol-{tag}", f"lin-{tag}", f"car-{tag}", f"home-{tag}"
    db.add_customer(url, customer, "Ms Lin", "en", [sink.url(f"{tag}/phone")], tenant=tenant)
    db.add_device(url, car, tenant, customer, "vehicle")
    db.add_device(url, home, tenant, customer, "home")
    result = desk("tenant", "contacts", tenant, "--role", "claims", "--notify", sink.url(f"{tag}/claims"))
    assert result.exit_code == 0, result.output
    time.sleep(2.5)  # ingest refreshes its registry on the first unknown device

    # a crash: the claims desk hears of it with a reference, the customer reads the same one
    drive = crash_drive(int(time.time() * 1000) - 60_000)
    publish_readings(services, tenant, car, drive)
    [notice] = poll("the claim notice at the claims desk", lambda: to(sink, f"{tag}/claims"), 120)
    ref = REF.search(notice.body["title"]).group(0)
    assert "Vehicle crash" in notice.body["title"] and "Ms Lin" in notice.body["title"]
    assert "19.5 g" in notice.body["message"] and "at 70 km/h" in notice.body["message"]
    assert "31.23840, 121.47370" in notice.body["message"], "where: the position at the crash"
    phone = poll(
        "the customer's message", lambda: [d for d in to(sink, f"{tag}/phone") if ref in d.body["message"]], 30
    )
    assert "Vehicle crash" in phone[0].body["title"] and "claim notice" in phone[0].body["message"]

    [row] = db.query(url, "SELECT * FROM claim_notices WHERE tenant = %s AND device = %s", (tenant, car))
    assert row["ref"] == ref and row["customer_id"] == customer and row["risk"] == "vehicle_crash"
    assert int(row["opened_at"].timestamp() * 1000) == drive[40]["ts"]
    series = row["readings"]["series"]
    assert series["impact_g"] == [[drive[40]["ts"], 19.5]], "the readings around it, read from the database"
    assert len(series["speed_kmh"]) == 41, "the 40 s before the crash and the crash itself"
    [warning] = db.query(
        url, "SELECT id::text AS id FROM warnings WHERE device = %s AND risk = 'vehicle_crash'", (car,)
    )
    assert row["warning_id"] == uuid.UUID(warning["id"])

    # a wet leak sensor at home: a loss under way too
    publish_readings(
        services,
        tenant,
        home,
        [{"ts": int(time.time() * 1000), "seq": 1, "metrics": {"water_leak": True, "temp_c": 19.0}}],
    )
    leak = poll(
        "the leak's claim notice", lambda: [d for d in to(sink, f"{tag}/claims") if "Water leak" in d.body["title"]], 60
    )[0]
    leak_ref = REF.search(leak.body["title"]).group(0)
    assert leak_ref != ref and "not reported by the device" in leak.body["message"]
    poll(
        "the leak message with its ref",
        lambda: [d for d in to(sink, f"{tag}/phone") if leak_ref in d.body["message"]],
        30,
    )

    # replays: the same readings again, and the crash's warning record itself
    publish_readings(services, tenant, car, drive)
    opened = db.query(url, "SELECT * FROM warnings WHERE id = %s", (warning["id"],))[0]
    replayed = WarningEvent(
        warning_id=warning["id"],
        tenant=tenant,
        device=car,
        kind="vehicle",
        risk="vehicle_crash",
        action="open",
        severity="critical",
        score=1.0,
        at_ms=drive[40]["ts"],
        opened_at_ms=drive[40]["ts"],
        predicted_loss_at_ms=drive[40]["ts"],
        evidence=dict(opened["evidence"]),
    )
    publish_warning(services, replayed)
    time.sleep(8)  # the worker has long handled both replays by then (a first message took < 2 s)
    assert db.query(url, "SELECT count(*) AS n FROM claim_notices WHERE tenant = %s", (tenant,))[0]["n"] == 2
    assert len(to(sink, f"{tag}/claims")) == 2, "one message per notice, whatever is replayed"
    assert len([d for d in to(sink, f"{tag}/phone") if ref in d.body["message"]]) == 1

    # the desk
    shown = desk("warning", "show", warning["id"])
    assert shown.exit_code == 0, shown.output
    assert f"claim notice: {ref}" in shown.output
    listed = desk("claims", "list", tenant)
    assert listed.exit_code == 0, listed.output
    assert ref in listed.output and leak_ref in listed.output and warning["id"] in listed.output
