"""The Faust app: store readings, score each device, decide warnings, notify. The only faust module.

Agents are thin ``async for`` loops around pure code (``core.contract`` to decode,
``streams.decisions`` to score and decide, ``notifiers`` to deliver). Topics are consumed as
raw bytes and validated here, because Faust acknowledges values it cannot decode. At least
once, with idempotent sinks: ``readings`` has a unique key, warnings have deterministic ids,
deliveries are claimed per (warning, action, channel).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import faust
import orjson
from faust.sensors import Monitor
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport

from core import acktokens
from core.bus import EndOffsets
from core.contract import (
    TOPIC_READINGS,
    TOPIC_REJECTS,
    TOPIC_STATUS,
    TOPIC_TICKS,
    TOPIC_WARNINGS,
    ContractError,
    ReadingsBatch,
    RejectRecord,
    StatusRecord,
    TickRecord,
    WarningEvent,
    decode_reject_record,
    decode_status_record,
    decode_tick_record,
    reject_record,
    tick_record,
)
from core.db import LATE_DATA, RECENT_DATA, Store, prune_rejects, store_rejects
from core.deadletters import DeadLetter, blames_records, forget_dead_letters, reason_of, set_aside
from core.localtime import zone
from core.outage import Outage
from core.readiness import StatusFile
from core.runtime import freeze_start_up, tune_gc
from core.settings import ack_secret, ack_url, get_settings, kafka_target
from notifiers.dispatch import Dispatcher
from scores.daily import EXIT_BUSY, due_day
from streams.decisions import DeviceMonitor, detectors_for
from streams.fleet import FleetScorer, finding_of, open_severity
from streams.guard import check_readings, check_status, check_tick, check_warning, write_isolating
from streams.watchdog import EXIT_STUCK, StallWatch, lag

log = logging.getLogger(__name__)

HEARTBEAT = Path(tempfile.gettempdir()) / "forewarn-worker.alive"

settings = get_settings()

STOP_DRAIN_S = 4.0
"""On SIGTERM, how long the agents may take to finish the records they hold before the worker
stops without them (they are not acknowledged: Kafka delivers them again)."""
STOP_DEADLINE_S = 9.0
"""A worker not stopped this long after SIGTERM (Kafka or the database not answering while it
leaves) exits at once; what it had not stored was never acknowledged."""
SESSION_TIMEOUT_S = 6.0
"""How long the group waits for a member that stopped heartbeating (a killed worker) before its
partitions go to the others: Kafka's smallest allowed session (``group.min.session.timeout.ms``)."""


class _FetchWaitConsumerThread(AIOKafkaConsumerThread):  # type: ignore[misc]
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed 1.5 s; aiokafka keeps the value here until start() builds its fetcher
        consumer._fetch_max_wait_ms = settings.kafka_fetch_wait_ms
        return consumer


class _FetchWaitConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    def _new_consumer_thread(self) -> _FetchWaitConsumerThread:
        return _FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(AIOKafkaTransport):  # type: ignore[misc]
    """Faust's aiokafka transport, fetching with ``settings.kafka_fetch_wait_ms``."""

    Consumer = _FetchWaitConsumer


class _Recovery(Recovery):  # type: ignore[misc]
    """Faust's recovery, with nothing delivered while the stream partitions are resumed and sought.

    Faust resumes the partitions, then seeks them to their committed offsets, with the consumer's
    flow still on from reading the changelogs: records fetched in between reached the agents
    before the seek (a worker log showed a warning decided 13 ms before "Worker ready", its record
    fetched, and never handled by the notifier while its offset was committed). Stopping the flow
    first makes the fetcher wait, and a fetch in flight is dropped and sought back (Faust's own
    "getmany called while flow not active"); Faust turns the flow on again once the seek is done."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.app.consumer.stop_flow()
        await super().on_recovery_completed(generation_id)


class _QuietMonitor(Monitor):  # type: ignore[misc]
    """Faust's monitor without its statistics per message, event, send and table access: they
    feed Faust's web views, which the worker does not run, and cost a few µs per record (two
    agents read each readings record). What Faust's consumer asks of it (end offsets, commits,
    rebalances) is kept."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass


