"""The wire contract every part of forewarn shares.

MQTT topics, the telemetry and status payloads, the metric catalog with its plausible ranges,
the Kafka topic names and the JSON records that travel on them. Pure: no I/O, no clock (the caller
passes ``now``). See ``DESIGN.md`` → *Wire contract*; change a name here only together with
every part that uses it.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from core.lifecycle import Action

CONTRACT_VERSION = 1

SEGMENT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TOPIC_PREFIX = "forewarn/v1"
TELEMETRY_FILTER = f"{TOPIC_PREFIX}/+/+/telemetry"
SHARED_GROUP = "forewarn-ingest"
SHARED_TELEMETRY_FILTER = f"$share/{SHARED_GROUP}/{TELEMETRY_FILTER}"
STATUS_FILTER = f"{TOPIC_PREFIX}/+/+/status"
SHARED_STATUS_FILTER = f"$share/{SHARED_GROUP}/{STATUS_FILTER}"

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_BATCH = 1000
MAX_FUTURE_MS = 5 * 60 * 1000
DEFAULT_RETENTION_DAYS = 30
MAX_STATUS_BYTES = 1024
STATUS_STATES = ("online", "offline")
INT64_MAX = 2**63 - 1
"""``seq`` and every time are stored as PostgreSQL ``bigint``: a larger value is refused at the edge."""

REJECT_REASONS = frozenset(
    {
        # the topic
        "bad_topic",
        "bad_tenant",
        "bad_device",
        "unknown_device",
        # the whole payload
        "too_large",
        "malformed_json",
        "bad_shape",
        "batch_too_large",
        "bad_status",
        # one reading
        "missing_ts",
        "bad_ts",
        "future_ts",
        "too_old",
        "bad_seq",
        "unknown_metric",
        "bad_value",
        "not_finite",
        "out_of_range",
        # a Kafka record (check_readings_record)
        "bad_version",
        "bad_kind",
    }
)
"""Every reason a refusal can carry (``ContractError.reason``, ``Rejected.reason``)."""

# Kafka topics (key "tenant/device"; every topic has the same partition count).
TOPIC_READINGS = "forewarn.readings"
TOPIC_REJECTS = "forewarn.rejects"
TOPIC_WARNINGS = "forewarn.warnings"
TOPIC_STATUS = "forewarn.status"  # devices' online / offline statuses, forwarded by ingest
TOPIC_TICKS = "forewarn.ticks"  # the worker's clock: "check this device for silence now"
KAFKA_TOPICS = (TOPIC_READINGS, TOPIC_REJECTS, TOPIC_WARNINGS, TOPIC_STATUS, TOPIC_TICKS)

DEVICE_KINDS = ("vehicle", "home", "equipment", "coldchain")
LOCALES = ("zh-CN", "en")


@dataclass(frozen=True, slots=True)
class Metric:
    """One entry of the metric catalog: the unit is in the name, the range is enforced."""

    name: str
    kind: Literal["number", "bool"]
    low: float = -math.inf
    high: float = math.inf
    description: str = ""


def _n(name: str, low: float, high: float, description: str) -> Metric:
    return Metric(name, "number", low, high, description)


def _b(name: str, description: str) -> Metric:
    return Metric(name, "bool", 0, 1, description)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        # vehicle
        _n("speed_kmh", 0, 300, "vehicle speed"),
        _n("speed_limit_kmh", 0, 150, "posted speed limit at the position"),
        _n("accel_long_g", -3, 3, "longitudinal acceleration (negative = braking)"),
        _n("accel_lat_g", -3, 3, "lateral acceleration"),
        _n("impact_g", 0, 100, "impact magnitude"),
        _n("lat", -90, 90, "latitude"),
        _n("lon", -180, 180, "longitude"),
        _n("heading_deg", 0, 360, "heading"),
        _b("ignition", "ignition on"),
        _n("engine_rpm", 0, 10000, "engine speed"),
        _n("coolant_temp_c", -50, 150, "engine coolant temperature"),
        _n("battery_v", 0, 60, "vehicle battery voltage"),
        # home
        _n("temp_c", -60, 80, "indoor / box temperature"),
        _n("outdoor_temp_c", -60, 60, "outdoor temperature"),
        _n("pipe_temp_c", -50, 100, "water pipe surface temperature"),
        _n("humidity_pct", 0, 100, "relative humidity"),
        _b("water_leak", "leak sensor wet"),
        _n("flow_lpm", 0, 500, "water flow"),
        _b("smoke", "smoke detected"),
        _n("co_ppm", 0, 10000, "carbon monoxide"),
        _n("mains_v", 0, 500, "mains voltage"),
        # equipment
        _n("vibration_mm_s", 0, 200, "vibration velocity RMS"),
        _n("bearing_temp_c", -40, 250, "bearing temperature"),
        _n("current_a", 0, 2000, "motor current"),
        _n("pressure_kpa", 0, 100000, "pressure"),
        # cold chain
        _b("door_open", "door open"),
        _b("compressor_on", "compressor running"),
        # any device
        _n("battery_pct", 0, 100, "device battery"),
        _n("rssi_dbm", -150, 0, "radio signal strength"),
    )
}


class ContractError(ValueError):
    """A message breaks the wire contract; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TelemetryTopic:
    tenant: str
    device: str

    @property
    def key(self) -> str:
        return device_key(self.tenant, self.device)


