"""Throughput, latency, start-up and memory of the real pipeline on this machine:
MQTT → ingest → Kafka → worker → PostgreSQL → the customer's channel.

Everything runs as in production, on private services started for the occasion: Mosquitto and
Tansu on free loopback ports (a fresh pair per mode), a fresh ``forewarn_bench_<hex>`` database
(dropped at the end), ``forewarn ingest`` and ``forewarn worker`` as child processes
(``forewarn.children.spawn``) in a scratch directory. 200 background devices (kinds in turn,
tenant ``bench``) send quiet plausible readings (2-3 metrics each) at QoS 1 from several
``core.mqtt.Publisher`` clients (threads). Each phase has timestamps of its own (one second
apart per device, days ago), so ``count(*)`` of a phase's rows is exact and cheap.

Modes (``--modes``, all by default, about 8-10 minutes):

``ingest``   MQTT → ingest → Kafka alone, ``--messages`` messages per K of ``--batch``: msg/s,
             readings/s, records/s (counted with ``core.bus.read_topic``), ingest's CPU per message.
``burst``    a fresh ingest through a burst of ``--burst-messages`` messages of ``--burst-k`` readings
             (20,000 x 100): its peak RSS (VmHWM) and its rate.
``e2e``      the whole path, for each K of ``--e2e-batch``: publishers send as fast as the pipeline
             stores (at most ``--backlog-s`` of work ahead) for ``--seconds``; readings/s and metric
             values/s from the first publish until the last row is stored, the slowest and median
             10-second window, and every acknowledged reading checked in ``readings`` per
             (device, metric, ts): lost, stored twice, unexpected. Then the latency:
``latency``  (runs with ``e2e``, on the same worker) a background load of K=1 messages at
             ``--load-share`` (0.5) of the K=1 rate just measured (or ``--background-rate``
             readings/s) for ``--latency-seconds``, while ``--leaks`` water-leak readings of other
             home devices are published at even intervals; each leak is timed from its publish
             until the warning reaches the customer's channel (a ``forewarn.sink.HttpSink``):
             median, p90, p99, max, and the warnings that never came.
``startup``  fresh brokers; ingest and the worker spawned together: the worker's time from spawn to
             ready (its status file), and, like the demo (which publishes once ingest is ready),
             the time from the first reading (a leak) to the first warning. Then the worker's
             memory: its VmRSS before and after ``--mem-devices`` (10,000) new devices send a
             message of ``--mem-readings`` readings each, per 10,000 devices.

Each figure is printed beside today's (the issue's baseline, measured before this work) as a
ratio, and against the issue's target. During each phase the benchmark records what else used the
machine (busy and steal %, load average, the processes outside this benchmark using the most CPU),
so a noisy run is visible. Figures only, no assertions.

    python benchmarks/pipeline_throughput.py [--modes ingest burst e2e startup] [--seconds 60]
        [--e2e-batch 1 10] [--batch 1 10] [--messages 20000] [--burst-messages 20000] [--burst-k 100]
        [--latency-seconds 60] [--leaks 60] [--load-share 0.5] [--background-rate R]
        [--mem-devices 10000] [--devices 200] [--publishers 4] [--partitions 4] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from benchlib import (  # this folder's helper (it also puts this checkout first on sys.path)
    REPO,
    MachineSnapshot,
    bench_database,
    bulk_devices,
    cpu_seconds,
    machine,
    machine_between,
    machine_snapshot,
    peak_rss_mb,
    rss_mb,
    say,
    table,
)

from core import db
from core.bus import end_offsets, read_topic
from core.contract import METRICS, TOPIC_READINGS, TOPIC_REJECTS, TOPIC_WARNINGS, telemetry_topic
from core.mqtt import Publisher
from core.readiness import read_status
from core.settings import host_port
from forewarn import launcher
from forewarn.children import Child, spawn
from forewarn.sink import Delivered, HttpSink
from ingest.validate import validate_message

TENANT = "bench"  # the background fleet
LEAK_TENANT = "benchleak"  # home devices whose leaks are timed, a customer (and channel path) each
MEM_TENANT = "benchmem"  # the devices that size the worker's memory
KINDS = ("home", "vehicle", "equipment", "coldchain")
# Per kind: (metric, low, high) — quiet, plausible values (a boolean metric is sent as true);
# the third metric is left out of every other reading (2-3 metrics per reading).
KIND_METRICS = {
    "home": (("temp_c", 19.0, 22.0), ("pipe_temp_c", 12.0, 16.0), ("humidity_pct", 40.0, 55.0)),
    "vehicle": (("speed_kmh", 30.0, 60.0), ("engine_rpm", 1500.0, 2500.0), ("coolant_temp_c", 85.0, 92.0)),
    "equipment": (("vibration_mm_s", 2.0, 3.0), ("bearing_temp_c", 45.0, 48.0), ("current_a", 20.0, 24.0)),
    "coldchain": (("temp_c", 2.0, 4.0), ("compressor_on", 1.0, 1.0), ("battery_pct", 80.0, 81.0)),
}
STEP_MS = 1000  # a device's readings are a second apart
FIRST_TS_MS = int(time.time() * 1000) - 4 * 86_400_000  # phases follow each other from 4 days ago

# Today's figures (issue 11, measured with this script before the work, same machine) and the targets.
FORWARDER_MSG_S = 7_400  # FIELD-NOTES: Python MQTT→Kafka forwarder, QoS 1
BEFORE_INGEST = {1: (6_819, 6_819), 10: (5_478, 54_784), 100: (1_580, 158_045)}  # K: (msg/s, readings/s)
BEFORE_E2E = {1: (1_404, 3_538), 10: (6_656, 16_640), 100: (13_485, 33_713)}  # K: (readings/s, values/s)
TARGET_E2E = {1: ("readings/s", 5_000), 10: ("values/s", 50_000)}
BEFORE_INGEST_BURST_MIB = 202
TARGET_INGEST_BURST_MIB = 150
BEFORE_LEAK_IDLE_S = 0.9
TARGET_LATENCY_MS = (150, 1000)  # median, p99
BEFORE_WORKER_READY_S = 30.0
TARGET_WORKER_READY_S = 5.0
BEFORE_FIRST_WARNING_S = 40.0
TARGET_FIRST_WARNING_S = 10.0


def ratio(now: float | None, before: float | None) -> str:
    return "—" if not now or not before else f"{now / before:.2f}×"


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


# ------------------------------------------------------------------------------ the fleet


@dataclass
class Fleet:
    """The background devices and the readings they send: ``seq`` rises per device across the run,
    ``ts`` starts afresh at each phase (:meth:`new_phase`) after everything sent before."""

    devices: list[tuple[str, str]]  # (device id, kind)
    base_ms: int = FIRST_TS_MS
    next_seq: list[int] = field(default_factory=list)
    in_phase: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.next_seq = [0] * len(self.devices)
        self.in_phase = [0] * len(self.devices)

    def new_phase(self) -> int:
        """Start a phase: its timestamps follow every earlier one; returns its first ts (ms)."""
        self.base_ms += (max(self.in_phase) + 1) * STEP_MS
        self.in_phase = [0] * len(self.devices)
        if self.base_ms > time.time() * 1000 - 86_400_000:
            raise SystemExit("the phases used up their 3 days of timestamps: publish fewer readings")
        return self.base_ms

    def reading(self, d: int, rng: random.Random) -> dict[str, object]:
        seq = self.next_seq[d]
        self.next_seq[d] += 1
        ts = self.base_ms + self.in_phase[d] * STEP_MS
        self.in_phase[d] += 1
        spec = KIND_METRICS[self.devices[d][1]]
        chosen = spec if seq % 2 == 0 else spec[:2]
        metrics: dict[str, float | bool] = {
            name: True if METRICS[name].kind == "bool" else round(rng.uniform(lo, hi), 2) for name, lo, hi in chosen
        }
        return {"ts": ts, "seq": seq, "metrics": metrics}

    def message(self, d: int, k: int, rng: random.Random) -> tuple[str, bytes, int]:
        """(topic, payload, metric values) of one message of ``k`` readings of device ``d``."""
        batch = [self.reading(d, rng) for _ in range(k)]
        values = sum(len(r["metrics"]) for r in batch)  # type: ignore[arg-type,misc]
        payload = orjson.dumps(batch[0] if k == 1 else {"batch": batch})
        return telemetry_topic(TENANT, self.devices[d][0]), payload, values

    def stream(self, share: int, shares: int, k: int, seed: int) -> Iterator[tuple[int, str, bytes, int]]:
        """Endless messages of the devices ``d % shares == share`` in turn: (device, topic, payload, values)."""
        rng = random.Random(seed)
        mine = [d for d in range(len(self.devices)) if d % shares == share]
        while True:
            for d in mine:
                topic, payload, values = self.message(d, k, rng)
                yield d, topic, payload, values


def pure_ingest_cost(fleet: Fleet, k: int, n: int = 400) -> float:
    """Seconds per message of ingest's own pure code on this kind of message, in this process:
    ``validate_message`` plus ``readings_record`` (one record per message: an upper bound)."""
    from core.contract import readings_record

    probe = Fleet(fleet.devices, fleet.base_ms)
    rng = random.Random(1)
    messages = [probe.message(i % len(fleet.devices), k, rng) for i in range(n)]
    registry = {f"{TENANT}/{device}": kind for device, kind in fleet.devices}
    now_ms = int(time.time() * 1000)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for topic, payload, _ in messages:
            verdict = validate_message(topic, payload, registry, now_ms)
            readings_record(TENANT, verdict.device or "", verdict.kind or "", list(verdict.readings), now_ms)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


# ------------------------------------------------------------------------------ publishing


class PublisherThread(threading.Thread):
    """One Publisher client sending a stream of messages at QoS 1 (flush every ``flush`` messages).

    Stops after ``limit`` messages or at ``until`` (perf_counter); ``rate`` paces it (messages/s);
    ``gate()`` False holds it back (the pipeline is too far behind). Counts what the broker
    acknowledged, per device (metric values), for the stored-exactly-once check."""

    def __init__(
        self,
        index: int,
        mqtt: tuple[str, int],
        stream: Iterator[tuple[int, str, bytes, int]],
        go: threading.Event,
        *,
        limit: int | None = None,
        until: float | None = None,
        rate: float | None = None,
        gate: Callable[[], bool] | None = None,
        flush: int = 500,
    ) -> None:
        super().__init__(name=f"bench-publisher-{index}", daemon=True)
        self.stream, self.go, self.limit, self.until, self.rate, self.gate = stream, go, limit, until, rate, gate
        self.flush_every = flush
        self.sent = self.acked = self.acked_values = 0
        self.acked_per_device: Counter[int] = Counter()
        self.stop_now = False
        self.done_at: float | None = None
        self.error: BaseException | None = None
        self.publisher = Publisher(mqtt[0], mqtt[1], f"bench-pub-{index}-{uuid.uuid4().hex[:6]}")
        self.publisher.start()

    def _flush(self, infos: list[tuple[Any, int, int]]) -> None:
        self.publisher.flush([info for info, _, _ in infos], timeout=120)
        for info, d, values in infos:
            if info.is_published():
                self.acked += 1
                self.acked_values += values
                self.acked_per_device[d] += values
        infos.clear()

    def run(self) -> None:
        try:
            self.go.wait()
            t0 = time.perf_counter()
            infos: list[tuple[Any, int, int]] = []
            for d, topic, payload, values in self.stream:
                if self.stop_now or (self.limit is not None and self.sent >= self.limit):
                    break
                now = time.perf_counter()
                if self.until is not None and now >= self.until:
                    break
                if self.rate:
                    ahead = t0 + self.sent / self.rate - now
                    if ahead > 0.005:
                        time.sleep(ahead)
                while self.gate is not None and not self.gate() and not self.stop_now:
                    time.sleep(0.01)
                infos.append((self.publisher.publish(topic, payload, qos=1), d, values))
                self.sent += 1
                if len(infos) >= self.flush_every:
                    self._flush(infos)
            self._flush(infos)
            self.done_at = time.perf_counter()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            self.publisher.stop()


def start_publishers(
    mqtt: tuple[str, int], streams: list[Iterator[tuple[int, str, bytes, int]]], **kwargs: Any
) -> tuple[threading.Event, list[PublisherThread]]:
    go = threading.Event()
    threads = [PublisherThread(i, mqtt, s, go, **kwargs) for i, s in enumerate(streams)]
    for t in threads:
        t.start()
    return go, threads


def finish(threads: list[PublisherThread]) -> None:
    for t in threads:
        t.stop_now = True
    for t in threads:
        t.join(timeout=130)
    errors = [t.error for t in threads if t.error is not None]
    if errors:
        say(f"a publisher failed: {errors[0]!r}")


# ------------------------------------------------------------------------------ Kafka counting


@dataclass
class KafkaCount:
    records: int = 0
    readings: int = 0
    rejects: Counter[str] = field(default_factory=Counter)


async def count_readings(bootstrap: str, counts: KafkaCount) -> None:
    """Count the readings inside forewarn.readings records (and rejects) as they arrive."""
    async with contextlib.aclosing(read_topic(bootstrap, TOPIC_READINGS, TOPIC_REJECTS)) as records:  # type: ignore[type-var]
        async for record in records:
            doc = orjson.loads(record.value)
            if record.topic == TOPIC_REJECTS:
                counts.rejects[doc.get("reason", "?")] += 1
                continue
            counts.records += 1
            counts.readings += len(doc["readings"])


# ------------------------------------------------------------------------------ services


@dataclass
class Brokers:
    mosquitto: launcher.Service
    tansu: launcher.Service

    @property
    def mqtt(self) -> tuple[str, int]:
        return host_port(self.mosquitto.url, 1883)

    @property
    def bootstrap(self) -> str:
        return self.tansu.url.split("://", 1)[1]

    @property
    def pids(self) -> dict[str, int]:
        return {"mosquitto": self.mosquitto.proc.pid, "tansu": self.tansu.proc.pid}  # type: ignore[union-attr]

    def stop(self) -> None:
        launcher.LocalStack("", "", "", [self.mosquitto, self.tansu]).stop()


def start_brokers(logs: Path) -> Brokers:
    mosquitto = launcher.start_mosquitto(log_dir=logs)
    try:
        tansu = launcher.start_tansu(log_dir=logs)
    except BaseException:
        launcher.LocalStack("", "", "", [mosquitto]).stop()
        raise
    say(f"brokers: {mosquitto.url} (Mosquitto), {tansu.url} (Tansu)")
    return Brokers(mosquitto, tansu)


def child_env(brokers: Brokers, database_url: str, args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    env = {
        "FOREWARN_MQTT_URL": brokers.mosquitto.url,
        "FOREWARN_KAFKA_URL": brokers.tansu.url,
        "FOREWARN_DATABASE_URL": database_url,
        "FOREWARN_PARTITIONS": str(args.partitions),
        "FOREWARN_INGEST_CLIENT_ID": f"forewarn-ingest-bench-{uuid.uuid4().hex[:6]}",
        "FOREWARN_WORKER_ID": f"forewarn-bench-{uuid.uuid4().hex[:6]}",
        "FOREWARN_STATE_DIR": str(workdir / "state"),
        "FOREWARN_LOG_LEVEL": "INFO",
        "TMPDIR": str(workdir),  # heartbeat files stay in our scratch directory
        # the children start in the scratch directory: without this they would import the package
        # the virtualenv was installed from (another checkout, perhaps), not the code next to us
        "PYTHONPATH": os.pathsep.join(p for p in (str(args.code), os.environ.get("PYTHONPATH", "")) if p),
    }
    if args.ingest_linger_ms is not None:
        env["FOREWARN_INGEST_LINGER_MS"] = str(args.ingest_linger_ms)
    return env


def ready_after(child: Child, t0: float, timeout: float) -> float:
    """Seconds from ``t0`` (perf_counter, just before spawning) until the child's status file says
    ready (polled every 20 ms); raises with the end of its log when it does not get ready."""
    deadline = t0 + timeout
    last_say = time.perf_counter()
    while time.perf_counter() < deadline:
        doc = read_status(child.status_path)
        if doc is not None and doc.get("pid") == child.proc.pid and doc.get("ready"):
            return time.perf_counter() - t0
        if child.proc.poll() is not None:
            break
        if time.perf_counter() - last_say > 10:
            last_say = time.perf_counter()
            say(f"waiting for {child.name} to be ready … {last_say - t0:.0f} s")
        time.sleep(0.02)
    tail = child.text()[-3000:]
    code = child.proc.poll()
    child.stop()
    raise RuntimeError(f"{child.name} did not get ready (exit code {code}):\n{tail}")


def start_child(name: str, env: dict[str, str], log: Path, timeout: float) -> tuple[Child, float]:
    t0 = time.perf_counter()
    child = spawn(name, [name], env, log)
    seconds = ready_after(child, t0, timeout)
    say(f"{name} ready {seconds:.1f} s after spawn (pid {child.proc.pid})")
    return child, seconds


def stop_child(child: Child | None) -> None:
    if child is not None:
        child.stop()


def register(database_url: str, devices: int, leaks: int, sink: HttpSink) -> tuple[list[tuple[str, str]], list[str]]:
    """The background fleet (one customer, channel /bench) and the leak devices (a customer and a
    channel path each, ``/leak/<device>``)."""
    say(f"registering {devices} background devices and {leaks} leak devices …")
    db.add_customer(database_url, "bench-customer", "Bench", "en", [sink.url("bench")], tenant=TENANT)
    fleet = [(f"{KINDS[i % len(KINDS)]}-{i:04d}", KINDS[i % len(KINDS)]) for i in range(devices)]
    bulk_devices(database_url, TENANT, "bench-customer", fleet)
    leak_devices = [f"leak-{i:04d}" for i in range(leaks)]
    for device in leak_devices:
        db.add_customer(database_url, f"c-{device}", "Leak", "en", [sink.url(f"leak/{device}")], tenant=LEAK_TENANT)
        bulk_devices(database_url, LEAK_TENANT, f"c-{device}", [(device, "home")])
    return fleet, leak_devices


class TimedDeliveries(list[Delivered]):
    """The sink's list of deliveries, timing each as it arrives (perf_counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.first_at: dict[str, float] = {}
        self.first_wall: dict[str, float] = {}

    def append(self, item: Delivered) -> None:
        self.first_at.setdefault(item.path.strip("/"), time.perf_counter())
        self.first_wall.setdefault(item.path.strip("/"), time.time())
        super().append(item)


