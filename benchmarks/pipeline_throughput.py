"""Throughput of the real pipeline on this machine: MQTT → ingest → Kafka (→ worker → PostgreSQL).

Everything runs as in production, on private services started for the occasion: Mosquitto
and Tansu on free loopback ports, a fresh ``forewarn_bench_<hex>`` database (dropped at the
end), ``forewarn ingest`` and ``forewarn worker`` as child processes (``forewarn.children.spawn``)
in a scratch directory. ``--devices`` devices (kinds in turn) are registered; several
``core.mqtt.Publisher`` clients (threads) publish ``--messages`` messages of K readings
(2-3 metrics each, timestamps in the last hour, seq rising per device) at QoS 1.

(a) ingest alone, for each K of ``--batch``: the time from the first publish until every
    reading is in ``forewarn.readings`` (consumed with ``core.bus.read_topic``, counting
    the readings inside the records): messages/s, readings/s, Kafka records/s, readings per
    record, and the ratio to FIELD-NOTES' "Python MQTT→Kafka forwarder 7.4k msg/s".
(b) the whole path (fresh brokers; the worker joins its group, ~30 s, and is warmed up before
    timing), for each K of ``--e2e-batch``: the time until every metric value is a row of
    ``readings`` (polling ``count(*)``): readings/s and metric values/s end to end, and the
    worker's cost per Kafka record (its CPU time until it is idle again, / records).

Also printed: each process's CPU share (from /proc) and peak RSS (VmHWM) of ingest and the
worker, the machine's CPU busy and steal time, the size of the worker's changelog.
Figures only, no assertions. Defaults take about 2-3 minutes (the worker alone needs ~30 s to join).

    python benchmarks/pipeline_throughput.py [--messages 20000] [--batch 1 10 100]
        [--e2e-messages 5000] [--e2e-batch 1 10 100] [--devices 200] [--publishers 4]
        [--skip-ingest | --skip-e2e] [--ingest-linger-ms MS] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from benchlib import bench_database, cpu_seconds, machine, peak_rss_mb, rss_mb, say, table  # this folder's helper

from core import db
from core.bus import read_topic
from core.contract import METRICS, TOPIC_READINGS, TOPIC_REJECTS, telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port
from forewarn import launcher
from forewarn.children import Child, spawn
from forewarn.sink import HttpSink
from ingest.validate import validate_message

FORWARDER_MSG_S = 7_400  # FIELD-NOTES: Python MQTT→Kafka forwarder, QoS 1
FAUST_EVENTS_TABLE_S = 1_700  # FIELD-NOTES: Faust worker with one Table update per event
TENANT = "bench"
KINDS = ("home", "vehicle", "equipment", "coldchain")
# Per kind: (metric, low, high) — quiet, plausible values (a boolean metric is sent as true);
# the third metric is left out of every other reading (2-3 metrics per reading).
KIND_METRICS = {
    "home": (("temp_c", 19.0, 22.0), ("pipe_temp_c", 12.0, 16.0), ("humidity_pct", 40.0, 55.0)),
    "vehicle": (("speed_kmh", 30.0, 60.0), ("engine_rpm", 1500.0, 2500.0), ("coolant_temp_c", 85.0, 92.0)),
    "equipment": (("vibration_mm_s", 2.0, 3.0), ("bearing_temp_c", 45.0, 48.0), ("current_a", 20.0, 24.0)),
    "coldchain": (("temp_c", 2.0, 4.0), ("compressor_on", 1.0, 1.0), ("battery_pct", 80.0, 81.0)),
}


# ------------------------------------------------------------------------------ machine


@dataclass
class CpuSample:
    wall: float
    per_pid: dict[str, float]
    busy: float
    steal: float
    total: float


def _proc_stat() -> tuple[float, float, float]:
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (parts + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


POSTGRES = "postgres (every backend on the server)"


def _postgres_cpu() -> float:
    """CPU seconds of every process named postgres (the shared server: ours and anyone else's)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as fh:
                if fh.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        total += cpu_seconds(int(entry.name)) or 0.0
    return total


def sample(pids: dict[str, int], postgres: bool = False) -> CpuSample:
    busy, steal, total = _proc_stat()
    per = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    if postgres:
        per[POSTGRES] = _postgres_cpu()
    return CpuSample(time.perf_counter(), per, busy, steal, total)


def cpu_between(a: CpuSample, b: CpuSample) -> dict[str, float]:
    """Cores used on average by each process between two samples, plus machine busy/steal %."""
    wall = max(b.wall - a.wall, 1e-9)
    out = {name: (b.per_pid[name] - a.per_pid.get(name, 0.0)) / wall for name in b.per_pid}
    total = max(b.total - a.total, 1)
    ours = sum(out.values())
    out["everything else"] = max(0.0, (b.busy - a.busy) / total * (os.cpu_count() or 1) - ours)
    out["machine busy %"] = 100 * (b.busy - a.busy) / total
    out["machine steal %"] = 100 * (b.steal - a.steal) / total
    return out


# ------------------------------------------------------------------------------ the fleet


@dataclass
class Fleet:
    devices: list[tuple[str, str]]  # (device id, kind)
    start_ms: int
    step_ms: int
    next_seq: list[int] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        self.next_seq = [0] * len(self.devices)

    def reading(self, d: int) -> dict[str, object]:
        seq = self.next_seq[d]
        self.next_seq[d] += 1
        spec = KIND_METRICS[self.devices[d][1]]
        chosen = spec if seq % 2 == 0 else spec[:2]
        metrics: dict[str, float | bool] = {
            name: True if METRICS[name].kind == "bool" else round(self.rng.uniform(lo, hi), 2)
            for name, lo, hi in chosen
        }
        return {"ts": self.start_ms + seq * self.step_ms, "seq": seq, "metrics": metrics}

    def messages(self, n: int, k: int, publishers: int) -> tuple[list[list[tuple[str, bytes]]], int, int]:
        """``n`` messages of ``k`` readings, split over publishers by device (order per device kept).

        Returns (messages per publisher, readings, metric values).
        """
        shares: list[list[tuple[str, bytes]]] = [[] for _ in range(publishers)]
        readings = values = 0
        for i in range(n):
            d = i % len(self.devices)
            batch = [self.reading(d) for _ in range(k)]
            readings += k
            values += sum(len(r["metrics"]) for r in batch)  # type: ignore[arg-type,misc]
            payload = orjson.dumps(batch[0] if k == 1 else {"batch": batch})
            shares[d % publishers].append((telemetry_topic(TENANT, self.devices[d][0]), payload))
        return shares, readings, values


def pure_ingest_cost(fleet: Fleet, k: int, n: int = 400) -> float:
    """Seconds per message of ingest's own pure code on this kind of message, in this process:
    ``validate_message`` plus ``readings_record`` (one record per message: an upper bound)."""
    from core.contract import readings_record

    probe = Fleet(fleet.devices, fleet.start_ms, fleet.step_ms)
    shares, _, _ = probe.messages(n, k, 1)
    registry = {f"{TENANT}/{device}": kind for device, kind in fleet.devices}
    now_ms = int(time.time() * 1000)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for topic, payload in shares[0]:
            verdict = validate_message(topic, payload, registry, now_ms)
            readings_record(TENANT, verdict.device or "", verdict.kind or "", list(verdict.readings), now_ms)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


# ------------------------------------------------------------------------------ publishing


class PublisherThread(threading.Thread):
    """One Publisher client sending its share as fast as paho lets it (flush every 1000)."""

    def __init__(self, index: int, host: str, port: int, messages: list[tuple[str, bytes]], go: threading.Event):
        super().__init__(name=f"bench-publisher-{index}", daemon=True)
        self.messages = messages
        self.go = go
        self.sent = 0
        self.acked = 0
        self.done_at: float | None = None
        self.error: BaseException | None = None
        self.publisher = Publisher(host, port, f"bench-pub-{index}-{uuid.uuid4().hex[:6]}")
        self.publisher.start()

    def run(self) -> None:
        try:
            self.go.wait()
            infos = []
            for topic, payload in self.messages:
                infos.append(self.publisher.publish(topic, payload, qos=1))
                self.sent += 1
                if len(infos) >= 1000:
                    self.publisher.flush(infos, timeout=120)
                    self.acked += len(infos)
                    infos.clear()
            self.publisher.flush(infos, timeout=120)
            self.acked += len(infos)
            self.done_at = time.perf_counter()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            self.publisher.stop()


# ------------------------------------------------------------------------------ Kafka counting


@dataclass
class KafkaCount:
    records: int = 0
    readings: int = 0
    values: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    target: int | None = None
    reached_at: float | None = None
    last_record_at: float = 0.0


async def count_readings(bootstrap: str, counts: KafkaCount) -> None:
    """Count the readings inside forewarn.readings records (and rejects) as they arrive."""
    async with contextlib.aclosing(read_topic(bootstrap, TOPIC_READINGS, TOPIC_REJECTS)) as records:  # type: ignore[type-var]
        async for record in records:
            doc = orjson.loads(record.value)
            if record.topic == TOPIC_REJECTS:
                counts.rejects[doc.get("reason", "?")] += 1
                continue
            readings = doc["readings"]
            counts.records += 1
            counts.readings += len(readings)
            counts.values += sum(len(r["metrics"]) for r in readings)
            counts.last_record_at = time.perf_counter()
            if counts.target is not None and counts.reached_at is None and counts.readings >= counts.target:
                counts.reached_at = counts.last_record_at


async def topic_size(bootstrap: str, topic: str, idle_s: float = 3.0) -> tuple[int, int]:
    """(records, bytes of values) of a whole topic, read until nothing arrives for ``idle_s``."""
    n = size = 0
    async with contextlib.aclosing(read_topic(bootstrap, topic)) as records:  # type: ignore[type-var]
        while True:
            try:
                record = await asyncio.wait_for(anext(records), timeout=idle_s if n else 15.0)
            except (TimeoutError, StopAsyncIteration):
                return n, size
            n += 1
            size += len(record.value)


# ------------------------------------------------------------------------------ a phase


@dataclass
class PhaseResult:
    k: int
    messages: int
    readings: int
    values: int
    seconds: float | None  # None: did not complete
    publish_seconds: float
    records: int
    arrived_readings: int
    stored_values: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    worker_tail_s: float | None = None
    worker_cpu_s: float | None = None
    rejects: Counter[str] = field(default_factory=Counter)
    pure_s_per_msg: float | None = None
    peak_rss_mb: float | None = None  # of ingest (a) or the worker (b), when the phase ended


Shares = list[list[tuple[str, bytes]]]


async def publish_phase(
    mqtt: tuple[str, int],
    shares: Shares,
    label: str,
    done: Callable[[], Awaitable[float | None]],
    progress: Callable[..., Awaitable[object]],
    timeout_s: float,
) -> tuple[float, float | None, list[PublisherThread]]:
    """Publish the prepared messages and wait until ``done()`` returns the completion time.

    Gives up on a publisher error, after ``timeout_s`` or 30 s without progress.
    Returns (t0, completion time or None, threads).
    """
    n = sum(len(share) for share in shares)
    go = threading.Event()
    threads = [PublisherThread(i, mqtt[0], mqtt[1], share, go) for i, share in enumerate(shares) if share]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    go.set()
    last_print = t0
    last_change, last_state = t0, None
    finished: float | None = None
    while True:
        await asyncio.sleep(0.2)
        now = time.perf_counter()
        finished = await done()
        if finished is not None:
            break
        state = (sum(t.acked for t in threads), await progress(quiet=True))
        if state != last_state:
            last_state, last_change = state, now
        if now - last_print >= 3:
            last_print = now
            sent = sum(t.sent for t in threads)
            acked = sum(t.acked for t in threads)
            say(f"{label}: {now - t0:5.1f} s, published {sent:,}/{n:,} (acked {acked:,}); {await progress()}")
        errors = [t.error for t in threads if t.error is not None]
        if errors:
            say(f"{label}: a publisher failed: {errors[0]!r}")
            break
        if now - t0 > timeout_s:
            say(f"{label}: gave up after {timeout_s:.0f} s")
            break
        if now - last_change > 30:
            say(f"{label}: no progress for 30 s; giving up")
            break
    for t in threads:
        t.join(timeout=5)
    return t0, finished, threads


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
    }
    if args.ingest_linger_ms is not None:
        env["FOREWARN_INGEST_LINGER_MS"] = str(args.ingest_linger_ms)
    return env


