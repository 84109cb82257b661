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
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import faust
import orjson

from core import acktokens
from core.contract import (
    TOPIC_READINGS,
    TOPIC_REJECTS,
    TOPIC_STATUS,
    TOPIC_TICKS,
    TOPIC_WARNINGS,
    ContractError,
    ReadingsBatch,
    RejectRecord,
    WarningEvent,
    decode_readings_record,
    decode_reject_record,
    decode_status_record,
    decode_tick_record,
    tick_record,
)
from core.db import LATE_DATA, RECENT_DATA, Store, prune_rejects, store_rejects
from core.localtime import zone
from core.readiness import StatusFile
from core.settings import ack_secret, ack_url, get_settings
from notifiers.dispatch import Dispatcher
from scores.daily import EXIT_BUSY, due_day
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


_T = TypeVar("_T")


def _decoded(raw: Any, decode: Callable[[bytes], _T], what: str) -> _T | None:
    """A record decoded by the contract, or ``None``: counted as bad and logged, never raised."""
    try:
        return decode(raw if isinstance(raw, bytes) else bytes(raw))
    except ContractError as exc:
        counters["bad_records"] += 1
        log.error("skipping a %s record that breaks the contract (%s)", what, exc)
        return None


def _decode(raw: Any) -> ReadingsBatch | None:
    return _decoded(raw, decode_readings_record, "readings")


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


# ---------------------------------------------------------------- rejected telemetry, kept for integrators
#
# What ingest refused (forewarn.rejects) is kept so an integrator can read why a device's data
# does not arrive (GET /v1/rejects): counted per device, reason and hour, the last ones per
# device whole (core.db.store_rejects), FOREWARN_RETENTION_DAYS long.

rejects_topic = app.topic(
    TOPIC_REJECTS,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)


def _decode_reject(raw: Any) -> RejectRecord | None:
    return _decoded(raw, decode_reject_record, "reject")


@app.agent(rejects_topic)
async def keep_rejects(stream: faust.StreamT[bytes]) -> None:
    """Keep rejected telemetry in batches: one transaction per batch of up to 500."""
    async for values in stream.take(500, within=1.0):
        records = [r for r in map(_decode_reject, values) if r is not None]
        if records:
            db = await store()
            kept = await _retry("keeping rejects", functools.partial(store_rejects, db, records))
            counters["rejects_kept"] = counters.get("rejects_kept", 0) + kept


@app.timer(interval=3600.0)
async def forget_old_rejects() -> None:
    """Rejects older than FOREWARN_RETENTION_DAYS go, hourly (several workers: harmless)."""
    try:
        await asyncio.to_thread(prune_rejects, settings.database_url, settings.retention_days)
    except Exception as exc:  # noqa: BLE001 - the next hour tries again
        log.error("forgetting old rejects failed (%s); next try in an hour", (str(exc).splitlines() or [""])[0])


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
        events = heard_from(monitor, batch)  # first: the device is heard from (a silence ends)
        events += [event for reading in batch.readings for event in monitor.observe(reading)]
        saved = orjson.dumps(monitor.to_state())
        device_to_monitor[key] = saved
        _live_monitors[key] = (saved, monitor, overrides)
        counters["batches_scored"] += 1
        for event in events:
            counters["warnings"] += 1
            log.info("%s %s on %s (score %.2f)", event.action, event.risk, event.key, event.score)
            await warnings_topic.send(key=event.key.encode(), value=orjson.dumps(event.to_json()))


_dispatcher: Dispatcher | None = None


async def dispatcher() -> Dispatcher:
    """The worker's one notifier: acknowledgement links signed with the shared secret."""
    global _dispatcher
    if _dispatcher is None:
        secret = ack_secret(settings)

        def link(warning_id: str) -> str:
            return ack_url(settings, acktokens.issue(secret, warning_id, time.time(), settings.ack_link_ttl_s))

        _dispatcher = Dispatcher(
            await store(), settings.timezone, ack_link=link, retry_delays_s=settings.retry_delays_s
        )
    return _dispatcher


