"""Devices are who they say they are: per-device credentials and ACLs on a real private Mosquitto.

The credentials are issued with the CLI as an operator would (``forewarn device credentials``,
``device add --credentials``), the broker's files written with ``forewarn mqtt files``, and a
Mosquitto started by the launcher with them (``start_mosquitto(auth=…)``). Every verdict is the
broker's own: CONNACK and PUBACK reason codes over MQTT 5, and what a subscriber (ingest's user)
actually receives.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core import db
from core.contract import MAX_PAYLOAD_BYTES, STATUS_FILTER, TELEMETRY_FILTER
from core.mqttauth import MAX_PACKET_BYTES
from forewarn import launcher

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87
PACKET_TOO_LARGE = 0x95
ACCEPTED = {0x00, 0x10}  # success / no matching subscribers (accepted all the same)
REFUSED_LOGIN = {0x86, 0x87}  # bad user name or password / not authorized: Mosquitto 2.0 answers 0x87
INGEST_PASSWORD = uuid.uuid4().hex
HEALTH_PASSWORD = uuid.uuid4().hex
TENANTS = ("acme", "beta")


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "forewarn.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"forewarn {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def password_of(output: str) -> str:
    found = re.search(r"password\s+(\S+)", output)
    assert found, output
    return found.group(1)


@dataclass
class Outcome:
    connack: int | None = None
    puback: int | None = None
    disconnected: bool = False
    done: threading.Event = field(default_factory=threading.Event)


def publish(
    port: int, username: str | None, password: str | None, topic: str, payload: bytes, v5: bool = True
) -> Outcome:
    """Connect, publish one QoS 1 message and report the broker's answers."""
    outcome = Outcome()
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"t-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
    )
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(c: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        outcome.connack = reason.value  # type: ignore[attr-defined]
        if reason.is_failure:  # type: ignore[attr-defined]
            outcome.done.set()
        else:
            c.publish(topic, payload, qos=1)

    def on_publish(c: paho.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        outcome.puback = reason.value  # type: ignore[attr-defined]
        outcome.done.set()

    def on_disconnect(c: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        outcome.disconnected = True
        outcome.done.set()

    client.on_connect, client.on_publish, client.on_disconnect = on_connect, on_publish, on_disconnect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        assert outcome.done.wait(15), f"no answer from the broker for {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome


class Listener:
    """ingest's user, subscribed to every device's telemetry and status: what really got through."""

    def __init__(self, port: int, username: str, password: str, filters: tuple[str, ...]) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"l-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *a: c.subscribe([(f, 1) for f in filters])
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, msg: self.received.append((msg.topic, bytes(msg.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(15), "the listener could not subscribe"

    def _on_subscribe(self, c: paho.Client, userdata: object, mid: int, reasons: list, props: object) -> None:
        assert all(not r.is_failure for r in reasons), f"subscription refused: {reasons}"
        self.subscribed.set()

    def wait_for(self, payload: bytes, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p == payload for _, p in self.received):
                return
            time.sleep(0.05)
        raise AssertionError(f"{payload!r} never arrived; got {[(t, p[:40]) for t, p in self.received]}")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Broker:
    port: int
    folder: Path
    env: dict[str, str]
    passwords: dict[str, str]
    service: launcher.Service


@pytest.fixture(scope="module")
def broker(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:  # type: ignore[no-untyped-def]
    url = services.database_url
    for tenant in TENANTS:
        db.add_customer(url, "c-auth", "Auth test", "en", ["json://127.0.0.1:9/x"], tenant=tenant)
    for tenant, device in (("acme", "d00"), ("beta", "d00"), ("acme", "d02")):
        db.add_device(url, device, tenant, "c-auth", "home")
    folder = tmp_path_factory.mktemp("mqtt-auth")
    env = {
        "FOREWARN_DATABASE_URL": url,
        "FOREWARN_MQTT_URL": f"mqtt://forewarn-ingest:{INGEST_PASSWORD}@127.0.0.1:1883",
        "FOREWARN_MQTT_HEALTH_PASSWORD": HEALTH_PASSWORD,
    }
    passwords = {
        "acme/d00": password_of(cli(env, "device", "credentials", "acme", "d00")),
        "beta/d00": password_of(cli(env, "device", "credentials", "beta", "d00")),
        # issued as the device is added
        "acme/d01": password_of(
            cli(env, "device", "add", "d01", "--tenant=acme", "--customer=c-auth", "--kind=home", "--credentials")
        ),
    }
    assert "3 device(s)" in cli(env, "mqtt", "files", str(folder))
    assert (folder / "passwd").stat().st_mode & 0o077 == 0, "the password file is readable by others"
    svc = launcher.start_mosquitto(log_dir=folder, auth=folder)
    port = int(svc.url.rsplit(":", 1)[1])
    yield Broker(port, folder, env, passwords, svc)
    launcher.LocalStack("", "", "", [svc]).stop()


def topic(tenant: str, device: str, what: str = "telemetry") -> str:
    return f"forewarn/v1/{tenant}/{device}/{what}"


def test_a_device_publishes_on_its_own_topics_only(broker: Broker) -> None:
    listener = Listener(broker.port, "forewarn-ingest", INGEST_PASSWORD, (TELEMETRY_FILTER, STATUS_FILTER))
    try:
        pw = broker.passwords["acme/d00"]
        own = publish(broker.port, "acme/d00", pw, topic("acme", "d00"), b"own telemetry")
        status = publish(broker.port, "acme/d00", pw, topic("acme", "d00", "status"), b"own status")
        other_tenant = publish(broker.port, "acme/d00", pw, topic("beta", "d00"), b"as beta/d00")
        other_device = publish(broker.port, "acme/d00", pw, topic("acme", "d01"), b"as acme/d01")
        other_status = publish(broker.port, "acme/d00", pw, topic("beta", "d00", "status"), b"beta offline")
        beta = publish(broker.port, "beta/d00", broker.passwords["beta/d00"], topic("beta", "d00"), b"beta own")
        anonymous = publish(broker.port, None, None, topic("acme", "d00"), b"anonymous")
        wrong = publish(broker.port, "acme/d00", pw + "x", topic("acme", "d00"), b"wrong password")
        cross = publish(broker.port, "acme/d00", broker.passwords["beta/d00"], topic("acme", "d00"), b"beta's password")
        no_credentials = publish(broker.port, "acme/d02", pw, topic("acme", "d02"), b"never issued")
        ingest_writes = publish(broker.port, "forewarn-ingest", INGEST_PASSWORD, topic("acme", "d00"), b"ingest")
        publish(broker.port, "acme/d01", broker.passwords["acme/d01"], topic("acme", "d01"), b"marker")
        listener.wait_for(b"marker")
        time.sleep(0.5)  # anything refused but delivered anyway would have arrived by now, before the marker
    finally:
        listener.stop()

    assert (own.connack, own.puback) == (0, 0)
    assert (status.connack, status.puback) == (0, 0)
    assert beta.puback == 0
    assert other_tenant.puback == NOT_AUTHORIZED, "a device published as the same device id of another tenant"
    assert other_device.puback == NOT_AUTHORIZED
    assert other_status.puback == NOT_AUTHORIZED
    assert ingest_writes.puback == NOT_AUTHORIZED, "ingest's user only reads"
    for refused in (anonymous, wrong, cross, no_credentials):
        assert refused.connack in REFUSED_LOGIN and refused.puback is None
    assert sorted(listener.received) == sorted(
        [
            (topic("acme", "d00"), b"own telemetry"),
            (topic("acme", "d00", "status"), b"own status"),
            (topic("beta", "d00"), b"beta own"),
            (topic("acme", "d01"), b"marker"),
        ]
    )


def test_new_rotated_and_revoked_credentials_take_effect_on_reload(broker: Broker) -> None:
    before = broker.passwords["acme/d00"]
    rotated = password_of(cli(broker.env, "device", "credentials", "acme", "d00"))
    fresh = password_of(cli(broker.env, "device", "credentials", "acme", "d02"))
    # the broker has not read the new files yet: the old password still works, the new not
    assert publish(broker.port, "acme/d00", before, topic("acme", "d00"), b"x").puback in ACCEPTED
    assert publish(broker.port, "acme/d02", fresh, topic("acme", "d02"), b"x").connack in REFUSED_LOGIN

    cli(broker.env, "device", "credentials", "beta", "d00", "--revoke")
    assert "Mosquitto (pid" in cli(broker.env, "mqtt", "files", str(broker.folder), "--reload")
    time.sleep(0.5)  # SIGHUP is handled in the broker's next loop
    broker.passwords["acme/d00"] = rotated
    assert publish(broker.port, "acme/d00", before, topic("acme", "d00"), b"x").connack in REFUSED_LOGIN
    assert publish(broker.port, "acme/d00", rotated, topic("acme", "d00"), b"x").puback in ACCEPTED
    assert publish(broker.port, "acme/d02", fresh, topic("acme", "d02"), b"x").puback in ACCEPTED
    assert publish(broker.port, "acme/d02", fresh, topic("acme", "d00"), b"x").puback == NOT_AUTHORIZED
    revoked = publish(broker.port, "beta/d00", broker.passwords["beta/d00"], topic("beta", "d00"), b"x")
    assert revoked.connack in REFUSED_LOGIN


def test_the_broker_caps_messages_at_the_contracts_limit(broker: Broker) -> None:
    listener = Listener(broker.port, "forewarn-ingest", INGEST_PASSWORD, (TELEMETRY_FILTER,))
    user, pw = "acme/d01", broker.passwords["acme/d01"]
    try:
        at_limit = publish(broker.port, user, pw, topic("acme", "d01"), b"a" * MAX_PAYLOAD_BYTES)
        # an MQTT 3.1.1 client is not told the broker's maximum packet size, and sends it anyway
        huge = publish(broker.port, user, pw, topic("acme", "d01"), b"c" * (MAX_PACKET_BYTES + 1), v5=False)
        huge_v5 = publish(broker.port, user, pw, topic("acme", "d01"), b"d" * (8 * MAX_PACKET_BYTES))
        publish(broker.port, user, pw, topic("acme", "d01"), b"marker-size")
        listener.wait_for(b"marker-size")
        time.sleep(0.5)
    finally:
        listener.stop()
    assert at_limit.puback in ACCEPTED
    assert huge.disconnected and huge.puback is None
    assert huge_v5.puback is None
    assert [len(p) for _, p in listener.received] == [MAX_PAYLOAD_BYTES, len(b"marker-size")]


def test_the_health_check_user_reads_the_brokers_own_topics(broker: Broker) -> None:
    listener = Listener(broker.port, "healthcheck", HEALTH_PASSWORD, ("$SYS/broker/uptime",))
    try:
        deadline = time.monotonic() + 20  # Mosquitto publishes $SYS every 10 s
        while not listener.received and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        listener.stop()
    assert listener.received and listener.received[0][0] == "$SYS/broker/uptime"


def durable_subscriber(port: int, client_id: str, received: list[bytes]) -> paho.Client:
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    subscribed = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: c.subscribe("forewarn/v1/+/+/telemetry", qos=1)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = lambda c, u, msg: received.append(bytes(msg.payload))
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    assert subscribed.wait(15)
    return client


@pytest.mark.parametrize("how", ["clean stop", "SIGKILL after the autosave"])
def test_sessions_and_queued_messages_survive_a_broker_restart(tmp_path: Path, how: str) -> None:
    data = tmp_path / "data"
    svc = launcher.start_mosquitto(log_dir=tmp_path, data_dir=data)
    port = int(svc.url.rsplit(":", 1)[1])
    try:
        received: list[bytes] = []
        sub = durable_subscriber(port, "durable-test", received)
        sub.disconnect()
        sub.loop_stop()
        for n in range(5):
            sent = publish(port, None, None, "forewarn/v1/acme/d00/telemetry", f"queued {n}".encode())
            assert sent.puback in ACCEPTED
        assert svc.proc is not None
        if how == "clean stop":
            svc.proc.send_signal(signal.SIGTERM)
        else:
            time.sleep(3)  # autosave every second (Mosquitto saves once a whole second has passed)
            svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)
        launcher.LocalStack("", "", "", [svc]).stop()
        svc = launcher.start_mosquitto(port, log_dir=tmp_path, data_dir=data)
        sub = durable_subscriber(port, "durable-test", received)
        deadline = time.monotonic() + 15
        while len(received) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        sub.disconnect()
        sub.loop_stop()
        assert sorted(received) == [f"queued {n}".encode() for n in range(5)]
    finally:
        launcher.LocalStack("", "", "", [svc]).stop()
