"""The Faust app: store readings, score each device, decide warnings, notify. The only faust module.

Agents are thin ``async for`` loops around pure code (``core.contract`` to decode,
``streams.decisions`` to score and decide, ``notifiers`` to deliver). Topics are consumed as
raw bytes and validated here, because Faust acknowledges values it cannot decode. At least
once, with idempotent sinks: ``readings`` has a unique key, warnings have deterministic ids,
deliveries are claimed per (warning, action, channel).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pickle  # nosec B403 - only our own DeviceMonitor, from our own changelog
import tempfile
from pathlib import Path
from typing import Any

import faust
import orjson

from core.contract import (
    TOPIC_READINGS,
    TOPIC_WARNINGS,
    ContractError,
    ReadingsBatch,
    WarningEvent,
    decode_readings_record,
)
from core.db import Store
from core.readiness import StatusFile
from core.settings import get_settings
from notifiers.dispatch import Dispatcher
from streams.decisions import DeviceMonitor

log = logging.getLogger(__name__)

HEARTBEAT = Path(tempfile.gettempdir()) / "forewarn-worker.alive"

settings = get_settings()

app = faust.App(
    settings.worker_id,
    broker=settings.kafka_url,
    store="memory://",
    datadir=str(Path(settings.state_dir) / "faust" / "{conf.name}-data"),
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    producer_acks=-1,
    broker_commit_every=500,
    broker_commit_interval=1.0,
    table_standby_replicas=0,
)

readings_topic = app.topic(
    TOPIC_READINGS,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
warnings_topic = app.topic(
    TOPIC_WARNINGS,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)

# tenant/device → the device's pickled DeviceMonitor (detectors' state and open warnings),
# changelogged. Raw bytes both ways: we pickle our own objects, Faust only moves bytes.
device_to_monitor = app.Table(
    "device_to_monitor",
    default=None,
    partitions=settings.partitions,
    key_type=bytes,
    value_type=bytes,
)

_store: Store | None = None
_store_lock = asyncio.Lock()
counters: dict[str, int] = {"readings_stored": 0, "batches_scored": 0, "warnings": 0, "bad_records": 0}


async def store() -> Store:
    global _store
    async with _store_lock:
        if _store is None:
            _store = Store(settings.database_url, max_size=4)
            await _store.open()
    return _store


# The live DeviceMonitor of each device this worker scored, with the bytes it last wrote:
# when the table still holds exactly those bytes the object is current and unpickling is
# skipped; after a rebalance or recovery the table holds other bytes and we unpickle.
_live_monitors: dict[bytes, tuple[bytes, DeviceMonitor]] = {}


def _load_monitor(key: bytes, saved: bytes | None) -> DeviceMonitor | None:
    if not saved:
        return None
    live = _live_monitors.get(key)
    if live is not None and live[0] is saved:
        return live[1]
    monitor: DeviceMonitor = pickle.loads(saved)  # nosec B301 - our own changelog
    return monitor


def _decode(raw: Any) -> ReadingsBatch | None:
    try:
        return decode_readings_record(raw if isinstance(raw, bytes) else bytes(raw))
    except ContractError as exc:
        counters["bad_records"] += 1
        log.error("skipping a readings record that breaks the contract (%s)", exc)
        return None


async def _retry(what: str, op: Any) -> Any:
    """Retry a database write until it succeeds: the record is not acknowledged meanwhile."""
    delay = 0.5
    while True:
        try:
            return await op()
        except Exception as exc:  # noqa: BLE001 - PostgreSQL down: wait, never drop
            log.warning("%s failed (%s); retrying in %.1f s, check FOREWARN_DATABASE_URL", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


@app.agent(readings_topic)
async def store_readings(stream: faust.StreamT[bytes]) -> None:
    """Bulk-write readings: COPY into staging, insert with ON CONFLICT DO NOTHING."""
    async for values in stream.take(500, within=0.5):
        batches = [b for b in map(_decode, values) if b is not None]
        if batches:
            db = await store()
            counters["readings_stored"] += await _retry(
                "storing readings", functools.partial(db.store_readings, batches)
            )


@app.agent(readings_topic)
async def score_device_readings(stream: faust.StreamT[bytes]) -> None:
    """Run the device's detectors over its batch and publish the warnings decided."""
    async for value in stream:
        batch = _decode(value)
        if batch is None:
            continue
        key = batch.key.encode()
        monitor = _load_monitor(key, device_to_monitor.get(key))
        if monitor is None or monitor.kind != batch.kind:
            monitor = DeviceMonitor(batch.tenant, batch.device, batch.kind)
        events = [event for reading in batch.readings for event in monitor.observe(reading)]
        saved = pickle.dumps(monitor, protocol=5)
        device_to_monitor[key] = saved
        _live_monitors[key] = (saved, monitor)
        counters["batches_scored"] += 1
        for event in events:
            counters["warnings"] += 1
            log.info("%s %s on %s (score %.2f)", event.action, event.risk, event.key, event.score)
            await warnings_topic.send(key=event.key.encode(), value=orjson.dumps(event.to_json()))


@app.agent(warnings_topic)
async def notify_customers(stream: faust.StreamT[bytes]) -> None:
    """Record each warning's lifecycle and deliver it to the customer's channels."""
    dispatcher: Dispatcher | None = None
    async for value in stream:
        try:
            event = WarningEvent.from_json(orjson.loads(value))
        except (ValueError, TypeError) as exc:
            counters["bad_records"] += 1
            log.error("skipping a warning record that breaks the contract (%s)", exc)
            continue
        if dispatcher is None:
            dispatcher = Dispatcher(await store())
        await _retry("recording a warning", functools.partial(dispatcher.handle, event))  # type: ignore[union-attr]


status = StatusFile.from_env()


@app.timer(interval=15.0)
async def report_progress() -> None:
    HEARTBEAT.touch()  # the container health check reads its age
    status.update(**counters)
    log.info(
        "worker: %(readings_stored)d readings stored, %(batches_scored)d batches scored, "
        "%(warnings)d warning events, %(bad_records)d bad records",
        counters,
    )


def run_worker(loglevel: str = "info") -> None:
    """Run the worker in the foreground (``forewarn worker``)."""
    from faust.worker import Worker

    class ReportingWorker(Worker):  # type: ignore[misc]
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            status.mark_ready(**counters)  # joined its group, tables recovered: consuming

    Path(settings.state_dir, "faust").mkdir(parents=True, exist_ok=True)  # Faust's datadir lives here
    ReportingWorker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
