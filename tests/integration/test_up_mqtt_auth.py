"""``forewarn up --mqtt-auth`` as an operator runs it: devices are who they say they are, end to end.

A real ``up`` process (its own Kafka, the session's database) starts a Mosquitto of its own with
per-device credentials. ``FOREWARN_MQTT_URL`` names the session's anonymous broker, which
answers: it is not ``up``'s, so ``up`` must leave it alone and listen on another port. The
credentials are issued and revoked with the CLI while ``up`` runs and must take effect without
a manual step. Every verdict is the broker's own (CONNACK and PUBACK reason codes over MQTT 5)
or the database's (what reached ``readings`` through ``up``'s ingest and worker).
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from test_mqtt_auth import NOT_AUTHORIZED, REFUSED_LOGIN, Outcome, cli, password_of, publish  # this folder's helpers
from test_up import _pids, _running, _up, _wait  # this folder's helpers

from core import db
from core.contract import telemetry_topic
from core.settings import host_port
from forewarn import launcher
from forewarn.up import AUTH_BROKER, INGEST_PASSWORD_FILE, MQTT_AUTH_DIR

pytestmark = pytest.mark.integration

DEVICE = "d00"  # the same device id under two tenants: the identity is the pair


def reading(ts_ms: int, seq: int) -> bytes:
    return orjson.dumps({"ts": ts_ms, "seq": seq, "metrics": {"temp_c": 21.5}})


def stored(url: str, tenant: str) -> list[int]:
    """The ``seq`` of every reading stored for ``tenant``'s device."""
    rows = db.query(url, "SELECT seq FROM readings WHERE tenant = %s AND device = %s ORDER BY seq", (tenant, DEVICE))
    return [int(r["seq"]) for r in rows]


def accepted_once_reloaded(port: int, username: str, password: str, topic: str, payload: bytes, log: Path) -> Outcome:
    """Publish as soon as the broker accepts the login: ``up`` rewrites its files and reloads it
    by itself (every ~5 s); nobody runs 'forewarn mqtt files' here."""
    deadline = time.monotonic() + 60
    while True:
        outcome = publish(port, username, password, topic, payload)
        if outcome.connack == 0 or time.monotonic() > deadline:
            break
        assert outcome.connack in REFUSED_LOGIN, outcome
        time.sleep(0.5)
    assert outcome.connack == 0, f"the new credentials were never accepted; up's output:\n{log.read_text()[-3000:]}"
    return outcome


def hold_connection(port: int, username: str, password: str) -> tuple[paho.Client, threading.Event]:
    """A device's open connection, and an event set when the broker drops it."""
    connected, dropped = threading.Event(), threading.Event()
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"held-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, reason, p: None if reason.is_failure else connected.set()
    client.on_disconnect = lambda *a: dropped.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(15), "the device could not connect"
    return client, dropped


