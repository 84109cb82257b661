"""Chaos on real services: a steady stream from 50 devices survives an operator's bad day.

Mosquitto, Tansu and a database of its own (on the suite's PostgreSQL server, reached by ingest
and the worker only through :class:`ChaosProxy`) are started here; ingest and the worker run as
real processes. While the devices publish (QoS 1, one reading per device per second, a publish
counted as acknowledged only once its PUBACK arrived and retried until then, as a device
would), the test in turn:

1. SIGKILLs ingest and restarts it with the same client id;
2. SIGKILLs the worker and restarts it;
3. cuts the database for 30 s (connections closed, new ones refused);
4. blackholes it for 30 s (connections open, nothing answering; those stay silent after);
5. restarts Mosquitto (SIGTERM, then started again on the same port and persistence folder).

Four home devices leak water, each in a different phase (across the worker's kill, during the
cut, during the blackhole, after the broker's restart): each must be warned, and once.

At the end, after the pipeline drained: every acknowledged reading is stored exactly once
(rows per device and seq = its metric count), no message reached a phone twice (each sink
delivery is distinct and matches one 'sent' delivery row), ingest and the worker never exited
except by our SIGKILLs, SIGTERM then stops each within 10 s, and each logged a bounded number of
lines per database outage (not one per attempt). Selected with ``-m chaos``; about 4-5 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faults  # this folder's helper
import orjson
import psycopg
import pytest
from chaos_proxy import ChaosProxy  # this folder's helper

from core import bus, db
from core.contract import telemetry_topic
from core.mqtt import Publisher
from core.settings import Settings, host_port
from forewarn import launcher
from forewarn.children import Child, spawn
from forewarn.sink import HttpSink

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

TENANT = "chaos"
DEVICES = 50
KINDS = ("home", "vehicle", "equipment", "coldchain")
# quiet values per kind (metric, level): a reading wobbles ±1 % around them, nothing to warn about
QUIET = {
    "home": (("temp_c", 20.5), ("pipe_temp_c", 14.0), ("humidity_pct", 48.0)),
    "vehicle": (("speed_kmh", 45.0), ("engine_rpm", 2000.0), ("coolant_temp_c", 88.0)),
    "equipment": (("vibration_mm_s", 2.5), ("bearing_temp_c", 46.0), ("current_a", 22.0)),
    "coldchain": (("temp_c", 3.0), ("battery_pct", 80.0)),
}
FAULT_S = 30.0  # how long the database is cut, then blackholed
RETRY_S = 5.0  # a device publishes a reading again when no PUBACK came within this
DRAIN_S = 180.0  # after the last publish: every acknowledged reading stored by then
WARN_S = 90.0  # … and every leak warned by then
STOP_S = 10.0  # the issue: SIGTERM stops each process within 10 s whatever its dependencies do
DB_LINES_PER_OUTAGE = 12  # log lines about the database a process may write per outage (start and end, per user)


# ------------------------------------------------------------------------------ the schedule

# the faults, in seconds from the first publish (each acts, then the stream goes on)
KILL_INGEST_AT = 15.0
KILL_WORKER_AT = 30.0
CUT_AT = 45.0
BLACKHOLE_AT = CUT_AT + FAULT_S + 15.0
MOSQUITTO_AT = BLACKHOLE_AT + FAULT_S + 15.0
PUBLISH_S = MOSQUITTO_AT + 25.0
# leaking home devices (index → leak window): each straddles one fault
LEAKS = {
    0: (5.0, KILL_WORKER_AT + 15.0),  # warned before the worker dies, still leaking after its restart
    4: (CUT_AT + 5.0, CUT_AT + FAULT_S - 5.0),  # decided while the database is gone
    8: (BLACKHOLE_AT + 5.0, BLACKHOLE_AT + FAULT_S - 5.0),  # decided while the database is silent
    12: (MOSQUITTO_AT - 5.0, MOSQUITTO_AT + 15.0),  # across the broker's restart
}


# ------------------------------------------------------------------------------ devices


@dataclass
class Fleet:
    """The devices' side: what was published, what the broker acknowledged, retries."""

    devices: list[tuple[str, str]]
    sent: dict[tuple[str, int], tuple[str, bytes, int]] = field(default_factory=dict)  # → topic, payload, values
    pending: dict[tuple[str, int], tuple[Any, float]] = field(default_factory=dict)  # → paho info, sent at
    acked: set[tuple[str, int]] = field(default_factory=set)
    retries: int = 0
    publish_errors: Counter[str] = field(default_factory=Counter)

    def reading(self, index: int, seq: int, ts_ms: int, elapsed: float) -> tuple[dict[str, Any], int]:
        device, kind = self.devices[index]
        wobble = 1.0 + 0.01 * ((seq * 7 + index) % 5 - 2) / 2
        metrics: dict[str, Any] = {name: round(level * wobble, 2) for name, level in QUIET[kind]}
        if kind == "home":
            window = LEAKS.get(index)
            leaking = window is not None and window[0] <= elapsed < window[1]
            metrics["water_leak"] = leaking
            metrics["flow_lpm"] = 4.0 if leaking else 0.0
        return {"ts": ts_ms, "seq": seq, "metrics": metrics}, len(metrics)

    def publish(self, publisher: Publisher, key: tuple[str, int]) -> None:
        topic, payload, _ = self.sent[key]
        try:
            info = publisher.publish(topic, payload, qos=1)
        except Exception as exc:  # noqa: BLE001 - a device keeps the reading and tries again
            self.publish_errors[type(exc).__name__] += 1
            self.pending[key] = (None, time.monotonic())
            return
        self.pending[key] = (info, time.monotonic())

    def settle(self, publisher: Publisher) -> None:
        """Move PUBACKed readings to ``acked``; publish again the ones without a PUBACK for RETRY_S."""
        now = time.monotonic()
        for key, (info, at) in list(self.pending.items()):
            try:
                # a PUBACK counts when the broker took the reading for a subscriber: after a restart
                # Mosquitto 2.0 answers 0x10 "no matching subscribers" until ingest has subscribed
                # again, and drops the reading — a device sends it again
                outcome = None if info is None else publisher.delivered(info)
            except (RuntimeError, ValueError) as exc:  # paho: the publish failed (not connected, queue full)
                self.publish_errors[str(exc)] += 1
                info, outcome = None, None
                self.pending[key] = (None, at)
            if outcome is False:
                self.publish_errors["not taken by any subscriber (PUBACK 0x10)"] += 1
                info = None
                self.pending[key] = (None, at)
            acked = outcome is True
            if acked:
                self.acked.add(key)
                del self.pending[key]
            elif now - at >= (1.0 if info is None else RETRY_S):
                self.retries += 1
                self.publish(publisher, key)


