"""The wire contract: what a device may send, and the reason it hears when it may not."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.contract import (
    KAFKA_TOPICS,
    TOPIC_STATUS,
    TOPIC_TICKS,
    ContractError,
    DeviceStatus,
    Reading,
    WarningEvent,
    decode_readings_record,
    decode_status_record,
    decode_tick_record,
    parse_payload,
    parse_status,
    parse_status_topic,
    parse_telemetry_topic,
    readings_record,
    status_record,
    status_topic,
    tick_record,
)

NOW = 1_763_700_000_000


def reasons(payload: bytes) -> list[str]:
    try:
        return [r.reason for r in parse_payload(payload, NOW).rejected]
    except ContractError as exc:
        return [exc.reason]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"ts": 1763700000000, "metrics": {"temp_c": 2.5}}', []),
        (b'{"ts": "2025-11-21T04:40:00Z", "metrics": {"water_leak": false}}', []),
        (b'{"ts": "2025-11-21T04:40:00", "metrics": {"water_leak": true}}', []),
        (b'{"ts": 1763700000000, "metrics": {"temp_c": NaN}}', ["malformed_json"]),
        (b'{"ts": 1763700000000, "metrics": {"temp_c": 1e400}}', ["malformed_json"]),
        (b"not json", ["malformed_json"]),
        (b"[1, 2]", ["bad_shape"]),
        (b'{"ts": 1763700000000, "metrics": {"temp_c": 900}}', ["out_of_range"]),
        (b'{"ts": 1763700000000, "metrics": {"colour": 1}}', ["unknown_metric"]),
        (b'{"ts": 1763700000000, "metrics": {"temp_c": "hot"}}', ["bad_value"]),
        (b'{"ts": 1763700000000, "metrics": {"water_leak": 2}}', ["bad_value"]),
        (b'{"ts": 1763700400000, "metrics": {"temp_c": 1}}', ["future_ts"]),
        (b'{"ts": 1000, "metrics": {"temp_c": 1}}', ["too_old"]),
        (b'{"metrics": {"temp_c": 1}}', ["missing_ts"]),
        (b'{"ts": 1763700000000, "metrics": {}}', ["bad_shape"]),
        (b'{"ts": 1763700000000, "seq": -1, "metrics": {"temp_c": 1}}', ["bad_seq"]),
        (b'{"batch": []}', ["bad_shape"]),
    ],
)
def test_payloads_are_accepted_or_refused_with_a_reason(payload: bytes, expected: list[str]) -> None:
    assert reasons(payload) == expected


def test_a_bad_reading_in_a_batch_loses_nothing_valid() -> None:
    payload = orjson.dumps(
        {
            "batch": [
                {"ts": NOW - 2000, "seq": 1, "metrics": {"pipe_temp_c": 3.0}},
                {"ts": NOW - 1000, "seq": 2, "metrics": {"pipe_temp_c": -999}},
                {"ts": NOW, "seq": 3, "metrics": {"pipe_temp_c": 2.8}},
            ]
        }
    )
    parsed = parse_payload(payload, NOW)
    assert [r.seq for r in parsed.readings] == [1, 3]
    assert [r.reason for r in parsed.rejected] == ["out_of_range"]


def test_booleans_become_numbers_and_rfc3339_becomes_epoch_ms() -> None:
    parsed = parse_payload(b'{"ts": "2025-11-21T12:40:00+08:00", "metrics": {"water_leak": true}}', NOW)
    assert parsed.readings == [Reading(ts=1763700000000, metrics={"water_leak": 1.0})]


def test_oversized_batches_and_payloads_are_refused() -> None:
    batch = {"batch": [{"ts": NOW, "metrics": {"temp_c": 1}}] * 1001}
    assert reasons(orjson.dumps(batch)) == ["batch_too_large"]
    assert reasons(b" " * (256 * 1024 + 1)) == ["too_large"]


@pytest.mark.parametrize(
    ("topic", "ok"),
    [
        ("forewarn/v1/acme/home-1/telemetry", True),
        ("forewarn/v1/Acme/home-1/telemetry", False),
        ("forewarn/v1/acme/home-1/status", False),
        ("forewarn/v2/acme/home-1/telemetry", False),
        ("forewarn/v1/acme/-x/telemetry", False),
        ("forewarn/v1/acme/" + "a" * 65 + "/telemetry", False),
    ],
)
def test_topics(topic: str, ok: bool) -> None:
    if ok:
        assert parse_telemetry_topic(topic).key == "acme/home-1"
    else:
        with pytest.raises(ContractError):
            parse_telemetry_topic(topic)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_no_bytes_crash_the_parser(payload: bytes) -> None:
    try:
        parsed = parse_payload(payload, NOW)
    except ContractError:
        return
    for reading in parsed.readings:
        assert all(math.isfinite(v) for v in reading.metrics.values())


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {"ts": JSON_VALUES, "metrics": st.dictionaries(st.sampled_from(["temp_c", "water_leak", "x"]), JSON_VALUES)}
        ),
    )
)
def test_no_json_document_crashes_the_parser(doc: object) -> None:
    payload = json.dumps({"batch": [doc]}).encode()  # the stdlib even writes NaN/Infinity
    try:
        parsed = parse_payload(payload, NOW)
    except ContractError:
        return
    assert len(parsed.readings) + len(parsed.rejected) == 1


def test_readings_record_round_trips() -> None:
    readings = [Reading(NOW, {"temp_c": 1.5}, 4), Reading(NOW + 1000, {"water_leak": 1.0})]
    batch = decode_readings_record(readings_record("acme", "home-1", "home", readings, NOW))
    assert batch.key == "acme/home-1" and batch.kind == "home" and list(batch.readings) == readings
    with pytest.raises(ContractError):
        decode_readings_record(b'{"v": 99}')


def test_warning_event_round_trips_and_knows_its_time_to_loss() -> None:
    event = WarningEvent(
        "id",
        "acme",
        "home-1",
        "home",
        "freeze_risk",
        "open",
        "warning",
        0.8,
        NOW,
        NOW,
        NOW + 3 * 3600_000,
        {"pipe_temp_c": 2.0},
    )
    assert WarningEvent.from_json(orjson.loads(orjson.dumps(event.to_json()))) == event
    assert event.time_to_loss_s == 3 * 3600


# ------------------------------------------------------------------ the status topic


@pytest.mark.parametrize(
    ("topic", "ok"),
    [
        ("forewarn/v1/acme/home-1/status", True),
        ("forewarn/v1/acme/home-1/telemetry", False),
        ("forewarn/v1/acme/home-1/status/x", False),
        ("forewarn/v1/ACME/home-1/status", False),
    ],
)
def test_status_topics(topic: str, ok: bool) -> None:
    if ok:
        where = parse_status_topic(topic)
        assert where.key == "acme/home-1" and status_topic(where.tenant, where.device) == topic
    else:
        with pytest.raises(ContractError):
            parse_status_topic(topic)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"online", ("online", None)),
        (b"offline\n", ("offline", None)),
        (b'{"state": "offline"}', ("offline", None)),
        (b'{"state": "online", "ts": 1763700000000}', ("online", NOW)),
        (b'{"state": "online", "ts": "2025-11-21T04:40:00Z"}', ("online", NOW)),
        (b"", "bad_status"),  # a cleared retained status
        (b"OFFLINE", "bad_status"),
        (b"connected", "bad_status"),
        (b'{"state": "asleep"}', "bad_status"),
        (b'{"state": "online", "battery": 80}', "bad_status"),
        (b'{"state": "online"', "malformed_json"),
        (b'{"state": "online", "ts": "yesterday"}', "bad_ts"),
        (b'{"state": "online", "ts": 1763700600000}', "future_ts"),
        (b"online" + b" " * 2000, "too_large"),
    ],
)
def test_status_payloads(payload: bytes, expected: object) -> None:
    try:
        status = parse_status(payload, NOW)
    except ContractError as exc:
        assert exc.reason == expected
    else:
        assert (status.state, status.ts) == expected


def test_status_and_tick_records_round_trip() -> None:
    assert {TOPIC_STATUS, TOPIC_TICKS} <= set(KAFKA_TOPICS)
    record = decode_status_record(status_record("acme", "home-1", "home", DeviceStatus("offline"), NOW, True))
    assert (record.key, record.state, record.received_at, record.ts, record.retained) == (
        "acme/home-1",
        "offline",
        NOW,
        None,
        True,
    )
    tick = decode_tick_record(tick_record("acme", "home-1", "home", NOW))
    assert (tick.key, tick.kind, tick.now) == ("acme/home-1", "home", NOW)
    for raw in (b"nope", orjson.dumps({"v": 1, "tenant": "acme"}), orjson.dumps({"v": 2})):
        with pytest.raises(ContractError):
            decode_status_record(raw)
        with pytest.raises(ContractError):
            decode_tick_record(raw)
    bad_state = orjson.loads(status_record("acme", "home-1", "home", DeviceStatus("online"), NOW))
    bad_state["state"] = "asleep"
    with pytest.raises(ContractError, match="bad_shape"):
        decode_status_record(orjson.dumps(bad_state))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["temp_c", "pipe_temp_c", "battery_pct", "leak", "compressor_on", "no_such_metric"]),
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.booleans(),
        st.sampled_from([0.0, 1.0, -0.0, 1e308, -1e308, 200.0, -100.0]),
    ),
)
def test_the_workers_recheck_refuses_a_metric_exactly_as_the_catalog_does(name: str, value: object) -> None:
    """``check_readings_record`` takes a float within its range cheaply; whatever the value,
    it accepts and refuses exactly what ``check_metric`` (or a stored boolean's 0.0 / 1.0) does."""
    from core.contract import _stored_metric, check_readings_record

    raw = orjson.dumps(
        {"v": 1, "tenant": "acme", "device": "h-1", "kind": "home", "ingested_at": NOW,
         "readings": [{"ts": NOW, "metrics": {name: value}}]}
    )  # fmt: skip
    try:
        expected: object = _stored_metric(name, orjson.loads(orjson.dumps(value)))
    except ContractError as exc:
        expected = exc.reason
    try:
        got: object = check_readings_record(raw, NOW).readings[0].metrics[name]
    except ContractError as exc:
        got = exc.reason
    assert got == expected and type(got) is type(expected)


def test_reading_rows_are_one_per_metric_value_with_their_times() -> None:
    import doctest
    from datetime import UTC, datetime

    import core.db
    from core.contract import ReadingsBatch
    from core.db import reading_rows

    assert doctest.testmod(core.db).failed == 0
    home = (Reading(NOW, {"temp_c": 1.0, "leak": 0.0}, 3), Reading(NOW + 1, {"temp_c": 2.0}))
    batches = [
        ReadingsBatch("acme", "h-1", "home", home, NOW + 5),
        ReadingsBatch("b", "c-1", "coldchain", (Reading(NOW + 2, {"temp_c": 3.0}),), NOW + 6),
    ]
    at = lambda ms: datetime.fromtimestamp(ms / 1000, tz=UTC)  # noqa: E731
    assert reading_rows(batches) == [
        ("acme", "h-1", "temp_c", at(NOW), 1.0, 3, at(NOW + 5)),
        ("acme", "h-1", "leak", at(NOW), 0.0, 3, at(NOW + 5)),
        ("acme", "h-1", "temp_c", at(NOW + 1), 2.0, None, at(NOW + 5)),
        ("b", "c-1", "temp_c", at(NOW + 2), 3.0, None, at(NOW + 6)),
    ]