def leak_payload(seq: int) -> bytes:
    return orjson.dumps({"ts": int(time.time() * 1000), "seq": seq, "metrics": {"water_leak": True, "temp_c": 19.0}})


# ------------------------------------------------------------------------------ phases


@dataclass
class Phase:
    """What the machine did during a phase (and ours: cores per process)."""

    name: str
    a: MachineSnapshot
    pids: dict[str, int]
    b: MachineSnapshot | None = None

    def end(self) -> Phase:
        self.b = machine_snapshot()
        return self

    def line(self) -> str:
        assert self.b is not None
        ours = ", ".join(f"{name} {cores:.2f}" for name, cores in self.cores().items())
        return f"{self.name}: {machine_between(self.a, self.b)}; ours (cores): {ours}"

    def cores(self) -> dict[str, float]:
        assert self.b is not None
        wall = max(self.b.wall - self.a.wall, 1e-9)
        out = {}
        for name, pid in self.pids.items():
            before, after = self.a.procs.get(pid), self.b.procs.get(pid)
            out[name] = ((after[2] if after else 0.0) - (before[2] if before else 0.0)) / wall
        return out

    def cpu_s(self, name: str) -> float:
        return self.cores()[name] * (self.b.wall - self.a.wall)  # type: ignore[union-attr]