class Devices(threading.Thread):
    """One MQTT client publishing for the 50 devices: one reading each per second."""

    def __init__(self, mqtt: tuple[str, int], fleet: Fleet, t0: float, until_s: float) -> None:
        super().__init__(name="chaos-devices", daemon=True)
        self.fleet, self.t0, self.until_s = fleet, t0, until_s
        self.publisher = Publisher(*mqtt, client_id=f"chaos-devices-{uuid.uuid4().hex[:6]}")
        self.stop_retrying = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _run(self) -> None:
        fleet, seq = self.fleet, 0
        self.publisher.start()
        while (elapsed := time.monotonic() - self.t0) < self.until_s:
            ts_ms = int(time.time() * 1000)
            for index, (device, _) in enumerate(fleet.devices):
                doc, values = fleet.reading(index, seq, ts_ms, elapsed)
                key = (device, seq)
                fleet.sent[key] = (telemetry_topic(TENANT, device), orjson.dumps(doc), values)
                fleet.publish(self.publisher, key)
            fleet.settle(self.publisher)
            seq += 1
            time.sleep(max(0.0, self.t0 + seq - time.monotonic()))
        while fleet.pending and not self.stop_retrying.is_set():  # the tail: until every reading has its PUBACK
            fleet.settle(self.publisher)
            time.sleep(0.5)
        self.publisher.stop()


# ------------------------------------------------------------------------------ processes