class _TableManager(TableManager):  # type: ignore[misc]
    """Faust's table manager without the second it sleeps before registering the tables (for
    tables declared late): ours are declared at import, so a worker is ready a second sooner;
    and with :class:`_Recovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = _Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class WorkerApp(faust.App):  # type: ignore[misc]
    """Faust's app, with a bounded drain on shutdown.

    Faust waits, before it stops, until every record an agent took is acknowledged; an agent that
    waits out a database outage would hold it up for as long as the outage lasts (SIGTERM ignored).
    The agents acknowledge a record only once it is stored or handled, so stopping without the
    records they hold loses nothing: those are read again by the next owner of the partition."""

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        # the learning not yet saved is written first: its records are acknowledged before the
        # partitions move (or the worker stops), and nobody else writes those devices meanwhile
        save_unsaved()
        if not self.should_stop:  # a rebalance: the records held are finished first, as Faust does
            await super()._consumer_wait_empty(consumer, logger)
            return
        # not wait_for: Faust's wait swallows the cancellation; left running, it ends as the consumer stops
        drain = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
        done, _ = await asyncio.wait({drain}, timeout=STOP_DRAIN_S)
        if not done:
            log.warning(
                "stopping with %d records not yet stored or handled (a dependency is not answering);"
                " they were not acknowledged and will be read again",
                work.held,
            )

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        await super().on_stop()
        await close_store()
        try:
            await asyncio.wait_for(_end_offsets.close(), 2.0)
        except Exception as exc:  # noqa: BLE001 - stopping anyway
            log.info("closing the offsets client on the way out failed (%s)", exc)


kafka = kafka_target(settings.kafka_url)  # a user in FOREWARN_KAFKA_URL: log in with SASL (SASL_PLAINTEXT)

app = WorkerApp(
    settings.worker_id,
    broker=f"kafka://{kafka.bootstrap}",
    broker_credentials=faust.SASLCredentials(
        username=kafka.username, password=kafka.password, mechanism=kafka.mechanism
    )
    if kafka.username
    else None,
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
    TableManager=_TableManager,
    Monitor=_QuietMonitor,
    # a killed worker's partitions move after SESSION_TIMEOUT_S, not Faust's 60 s; a member that
    # leaves on SIGTERM says so and the group rebalances at once
    broker_session_timeout=SESSION_TIMEOUT_S,
    broker_heartbeat_interval=1.0,
    broker_rebalance_timeout=15.0,
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
counters: dict[str, int] = {
    "readings_stored": 0,
    "batches_scored": 0,
    "warnings": 0,
    "bad_records": 0,
    "dead_letters": 0,
}
refusals: Counter[str] = Counter()
"""Records refused by the re-check (and records that do not decode), per reason."""

DB_TIMEOUT_S = 15.0
"""The longest one database operation of the worker may take. A server that stopped answering
(a partition, a blackhole: connections open, nothing comes back) would otherwise hold an agent
for as long as TCP takes to give up; past this it counts as an outage and is retried."""
WRITE_RETRIES = 2
"""A write the database refuses for what it carries is retried this often before the batch is
split to find the records to blame (they are set aside in ``dead_letters``)."""
REGISTRY_REFRESH_S = 30.0
REGISTRY_MISS_REFRESH_S = 2.0
REGISTRY_TIMEOUT_S = 5.0
REPORT_S = 5.0
"""How often the worker reports its work to the status file (``forewarn health`` reads it)."""

database = Outage("PostgreSQL", log, hint="FOREWARN_DATABASE_URL, and that `forewarn db migrate` ran", max_delay_s=10.0)
"""The database as the worker's agents see it: one line when it goes, one when it is back."""

broker = Outage("Kafka", log, hint=f"FOREWARN_KAFKA_URL ({kafka.bootstrap}) and that the broker runs")
"""Kafka as Faust's clients see it: one line when it goes, one when it is back (aiokafka, under
Faust, retries by itself; :class:`KafkaComplaints` tells the worker when it fails)."""

KAFKA_QUIET_S = 3.0
"""aiokafka silent about an unreachable Kafka this long after its last complaint: Kafka is back.
While it is not, aiokafka tries again every 100 ms or so (fetches, metadata, the group
coordinator, heartbeats) and complains each time."""
_UNREACHABLE = (
    "Unable connect",
    "Connect call failed",
    "Unable to update metadata",
    "coordinator dead",
    "NodeNotReady",
    "KafkaConnectionError",
    "Connection at",
    "RequestTimedOut",
    "KafkaTimeoutError",
)
"""What aiokafka's warnings and errors say when Kafka cannot be reached or does not answer."""


class KafkaComplaints(logging.Filter):
    """aiokafka's complaints about an unreachable Kafka, kept out of the log and told as one outage.

    While Kafka is away, aiokafka logs every failed attempt of Faust's consumer and producer
    (each connection, fetch, metadata refresh and coordinator lookup: about 80 lines a second).
    Each is retried by aiokafka itself and nothing is lost (a record is acknowledged only once
    finished), so the lines say nothing the outage's first line does not. On the root logger's
    handlers, this filter drops them and notes when they came; :func:`note_kafka` turns that
    into ``broker``'s two lines. While an outage is under way, mode's "Timer … is overlapping"
    goes too (Faust's offset commit waits for Kafka as long as it is gone). aiokafka's other
    lines (joins, rebalances, other errors) pass. Faust's consumer logs from a thread of its
    own: only plain assignments here."""

    def __init__(self) -> None:
        super().__init__()
        self.first: str | None = None  # the first complaint since Kafka was last known well
        self.last_at = -math.inf
        self.dropped = 0
        self.dropped_before = 0  # ``dropped`` when the outage began

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if record.name == "mode.timers":
            return self.first is None or "overlapping" not in str(record.msg)
        if not record.name.startswith("aiokafka"):
            return True
        text = record.getMessage()
        if not any(marker in text for marker in _UNREACHABLE):
            return True
        if not getattr(record, "forewarn_noted", False):  # one record, several handlers: noted once
            record.forewarn_noted = True
            self.last_at = time.monotonic()
            if self.first is None:
                self.dropped_before = self.dropped
                self.first = text
            self.dropped += 1
        return False


kafka_complaints = KafkaComplaints()


def note_kafka(now: float) -> None:
    """Log the start of a Kafka outage once aiokafka complained, its end once it has been quiet
    for ``KAFKA_QUIET_S`` (``now``: ``time.monotonic()``); the end counts aiokafka's failed
    attempts as the outage's."""
    first = kafka_complaints.first
    if first is not None and not broker.down:
        broker.failed(ConnectionError(first), "reading and writing its topics")
    elif broker.down and now - kafka_complaints.last_at >= KAFKA_QUIET_S:
        broker.attempts = kafka_complaints.dropped - kafka_complaints.dropped_before
        kafka_complaints.first = None
        broker.recovered()


async def store() -> Store:
    """The worker's pool, opened on first use (a failed opening is tried again next time)."""
    global _store
    async with _store_lock:
        if _store is None:
            opened = Store(settings.database_url, max_size=4)
            try:
                await asyncio.wait_for(opened.open(), DB_TIMEOUT_S)
            except Exception:
                await asyncio.wait_for(opened.close(), 5.0)
                raise
            _store = opened
    return _store