def device_key(tenant: str, device: str) -> str:
    """The Kafka key of a device: its readings stay in order on one partition."""
    return f"{tenant}/{device}"


def telemetry_topic(tenant: str, device: str) -> str:
    return f"{TOPIC_PREFIX}/{tenant}/{device}/telemetry"


def status_topic(tenant: str, device: str) -> str:
    return f"{TOPIC_PREFIX}/{tenant}/{device}/status"


def check_segment(value: str, what: str) -> str:
    # fullmatch: the pattern's ``$`` alone would also accept a trailing newline ("acme\n")
    if not isinstance(value, str) or not SEGMENT_RE.fullmatch(value):
        raise ContractError(f"bad_{what}", f"{what} {_shown(value)} must match {SEGMENT_RE.pattern}")
    return value


def _shown(value: Any, limit: int = 40) -> str:
    """A short, safe picture of a refused value for a reason's detail: a scalar's repr cut to
    ``limit``, a container's type only (``str()`` of a deeply nested list raises RecursionError)."""
    if isinstance(value, (str, bytes)):
        return repr(value[:limit])
    if isinstance(value, (bool, float)) or value is None:
        return repr(value)
    if isinstance(value, int):
        text = str(value) if -(10**30) < value < 10**30 else f"an integer of {value.bit_length()} bits"
        return text[:limit]
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    return f"a {type(value).__name__}"


def parse_telemetry_topic(topic: str) -> TelemetryTopic:
    return _device_topic(topic, "telemetry", TELEMETRY_FILTER)


def parse_status_topic(topic: str) -> TelemetryTopic:
    """``forewarn/v1/{tenant}/{device}/status`` → the device (:class:`ContractError` otherwise)."""
    return _device_topic(topic, "status", STATUS_FILTER)


def is_status_topic(topic: str) -> bool:
    """Whether ``topic`` is meant as a status topic (its last segment is ``status``)."""
    return topic.endswith("/status")


def _device_topic(topic: str, leaf: str, pattern: str) -> TelemetryTopic:
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_PREFIX or parts[4] != leaf:
        raise ContractError("bad_topic", f"topic {topic[:200]!r} is not {pattern}")
    return TelemetryTopic(check_segment(parts[2], "tenant"), check_segment(parts[3], "device"))


@dataclass(frozen=True, slots=True)
class Reading:
    """One timestamped set of metric values from one device (``ts`` in epoch ms)."""

    ts: int
    metrics: dict[str, float]
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ts": self.ts, "metrics": self.metrics}
        if self.seq is not None:
            out["seq"] = self.seq
        return out


@dataclass(frozen=True, slots=True)
class Rejected:
    """A part of a message that was not accepted, with the reason a person can act on."""

    reason: str
    detail: str
    item: Any = None


