"""Hostile payloads and topics through ingest's validation: nothing escapes, nothing bad gets in.

Hypothesis feeds ``validate_message``, ``validate_status`` and ``Ingest.prepare`` (a round of
messages, as the loop hands it over) topics and payloads an attacker or a broken device could
send: bytes, JSON of every shape, numbers beyond 64 bits, NaN and Infinity (the stdlib writes
them), timestamps of every form, nesting up to and past the JSON parser's depth limit, oversized
payloads. For each: no exception escapes, every refusal carries a reason of
``REJECT_REASONS`` and its reject record can always be built (small, decodable), and every
reading that gets through — and every ``forewarn.readings`` record ``prepare`` makes, decoded
again — is within the contract's bounds, checked here independently of the validator.

10,000 examples in all (the ``max_examples`` below: 3,300 + 3,300 + 2,200 + 600 rounds of up to
8 messages + 600 rounds of topics that are not UTF-8), under a minute.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import (
    DEVICE_KINDS,
    INT64_MAX,
    MAX_FUTURE_MS,
    METRICS,
    REJECT_REASONS,
    SEGMENT_RE,
    TOPIC_READINGS,
    TOPIC_REJECTS,
    TOPIC_STATUS,
    Reading,
    check_readings_record,
    decode_readings_record,
    decode_reject_record,
    decode_status_record,
    reject_record,
)
from core.mqtt import MqttMessage
from core.settings import Settings
from ingest import service
from ingest.service import Ingest
from ingest.validate import Verdict, validate_message, validate_status

NOW = 1_763_700_000_000
RETENTION_DAYS = 30
REGISTRY = {"acme/home-1": "home", "acme/car-1": "vehicle", "acme/" + "a" * 64: "equipment", "b/c": "coldchain"}
FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------ strategies

CHARS = st.characters(max_codepoint=0x7FF, exclude_categories=("Cs",)) | st.sampled_from(
    ["\x00", "\n", "/", "+", "#", "$", "\u2028", "\ufeff", "\U0010ffff", "\U0001f525"]
)


def text(max_size: int) -> st.SearchStrategy[str]:
    """Text of every kind that matters here (cheaper to draw than ``st.text()``'s full UTF-8)."""
    return st.text(CHARS, max_size=max_size)


SEGMENTS = st.one_of(
    st.sampled_from(["acme", "home-1", "car-1", "a" * 64, "a" * 65, "Acme", "acme\n", "home-1\n", "", "-x", "+", "#"]),
    text(70),
)
LEAVES = st.sampled_from(["telemetry", "status", "Telemetry", "", "telemetry/x", "status\n"])
TOPICS = st.one_of(
    st.builds(lambda t, d, leaf: f"forewarn/v1/{t}/{d}/{leaf}", SEGMENTS, SEGMENTS, LEAVES),
    st.sampled_from(["forewarn/v1/acme/home-1/telemetry", "forewarn/v1/acme/car-1/telemetry"]),
    text(300),
    st.builds(lambda n: "forewarn/v1/" + "x/" * n + "telemetry", st.integers(0, 3000)),
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, -1, 0, 1, 2]),
    st.floats(),
    st.sampled_from([1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | text(20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(text(10), c, max_size=4),
    max_leaves=8,
)
DATES = st.datetimes().map(lambda d: d.isoformat())
RFC3339 = st.sampled_from(
    [
        "2025-11-21T04:40:00Z",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59.999999-23:59",
        "2025-11-21",
        "2025W47",
        "nan",
        "",
        "\x00",
    ]
)


def ts_strategy(now_ms: int) -> st.SearchStrategy[Any]:
    """Times around ``now`` (accepted and just refused) and everything else."""
    near = st.integers(-(RETENTION_DAYS + 2) * 86_400_000, 2 * MAX_FUTURE_MS).map(lambda off: now_ms + off)
    return st.one_of(near, near.map(float), NUMBERS, RFC3339, DATES, text(40), JSON_VALUES)


EDGES = sorted(
    {
        v
        for m in METRICS.values()
        for v in (m.low, m.high, math.nextafter(m.low, -math.inf), math.nextafter(m.high, math.inf))
    }
)
METRIC_VALUES = st.one_of(
    st.sampled_from(EDGES),  # each metric's range, just in and just out
    st.floats(-100, 400),
    st.booleans(),
    st.sampled_from([0, 1, 2, -1, 0.5, "true", None, [], {}]),
    NUMBERS,
)
METRIC_NAMES = st.one_of(st.sampled_from(sorted(METRICS)), text(20))
METRIC_MAPS = st.dictionaries(METRIC_NAMES, METRIC_VALUES, max_size=6)
SEQS = st.one_of(st.none(), NUMBERS, st.booleans(), text(5))


def reading_strategy(now_ms: int) -> st.SearchStrategy[Any]:
    shaped = st.fixed_dictionaries(
        {"ts": ts_strategy(now_ms), "metrics": METRIC_MAPS}, optional={"seq": SEQS, "extra": JSON_VALUES}
    )
    return st.one_of(shaped, shaped, shaped, JSON_VALUES)


QUOTED_X = '"x"'


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a": ' * depth + leaf + "}" * depth


def deep(depth: int, where: int, now_ms: int) -> bytes:
    """A payload whose refused part is nested ``depth`` levels (the issue's poison: 253+)."""
    good = f'{{"ts": {now_ms}, "metrics": {{"temp_c": 20.5}}}}'
    bad = [
        f'{{"ts": {now_ms}, "metrics": {{"water_leak": {"[" * depth}1{"]" * depth}}}}}',
        nested(depth),
        f'{{"ts": {now_ms}, "metrics": {{"temp_c": 1}}, "seq": {nested(depth)}}}',
        f'{{"ts": {nested(depth)}, "metrics": {{"temp_c": 1}}}}',
        f'{{"ts": {now_ms}, "metrics": {{"temp_c": {nested(depth, QUOTED_X)}}}}}',
    ][where]
    return f'{{"batch": [{good}, {bad}, {good}]}}'.encode()


def payload_strategy(now_ms: int) -> st.SearchStrategy[bytes]:
    reading = reading_strategy(now_ms)
    docs = st.one_of(reading, st.lists(reading, min_size=0, max_size=8).map(lambda b: {"batch": b}), JSON_VALUES)
    return st.one_of(
        docs.map(lambda d: json.dumps(d).encode()),  # the stdlib writes NaN, Infinity, any integer
        docs.map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=3000),
        st.builds(deep, st.integers(1, 1100), st.integers(0, 4), st.just(now_ms)),
        st.sampled_from(
            [
                b'{"ts": 1, "metrics": {"temp_c": "\\ud800"}}',
                b'{"\\udfff": 1}',
                b'{"batch": [' + b"{}," * 1000 + b"{}]}",
                b" " * (256 * 1024 + 1),
                b"\xef\xbb\xbf{}",
            ]
        ),
    )