def use_store(db: Store | None) -> None:
    """Have the agents use ``db`` (a test's in-memory store); ``None``: open one from settings."""
    global _store, devices
    _store = db
    devices = DeviceRegistry()  # the registry is the store's


_T = TypeVar("_T")
_I = TypeVar("_I")


async def _db(op: Callable[[Store], Awaitable[_T]], timeout_s: float = DB_TIMEOUT_S) -> _T:
    """One database operation, bounded: past ``timeout_s`` it raises :class:`TimeoutError`."""

    async def run() -> _T:
        return await op(await store())

    return await asyncio.wait_for(run(), timeout_s)


async def _wait_out(exc: BaseException, doing: str) -> None:
    """Sleep the backoff of a database outage (logged once per outage, not per attempt)."""
    await asyncio.sleep(database.failed(exc, doing))


async def _until_done(doing: str, op: Callable[[Store], Awaitable[_T]]) -> _T:
    """A database operation that must happen: tried until it succeeds, whatever the error."""
    while True:
        try:
            result = await _db(op)
        except Exception as exc:  # noqa: BLE001 - nothing to set aside here: wait, never drop
            await _wait_out(exc, doing)
            continue
        database.recovered()
        return result


async def _write(
    doing: str,
    topic: str,
    items: Sequence[tuple[Any, _I]],
    write: Callable[[Store, list[_I]], Awaitable[_T]],
) -> list[_T]:
    """Write ``items`` (each a Faust event and what to write of it) with ``write``; an outage is
    waited out, records the database refuses are isolated after bounded retries and set aside in
    ``dead_letters`` with the error (:func:`streams.guard.write_isolating`). The results of the
    writes that succeeded."""

    async def attempt(batch: Sequence[tuple[Any, _I]]) -> _T:
        result = await _db(lambda db: write(db, [item for _, item in batch]))
        database.recovered()
        return result

    done = await write_isolating(
        items,
        attempt,
        blames_records=blames_records,
        wait_out=lambda exc: _wait_out(exc, doing),
        retries=WRITE_RETRIES,
    )
    if done.poison:
        letters = [_dead_letter(topic, event, exc) for (event, _), exc in done.poison]
        await _until_done("setting records aside", lambda db: set_aside(db, letters))
        counters["dead_letters"] += len(letters)
        for letter in letters:
            log.error(
                "%s: set a record aside in dead_letters (partition %s, offset %s), the database refuses it: %s",
                doing,
                letter.partition,
                letter.offset,
                letter.reason,
            )
    return done.results


def _dead_letter(topic: str, event: Any, exc: BaseException) -> DeadLetter:
    message = event.message
    key = message.key if isinstance(message.key, bytes) else None
    return DeadLetter(topic, key, message.partition, message.offset, _raw(event.value), reason_of(exc))


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else bytes(value)


