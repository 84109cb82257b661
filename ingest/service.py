"""The MQTT edge: subscribe, validate, produce to Kafka, then acknowledge.

ingest subscribes to the devices' telemetry and to their retained ``online`` / ``offline``
statuses (the last will), both on the shared subscription; a status goes to
``forewarn.status`` keyed ``tenant/device``, timed by its arrival here.

paho delivers on its network thread; messages cross into the asyncio loop through an inbox.
The loop takes what has arrived (a round), validates each message, merges a device's
readings into ``forewarn.readings`` records (Faust's per-record cost makes one-value records
unaffordable; each record stays under :data:`MAX_RECORD_BYTES`, below Apache Kafka's default
1 MiB limit), sends refusals to ``forewarn.rejects``, and hands the round to a sender and an
acker: the acker acknowledges the round's MQTT messages, in arrival order, only once Kafka has
accepted every record of it — while the next rounds are already being read (the broker lets
only a few unacknowledged messages out to a client, so waiting round by round caps throughput).

Faults. No message stops ingest: validation is total and a reject record is always small
(``core.contract.reject_record``). No dependency stops it either: while Kafka is down a round
is sent again with backoff and nothing is acknowledged (the broker keeps it); while PostgreSQL
is down the device registry ingest has is kept and refreshed in the background; paho
reconnects to the broker by itself. Each outage is logged once (``core.outage``). The loop
never waits on a dependency for long, so it reports its work every second
(``StatusFile.work``: messages held and not yet acknowledged, and how many moved), and a
health check can tell a stuck ingest from an idle one.

Leaving (SIGTERM): ingest unsubscribes from the shared subscription, handles what the broker
had already sent or queued for it, waits a few seconds at most for Kafka, acknowledges, and
then ends its MQTT session (session expiry 0), so the broker gives this member's share to the
others at once. If Kafka did not confirm everything in time, it keeps the session instead: the
broker redelivers the unacknowledged messages when the same client id
(``FOREWARN_INGEST_CLIENT_ID``) connects again. A crash (SIGKILL) keeps the session too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from core.bus import Producer, ensure_topics
from core.contract import (
    MAX_PAYLOAD_BYTES,
    SHARED_STATUS_FILTER,
    SHARED_TELEMETRY_FILTER,
    TOPIC_READINGS,
    TOPIC_REJECTS,
    TOPIC_STATUS,
    ContractError,
    Reading,
    Rejected,
    is_status_topic,
    parse_status_topic,
    parse_telemetry_topic,
    readings_record,
    reject_record,
    status_record,
)
from core.db import Store
from core.mqtt import AckToken, MqttMessage, Subscriber
from core.outage import Outage
from core.readiness import StatusFile
from core.settings import Settings, kafka_target
from ingest.validate import Verdict, validate_message, validate_status

log = logging.getLogger(__name__)

HEARTBEAT = Path(tempfile.gettempdir()) / "forewarn-ingest.alive"  # the container health check reads its age

MAX_READINGS_PER_RECORD = 2000
MAX_RECORD_BYTES = 900 * 1024
"""A Kafka record's value at most: under Apache Kafka's default ``message.max.bytes`` (1 MiB),
with room for the key and the batch's overhead."""
MAX_MESSAGES_PER_ROUND = 1000
MAX_ROUND_BYTES = 2 << 20
"""Payload bytes in one round. A round's parsed readings take ~6x its payload at their peak (a
Reading and its dict per reading, merged per device before encoding: 58 MiB traced for 1,000
messages of 100 readings), so this bounds what preparing a round costs. Messages of one or ten
readings fill a round by count, not by bytes."""
ROUNDS_IN_FLIGHT = 4  # rounds sent to Kafka and not yet acknowledged
MAX_HELD_BYTES = (ROUNDS_IN_FLIGHT + 1) * MAX_ROUND_BYTES
"""Payload bytes ingest holds from their arrival until Kafka has their records, at most (about): the
rounds in flight and the next one; past it the subscriber stops reading (the broker holds the rest;
``core.mqtt.Subscriber``). Through 20,000 messages of 100 readings ingest held up to 13,000 messages
(~120 MB of payloads) without it, peak RSS 330-380 MiB; with it ~120 MiB at the same rate. Messages
of one reading never reach it (the Receive Maximum binds first)."""