def start_child(name: str, cli: list[str], env: dict[str, str], log: Path, timeout: float) -> Child:
    child = spawn(name, cli, env, log)
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while not child.wait_ready(min(5.0, max(0.1, deadline - time.monotonic()))):
        if child.proc.poll() is not None or time.monotonic() >= deadline:
            tail = child.text()[-3000:]
            code = child.proc.poll()
            child.stop()
            raise RuntimeError(f"{name} did not get ready (exit code {code}):\n{tail}")
        say(f"waiting for {name} to be ready … {time.monotonic() - t0:.0f} s")
    say(f"{name} ready after {time.monotonic() - t0:.0f} s (pid {child.proc.pid})")
    return child


def stop_child(child: Child | None, peaks: dict[str, float]) -> None:
    if child is None:
        return
    peak = peak_rss_mb(child.proc.pid)
    if peak is not None:
        peaks[child.name] = max(peak, peaks.get(child.name, 0.0))
    child.stop()


def register(database_url: str, devices: int, notify_url: str) -> list[tuple[str, str]]:
    say(f"registering {devices} devices …")
    db.add_customer(database_url, "bench-customer", "Bench", "en", [notify_url], tenant=TENANT)
    fleet = []
    for i in range(devices):
        kind = KINDS[i % len(KINDS)]
        device = f"{kind}-{i:04d}"
        db.add_device(database_url, device, TENANT, "bench-customer", kind)
        fleet.append((device, kind))
    return fleet