@dataclass(slots=True)
class ParsedPayload:
    readings: list[Reading] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def parse_ts(raw: Any) -> int:
    """Epoch milliseconds or RFC 3339 (UTC when no offset) → epoch milliseconds."""
    if isinstance(raw, bool):
        raise ContractError("bad_ts", "ts must be epoch milliseconds or RFC 3339, not a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ContractError("bad_ts", "ts is not finite")
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp() * 1000)
        except (ValueError, OverflowError):
            raise ContractError("bad_ts", f"ts {raw[:40]!r} is not RFC 3339") from None
    raise ContractError("bad_ts", f"ts must be epoch milliseconds or RFC 3339, got {type(raw).__name__}")


def check_metric(name: Any, value: Any) -> float:
    """Validate one metric against the catalog; booleans are stored as 0.0 / 1.0."""
    if not isinstance(name, str) or name not in METRICS:
        raise ContractError("unknown_metric", f"metric {_shown(name, 64)} is not in the catalog")
    metric = METRICS[name]
    if metric.kind == "bool":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, int) and value in (0, 1):
            return float(value)
        raise ContractError("bad_value", f"{name} must be true or false, got {_shown(value)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError("bad_value", f"{name} must be a number, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise ContractError("out_of_range", f"{name}={_shown(value)} is outside the plausible range") from None
    if not math.isfinite(number):
        raise ContractError("not_finite", f"{name} is {value!r}; only finite numbers are accepted")
    if not metric.low <= number <= metric.high:
        raise ContractError(
            "out_of_range",
            f"{name}={number:g} is outside the plausible range [{metric.low:g}, {metric.high:g}]",
        )
    return number


def _reading(item: Any, now_ms: int, oldest_ms: int) -> Reading:
    if not isinstance(item, dict):
        raise ContractError("bad_shape", "a reading must be an object with ts and metrics")
    if "ts" not in item:
        raise ContractError("missing_ts", "a reading needs ts")
    ts = parse_ts(item["ts"])
    _check_ts_window(ts, now_ms, oldest_ms)
    seq = _check_seq(item.get("seq"))
    metrics = item.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ContractError("bad_shape", "metrics must be a non-empty object")
    checked = {name: check_metric(name, value) for name, value in metrics.items()}
    return Reading(ts=ts, metrics=checked, seq=seq)


def _check_ts_window(ts: int, now_ms: int, oldest_ms: int) -> None:
    """A reading's time: not more than 5 minutes ahead of ``now``, not older than ``oldest_ms``."""
    if ts > now_ms + MAX_FUTURE_MS:
        ahead = "years" if ts - now_ms > 10**15 else f"{(ts - now_ms) / 1000:.0f} s"
        raise ContractError("future_ts", f"ts is {ahead} in the future (more than 5 minutes)")
    if ts < oldest_ms:
        raise ContractError("too_old", "ts is older than the retention window")


def _check_seq(seq: Any) -> int | None:
    """``seq``: absent, or an integer in [0, 2^63 - 1] (it is stored as a bigint)."""
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= INT64_MAX):
        raise ContractError("bad_seq", f"seq must be an integer from 0 to 2^63-1, got {_shown(seq)}")
    return seq


def parse_payload(payload: bytes, now_ms: int, retention_days: int = DEFAULT_RETENTION_DAYS) -> ParsedPayload:
    """Validate a telemetry payload into readings; what is invalid is listed with its reason.

    A whole-message problem (size, JSON, shape) raises :class:`ContractError`; a bad reading
    inside a batch is rejected alone, so nothing valid is lost.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError("too_large", f"payload is {len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}")
    try:
        doc = orjson.loads(payload)  # rejects NaN / Infinity literals, unlike the stdlib
    except orjson.JSONDecodeError as exc:
        raise ContractError("malformed_json", str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise ContractError("bad_shape", "payload must be a JSON object")
    if "batch" in doc:
        items = doc["batch"]
        if not isinstance(items, list) or not items:
            raise ContractError("bad_shape", "batch must be a non-empty array")
        if len(items) > MAX_BATCH:
            raise ContractError("batch_too_large", f"batch has {len(items)} readings, limit {MAX_BATCH}")
    else:
        items = [doc]
    oldest_ms = now_ms - retention_days * 86_400_000
    out = ParsedPayload()
    for item in items:
        try:
            out.readings.append(_reading(item, now_ms, oldest_ms))
        except ContractError as exc:
            out.rejected.append(Rejected(exc.reason, exc.detail, item))
    return out


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What a device says on its retained status topic (and in its MQTT last will).

    ``ts`` is the device's own time of the statement, when it gave one: informational only. A
    last will is registered when the device connects, so its time would be that of the
    connection, not of the loss; the pipeline times a status by its arrival at ingest.
    """

    state: Literal["online", "offline"]
    ts: int | None = None