@dataclass
class Report:
    """Everything measured, printed at the end."""

    sections: list[str] = field(default_factory=list)
    machine_lines: list[str] = field(default_factory=list)
    k1_readings_s: float | None = None

    def add(self, title: str, *lines: str) -> None:
        self.sections.append("\n".join([f"## {title}", "", *lines]))


async def wait_for(
    done: Callable[[], Awaitable[bool]], label: str, progress: Callable[[], str], timeout: float, stall_s: float = 30
) -> bool:
    """Poll ``done()`` until true; False after ``timeout`` or ``stall_s`` without a change in ``progress()``."""
    t0 = last_print = last_change = time.perf_counter()
    last = progress()
    while not await done():
        await asyncio.sleep(0.1)
        now = time.perf_counter()
        state = progress()
        if state != last:
            last, last_change = state, now
        if now - last_print >= 5:
            last_print = now
            say(f"{label}: {now - t0:5.1f} s; {state}")
        if now - t0 > timeout or now - last_change > stall_s:
            say(f"{label}: gave up after {now - t0:.0f} s ({state})")
            return False
    return True


def stored_since(database_url: str, tenant: str, since_ms: int) -> int:
    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC)
    return int(
        db.query(database_url, "SELECT count(*) AS n FROM readings WHERE tenant = %s AND ts >= %s", (tenant, since))[0][
            "n"
        ]
    )