@dataclass
class Supervised:
    """ingest or the worker, restarted after our SIGKILLs; an exit we did not cause is recorded."""

    name: str
    env: dict[str, str]
    logs: Path
    events: list[str]
    generation: int = 0
    child: Child | None = None
    unexpected: list[str] = field(default_factory=list)

    def start(self) -> Child:
        self.generation += 1
        self.child = spawn(self.name, [self.name], self.env, self.logs / f"{self.name}-{self.generation}.log")
        return self.child

    def kill_and_restart(self) -> None:
        assert self.child is not None
        self.check()
        self.child.proc.send_signal(signal.SIGKILL)
        self.child.proc.wait(10)
        self.events.append(f"SIGKILL {self.name} (pid {self.child.proc.pid}), restarted")
        self.start()

    def check(self) -> None:
        """Record (and restart) a process that exited without our SIGKILL."""
        if self.child is not None and not self.child.alive():
            code = self.child.proc.returncode
            tail = "\n".join(self.child.text().splitlines()[-25:])
            self.unexpected.append(f"{self.name} #{self.generation} exited with code {code}:\n{tail}")
            self.events.append(f"{self.name} exited by itself with code {code}; restarted")
            self.start()

    def logs_text(self) -> str:
        return "\n".join(
            (self.logs / f"{self.name}-{g}.log").read_text(errors="replace") for g in range(1, self.generation + 1)
        )


def database_lines(text: str) -> list[str]:
    """The warnings and errors a process logged about the database."""
    words = ("PostgreSQL", "psycopg", "pool", "connection to server")
    return [
        line
        for line in text.splitlines()
        if ("WARNING" in line or "ERROR" in line) and any(word in line for word in words)
    ]


def excerpt(text: str, limit: int = 40) -> str:
    """The lines of a log worth reading after a failure: errors, warnings, tracebacks' last lines."""
    keep = [line for line in text.splitlines() if any(w in line for w in ("ERROR", "WARNING", "Error", "rror:"))]
    return "\n".join(keep[:limit] + ([f"… {len(keep) - limit} more"] if len(keep) > limit else []))


# ------------------------------------------------------------------------------ brokers


def start_mosquitto(port: int | None, logs: Path, data: Path) -> launcher.Service:
    """A private Mosquitto whose sessions and queued messages persist in ``data`` across restarts."""
    return launcher.start_mosquitto(port, log_dir=logs, data_dir=data)