def parse_status(payload: bytes, now_ms: int) -> DeviceStatus:
    """Validate a status payload: ``online`` or ``offline`` (the plain words a last will
    carries), or a JSON object ``{"state": "online" | "offline", "ts": …}`` with an optional
    ``ts`` (epoch ms or RFC 3339, not more than 5 minutes ahead). Refusals: ``too_large``,
    ``malformed_json``, ``bad_status`` (anything else, an empty payload — a cleared retained
    status — included), ``bad_ts``, ``future_ts``.
    """
    if len(payload) > MAX_STATUS_BYTES:
        raise ContractError("too_large", f"status is {len(payload)} bytes, limit {MAX_STATUS_BYTES}")
    text = payload.strip()
    if text == b"online":
        return DeviceStatus("online")
    if text == b"offline":
        return DeviceStatus("offline")
    if not text.startswith(b"{"):
        shown = text[:40].decode("utf-8", errors="replace")
        raise ContractError("bad_status", f"status {shown!r} is not online, offline or a JSON object with a state")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ContractError("malformed_json", str(exc)[:200]) from None
    if not isinstance(doc, dict) or doc.get("state") not in STATUS_STATES:
        raise ContractError("bad_status", 'a JSON status needs "state": "online" or "offline"')
    extra = sorted(set(doc) - {"state", "ts"})
    if extra:
        raise ContractError("bad_status", f"a status has only state and ts, not {', '.join(extra)[:80]}")
    ts = None
    if doc.get("ts") is not None:
        ts = parse_ts(doc["ts"])
        if ts < 0:
            raise ContractError("bad_ts", "a status's ts is before 1970: send epoch milliseconds or RFC 3339")
        _check_ts_window(ts, now_ms, 0)
    return DeviceStatus(doc["state"], ts)


# ---------------------------------------------------------------- Kafka records (JSON, "v")


def readings_record(tenant: str, device: str, kind: str, readings: list[Reading], ingested_ms: int) -> bytes:
    return orjson.dumps(
        {
            "v": CONTRACT_VERSION,
            "tenant": tenant,
            "device": device,
            "kind": kind,
            "ingested_at": ingested_ms,
            "readings": [r.to_json() for r in readings],
        }
    )


@dataclass(frozen=True, slots=True)
class ReadingsBatch:
    tenant: str
    device: str
    kind: str
    readings: tuple[Reading, ...]
    ingested_at: int

    @property
    def key(self) -> str:
        return device_key(self.tenant, self.device)