def _kick_sender(notifier: Dispatcher) -> None:
    """Send what is due without holding up the stream (a slow channel waits in its own task)."""
    task = asyncio.ensure_future(notifier.flush())
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("sending failed (%s); the next sweep retries", task.exception())


@app.agent(warnings_topic)
async def notify_customers(stream: faust.StreamT[bytes]) -> None:
    """Record each warning's lifecycle and put its messages in the outbox; a sender delivers them."""
    async for value in stream:
        try:
            event = WarningEvent.from_json(orjson.loads(value))
        except (ValueError, TypeError) as exc:
            counters["bad_records"] += 1
            log.error("skipping a warning record that breaks the contract (%s)", exc)
            continue
        notifier = await dispatcher()
        await _retry("recording a warning", functools.partial(notifier.handle, event))
        _kick_sender(notifier)


@app.timer(interval=2.0)
async def follow_up_warnings() -> None:
    """Due retries, held messages whose quiet hours ended, and follow-ups nobody acknowledged."""
    try:
        notifier = await dispatcher()
        await notifier.fire_followups()
        await notifier.flush()
    except Exception as exc:  # noqa: BLE001 - PostgreSQL down: the next sweep tries again
        log.warning("follow-up sweep failed (%s); retrying in 2 s", exc)


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


# ---------------------------------------------------------------- risk scores, once a day
#
# Half an hour after local midnight (FOREWARN_TIMEZONE) the day that ended is scored
# (scores.daily) in a child process: a month of a vehicle's readings is CPU work that must not
# hold up the warnings. The child scores only the devices without a score for that day, under
# a database lock, so several workers and restarts score each device once; a failure is logged
# (the child's own log says which device and why) and tried again at the next check.

SCORES_CHECK_S = 600.0
"""How often the leader looks whether a day's risk scores are due."""
_scores_done: dict[str, date] = {}  # "day" → the last day scored in full


async def score_the_day(now: datetime) -> None:
    """The day's risk scores in a child process, when they are due at ``now`` and not done."""
    day = due_day(now, zone(settings.timezone), _scores_done.get("day"))
    if day is None:
        return
    try:
        child = await asyncio.create_subprocess_exec(sys.executable, "-m", "scores.daily", day.isoformat())
        code = await child.wait()
    except Exception as exc:  # noqa: BLE001 - the next check tries again
        log.error("risk scores for %s could not start (%s); next try in %.0f min", day, exc, SCORES_CHECK_S / 60)
        return
    if code == 0:
        _scores_done["day"] = day
    elif code != EXIT_BUSY:
        log.error(
            "risk scores for %s: the recompute exited with %d; next try in %.0f min", day, code, SCORES_CHECK_S / 60
        )


@app.timer(interval=SCORES_CHECK_S, on_leader=True)
async def recompute_risk_scores() -> None:
    """Once a day, after local midnight: the day's risk scores."""
    await score_the_day(datetime.now(UTC))


# ---------------------------------------------------------------- devices that go silent
#
# Silence is the absence of readings, so a clock must look for it (``streams.silence``). Each
# record of a device is timed by its arrival at ingest (``ingested_at`` / ``received_at``), so
# the worker's wall clock is the clock the rule runs on. The tables can only be written while
# an event is processed, on the partition of the device: the timer below therefore does not
# decide, it puts a tick (``forewarn.ticks``, keyed like the device's readings, carrying the
# time) on Kafka for each device whose silence is due, and ``check_device_silence`` decides as
# it processes that tick — a replay decides the same. Statuses (``forewarn.status``) reach
# ``watch_device_status``. Both load and save the device's monitor like
# ``score_device_readings``.