Record = tuple[str, str, bytes]  # (topic, key, value)
REGISTRY_REFRESH_S = 30.0
REGISTRY_MISS_REFRESH_S = 2.0
REGISTRY_TIMEOUT_S = 5.0  # a silent database must not stall anything for long
REGISTRY_MISS_WAIT_S = 1.0  # how long a round waits for a refresh on an unknown device
MISS_LOOKUPS_PER_ROUND = 8
"""Within ``REGISTRY_MISS_REFRESH_S`` of a registry read, unknown devices a round looks up alone."""
REPORT_S = 1.0  # status file and heartbeat
LOG_S = 10.0  # the counters' log line
ACK_PATIENCE_S = 5.0  # Kafka silent this long on a round: an outage (aiokafka keeps retrying)
DRAIN_S = 4.5  # on SIGTERM: at most this long to hand over what we hold (the whole stop stays < 10 s)
QUIET_S = 0.5  # leaving: the broker has sent what it queued for us once it is quiet this long
KAFKA_MAX_BACKOFF_S = 4.0
CLOSE_S = 1.5  # each of Kafka's, PostgreSQL's and MQTT's close, at most

T = TypeVar("T")


@dataclass
class IngestStats:
    messages: int = 0
    readings: int = 0
    records: int = 0
    statuses: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    kafka_retries: int = 0
    registry_failures: int = 0
    acked: int = 0
    stale_acks: int = 0

    def counts(self) -> dict[str, object]:
        """The counters as plain data, for the status file."""
        return {
            "messages": self.messages,
            "readings": self.readings,
            "records": self.records,
            "statuses": self.statuses,
            "rejects": dict(self.rejects),
            "kafka_retries": self.kafka_retries,
            "registry_failures": self.registry_failures,
            "acked": self.acked,
            "stale_acks": self.stale_acks,
        }

    def line(self) -> str:
        rej = ", ".join(f"{k} {v}" for k, v in self.rejects.most_common()) or "none"
        return (
            f"{self.messages} messages, {self.readings} readings in {self.records} records, "
            f"{self.statuses} statuses, rejects: {rej}"
        )


@dataclass
class Round:
    """Messages read together (what acknowledging them takes: their payloads are gone once the
    records are made), the Kafka records made of them, and Kafka's acknowledgements."""

    messages: list[AckToken]
    records: list[Record]
    size: int = 0  # payload bytes of the messages
    futures: list[asyncio.Future[object]] = field(default_factory=list)
    sent_at: float = 0.0  # when its records were last handed to the producer (monotonic)