def restart_mosquitto(svc: launcher.Service, logs: Path, data: Path) -> launcher.Service:
    port = host_port(svc.url, 1883)[1]
    assert svc.proc is not None
    svc.proc.send_signal(signal.SIGTERM)  # a restart, not a crash: Mosquitto writes its persistence file
    svc.proc.wait(15)
    deadline = time.monotonic() + 20
    while True:  # the port may linger a moment
        try:
            return start_mosquitto(port, logs, data)
        except launcher.StackError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def chaos_database(services) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database of this test's own on the suite's server (the URL without the proxy)."""
    server = services.database_url.rsplit("/", 1)[0]
    url = f"{server}/forewarn_chaos_{uuid.uuid4().hex[:8]}"
    db.migrate(url, progress=lambda m: None)
    yield url
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# ------------------------------------------------------------------------------ the test


def wait_until(probe: Callable[[], bool], timeout: float, every: float = 2.0) -> bool:
    return faults.wait_until(probe, timeout, every)


def test_nothing_acknowledged_is_lost_or_sent_twice_through_an_operators_bad_day(  # type: ignore[no-untyped-def]
    services, chaos_database, tmp_path
) -> None:
    url = chaos_database
    logs = tmp_path / "logs"
    logs.mkdir()
    events: list[str] = []
    started: list[launcher.Service] = []
    sink = HttpSink().start()
    proxy = ChaosProxy(*host_port(url, 5432)).start()
    children: list[Supervised] = []
    devices_thread: Devices | None = None
    try:
        mosquitto = start_mosquitto(None, logs, tmp_path / "mosquitto-data")
        started.append(mosquitto)
        tansu = launcher.start_tansu(log_dir=logs)
        started.append(tansu)
        env = {
            **services.env,
            "FOREWARN_MQTT_URL": mosquitto.url,
            "FOREWARN_KAFKA_URL": tansu.url,
            "FOREWARN_DATABASE_URL": proxy.url_for(url),
            "FOREWARN_INGEST_CLIENT_ID": f"chaos-ingest-{uuid.uuid4().hex[:6]}",
            "FOREWARN_WORKER_ID": f"chaos-worker-{uuid.uuid4().hex[:6]}",
            "FOREWARN_STATE_DIR": str(tmp_path / "state"),
            "TMPDIR": str(tmp_path),  # the worker's heartbeat file stays ours
        }
        settings = Settings(kafka_url=tansu.url, partitions=int(env["FOREWARN_PARTITIONS"]))
        asyncio.run(bus.ensure_topics(settings.kafka_bootstrap, settings.partitions))

        fleet = Fleet([(f"{KINDS[i % len(KINDS)]}-{i:02d}", KINDS[i % len(KINDS)]) for i in range(DEVICES)])
        for i, (device, kind) in enumerate(fleet.devices):
            db.add_customer(url, f"chaos-c{i:02d}", f"Chaos {i}", "en", [sink.url(f"chaos-c{i:02d}")], tenant=TENANT)
            db.add_device(url, device, TENANT, f"chaos-c{i:02d}", kind)
        leakers = {fleet.devices[i][0]: f"chaos-c{i:02d}" for i in LEAKS}

        ingest = Supervised("ingest", env, logs, events)
        worker = Supervised("worker", env, logs, events)
        children = [ingest, worker]
        worker.start()
        ingest.start().ready(60)
        assert worker.child is not None
        worker.child.ready(180)

        t0 = time.monotonic()
        stamp = lambda what: events.append(f"{time.monotonic() - t0:6.1f} s  {what}")  # noqa: E731
        devices_thread = Devices(host_port(mosquitto.url, 1883), fleet, t0, PUBLISH_S)
        devices_thread.start()

        def at(moment: float) -> None:
            while time.monotonic() - t0 < moment:
                for child in children:
                    child.check()
                time.sleep(0.2)

        at(KILL_INGEST_AT)
        ingest.kill_and_restart()
        stamp("ingest SIGKILLed and restarted (same client id)")
        at(KILL_WORKER_AT)
        worker.kill_and_restart()
        stamp("worker SIGKILLed and restarted")
        at(CUT_AT)
        proxy.cut()
        stamp("database cut")
        at(CUT_AT + FAULT_S)
        proxy.heal()
        stamp("database back")
        at(BLACKHOLE_AT)
        proxy.blackhole()
        held = proxy.open_links()
        stamp(f"database blackholed ({held} connections held open)")
        at(BLACKHOLE_AT + FAULT_S)
        proxy.heal()
        stamp(f"database answers again (the {proxy.open_links()} blackholed connections stay silent)")
        at(MOSQUITTO_AT)
        mosquitto = restart_mosquitto(mosquitto, logs, tmp_path / "mosquitto-data")
        started[0] = mosquitto
        stamp("Mosquitto restarted on the same port and persistence folder")
        at(PUBLISH_S)
        devices_thread.join(60)
        devices_thread.stop_retrying.set()
        devices_thread.join(10)
        stamp(
            f"publishing over: {len(fleet.sent)} readings, {len(fleet.acked)} acknowledged, "
            f"{len(fleet.pending)} never acknowledged, {fleet.retries} republished, "
            f"publish errors {dict(fleet.publish_errors)}"
        )
        assert devices_thread.error is None, f"the devices' publisher failed: {devices_thread.error!r}"

        expected = {key: fleet.sent[key][2] for key in fleet.acked}

        def drained() -> bool:
            for child in children:
                child.check()
            counts = faults.stored_counts(url, TENANT)
            return all(counts.get(key) == n for key, n in expected.items())

        wait_until(drained, DRAIN_S)
        stamp("drained" if drained() else f"not drained after {DRAIN_S:.0f} s")

        def delivered() -> dict[str, int]:
            paths = Counter(d.path.strip("/") for d in sink.received)
            return {device: paths[customer] for device, customer in leakers.items()}

        wait_until(lambda: all(delivered().values()), WARN_S)
        time.sleep(10)  # room for a duplicate to arrive: a retry after a crash or an outage
        for child in children:
            child.check()
        stamp(f"deliveries: {len(sink.received)} at the sink")
        # SIGTERM, publishers' side first as `up` does: each process must be gone within STOP_S,
        # whatever the blackhole left it holding (its silent connections are still open)
        stopped: dict[str, tuple[float | None, int | None]] = {}
        for child in children:
            assert child.child is not None
            proc, began = child.child.proc, time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(3 * STOP_S)
                stopped[child.name] = (time.monotonic() - began, proc.returncode)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                stopped[child.name] = (None, None)
        stamp(
            "SIGTERM: "
            + ", ".join(
                f"{name} exited in {took:.1f} s with code {code}" if took is not None else f"{name} did not exit"
                for name, (took, code) in stopped.items()
            )
        )

        # --- what must be true ---------------------------------------------------------------
        assert held > 0, "ingest and the worker held no database connection through the proxy: the blackhole missed"
        report = "\n".join(events)
        diagnosis = "\n".join(f"--- {c.name} log excerpt\n{excerpt(c.logs_text())}" for c in children)
        counts = faults.stored_counts(url, TENANT)
        missing = sorted(key for key in expected if key not in counts)
        partial = sorted(key for key, n in expected.items() if key in counts and counts[key] != n)
        by_device = Counter(device for device, _ in missing)
        assert not missing and not partial, (
            f"{len(missing)} of {len(expected)} acknowledged readings not stored, {len(partial)} stored partly "
            f"(first missing: {missing[:10]}; by device: {by_device.most_common(5)})\n{report}\n{diagnosis}"
        )
        assert all(n == fleet.sent[key][2] for key, n in counts.items() if key in fleet.sent), "a value stored twice"

        warned = delivered()
        assert all(warned.values()), f"a leak was never warned: {warned}\n{report}\n{diagnosis}"
        bodies = Counter((d.path, str(d.body.get("title")), str(d.body.get("message"))) for d in sink.received)
        twice = [(path, title, n) for (path, title, _), n in bodies.items() if n > 1]
        assert not twice, f"messages delivered more than once: {twice}\n{report}\n{diagnosis}"
        assert all(n == 1 for n in warned.values()), f"a leak warned more than once: {warned}\n{report}"
        sent_rows = db.query(url, "SELECT count(*) AS n FROM deliveries WHERE status = 'sent'")[0]["n"]
        assert sent_rows == len(sink.received), (
            f"{len(sink.received)} messages at the sink, {sent_rows} 'sent' delivery rows: a message went out "
            f"without its record (sent again after a crash or an outage)\n{report}"
        )

        unexpected = [u for child in children for u in child.unexpected]
        assert not unexpected, "ingest or the worker exited by itself:\n" + "\n\n".join(unexpected) + f"\n{report}"
        slow = {name: took for name, (took, _) in stopped.items() if took is None or took > STOP_S}
        assert not slow, f"SIGTERM did not stop these within {STOP_S:g} s (None: still running): {slow}\n{report}"

        # an outage is logged once when it starts and once when it ends, per part of a process that
        # uses the database, not once per attempt: a bound that a per-attempt logger breaks
        for child in children:
            lines = database_lines(child.logs_text())
            assert len(lines) <= 2 * DB_LINES_PER_OUTAGE, (
                f"{child.name} logged {len(lines)} warnings about the database over 2 outages "
                f"(at most {DB_LINES_PER_OUTAGE} each: one line when an outage starts, one when it ends):\n"
                + "\n".join(line[:200] for line in lines[:40])
                + f"\n{report}"
            )
        print("\n".join(events))
    finally:
        if devices_thread is not None:
            devices_thread.stop_retrying.set()
        for child in children:
            if child.child is not None:
                child.child.stop()
        proxy.stop()
        sink.stop()
        launcher.LocalStack("", "", "", started).stop()


def test_the_proxy_cuts_blackholes_and_heals() -> None:
    """What the faults above are made of, on a plain echo server."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := conn.recv(100):
                conn.sendall(data)

    def echo() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()

    def talk(sock: socket.socket, data: bytes) -> bytes | None:
        sock.sendall(data)
        try:
            return sock.recv(100)
        except TimeoutError:
            return None

    with ChaosProxy(*server.getsockname()) as proxy:
        before = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert talk(before, b"hello") == b"hello"
        proxy.blackhole()
        assert talk(before, b"anyone?") is None, "a blackholed connection stays open and silent"
        during = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert talk(during, b"hello") is None, "a new connection is accepted and never answered"
        proxy.heal()
        assert talk(before, b"still?") is None, "a connection that was blackholed stays silent after the heal"
        after = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert talk(after, b"back") == b"back"
        proxy.cut()
        assert after.recv(100) == b"", "a cut closes every connection"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        proxy.heal()
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert talk(again, b"again") == b"again"
        for sock in (before, during, after, again):
            sock.close()
    server.close()