# ------------------------------------------------------------------------------ (a) ingest


async def ingest_alone(
    args: argparse.Namespace, database_url: str, fleet: Fleet, workdir: Path, peaks: dict[str, float]
) -> tuple[list[PhaseResult], dict[str, float]]:
    brokers = start_brokers(workdir)
    ingest: Child | None = None
    counter: asyncio.Task[None] | None = None
    results: list[PhaseResult] = []
    rss: dict[str, float] = {}
    try:
        env = child_env(brokers, database_url, args, workdir)
        ingest = start_child("ingest", ["ingest"], env, workdir / "a-ingest.log", 60)
        counts = KafkaCount()
        counter = asyncio.create_task(count_readings(brokers.bootstrap, counts))
        pids = {
            "ingest": ingest.proc.pid,
            "mosquitto": brokers.mosquitto.proc.pid,  # type: ignore[union-attr]
            "tansu": brokers.tansu.proc.pid,  # type: ignore[union-attr]
            "benchmark (publishers + counter)": os.getpid(),
        }

        async def progress(quiet: bool = False) -> object:
            if quiet:
                return counts.readings
            return f"Kafka has {counts.readings:,} readings in {counts.records:,} records"

        # warm-up: one message per device, so the first phase does not pay for connections
        counts.target = len(fleet.devices)
        counts.reached_at = None

        async def warm_done() -> float | None:
            return counts.reached_at

        warm, _, _ = fleet.messages(len(fleet.devices), 1, 1)
        await publish_phase(brokers.mqtt, warm, "warm-up", warm_done, progress, 60)
        for k in args.batch:
            n = args.messages
            say(f"(a) K={k}: preparing {n:,} messages of {k} reading(s) …")
            shares, readings, values = fleet.messages(n, k, args.publishers)
            before = (counts.records, counts.readings)
            rejects_before = Counter(counts.rejects)
            counts.target = counts.readings + readings
            counts.reached_at = None
            a = sample(pids)

            async def done() -> float | None:
                return counts.reached_at

            t0, finished, threads = await publish_phase(
                brokers.mqtt, shares, f"(a) K={k}", done, progress, args.timeout
            )
            b = sample(pids)
            pub_end = max((t.done_at or time.perf_counter()) for t in threads)
            result = PhaseResult(
                k=k,
                messages=n,
                readings=readings,
                values=values,
                seconds=None if finished is None else finished - t0,
                publish_seconds=pub_end - t0,
                records=counts.records - before[0],
                arrived_readings=counts.readings - before[1],
                cpu=cpu_between(a, b),
                cpu_s={name: b.per_pid[name] - a.per_pid[name] for name in pids},
                rejects=counts.rejects - rejects_before,
                pure_s_per_msg=pure_ingest_cost(fleet, k),
                peak_rss_mb=peak_rss_mb(ingest.proc.pid),
            )
            results.append(result)
            rss["ingest"] = rss_mb(ingest.proc.pid) or 0.0
            if result.seconds:
                say(
                    f"(a) K={k}: {n / result.seconds:,.0f} msg/s, {readings / result.seconds:,.0f} readings/s, "
                    f"{result.records / result.seconds:,.0f} records/s"
                )
            else:
                say(f"(a) K={k}: incomplete: {result.arrived_readings:,}/{readings:,} readings arrived")
            await asyncio.sleep(1.0)
    finally:
        if counter is not None:
            counter.cancel()
            with contextlib.suppress(BaseException):
                await counter
        stop_child(ingest, peaks)
        brokers.stop()
    return results, rss


