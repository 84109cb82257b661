"""ingest's memory through a burst: what it holds is bounded by bytes, not by the broker's goodwill.

Mosquitto 2.0.11 sends more unacknowledged messages than the Receive Maximum we ask for when the
acknowledgements come in bursts (5,763 seen at 2,000), so a burst of large messages swelled
ingest to 200-330 MiB. The subscriber now stops reading (paho's thread waits) while the consumer
holds ``max_held_bytes``; ingest releases a round's bytes once Kafka has its records, and a round
keeps only what acknowledging its messages takes, not their payloads. No broker here: a real
paho ``MQTTMessage`` is handed to the callback from a thread, as paho's network loop would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest

import core.mqtt
import ingest.service
from core.contract import telemetry_topic
from core.mqtt import AckToken, MqttMessage, Subscriber
from core.settings import Settings
from ingest.service import Ingest

NOW_MS = int(time.time() * 1000)
TOPIC = telemetry_topic("acme", "home-1").encode()


def mqtt_message(payload: bytes, mid: int) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(mid, TOPIC)
    msg.payload = payload
    msg.qos = 1
    return msg


def deliver_from_paho_thread(subscriber: Subscriber, messages: list[paho.MQTTMessage]) -> threading.Thread:
    """paho's network thread: one message after the other, each waiting for room if it must."""
    client = subscriber._client

    def loop() -> None:
        for msg in messages:
            client.on_message(client, None, msg)  # type: ignore[misc]

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def wait_until(what: str, probe: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


# ------------------------------------------------------------------ the subscriber on its own


def test_paho_thread_waits_for_room_and_goes_on_once_the_consumer_releases() -> None:
    received: list[MqttMessage] = []
    subscriber = Subscriber("127.0.0.1", 1, "t", "forewarn/v1/+/+/telemetry", received.append, max_held_bytes=100)
    paho_thread = deliver_from_paho_thread(subscriber, [mqtt_message(b"x" * 60, 1), mqtt_message(b"y" * 60, 2)])

    wait_until("the first message", lambda: len(received) == 1)
    time.sleep(0.3)
    assert len(received) == 1 and paho_thread.is_alive(), "120 bytes would be over the 100 held at most: it waits"
    assert subscriber.held_bytes == 60 and subscriber.room_waits == 1

    subscriber.release(60)

    wait_until("the second message", lambda: len(received) == 2)
    assert subscriber.held_bytes == 60
    paho_thread.join(1)


def test_a_consumer_that_cannot_move_only_slows_paho_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka down, nothing released: each message waits a few seconds at most, so paho's loop
    still sends pings and acknowledgements and the connection stays up."""
    monkeypatch.setattr(core.mqtt, "ROOM_WAIT_S", 0.2)
    received: list[MqttMessage] = []
    subscriber = Subscriber("127.0.0.1", 1, "t", "forewarn/v1/+/+/telemetry", received.append, max_held_bytes=100)
    t0 = time.monotonic()
    deliver_from_paho_thread(subscriber, [mqtt_message(b"z" * 80, m) for m in (1, 2, 3)]).join(5)

    assert len(received) == 3
    assert time.monotonic() - t0 >= 0.4, "the second and third message each waited for room"
    assert subscriber.room_waits == 2


def test_a_single_message_larger_than_the_budget_is_not_held_back() -> None:
    received: list[MqttMessage] = []
    subscriber = Subscriber("127.0.0.1", 1, "t", "forewarn/v1/+/+/telemetry", received.append, max_held_bytes=10)
    deliver_from_paho_thread(subscriber, [mqtt_message(b"w" * 50, 1)]).join(1)

    assert len(received) == 1 and subscriber.room_waits == 0


def test_a_token_acknowledges_like_its_message() -> None:
    message = MqttMessage("t", b"payload" * 1000, 1, 17, False, 0.0, session=3)
    assert message.token == AckToken(17, 1, 3)


# ------------------------------------------------------------------ through ingest's loop


class RegistryStore:
    async def devices(self) -> dict[str, str]:
        return {"acme/home-1": "home"}

    async def device_kind(self, tenant: str, device: str) -> str | None:
        return (await self.devices()).get(f"{tenant}/{device}")


class HeldKafka:
    """A Kafka that confirms nothing until told to (``confirm``)."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[object]] = []

    async def send(self, topic: str, key: str, value: bytes) -> asyncio.Future[object]:
        self.futures.append(asyncio.get_running_loop().create_future())
        return self.futures[-1]

    def confirm(self) -> None:
        for future in self.futures:
            if not future.done():
                future.set_result(None)


class BrokerlessSubscriber(Subscriber):
    """The real subscriber (and its flow control) minus the network: acks are recorded."""

    def start(self) -> None:
        self.acks: list[int] = []
        self.connected.set()

    def ack(self, message: MqttMessage | AckToken) -> bool:
        self.acks.append(message.mid)
        return True

    def leave(self) -> None:
        self.left.set()

    def stop(self, end_session: bool = False, timeout: float = 2.0) -> None:
        self._leaving = True
        with self._room:
            self._room.notify_all()


def batch_payload(seq: int, readings: int = 100) -> bytes:
    return orjson.dumps(
        {"batch": [{"ts": NOW_MS - 1000 * (seq * readings + i), "metrics": {"temp_c": 20.5}} for i in range(readings)]}
    )


async def test_a_burst_of_large_messages_is_held_within_ingests_byte_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    made: list[BrokerlessSubscriber] = []

    def subscriber(*args: Any, **kwargs: Any) -> BrokerlessSubscriber:
        made.append(BrokerlessSubscriber(*args, **kwargs))
        return made[-1]

    payloads = [batch_payload(i) for i in range(200)]
    size = len(payloads[0])  # ~5 KB
    monkeypatch.setattr(ingest.service, "Subscriber", subscriber)
    monkeypatch.setattr(ingest.service, "HEARTBEAT", tmp_path / "ingest.alive")
    monkeypatch.setattr(ingest.service, "MAX_ROUND_BYTES", 4 * size)
    monkeypatch.setattr(ingest.service, "MAX_HELD_BYTES", 10 * size)
    kafka = HeldKafka()
    edge = Ingest(Settings(), RegistryStore(), kafka)  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(edge.run(stop))
    while not (made and made[0].connected.is_set()):
        await asyncio.sleep(0.01)
    sub = made[0]
    paho_thread = deliver_from_paho_thread(sub, [mqtt_message(p, mid) for mid, p in enumerate(payloads, 1)])

    await asyncio.sleep(0.5)  # Kafka confirms nothing: ingest fills its budget, then paho waits
    assert sub.room_waits >= 1 and paho_thread.is_alive()
    assert sub.held_bytes <= 10 * size + max(len(p) for p in payloads)
    assert edge.pending <= 11, "at most the budget's worth of messages held, not the whole burst"
    assert sub.acks == [], "nothing acknowledged before Kafka confirms"

    while len(sub.acks) < len(payloads):  # Kafka confirms as it goes: the burst flows through
        kafka.confirm()
        assert sub.held_bytes <= 10 * size + max(len(p) for p in payloads)
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 10)
    paho_thread.join(1)

    assert sub.acks == list(range(1, len(payloads) + 1)), "every message acknowledged once, in order"
    assert sub.held_bytes == 0, "every round's bytes released"
    assert edge.stats.readings == 100 * len(payloads)
