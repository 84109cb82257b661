"""What ``forewarn simulate``, ``up`` and ``demo`` do: part of the CLI, so it may use the parts.

``up`` reuses or starts the services (``forewarn.launcher``), migrates, and runs ingest and the
worker as child processes. ``demo`` adds a local HTTP sink standing for the customers' phones,
publishes the demo fleet with compressed time, shows each warning as it is delivered and ends
with a summary: readings stored, rejects, warnings, lead times against the simulator's truth.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core import db
from core.contract import telemetry_topic
from core.settings import Settings, host_port, kafka_bootstrap, masked
from forewarn import launcher
from forewarn.sink import HttpSink

# ---------------------------------------------------------------- child processes


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path | None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def wait_for(self, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.25)
        return False

    def ready(self, needle: str, timeout: float) -> Child:
        """Wait until the child logs ``needle``; raise with the end of its log otherwise."""
        if not self.wait_for(needle, timeout):
            raise launcher.StackError(f"{self.name} never logged {needle!r}:\n{self.text()[-3000:]}")
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def spawn(name: str, args: list[str], env: dict[str, str], log: Path | None) -> Child:
    """Run ``forewarn ARGS`` as a child process with the given settings in its environment."""
    out: Any = open(log, "wb") if log else None  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "forewarn.cli", *args],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
    )
    if out is not None:
        out.close()  # the child has its own copy of the descriptor
    return Child(name, proc, log)


def settings_env(settings: Settings, mqtt_url: str, kafka_url: str, database_url: str) -> dict[str, str]:
    return {
        "FOREWARN_MQTT_URL": mqtt_url,
        "FOREWARN_KAFKA_URL": kafka_url,
        "FOREWARN_DATABASE_URL": database_url,
        "FOREWARN_PARTITIONS": str(settings.partitions),
    }


def _stack(settings: Settings, console: Console) -> launcher.LocalStack:
    running = launcher.bring_up(
        settings.mqtt_url,
        settings.kafka_url,
        settings.database_url,
        progress=lambda m: console.print(f"[dim]{m}[/dim]"),
    )
    for name, url, how in running.describe():
        console.print(f"  {name:<30} {masked(url):<55} {how}")
    db.migrate(running.database_url, progress=lambda m: console.print(f"[dim]  {m}[/dim]"))
    from core.bus import ensure_topics

    asyncio.run(ensure_topics(kafka_bootstrap(running.kafka_url), settings.partitions))
    return running


def up_command(settings: Settings, console: Console) -> None:
    console.print("[bold]forewarn up[/bold]: reusing or starting the services")
    running = _stack(settings, console)
    env = settings_env(settings, running.mqtt_url, running.kafka_url, running.database_url)
    children = [spawn("worker", ["worker"], env, None), spawn("ingest", ["ingest"], env, None)]
    console.print("ingest and worker running; Ctrl-C stops everything this command started")
    try:
        while all(c.proc.poll() is None for c in children):
            time.sleep(0.5)
        dead = [c.name for c in children if c.proc.poll() is not None]
        console.print(f"[red]{', '.join(dead)} stopped unexpectedly[/red]; shutting down")
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for child in children:
            child.stop()
        running.stop()


# ---------------------------------------------------------------- simulation over MQTT


@dataclass
class PublishStats:
    messages: int = 0
    readings: int = 0
    garbage: int = 0
    garbage_reasons: Counter[str] = field(default_factory=Counter)


def register_fleet(database_url: str, fleet: Any, notify_for: Callable[[Any], list[str]]) -> None:
    for customer in fleet.customers:
        db.add_customer(database_url, customer.id, customer.name, customer.locale, notify_for(customer))
    for device in fleet.devices:
        db.add_device(database_url, device.device, device.tenant, device.customer, device.kind)


def publish_fleet(
    mqtt_url: str,
    fleet: Any,
    start_ms: int,
    hours: float,
    compression: float,
    garbage: float = 0.0,
    seed: int = 7,
    on_tick: Callable[[int], None] | None = None,
    console: Console | None = None,
) -> PublishStats:
    """Publish the fleet's readings as simulated time passes ``compression`` hours per wall minute.

    Each tick, every device's readings due so far go out as one batch message (QoS 1). The
    simulated clock starts ``hours`` in the past and reaches the present at the end, so no
    timestamp is ever in the future.
    """
    import random

    from core.mqtt import Publisher
    from simulator.wire import garbage_payloads, to_payload

    mqtt_host_port = host_port(mqtt_url, 1883)
    publisher = Publisher(*mqtt_host_port, client_id=f"forewarn-sim-{os.getpid()}")
    publisher.start()
    rng = random.Random(seed)
    stats = PublishStats()
    speed = compression * 60.0  # simulated seconds per wall second
    end_ms = start_ms + int(hours * 3600_000)
    wall0 = time.monotonic()
    stream: Iterator[Any] = fleet.merged()
    pending: dict[Any, list[Any]] = {}
    nxt = next(stream, None)
    infos = []
    progress = Progress(
        TextColumn("[bold]simulating[/bold]"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TextColumn("{task.fields[sent]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=console is None,
    )
    with progress:
        task = progress.add_task("sim", total=end_ms - start_ms, clock="", sent="")
        while nxt is not None:
            # the simulated clock, never ahead of the real one (the last readings may be
            # jittered past the nominal end: they go out once the wall clock has passed them)
            sim_now = min(start_ms + int((time.monotonic() - wall0) * speed * 1000), int(time.time() * 1000))
            while nxt is not None and nxt.ts_ms <= sim_now:
                pending.setdefault(nxt.device, []).append(nxt)
                nxt = next(stream, None)
            for device, readings in pending.items():
                for i in range(0, len(readings), 1000):
                    chunk = readings[i : i + 1000]
                    infos.append(publisher.publish(telemetry_topic(device.tenant, device.device), to_payload(chunk)))
                    stats.messages += 1
                    stats.readings += len(chunk)
                    if garbage and rng.random() < garbage:
                        pool = garbage_payloads(rng, 5, tenant=device.tenant, device=device.device)
                        topic, payload, reason = rng.choice(pool)
                        infos.append(publisher.publish(topic, payload))
                        stats.garbage += 1
                        stats.garbage_reasons[reason] += 1
            pending.clear()
            if len(infos) > 500:
                publisher.flush(infos)
                infos.clear()
            progress.update(
                task,
                completed=sim_now - start_ms,
                clock=time.strftime("sim %m-%d %H:%M", time.localtime(sim_now / 1000)),
                sent=f"{stats.messages} msgs · {stats.readings} readings",
            )
            if on_tick:
                on_tick(sim_now)
            if nxt is not None:
                time.sleep(0.2)
    publisher.flush(infos)
    publisher.stop()
    return stats


def make_fleet(
    name: str, seed: int, hours: float, devices: int | None, interval_s: float | None
) -> tuple[Any, int, float]:
    """Build the fleet to publish, placed so that its last reading is about now.

    Returns (fleet, start_ms, hours covered)."""
    from simulator.devices import SampleIntervals
    from simulator.fleet import build_fleet, demo_fleet, standard_library

    intervals = None
    if interval_s is not None:
        ms = int(interval_s * 1000)
        intervals = SampleIntervals(home_ms=ms, equipment_ms=ms, coldchain_ms=ms)
    now_ms = int(time.time() * 1000)
    if name == "standard":
        probe = standard_library(seed, intervals=intervals)
        hours = (probe.end_ms - probe.start_ms) / 3600_000
        start_ms = now_ms - int(hours * 3600_000)
        return standard_library(seed, start_ms=start_ms, intervals=intervals), start_ms, hours
    start_ms = now_ms - int(hours * 3600_000)
    if name == "demo" and devices is None:
        return demo_fleet(seed, start_ms=start_ms, duration_s=hours * 3600, intervals=intervals), start_ms, hours
    if name not in ("demo", "mixed"):
        raise ValueError(f"fleet {name!r} must be demo, standard or mixed")
    from simulator.scenarios import SCENARIOS

    shortest = min(spec.min_duration_s for spec in SCENARIOS.values()) / 3600
    if hours < shortest:
        raise ValueError(f"a mixed fleet needs --hours {shortest:g} or more (the shortest scenario's span)")
    fleet = build_fleet(seed, devices=devices, start_ms=start_ms, duration_s=hours * 3600, intervals=intervals)
    return fleet, start_ms, hours


def simulate_command(
    settings: Settings,
    *,
    seed: int,
    hours: float,
    compression: float,
    rate: float | None,
    fleet_name: str,
    devices: int | None,
    interval_s: float | None,
    notify: str | None,
    out: Path | None,
    replay: Path | None,
    garbage: float,
    console: Console,
) -> None:
    urls = [notify] if notify else ["json://127.0.0.1:8080/{customer}"]
    if replay is not None:
        replay_file(settings, replay, urls, console)
        return
    from simulator.wire import write_jsonl

    fleet, start_ms, hours = make_fleet(fleet_name, seed, hours, devices, interval_s)
    total = fleet.count_readings()
    if rate is not None:
        if rate <= 0:
            raise ValueError("--rate must be a positive number of readings per second")
        compression = hours * 60 * rate / max(total, 1)  # wall seconds = total / rate
    wall_s = hours * 60 / compression
    console.print(
        f"fleet {fleet_name}: {len(fleet.devices)} devices, {len(fleet.incidents)} incidents, {total:,} readings "
        f"over {hours:g} simulated hours"
        + ("" if out else f" → about {total / wall_s:,.0f} readings/s for {wall_s:.0f} s at {compression:g} h/min")
    )
    if out is not None:
        summary = write_jsonl(fleet, out, garbage_rate=garbage)
        console.print(
            f"wrote {summary.messages:,} messages ({summary.readings:,} readings, {summary.garbage} broken on purpose) "
            f"to {summary.path}; ground truth in {summary.incidents_path}"
        )
        return
    register_fleet(settings.database_url, fleet, lambda c: [u.replace("{customer}", c.id) for u in urls])
    console.print(f"registered {len(fleet.customers)} customers and {len(fleet.devices)} devices")
    stats = publish_fleet(settings.mqtt_url, fleet, start_ms, hours, compression, garbage, seed, console=console)
    console.print(
        f"published {stats.readings:,} readings in {stats.messages:,} messages, {stats.garbage} broken on purpose"
    )


def replay_file(settings: Settings, path: Path, urls: list[str], console: Console) -> None:
    """Publish a file written by ``simulate --out`` as fast as the broker takes it."""
    from core.mqtt import Publisher
    from simulator.wire import read_ground_truth, read_jsonl

    truth_path = path.parent / "incidents.json"
    if not path.exists() or not truth_path.exists():
        raise FileNotFoundError(f"a replay needs {path} and {truth_path} (written by 'forewarn simulate --out')")
    truth = read_ground_truth(truth_path)
    register_fleet(settings.database_url, truth, lambda c: [u.replace("{customer}", c.id) for u in urls])
    publisher = Publisher(*host_port(settings.mqtt_url, 1883), client_id=f"forewarn-replay-{os.getpid()}")
    publisher.start()
    messages = readings = 0
    infos = []
    t0 = time.monotonic()
    with console.status("replaying…") as status:
        for message in read_jsonl(path):
            infos.append(publisher.publish(message.topic, message.payload))
            messages += 1
            readings += message.readings
            if len(infos) >= 500:
                publisher.flush(infos)
                infos.clear()
                status.update(f"replaying… {messages:,} messages, {readings:,} readings")
    publisher.flush(infos)
    publisher.stop()
    elapsed = time.monotonic() - t0
    console.print(
        f"replayed {messages:,} messages ({readings:,} readings) in {elapsed:.1f} s = {messages / elapsed:,.0f} msg/s; "
        "readings older than the retention window are refused as too_old"
    )


# ---------------------------------------------------------------- demo


def demo_command(settings: Settings, console: Console, *, seed: int, wall_seconds: float, hours: float) -> None:
    from simulator.fleet import demo_fleet

    t0 = time.monotonic()
    console.rule("[bold]forewarn demo[/bold] — warn before the loss")
    running = _stack(settings, console)
    sink = HttpSink().start()
    logs = Path(settings.state_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = settings_env(settings, running.mqtt_url, running.kafka_url, running.database_url)
    children = [
        spawn("worker", ["worker"], env, logs / "worker.log"),
        spawn("ingest", ["ingest"], env, logs / "ingest.log"),
    ]
    try:
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - int(hours * 3600_000)
        # a tenant of its own per run, so the summary counts this run only
        tenant = f"demo-{int(time.time()):x}"
        fleet = demo_fleet(seed, start_ms=start_ms, duration_s=hours * 3600, tenant=tenant)
        register_fleet(running.database_url, fleet, lambda c: [sink.url(c.id)])
        console.print(
            f"fleet: {len(fleet.devices)} devices, {len(fleet.customers)} customers, "
            f"{len(fleet.incidents)} incidents hidden in {hours:g} simulated hours; logs in {logs}"
        )
        children[1].ready("ingest ready", 60)
        shown = 0

        def show_deliveries(_: int) -> None:
            nonlocal shown
            for item in sink.received[shown:]:
                title = item.body.get("title", "")
                first = str(item.body.get("message", "")).splitlines()[:2]
                console.print(f"[bold yellow]📣 {item.path.strip('/')}[/bold yellow] {title}")
                for line in first:
                    console.print(f"    {line}")
            shown = len(sink.received)

        compression = hours * 60 / wall_seconds
        stats = publish_fleet(
            running.mqtt_url, fleet, start_ms, hours, compression, 0.01, seed, on_tick=show_deliveries, console=console
        )
        if not children[0].wait_for("Ready", max(5.0, 100 - (time.monotonic() - t0))):
            console.print("[red]the worker did not become ready in time[/red]; see the worker log")
        settle = time.monotonic() + 12
        while time.monotonic() < settle:
            show_deliveries(0)
            time.sleep(0.5)
        show_deliveries(0)
        _summary(console, running.database_url, fleet, stats, start_ms, sink, children[1].text(), time.monotonic() - t0)
    finally:
        for child in children:
            child.stop()
        sink.stop()
        running.stop()


def _summary(
    console: Console,
    url: str,
    fleet: Any,
    stats: PublishStats,
    start_ms: int,
    sink: HttpSink,
    ingest_log: str,
    elapsed: float,
    tz: str = "Asia/Shanghai",
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = ZoneInfo(tz)
    since = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    tenant = fleet.devices[0].tenant
    stored = db.query(
        url,
        "SELECT count(DISTINCT (device, ts)) AS readings, count(*) AS values FROM readings"
        " WHERE ts >= %s AND tenant = %s",
        (since, tenant),
    )[0]
    warnings = db.query(
        url,
        "SELECT device, risk, severity, status, opened_at FROM warnings WHERE opened_at >= %s"
        " AND tenant = %s ORDER BY opened_at",
        (since, tenant),
    )
    deliveries = db.query(
        url,
        "SELECT d.status, count(*) AS n FROM deliveries d JOIN warnings w ON w.id = d.warning_id"
        " WHERE w.opened_at >= %s AND w.tenant = %s GROUP BY d.status",
        (since, tenant),
    )
    table = Table(title=f"warnings against the simulator's ground truth ({tz})")
    for col in ("device", "incident", "loss at", "first warning", "risk", "lead time"):
        table.add_column(col)
    leads = []
    for incident in fleet.incidents:
        hits = [w for w in warnings if w["device"] == incident.device and w["risk"] in incident.risks]
        loss = datetime.fromtimestamp(incident.loss_at_ms / 1000, tz=UTC)
        before = [w for w in hits if w["opened_at"] <= loss]
        if before:
            lead = (loss - before[0]["opened_at"]).total_seconds() / 3600
            leads.append(lead)
            first, risk, lead_text = (
                f"{before[0]['opened_at'].astimezone(local):%H:%M}",
                before[0]["risk"],
                f"{lead:.1f} h",
            )
        else:
            first, risk, lead_text = "—", "—", "missed"
        table.add_row(incident.device, incident.scenario, f"{loss.astimezone(local):%H:%M}", first, risk, lead_text)
    console.print(table)
    explained = [w for w in warnings if any(w["device"] == i.device and w["risk"] in i.risks for i in fleet.incidents)]
    delivered = {r["status"]: r["n"] for r in deliveries}
    rejects_line = next((line for line in reversed(ingest_log.splitlines()) if "rejects:" in line), "")
    rejects = rejects_line.split("rejects: ")[-1] if rejects_line else "not reported"
    console.print(f"[bold]summary[/bold] after {elapsed:.0f} s")
    console.print(
        f"  readings: {stats.readings} published, {stored['readings']} stored "
        f"({stored['values']} metric values; duplicates sent by the devices are stored once)"
    )
    console.print(f"  rejects: {stats.garbage} broken messages sent on purpose; ingest refused: {rejects}")
    console.print(
        f"  warnings: {len(warnings)} opened, {len(explained)} on a real incident, "
        f"{len(warnings) - len(explained)} false; deliveries: {delivered.get('sent', 0)} sent, "
        f"{delivered.get('failed', 0)} failed; {len(sink.received)} messages on the customers' phones"
    )
    if leads:
        console.print(
            f"  lead time: {len(leads)} of {len(fleet.incidents)} incidents warned before the loss, "
            f"median {statistics.median(leads):.1f} h, shortest {min(leads):.1f} h"
        )
    else:
        console.print("  lead time: no incident was warned before its loss")
