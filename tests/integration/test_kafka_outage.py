"""Kafka down for 30 s under a live stream: ingest and the Faust worker wait it out and resume.

The issue asks that with Kafka gone for 30 s, ingest and the worker wait, retry with backoff,
log one clear line per outage (not one per attempt) and resume by themselves, losing nothing
acknowledged and storing or sending nothing twice. ``test_ingest_faults`` covers ingest alone
(Kafka stopped); this test covers the worker, which talks to Kafka through Faust and aiokafka:
it consumes readings, commits offsets, keeps its table's changelog and produces warnings, all
of which fail while Kafka is away.

Tansu keeps everything in memory, so it must not be restarted: it runs behind a
:class:`ChaosProxy` that the test cuts (connections closed, new ones refused) and heals, and it
advertises the proxy's port, so every client (who connect to the advertised address from the
metadata) goes through the proxy. Mosquitto, the database and the notification sink stay up.

Six registered devices publish one reading a second at QoS 1 before, during and after a 30 s
cut; two home devices start leaking water, one a moment before the cut (its warning is decided
and sent as Kafka goes) and one during it (its readings wait in MQTT and ingest). At the end:
every reading the broker acknowledged is stored exactly once, each leak is warned and delivered
exactly once, ingest and the worker never exited, and each logged a bounded number of warnings
about Kafka. It prints how long after the heal the worker stored readings again. About 2.5 min.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
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
from core.settings import host_port
from forewarn import launcher
from forewarn.children import Child, spawn
from forewarn.sink import HttpSink

pytestmark = pytest.mark.integration

TENANT = "outage"
DEVICES = (
    ("home-00", "home"),  # leaks from just before the cut
    ("home-01", "home"),  # leaks from during the cut
    ("home-02", "home"),
    ("vehicle-03", "vehicle"),
    ("equipment-04", "equipment"),
    ("coldchain-05", "coldchain"),
)
QUIET = {
    "home": (("temp_c", 20.5), ("pipe_temp_c", 14.0), ("humidity_pct", 48.0)),
    "vehicle": (("speed_kmh", 45.0), ("engine_rpm", 2000.0), ("coolant_temp_c", 88.0)),
    "equipment": (("vibration_mm_s", 2.5), ("bearing_temp_c", 46.0), ("current_a", 22.0)),
    "coldchain": (("temp_c", 3.0), ("battery_pct", 80.0)),
}
CUT_AT = 20.0  # seconds from the first publish
CUT_S = 30.0  # the Kafka outage
HEAL_AT = CUT_AT + CUT_S
PUBLISH_S = HEAL_AT + 25.0
LEAK_FROM = {"home-00": CUT_AT - 1.0, "home-01": CUT_AT + 5.0}  # leaking from then to the end
DRAIN_S = 90.0  # after the last publish: every acknowledged reading stored by then
WARN_S = 60.0  # … and each leak delivered by then
KAFKA_LINES = 2  # warnings about Kafka a process may log for the one outage: when it starts, when it ends


class Devices(threading.Thread):
    """One MQTT client publishing for every device, one reading each per second at QoS 1; a
    reading counts as acknowledged once its PUBACK came (Mosquitto stays up: no retries)."""

    def __init__(self, mqtt: tuple[str, int], t0: float) -> None:
        super().__init__(name="kafka-outage-devices", daemon=True)
        self.t0 = t0
        self.publisher = Publisher(*mqtt, client_id=f"kafka-outage-{uuid.uuid4().hex[:6]}")
        self.values: dict[tuple[str, int], int] = {}  # (device, seq) → metrics in the reading
        self.infos: dict[tuple[str, int], Any] = {}
        self.acked: set[tuple[str, int]] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.publisher.start()
            seq = 0
            while (elapsed := time.monotonic() - self.t0) < PUBLISH_S:
                ts_ms = int(time.time() * 1000)
                for device, kind in DEVICES:
                    metrics: dict[str, Any] = {name: level for name, level in QUIET[kind]}
                    if kind == "home":
                        metrics["water_leak"] = elapsed >= LEAK_FROM.get(device, PUBLISH_S)
                    doc = {"ts": ts_ms, "seq": seq, "metrics": metrics}
                    self.values[(device, seq)] = len(metrics)
                    self.infos[(device, seq)] = self.publisher.publish(
                        telemetry_topic(TENANT, device), orjson.dumps(doc), qos=1
                    )
                seq += 1
                time.sleep(max(0.0, self.t0 + seq - time.monotonic()))
            self.publisher.flush(list(self.infos.values()))
            self.acked = {key for key, info in self.infos.items() if info.is_published()}
            self.publisher.stop()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


class Stored(threading.Thread):
    """Samples what the worker stored, to time its recovery: the tenant's readings rows, and the
    readings published before the heal (seq < ``HEAL_AT``: one reading a second from 0)."""

    def __init__(self, url: str) -> None:
        super().__init__(name="kafka-outage-stored", daemon=True)
        self.url = url
        self.samples: list[tuple[float, int, int]] = []  # (monotonic time, rows, readings before the heal)
        self.done = threading.Event()

    def run(self) -> None:
        query = "SELECT count(*), count(DISTINCT (device, seq)) FILTER (WHERE seq < %s) FROM readings WHERE tenant = %s"
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.done.is_set():
                row = conn.execute(query, (int(HEAL_AT), TENANT)).fetchone()
                self.samples.append((time.monotonic(), int(row[0]), int(row[1])) if row else (time.monotonic(), 0, 0))
                time.sleep(0.25)

    def first_growth_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` until the row count first grew past what it was then."""
        before = [n for at, n, _ in self.samples if at <= moment]
        base = before[-1] if before else 0
        return next((at - moment for at, n, _ in self.samples if at > moment and n > base), None)

    def caught_up_after(self, moment: float, backlog: int) -> float | None:
        """Seconds from ``moment`` until the ``backlog`` readings published before it were all stored."""
        return next((at - moment for at, _, n in self.samples if at > moment and n >= backlog), None)