def check_stored(database_url: str, fleet: Fleet, since_ms: int, acked: Counter[int]) -> tuple[int, int, int, int]:
    """Rows of the phase per (device, metric, ts) against the metric values the broker acknowledged:
    (expected, lost, stored twice, unexpected)."""
    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC)
    rows = db.query(
        database_url,
        "SELECT device, count(*) AS n, count(DISTINCT (metric, ts)) AS d FROM readings"
        " WHERE tenant = %s AND ts >= %s GROUP BY device",
        (TENANT, since),
    )
    by_device = {str(r["device"]): (int(r["n"]), int(r["d"])) for r in rows}
    expected = lost = twice = unexpected = 0
    for d, (device, _) in enumerate(fleet.devices):
        want = acked.get(d, 0)
        n, distinct = by_device.pop(device, (0, 0))
        expected += want
        lost += max(0, want - distinct)
        unexpected += max(0, distinct - want)
        twice += n - distinct
    unexpected += sum(d for _, d in by_device.values())
    return expected, lost, twice, unexpected


# ------------------------------------------------------------------------------ ingest alone, and the burst


async def ingest_alone(
    args: argparse.Namespace, database_url: str, fleet: Fleet, workdir: Path, report: Report, burst: bool
) -> None:
    """(burst False) K of ``--batch``, ``--messages`` each; (burst True) a fresh ingest through
    ``--burst-messages`` messages of ``--burst-k`` readings: its peak RSS."""
    brokers = start_brokers(workdir)
    ingest: Child | None = None
    counter: asyncio.Task[None] | None = None
    tag = "burst" if burst else "ingest"
    try:
        env = child_env(brokers, database_url, args, workdir)
        ingest, _ = start_child("ingest", env, workdir / f"{tag}-ingest.log", 60)
        counts = KafkaCount()
        counter = asyncio.create_task(count_readings(brokers.bootstrap, counts))
        pids = {"ingest": ingest.proc.pid, **brokers.pids, "benchmark": os.getpid()}
        rows = []
        plan = [(args.burst_k, args.burst_messages)] if burst else [(k, args.messages) for k in args.batch]
        # warm-up: one message per device, so the first phase does not pay for connections
        fleet.new_phase()
        go, threads = start_publishers(brokers.mqtt, [fleet.stream(0, 1, 1, 1)], limit=len(fleet.devices))
        go.set()
        target = len(fleet.devices)

        async def warm() -> bool:
            return counts.readings >= target

        await wait_for(warm, "warm-up", lambda: f"{counts.readings} readings in Kafka", 60)
        finish(threads)
        rss_before = rss_mb(ingest.proc.pid) or 0.0
        for k, n in plan:
            fleet.new_phase()
            per = [n // args.publishers + (1 if i < n % args.publishers else 0) for i in range(args.publishers)]
            streams = [fleet.stream(i, args.publishers, k, 100 + i) for i in range(args.publishers)]
            start_readings, start_records = counts.readings, counts.records
            target = start_readings + n * k
            phase = Phase(f"{tag} K={k}", machine_snapshot(), pids)
            go = threading.Event()
            threads = [PublisherThread(i, brokers.mqtt, s, go, limit=per[i]) for i, s in enumerate(streams)]
            for t in threads:
                t.start()
            rss_peak_seen = 0.0
            t0 = time.perf_counter()
            go.set()

            async def arrived(target: int = target, pid: int = ingest.proc.pid) -> bool:
                nonlocal rss_peak_seen
                rss_peak_seen = max(rss_peak_seen, rss_mb(pid) or 0.0)
                return counts.readings >= target

            def progress(start: int = start_readings, total: int = n * k) -> str:
                return f"{counts.readings - start:,}/{total:,} readings in Kafka"

            ok = await wait_for(arrived, f"{tag} K={k}", progress, 240)
            seconds = time.perf_counter() - t0 if ok else None
            phase.end()
            finish(threads)
            report.machine_lines.append(phase.line())
            records = counts.records - start_records
            ingest_cpu = phase.cpu_s("ingest")
            pure = pure_ingest_cost(fleet, k)
            cores = phase.cores()
            before = BEFORE_INGEST.get(k)
            msg_s = n / seconds if seconds else None
            rows.append(
                [
                    k,
                    f"{n:,}",
                    "—" if not seconds else f"{seconds:.1f}",
                    "—" if not msg_s else f"{msg_s:,.0f}",
                    ratio(msg_s, before[0] if before else None),
                    "—" if not msg_s else f"{msg_s * k:,.0f}",
                    ratio(msg_s * k if msg_s else None, before[1] if before else None),
                    f"{records / seconds:,.0f}" if seconds else "—",
                    f"{(counts.readings - start_readings) / max(records, 1):.1f}",
                    f"{ingest_cpu / n * 1e6:,.0f}",
                    f"{pure * 1e6:,.0f}",
                    f"{cores['ingest']:.2f}",
                    f"{rss_peak_seen:,.0f}",
                    f"{peak_rss_mb(ingest.proc.pid) or 0:,.0f}",
                ]
            )
            say(f"{tag} K={k}: {msg_s or 0:,.0f} msg/s, {(msg_s or 0) * k:,.0f} readings/s")
            await asyncio.sleep(1.0)
        headers = [
            "K",
            "messages",
            "seconds",
            "msg/s",
            "÷ before",
            "readings/s",
            "÷ before",
            "Kafka records/s",
            "readings/record",
            "ingest µs CPU/msg",
            "of which validate+encode µs",
            "ingest cores",
            "ingest RSS max seen MiB",
            "ingest peak RSS (VmHWM) MiB",
        ]
        lines = [table(headers, rows), ""]
        if burst:
            peak = peak_rss_mb(ingest.proc.pid) or 0.0
            lines.append(
                f"ingest peak RSS through the burst: **{peak:,.0f} MiB** (VmHWM; {rss_before:,.0f} MiB before it) — "
                f"before: {BEFORE_INGEST_BURST_MIB} MiB ({ratio(peak, BEFORE_INGEST_BURST_MIB)}), "
                f"target ≤ {TARGET_INGEST_BURST_MIB} MiB: {'met' if peak <= TARGET_INGEST_BURST_MIB else 'NOT met'}"
            )
        lines.append(
            "before = this script's figures of 2026-11-22 (ingest alone: 6,819 / 5,478 / 1,580 msg/s at K = 1 / 10 /"
            " 100; range that day 6.8k–12.7k at K=1); validate+encode = ingest.validate + contract.readings_record"
            " timed in this process"
        )
        if counts.rejects:
            lines.append(f"rejects: {dict(counts.rejects)}")
        report.add(
            f"ingest through a burst of {args.burst_messages:,} messages of {args.burst_k} readings (fresh ingest)"
            if burst
            else "ingest alone: MQTT → ingest → Kafka forewarn.readings",
            *lines,
        )
    finally:
        if counter is not None:
            counter.cancel()
            with contextlib.suppress(BaseException):
                await counter
        stop_child(ingest)
        brokers.stop()


# ------------------------------------------------------------------------------ the whole path


class Stored:
    """``count(*)`` of a phase's rows, polled at most as often as it stays cheap (in a thread)."""

    def __init__(self, database_url: str, tenant: str, since_ms: int) -> None:
        self.url, self.tenant, self.since_ms = database_url, tenant, since_ms
        self.n = 0
        self.samples: list[tuple[float, int]] = []
        self._next = 0.0

    async def poll(self) -> int:
        now = time.perf_counter()
        if now >= self._next:
            self.n = await asyncio.to_thread(stored_since, self.url, self.tenant, self.since_ms)
            seen = time.perf_counter()
            self.samples.append((seen, self.n))
            self._next = seen + max(0.25, 3 * (seen - now))
        return self.n

    def windows(self, t0: float, t1: float, width: float = 10.0) -> list[float]:
        """Values stored per second in consecutive windows of about ``width`` s between t0 and t1."""
        out, start = [], (t0, 0)
        for at, n in self.samples:
            if at > t1:
                break
            if at - start[0] >= width:
                out.append((n - start[1]) / (at - start[0]))
                start = (at, n)
        return out


async def sustained(
    args: argparse.Namespace,
    database_url: str,
    fleet: Fleet,
    brokers: Brokers,
    pids: dict[str, int],
    k: int,
    report: Report,
) -> list[object]:
    """Publish K-reading messages as fast as the pipeline stores them for ``--seconds``; one table row."""
    since = fleet.new_phase()
    stored = Stored(database_url, TENANT, since)
    rate = {"values_s": 5_000.0}
    published = {"values": 0}
    threads: list[PublisherThread] = []

    def gate() -> bool:  # at most --backlog-s of work ahead of what is stored
        ahead = sum(t.sent for t in threads) * k * 2.5 - stored.n
        return ahead < max(20_000.0, args.backlog_s * rate["values_s"])

    streams = [fleet.stream(i, args.publishers, k, 200 + i) for i in range(args.publishers)]
    phase = Phase(f"e2e K={k}", machine_snapshot(), pids)
    go = threading.Event()
    until = time.perf_counter() + 3600
    limit = None if args.e2e_messages is None else args.e2e_messages // args.publishers
    threads.extend(
        PublisherThread(i, brokers.mqtt, s, go, until=until, gate=gate, limit=limit) for i, s in enumerate(streams)
    )
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    for t in threads:
        t.until = t0 + args.seconds
    go.set()
    worker_cpu0 = cpu_seconds(pids["worker"]) or 0.0
    last_say = t0
    while any(t.is_alive() for t in threads):
        await stored.poll()
        now = time.perf_counter()
        if now - t0 > 3:
            rate["values_s"] = max(1_000.0, stored.n / (now - t0))
        if now - last_say >= 10:
            last_say = now
            say(f"e2e K={k}: {now - t0:4.0f} s, {stored.n:,} values stored ({rate['values_s']:,.0f}/s)")
        await asyncio.sleep(0.1)
    published["values"] = sum(t.acked_values for t in threads)
    publish_end = max(t.done_at or time.perf_counter() for t in threads)
    target = published["values"]

    async def all_stored() -> bool:
        return await stored.poll() >= target

    ok = await wait_for(all_stored, f"e2e K={k} draining", lambda: f"{stored.n:,}/{target:,} values stored", 180)
    t_end = stored.samples[-1][0] if ok else None
    phase.end()
    report.machine_lines.append(phase.line())
    worker_cpu = (cpu_seconds(pids["worker"]) or 0.0) - worker_cpu0
    acked: Counter[int] = Counter()
    for t in threads:
        acked.update(t.acked_per_device)
    messages = sum(t.acked for t in threads)
    readings = messages * k
    seconds = (t_end - t0) if t_end else None
    await asyncio.sleep(2)  # a row arriving late would be seen as unexpected, not missed
    expected, lost, twice, unexpected = await asyncio.to_thread(check_stored, database_url, fleet, since, acked)
    windows = stored.windows(t0, publish_end)
    readings_s = readings / seconds if seconds else None
    values_s = expected / seconds if seconds else None
    if k == 1 and readings_s:
        report.k1_readings_s = readings_s
    before = BEFORE_E2E.get(k)
    target_name, target_value = TARGET_E2E.get(k, ("", None))
    now_for_target = readings_s if target_name == "readings/s" else values_s
    cores = phase.cores()
    say(f"e2e K={k}: {readings_s or 0:,.0f} readings/s, {values_s or 0:,.0f} values/s; lost {lost}, twice {twice}")
    return [
        k,
        f"{publish_end - t0:.0f}",
        "—" if not seconds else f"{seconds:.0f}",
        f"{messages:,}",
        f"{readings:,}",
        "—" if not readings_s else f"{readings_s:,.0f}",
        ratio(readings_s, before[0] if before else None),
        "—" if not values_s else f"{values_s:,.0f}",
        ratio(values_s, before[1] if before else None),
        "—" if not target_value else f"{target_name} ≥ {target_value:,}: {ratio(now_for_target, target_value)}",
        "—" if not windows else f"{min(windows):,.0f} / {statistics.median(windows):,.0f}",
        f"{lost:,}",
        f"{twice:,}",
        f"{unexpected:,}",
        f"{worker_cpu / max(readings, 1) * 1e6:,.0f}",
        f"{cores['worker']:.2f}",
        f"{cores['ingest']:.2f}",
    ]


async def latency(
    args: argparse.Namespace,
    database_url: str,
    fleet: Fleet,
    brokers: Brokers,
    pids: dict[str, int],
    leak_devices: list[str],
    deliveries: TimedDeliveries,
    report: Report,
) -> None:
    """Leak warnings timed through a background load at a share of the measured maximum."""
    if args.background_rate:
        load, why = args.background_rate, "--background-rate"
    elif report.k1_readings_s:
        load, why = args.load_share * report.k1_readings_s, f"{args.load_share:g} × the K=1 rate just measured"
    else:
        load, why = args.load_share * BEFORE_E2E[1][0], f"{args.load_share:g} × today's K=1 rate (e2e not run)"
    since = fleet.new_phase()
    streams = [fleet.stream(i, args.publishers, 1, 300 + i) for i in range(args.publishers)]
    readings_from = await end_offsets(brokers.bootstrap, TOPIC_READINGS)
    phase = Phase("latency", machine_snapshot(), pids)
    t0 = time.perf_counter()
    go, threads = start_publishers(
        brokers.mqtt, streams, until=t0 + args.latency_seconds, rate=load / args.publishers, flush=100
    )
    go.set()
    leak_pub = Publisher(brokers.mqtt[0], brokers.mqtt[1], f"bench-leaks-{uuid.uuid4().hex[:6]}")
    leak_pub.start()
    sent_at: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    try:
        interval = args.latency_seconds / max(1, len(leak_devices))
        for i, device in enumerate(leak_devices):
            await asyncio.sleep(max(0.0, t0 + (i + 0.5) * interval - time.perf_counter()))
            info = leak_pub.publish(telemetry_topic(LEAK_TENANT, device), leak_payload(1), qos=1)
            sent_at[f"leak/{device}"] = time.perf_counter()
            sent_wall[device] = time.time()
            await asyncio.to_thread(info.wait_for_publish, 10)
        await asyncio.to_thread(finish, threads)
        publish_end = time.perf_counter()
        while time.perf_counter() - publish_end < 15 and len(set(sent_at) & set(deliveries.first_at)) < len(sent_at):
            await asyncio.sleep(0.2)
    finally:
        leak_pub.stop()
    phase.end()
    report.machine_lines.append(phase.line())
    background = sum(t.acked for t in threads)
    stored = await asyncio.to_thread(stored_since, database_url, TENANT, since)
    values = sum(t.acked_values for t in threads)
    delays = [deliveries.first_at[p] - t for p, t in sent_at.items() if p in deliveries.first_at]
    missing = len(sent_at) - len(delays)
    cores = phase.cores()
    lines = [
        f"background: {background:,} messages of one reading in {args.latency_seconds:.0f} s = "
        f"{background / args.latency_seconds:,.0f} readings/s (asked {load:,.0f}: {why}); {stored:,} of its "
        f"{values:,} metric values stored 15 s after; worker {cores['worker']:.2f} cores, ingest {cores['ingest']:.2f}",
        "",
    ]
    if delays:
        ms = [d * 1000 for d in delays]
        med, p99 = statistics.median(ms), pct(ms, 0.99)
        lines.append(
            table(
                ["leaks", "warned", "never warned", "median ms", "p90 ms", "p99 ms", "max ms", "min ms"],
                [
                    [
                        len(sent_at),
                        len(delays),
                        missing,
                        f"{med:,.0f}",
                        f"{pct(ms, 0.9):,.0f}",
                        f"{p99:,.0f}",
                        f"{max(ms):,.0f}",
                        f"{min(ms):,.0f}",
                    ]
                ],
            )
        )
        lines += [
            "",
            f"target median ≤ {TARGET_LATENCY_MS[0]} ms ({'met' if med <= TARGET_LATENCY_MS[0] else 'NOT met'}), "
            f"p99 ≤ {TARGET_LATENCY_MS[1]} ms ({'met' if p99 <= TARGET_LATENCY_MS[1] else 'NOT met'}); before: "
            f"{BEFORE_LEAK_IDLE_S * 1000:.0f} ms to an idle system (median now ÷ that: "
            f"{ratio(med, BEFORE_LEAK_IDLE_S * 1000)})",
        ]
        lines += ["", *await latency_stages(brokers.bootstrap, database_url, sent_wall, deliveries, readings_from)]
    else:
        lines.append(f"no leak warning reached the sink ({len(sent_at)} leaks published)")
    report.add("Publish → customer's channel: water-leak warnings through a background load", *lines)


async def latency_stages(
    bootstrap: str,
    database_url: str,
    sent_wall: dict[str, float],
    deliveries: TimedDeliveries,
    readings_from: dict[int, int],
) -> list[str]:
    """Where a leak's time went, median and p90 of each stage: ingest made its readings record
    (the record's ``ingested_at``), the warning record's time on Kafka (the worker decided it),
    the customer's message in the outbox (its ``due_at``), the start of the send (the delivery
    attempt's end less its duration), the sink's receipt."""
    ingested: dict[str, float] = {}
    on_kafka: dict[str, float] = {}

    async def read_leaks(topic: str, into: dict[str, float], offsets: dict[int, int] | None) -> None:
        async for record in read_topic(bootstrap, topic, from_offsets=offsets):
            device = (record.key or "").partition("/")[2]
            if (record.key or "").startswith(f"{LEAK_TENANT}/") and device in sent_wall and device not in into:
                stamp = orjson.loads(record.value).get("ingested_at") if topic == TOPIC_READINGS else None
                into[device] = (stamp if isinstance(stamp, int) else record.timestamp_ms) / 1000
                if len(into) == len(sent_wall):
                    return

    for topic, into, offsets in ((TOPIC_READINGS, ingested, readings_from), (TOPIC_WARNINGS, on_kafka, None)):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read_leaks(topic, into, offsets), 30)
    rows = await asyncio.to_thread(
        db.query,
        database_url,
        "SELECT w.device, extract(epoch FROM min(d.due_at)) AS queued,"
        " extract(epoch FROM min(a.attempted_at)) - min(a.seconds) AS sending"
        " FROM warnings w JOIN deliveries d ON d.warning_id = w.id AND d.audience = 'customer'"
        " JOIN delivery_attempts a ON a.delivery_id = d.id AND a.ok"
        " WHERE w.tenant = %s GROUP BY w.device",
        (LEAK_TENANT,),
    )
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for row in rows:
        device = row["device"]
        received = deliveries.first_wall.get(f"leak/{device}")
        if device not in sent_wall or device not in on_kafka or device not in ingested or received is None:
            continue
        marks = [
            sent_wall[device],
            ingested[device],
            on_kafka[device],
            float(row["queued"]),
            float(row["sending"]),
            received,
        ]
        for name, a, b in zip(STAGES, marks, marks[1:], strict=False):
            stages[name].append((b - a) * 1000)
    if not any(stages.values()):
        return ["where the time went: not measured (no leak could be followed through every stage)"]
    return [
        f"where the time went ({len(stages[STAGES[0]])} leaks followed; wall clocks of this machine):",
        "",
        table(
            ["stage", "median ms", "p90 ms"],
            [[name, f"{statistics.median(ms):,.0f}", f"{pct(ms, 0.9):,.0f}"] for name, ms in stages.items() if ms],
        ),
    ]