STATUS_PAYLOADS = st.one_of(
    st.sampled_from([b"online", b"offline", b" offline\n", b"", b"OFFLINE", b"online" * 200]),
    st.binary(max_size=1500),
    st.fixed_dictionaries(
        {"state": st.one_of(st.sampled_from(["online", "offline"]), JSON_VALUES)},
        optional={"ts": ts_strategy(NOW), "x": JSON_VALUES},
    ).map(lambda d: json.dumps(d).encode()),
)

# ------------------------------------------------------------------ the oracle (independent of the validator)


def assert_in_bounds(reading: Reading, now_ms: int) -> None:
    assert now_ms - RETENTION_DAYS * 86_400_000 <= reading.ts <= now_ms + MAX_FUTURE_MS
    assert reading.seq is None or (type(reading.seq) is int and 0 <= reading.seq <= INT64_MAX)
    assert reading.metrics
    for name, value in reading.metrics.items():
        metric = METRICS[name]
        assert type(value) is float and math.isfinite(value), (name, value)
        assert metric.low <= value <= metric.high, (name, value)
        if metric.kind == "bool":
            assert value in (0.0, 1.0)


def assert_sound(verdict: Verdict, topic: str, payload: bytes, now_ms: int) -> None:
    for refusal in verdict.refusals:
        assert refusal.reason in REJECT_REASONS, refusal
        assert refusal.detail and len(refusal.detail) < 2000
        copy = payload if refusal.item is None else refusal.item
        raw = reject_record(refusal.reason, refusal.detail, topic, copy, now_ms)
        assert len(raw) < 16_384, len(raw)
        kept = decode_reject_record(raw)
        assert kept.reason == refusal.reason
    if verdict.readings or verdict.status:
        assert verdict.key in REGISTRY and verdict.kind == REGISTRY[verdict.key]
        assert SEGMENT_RE.fullmatch(verdict.tenant or "") and SEGMENT_RE.fullmatch(verdict.device or "")
    for reading in verdict.readings:
        assert_in_bounds(reading, now_ms)
    if verdict.status is not None and verdict.status.ts is not None:
        assert 0 <= verdict.status.ts <= now_ms + MAX_FUTURE_MS