def decode_readings_record(raw: bytes) -> ReadingsBatch:
    """Decode a ``forewarn.readings`` record (its shape; ingest has validated the values)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError("malformed_json", str(exc)[:200]) from None
    if not isinstance(doc, dict) or doc.get("v") != CONTRACT_VERSION:
        raise ContractError("bad_version", f"expected a v={CONTRACT_VERSION} readings record")
    try:
        readings = tuple(
            Reading(ts=int(r["ts"]), metrics={k: float(v) for k, v in r["metrics"].items()}, seq=r.get("seq"))
            for r in doc["readings"]
        )
        return ReadingsBatch(
            tenant=str(doc["tenant"]),
            device=str(doc["device"]),
            kind=str(doc["kind"]),
            readings=readings,
            ingested_at=int(doc["ingested_at"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContractError("bad_shape", f"readings record: {exc}") from None


def check_readings_record(raw: bytes, now_ms: int | None = None) -> ReadingsBatch:
    """Decode a ``forewarn.readings`` record and check it against the contract as ingest does:
    for a consumer that does not trust whoever wrote to Kafka (the worker re-checks each record).

    Strict where :func:`decode_readings_record` is lenient: tenant and device match
    :data:`SEGMENT_RE`, ``kind`` is a device kind, ``ingested_at``, every ``ts`` and ``seq`` are
    integers within a signed 64-bit bigint, no ``ts`` is more than 5 minutes after
    ``ingested_at`` (nor ``ingested_at`` after ``now_ms``, when given), every metric is in the
    catalog, finite and within its range, and there is at least one reading. Raises
    :class:`ContractError` with a reason of :data:`REJECT_REASONS` for the first thing wrong.
    """
    doc = _record(raw, "readings")
    tenant = check_segment(doc.get("tenant"), "tenant")  # type: ignore[arg-type]
    device = check_segment(doc.get("device"), "device")  # type: ignore[arg-type]
    kind = doc.get("kind")
    if kind not in DEVICE_KINDS:
        raise ContractError("bad_kind", f"kind {_shown(kind)} is not one of {', '.join(DEVICE_KINDS)}")
    ingested = doc.get("ingested_at")
    if isinstance(ingested, bool) or not isinstance(ingested, int) or not 0 <= ingested <= INT64_MAX:
        raise ContractError("bad_ts", f"ingested_at must be epoch milliseconds, got {_shown(ingested)}")
    if now_ms is not None and ingested > now_ms + MAX_FUTURE_MS:
        raise ContractError("future_ts", "ingested_at is more than 5 minutes in the future")
    items = doc.get("readings")
    if not isinstance(items, list) or not items:
        raise ContractError("bad_shape", "a readings record needs a non-empty readings array")
    readings = []
    for item in items:
        if not isinstance(item, dict):
            raise ContractError("bad_shape", "a reading must be an object with ts and metrics")
        ts = item.get("ts")
        if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts <= INT64_MAX:
            raise ContractError("bad_ts", f"ts must be epoch milliseconds, got {_shown(ts)}")
        _check_ts_window(ts, ingested, 0)
        metrics = item.get("metrics")
        if not isinstance(metrics, dict) or not metrics:
            raise ContractError("bad_shape", "metrics must be a non-empty object")
        checked = {}
        for name, value in metrics.items():
            bounds = _NUMERIC_BOUNDS.get(name)
            # the common case cheaply: a float within a numeric metric's range (value - value is
            # 0.0 only when it is finite); anything else takes the whole check and its reason
            if bounds is not None and type(value) is float and bounds[0] <= value <= bounds[1] and value - value == 0.0:
                checked[name] = value
            else:
                checked[name] = _stored_metric(name, value)
        readings.append(Reading(ts=ts, metrics=checked, seq=_check_seq(item.get("seq"))))
    return ReadingsBatch(tenant, device, kind, tuple(readings), ingested)


_NUMERIC_BOUNDS: dict[str, tuple[float, float]] = {
    name: (metric.low, metric.high) for name, metric in METRICS.items() if metric.kind != "bool"
}
"""Numeric metric → its plausible range, for :func:`check_readings_record`'s fast path."""


def _stored_metric(name: Any, value: Any) -> float:
    """A metric as a readings record carries it: booleans were written as 0.0 / 1.0."""
    if isinstance(name, str) and name in METRICS and METRICS[name].kind == "bool" and value in (0.0, 1.0):
        if not isinstance(value, (int, float)):
            raise ContractError("bad_value", f"{name} must be 0 or 1, got {_shown(value)}")
        return float(value)
    return check_metric(name, value)


def status_record(
    tenant: str, device: str, kind: str, status: DeviceStatus, received_ms: int, retained: bool = False
) -> bytes:
    """A ``forewarn.status`` record: a device's status as ingest received it (``received_at``,
    ingest's clock, times it; ``retained``: the broker replayed it on subscribing, no news)."""
    return orjson.dumps(
        {
            "v": CONTRACT_VERSION,
            "tenant": tenant,
            "device": device,
            "kind": kind,
            "state": status.state,
            "ts": status.ts,
            "received_at": received_ms,
            "retained": retained,
        }
    )