def test_up_mqtt_auth_lets_each_device_publish_as_itself_only(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = services.database_url
    mine, theirs = f"upa-{uuid.uuid4().hex[:6]}", f"upb-{uuid.uuid4().hex[:6]}"
    for tenant in (mine, theirs):
        db.add_customer(url, "c-up-auth", "Up auth test", "en", ["json://127.0.0.1:9/x"], tenant=tenant)
        db.add_device(url, DEVICE, tenant, "c-up-auth", "home")
    anonymous_host, anonymous_port = host_port(services.mqtt_url, 1883)
    assert launcher.reachable(anonymous_host, anonymous_port), "the session's anonymous broker is not ours to test with"
    state = tmp_path / "state"
    env = {
        **services.env,  # the session's database; FOREWARN_MQTT_URL: the session's anonymous broker, not up's
        "FOREWARN_KAFKA_URL": f"kafka://127.0.0.1:{launcher.free_port()}",  # nothing there: up starts Tansu
        "FOREWARN_STATE_DIR": str(state),
    }
    log = tmp_path / "up.log"
    up = _up(["--start-services", "--mqtt-auth"], env, log)
    seen: set[int] = set()
    try:
        _wait("up to start its children", lambda: _pids(state / "run").get("children", {}).get("ingest"), 180, log)
        pids = _pids(state / "run")
        broker_pid = pids["services"][AUTH_BROKER]
        port = int(pids["urls"][AUTH_BROKER].rsplit(":", 1)[1])
        seen |= set(pids["children"].values()) | {p for p in pids["services"].values() if p}
        assert port != anonymous_port
        _wait("ingest to be ready", lambda: "ingest ready" in log.read_text(), 120, log)
        _wait("the worker to be ready", lambda: "worker ready" in log.read_text(), 180, log)
        text = " ".join(log.read_text().split())
        assert f"something already answers at {anonymous_host}:{anonymous_port}" in text, text[-3000:]
        assert f"MQTT broker for devices: 127.0.0.1:{port}" in text and "anonymous clients are refused" in text
        assert "username TENANT/DEVICE" in text and "forewarn device credentials TENANT DEVICE" in text
        folder = state / MQTT_AUTH_DIR
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / INGEST_PASSWORD_FILE).stat().st_mode) == 0o600

        # issued while up runs, with the CLI; up's broker accepts it by itself
        db_env = {"FOREWARN_DATABASE_URL": url}
        password = password_of(cli(db_env, "device", "credentials", mine, DEVICE))
        user = f"{mine}/{DEVICE}"
        now = int(time.time() * 1000)
        own = accepted_once_reloaded(port, user, password, telemetry_topic(mine, DEVICE), reading(now, 1), log)
        as_other_tenant = publish(port, user, password, telemetry_topic(theirs, DEVICE), reading(now + 1000, 2))
        anonymous = publish(port, None, None, telemetry_topic(mine, DEVICE), reading(now + 2000, 3))
        marker = publish(port, user, password, telemetry_topic(mine, DEVICE), reading(now + 3000, 4))
        _wait("the device's readings in the database", lambda: len(stored(url, mine)) >= 2, 90, log)
        time.sleep(2)  # a refused message let through anyway would have been stored by now, with the marker

        assert own.puback == 0 and marker.puback == 0
        assert as_other_tenant.puback == NOT_AUTHORIZED, "a device published as the same device id of another tenant"
        assert anonymous.connack in REFUSED_LOGIN and anonymous.puback is None
        assert stored(url, mine) == [1, 4], "stored exactly the device's own two readings, not the anonymous one"
        assert stored(url, theirs) == [], "nothing reached the other tenant's device"

        # the broker is one of up's supervised services: killed, it is started again on the same
        # port with the same files (and still refuses anonymous clients)
        os.kill(broker_pid, signal.SIGKILL)
        broker_pid = _wait(
            "the killed broker to be started again",
            lambda: (p := _pids(state / "run").get("services", {}).get(AUTH_BROKER)) != broker_pid and p,
            60,
            log,
        )
        seen.add(broker_pid)
        _wait("the broker to listen again", lambda: launcher.reachable("127.0.0.1", port), 30, log)
        assert publish(port, None, None, telemetry_topic(mine, DEVICE), b"{}").connack in REFUSED_LOGIN
        # until ingest is back on the new broker, Mosquitto answers 0x10 (no subscriber) and drops
        # the message (a shared subscription is not restored from its saved state): send again
        deadline = time.monotonic() + 60
        while (again := publish(port, user, password, telemetry_topic(mine, DEVICE), reading(now + 5000, 5))).puback:
            assert again.puback == 0x10 and time.monotonic() < deadline, f"{again}\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        _wait("the reading sent after the broker's restart", lambda: 5 in stored(url, mine), 90, log)

        # revoked while up runs: the device's open connection is closed and its next login refused,
        # again with no manual step
        held, dropped = hold_connection(port, user, password)
        try:
            cli(db_env, "device", "credentials", mine, DEVICE, "--revoke")
            assert dropped.wait(60), f"a revoked device kept its connection:\n{log.read_text()[-3000:]}"
        finally:
            held.disconnect()
            held.loop_stop()
        deadline = time.monotonic() + 60
        while (after := publish(port, user, password, telemetry_topic(mine, DEVICE), b"{}")).connack == 0:
            assert time.monotonic() < deadline, f"the revoked password still works:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        assert after.connack in REFUSED_LOGIN
        assert "revoked" in log.read_text()
        assert launcher.reachable(anonymous_host, anonymous_port), "the broker that is not up's was left alone"

        up.send_signal(signal.SIGTERM)
        code = up.wait(120)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    text = log.read_text(errors="replace")
    print(text[-3000:])
    assert code == 0, text[-3000:]
    assert not _running(broker_pid), "up's broker outlived it"
    assert not launcher.reachable("127.0.0.1", port)
    left = [pid for pid in seen if _running(pid)]
    assert not left, f"still running after up stopped: {left}"
    assert launcher.reachable(anonymous_host, anonymous_port), "the broker that is not up's was left alone"