class Ingest:
    def __init__(self, settings: Settings, store: Store, producer: Producer) -> None:
        self.settings = settings
        self.store = store
        self.producer = producer
        self.stats = IngestStats()
        self.registry: dict[str, str] = {}
        self._registry_at = 0.0  # last successful load
        self._registry_next = 0.0  # next background refresh
        self._refreshing: asyncio.Task[bool] | None = None
        self._missing: dict[str, float] = {}  # tenant/device → when a lookup found it unregistered
        # paho's thread appends (a deque's append is thread-safe) and wakes the loop only when
        # no wake-up is pending: one wake-up per burst, not a self-pipe write per message
        self._inbox: deque[MqttMessage] = deque()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._acked = asyncio.Event()
        self._outbox: asyncio.Queue[Round] = asyncio.Queue()
        self._acking: asyncio.Queue[Round] = asyncio.Queue()
        self._in_flight = 0  # rounds taken and not yet acknowledged
        self._held = 0  # their messages
        self._moved = 0  # messages acknowledged since the last report
        self._confirmed_at = -math.inf  # when Kafka last confirmed a whole round (monotonic)
        self.subscriber: Subscriber | None = None
        self.status = StatusFile.from_env()
        self.kafka = _kafka_outage(settings)
        self.database = Outage("PostgreSQL", log, "FOREWARN_DATABASE_URL and that PostgreSQL runs")
        self.left_cleanly = False

    @property
    def pending(self) -> int:
        """Messages read from the broker and not yet acknowledged."""
        return len(self._inbox) + self._held

    # ---------------------------------------------------------------- the device registry

    async def refresh_registry(self) -> bool:
        """Reload the device registry. While PostgreSQL is unreachable ingest keeps the registry it
        has (messages of devices it knows still flow to Kafka) and tries again with backoff."""
        try:
            self.registry = await asyncio.wait_for(self.store.devices(), REGISTRY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the database is down: keep going on what we know
            self.stats.registry_failures += 1
            delay = self.database.failed(exc, f"refreshing the device registry (keeping {len(self.registry)} devices)")
            self._registry_next = time.monotonic() + delay
            return False
        self.database.recovered()
        self._registry_at = time.monotonic()
        self._registry_next = self._registry_at + REGISTRY_REFRESH_S
        return True

    async def _look_up(self, keys: set[str]) -> None:
        """Look devices up one by one (at most ``MISS_LOOKUPS_PER_ROUND`` a round): a device
        registered since the registry was read a moment ago is let through at once. A device found
        missing is not looked up again for ``REGISTRY_MISS_REFRESH_S``, so a stream of unknown
        devices costs the database a bounded number of lookups."""
        now = time.monotonic()
        due = sorted(k for k in keys if now - self._missing.get(k, -math.inf) >= REGISTRY_MISS_REFRESH_S)
        for key in due[:MISS_LOOKUPS_PER_ROUND]:
            tenant, _, device = key.partition("/")
            try:
                kind = await self.store.device_kind(tenant, device)
            except Exception:  # noqa: BLE001 - the database is in trouble: the next full read will tell
                return
            if kind is None:
                self._missing[key] = now
                if len(self._missing) > 10_000:  # forget the oldest: they are looked up again, that is all
                    for old in sorted(self._missing, key=self._missing.__getitem__)[:5_000]:
                        del self._missing[old]
            else:
                self.registry[key] = kind

    def _refresh(self) -> asyncio.Task[bool]:
        """The refresh under way, or a new one (one at a time)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self.refresh_registry())
        return self._refreshing

    async def _keep_registry(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, max(0.05, self._registry_next - time.monotonic())))
            if time.monotonic() >= self._registry_next:
                await self._refresh()

    # ---------------------------------------------------------------- the loop

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self.status.update(devices=0, **self.stats.counts())
        while not await self._first(stop, self._refresh):  # nothing can be checked without it
            pass
        if stop.is_set():
            return
        host, port = self.settings.mqtt_host_port
        user, password = self.settings.mqtt_credentials
        self.subscriber = Subscriber(
            host,
            port,
            self.settings.ingest_client_id,
            (SHARED_TELEMETRY_FILTER, SHARED_STATUS_FILTER),
            self._hand_over,
            user,
            password,
            max_payload=MAX_PAYLOAD_BYTES,
            max_held_bytes=MAX_HELD_BYTES,
        )
        self.subscriber.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            while not self.subscriber.connected.is_set():  # ready means subscribed
                if stop.is_set():
                    return
                await asyncio.sleep(0.05)
            log.info(
                "ingest ready: %d devices registered, client id %s", len(self.registry), self.settings.ingest_client_id
            )
            self.status.mark_ready(devices=len(self.registry), **self.stats.counts())
            tasks = [
                asyncio.create_task(self._send_rounds()),
                asyncio.create_task(self._ack_rounds()),
                asyncio.create_task(self._keep_registry()),
            ]
            last_report = last_log = time.monotonic()
            while not stop.is_set():
                await self._step(0.5)
                if time.monotonic() - last_report >= REPORT_S:
                    last_report = time.monotonic()
                    self._report()
                if time.monotonic() - last_log >= LOG_S:
                    last_log = time.monotonic()
                    log.info("ingest: %s", self.stats.line())
            self.left_cleanly = await self._leave()
        finally:
            for task in tasks:
                task.cancel()
            # a clean leave ends the session (the broker forgets our share); otherwise the broker
            # keeps what we did not acknowledge and redelivers it when this client id is back
            self.subscriber.stop(end_session=self.left_cleanly, timeout=CLOSE_S)

    async def _first(self, stop: asyncio.Event, attempt: Callable[[], Awaitable[bool]]) -> bool:
        """One attempt at something ingest cannot start without; True when it worked or when
        stopping. Reports while waiting (not ready)."""
        if stop.is_set():
            return True
        if await attempt():
            return True
        self.status.update(devices=len(self.registry), **self.stats.counts())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.05, self._registry_next - time.monotonic()))
        return stop.is_set()

    def _hand_over(self, message: MqttMessage) -> None:
        """paho's thread → the asyncio loop: the message joins the inbox; the loop is woken unless
        a wake-up is already on its way (which then finds this message too: the flag is cleared
        before the loop looks at the inbox)."""
        self._inbox.append(message)
        if not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._wake_pending = False
        self._arrived.set()

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def _step(self, timeout: float) -> bool:
        """Take one round if there is one and room for it (waiting at most ``timeout``); True if taken."""
        if self._in_flight >= ROUNDS_IN_FLIGHT:
            await self._wait(self._acked, timeout)  # Kafka is slow or down: keep reporting meanwhile
            return False
        if not self._inbox:
            await self._wait(self._arrived, timeout)
            if not self._inbox:
                return False
            if self.settings.ingest_linger_ms:
                await asyncio.sleep(self.settings.ingest_linger_ms / 1000)
        batch: list[MqttMessage] = []
        size = 0
        while len(batch) < MAX_MESSAGES_PER_ROUND and size < MAX_ROUND_BYTES and self._inbox:
            batch.append(self._inbox.popleft())
            size += len(batch[-1].payload)
        records = await self.prepare(batch)
        # in order now (Kafka keeps a device's order); the sender and the acker take it from here
        self._in_flight += 1
        self._held += len(batch)
        self._outbox.put_nowait(Round([m.token for m in batch], records, size=size))
        return True

    def _report(self) -> None:
        HEARTBEAT.touch()
        self.status.work(pending=self.pending, moved=self._moved, devices=len(self.registry), **self.stats.counts())
        self._moved = 0

    async def _leave(self) -> bool:
        """The clean leave: unsubscribe, hand over what the broker already sent or queued for us,
        wait for Kafka at most until :data:`DRAIN_S` is up; True when nothing is left unacknowledged."""
        assert self.subscriber is not None
        deadline = time.monotonic() + DRAIN_S
        self.subscriber.leave()
        log.info("ingest stopping: left the shared subscription; handing over what the broker already sent us")
        last_message = time.monotonic()
        while time.monotonic() < deadline:
            if await self._step(0.1):
                last_message = time.monotonic()
            elif (
                self.pending == 0
                and time.monotonic() - last_message > QUIET_S
                and (self.subscriber.left.is_set() or not self.subscriber.connected.is_set())
            ):
                self._report()
                log.info("ingest left cleanly: every message read is in Kafka and acknowledged")
                return True
            self._report()
        log.warning(
            "ingest stopping with %d messages not confirmed by Kafka within %.1f s; the MQTT session is "
            "kept, so the broker redelivers them when client id %s connects again",
            self.pending,
            DRAIN_S,
            self.settings.ingest_client_id,
        )
        return False

    # ---------------------------------------------------------------- Kafka, then the acknowledgement

    async def _send_rounds(self) -> None:
        """Hand each round's records to the producer, in order (the producer batches them)."""
        while True:
            rnd = await self._outbox.get()
            rnd.futures = await self._enqueue(rnd.records)
            rnd.sent_at = time.monotonic()
            self._acking.put_nowait(rnd)

    async def _ack_rounds(self) -> None:
        """Acknowledge each round's MQTT messages, in arrival order, once Kafka has its records."""
        assert self.subscriber is not None
        while True:
            rnd = await self._acking.get()
            await self._confirmed(rnd)
            for msg in rnd.messages:
                if self.subscriber.ack(msg):
                    self.stats.acked += 1
                else:  # read on a connection since lost: the broker redelivers it (a duplicate in Kafka)
                    self.stats.stale_acks += 1
            self.subscriber.release(rnd.size)
            self._held -= len(rnd.messages)
            self._moved += len(rnd.messages)
            self._in_flight -= 1
            self._acked.set()

    async def _enqueue(self, records: list[Record]) -> list[asyncio.Future[object]]:
        """Queue every record with the producer, retrying with backoff while Kafka is down."""
        while True:
            try:
                return [await self.producer.send(t, k, v) for t, k, v in records]
            except Exception as exc:  # noqa: BLE001 - Kafka unavailable: keep the round, ack nothing
                self.stats.kafka_retries += 1
                await asyncio.sleep(self.kafka.failed(exc, f"sending {len(records)} records"))

    async def _confirmed(self, rnd: Round) -> None:
        """Wait until Kafka has accepted every record of the round, sending it again when it refused."""
        while rnd.futures:
            _, waiting = await asyncio.wait(rnd.futures, timeout=ACK_PATIENCE_S)
            if waiting:  # the producer keeps retrying; say once that Kafka is not answering
                self.kafka.failed(TimeoutError(f"no acknowledgement within {ACK_PATIENCE_S:g} s"), "delivering")
                continue
            errors = [_error(f) for f in rnd.futures if f.cancelled() or f.exception() is not None]
            if not errors:
                self._confirmed_at = time.monotonic()
                break
            self.stats.kafka_retries += 1
            delay = self.kafka.failed(errors[0], f"delivering {len(rnd.records)} records")
            if self._confirmed_at < rnd.sent_at:
                await asyncio.sleep(delay)
            else:
                # Kafka confirmed a round since this one was sent: its sends failed in an outage
                # that has ended, so it goes again at once (rounds queued behind one another would
                # otherwise each wait a backoff). A broker back empty (a restarted in-memory one)
                # gets the topics first: Tansu accepts records for a topic it lacks, then loses them.
                with contextlib.suppress(Exception):  # still failing: the next attempt says so
                    await asyncio.wait_for(ensure_topics(self.settings.kafka_url, self.settings.partitions), 5.0)
            rnd.futures = await self._enqueue(rnd.records)
            rnd.sent_at = time.monotonic()
        if self._acking.empty():  # rounds still queued may hold sends that failed during the outage
            self.kafka.recovered()

    # ---------------------------------------------------------------- validation → records

    async def prepare(self, messages: list[MqttMessage]) -> list[Record]:
        """Validate one round of messages into Kafka records: a device's readings merged, rejects apart."""
        now_ms = int(time.time() * 1000)
        unknown = {key for m in messages if (key := _unknown_key(m.topic, self.registry)) is not None}
        if unknown and not self.database.down:
            if time.monotonic() - self._registry_at > REGISTRY_MISS_REFRESH_S:
                # a device added a moment ago: look again, briefly (the refresh goes on without us)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._refresh()), REGISTRY_MISS_WAIT_S)
            else:  # read a moment ago (another device's miss): look these devices up alone
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._look_up(unknown), REGISTRY_MISS_WAIT_S)
        per_device: dict[str, tuple[str, str, str, list[Reading]]] = {}
        rejects: list[tuple[str, bytes]] = []
        statuses: list[Record] = []
        for msg in messages:
            size = msg.size if msg.size >= 0 else None
            if not msg.topic_is_utf8:
                verdict = _not_utf8(msg.topic)
            elif is_status_topic(msg.topic):
                verdict = validate_status(msg.topic, msg.payload, self.registry, now_ms, size)
            else:
                verdict = validate_message(
                    msg.topic, msg.payload, self.registry, now_ms, self.settings.retention_days, size
                )
            self.stats.messages += 1
            key = verdict.key or msg.topic[:300]
            for refusal in verdict.refusals:
                self.stats.rejects[refusal.reason] += 1
                copy = msg.payload if refusal.item is None else refusal.item
                rejects.append((key, reject_record(refusal.reason, refusal.detail, msg.topic, copy, now_ms)))
                log.debug("reject %s from %s: %s", refusal.reason, msg.topic[:300], refusal.detail)
            if verdict.status is not None:
                assert verdict.tenant and verdict.device and verdict.kind and verdict.key
                record = status_record(verdict.tenant, verdict.device, verdict.kind, verdict.status, now_ms, msg.retain)
                statuses.append((TOPIC_STATUS, verdict.key, record))
                self.stats.statuses += 1
            if verdict.readings:
                assert verdict.tenant and verdict.device and verdict.kind
                entry = per_device.setdefault(verdict.key or "", (verdict.tenant, verdict.device, verdict.kind, []))
                entry[3].extend(verdict.readings)
        records: list[Record] = [(TOPIC_REJECTS, k, v) for k, v in rejects] + statuses
        for key, (tenant, device, kind, readings) in per_device.items():
            readings.sort(key=lambda r: r.ts)
            for value in readings_records(tenant, device, kind, readings, now_ms):
                records.append((TOPIC_READINGS, key, value))
                self.stats.records += 1
            self.stats.readings += len(readings)
        return records