@dataclass(frozen=True, slots=True)
class StatusRecord:
    tenant: str
    device: str
    kind: str
    state: Literal["online", "offline"]
    received_at: int
    ts: int | None = None
    retained: bool = False

    @property
    def key(self) -> str:
        return device_key(self.tenant, self.device)


def decode_status_record(raw: bytes) -> StatusRecord:
    """Decode a ``forewarn.status`` record."""
    doc = _record(raw, "status")
    try:
        state = doc["state"]
        if state not in STATUS_STATES:
            raise ValueError(f"state {state!r}")
        return StatusRecord(
            tenant=str(doc["tenant"]),
            device=str(doc["device"]),
            kind=str(doc["kind"]),
            state=state,
            received_at=int(doc["received_at"]),
            ts=None if doc.get("ts") is None else int(doc["ts"]),
            retained=bool(doc.get("retained", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError("bad_shape", f"status record: {exc}") from None


def tick_record(tenant: str, device: str, kind: str, now_ms: int) -> bytes:
    """A ``forewarn.ticks`` record: the worker's clock asks for a device's silence check at
    ``now`` (a replay decides the same, since the time travels in the record)."""
    return orjson.dumps({"v": CONTRACT_VERSION, "tenant": tenant, "device": device, "kind": kind, "now": now_ms})


@dataclass(frozen=True, slots=True)
class TickRecord:
    tenant: str
    device: str
    kind: str
    now: int

    @property
    def key(self) -> str:
        return device_key(self.tenant, self.device)


def decode_tick_record(raw: bytes) -> TickRecord:
    """Decode a ``forewarn.ticks`` record."""
    doc = _record(raw, "tick")
    try:
        return TickRecord(str(doc["tenant"]), str(doc["device"]), str(doc["kind"]), int(doc["now"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError("bad_shape", f"tick record: {exc}") from None


def _record(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError("malformed_json", str(exc)[:200]) from None
    if not isinstance(doc, dict) or doc.get("v") != CONTRACT_VERSION:
        raise ContractError("bad_version", f"expected a v={CONTRACT_VERSION} {what} record")
    return doc


REJECT_COPY_BYTES = 4096
"""How much of a refused payload travels in its reject record (bytes as text; a refused item as
JSON cut to about this size)."""
_COPY_DEPTH = 16
_COPY_ITEMS = 64
_COPY_TEXT = 256


def reject_record(reason: str, detail: str, topic: str, payload: Any, received_ms: int) -> bytes:
    """A ``forewarn.rejects`` record: why, where from, and a copy of what was refused.

    It never fails and stays small whatever was refused: the copy is bounded in depth, items and
    text (a reading nested hundreds of levels deep would break any encoder, and a refused message
    must not stop ingest nor come back on every restart), every text is made valid UTF-8."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        copy: Any = _text(bytes(payload[:REJECT_COPY_BYTES]).decode("utf-8", errors="replace"), REJECT_COPY_BYTES)
    else:
        copy = _bounded(payload, _COPY_DEPTH, [REJECT_COPY_BYTES])
    doc = {
        "v": CONTRACT_VERSION,
        "reason": _text(str(reason), 64),
        "detail": _text(str(detail), 500),
        "topic": _text(str(topic), 1024),
        "received_at": int(received_ms),
        "payload": copy,
    }
    try:
        return orjson.dumps(doc)
    except (TypeError, ValueError, orjson.JSONEncodeError):  # not expected: keep the reason, lose the copy
        doc["payload"] = None
        return orjson.dumps(doc, default=str)


def _text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, valid UTF-8 (a lone surrogate becomes ``?``)."""
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def _bounded(value: Any, depth: int, budget: list[int]) -> Any:
    """A JSON-safe copy of ``value``: at most ``depth`` levels, ``_COPY_ITEMS`` items per
    container, ``_COPY_TEXT`` characters per text, about ``budget[0]`` characters in all; what
    is cut is marked with ``"…"``. Integers beyond 64 bits become text (JSON encoders refuse them)."""
    budget[0] -= 8
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else _shown(value)
    if isinstance(value, str):
        budget[0] -= min(len(value), _COPY_TEXT)
        return _text(value, _COPY_TEXT)
    if depth <= 0 or budget[0] <= 0:
        return "…"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= _COPY_ITEMS or budget[0] <= 0:
                out["…"] = f"{len(value) - i} more"
                break
            out[_text(str(k), _COPY_TEXT)] = _bounded(v, depth - 1, budget)
        return out
    if isinstance(value, (list, tuple)):
        items: list[Any] = []
        for i, v in enumerate(value):
            if i >= _COPY_ITEMS or budget[0] <= 0:
                items.append(f"… {len(value) - i} more")
                break
            items.append(_bounded(v, depth - 1, budget))
        return items
    return _shown(value)


@dataclass(frozen=True, slots=True)
class RejectRecord:
    """A ``forewarn.rejects`` record as kept for integrators: who it came from (read from the
    topic; ``""`` when the topic names no tenant or device that could be one), why, and a copy."""

    tenant: str
    device: str
    reason: str
    detail: str
    topic: str
    received_at: int
    payload: str


REJECT_COPY_CHARS = 1024
"""How much of a refused payload is kept with its reject."""


def reject_origin(topic: str) -> tuple[str, str]:
    """The (tenant, device) a refused message's topic names, ``("", "")`` when it names none.

    >>> reject_origin("forewarn/v1/acme/home-1/telemetry"), reject_origin("x/y")
    (('acme', 'home-1'), ('', ''))
    """
    parts = topic.split("/")
    if len(parts) == 5 and "/".join(parts[:2]) == TOPIC_PREFIX and SEGMENT_RE.fullmatch(parts[2]):
        return parts[2], parts[3] if SEGMENT_RE.fullmatch(parts[3]) else ""
    return "", ""


def _printable(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    # PostgreSQL text holds no NUL, and UTF-8 no lone surrogate (a non-UTF-8 topic decoded loosely)
    return text[:limit].replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def decode_reject_record(raw: bytes) -> RejectRecord:
    """Decode a ``forewarn.rejects`` record (:func:`reject_record`) for keeping."""
    doc = _record(raw, "reject")
    try:
        topic = _printable(doc["topic"], 300)
        tenant, device = reject_origin(topic)
        payload = doc.get("payload")
        return RejectRecord(
            tenant=tenant,
            device=device,
            reason=_printable(doc["reason"], 64),
            detail=_printable(doc.get("detail") or "", 500),
            topic=topic,
            received_at=int(doc["received_at"]),
            payload="" if payload is None else _printable(payload, REJECT_COPY_CHARS),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError("bad_shape", f"reject record: {exc}") from None


_NAMESPACE = uuid.UUID("6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e")


@dataclass(frozen=True, slots=True)
class WarningEvent:
    """What the decisions publish on ``forewarn.warnings`` (as JSON with a ``v`` field)."""

    warning_id: str
    tenant: str
    device: str
    kind: str
    risk: str
    action: Action
    severity: str
    score: float
    at_ms: int
    opened_at_ms: int
    predicted_loss_at_ms: int | None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def time_to_loss_s(self) -> float | None:
        if self.predicted_loss_at_ms is None:
            return None
        return max(0.0, (self.predicted_loss_at_ms - self.at_ms) / 1000)

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.device}"

    def to_json(self) -> dict[str, Any]:
        return {"v": CONTRACT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> WarningEvent:
        if doc.get("v") != CONTRACT_VERSION:
            raise ValueError(f"expected a v={CONTRACT_VERSION} warning record")
        fields = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        return cls(**fields)


def warning_id(tenant: str, device: str, risk: str, opened_at_ms: int) -> str:
    """Deterministic id: a replayed record decides the same warning, stored once."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant}/{device}/{risk}/{opened_at_ms}"))