STAGES = (
    "publish → ingest made the readings record (Mosquitto, ingest)",
    "readings record → warning on Kafka (readings topic, scoring)",
    "warning on Kafka → message in the outbox (warnings topic, recording)",
    "in the outbox → send begins (sender)",
    "send begins → the channel has it (apprise, HTTP)",
)


async def end_to_end(
    args: argparse.Namespace,
    database_url: str,
    fleet: Fleet,
    workdir: Path,
    report: Report,
    leak_devices: list[str],
    deliveries: TimedDeliveries,
) -> None:
    brokers = start_brokers(workdir)
    ingest: Child | None = None
    worker: Child | None = None
    try:
        env = child_env(brokers, database_url, args, workdir)
        ingest, _ = start_child("ingest", env, workdir / "e2e-ingest.log", 60)
        worker, ready_s = start_child("worker", env, workdir / "e2e-worker.log", 180)
        pids = {"ingest": ingest.proc.pid, "worker": worker.proc.pid, **brokers.pids, "benchmark": os.getpid()}
        # warm-up: one message per device through the whole path (pools, monitors, first commits)
        since = fleet.new_phase()
        stored = Stored(database_url, TENANT, since)
        go, threads = start_publishers(brokers.mqtt, [fleet.stream(0, 1, 1, 2)], limit=len(fleet.devices))
        t_warm = time.perf_counter()
        go.set()
        await asyncio.to_thread(finish_when_done, threads)
        target = sum(t.acked_values for t in threads)

        async def warm() -> bool:
            return await stored.poll() >= target

        await wait_for(warm, "warm-up", lambda: f"{stored.n}/{target} values stored", 120)
        warm_s = time.perf_counter() - t_warm
        rows = []
        if "e2e" in args.modes:
            for k in args.e2e_batch:
                rows.append(await sustained(args, database_url, fleet, brokers, pids, k, report))
            headers = [
                "K",
                "publishing s",
                "to last stored s",
                "messages acked",
                "readings",
                "readings/s end to end",
                "÷ before",
                "metric values/s",
                "÷ before",
                "÷ target",
                "10-s windows values/s: min / median",
                "lost",
                "stored twice",
                "unexpected",
                "worker µs CPU/reading",
                "worker cores",
                "ingest cores",
            ]
            report.add(
                "The whole path: MQTT → ingest → Kafka → worker → PostgreSQL, sustained",
                table(headers, rows),
                "",
                f"worker ready {ready_s:.1f} s after spawn; warm-up (one message per device) {warm_s:.1f} s. Before: "
                "1,404 / 6,656 / 13,485 readings/s and 3,538 / 16,640 / 33,713 values/s at K = 1 / 10 / 100 "
                "(2026-11-22, phases of 5,000 messages). lost / stored twice / unexpected: rows of `readings` per "
                "(device, metric, ts) against the metric values the broker acknowledged to the publishers.",
            )
        if "latency" in args.modes:
            await latency(args, database_url, fleet, brokers, pids, leak_devices, deliveries, report)
    finally:
        stop_child(ingest)
        stop_child(worker)
        brokers.stop()