def _kafka_outage(settings: Settings) -> Outage:
    # retried every few seconds at most: a retry is cheap, and ingest resumes soon after Kafka does
    hint = f"FOREWARN_KAFKA_URL ({kafka_target(settings.kafka_url).bootstrap})"
    return Outage("Kafka", log, hint, max_delay_s=KAFKA_MAX_BACKOFF_S)


def readings_records(
    tenant: str, device: str, kind: str, readings: list[Reading], now_ms: int, max_bytes: int = MAX_RECORD_BYTES
) -> list[bytes]:
    """A device's readings as ``forewarn.readings`` records, in order, each at most
    :data:`MAX_READINGS_PER_RECORD` readings and ``max_bytes`` long (a record over the limit is
    split in halves until it fits; one reading is always far below it)."""
    out: list[bytes] = []
    pending = [readings[i : i + MAX_READINGS_PER_RECORD] for i in range(0, len(readings), MAX_READINGS_PER_RECORD)]
    pending.reverse()
    while pending:
        chunk = pending.pop()
        value = readings_record(tenant, device, kind, chunk, now_ms)
        if len(value) <= max_bytes or len(chunk) == 1:
            out.append(value)
        else:
            half = len(chunk) // 2
            pending += [chunk[half:], chunk[:half]]
    return out