# ------------------------------------------------------------------------------ (b) end to end


def stored_since(database_url: str, since_ms: int) -> int:
    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC)
    return int(db.query(database_url, "SELECT count(*) AS n FROM readings WHERE ts >= %s", (since,))[0]["n"])


async def wait_idle(pid: int, idle_rate: float, limit_s: float) -> tuple[float, float]:
    """Wait until a process uses (about) no more CPU than at rest; returns (when, its CPU seconds then)."""
    last = cpu_seconds(pid) or 0.0
    last_t = time.perf_counter()
    calm = 0
    deadline = last_t + limit_s
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
        now_cpu, now_t = cpu_seconds(pid) or last, time.perf_counter()
        rate = (now_cpu - last) / (now_t - last_t)
        calm = calm + 1 if rate <= idle_rate + 0.05 else 0
        if calm >= 2:
            return now_t - 1.0, last  # idle since the start of the calm second
        last, last_t = now_cpu, now_t
    return time.perf_counter(), cpu_seconds(pid) or last


async def end_to_end(
    args: argparse.Namespace, database_url: str, fleet: Fleet, workdir: Path, peaks: dict[str, float]
) -> tuple[list[PhaseResult], dict[str, object]]:
    brokers = start_brokers(workdir)
    ingest: Child | None = None
    worker: Child | None = None
    counter: asyncio.Task[None] | None = None
    results: list[PhaseResult] = []
    extra: dict[str, object] = {}
    try:
        env = child_env(brokers, database_url, args, workdir)
        ingest = start_child("ingest", ["ingest"], env, workdir / "b-ingest.log", 60)
        worker = start_child("worker", ["worker"], env, workdir / "b-worker.log", 180)
        counts = KafkaCount()
        counter = asyncio.create_task(count_readings(brokers.bootstrap, counts))
        pids = {
            "ingest": ingest.proc.pid,
            "worker": worker.proc.pid,
            "mosquitto": brokers.mosquitto.proc.pid,  # type: ignore[union-attr]
            "tansu": brokers.tansu.proc.pid,  # type: ignore[union-attr]
            "benchmark (publishers + counter)": os.getpid(),
        }
        state: dict[str, int] = {"since_ms": fleet.start_ms, "target": 0, "stored": 0}
        poll: dict[str, float] = {"next": 0.0, "cost": 0.0}

        async def progress(quiet: bool = False) -> object:
            if quiet:
                return (state["stored"], counts.readings)
            return f"Kafka has {counts.readings:,} readings; PostgreSQL {state['stored']:,}/{state['target']:,} values"

        async def done() -> float | None:
            now = time.perf_counter()
            if now < poll["next"]:
                return None
            t = time.perf_counter()
            state["stored"] = await asyncio.to_thread(stored_since, database_url, state["since_ms"])
            seen = time.perf_counter()
            poll["cost"] = seen - t
            poll["next"] = seen + max(0.3, 4 * poll["cost"])  # keep polling to a small share of a core
            return seen if state["stored"] >= state["target"] else None

        # warm-up: one message per device through the whole path (pools, monitors, first commits)
        first_ms = fleet.start_ms + min(fleet.next_seq) * fleet.step_ms
        warm, _, warm_values = fleet.messages(len(fleet.devices), 1, 1)
        state.update(since_ms=first_ms, target=warm_values)
        t_warm = time.perf_counter()
        await publish_phase(brokers.mqtt, warm, "warm-up", done, progress, 90)
        extra["warm-up seconds"] = time.perf_counter() - t_warm
        rest = sample({"worker": worker.proc.pid})
        await asyncio.sleep(2.0)
        rest2 = sample({"worker": worker.proc.pid})
        idle_rate = cpu_between(rest, rest2)["worker"]
        extra["worker idle cores"] = idle_rate

        for k in args.e2e_batch:
            n = args.e2e_messages
            before = (counts.records, counts.readings)
            first_ms = fleet.start_ms + min(fleet.next_seq) * fleet.step_ms
            say(f"(b) K={k}: preparing {n:,} messages of {k} reading(s) …")
            shares, readings, values = fleet.messages(n, k, args.publishers)
            state.update(since_ms=first_ms, target=values, stored=0)
            poll["next"] = 0.0
            a = sample(pids, postgres=True)
            t0, finished, threads = await publish_phase(
                brokers.mqtt, shares, f"(b) K={k}", done, progress, args.timeout
            )
            b = sample(pids, postgres=True)
            say(f"(b) K={k}: waiting for the worker to go idle (scoring may lag behind storing) …")
            idle_at, worker_cpu = await wait_idle(worker.proc.pid, idle_rate, 90)
            pub_end = max((t.done_at or time.perf_counter()) for t in threads)
            result = PhaseResult(
                k=k,
                messages=n,
                readings=readings,
                values=values,
                seconds=None if finished is None else finished - t0,
                publish_seconds=pub_end - t0,
                records=counts.records - before[0],
                arrived_readings=counts.readings - before[1],
                stored_values=state["stored"],
                cpu=cpu_between(a, b),
                cpu_s={name: b.per_pid[name] - a.per_pid[name] for name in pids},
                worker_tail_s=None if finished is None else max(0.0, idle_at - finished),
                worker_cpu_s=worker_cpu - a.per_pid["worker"],
                peak_rss_mb=peak_rss_mb(worker.proc.pid),
            )
            results.append(result)
            if result.seconds:
                per_record = (result.worker_cpu_s or 0.0) / max(result.records, 1)
                say(
                    f"(b) K={k}: {readings / result.seconds:,.0f} readings/s, {values / result.seconds:,.0f} values/s "
                    f"stored; worker {per_record * 1e6:,.0f} µs CPU per record"
                )
            else:
                say(f"(b) K={k}: incomplete: {state['stored']:,}/{values:,} values stored")
        extra["count(*) poll seconds (last)"] = poll["cost"]
        warnings = db.query(database_url, "SELECT count(*) AS n FROM warnings")[0]["n"]
        extra["warnings opened"] = warnings
        say("reading the worker's changelog topic to size it …")
        changelog = f"{env['FOREWARN_WORKER_ID']}-device_to_monitor-changelog"
        extra["changelog"] = await topic_size(brokers.bootstrap, changelog)
        extra["readings records"] = counts.records
        extra["readings topic rejects"] = dict(counts.rejects)
        report = worker.status()
        extra["worker last report"] = {
            k: report[k] for k in ("readings_stored", "batches_scored", "warnings") if k in report
        } or "—"
        extra["tansu rss MB"] = rss_mb(brokers.tansu.proc.pid)  # type: ignore[union-attr]
    finally:
        if counter is not None:
            counter.cancel()
            with contextlib.suppress(BaseException):
                await counter
        stop_child(ingest, peaks)
        stop_child(worker, peaks)
        brokers.stop()
    return results, extra