def finish_when_done(threads: list[PublisherThread]) -> None:
    for t in threads:
        t.join(timeout=130)


# ------------------------------------------------------------------------------ start-up and memory


async def startup(
    args: argparse.Namespace,
    database_url: str,
    workdir: Path,
    report: Report,
    sink: HttpSink,
    deliveries: TimedDeliveries,
) -> None:
    """Fresh brokers; ingest and the worker spawned together (as ``forewarn up`` does); the first
    reading is a leak published once ingest is ready (as the demo does)."""
    brokers = start_brokers(workdir)
    ingest: Child | None = None
    worker: Child | None = None
    first = f"first-{uuid.uuid4().hex[:6]}"
    db.add_customer(database_url, f"c-{first}", "First", "en", [sink.url(f"leak/{first}")], tenant=LEAK_TENANT)
    bulk_devices(database_url, LEAK_TENANT, f"c-{first}", [(first, "home")])
    try:
        env = child_env(brokers, database_url, args, workdir)
        t0 = time.perf_counter()
        ingest = spawn("ingest", ["ingest"], env, workdir / "startup-ingest.log")
        worker = spawn("worker", ["worker"], env, workdir / "startup-worker.log")
        ingest_s = await asyncio.to_thread(ready_after, ingest, t0, 60)
        pub = Publisher(brokers.mqtt[0], brokers.mqtt[1], f"bench-first-{uuid.uuid4().hex[:6]}")
        pub.start()
        try:
            pub.flush([pub.publish(telemetry_topic(LEAK_TENANT, first), leak_payload(1), qos=1)])
            t_first = time.perf_counter()
        finally:
            pub.stop()
        worker_s = await asyncio.to_thread(ready_after, worker, t0, 180)
        deadline = time.perf_counter() + 120
        while f"leak/{first}" not in deliveries.first_at and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        warned = deliveries.first_at.get(f"leak/{first}")
        first_warning_s = None if warned is None else warned - t_first
        report.add(
            "Start-up on fresh brokers",
            table(
                ["what", "seconds", "before", "÷ before", "target", "met"],
                [
                    ["ingest: spawn → ready", f"{ingest_s:.1f}", "—", "—", "—", "—"],
                    [
                        "worker: spawn → ready (status file)",
                        f"{worker_s:.1f}",
                        f"{BEFORE_WORKER_READY_S:.0f}",
                        ratio(worker_s, BEFORE_WORKER_READY_S),
                        f"≤ {TARGET_WORKER_READY_S:.0f}",
                        "yes" if worker_s <= TARGET_WORKER_READY_S else "NO",
                    ],
                    [
                        "first reading (a leak, published when ingest is ready) → its warning at the sink",
                        "never (120 s)" if first_warning_s is None else f"{first_warning_s:.1f}",
                        f"{BEFORE_FIRST_WARNING_S:.0f}",
                        ratio(first_warning_s, BEFORE_FIRST_WARNING_S),
                        f"≤ {TARGET_FIRST_WARNING_S:.0f}",
                        "yes" if first_warning_s is not None and first_warning_s <= TARGET_FIRST_WARNING_S else "NO",
                    ],
                ],
            ),
            "",
            "before: the worker needed ~30 s to join its group; the demo's first warnings came ~40 s into it.",
        )
        if args.mem_devices:
            await worker_memory(args, database_url, brokers, worker, report)
    finally:
        stop_child(ingest)
        stop_child(worker)
        brokers.stop()


