"""MQTT through paho-mqtt 2.x (MQTT 5). The only paho module.

:class:`Subscriber` is ingest's durable session: stable client id, ``clean_start=False`` with a
session expiry, QoS 1, manual acknowledgement, and a re-subscribe in ``on_connect`` (Mosquitto
2.0.11 does not restore a durable shared subscription). A received message becomes an
immutable :class:`MqttMessage`; the callback never lets an exception reach paho.
:class:`Publisher` is what devices (and the simulator) use; a client that speaks for one device
registers that device's ``offline`` status as its last will (:class:`Will`), which the broker
publishes, retained, when the connection is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600
RECEIVE_MAXIMUM = 2000


class MqttError(RuntimeError):
    """The broker could not be reached or refused us."""


@dataclass(frozen=True, slots=True)
class MqttMessage:
    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    received_monotonic: float
    topic_is_utf8: bool = True
    """False: the topic bytes are not UTF-8 and ``topic`` shows them backslash-escaped;
    ingest refuses the message as ``bad_topic`` (and still acknowledges it)."""


def _client(client_id: str, username: str | None, password: str | None) -> paho.Client:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
    )
    if username:
        client.username_pw_set(username, password)
    client.max_inflight_messages_set(20)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


@dataclass(frozen=True, slots=True)
class Will:
    """A last will: what the broker publishes for a client whose connection is lost."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Subscriber:
    """A durable QoS 1 subscription (one topic filter or several) with manual acks,
    delivering on paho's network thread."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        topic_filter: str | Sequence[str],
        on_message: Callable[[MqttMessage], None],
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.topic_filters = (topic_filter,) if isinstance(topic_filter, str) else tuple(topic_filter)
        self._deliver = on_message
        self.connected = threading.Event()
        self.callback_errors = 0
        self._client = _client(client_id, username, password)
        self._client.manual_ack_set(True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker %s:%s refused the connection: %s", self.host, self.port, reason)
            return
        client.subscribe([(topic_filter, 1) for topic_filter in self.topic_filters])
        log.info("subscribed to %s on %s:%s", ", ".join(self.topic_filters), self.host, self.port)
        self.connected.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected (%s); paho reconnects with the same session", reason)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        # paho's ``msg.topic`` raises UnicodeDecodeError on a topic that is not UTF-8: decode
        # the raw bytes ourselves, so such a message still reaches ingest (refused, acknowledged)
        raw_topic: bytes = msg._topic
        try:
            topic, utf8 = raw_topic.decode("utf-8"), True
        except UnicodeDecodeError:
            topic, utf8 = raw_topic.decode("utf-8", errors="backslashreplace"), False
            log.warning("message on a topic that is not UTF-8: %s payload %r", topic[:200], bytes(msg.payload[:120]))
        try:
            self._deliver(
                MqttMessage(topic, bytes(msg.payload), msg.qos, msg.mid, bool(msg.retain), time.monotonic(), utf8)
            )
        except Exception:  # the callback must never raise into paho
            self.callback_errors += 1
            log.exception("message handler failed for topic %s payload %r", topic[:200], bytes(msg.payload[:120]))

    def start(self, timeout: float = 15.0) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        # at most this many unacknowledged messages on their way to us: the broker holds the
        # rest, so a burst cannot swell ingest's memory (acks come once Kafka has the records)
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        try:
            self._client.connect(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        except OSError as exc:
            raise MqttError(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from None
        self._client.loop_start()
        if not self.connected.wait(timeout):
            self.stop()
            raise MqttError(f"MQTT broker at {self.host}:{self.port} did not accept us within {timeout:.0f} s")

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a message once what came of it is safely in Kafka (thread-safe)."""
        if qos > 0:
            self._client.ack(mid, qos)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class Publisher:
    """A QoS 1 publisher (a device, or the simulator standing for many)."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        will: Will | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._client = _client(client_id, username, password)
        if will is not None:  # one per connection: only a client that speaks for one device has one
            self._client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self._client.on_connect = lambda *a: self._connected.set()

    def start(self, timeout: float = 15.0) -> None:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise MqttError(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from None
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise MqttError(f"MQTT broker at {self.host}:{self.port} did not accept us within {timeout:.0f} s")

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> paho.MQTTMessageInfo:
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def flush(self, infos: list[paho.MQTTMessageInfo], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
