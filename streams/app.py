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
import math
import tempfile
import time
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
from core.db import LATE_DATA, RECENT_DATA, Store
from core.readiness import StatusFile
from core.settings import get_settings
from notifiers.dispatch import Dispatcher
from streams.decisions import DeviceMonitor, detectors_for

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

# tenant/device → the device's DeviceMonitor as versioned JSON (DeviceMonitor.to_state: open
# warnings, cool-downs, each detector's state without its parameters), changelogged. Raw bytes
# both ways: we encode our own plain data, Faust only moves bytes.
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


def use_store(db: Store | None) -> None:
    """Have the agents use ``db`` (a test's in-memory store); ``None``: open one from settings."""
    global _store
    _store = db


Overrides = dict[str, dict[str, Any]]


class DetectorConfig:
    """Each device's configured detector parameters (``forewarn detectors set``), read from the
    database on the device's first batch and cached. The database's configuration version is
    checked at most every ``refresh_s`` seconds; when it has moved, the cache is dropped and
    each device reads its parameters again, so a change reaches running devices without a
    restart. While the database cannot be read the cached parameters stand (none yet: the
    profile's), and it is tried again ``refresh_s`` later: scoring never waits on it for long.
    """

    def __init__(self, refresh_s: float = 30.0) -> None:
        self.refresh_s = refresh_s
        self._by_device: dict[tuple[str, str, str], Overrides] = {}
        self._version: int | None = None
        self._checked_at = -math.inf
        self._failed_at = -math.inf

    async def overrides(self, tenant: str, kind: str, device: str) -> Overrides | None:
        """The device's parameters in force, ``None`` if they could not be read."""
        now = time.monotonic()
        key = (tenant, kind, device)
        cached = self._by_device.get(key)
        if now - self._failed_at < self.refresh_s:
            return cached
        try:
            if now - self._checked_at >= self.refresh_s:
                version = await (await store()).detector_config_version()
                self._checked_at = now
                if version != self._version:
                    self._by_device.clear()
                    self._version = version
                    cached = None
            if cached is None:
                cached = self._by_device[key] = await (await store()).detector_overrides(tenant, kind, device)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL down or not migrated: score on, say so
            self._failed_at = now
            log.warning(
                "cannot read the detector configuration (%s); the parameters in force stay, next try in %.0f s",
                exc,
                self.refresh_s,
            )
        return cached


detector_config = DetectorConfig()

# The live DeviceMonitor of each device this worker scored, with the bytes it last wrote and
# the parameters its detectors were built with: when the table still holds exactly those bytes
# the object is current and decoding is skipped; after a rebalance or recovery the table holds
# other bytes and the monitor is rebuilt from them. New parameters rebuild it from its state.
_live_monitors: dict[bytes, tuple[bytes, DeviceMonitor, Overrides]] = {}


def _load_monitor(key: bytes, saved: bytes | None, batch: ReadingsBatch, overrides: Overrides) -> DeviceMonitor:
    """The device's monitor, with detectors built from ``overrides``: the live one, or one
    restored from the state in the table, or a fresh one (:class:`ValueError`: a device kind
    without a profile)."""
    live = _live_monitors.get(key)
    state: Any = None
    if saved and live is not None and live[0] is saved:
        if live[2] == overrides and live[1].kind == batch.kind:
            return live[1]
        state = live[1].to_state()
    elif saved:
        try:
            state = orjson.loads(saved)
        except orjson.JSONDecodeError:
            log.warning("%s: the saved state is not JSON (written by an older worker?); starting afresh", batch.key)
    detectors = detectors_for(batch.kind, overrides, where=batch.key)
    if isinstance(state, dict) and state.get("kind") == batch.kind:
        try:
            return DeviceMonitor.from_state(state, detectors)
        except ValueError as exc:
            log.warning("%s: cannot restore the saved state (%s); starting afresh", batch.key, exc)
    return DeviceMonitor(batch.tenant, batch.device, batch.kind, detectors)


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
        overrides = await detector_config.overrides(batch.tenant, batch.kind, batch.device)
        if overrides is None:  # not readable yet: keep what the device runs with (new: its profile)
            live = _live_monitors.get(key)
            overrides = live[2] if live is not None else {}
        try:
            monitor = _load_monitor(key, device_to_monitor.get(key), batch, overrides)
        except ValueError as exc:  # a device kind no profile knows
            counters["bad_records"] += 1
            log.error("skipping a readings record of %s (%s)", batch.key, exc)
            continue
        events = [event for reading in batch.readings for event in monitor.observe(reading)]
        saved = orjson.dumps(monitor.to_state())
        device_to_monitor[key] = saved
        _live_monitors[key] = (saved, monitor, overrides)
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