async def worker_memory(
    args: argparse.Namespace, database_url: str, brokers: Brokers, worker: Child, report: Report
) -> None:
    """The worker's VmRSS before and after ``--mem-devices`` new devices send one message each."""
    n, k = args.mem_devices, args.mem_readings
    db.add_customer(database_url, "mem-customer", "Memory", "en", [], tenant=MEM_TENANT)
    devices = [(f"mem-{i:05d}", KINDS[i % len(KINDS)]) for i in range(n)]
    bulk_devices(database_url, MEM_TENANT, "mem-customer", devices)
    await asyncio.sleep(3)  # the worker settles after its first warning
    before = rss_mb(worker.proc.pid) or 0.0
    say(f"worker memory: {n:,} devices registered; worker RSS {before:,.0f} MiB; publishing {k} readings each …")
    fleet = Fleet(devices, FIRST_TS_MS)
    fleet.new_phase()
    since = fleet.base_ms

    def stream(share: int, shares: int) -> Iterator[tuple[int, str, bytes, int]]:
        rng = random.Random(share)
        for d in range(share, n, shares):
            batch = [fleet.reading(d, rng) for _ in range(k)]
            values = sum(len(r["metrics"]) for r in batch)  # type: ignore[arg-type,misc]
            yield d, telemetry_topic(MEM_TENANT, devices[d][0]), orjson.dumps({"batch": batch}), values

    phase = Phase("worker memory", machine_snapshot(), {"worker": worker.proc.pid})
    go, threads = start_publishers(brokers.mqtt, [stream(i, args.publishers) for i in range(args.publishers)])
    t0 = time.perf_counter()
    go.set()
    await asyncio.to_thread(finish_when_done, threads)
    target = sum(t.acked_values for t in threads)
    stored = Stored(database_url, MEM_TENANT, since)

    async def done() -> bool:
        return await stored.poll() >= target

    ok = await wait_for(done, "worker memory", lambda: f"{stored.n:,}/{target:,} values stored", 300)
    stored_s = time.perf_counter() - t0
    await asyncio.sleep(5)  # scoring may trail storing
    after = rss_mb(worker.proc.pid) or 0.0
    phase.end()
    report.machine_lines.append(phase.line())
    status = worker.status()
    per_10k = (after - before) * 10_000 / n
    report.add(
        "The worker's memory per 10,000 devices",
        table(
            [
                "devices",
                "readings each",
                "values stored",
                "seconds",
                "RSS before MiB",
                "RSS after MiB",
                "MiB per 10k devices",
            ],
            [
                [
                    f"{n:,}",
                    k,
                    f"{stored.n:,}{'' if ok else ' (incomplete)'}",
                    f"{stored_s:.0f}",
                    f"{before:,.0f}",
                    f"{after:,.0f}",
                    f"{per_10k:,.1f}",
                ]
            ],
        ),
        "",
        f"(VmRSS of the worker; kinds in turn; the worker's last report: "
        f"{ {k2: status[k2] for k2 in ('readings_stored', 'warnings') if k2 in status} or '—' })",
    )