def _error(future: asyncio.Future[object]) -> BaseException:
    if future.cancelled():
        return RuntimeError("the send was cancelled")
    return future.exception() or RuntimeError("no error")


def _not_utf8(topic: str) -> Verdict:
    """A topic whose bytes are not UTF-8 (``topic`` shows them escaped): refused whole."""
    return Verdict(None, None, None, refusals=(Rejected("bad_topic", f"topic {topic[:200]!r} is not UTF-8", None),))


def _unknown_key(topic: str, registry: dict[str, str]) -> str | None:
    """The device key of a well-formed telemetry or status topic of a device the registry does not
    know (yet); ``None`` for a known device or a malformed topic."""
    try:
        parse = parse_status_topic if is_status_topic(topic) else parse_telemetry_topic
        key = parse(topic).key
    except ContractError:
        return None
    return None if key in registry else key


# ---------------------------------------------------------------- the process


async def _until_up(stop: asyncio.Event, outage: Outage, doing: str, attempt: Callable[[], Awaitable[T]]) -> T | None:
    """``attempt()`` until it works (its result) or ``stop`` is set (``None``), with backoff; the
    outage is logged once."""
    while not stop.is_set():
        trying = asyncio.ensure_future(attempt())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({trying, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not trying.done():
            trying.cancel()
            return None
        if trying.exception() is None:
            outage.recovered()
            return trying.result()
        delay = outage.failed(trying.exception() or RuntimeError("?"), doing)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return None


async def _started_producer(url: str) -> Producer:
    producer = Producer(url)
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), CLOSE_S)
        raise
    return producer


