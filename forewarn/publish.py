"""Publishing a simulated fleet over MQTT: ``forewarn simulate``, its replay, and the demo's feed.

The simulated clock (``simulator.clock.CompressedClock``) starts in the past and reaches the
present at the end, so the edge never sees a timestamp from the future.

Each simulated device announces itself on its retained status topic: ``online`` before its
first reading, ``offline`` when the feed ends (or is interrupted). A real device registers its
``offline`` as its MQTT last will (``core.mqtt.Will``); the feed is one MQTT client speaking for
the whole fleet and a connection has one last will, so it says ``offline`` for each device
itself. (A replay file carries telemetry only.)
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from core import db
from core.contract import status_topic, telemetry_topic
from core.mqtt import Publisher
from core.secretbox import SecretBox, secret_box
from core.settings import Settings, host_port
from notifiers.channels import seal_all
from simulator.clock import CompressedClock
from simulator.wire import garbage_payloads, read_ground_truth, read_jsonl, to_payload, write_jsonl


@dataclass
class PublishStats:
    messages: int = 0
    readings: int = 0
    garbage: int = 0
    garbage_reasons: Counter[str] = field(default_factory=Counter)


def register_fleet(
    database_url: str, fleet: Any, notify_for: Callable[[Any], list[str]], box: SecretBox | None = None
) -> None:
    """Register the fleet's customers and devices; a customer belongs to its devices' tenant
    (customers are per tenant: one whose devices span several tenants is registered in each).
    ``box``: the channel URLs are stored sealed with it (the worker that sends must hold its key)."""
    tenants_of: dict[str, set[str]] = {}
    for device in fleet.devices:
        tenants_of.setdefault(device.customer, set()).add(device.tenant)
    for customer in fleet.customers:
        for tenant in sorted(tenants_of.get(customer.id, ())):
            urls = notify_for(customer)
            db.add_customer(
                database_url,
                customer.id,
                customer.name,
                customer.locale,
                seal_all(urls, box) if box is not None else urls,
                tenant=tenant,
            )
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
    mqtt_host_port = host_port(mqtt_url, 1883)
    publisher = Publisher(*mqtt_host_port, client_id=f"forewarn-sim-{os.getpid()}")
    publisher.start()
    try:
        publisher.flush(announce(publisher, fleet.devices, "online"))
        return _publish_readings(publisher, fleet, start_ms, hours, compression, garbage, seed, on_tick, console)
    finally:
        publisher.flush(announce(publisher, fleet.devices, "offline"))  # the simulated devices stop here
        publisher.stop()


def announce(publisher: Publisher, devices: list[Any], state: str) -> list[Any]:
    """Publish ``state`` (``online`` / ``offline``) on each device's retained status topic."""
    return [publisher.publish(status_topic(d.tenant, d.device), state.encode(), retain=True) for d in devices]


def _publish_readings(
    publisher: Publisher,
    fleet: Any,
    start_ms: int,
    hours: float,
    compression: float,
    garbage: float,
    seed: int,
    on_tick: Callable[[int], None] | None,
    console: Console | None,
) -> PublishStats:
    rng = random.Random(seed)
    stats = PublishStats()
    clock = CompressedClock(start_ms, compression * 60.0, time.time())  # simulated s per wall s
    end_ms = start_ms + int(hours * 3600_000)
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
            wall_now = time.time()
            sim_now = min(clock.sim_ms(wall_now), int(wall_now * 1000))
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
    return stats


def make_fleet(
    name: str, seed: int, hours: float, devices: int | None, interval_s: float | None
) -> tuple[Any, int, float]:
    """Build the fleet to publish, placed so that its last reading is about now.

    Returns (fleet, start_ms, hours covered)."""
    from simulator.fleet import build_fleet, demo_fleet, standard_library
    from simulator.signals import SampleIntervals

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
    register_fleet(
        settings.database_url, fleet, lambda c: [u.replace("{customer}", c.id) for u in urls], secret_box(settings)
    )
    console.print(f"registered {len(fleet.customers)} customers and {len(fleet.devices)} devices")
    stats = publish_fleet(settings.mqtt_url, fleet, start_ms, hours, compression, garbage, seed, console=console)
    console.print(
        f"published {stats.readings:,} readings in {stats.messages:,} messages, {stats.garbage} broken on purpose"
    )


def replay_file(settings: Settings, path: Path, urls: list[str], console: Console) -> None:
    """Publish a file written by ``simulate --out`` as fast as the broker takes it."""
    truth_path = path.parent / "incidents.json"
    if not path.exists() or not truth_path.exists():
        raise FileNotFoundError(f"a replay needs {path} and {truth_path} (written by 'forewarn simulate --out')")
    truth = read_ground_truth(truth_path)
    register_fleet(
        settings.database_url, truth, lambda c: [u.replace("{customer}", c.id) for u in urls], secret_box(settings)
    )
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