# ------------------------------------------------------------------------------ report


def rate(x: float, seconds: float | None) -> str:
    return "—" if not seconds else f"{x / seconds:,.0f}"


def report_ingest(results: list[PhaseResult]) -> None:
    print()
    print("## (a) ingest alone: MQTT → ingest → Kafka forewarn.readings")
    print()
    rows = []
    for r in results:
        s = r.seconds
        rows.append(
            [
                r.k,
                f"{r.messages:,}",
                f"{r.readings:,}",
                "—" if not s else f"{s:.1f}",
                rate(r.messages, s),
                rate(r.readings, s),
                rate(r.records, s),
                f"{r.arrived_readings / max(r.records, 1):.1f}",
                "—" if not s else f"{r.messages / s / FORWARDER_MSG_S:.2f}",
                "—" if not s else f"{r.readings / s / FORWARDER_MSG_S:.1f}",
                f"{r.messages / r.publish_seconds:,.0f}",
                f"{r.peak_rss_mb or 0:,.0f}",
            ]
        )
    print(
        table(
            [
                "K",
                "messages",
                "readings",
                "seconds",
                "msg/s",
                "readings/s",
                "Kafka records/s",
                "readings/record",
                "msg/s ÷ 7.4k",
                "readings/s ÷ 7.4k",
                "publish-side msg/s",
                "ingest peak RSS MiB so far",
            ],
            rows,
        )
    )
    print()
    print("CPU during each phase (cores in use on average; 2 = the whole machine), and ingest CPU per message:")
    print()
    names = [n for n in results[0].cpu if not n.startswith("machine")] if results else []
    rows = []
    for r in results:
        rows.append(
            [
                r.k,
                *(f"{r.cpu[n]:.2f}" for n in names),
                f"{r.cpu['machine busy %']:.0f}",
                f"{r.cpu['machine steal %']:.1f}",
                f"{r.cpu_s['ingest'] / r.messages * 1e6:,.0f}",
                f"{r.cpu_s['ingest'] / r.readings * 1e6:,.1f}",
                f"{(r.pure_s_per_msg or 0) * 1e6:,.0f}",
                f"{(r.pure_s_per_msg or 0) / max(r.cpu_s['ingest'] / r.messages, 1e-9):.0%}",
            ]
        )
    print(
        table(
            [
                "K",
                *names,
                "machine busy %",
                "steal %",
                "ingest µs CPU/msg",
                "ingest µs CPU/reading",
                "of which validate + encode µs/msg",
                "share",
            ],
            rows,
        )
    )
    print(
        "(validate + encode = ingest.validate.validate_message + contract.readings_record on the same kind of"
        " message, timed in this process; the rest is paho, asyncio, aiokafka and acknowledgements)"
    )
    rejects = sum((r.rejects for r in results), Counter())
    if rejects:
        print(f"\nrejects: {dict(rejects)}")