# ------------------------------------------------------------------ validate_message, validate_status


@settings(FUZZ, max_examples=3300)
@given(TOPICS, payload_strategy(NOW))
def test_any_topic_and_payload_is_refused_with_a_reason_or_accepted_within_bounds(topic: str, payload: bytes) -> None:
    assert_sound(validate_message(topic, payload, REGISTRY, NOW, RETENTION_DAYS), topic, payload, NOW)


@settings(FUZZ, max_examples=3300)
@given(st.sampled_from(sorted(REGISTRY)), payload_strategy(NOW))
def test_any_payload_of_a_registered_device_is_refused_with_a_reason_or_accepted_within_bounds(
    key: str, payload: bytes
) -> None:
    topic = f"forewarn/v1/{key}/telemetry"
    assert_sound(validate_message(topic, payload, REGISTRY, NOW, RETENTION_DAYS), topic, payload, NOW)


@settings(FUZZ, max_examples=2200)
@given(st.one_of(st.sampled_from(sorted(REGISTRY)).map(lambda k: f"forewarn/v1/{k}/status"), TOPICS), STATUS_PAYLOADS)
def test_any_status_is_refused_with_a_reason_or_accepted(topic: str, payload: bytes) -> None:
    assert_sound(validate_status(topic, payload, REGISTRY, NOW), topic, payload, NOW)


# ------------------------------------------------------------------ Ingest.prepare: a round → Kafka records


class Registry:
    async def devices(self) -> dict[str, str]:
        return dict(REGISTRY)

    async def device_kind(self, tenant: str, device: str) -> str | None:
        return REGISTRY.get(f"{tenant}/{device}")


class NoKafka:
    async def send(self, topic: str, key: str, value: bytes) -> asyncio.Future[object]:
        raise AssertionError("prepare does not send")


LOOP = asyncio.new_event_loop()


def prepared(messages: list[MqttMessage]) -> tuple[Ingest, list[tuple[str, str, bytes]]]:
    async def go() -> tuple[Ingest, list[tuple[str, str, bytes]]]:
        edge = Ingest(Settings(retention_days=RETENTION_DAYS), Registry(), NoKafka())  # type: ignore[arg-type]
        edge.registry = dict(REGISTRY)
        edge._registry_at = time.monotonic()
        return edge, await edge.prepare(messages)

    return LOOP.run_until_complete(go())


LIVE_NOW = int(time.time() * 1000)  # prepare reads the clock: the accepted times are around it
ROUND_TOPICS = st.one_of(
    st.sampled_from(
        ["forewarn/v1/acme/home-1/telemetry", "forewarn/v1/acme/car-1/telemetry", "forewarn/v1/b/c/status"]
    ),
    TOPICS,
)
MESSAGES = st.builds(
    lambda topic, payload, retain, utf8: MqttMessage(topic, payload, 1, 1, retain, 0.0, utf8),
    ROUND_TOPICS,
    st.one_of(payload_strategy(LIVE_NOW), STATUS_PAYLOADS),
    st.booleans(),
    st.just(True),
)


def assert_records_sound(messages: list[MqttMessage], edge: Ingest, records: list[tuple[str, str, bytes]]) -> None:
    now_ms = int(time.time() * 1000)
    assert edge.stats.messages == len(messages)
    readings = 0
    for topic, key, raw in records:
        assert len(raw) <= service.MAX_RECORD_BYTES
        if topic == TOPIC_READINGS:
            batch = decode_readings_record(raw)
            assert batch.key == key and key in REGISTRY and batch.kind == REGISTRY[key] in DEVICE_KINDS
            for reading in batch.readings:
                assert_in_bounds(reading, now_ms + 60_000)  # the clock moved a little since prepare
            assert check_readings_record(raw, now_ms + 60_000).readings == batch.readings
            readings += len(batch.readings)
        elif topic == TOPIC_REJECTS:
            kept = decode_reject_record(raw)
            assert kept.reason in REJECT_REASONS
        else:
            assert topic == TOPIC_STATUS and key in REGISTRY
            decode_status_record(raw)
    assert readings == edge.stats.readings
    assert sum(edge.stats.rejects.values()) == sum(1 for t, _, _ in records if t == TOPIC_REJECTS)


