"""Kafka, through aiokafka: topic creation, a batching producer, a plain reader. The only aiokafka module.

(Faust, in ``streams/``, talks to Kafka on its own; everything else goes through here.)

Every function takes ``target``: a bare bootstrap list ``host:port[,host:port]`` or the whole
``FOREWARN_KAFKA_URL`` (``kafka://user:password@host:port``), whose user and password become
SASL credentials (SASL_PLAINTEXT; see :func:`core.settings.kafka_target`). Pass the URL, not
``settings.kafka_bootstrap``, where the broker requires authentication.

Timeouts: each request (connecting included: aiokafka connects under the request timeout) gives
up after :data:`REQUEST_TIMEOUT_MS`, so a partitioned broker is noticed within seconds and the
caller's outage handling takes over; metadata is refreshed every :data:`METADATA_MAX_AGE_MS`.
Sizes: a produce request is at most :data:`MAX_REQUEST_BYTES` (1 MiB, Apache Kafka's default
``message.max.bytes`` is 1 MiB + 12 bytes); ingest keeps each record under it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from core.contract import KAFKA_TOPICS
from core.settings import kafka_target

REQUEST_TIMEOUT_MS = 10_000
METADATA_MAX_AGE_MS = 30_000
RETRY_BACKOFF_MS = 200
MAX_REQUEST_BYTES = 1 << 20


class BusError(RuntimeError):
    """Kafka refused or could not be reached; the message says which broker and what to do."""


def client_config(target: str) -> dict[str, Any]:
    """aiokafka's connection keywords for ``target`` (bootstrap list or Kafka URL): the servers,
    the timeouts, and SASL when the URL carries a user."""
    where = kafka_target(target)
    config: dict[str, Any] = {
        "bootstrap_servers": where.bootstrap,
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        "retry_backoff_ms": RETRY_BACKOFF_MS,
    }
    if where.username is not None:
        config |= {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": where.mechanism,
            "sasl_plain_username": where.username,
            "sasl_plain_password": where.password,
        }
    return config


def _unreachable(target: str, exc: BaseException) -> BusError:
    where = kafka_target(target)
    hint = (
        "is the broker running, and are the user and password in FOREWARN_KAFKA_URL right?"
        if where.username
        else "is the broker running (and does it require a user: kafka://user:password@host:port)?"
    )
    return BusError(f"cannot reach Kafka at {where.bootstrap}: {exc}; {hint}")


async def ensure_topics(target: str, partitions: int, topics: Iterable[str] = KAFKA_TOPICS) -> list[str]:
    """Create the forewarn topics that do not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(**client_config(target))
    try:
        await admin.start()
    except KafkaError as exc:
        raise _unreachable(target, exc) from None
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t not in existing]
        if wanted:
            try:
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in wanted]
                )
            except TopicAlreadyExistsError:
                pass
        return wanted
    finally:
        await admin.close()


class Producer:
    """An idempotent-enough producer: acks=all, batching with a short linger."""

    def __init__(self, target: str, linger_ms: int = 5) -> None:
        self._producer = AIOKafkaProducer(
            **client_config(target),
            acks="all",
            linger_ms=linger_ms,
            max_batch_size=MAX_REQUEST_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
        )
        self.target = target
        self.bootstrap = kafka_target(target).bootstrap

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise _unreachable(self.target, exc) from None

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: str, value: bytes) -> asyncio.Future[object]:
        """Queue a record; the returned future resolves once Kafka has accepted it."""
        return await self._producer.send(topic, value=value, key=key.encode())

    async def send_and_wait(self, topic: str, key: str, value: bytes) -> None:
        await (await self.send(topic, key, value))


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: str | None
    value: bytes
    partition: int
    offset: int
    timestamp_ms: int = 0
    """When the producer made the record (the broker's time if the topic says so)."""


async def end_offsets(target: str, topic: str) -> dict[int, int]:
    """Partition → the offset the next record of ``topic`` will have (every partition of it)."""
    client = EndOffsets(target)
    try:
        return await client.of(topic)
    finally:
        await client.close()


class EndOffsets:
    """A long-lived client that asks Kafka where its partitions end (no group, reads nothing):
    for a process that checks its own lag every few seconds without a new connection each time."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._consumer: AIOKafkaConsumer | None = None

    async def of(self, topic: str, partitions: Iterable[int] | None = None) -> dict[int, int]:
        """Partition → the offset the next record of ``topic`` will have (``partitions``, or all)."""
        consumer = self._consumer
        if consumer is None:
            consumer = AIOKafkaConsumer(**client_config(self._target), enable_auto_commit=False)
            await consumer.start()
            await consumer.topics()  # the cluster's metadata: where the partitions live
            self._consumer = consumer
        if partitions is None:
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
        wanted = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(wanted)).items()}

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()


async def read_topic(
    target: str,
    *topics: str,
    group: str | None = None,
    from_beginning: bool = True,
    from_offsets: dict[int, int] | None = None,
) -> AsyncIterator[Record]:
    """Yield records of the given topics until the caller stops iterating; with ``from_offsets``
    (one topic, no group), from those offsets of its partitions (from :func:`end_offsets`)."""
    if from_offsets is not None:
        async for record in _read_from(target, topics[0], from_offsets):
            yield record
        return
    consumer = AIOKafkaConsumer(
        *topics,
        # the request timeout above the group's session: a join may wait that long for the others
        **{**client_config(target), "request_timeout_ms": 15_000},
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        group_id=group,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=group is not None,
    )
    await consumer.start()
    try:
        async for msg in consumer:
            yield _record(msg)
    finally:
        await consumer.stop()


async def _read_from(target: str, topic: str, offsets: dict[int, int]) -> AsyncIterator[Record]:
    consumer = AIOKafkaConsumer(**client_config(target), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in offsets])
        for p, offset in offsets.items():
            consumer.seek(TopicPartition(topic, p), offset)
        async for msg in consumer:
            yield _record(msg)
    finally:
        await consumer.stop()


def _record(msg: Any) -> Record:
    return Record(
        msg.topic, msg.key.decode() if msg.key else None, msg.value or b"", msg.partition, msg.offset, msg.timestamp
    )
