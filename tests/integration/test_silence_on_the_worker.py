"""A leak sensor that says it is offline reaches its owner's phone as a warning, on real services:
MQTT (retained status) → ingest → Kafka forewarn.status → worker (its silence timer, a tick on
forewarn.ticks) → forewarn.warnings → the customer's channel; its next reading resolves it."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest

from core import db
from core.contract import status_topic, telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port

pytestmark = pytest.mark.integration


def poll(what: str, probe, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(1.0)
        value = probe()
    assert value, f"timed out waiting for {what}"
    return value


def test_an_offline_leak_sensor_warns_its_owner_and_its_next_reading_resolves_it(  # type: ignore[no-untyped-def]
    services, sink, ingest_process, worker_process
) -> None:
    url = services.database_url
    suffix = uuid.uuid4().hex[:6]
    customer, device = f"silent-owner-{suffix}", f"leak-{suffix}"
    db.add_customer(url, customer, "Ms Lin", "en", [sink.url(customer)], tenant="acme")
    db.add_device(url, device, "acme", customer, "home")
    # this sensor's owner wants to know one second after it drops out (the default grace: an hour)
    db.set_detector_params(url, "acme", "home", device, "device_silent", {"offline_grace_s": 1.0})

    publisher = Publisher(*host_port(services.mqtt_url, 1883), client_id=f"leak-sensor-{suffix}")
    publisher.start()
    reading = {"ts": int(time.time() * 1000), "seq": 1, "metrics": {"water_leak": False, "temp_c": 19.5}}
    publisher.flush([publisher.publish(telemetry_topic("acme", device), orjson.dumps(reading))])
    poll("the first reading stored", lambda: db.query(url, "SELECT 1 FROM readings WHERE device = %s", (device,)), 60)
    publisher.flush([publisher.publish(status_topic("acme", device), b"offline", retain=True)])

    def silent_warning() -> list[dict]:
        return db.query(
            url,
            "SELECT id, status, severity FROM warnings WHERE device = %s AND risk = 'device_silent'",
            (device,),
        )

    # the worker's timer looks every 30 s (after a minute's settling when it has just started)
    [row] = poll("the device_silent warning", silent_warning, 180)
    assert row["severity"] == "warning"
    [message] = poll(
        "the message on the owner's phone", lambda: [d for d in sink.received if d.path.strip("/") == customer], 60
    )
    assert message.body.get("title"), message.body

    # readings again: the sensor is back, the warning resolves
    reading = {"ts": int(time.time() * 1000), "seq": 2, "metrics": {"water_leak": False, "temp_c": 19.6}}
    publisher.flush([publisher.publish(telemetry_topic("acme", device), orjson.dumps(reading))])
    publisher.stop()
    poll("the warning resolved", lambda: [r for r in silent_warning() if r["status"] == "resolved"], 60)
