"""ingest's MQTT edge without a broker: a real paho ``MQTTMessage`` handed to our callback.

As Home Assistant's MQTT tests do, each test builds the message paho's network thread would
build and calls the ``on_message`` paho would call. The callback must never raise into paho
(paho re-raises and its network loop dies, leaving the message unacknowledged); every
message, good or bad, must come out of ingest as a Kafka record and be acknowledged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest

import ingest.service
from core.contract import (
    SHARED_STATUS_FILTER,
    SHARED_TELEMETRY_FILTER,
    TOPIC_READINGS,
    TOPIC_REJECTS,
    TOPIC_STATUS,
    status_topic,
    telemetry_topic,
)
from core.mqtt import MqttMessage, Subscriber
from core.settings import Settings
from ingest.service import Ingest

NOW_MS = int(time.time() * 1000)
GOOD_TOPIC = telemetry_topic("acme", "home-1").encode()
NOT_UTF8_TOPIC = b"forewarn/v1/acme/\xff\xfe/telemetry"
LEAK = orjson.dumps({"ts": NOW_MS, "seq": 7, "metrics": {"water_leak": True, "flow_lpm": 4.5}})


def mqtt_message(topic: bytes, payload: bytes, mid: int = 1, qos: int = 1, retain: bool = False) -> paho.MQTTMessage:
    """What paho's network thread builds from a PUBLISH packet."""
    msg = paho.MQTTMessage(mid, topic)
    msg.payload = payload
    msg.qos = qos
    msg.retain = retain
    return msg


def paho_calls_on_message(subscriber: Subscriber, msg: paho.MQTTMessage) -> None:
    """Call the handler the way paho's loop does (paho re-raises what the handler raises)."""
    client = subscriber._client
    on_message = client.on_message
    assert on_message is not None, "the subscriber registers its handler with paho"
    on_message(client, None, msg)


def subscriber_into(received: list[MqttMessage]) -> Subscriber:
    return Subscriber("127.0.0.1", 1, "test-ingest", "forewarn/v1/+/+/telemetry", received.append)


# ------------------------------------------------------------------ the callback on its own


def test_a_telemetry_message_becomes_an_immutable_value() -> None:
    received: list[MqttMessage] = []
    subscriber = subscriber_into(received)

    paho_calls_on_message(subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=42, qos=1))

    assert len(received) == 1
    value = received[0]
    assert (value.topic, value.payload, value.qos, value.mid, value.retain) == (
        "forewarn/v1/acme/home-1/telemetry",
        LEAK,
        1,
        42,
        False,
    )
    assert value.topic_is_utf8
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.topic = "forewarn/v1/acme/other/telemetry"  # type: ignore[misc]
    assert subscriber.callback_errors == 0


def test_a_topic_that_is_not_utf8_reaches_ingest_instead_of_raising_into_paho() -> None:
    received: list[MqttMessage] = []
    subscriber = subscriber_into(received)
    msg = mqtt_message(NOT_UTF8_TOPIC, LEAK, mid=9)
    with pytest.raises(UnicodeDecodeError):
        _ = msg.topic  # what paho's own accessor does with these bytes

    paho_calls_on_message(subscriber, msg)

    assert [(m.topic, m.topic_is_utf8, m.mid) for m in received] == [
        ("forewarn/v1/acme/\\xff\\xfe/telemetry", False, 9)
    ]
    assert subscriber.callback_errors == 0


def test_a_handler_that_fails_is_counted_and_does_not_raise_into_paho() -> None:
    def broken(message: MqttMessage) -> None:
        raise RuntimeError("the event loop is closed")

    subscriber = Subscriber("127.0.0.1", 1, "test-ingest", "forewarn/v1/+/+/telemetry", broken)

    paho_calls_on_message(subscriber, mqtt_message(NOT_UTF8_TOPIC, b"\x00" * 500))
    paho_calls_on_message(subscriber, mqtt_message(GOOD_TOPIC, LEAK))

    assert subscriber.callback_errors == 2


