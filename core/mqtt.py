"""MQTT through paho-mqtt 2.x (MQTT 5). The only paho module.

:class:`Subscriber` is ingest's durable session: stable client id, ``clean_start=False`` with a
session expiry, QoS 1, manual acknowledgement, and a re-subscribe in ``on_connect`` (Mosquitto
2.0.11 does not restore a durable shared subscription). A received message becomes an
immutable :class:`MqttMessage`; the callback never lets an exception reach paho.

Faults: paho connects in the background and reconnects with backoff by itself; a lost broker
is logged once per outage (``core.outage``). The keepalive is short, so a silent partition is
noticed within seconds. A message remembers the connection it came on (``session``): after a
reconnect its message id may name another message, so :meth:`Subscriber.ack` drops a stale
acknowledgement (the broker redelivers that message; the consumer stores idempotently).
Memory: with ``max_held_bytes`` the subscriber stops reading while its consumer holds that many
payload bytes not yet released (:meth:`Subscriber.release`; the broker keeps the rest), since Mosquitto
2.0.11 overruns our Receive Maximum when acknowledgements come in bursts.
Leaving: :meth:`Subscriber.leave` unsubscribes (a shared subscription's broker stops sending us
our share), :meth:`Subscriber.stop` can end the session with it, so nothing is queued for a
member that is gone.
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
from paho.mqtt.reasoncodes import ReasonCode

from core.outage import Outage

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600
RECEIVE_MAXIMUM = 2000
KEEPALIVE_S = 10  # the broker and we notice a silent connection within 1.5 x this
CONNECT_TIMEOUT_S = 5.0
KEPT_OF_OVERSIZE = 4096  # bytes kept of a payload over the subscriber's limit (for the reject's copy)
ROOM_WAIT_S = 4.0
"""At most this long per message, paho's thread waits for the consumer to make room (``max_held_bytes``);
well under the keepalive, so the connection stays alive (pings, acknowledgements) even when the
consumer cannot move (Kafka down): the budget is then overrun by a message every few seconds."""


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
    session: int = 0
    """Which connection delivered it: its ``mid`` means something only on that connection."""
    size: int = -1
    """The payload's size on the wire; larger than ``len(payload)`` when the subscriber kept
    only the start of an oversized payload (``max_payload``). -1: ``len(payload)``."""

    @property
    def wire_size(self) -> int:
        return len(self.payload) if self.size < 0 else self.size

    @property
    def token(self) -> AckToken:
        """What acknowledging this message takes, without its payload."""
        return AckToken(self.mid, self.qos, self.session)


@dataclass(frozen=True, slots=True)
class AckToken:
    """A message to acknowledge later, without its payload: ingest keeps these while Kafka confirms
    a round, so a burst of large messages is not held twice (payload and the records made of it)."""

    mid: int
    qos: int
    session: int


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
    client.connect_timeout = CONNECT_TIMEOUT_S
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
        *,
        max_payload: int | None = None,
        max_held_bytes: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.topic_filters = (topic_filter,) if isinstance(topic_filter, str) else tuple(topic_filter)
        self._deliver = on_message
        self.max_payload = max_payload
        self.max_held_bytes = max_held_bytes
        """Payload bytes delivered and not yet released (:meth:`release`) by the consumer, at most (about): past
        it, paho's thread stops reading, so the broker and TCP hold the rest. Mosquitto 2.0.11 does not
        keep to our Receive Maximum when acknowledgements come in bursts (5,763 unacknowledged
        messages seen at 2,000), so this, not the Receive Maximum, bounds a consumer's memory."""
        self._held_bytes = 0
        self._room = threading.Condition()
        self.room_waits = 0  # messages that waited for room
        self.connected = threading.Event()
        """Set while connected and subscribed (the broker confirmed the subscription)."""
        self.left = threading.Event()
        """Set once the broker confirmed :meth:`leave`'s unsubscribe."""
        self.callback_errors = 0
        self.stale_acks = 0
        self.session = 0
        self._leaving = False
        self._lock = threading.Lock()
        self.outage = Outage("MQTT broker", log, f"FOREWARN_MQTT_URL (mqtt://{host}:{port}) and that Mosquitto runs")
        self._client = _client(client_id, username, password)
        self._client.manual_ack_set(True)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = self._on_unsubscribe

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        with self._lock:
            self.session += 1
        if getattr(reason, "is_failure", False):
            self.outage.failed(ConnectionRefusedError(str(reason)), "connecting")
            return
        self.outage.recovered()
        if self._leaving:
            return
        client.subscribe([(topic_filter, 1) for topic_filter in self.topic_filters])

    def _on_subscribe(
        self, client: paho.Client, userdata: object, mid: int, codes: list[ReasonCode], props: Properties
    ) -> None:
        refused = [str(c) for c in codes if getattr(c, "is_failure", False)]
        if refused:
            log.error(
                "MQTT broker %s:%s refused the subscription to %s: %s; check the ACL for client %s",
                self.host,
                self.port,
                ", ".join(self.topic_filters),
                ", ".join(refused),
                self.client_id,
            )
            return
        log.info("subscribed to %s on %s:%s", ", ".join(self.topic_filters), self.host, self.port)
        self.connected.set()

    def _on_unsubscribe(self, client: paho.Client, userdata: object, mid: int, codes: object, props: object) -> None:
        self.left.set()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        self.outage.failed(ConnectionError(f"cannot reach {self.host}:{self.port}"), "connecting")

    def _on_disconnect(
        self, client: paho.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.connected.clear()
        with self._lock:
            self.session += 1  # the message ids of the lost connection mean nothing on the next
        if not self._leaving:
            self.outage.failed(ConnectionError(f"disconnected: {reason}"), "receiving")

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        # paho's ``msg.topic`` raises UnicodeDecodeError on a topic that is not UTF-8: decode
        # the raw bytes ourselves, so such a message still reaches ingest (refused, acknowledged)
        raw_topic: bytes = msg._topic
        try:
            topic, utf8 = raw_topic.decode("utf-8"), True
        except UnicodeDecodeError:
            topic, utf8 = raw_topic.decode("utf-8", errors="backslashreplace"), False
            log.warning("message on a topic that is not UTF-8: %s payload %r", topic[:200], bytes(msg.payload[:120]))
        payload, size = bytes(msg.payload), -1
        if self.max_payload is not None and len(payload) > self.max_payload:
            payload, size = payload[:KEPT_OF_OVERSIZE], len(payload)  # refused anyway: hold no more of it
        self._make_room(len(payload))
        try:
            self._deliver(
                MqttMessage(
                    topic, payload, msg.qos, msg.mid, bool(msg.retain), time.monotonic(), utf8, self.session, size
                )
            )
        except Exception:  # the callback must never raise into paho
            self.release(len(payload))
            self.callback_errors += 1
            log.exception("message handler failed for topic %s payload %r", topic[:200], bytes(msg.payload[:120]))

    def _make_room(self, size: int) -> None:
        """On paho's thread: wait (at most :data:`ROOM_WAIT_S`) until the consumer holds few enough
        bytes for ``size`` more, then count them as held."""
        limit = self.max_held_bytes
        if limit is None:
            return
        with self._room:
            if self._held_bytes > 0 and self._held_bytes + size > limit and not self._leaving:
                self.room_waits += 1
                self._room.wait_for(
                    lambda: self._held_bytes + size <= limit or self._held_bytes == 0 or self._leaving, ROOM_WAIT_S
                )
            self._held_bytes += size

    def release(self, nbytes: int) -> None:
        """The consumer is done with ``nbytes`` of payload (thread-safe): room for more messages."""
        if self.max_held_bytes is None:
            return
        with self._room:
            self._held_bytes = max(0, self._held_bytes - nbytes)
            self._room.notify_all()

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    def start(self) -> None:
        """Connect and subscribe in the background; paho retries until the broker answers
        (``connected`` is set once subscribed; an outage is logged once, by ``outage``)."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        # at most this many unacknowledged messages on their way to us: the broker holds the
        # rest, so a burst cannot swell ingest's memory (acks come once Kafka has the records)
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S, clean_start=False, properties=props)
        self._client.loop_start()

    def ack(self, message: MqttMessage | AckToken) -> bool:
        """Acknowledge a message once what came of it is safely in Kafka (thread-safe). A message
        of an earlier connection is not acknowledged (its ``mid`` may now name another message;
        the broker redelivers it): returns False then."""
        if message.qos == 0:
            return True
        with self._lock:
            if message.session != self.session:
                self.stale_acks += 1
                return False
            self._client.ack(message.mid, message.qos)
        return True

    def leave(self) -> None:
        """Unsubscribe from the filters (a clean leave: the broker stops giving us a share; what
        it already queued for us still arrives). ``left`` is set once the broker confirms."""
        self._leaving = True
        if self.connected.is_set():
            self._client.unsubscribe(list(self.topic_filters))

    def stop(self, end_session: bool = False, timeout: float = 2.0) -> None:
        """Disconnect. ``end_session``: the session ends with the connection (session expiry 0):
        the broker keeps nothing for us; otherwise it keeps our unacknowledged messages and
        subscriptions for ``SESSION_EXPIRY_S`` and redelivers them when this client id returns.
        Waits at most ``timeout`` for paho's thread (it may be inside a connect attempt)."""
        self._leaving = True
        with self._room:
            self._room.notify_all()  # paho's thread may be waiting for room
        props = None
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self._client.disconnect(properties=props)
        stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(timeout)


NO_MATCHING_SUBSCRIBERS = 0x10
"""A PUBACK's "accepted, but no subscriber matched": nobody will get the message."""


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
        self._client.on_publish = self._on_publish
        self._not_taken: dict[int, str] = {}  # mid → why the broker's PUBACK says nobody took it

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        # paho calls this before the message counts as published, so delivered() sees the reason
        code = int(getattr(reason, "value", 0) or 0)
        if code >= 0x80 or code == NO_MATCHING_SUBSCRIBERS:
            self._not_taken[mid] = str(reason)
        else:
            self._not_taken.pop(mid, None)

    def delivered(self, info: paho.MQTTMessageInfo) -> bool | None:
        """Whether the broker took a QoS 1 message for someone: ``None`` while no PUBACK came (or
        the publish failed: :class:`RuntimeError`/:class:`ValueError` from paho), ``False`` when
        the PUBACK refused it or said no subscriber matched (0x10: e.g. Mosquitto 2.0 right after a
        restart, before ingest has subscribed again — a device should send it again), ``True``
        when it was taken."""
        if not info.is_published():
            return None
        return info.mid not in self._not_taken

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