# ------------------------------------------------------------------------------ main


MODES = ("ingest", "burst", "e2e", "latency", "startup")


async def run(args: argparse.Namespace, workdir: Path) -> None:
    t_start = time.monotonic()
    report = Report()
    deliveries = TimedDeliveries()
    sink = HttpSink()
    sink.received = deliveries
    sink.start()
    load_at_start = machine()
    try:
        with bench_database() as database_url:
            devices, leak_devices = register(database_url, args.devices, args.leaks, sink)
            fleet = Fleet(devices)
            if "ingest" in args.modes:
                say("ingest alone")
                await ingest_alone(args, database_url, fleet, workdir, report, burst=False)
            if "burst" in args.modes:
                say("ingest through a burst")
                await ingest_alone(args, database_url, fleet, workdir, report, burst=True)
            if "e2e" in args.modes or "latency" in args.modes:
                say("the whole path")
                await end_to_end(args, database_url, fleet, workdir, report, leak_devices, deliveries)
            if "startup" in args.modes:
                say("start-up and the worker's memory")
                await startup(args, database_url, workdir, report, sink, deliveries)
    finally:
        sink.stop()
    print()
    print(f"machine: {load_at_start}; ingest and worker from {args.code}")
    print(
        f"{args.devices} background devices ({', '.join(KINDS)} in turn), {args.publishers} publisher threads at "
        f"QoS 1, {args.partitions} partitions, ingest linger "
        f"{args.ingest_linger_ms if args.ingest_linger_ms is not None else 'default'} ms; 2-3 metrics per reading"
    )
    for section in report.sections:
        print()
        print(section)
    print()
    print("## What else used the machine")
    print()
    for line in report.machine_lines:
        print(f"- {line}")
    load = os.getloadavg()
    print(f"- at the end: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    say(f"done in {time.monotonic() - t_start:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="what to measure")
    parser.add_argument("--devices", type=int, default=200, help="background devices")
    parser.add_argument("--publishers", type=int, default=4, help="Publisher clients (threads)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--ingest-linger-ms", type=int, default=None, help="FOREWARN_INGEST_LINGER_MS for ingest")
    parser.add_argument("--messages", type=int, default=20_000, help="ingest: messages per K")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10], help="ingest: readings per message K")
    parser.add_argument("--burst-messages", type=int, default=20_000, help="burst: messages")
    parser.add_argument("--burst-k", type=int, default=100, help="burst: readings per message")
    parser.add_argument("--e2e-batch", type=int, nargs="+", default=[1, 10], help="e2e: readings per message K")
    parser.add_argument("--seconds", type=float, default=60, help="e2e: seconds of publishing per K")
    parser.add_argument("--backlog-s", type=float, default=5, help="e2e: publish at most this much work ahead")
    parser.add_argument("--latency-seconds", type=float, default=60, help="latency: seconds of background load")
    parser.add_argument("--leaks", type=int, default=60, help="latency: leaks timed (a device each)")
    parser.add_argument("--load-share", type=float, default=0.5, help="latency: background as a share of K=1 max")
    parser.add_argument("--background-rate", type=float, default=None, help="latency: background readings/s")
    parser.add_argument("--mem-devices", type=int, default=10_000, help="startup: devices for the worker's RSS")
    parser.add_argument("--mem-readings", type=int, default=5, help="startup: readings each of them sends")
    parser.add_argument("--e2e-messages", type=int, default=None, help="e2e: at most this many messages per K")
    parser.add_argument("--skip-ingest", action="store_true", help="leave out the ingest and burst modes")
    parser.add_argument("--skip-e2e", action="store_true", help="leave out the e2e, latency and startup modes")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the services' logs here")
    parser.add_argument(
        "--code",
        type=Path,
        default=REPO,
        help="run ingest and the worker from this checkout (default: this one), e.g. to measure a baseline",
    )
    args = parser.parse_args(argv)
    args.code = args.code.resolve()
    skipped = {"ingest", "burst"} if args.skip_ingest else set()
    skipped |= {"e2e", "latency", "startup"} if args.skip_e2e else set()
    args.modes = [m for m in args.modes if m not in skipped]

    workdir = Path(tempfile.mkdtemp(prefix="forewarn-bench-"))
    here = Path.cwd()
    os.chdir(workdir)  # the worker writes its Faust data directory into the current directory
    try:
        asyncio.run(run(args, workdir))
    finally:
        os.chdir(here)
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                shutil.copy(log, args.keep_logs / log.name)
            say(f"logs copied to {args.keep_logs}")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