async def run_ingest(settings: Settings, stop: asyncio.Event | None = None) -> IngestStats:
    """Run ingest until ``stop`` is set (or forever). Waits for Kafka and PostgreSQL when they
    are not there yet (logged once each); stops within about 10 s of ``stop`` whatever they do."""
    stop = stop or asyncio.Event()
    # aiokafka logs each failed attempt (several a second while Kafka is down); ingest logs the
    # outage once (core.outage), with what to check
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    kafka = _kafka_outage(settings)
    database = Outage("PostgreSQL", log, "FOREWARN_DATABASE_URL and that PostgreSQL runs")
    stats = IngestStats()
    topics = await _until_up(
        stop, kafka, "creating the topics", lambda: ensure_topics(settings.kafka_url, settings.partitions)
    )
    if topics is None:
        return stats
    producer = await _until_up(stop, kafka, "connecting", lambda: _started_producer(settings.kafka_url))
    if producer is None:
        return stats
    store = Store(settings.database_url, max_size=2)
    ingest = Ingest(settings, store, producer)

    async def open_store() -> bool:
        await store.open()
        return True

    try:
        if await _until_up(stop, database, "connecting", open_store):
            await ingest.run(stop)
    finally:
        with contextlib.suppress(Exception):  # Kafka down: what it did not confirm stays unacknowledged in MQTT
            await asyncio.wait_for(producer.stop(), CLOSE_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(store.close(), CLOSE_S)
        ingest.status.update(stopped=True, pending=ingest.pending, **ingest.stats.counts())
        log.info("ingest stopped: %s", ingest.stats.line())
    return ingest.stats