status_topic = app.topic(
    TOPIC_STATUS,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
ticks_topic = app.topic(
    TOPIC_TICKS,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)

SILENCE_CHECK_S = 30.0
"""How often the timer looks for devices whose silence is due."""
SILENCE_SETTLE_S = 60.0
"""After a start or a rebalance, how long the timer waits before its first ticks: time for a
backlog of readings to show itself (see ``MAX_SCORING_LAG_MS``)."""
MAX_SCORING_LAG_MS = 120_000
"""Readings being scored this long after ingest received them: the worker is catching up on a
backlog, and a device's last-heard time may be older than what Kafka already holds for it, so
no silence is decided until it has caught up."""
RETICK_S = 300.0
"""A tick that changed nothing (lost, or the device spoke meanwhile) is sent again after this."""

counters.update(statuses=0, silence_ticks=0, devices_silent=0, silent_unprotected=0)

_scoring_lag: dict[str, float] = {"lag_ms": 0.0, "at": -math.inf}  # the last readings record scored
_silence_clock: dict[str, float | None] = {"settled_from": None}
_ticked: dict[bytes, tuple[int, float]] = {}  # device → (the due time a tick was sent for, when)


def heard_from(monitor: DeviceMonitor, batch: ReadingsBatch) -> list[WarningEvent]:
    """A readings record of the device arrived (``score_device_readings`` calls this before
    observing its readings): its silence, if any, ends."""
    _scoring_lag["lag_ms"] = time.time() * 1000 - batch.ingested_at
    _scoring_lag["at"] = time.monotonic()
    return monitor.heard(batch.ingested_at)


async def _monitor_for(
    key: bytes, tenant: str, device: str, kind: str, at_ms: int, create: bool
) -> tuple[DeviceMonitor, Overrides] | None:
    """The device's monitor as ``score_device_readings`` would load it (``create``: a fresh
    one for a device never scored yet; else ``None`` for it)."""
    saved = device_to_monitor.get(key)
    if saved is None and not create:
        return None
    overrides = await detector_config.overrides(tenant, kind, device)
    if overrides is None:
        live = _live_monitors.get(key)
        overrides = live[2] if live is not None else {}
    try:
        return _load_monitor(key, saved, ReadingsBatch(tenant, device, kind, (), at_ms), overrides), overrides
    except ValueError as exc:  # a device kind no profile knows
        counters["bad_records"] += 1
        log.error("skipping a record of %s/%s (%s)", tenant, device, exc)
        return None


def _save_monitor(key: bytes, monitor: DeviceMonitor, overrides: Overrides) -> None:
    saved = orjson.dumps(monitor.to_state())
    device_to_monitor[key] = saved
    _live_monitors[key] = (saved, monitor, overrides)


async def _publish(events: list[WarningEvent]) -> None:
    for event in events:
        counters["warnings"] += 1
        log.info("%s %s on %s (%s)", event.action, event.risk, event.key, event.severity)
        await warnings_topic.send(key=event.key.encode(), value=orjson.dumps(event.to_json()))


@app.agent(status_topic)
async def watch_device_status(stream: faust.StreamT[bytes]) -> None:
    """A device said ``online`` or ``offline``: note it (an offline grace of zero decides at once)."""
    async for value in stream:
        record = _decoded(value, decode_status_record, "status")
        if record is None:
            continue
        key = record.key.encode()
        loaded = await _monitor_for(key, record.tenant, record.device, record.kind, record.received_at, create=True)
        if loaded is None:
            continue
        monitor, overrides = loaded
        silent = monitor.silence.silent
        events = monitor.status(record.state, record.received_at, record.retained)
        _count_silence(monitor, silent)
        _save_monitor(key, monitor, overrides)
        counters["statuses"] += 1
        await _publish(events)


@app.agent(ticks_topic)
async def check_device_silence(stream: faust.StreamT[bytes]) -> None:
    """The clock's tick for a device: decide its silence at the tick's time."""
    async for value in stream:
        tick = _decoded(value, decode_tick_record, "tick")
        if tick is None:
            continue
        key = tick.key.encode()
        loaded = await _monitor_for(key, tick.tenant, tick.device, tick.kind, tick.now, create=False)
        if loaded is None:
            continue
        monitor, overrides = loaded
        silent = monitor.silence.silent
        events = monitor.tick(tick.now)
        if monitor.silence.silent != silent:
            _count_silence(monitor, silent)
            _save_monitor(key, monitor, overrides)
        await _publish(events)


def _count_silence(monitor: DeviceMonitor, was_silent: bool) -> None:
    if monitor.silence.silent and not was_silent:
        counters["devices_silent"] += 1
        if not monitor.protective:
            counters["silent_unprotected"] += 1  # recorded, never sent to the customer


def _silence_clock_trusted() -> bool:
    """Whether the worker's view of its devices is current enough to call one silent: not
    while partitions move or tables recover, for ``SILENCE_SETTLE_S`` after that, and not while
    readings are scored ``MAX_SCORING_LAG_MS`` behind ingest (a backlog being caught up)."""
    now = time.monotonic()
    if app.rebalancing or getattr(app, "in_recovery", False):
        _silence_clock["settled_from"] = None
        return False
    settled_from = _silence_clock["settled_from"]
    if settled_from is None:
        _silence_clock["settled_from"] = now
        return False
    if now - settled_from < SILENCE_SETTLE_S:
        return False
    if now - _scoring_lag["at"] < 2 * SILENCE_CHECK_S and _scoring_lag["lag_ms"] > MAX_SCORING_LAG_MS:
        log.info("readings are scored %.0f s behind ingest: silence waits", _scoring_lag["lag_ms"] / 1000)
        return False
    return True


async def _monitor_to_check(key: bytes, saved: bytes) -> DeviceMonitor | None:
    """The live monitor of a device in the table (restored from the table after a start)."""
    live = _live_monitors.get(key)
    if live is not None and live[0] is saved:
        return live[1]
    try:
        state = orjson.loads(saved)
        tenant, device, kind = str(state["tenant"]), str(state["device"]), str(state["kind"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    loaded = await _monitor_for(key, tenant, device, kind, 0, create=False)
    if loaded is None:
        return None
    monitor, overrides = loaded
    if device_to_monitor.get(key) is saved:
        _live_monitors[key] = (saved, monitor, overrides)
    return monitor


async def send_silence_ticks(now_ms: int) -> int:
    """Put a tick on ``forewarn.ticks`` for each device of this worker whose silence is due
    at ``now_ms``; returns how many."""
    sent = 0
    for key, saved in list(device_to_monitor.items()):
        if not saved:
            continue
        monitor = await _monitor_to_check(key, saved)
        due = monitor.silence_due_ms() if monitor is not None else None
        if monitor is None or due is None or due > now_ms:
            continue
        last = _ticked.get(key)
        if last is not None and last[0] == due and time.monotonic() - last[1] < RETICK_S:
            continue  # asked already; the tick is on its way
        _ticked[key] = (due, time.monotonic())
        record = tick_record(monitor.tenant, monitor.device, monitor.kind, now_ms)
        await ticks_topic.send(key=key, value=record)
        sent += 1
    counters["silence_ticks"] += sent
    return sent


@app.timer(interval=SILENCE_CHECK_S)
async def look_for_silent_devices() -> None:
    """The worker's clock for silence: ticks for the devices whose silence is due."""
    if not _silence_clock_trusted():
        return
    try:
        sent = await send_silence_ticks(int(time.time() * 1000))
    except Exception as exc:  # noqa: BLE001 - Kafka busy: the next run asks again
        log.warning("sending silence checks failed (%s); next try in %.0f s", exc, SILENCE_CHECK_S)
        return
    if sent:
        log.info("silence due for %d devices: checking", sent)


def run_worker(loglevel: str = "info") -> None:
    """Run the worker in the foreground (``forewarn worker``)."""
    from faust.worker import Worker

    class ReportingWorker(Worker):  # type: ignore[misc]
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            status.mark_ready(**counters)  # joined its group, tables recovered: consuming

    Path(settings.state_dir, "faust").mkdir(parents=True, exist_ok=True)  # Faust's datadir lives here
    ReportingWorker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
