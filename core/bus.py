"""Kafka, through aiokafka: topic creation, a batching producer, a plain reader. The only aiokafka module.

(Faust, in ``streams/``, talks to Kafka on its own; everything else goes through here.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from core.contract import KAFKA_TOPICS


class BusError(RuntimeError):
    """Kafka refused or could not be reached; the message says which broker and what to do."""


async def ensure_topics(bootstrap: str, partitions: int, topics: Iterable[str] = KAFKA_TOPICS) -> list[str]:
    """Create the forewarn topics that do not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaError as exc:
        raise BusError(f"cannot reach Kafka at {bootstrap}: {exc}; is the broker running?") from None
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

    def __init__(self, bootstrap: str, linger_ms: int = 5) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=linger_ms,
            max_batch_size=1 << 20,
            max_request_size=4 << 20,
            request_timeout_ms=30000,
        )
        self.bootstrap = bootstrap

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise BusError(f"cannot reach Kafka at {self.bootstrap}: {exc}; is the broker running?") from None

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


async def read_topic(
    bootstrap: str, *topics: str, group: str | None = None, from_beginning: bool = True
) -> AsyncIterator[Record]:
    """Yield records of the given topics until the caller stops iterating."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=group is not None,
    )
    await consumer.start()
    try:
        async for msg in consumer:
            yield Record(
                msg.topic,
                msg.key.decode() if msg.key else None,
                msg.value or b"",
                msg.partition,
                msg.offset,
            )
    finally:
        await consumer.stop()