# ------------------------------------------------- through ingest's loop: Kafka record + ack


class RegistryStore:
    """The one Store call ingest's loop makes: the device registry."""

    async def devices(self) -> dict[str, str]:
        return {"acme/home-1": "home"}

    async def device_kind(self, tenant: str, device: str) -> str | None:
        """A device registered after the registry was read, looked up alone (``acme/home-2``)."""
        return {"acme/home-1": "home", "acme/home-2": "home"}.get(f"{tenant}/{device}")


class KafkaProducer:
    """Accepts every record at once, like a healthy Kafka."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def send(self, topic: str, key: str, value: bytes) -> asyncio.Future[object]:
        self.sent.append((topic, key, orjson.loads(value)))
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class BrokerlessSubscriber(Subscriber):
    """The real subscriber and its paho client, minus the network: acks are recorded."""

    def start(self) -> None:
        self.acks: list[tuple[int, int]] = []
        self.ended_session: bool | None = None
        self.connected.set()

    def ack(self, message: MqttMessage) -> bool:
        self.acks.append((message.mid, message.qos))
        return True

    def leave(self) -> None:
        self.left.set()

    def stop(self, end_session: bool = False, timeout: float = 2.0) -> None:
        self.ended_session = end_session


async def until(what: str, probe: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def ingest_one(
    msg: paho.MQTTMessage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Ingest, list[tuple[str, str, dict[str, Any]]]]:
    """Run ingest's loop, deliver ``msg`` from a thread as paho would, stop once it is acknowledged."""
    made: list[BrokerlessSubscriber] = []

    def subscriber(*args: Any, **kwargs: Any) -> BrokerlessSubscriber:
        made.append(BrokerlessSubscriber(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ingest.service, "Subscriber", subscriber)
    monkeypatch.setattr(ingest.service, "HEARTBEAT", tmp_path / "ingest.alive")
    producer = KafkaProducer()
    edge = Ingest(Settings(), RegistryStore(), producer)  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(edge.run(stop))
    await until("ingest to subscribe", lambda: bool(made) and made[0].connected.is_set())

    await asyncio.to_thread(paho_calls_on_message, made[0], msg)  # paho's network thread

    await until("the acknowledgement", lambda: bool(made[0].acks))
    stop.set()
    await asyncio.wait_for(running, 5)
    assert made[0].callback_errors == 0
    assert made[0].acks == [(msg.mid, msg.qos)], "every message is acknowledged once Kafka has its record"
    return edge, producer.sent


async def test_a_valid_message_becomes_a_readings_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    edge, sent = await ingest_one(mqtt_message(GOOD_TOPIC, LEAK, mid=3), monkeypatch, tmp_path)

    assert len(sent) == 1
    topic, key, record = sent[0]
    assert (topic, key, record["tenant"], record["device"], record["kind"]) == (
        TOPIC_READINGS,
        "acme/home-1",
        "acme",
        "home-1",
        "home",
    )
    assert record["readings"] == [{"ts": NOW_MS, "seq": 7, "metrics": {"water_leak": 1.0, "flow_lpm": 4.5}}]
    assert edge.stats.readings == 1 and not edge.stats.rejects


async def test_a_device_registered_after_the_registry_was_read_is_looked_up_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The registry was read a moment ago (when ingest started); acme/home-2 was registered since:
    its first message is let through, not refused as an unknown device."""
    new_topic = telemetry_topic("acme", "home-2").encode()
    edge, sent = await ingest_one(mqtt_message(new_topic, LEAK, mid=4), monkeypatch, tmp_path)
    assert [(t, k, r["kind"]) for t, k, r in sent] == [(TOPIC_READINGS, "acme/home-2", "home")]
    assert not edge.stats.rejects and edge.registry["acme/home-2"] == "home"


async def test_an_unregistered_device_looked_up_alone_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ghost = telemetry_topic("acme", "ghost-1").encode()
    edge, sent = await ingest_one(mqtt_message(ghost, LEAK, mid=6), monkeypatch, tmp_path)
    assert [(t, r["reason"]) for t, _, r in sent] == [(TOPIC_REJECTS, "unknown_device")]
    assert "acme/ghost-1" in edge._missing, "not looked up again for a while"


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "shown_topic"),
    [
        (NOT_UTF8_TOPIC, LEAK, "bad_topic", "forewarn/v1/acme/\\xff\\xfe/telemetry"),
        (GOOD_TOPIC, b"", "malformed_json", "forewarn/v1/acme/home-1/telemetry"),
        (GOOD_TOPIC, b"temp=21.5;leak=1", "malformed_json", "forewarn/v1/acme/home-1/telemetry"),
    ],
    ids=["topic-not-utf8", "empty-payload", "payload-not-json"],
)
async def test_a_refused_message_goes_to_rejects_with_its_reason(
    topic: bytes, payload: bytes, reason: str, shown_topic: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edge, sent = await ingest_one(mqtt_message(topic, payload, mid=5), monkeypatch, tmp_path)

    assert [(t, r["reason"], r["topic"], r["payload"]) for t, _, r in sent] == [
        (TOPIC_REJECTS, reason, shown_topic, payload.decode())
    ]
    assert edge.stats.rejects == {reason: 1}
    assert edge.stats.readings == 0


# ------------------------------------------------------------------ statuses: online / offline

STATUS_TOPIC = status_topic("acme", "home-1").encode()


@pytest.mark.parametrize("retain", [False, True], ids=["live", "replayed-on-subscribe"])
async def test_a_status_becomes_a_status_record_keyed_by_device(
    retain: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edge, sent = await ingest_one(mqtt_message(STATUS_TOPIC, b"offline", mid=8, retain=retain), monkeypatch, tmp_path)

    [(topic, key, record)] = sent
    assert (topic, key) == (TOPIC_STATUS, "acme/home-1")
    assert {k: record[k] for k in ("tenant", "device", "kind", "state", "ts", "retained")} == {
        "tenant": "acme",
        "device": "home-1",
        "kind": "home",
        "state": "offline",
        "ts": None,
        "retained": retain,
    }
    assert abs(record["received_at"] - time.time() * 1000) < 10_000
    assert edge.stats.statuses == 1 and edge.stats.readings == 0 and not edge.stats.rejects


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (STATUS_TOPIC, b"asleep", "bad_status"),
        (STATUS_TOPIC, b"", "bad_status"),
        (STATUS_TOPIC, b'{"state": "online"', "malformed_json"),
        (status_topic("acme", "ghost").encode(), b"online", "unknown_device"),
        (b"forewarn/v1/acme/home-1/state", b"online", "bad_topic"),
    ],
    ids=["unknown-state", "cleared", "broken-json", "unknown-device", "not-a-status-topic"],
)
async def test_a_refused_status_goes_to_rejects_with_its_reason(
    topic: bytes, payload: bytes, reason: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edge, sent = await ingest_one(mqtt_message(topic, payload, mid=6), monkeypatch, tmp_path)

    assert [(t, r["reason"], r["topic"]) for t, _, r in sent] == [(TOPIC_REJECTS, reason, topic.decode())]
    assert edge.stats.rejects == {reason: 1} and edge.stats.statuses == 0


def test_ingest_subscribes_to_telemetry_and_statuses_on_the_shared_subscription() -> None:
    subscriber = Subscriber("127.0.0.1", 1, "t", (SHARED_TELEMETRY_FILTER, SHARED_STATUS_FILTER), print)
    calls: list[Any] = []
    subscriber._client.subscribe = lambda topics, *a, **k: calls.append(topics)  # type: ignore[method-assign]
    subscriber._on_connect(subscriber._client, None, None, None, None)
    assert calls == [
        [("$share/forewarn-ingest/forewarn/v1/+/+/telemetry", 1), ("$share/forewarn-ingest/forewarn/v1/+/+/status", 1)]
    ]


class FailingRegistryStore(RegistryStore):
    """The registry loads once, then PostgreSQL goes away."""

    def __init__(self) -> None:
        self.calls = 0

    async def devices(self) -> dict[str, str]:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("PostgreSQL is down")
        return await super().devices()


async def test_a_database_outage_does_not_stop_ingest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made: list[BrokerlessSubscriber] = []

    def subscriber(*args: Any, **kwargs: Any) -> BrokerlessSubscriber:
        made.append(BrokerlessSubscriber(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ingest.service, "Subscriber", subscriber)
    monkeypatch.setattr(ingest.service, "HEARTBEAT", tmp_path / "ingest.alive")
    monkeypatch.setattr(ingest.service, "REGISTRY_REFRESH_S", 0.0)  # refresh on every pass: it fails each time
    store, producer = FailingRegistryStore(), KafkaProducer()
    edge = Ingest(Settings(), store, producer)  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(edge.run(stop))
    await until("ingest to subscribe", lambda: bool(made) and made[0].connected.is_set())
    await until("a failed registry refresh", lambda: edge.stats.registry_failures >= 1, timeout=5)

    await asyncio.to_thread(paho_calls_on_message, made[0], mqtt_message(GOOD_TOPIC, LEAK, mid=9))
    await until("the acknowledgement", lambda: bool(made[0].acks))
    stop.set()
    await asyncio.wait_for(running, 5)
    assert not running.exception() if running.done() else True
    assert [key for _, key, _ in producer.sent] == ["acme/home-1"], "a known device's readings still reach Kafka"
    assert edge.registry == {"acme/home-1": "home"}


# ------------------------------------------------------------------ reconnects, Kafka outages, leaving


def test_a_message_read_before_a_reconnect_is_not_acknowledged_with_its_stale_id() -> None:
    """After a reconnect the same message id may name another message: acking it would lose that one."""
    received: list[MqttMessage] = []
    subscriber = subscriber_into(received)
    sent: list[tuple[int, int]] = []
    subscriber._client.ack = lambda mid, qos: sent.append((mid, qos))  # type: ignore[method-assign]
    subscriber._client.subscribe = lambda *a, **k: (0, 1)  # type: ignore[method-assign]
    subscriber._on_connect(subscriber._client, None, None, None, None)
    paho_calls_on_message(subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=1))
    assert subscriber.ack(received[0]) and sent == [(1, 1)]

    paho_calls_on_message(subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=2))
    subscriber._on_disconnect(subscriber._client, None, None, "connection lost", None)
    subscriber._on_connect(subscriber._client, None, None, None, None)  # paho reconnected
    paho_calls_on_message(subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=2))  # the broker redelivers

    assert not subscriber.ack(received[1]), "the stale message is left to the broker"
    assert subscriber.ack(received[2])
    assert sent == [(1, 1), (2, 1)] and subscriber.stale_acks == 1


class DownKafka(KafkaProducer):
    """Kafka that takes records and never confirms them until ``up`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.up = asyncio.Event()

    async def send(self, topic: str, key: str, value: bytes) -> asyncio.Future[object]:
        self.sent.append((topic, key, orjson.loads(value)))
        confirmed: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.up.wait()
            confirmed.set_result(None)

        asyncio.get_running_loop().create_task(later())
        return confirmed


async def start_edge(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, producer: KafkaProducer
) -> tuple[Ingest, BrokerlessSubscriber, asyncio.Event, asyncio.Task[None]]:
    made: list[BrokerlessSubscriber] = []

    def subscriber(*args: Any, **kwargs: Any) -> BrokerlessSubscriber:
        made.append(BrokerlessSubscriber(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ingest.service, "Subscriber", subscriber)
    monkeypatch.setattr(ingest.service, "HEARTBEAT", tmp_path / "ingest.alive")
    monkeypatch.setattr(ingest.service, "ACK_PATIENCE_S", 0.3)
    monkeypatch.setenv("FOREWARN_STATUS_FILE", str(tmp_path / "ingest.status.json"))
    edge = Ingest(Settings(), RegistryStore(), producer)  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(edge.run(stop))
    await until("ingest to subscribe", lambda: bool(made) and made[0].connected.is_set())
    return edge, made[0], stop, running


async def test_while_kafka_is_down_ingest_reports_its_pending_work_and_acks_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from core.readiness import health, read_status

    kafka = DownKafka()
    edge, subscriber, stop, running = await start_edge(monkeypatch, tmp_path, kafka)
    for mid in range(1, 6):
        await asyncio.to_thread(paho_calls_on_message, subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=mid))
    await until("the records to be sent", lambda: bool(kafka.sent) and edge.pending == 5)
    reports = []
    for _ in range(3):  # the loop keeps reporting while the rounds wait
        await asyncio.sleep(1.1)
        reports.append(read_status(tmp_path / "ingest.status.json"))
    assert all(r is not None and r["pending"] == 5 for r in reports), reports
    assert [r["at"] for r in reports] == sorted({r["at"] for r in reports}), "a fresh report every second"  # type: ignore[index]
    assert "holds 5 unmoved" in (health(reports[-1], reports[-1]["at"] + 0.5, stall_s=2.0) or "")  # type: ignore[index]
    assert subscriber.acks == [] and edge.pending == 5
    outage_lines = [r for r in caplog.records if "Kafka unavailable" in r.getMessage()]
    assert len(outage_lines) == 1, [r.getMessage() for r in caplog.records]

    kafka.up.set()  # Kafka is back
    await until("the acknowledgements", lambda: len(subscriber.acks) == 5)
    assert subscriber.acks == [(mid, 1) for mid in range(1, 6)], "in arrival order"
    await until(
        "a report of the progress", lambda: (read_status(tmp_path / "ingest.status.json") or {}).get("pending") == 0
    )
    assert any("Kafka back after" in r.getMessage() for r in caplog.records)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert subscriber.ended_session is True, "everything acknowledged: a clean leave ends the session"


async def test_stopping_while_kafka_is_down_keeps_the_session_and_stops_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ingest.service, "DRAIN_S", 1.0)
    kafka = DownKafka()
    edge, subscriber, stop, running = await start_edge(monkeypatch, tmp_path, kafka)
    await asyncio.to_thread(paho_calls_on_message, subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=4))
    await until("the record to be sent", lambda: len(kafka.sent) == 1)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(running, 5)
    assert time.monotonic() - started < 3
    assert subscriber.left.is_set(), "ingest left the shared subscription"
    assert subscriber.acks == [] and subscriber.ended_session is False, "unconfirmed: the broker keeps it for us"
    assert not edge.left_cleanly


async def test_a_clean_leave_hands_over_what_arrives_after_the_unsubscribe(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kafka = KafkaProducer()
    edge, subscriber, stop, running = await start_edge(monkeypatch, tmp_path, kafka)
    stop.set()
    await until("the unsubscribe", subscriber.left.is_set)
    # what the broker had queued for us still arrives after the unsubscribe
    await asyncio.to_thread(paho_calls_on_message, subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=11))
    await asyncio.wait_for(running, 10)
    assert subscriber.acks == [(11, 1)] and subscriber.ended_session is True


async def test_messages_from_paho_in_bursts_all_arrive_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """paho's thread hands messages over without waking the loop for each: a burst arriving while
    a wake-up is pending, or while the loop takes a round, is found all the same."""
    kafka = KafkaProducer()
    edge, subscriber, stop, running = await start_edge(monkeypatch, tmp_path, kafka)

    def bursts() -> None:  # paho's network thread
        mid = 0
        for burst in (1, 7, 300, 2, 1, 50):
            for _ in range(burst):
                mid += 1
                paho_calls_on_message(subscriber, mqtt_message(GOOD_TOPIC, LEAK, mid=mid))
            time.sleep(0.003 * (burst % 3))

    await asyncio.to_thread(bursts)
    await until("every acknowledgement", lambda: len(subscriber.acks) == 361)
    assert subscriber.acks == [(mid, 1) for mid in range(1, 362)], "each once, in arrival order"
    assert edge.pending == 0
    stop.set()
    await asyncio.wait_for(running, 10)