def kafka_lines(text: str) -> list[str]:
    """The warnings and errors a process logged about Kafka."""
    words = ("kafka", "broker", "coordinator", "fetch", "commit", "produc", "metadata", "node")
    levels = ("WARNING", "ERROR", "CRITICAL", "[W]", "[E]")
    return [
        line
        for line in text.splitlines()
        if any(level in line for level in levels) and any(word in line.lower() for word in words)
    ]


def excerpt(text: str, limit: int = 60) -> str:
    keep = [line for line in text.splitlines() if any(w in line for w in ("ERROR", "WARNING", "Error", "rror:"))]
    return "\n".join(line[:300] for line in keep[:limit]) + (
        f"\n… {len(keep) - limit} more" if len(keep) > limit else ""
    )


def wait_until(probe: Callable[[], bool], timeout: float, every: float = 1.0) -> bool:
    return faults.wait_until(probe, timeout, every)


@pytest.fixture
def database(services) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database of this test's own on the suite's server: its deliveries are ours alone."""
    server = services.database_url.rsplit("/", 1)[0]
    url = f"{server}/forewarn_kafka_outage_{uuid.uuid4().hex[:8]}"
    db.migrate(url, progress=lambda m: None)
    yield url
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_ingest_and_the_worker_wait_out_a_30_s_kafka_outage(  # type: ignore[no-untyped-def]
    services, database, tmp_path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    events: list[str] = []
    started: list[launcher.Service] = []
    children: list[Child] = []
    sink = HttpSink().start()
    tansu_port = launcher.free_port()
    proxy = ChaosProxy("127.0.0.1", tansu_port).start()
    stored = Stored(database)
    try:
        mosquitto = launcher.start_mosquitto(log_dir=logs)
        started.append(mosquitto)
        # Tansu keeps everything in memory: never restarted, cut at the proxy it advertises
        started.append(launcher.start_tansu(tansu_port, log_dir=logs, advertised_port=proxy.port))
        kafka_url = f"kafka://127.0.0.1:{proxy.port}"
        env = {
            **services.env,
            "FOREWARN_MQTT_URL": mosquitto.url,
            "FOREWARN_KAFKA_URL": kafka_url,
            "FOREWARN_DATABASE_URL": database,
            "FOREWARN_INGEST_CLIENT_ID": f"kafka-outage-ingest-{uuid.uuid4().hex[:6]}",
            "FOREWARN_WORKER_ID": f"kafka-outage-worker-{uuid.uuid4().hex[:6]}",
            "FOREWARN_STATE_DIR": str(tmp_path / "state"),
            "TMPDIR": str(tmp_path),  # the worker's heartbeat file stays ours
        }
        asyncio.run(bus.ensure_topics(kafka_url, int(env["FOREWARN_PARTITIONS"])))
        for device, _ in DEVICES:
            db.add_customer(database, f"c-{device}", f"Customer of {device}", "en", [sink.url(device)], tenant=TENANT)
        for device, kind in DEVICES:
            db.add_device(database, device, TENANT, f"c-{device}", kind)

        worker = spawn("worker", ["worker"], env, logs / "worker.log")
        ingest = spawn("ingest", ["ingest"], env, logs / "ingest.log")
        children += [ingest, worker]
        ingest.ready(60)
        worker.ready(180)
        assert proxy.accepted > 0, "ingest and the worker did not reach Tansu through the proxy"

        t0 = time.monotonic()
        stamp = lambda what: events.append(f"{time.monotonic() - t0:6.1f} s  {what}")  # noqa: E731
        devices = Devices(host_port(mosquitto.url, 1883), t0)
        devices.start()
        stored.start()

        def alive_until(moment: float) -> None:
            while time.monotonic() - t0 < moment:
                for child in children:
                    assert child.alive(), (
                        f"{child.name} exited with code {child.proc.returncode} at "
                        f"{time.monotonic() - t0:.1f} s:\n{child.text()[-4000:]}\n" + "\n".join(events)
                    )
                time.sleep(0.2)

        alive_until(CUT_AT)
        links = proxy.open_links()
        proxy.cut()
        cut_at = time.monotonic()
        stamp(f"Kafka cut ({links} connections closed, new ones refused)")
        alive_until(HEAL_AT)
        proxy.heal()
        healed_at = time.monotonic()
        stamp(f"Kafka back ({proxy.refused_while_cut} connections refused during the cut)")
        alive_until(PUBLISH_S)
        devices.join(60)
        assert devices.error is None, f"the devices' publisher failed: {devices.error!r}"
        stamp(f"publishing over: {len(devices.values)} readings, {len(devices.acked)} acknowledged by Mosquitto")

        expected = {key: devices.values[key] for key in devices.acked}

        def drained() -> bool:
            counts = faults.stored_counts(database, TENANT)
            return all(counts.get(key) == n for key, n in expected.items())

        stamp("drained" if wait_until(drained, DRAIN_S) else f"not drained after {DRAIN_S:.0f} s")

        def delivered() -> Counter[str]:
            return Counter(d.path.strip("/") for d in sink.received)

        wait_until(lambda: all(delivered()[device] for device in LEAK_FROM), WARN_S)
        time.sleep(10)  # room for a duplicate: a warning sent again after the outage
        for child in children:
            assert child.alive(), f"{child.name} exited with code {child.proc.returncode}:\n{child.text()[-4000:]}"
        stored.done.set()
        stamp(f"deliveries at the sink: {dict(delivered())}")
        stamp(f"worker status: {worker.status()}")
        stamp(f"ingest status: {ingest.status()}")
        kafka_down_s = healed_at - cut_at
        worker_back_s = stored.first_growth_after(healed_at)
        backlog = sum(1 for _, seq in devices.acked if seq < int(HEAL_AT))
        caught_up_s = stored.caught_up_after(healed_at, backlog)
        stamp(
            f"the cut lasted {kafka_down_s:.1f} s; the worker stored readings again "
            + (f"{worker_back_s:.1f} s after the heal" if worker_back_s is not None else "never (sampled)")
            + f", and all {backlog} readings published before the heal "
            + (f"{caught_up_s:.1f} s after it" if caught_up_s is not None else "never (sampled)")
        )

        # --- what must be true ---------------------------------------------------------------
        report = "\n".join(events)
        diagnosis = "\n".join(f"--- {c.name} log excerpt\n{excerpt(c.text())}" for c in children)
        refused = ingest.status().get("rejects")
        assert not refused, f"ingest refused readings of the test's devices: {refused}\n{report}"
        during = [key for key in expected if CUT_AT + 1 <= key[1] < HEAL_AT - 1]
        assert during, "no reading was acknowledged during the cut: the test proves nothing"
        counts = faults.stored_counts(database, TENANT)
        missing = sorted(key for key in expected if key not in counts)
        partial = sorted(key for key, n in expected.items() if key in counts and counts[key] != n)
        assert not missing and not partial, (
            f"{len(missing)} of {len(expected)} acknowledged readings not stored, {len(partial)} stored partly "
            f"(first missing: {missing[:10]}; partly: {partial[:10]})\n{report}\n{diagnosis}"
        )
        twice = {key: n for key, n in counts.items() if key in devices.values and n != devices.values[key]}
        assert not twice, f"readings stored twice: {list(twice.items())[:10]}\n{report}"

        warned = delivered()
        assert all(warned[device] for device in LEAK_FROM), (
            f"a leak was never delivered: {warned}\n{report}\n{diagnosis}"
        )
        assert set(warned) == set(LEAK_FROM), f"a device that did not leak was warned: {warned}\n{report}"
        assert all(warned[device] == 1 for device in LEAK_FROM), f"a leak delivered twice: {warned}\n{report}"
        rows = db.query(database, "SELECT count(*) AS n FROM deliveries WHERE status = 'sent'")[0]["n"]
        assert rows == len(sink.received), (
            f"{len(sink.received)} messages at the sink, {rows} 'sent' delivery rows: one went out twice\n{report}"
        )
        warnings = db.query(database, "SELECT device, count(*) AS n FROM warnings GROUP BY device")
        assert {r["device"]: r["n"] for r in warnings} == dict.fromkeys(LEAK_FROM, 1), f"warnings: {warnings}"

        # one outage: a line when it starts and one when it ends, per part of a process that talks
        # to Kafka, not one per attempt (aiokafka and Faust would log several a second)
        for child in children:
            lines = kafka_lines(child.text())
            events.append(f"{child.name}: {len(lines)} warnings about Kafka")
            events += [f"    {line[:220]}" for line in lines[:12]]
            assert len(lines) <= KAFKA_LINES, (
                f"{child.name} logged {len(lines)} warnings about Kafka for one outage (at most {KAFKA_LINES}):\n"
                + "\n".join(line[:220] for line in lines[:40])
                + f"\n{report}"
            )
        print("\n" + "\n".join(events))
    finally:
        stored.done.set()
        for child in children:
            if child.alive():
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(20)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
        proxy.stop()
        sink.stop()
        launcher.LocalStack("", "", "", started).stop()
        for log in sorted(Path(logs).glob("*.log")):
            print(f"--- {log.name}: {log.stat().st_size} bytes")