@settings(FUZZ, max_examples=600)
@given(st.lists(MESSAGES, min_size=1, max_size=8))
def test_any_round_becomes_sound_kafka_records(messages: list[MqttMessage]) -> None:
    edge, records = prepared(messages)
    assert_records_sound(messages, edge, records)


@settings(FUZZ, max_examples=600)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=5), st.lists(st.binary(max_size=300), min_size=1))
def test_topics_that_are_not_utf8_are_refused(topics: list[bytes], payloads: list[bytes]) -> None:
    messages = [
        MqttMessage(t.decode("utf-8", "backslashreplace"), p, 1, 1, False, 0.0, False)
        for t, p in zip(topics, payloads, strict=False)
    ]
    edge, records = prepared(messages)
    assert {t for t, _, _ in records} <= {TOPIC_REJECTS}
    assert_records_sound(messages, edge, records)


# ------------------------------------------------------------------ the poison, pinned


def test_a_refused_reading_nested_past_the_encoders_depth_is_refused_not_fatal() -> None:
    topic = "forewarn/v1/acme/home-1/telemetry"
    for depth in (252, 253, 254, 255, 300, 1000, 1019, 1100):
        for where in range(5):
            message = MqttMessage(topic, deep(depth, where, LIVE_NOW), 1, 1, False, 0.0)
            edge, records = prepared([message])
            assert_records_sound([message], edge, records)
            if depth < 1020:  # the bad reading alone is refused, its neighbours stored
                assert (edge.stats.readings, edge.stats.rejects) == (
                    2,
                    {"bad_value": 1}
                    if where in (0, 4)
                    else {"missing_ts" if where == 1 else "bad_seq" if where == 2 else "bad_ts": 1},
                ), (depth, where)
            else:  # past the JSON parser's depth limit (1024) the message is refused whole
                assert (edge.stats.readings, edge.stats.rejects) == (0, {"malformed_json": 1}), (depth, where)


def test_seq_beyond_a_signed_64_bit_integer_is_refused() -> None:
    topic = "forewarn/v1/acme/home-1/telemetry"
    for seq, reasons in ((INT64_MAX, []), (INT64_MAX + 1, ["bad_seq"]), (2**64 - 1, ["bad_seq"]), (2**64, ["bad_seq"])):
        payload = orjson.dumps({"ts": NOW, "seq": 0, "metrics": {"temp_c": 1}}).replace(
            b'"seq":0', f'"seq":{seq}'.encode()
        )
        verdict = validate_message(topic, payload, REGISTRY, NOW)
        assert [r.reason for r in verdict.refusals] == reasons, seq


def test_one_devices_huge_round_is_split_into_records_under_1_mib() -> None:
    """150 messages of 300 readings with every metric of the catalog (each just under the 256 KiB
    payload limit): 45,000 readings of one device in one round, about 33 MB, where 2,000 readings
    would make a record of about 1.5 MB."""
    row = {name: (True if m.kind == "bool" else m.low + 0.123456789) for name, m in METRICS.items()}
    messages = []
    for m in range(150):
        batch = [{"ts": LIVE_NOW - m * 300 - i, "seq": INT64_MAX - m * 300 - i, "metrics": row} for i in range(300)]
        messages.append(
            MqttMessage("forewarn/v1/acme/home-1/telemetry", orjson.dumps({"batch": batch}), 1, m, False, 0.0)
        )
    edge, records = prepared(messages)
    sizes = [len(raw) for t, _, raw in records if t == TOPIC_READINGS]
    assert edge.stats.readings == 45_000 and not edge.stats.rejects
    assert max(sizes) <= service.MAX_RECORD_BYTES < 1 << 20, max(sizes)
    assert len(sizes) > 45_000 / service.MAX_READINGS_PER_RECORD, "split by size, not only by count"
    kept = [r for t, _, raw in records for r in decode_readings_record(raw).readings]
    assert [r.seq for r in kept] == sorted(r.seq for r in kept), "in time order, none lost"
    assert len({r.seq for r in kept}) == 45_000