def report_e2e(results: list[PhaseResult], extra: dict[str, object]) -> None:
    print()
    print("## (b) the whole path: MQTT → ingest → Kafka → worker → PostgreSQL")
    print()
    rows = []
    for r in results:
        s = r.seconds
        rows.append(
            [
                r.k,
                f"{r.messages:,}",
                f"{r.readings:,}",
                f"{r.values:,}",
                "—" if not s else f"{s:.1f}",
                rate(r.messages, s),
                rate(r.readings, s),
                rate(r.values, s),
                f"{r.records:,}",
                f"{r.arrived_readings / max(r.records, 1):.1f}",
                "—" if r.worker_tail_s is None else f"{r.worker_tail_s:.1f}",
                f"{r.peak_rss_mb or 0:,.0f}",
            ]
        )
    print(
        table(
            [
                "K",
                "messages",
                "readings",
                "metric values",
                "seconds to stored",
                "msg/s",
                "readings/s end to end",
                "values/s stored",
                "Kafka records",
                "readings/record",
                "worker busy after (s)",
                "worker peak RSS MiB so far",
            ],
            rows,
        )
    )
    print()
    print("The worker's cost per Kafka record (CPU from the first publish until it is idle again):")
    print()
    rows = []
    for r in results:
        cpu = r.worker_cpu_s or 0.0
        rows.append(
            [
                r.k,
                f"{r.records:,}",
                f"{cpu:.1f}",
                f"{cpu / max(r.records, 1) * 1e6:,.0f}",
                f"{cpu / max(r.readings, 1) * 1e6:,.1f}",
                f"{max(r.records, 1) / cpu:,.0f}" if cpu else "—",
                f"{max(r.records, 1) / cpu / FAUST_EVENTS_TABLE_S:.2f}" if cpu else "—",
            ]
        )
    print(
        table(
            [
                "K",
                "records",
                "worker CPU s",
                "µs CPU/record",
                "µs CPU/reading",
                "records per CPU-second",
                "÷ Faust 1.7k events/s",
            ],
            rows,
        )
    )
    print()
    names = [n for n in results[0].cpu if not n.startswith("machine")] if results else []
    rows = [
        [
            r.k,
            *(f"{r.cpu[n]:.2f}" for n in names),
            f"{r.cpu['machine busy %']:.0f}",
            f"{r.cpu['machine steal %']:.1f}",
        ]
        for r in results
    ]
    print("CPU until the last row was stored (cores in use on average):")
    print()
    print(table(["K", *names, "machine busy %", "steal %"], rows))
    print()
    changelog = extra.get("changelog", (0, 0))
    assert isinstance(changelog, tuple)
    records = int(extra.get("readings records", 0) or 0)  # type: ignore[call-overload]
    print(
        f"warm-up (one message per device through the whole path): {extra.get('warm-up seconds', 0):.1f} s; "
        f"worker at rest: {extra.get('worker idle cores', 0):.2f} cores"
    )
    print(
        f"worker changelog (device_to_monitor): {changelog[0]:,} records, {changelog[1] / 1e6:,.1f} MB for "
        f"{records:,} readings records ({changelog[1] / max(changelog[0], 1):,.0f} bytes each)"
    )
    print(f"warnings opened: {extra.get('warnings opened')}; worker's last report: {extra.get('worker last report')}")
    print(f"Tansu RSS at the end: {extra.get('tansu rss MB') or 0:,.0f} MB")
    if extra.get("readings topic rejects"):
        print(f"rejects: {extra['readings topic rejects']}")