class DeviceRegistry:
    """The device registry (``tenant/device`` → kind) as ingest reads it, for the re-check.

    Read from the database before the first record is checked (an outage is waited out: without
    it nothing can be checked), then again every ``REGISTRY_REFRESH_S`` and, when a record names a
    device it does not know, at most every ``REGISTRY_MISS_REFRESH_S``; within that interval the
    one device is looked up alone (added a moment ago: ingest already let it through), and a
    device found missing is not looked up again for ``REGISTRY_MISS_REFRESH_S``. A read that
    fails or times out keeps the registry it has, and waits ``REGISTRY_REFRESH_S`` before trying
    again: checking never waits long on a silent database."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] | None = None
        self._read_at = -math.inf
        self._failed_at = -math.inf
        self._missing: dict[str, float] = {}  # tenant/device → when it was found unregistered

    async def current(self, key: str | None = None) -> Mapping[str, str]:
        """The registry to check against (``key``: the device a record names)."""
        if self.kinds is None:
            self.kinds = await _until_done("reading the device registry", lambda db: db.devices())
            self._read_at = time.monotonic()
            return self.kinds
        now = time.monotonic()
        if now - self._failed_at < REGISTRY_REFRESH_S:
            return self.kinds
        stale = now - self._read_at >= REGISTRY_REFRESH_S
        missed = key is not None and key not in self.kinds
        if stale or (missed and now - self._read_at >= REGISTRY_MISS_REFRESH_S):
            try:
                self.kinds = await _db(lambda db: db.devices(), REGISTRY_TIMEOUT_S)
                database.recovered()
            except Exception as exc:  # noqa: BLE001 - keep checking against what we know
                self._failed_at = now
                database.failed(exc, f"refreshing the device registry (checking against the {len(self.kinds)} known)")
            self._read_at = now
        elif (
            missed
            and key is not None
            and "/" in key
            and now - self._missing.get(key, -math.inf) >= REGISTRY_MISS_REFRESH_S
        ):
            # read a moment ago: look this one device up alone (added since; ingest already let it through)
            tenant, device = key.split("/", 1)
            try:
                kind = await _db(lambda db: db.device_kind(tenant, device), REGISTRY_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - the next full read will tell
                kind = None
            if kind is None:
                self._missing[key] = now
            else:
                self.kinds[key] = kind
        return self.kinds


devices = DeviceRegistry()


class Work:
    """The records the agents hold (taken from Kafka, not yet stored or handled) and how many
    they finished, for the status file: health means progress.

    A record is acknowledged to Kafka only when it is finished: Faust acknowledges an event when
    the agent's loop moves on or is cancelled, so each held record carries one more reference,
    released by :meth:`finish`. A record held when the worker is stopped is never acknowledged,
    and is read again by the next owner of its partition."""

    def __init__(self) -> None:
        self.held = 0
        self.moved = 0
        self._reported = 0

    def take(self, events: Sequence[Any]) -> None:
        for event in events:
            event.message.incref()
        self.held += len(events)

    def finish(self, events: Sequence[Any]) -> None:
        for event in events:
            event.ack()
        self.held -= len(events)
        self.moved += len(events)

    def since_report(self) -> int:
        moved, self._reported = self.moved - self._reported, self.moved
        return moved


work = Work()
_refusals_logged: dict[str, float] = {}


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _refuse(event: Any, topic: str, exc: ContractError, *, send: bool = True, tell: bool = True) -> None:
    """Count a record that fails the re-check and (``send``) put it on ``forewarn.rejects`` with
    its reason. ``tell``: log it, at most once a minute per reason (a flood must not bury the
    log). Two agents read ``forewarn.readings``: one of them sends and tells."""
    if tell:
        counters["bad_records"] += 1
        refusals[exc.reason] += 1
    now = time.monotonic()
    if tell and now - _refusals_logged.get(exc.reason, -math.inf) >= 60:
        _refusals_logged[exc.reason] = now
        log.warning(
            "refused a %s record that breaks the contract (%s: %s)%s"
            " (refusals are logged once a minute per reason and counted in the status file)",
            topic,
            exc.reason,
            exc.detail,
            f"; it goes to {TOPIC_REJECTS}" if send else "",
        )
    if send:
        raw = _raw(event.value)
        key = event.message.key if isinstance(event.message.key, bytes) else None
        detail = f"refused by the worker's re-check of {topic}: {exc.detail}"
        await rejects_topic.send(key=key, value=reject_record(exc.reason, detail, topic, raw, _now_ms()))


def _key(event: Any) -> str | None:
    key = event.message.key
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else None


def _contract_error(exc: Exception) -> ContractError:
    """Whatever a check raised, as a refusal (a check that breaks on a record refuses it)."""
    if isinstance(exc, ContractError):
        return exc
    if isinstance(exc, orjson.JSONDecodeError):
        return ContractError("malformed_json", str(exc)[:200])
    return ContractError("bad_shape", f"{type(exc).__name__}: {str(exc)[:200]}")


_rechecked: weakref.WeakKeyDictionary[Any, ReadingsBatch | ContractError] = weakref.WeakKeyDictionary()
"""Each readings record's re-check, done by whichever of the two agents reading
``forewarn.readings`` gets to it first and taken (popped) by the other: Faust hands both the
same message, so a record is decoded and checked once. Weak: a record the other agent never
sees (a rebalance between the two) leaves nothing behind once Faust lets go of it."""


async def _checked_readings(event: Any, send: bool) -> ReadingsBatch | None:
    """The readings record of ``event`` re-checked, or ``None`` when it is refused (``send``:
    to ``forewarn.rejects``, said in the log)."""
    message = event.message
    outcome = _rechecked.pop(message, None)
    if outcome is None:
        try:
            outcome = check_readings(_raw(event.value), await devices.current(_key(event)), _now_ms())
        except Exception as exc:  # noqa: BLE001 - every failed check is a refusal
            outcome = _contract_error(exc)
        _rechecked[message] = outcome
    if isinstance(outcome, ContractError):
        await _refuse(event, TOPIC_READINGS, outcome, send=send, tell=send)
        return None
    return outcome


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
                version = await _db(lambda db: db.detector_config_version(), REGISTRY_TIMEOUT_S)
                self._checked_at = now
                if version != self._version:
                    self._by_device.clear()
                    self._version = version
                    cached = None
            if cached is None:
                cached = self._by_device[key] = await _db(
                    lambda db: db.detector_overrides(tenant, kind, device), REGISTRY_TIMEOUT_S
                )
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


@app.agent(readings_topic)
async def store_readings(stream: faust.StreamT[bytes]) -> None:
    """Bulk-write readings: COPY into staging, insert with ON CONFLICT DO NOTHING. A record that
    fails the re-check is refused to ``forewarn.rejects``; one the database refuses is set aside."""
    writing: asyncio.Future[None] | None = None
    async for events in stream.take_events(500, within=0.5):  # type: ignore[attr-defined]  # Stream's, not in StreamT
        work.take(events)
        checked = [(event, await _checked_readings(event, send=True)) for event in events]
        items = [(event, batch) for event, batch in checked if batch is not None]
        # one batch is written while the next is taken and checked (two writes at most): rows
        # are idempotent, and each batch's records are acknowledged when its own write is done
        previous, writing = writing, asyncio.ensure_future(_store_batch(events, items))
        if previous is not None:
            await previous
    if writing is not None:
        await writing


async def _store_batch(events: list[Any], items: list[tuple[Any, ReadingsBatch]]) -> None:
    if items:
        stored = await _write("storing readings", TOPIC_READINGS, items, _store_readings)
        counters["readings_stored"] += sum(stored)
    work.finish(events)


async def _store_readings(db: Store, batches: list[ReadingsBatch]) -> int:
    return await db.store_readings(batches)


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


async def _decoded_reject(event: Any) -> RejectRecord | None:
    """A reject record, or ``None``: counted and logged, never sent back to the rejects."""
    try:
        return decode_reject_record(_raw(event.value))
    except Exception as exc:  # noqa: BLE001 - a record that does not decode is refused
        await _refuse(event, TOPIC_REJECTS, _contract_error(exc), send=False)
        return None


@app.agent(rejects_topic)
async def keep_rejects(stream: faust.StreamT[bytes]) -> None:
    """Keep rejected telemetry in batches: one transaction per batch of up to 500."""
    async for events in stream.take_events(500, within=1.0):  # type: ignore[attr-defined]
        work.take(events)
        decoded = [(event, await _decoded_reject(event)) for event in events]
        items = [(event, record) for event, record in decoded if record is not None]
        if items:
            kept = await _write("keeping rejects", TOPIC_REJECTS, items, _keep_rejects)
            counters["rejects_kept"] = counters.get("rejects_kept", 0) + sum(kept)
        work.finish(events)


async def _keep_rejects(db: Store, records: list[RejectRecord]) -> int:
    return await store_rejects(db, records)


@app.timer(interval=3600.0)
async def forget_old_rejects() -> None:
    """Rejects and dead letters older than FOREWARN_RETENTION_DAYS go, hourly (several workers: harmless)."""
    try:
        await asyncio.to_thread(prune_rejects, settings.database_url, settings.retention_days)
        cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
        await _db(lambda db: forget_dead_letters(db, cutoff))
    except Exception as exc:  # noqa: BLE001 - the next hour tries again
        why = (str(exc).splitlines() or [repr(exc)])[0]
        log.error("forgetting old rejects and dead letters failed (%s); next try in an hour", why)


SCORE_BATCH = 1000
SCORE_WITHIN_S = 0.02
"""Scoring takes the records Kafka has in batches of up to ``SCORE_BATCH``, at most
``SCORE_WITHIN_S`` after the first: each device's monitor is loaded once per batch, observes
all its readings, and is saved at most once; an idle system waits at most this long."""
SAVE_AFTER_S = 5.0
SAVE_AFTER_RECORDS = 200
"""A device's learning (its detectors' windows, sums, timers) is written to the changelog at
once when something material changed (a warning decided, a silence begun or ended, a device
new to the table), else when it has gone unsaved ``SAVE_AFTER_S`` or ``SAVE_AFTER_RECORDS``
records. The records of a device whose learning is not yet written are held, not acknowledged
(:class:`Work`): after a crash Kafka delivers them again and the restored monitor learns them
again, so the state restored loses nothing (Faust flushes the changelog before it commits)."""


class _Unsaved:
    """A device whose monitor learnt from records not yet in the changelog: those records."""

    __slots__ = ("partition", "events", "since")

    def __init__(self, partition: int | None) -> None:
        self.partition = partition
        self.events: list[Any] = []
        self.since = time.monotonic()


_unsaved: dict[bytes, _Unsaved] = {}
_partition_of: dict[bytes, int] = {}
"""Device → the partition its records came from last (its changelog's partition)."""
fleet_models = FleetScorer.from_dir(settings.fleet_models_path)
"""The newest fleet model of each kind in ``settings.fleet_models_path`` (none: no fleet model)."""
counters["fleet_findings"] = 0
_scoring = {"busy": False}


@app.agent(readings_topic)
async def score_device_readings(stream: faust.StreamT[bytes]) -> None:
    """Run each device's detectors over its records and publish the warnings decided (a record
    that fails the re-check is skipped: ``store_readings`` refuses it)."""
    async for events in stream.take_events(SCORE_BATCH, within=SCORE_WITHIN_S):  # type: ignore[attr-defined]
        work.take(events)
        _scoring["busy"] = True
        try:
            await _score_events(events)
            save_unsaved(older_than_s=SAVE_AFTER_S)
        finally:
            _scoring["busy"] = False


async def _score_events(events: Sequence[Any]) -> None:
    """Score a batch: grouped per device in arrival order, each device once."""
    per_device: dict[bytes, list[tuple[Any, ReadingsBatch]]] = {}
    refused = []
    for event in events:
        batch = await _checked_readings(event, send=False)
        if batch is None:
            refused.append(event)
        else:
            per_device.setdefault(batch.key.encode(), []).append((event, batch))
    work.finish(refused)
    for key, records in per_device.items():
        await _score(key, records)
    if fleet_models.enabled:
        fleet_models.observe(batch for records in per_device.values() for _, batch in records)
        await _decide_fleet_findings()


async def _decide_fleet_findings() -> None:
    """The fleet model's findings, once its queued rows are due (1,000 rows or 5 s: one
    scikit-learn call per kind): each decided by the device's monitor as ``unusual_reading``
    (advisory unless a physical rule's warning is open on the device), published, and the
    monitor written (a finding that opens or escalates a warning is material)."""
    for fleet in fleet_models.score_due(_open_severity_of):
        counters["fleet_findings"] += 1
        key = fleet.key.encode()
        live = _live_monitors.get(key)
        if live is None or device_to_monitor.get(key) is not live[0]:  # its partition moved away
            continue
        _, monitor, overrides = live
        events = monitor.consider(finding_of(fleet), int(fleet.ts * 1000))
        if events:
            log.info("fleet model: %s", fleet.describe())
            await _publish(events)
            _write_state(key, monitor, overrides, _partition_of.get(key))


def _open_severity_of(key: str) -> str | None:
    """The severity of the device's strongest open physical-rule warning (fleet corroboration)."""
    live = _live_monitors.get(key.encode())
    return open_severity(live[1] if live is not None else None)


async def _score(key: bytes, records: list[tuple[Any, ReadingsBatch]]) -> None:
    """One device's records of a batch: observed by its monitor, warnings published, and the
    monitor saved (or its records held until it is, see ``SAVE_AFTER_S``)."""
    first = records[0][1]
    overrides = await detector_config.overrides(first.tenant, first.kind, first.device)
    if overrides is None:  # not readable yet: keep what the device runs with (new: its profile)
        live = _live_monitors.get(key)
        overrides = live[2] if live is not None else {}
    events = [event for event, _ in records]
    saved = device_to_monitor.get(key)
    try:
        monitor = _load_monitor(key, saved, first, overrides)
    except ValueError as exc:  # a device kind no profile knows (the re-check refuses those first)
        counters["bad_records"] += len(records)
        log.error("skipping %d readings records of %s (%s)", len(records), first.key, exc)
        work.finish(events)
        return
    was_silent = monitor.silence.silent
    decided: list[WarningEvent] = []
    for _, batch in records:
        if batch.kind != monitor.kind:  # re-registered as another kind meanwhile: its own monitor
            monitor = _load_monitor(key, saved, batch, overrides)
        decided += heard_from(monitor, batch)  # first: the device is heard from (a silence ends)
        decided += [event for reading in batch.readings for event in monitor.observe(reading)]
    counters["batches_scored"] += len(records)
    await _publish(decided)  # before the state: a crash in between decides them again, same ids
    partition = _partition_of[key] = events[-1].message.partition
    unsaved = _unsaved.get(key)
    live = _live_monitors.get(key)
    material = (
        saved is None
        or bool(decided)
        or monitor.silence.silent != was_silent
        or live is None
        or live[1] is not monitor
        or live[0] is not saved
    )
    overdue = unsaved is not None and (
        len(unsaved.events) + len(events) >= SAVE_AFTER_RECORDS or time.monotonic() - unsaved.since >= SAVE_AFTER_S
    )
    if material or overdue:
        _write_state(key, monitor, overrides, partition, events)
        return
    if unsaved is None:
        unsaved = _unsaved[key] = _Unsaved(partition)
    unsaved.partition = partition
    unsaved.events += events


def _write_state(
    key: bytes,
    monitor: DeviceMonitor,
    overrides: Overrides,
    partition: int | None = None,
    events: Sequence[Any] = (),
) -> None:
    """Write the device's monitor to the table (its changelog: ``partition``, the partition of
    the device's records; ``None``: the record being processed says) and let go of ``events`` and
    the records it held unsaved once the changelog has the state.

    Faust's own ``table[key] = …`` ties the changelog record to the event being processed, and
    commits that event's offset only once Kafka has the record. Written to a partition of our
    choosing (a batch mixes partitions) it is not tied to anything, and Faust's flush before a
    commit gives up after 0.1 s: the records are acknowledged when Kafka confirms the state
    instead, so a worker killed in between leaves them to be read again, never a state lost
    behind a committed offset."""
    saved = orjson.dumps(monitor.to_state())
    unsaved = _unsaved.pop(key, None)
    held = [*events, *(unsaved.events if unsaved is not None else ())]
    if partition is None:
        device_to_monitor[key] = saved
        work.finish(held)
    else:
        sent = device_to_monitor.send_changelog(partition, key, saved)
        device_to_monitor.data[key] = saved
        sent.add_done_callback(lambda done: _finish_when_kept(done, held))
    _live_monitors[key] = (saved, monitor, overrides)


def _finish_when_kept(sent: asyncio.Future[Any], held: list[Any]) -> None:
    if sent.cancelled() or sent.exception() is not None:
        reason = "cancelled" if sent.cancelled() else sent.exception()
        log.error(
            "a device's state did not reach its changelog (%s); its %d records will be read again", reason, len(held)
        )
        return
    work.finish(held)


def save_unsaved(older_than_s: float = 0.0) -> int:
    """Write the monitors whose learning has gone unsaved ``older_than_s`` (all: 0) and let go of
    their records; how many were written. A monitor the table no longer holds as this worker
    wrote it (its partition moved away and came back) is not written: its records are let go,
    the new owner read them (or reads them again)."""
    now = time.monotonic()
    written = 0
    for key, unsaved in list(_unsaved.items()):
        if now - unsaved.since < older_than_s:
            continue
        live = _live_monitors.get(key)
        if live is not None and device_to_monitor.get(key) is live[0]:
            _write_state(key, live[1], live[2], unsaved.partition)
            written += 1
        else:
            del _unsaved[key]
            work.finish(unsaved.events)
    return written


@app.timer(interval=1.0)
async def save_quiet_devices() -> None:
    """Write the learning of devices whose records stopped coming (the agent writes the others as
    it goes): their records are acknowledged within ``SAVE_AFTER_S`` even on a quiet system."""
    if not _scoring["busy"]:  # never in the middle of a device's batch
        save_unsaved(older_than_s=SAVE_AFTER_S)


_dispatcher: Dispatcher | None = None


async def dispatcher() -> Dispatcher:
    """The worker's one notifier: acknowledgement links signed with the shared secret."""
    global _dispatcher
    if _dispatcher is None:
        secret = ack_secret(settings)

        def link(warning_id: str) -> str:
            return ack_url(settings, acktokens.issue(secret, warning_id, time.time(), settings.ack_link_ttl_s))

        _dispatcher = notifier = Dispatcher(
            await store(),
            settings.timezone,
            ack_link=link,
            retry_delays_s=settings.retry_delays_s,
            on_outbox=lambda: _kick_sender(notifier),
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
    async for event in stream.events():
        work.take([event])
        warning = await _checked_warning(event)
        if warning is not None:
            await _write("recording a warning", TOPIC_WARNINGS, [(event, warning)], _handle_warnings)
            if _dispatcher is not None:
                _kick_sender(_dispatcher)
        work.finish([event])


async def _checked_warning(event: Any) -> WarningEvent | None:
    """The warning record of ``event`` re-checked, or ``None`` when it is refused."""
    try:
        warning = WarningEvent.from_json(orjson.loads(_raw(event.value)))
        check_warning(warning, await devices.current(_key(event)), _now_ms())
    except Exception as exc:  # noqa: BLE001 - every failed check is a refusal
        await _refuse(event, TOPIC_WARNINGS, _contract_error(exc))
        return None
    return warning


async def _handle_warnings(db: Store, warnings: list[WarningEvent]) -> int:
    notifier = await dispatcher()
    for warning in warnings:
        await notifier.handle(warning)
    return len(warnings)


@app.timer(interval=2.0)
async def follow_up_warnings() -> None:
    """Due retries, held messages whose quiet hours ended, and follow-ups nobody acknowledged."""
    try:
        notifier = await _db(lambda db: dispatcher())
        await _db(lambda db: notifier.fire_followups())
        await notifier.flush()  # sends: not cut short (a message sent must be recorded as sent)
    except Exception as exc:  # noqa: BLE001 - PostgreSQL down: the next sweep tries again
        database.failed(exc, "sweeping follow-ups (tried again every 2 s)")


status = StatusFile.from_env()


_reports = {"n": 0}


@app.timer(interval=REPORT_S)
async def report_progress() -> None:
    """A timer of its own: the worker reports while an agent waits on the database."""
    report()


@app.timer(interval=1.0)
async def watch_kafka() -> None:
    """Kafka's outages, told once each (:class:`KafkaComplaints`)."""
    note_kafka(time.monotonic())


def report() -> None:
    """Health means progress: the records held and how many moved since the last report
    (``forewarn health`` calls the worker unhealthy when it holds records it has not moved)."""
    HEARTBEAT.touch()  # the old container health check reads its age
    status.work(
        pending=work.held + _stall["lag"],  # records waiting on Kafka count: a stuck partition is no progress
        behind=_stall["lag"],
        moved=work.since_report(),
        **counters,
        refusals=dict(refusals),
        database_down_s=round(database.down_for(), 1),
        kafka_down_s=round(broker.down_for(), 1),
        kafka_complaints_dropped=kafka_complaints.dropped,
    )
    _reports["n"] += 1
    if _reports["n"] % 6 == 0:  # the log line every 30 s
        log.info(
            "worker: %(readings_stored)d readings stored, %(batches_scored)d batches scored, "
            "%(warnings)d warning events, %(bad_records)d records refused, %(dead_letters)d set aside",
            counters,
        )


# ---------------------------------------------------------------- partitions that stop moving

STALL_S = 15.0
"""A partition of ours with records waiting on Kafka and its committed offset unmoved this long,
while the worker holds nothing and its dependencies answer, is stuck (``streams.watchdog``)."""
WATCHED_TOPICS = (TOPIC_READINGS, TOPIC_WARNINGS, TOPIC_STATUS, TOPIC_TICKS, TOPIC_REJECTS)
_stall_watch: StallWatch[tuple[str, int]] = StallWatch(stall_s=STALL_S)
_end_offsets = EndOffsets(settings.kafka_url)
_stall: dict[str, Any] = {"lag": 0, "resumed_at": None}
counters["stall_resumes"] = 0


async def _offsets_of_mine() -> dict[tuple[str, int], tuple[int | None, int]]:
    """Each partition of ours we consume: (committed offset, end offset)."""
    consumer: Any = app.consumer  # Faust's concrete consumer: its committed offsets are not in ConsumerT
    mine = [tp for tp in consumer.assignment() if tp.topic in WATCHED_TOPICS]
    offsets: dict[tuple[str, int], tuple[int | None, int]] = {}
    for topic in sorted({tp.topic for tp in mine}):
        tps = {tp.partition: tp for tp in mine if tp.topic == topic}
        ends = await asyncio.wait_for(_end_offsets.of(topic, sorted(tps)), 10.0)
        for partition, end in ends.items():
            offsets[(topic, partition)] = (consumer._committed_offset.get(tps[partition]), end)
    return offsets


def _flow_state(stuck: Sequence[tuple[str, int]] = ()) -> str:
    """Faust's view of the flow, and of each stuck partition's offsets (what it read, committed,
    acknowledged beyond the commit, and holds unacknowledged): where the records stopped."""
    consumer: Any = app.consumer
    parts = []
    for topic, partition in stuck:
        tp = next((tp for tp in consumer.assignment() if (tp.topic, tp.partition) == (topic, partition)), None)
        if tp is None:
            continue
        acked = sorted(consumer._acked.get(tp, ()))
        unacked = sorted(m.offset for m in consumer._unacked_messages if m.tp == tp)
        parts.append(
            f"{topic}-{partition}: read {consumer._read_offset.get(tp)},"
            f" committed {consumer._committed_offset.get(tp)},"
            f" acknowledged beyond it {len(acked)} ({acked[0] if acked else '-'}…{acked[-1] if acked else '-'}),"
            f" unacknowledged {len(unacked)} ({unacked[:5]})"
        )
    return (
        f"flow active {consumer.flow_active}, flow control {app.flow_control.is_active()},"
        f" paused {sorted(f'{tp.topic}-{tp.partition}' for tp in consumer._paused_partitions)},"
        f" fetcher {app._fetcher.state}" + "".join(f"; {part}" for part in parts)
    )


def _faust_task_stacks() -> str:
    """Where Faust's own tasks wait (the fetcher's drain loop, each stream's passive drainer):
    the agents' stacks stop at ``take_events``, and a stuck partition is stuck below it."""
    lines = []
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=12)
        if not any("/faust/" in f.f_code.co_filename or "/mode/" in f.f_code.co_filename for f in frames):
            continue
        stack = "".join(traceback.format_list(traceback.StackSummary.extract((f, f.f_lineno) for f in frames)))
        lines.append(f"task {task.get_name()}:\n{stack}")
    return "\n".join(lines)


@app.timer(interval=5.0)
async def watch_partitions_move() -> None:
    """Partitions of ours with records waiting that nobody takes: resumed once, then the worker
    exits (``EXIT_STUCK``) for a supervisor to start it afresh. Its lag goes to the status file
    as work held, so ``forewarn health`` calls a stuck worker unhealthy."""
    tables: Any = app.tables  # Faust's TableManager: its Recovery service is not in TableManagerT
    recovery = tables.recovery
    if app.rebalancing or not recovery.completed.is_set():
        _stall_watch.forget()
        return
    try:
        offsets = await _offsets_of_mine()
    except Exception as exc:  # noqa: BLE001 - Kafka away: its own outage handling speaks
        log.debug("partition offsets not read (%s)", exc)
        return
    now = time.monotonic()
    _stall["lag"] = lag(offsets)
    stuck = _stall_watch.observe(now, offsets)
    if not stuck:
        _stall["resumed_at"] = None
        return
    if work.held or database.down_for() or broker.down_for():
        return  # waiting on a dependency, which says so itself
    names = ", ".join(f"{topic}-{partition}" for topic, partition in stuck)
    waited = max(_stall_watch.waiting_for(now, part) for part in stuck)
    if _stall["resumed_at"] is None:
        log.error(
            "partitions %s have had %d records waiting for %.0f s and none was taken (%s);"
            " resuming them and seeking to the committed offsets. Faust's tasks:\n%s",
            names,
            _stall["lag"],
            waited,
            _flow_state(stuck),
            _faust_task_stacks(),
        )
        _stall["resumed_at"] = now
        counters["stall_resumes"] += 1
        consumer = app.consumer
        consumer.resume_partitions({tp for tp in consumer.assignment() if not recovery._is_changelog_tp(tp)})
        app.flow_control.resume()
        consumer.resume_flow()
        await consumer.perform_seek()
        await app._fetcher.maybe_start()
        return
    if now - _stall["resumed_at"] >= STALL_S:
        sys.stderr.write(
            f"partitions {names} still take no record {STALL_S:.0f} s after they were resumed ({_flow_state(stuck)});"
            f" exiting with {EXIT_STUCK} to be started afresh: nothing acknowledged is lost\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_STUCK)


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
    _write_state(key, monitor, overrides)  # in a status or tick's own event: its partition


async def _publish(events: list[WarningEvent]) -> None:
    for event in events:
        counters["warnings"] += 1
        log.info("%s %s on %s (%s)", event.action, event.risk, event.key, event.severity)
        await warnings_topic.send(key=event.key.encode(), value=orjson.dumps(event.to_json()))


@app.agent(status_topic)
async def watch_device_status(stream: faust.StreamT[bytes]) -> None:
    """A device said ``online`` or ``offline``: note it (an offline grace of zero decides at once)."""
    async for event in stream.events():
        work.take([event])
        record = await _checked(event, TOPIC_STATUS, decode_status_record, check_status)
        if record is not None:
            await _note_status(record)
        work.finish([event])


async def _note_status(record: StatusRecord) -> None:
    key = record.key.encode()
    loaded = await _monitor_for(key, record.tenant, record.device, record.kind, record.received_at, create=True)
    if loaded is None:
        return
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
    async for event in stream.events():
        work.take([event])
        tick = await _checked(event, TOPIC_TICKS, decode_tick_record, check_tick)
        if tick is not None:
            await _decide_silence(tick)
        work.finish([event])


async def _decide_silence(tick: TickRecord) -> None:
    key = tick.key.encode()
    loaded = await _monitor_for(key, tick.tenant, tick.device, tick.kind, tick.now, create=False)
    if loaded is None:
        return
    monitor, overrides = loaded
    silent = monitor.silence.silent
    events = monitor.tick(tick.now)
    if monitor.silence.silent != silent:
        _count_silence(monitor, silent)
        _save_monitor(key, monitor, overrides)
    await _publish(events)


_R = TypeVar("_R", StatusRecord, TickRecord)


async def _checked(
    event: Any,
    topic: str,
    decode: Callable[[bytes], _R],
    check: Callable[[_R, Mapping[str, str], int], None],
) -> _R | None:
    """A status or tick record decoded and re-checked, or ``None`` when it is refused."""
    try:
        record = decode(_raw(event.value))
        check(record, await devices.current(_key(event)), _now_ms())
    except Exception as exc:  # noqa: BLE001 - every failed check is a refusal
        await _refuse(event, topic, _contract_error(exc))
        return None
    return record


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


async def close_store() -> None:
    """Close the pool on the way out (bounded: the database may be the thing not answering)."""
    if _store is not None:
        try:
            await asyncio.wait_for(_store.close(), 2.0)
        except Exception as exc:  # noqa: BLE001 - stopping anyway
            log.info("closing the database pool on the way out failed (%s)", exc)


def _exit_after(deadline_s: float) -> None:
    """Exit the process ``deadline_s`` from now if it has not stopped by then (a thread: the
    event loop may be the thing stuck). Faust leaves the group, flushes and commits on the way
    out; with Kafka or the database not answering that can take minutes, and SIGTERM must stop
    the worker within 10 s. Nothing is lost: a record is acknowledged only once it is finished."""

    def exit_now() -> None:
        # straight to stderr: a logging handler's lock may be held by the thread that is stuck
        line = (
            f"[{datetime.now(UTC):%Y-%m-%d %H:%M:%S}] [WARNING] not stopped {deadline_s:.0f} s after the signal"
            " (Kafka or the database is not answering); exiting now, the"
            f" {work.held} records held are read again from Kafka\n"
        )
        os.write(2, line.encode())
        os._exit(0)

    timer = threading.Timer(deadline_s, exit_now)
    timer.daemon = True
    timer.start()


def run_worker(loglevel: str = "info") -> None:
    """Run the worker in the foreground (``forewarn worker``)."""
    from faust.worker import Worker

    class ReportingWorker(Worker):  # type: ignore[misc]
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            freeze_start_up()  # core.runtime: what start-up built is never scanned again
            status.mark_ready(**counters)  # joined its group, tables recovered: consuming

        def _schedule_shutdown(self, signal: Any) -> None:  # SIGTERM, SIGINT
            _exit_after(STOP_DEADLINE_S)
            super()._schedule_shutdown(signal)

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            for handler in logger.handlers:  # Faust has just configured them
                handler.addFilter(kafka_complaints)

    Path(settings.state_dir, "faust").mkdir(parents=True, exist_ok=True)  # Faust's datadir lives here
    tune_gc()
    ReportingWorker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