# Storage upkeep that TimescaleDB's jobs would do under its own licence (Apache edition and
# plain PostgreSQL have none): when each hourly task last succeeded (event-loop clock).
_upkeep_done: dict[str, float] = {"sweep": float("-inf"), "retention": float("-inf")}


@app.timer(interval=300.0)
async def keep_storage() -> None:
    """Refresh the hourly roll-ups (the last hour every run, the late-data window hourly) and
    apply FOREWARN_RETENTION_DAYS hourly. Logs what it did; a failure is logged and retried on
    the next run, never raised. Several workers may run it: the database lets one at a time."""
    now = asyncio.get_running_loop().time()
    sweep = now - _upkeep_done["sweep"] >= 3600
    try:
        db = await store()
        done = await db.refresh_rollups(late=LATE_DATA if sweep else RECENT_DATA)
        if done.rollup == "table":
            log.info(
                "roll-ups: %d hourly buckets recomputed from %s, %d changed (%.1f s)",
                done.buckets,
                done.since.isoformat() if done.since else "the first reading",
                done.changed,
                done.seconds,
            )
        elif done.rollup == "busy":
            log.info("roll-ups: another worker is refreshing them")
        if sweep and done.rollup != "busy":
            _upkeep_done["sweep"] = now
    except Exception as exc:  # noqa: BLE001 - upkeep waits for the next run, the worker goes on
        why = (str(exc).splitlines() or [repr(exc)])[0]
        log.error("refreshing the hourly roll-ups failed (%s); next try in 5 min", why)
    if now - _upkeep_done["retention"] < 3600:
        return
    try:
        kept = await (await store()).apply_retention(settings.retention_days)
        if kept.how == "chunks":
            log.info(
                "retention (%d days): %d chunks dropped, %d hourly roll-ups deleted (%.1f s)",
                settings.retention_days,
                kept.chunks_dropped,
                kept.rollups_deleted,
                kept.seconds,
            )
        elif kept.how == "delete":
            log.info(
                "retention (%d days): %d readings and %d hourly roll-ups deleted (%.1f s)",
                settings.retention_days,
                kept.rows_deleted,
                kept.rollups_deleted,
                kept.seconds,
            )
        elif kept.how == "policy":
            log.info("retention (%d days): TimescaleDB's own policy", settings.retention_days)
        if kept.how != "busy":
            _upkeep_done["retention"] = now
    except Exception as exc:  # noqa: BLE001
        why = (str(exc).splitlines() or [repr(exc)])[0]
        log.error("applying retention (%d days) failed (%s); next try in 5 min", settings.retention_days, why)


def run_worker(loglevel: str = "info") -> None:
    """Run the worker in the foreground (``forewarn worker``)."""
    from faust.worker import Worker

    class ReportingWorker(Worker):  # type: ignore[misc]
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            status.mark_ready(**counters)  # joined its group, tables recovered: consuming

    Path(settings.state_dir, "faust").mkdir(parents=True, exist_ok=True)  # Faust's datadir lives here
    ReportingWorker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
