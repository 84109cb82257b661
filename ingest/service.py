"""The MQTT edge: subscribe, validate, produce to Kafka, then acknowledge.

ingest subscribes to the devices' telemetry and to their retained ``online`` / ``offline``
statuses (the last will), both on the shared subscription; a status goes to
``forewarn.status`` keyed ``tenant/device``, timed by its arrival here.

paho delivers on its network thread; messages cross into the asyncio loop through a queue.
The loop takes what has arrived (a round), validates each message, merges a device's
readings into one ``forewarn.readings`` record (Faust's per-record cost makes one-value
records unaffordable), sends refusals to ``forewarn.rejects``, and hands the round to an
acker that acknowledges its MQTT messages, in arrival order, only once Kafka has accepted
every record of it — while the next rounds are already being read (the broker lets only a
few unacknowledged messages out to a client, so waiting round by round caps throughput).
If Kafka is down, the round is retried and nothing is acknowledged: the broker keeps it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.bus import Producer, ensure_topics
from core.contract import (
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
from core.mqtt import MqttMessage, Subscriber
from core.readiness import StatusFile
from core.settings import Settings
from ingest.validate import Verdict, validate_message, validate_status

log = logging.getLogger(__name__)

HEARTBEAT = Path(tempfile.gettempdir()) / "forewarn-ingest.alive"  # the container health check reads its age

MAX_READINGS_PER_RECORD = 2000
MAX_MESSAGES_PER_ROUND = 1000
ROUNDS_IN_FLIGHT = 4  # rounds sent to Kafka and not yet acknowledged

Record = tuple[str, str, bytes]  # (topic, key, value)
Round = tuple[list[MqttMessage], list[Record], list[asyncio.Future[object]]]  # messages, records, Kafka acks
REGISTRY_REFRESH_S = 30.0
REGISTRY_MISS_REFRESH_S = 2.0
REGISTRY_TIMEOUT_S = 5.0  # a silent database must not stall the MQTT → Kafka path


@dataclass
class IngestStats:
    messages: int = 0
    readings: int = 0
    records: int = 0
    statuses: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    kafka_retries: int = 0
    registry_failures: int = 0

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
        }

    def line(self) -> str:
        rej = ", ".join(f"{k} {v}" for k, v in self.rejects.most_common()) or "none"
        return (
            f"{self.messages} messages, {self.readings} readings in {self.records} records, "
            f"{self.statuses} statuses, rejects: {rej}"
        )


class Ingest:
    def __init__(self, settings: Settings, store: Store, producer: Producer) -> None:
        self.settings = settings
        self.store = store
        self.producer = producer
        self.stats = IngestStats()
        self.registry: dict[str, str] = {}
        self._registry_at = 0.0
        self._queue: asyncio.Queue[MqttMessage] = asyncio.Queue()
        self.subscriber: Subscriber | None = None
        self.status = StatusFile.from_env()

    async def refresh_registry(self, first: bool = False) -> None:
        """Reload the device registry. While PostgreSQL is unreachable ingest keeps the registry it
        has (messages of devices it knows still flow to Kafka) and tries again later; only the
        first load, without which nothing can be checked, lets the error through."""
        try:
            self.registry = await asyncio.wait_for(self.store.devices(), REGISTRY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the database is down: keep going on what we know
            if first:
                raise
            self.stats.registry_failures += 1
            log.warning("device registry not refreshed (%s); keeping %d known devices", exc, len(self.registry))
        self._registry_at = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        await self.refresh_registry(first=True)
        host, port = self.settings.mqtt_host_port
        user, password = self.settings.mqtt_credentials
        self.subscriber = Subscriber(
            host,
            port,
            self.settings.ingest_client_id,
            (SHARED_TELEMETRY_FILTER, SHARED_STATUS_FILTER),
            functools.partial(_hand_over, loop, self._queue),
            user,
            password,
        )
        await asyncio.to_thread(self.subscriber.start)
        log.info("ingest ready: %d devices registered", len(self.registry))
        self.status.mark_ready(devices=len(self.registry), **self.stats.counts())
        last_report = last_beat = time.monotonic()
        rounds: asyncio.Queue[Round] = asyncio.Queue(maxsize=ROUNDS_IN_FLIGHT)
        acker = asyncio.create_task(self._ack_in_order(rounds))
        try:
            while not stop.is_set():
                try:
                    first = await asyncio.wait_for(self._queue.get(), timeout=1.0)
                except TimeoutError:
                    first = None
                if first is not None:
                    batch = [first]
                    if self.settings.ingest_linger_ms:
                        await asyncio.sleep(self.settings.ingest_linger_ms / 1000)
                    while len(batch) < MAX_MESSAGES_PER_ROUND and not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                    records = await self.prepare(batch)
                    # enqueue in order now (Kafka keeps a device's order); wait for the
                    # acknowledgements in the acker, so the next round is read meanwhile
                    await rounds.put((batch, records, await self._enqueue(records)))
                if time.monotonic() - self._registry_at > REGISTRY_REFRESH_S:
                    await self.refresh_registry()
                if time.monotonic() - last_beat > 1:
                    last_beat = time.monotonic()
                    HEARTBEAT.touch()
                    self.status.update(devices=len(self.registry), **self.stats.counts())
                if time.monotonic() - last_report > 10:
                    last_report = time.monotonic()
                    log.info("ingest: %s", self.stats.line())
            await rounds.join()  # what was read is in Kafka and acknowledged before we leave
        finally:
            acker.cancel()
            self.subscriber.stop()

    async def _ack_in_order(self, rounds: asyncio.Queue[Round]) -> None:
        """Acknowledge each round's MQTT messages, in arrival order, once Kafka has its records."""
        assert self.subscriber is not None
        while True:
            batch, records, futures = await rounds.get()
            try:
                await asyncio.gather(*futures)
            except Exception as exc:  # noqa: BLE001 - Kafka refused: send this round again
                self._kafka_trouble(len(records), exc, 0.5)
                await asyncio.sleep(0.5)
                await self._produce(records)
            for msg in batch:
                self.subscriber.ack(msg.mid, msg.qos)
            rounds.task_done()

    async def prepare(self, messages: list[MqttMessage]) -> list[Record]:
        """Validate one round of messages into Kafka records: a device's readings merged, rejects apart."""
        now_ms = int(time.time() * 1000)
        if time.monotonic() - self._registry_at > REGISTRY_MISS_REFRESH_S and any(
            _unknown(m.topic, self.registry) for m in messages
        ):
            await self.refresh_registry()
        per_device: dict[str, tuple[str, str, str, list[Reading]]] = {}
        rejects: list[tuple[str, bytes]] = []
        statuses: list[Record] = []
        for msg in messages:
            if not msg.topic_is_utf8:
                verdict = _not_utf8(msg.topic)
            elif is_status_topic(msg.topic):
                verdict = validate_status(msg.topic, msg.payload, self.registry, now_ms)
            else:
                verdict = validate_message(msg.topic, msg.payload, self.registry, now_ms, self.settings.retention_days)
            self.stats.messages += 1
            key = verdict.key or msg.topic
            for refusal in verdict.refusals:
                self.stats.rejects[refusal.reason] += 1
                copy = msg.payload if refusal.item is None else refusal.item
                rejects.append((key, reject_record(refusal.reason, refusal.detail, msg.topic, copy, now_ms)))
                log.debug("reject %s from %s: %s", refusal.reason, msg.topic, refusal.detail)
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
            for i in range(0, len(readings), MAX_READINGS_PER_RECORD):
                chunk = readings[i : i + MAX_READINGS_PER_RECORD]
                records.append((TOPIC_READINGS, key, readings_record(tenant, device, kind, chunk, now_ms)))
                self.stats.readings += len(chunk)
                self.stats.records += 1
        return records

    async def _enqueue(self, records: list[Record]) -> list[asyncio.Future[object]]:
        delay = 0.5
        while True:
            try:
                return [await self.producer.send(t, k, v) for t, k, v in records]
            except Exception as exc:  # noqa: BLE001 - Kafka unavailable: keep the round, ack nothing
                self._kafka_trouble(len(records), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _produce(self, records: list[Record]) -> None:
        """Send until Kafka has every record (used again after a failed round)."""
        delay = 0.5
        while True:
            try:
                await asyncio.gather(*await self._enqueue(records))
                return
            except Exception as exc:  # noqa: BLE001
                self._kafka_trouble(len(records), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    def _kafka_trouble(self, n: int, exc: BaseException, delay: float) -> None:
        self.stats.kafka_retries += 1
        log.warning(
            "Kafka did not accept %d records (%s); retrying in %.1f s — the MQTT messages stay "
            "unacknowledged, so nothing is lost; check FOREWARN_KAFKA_URL=%s",
            n,
            exc,
            delay,
            self.settings.kafka_url,
        )


def _hand_over(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[MqttMessage], message: MqttMessage) -> None:
    """paho's thread → the asyncio loop."""
    loop.call_soon_threadsafe(queue.put_nowait, message)


def _not_utf8(topic: str) -> Verdict:
    """A topic whose bytes are not UTF-8 (``topic`` shows them escaped): refused whole."""
    return Verdict(None, None, None, refusals=(Rejected("bad_topic", f"topic {topic[:200]!r} is not UTF-8", None),))


def _unknown(topic: str, registry: dict[str, str]) -> bool:
    """A well-formed telemetry or status topic of a device the registry does not know (yet)."""
    try:
        parse = parse_status_topic if is_status_topic(topic) else parse_telemetry_topic
        return parse(topic).key not in registry
    except ContractError:
        return False


async def run_ingest(settings: Settings, stop: asyncio.Event | None = None) -> IngestStats:
    """Run ingest until ``stop`` is set (or forever)."""
    stop = stop or asyncio.Event()
    await ensure_topics(settings.kafka_bootstrap, settings.partitions)
    store = Store(settings.database_url, max_size=2)
    producer = Producer(settings.kafka_bootstrap)
    await store.open()
    await producer.start()
    ingest = Ingest(settings, store, producer)
    try:
        await ingest.run(stop)
    finally:
        await producer.stop()
        await store.close()
        ingest.status.update(stopped=True, **ingest.stats.counts())
        log.info("ingest stopped: %s", ingest.stats.line())
    return ingest.stats