# ------------------------------------------------------------------------------ main


async def run(args: argparse.Namespace, workdir: Path) -> None:
    t_start = time.monotonic()
    per_device = (
        (0 if args.skip_ingest else args.messages * sum(args.batch))
        + (0 if args.skip_e2e else args.e2e_messages * sum(args.e2e_batch))
    ) / args.devices + 4
    step_ms = int(3_400_000 / per_device)  # every timestamp inside the last hour, 1 ms apart at least
    if step_ms < 1:
        raise SystemExit(f"{per_device:,.0f} readings per device do not fit in one hour at 1 ms: publish fewer")
    peaks: dict[str, float] = {}
    sink = HttpSink().start()
    try:
        with bench_database() as database_url:
            devices = register(database_url, args.devices, sink.url("bench"))
            fleet = Fleet(devices, int(time.time() * 1000) - 3_500_000, step_ms)
            ingest_results: list[PhaseResult] = []
            e2e_results: list[PhaseResult] = []
            extra: dict[str, object] = {}
            rss: dict[str, float] = {}
            if not args.skip_ingest:
                say("(a) ingest alone")
                ingest_results, rss = await ingest_alone(args, database_url, fleet, workdir, peaks)
            ingest_peak = peaks.pop("ingest", None)
            if not args.skip_e2e:
                say("(b) the whole path")
                e2e_results, extra = await end_to_end(args, database_url, fleet, workdir, peaks)
    finally:
        sink.stop()

    print()
    print(f"machine: {machine()}")
    print(
        f"{args.devices} devices ({', '.join(KINDS)} in turn), {args.publishers} publisher threads at QoS 1, "
        f"{args.partitions} partitions, ingest linger "
        f"{args.ingest_linger_ms if args.ingest_linger_ms is not None else 'default'} ms; 2-3 metrics per reading"
    )
    if ingest_results:
        report_ingest(ingest_results)
    if e2e_results:
        report_e2e(e2e_results, extra)
    print()
    print("## Peak RSS (VmHWM)")
    print()
    rows = []
    if ingest_peak is not None:
        rows.append(["ingest, (a) ingest alone", f"{ingest_peak:,.0f}"])
    for name, mb in peaks.items():
        rows.append([f"{name}, (b) whole path", f"{mb:,.0f}"])
    print(table(["process", "MiB"], rows))
    print()
    say(f"done in {time.monotonic() - t_start:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20_000, help="(a) messages per K")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10, 100], help="(a) readings per message K")
    parser.add_argument("--e2e-messages", type=int, default=5_000, help="(b) messages per K")
    parser.add_argument("--e2e-batch", type=int, nargs="+", default=[1, 10, 100], help="(b) readings per message K")
    parser.add_argument("--publishers", type=int, default=4, help="Publisher clients (threads)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--ingest-linger-ms", type=int, default=None, help="FOREWARN_INGEST_LINGER_MS for ingest")
    parser.add_argument("--timeout", type=float, default=240, help="give up a phase after this many seconds")
    parser.add_argument("--skip-ingest", action="store_true", help="skip (a)")
    parser.add_argument("--skip-e2e", action="store_true", help="skip (b)")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the services' logs here")
    args = parser.parse_args(argv)

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
