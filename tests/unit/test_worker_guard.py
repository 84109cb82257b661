"""The worker's re-check of Kafka records (``streams.guard``), which failures blame the records
(``core.deadletters.blames_records``), and how a failing batch write is isolated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
import pytest
from psycopg import errors
from psycopg_pool import PoolTimeout

from core.contract import (
    ContractError,
    Reading,
    StatusRecord,
    TickRecord,
    WarningEvent,
    readings_record,
    warning_id,
)
from core.db import DatabaseError
from core.deadletters import blames_records, reason_of
from streams.guard import check_readings, check_status, check_tick, check_warning, write_isolating

NOW = 1_763_700_000_000
REGISTRY = {"acme/home-1": "home", "acme/car-1": "vehicle", "acme/odd-1": "bogus"}


def record(**changes: Any) -> bytes:
    """A valid readings record of acme/home-1 as ingest writes it, with ``changes`` laid over."""
    doc = orjson.loads(readings_record("acme", "home-1", "home", [Reading(NOW - 1000, {"temp_c": 21.5}, 7)], NOW))
    doc.update(changes)
    return orjson.dumps(doc)


def reading(**changes: Any) -> bytes:
    """A record whose one reading has ``changes`` laid over it."""
    return record(readings=[{"ts": NOW - 1000, "metrics": {"temp_c": 21.5}, "seq": 7, **changes}])


HOSTILE: list[tuple[str, bytes, str]] = [
    (
        "NaN (as Python's json writes it)",
        record().replace(b"21.5", json.dumps(float("nan")).encode()),
        "malformed_json",
    ),
    ("Infinity", record().replace(b"21.5", b"Infinity"), "malformed_json"),
    ("a number beyond a double", record().replace(b"21.5", b"1e400"), "malformed_json"),
    ("an unknown metric", reading(metrics={"flux_capacitor": 1.21}), "unknown_metric"),
    ("a value out of range", reading(metrics={"temp_c": 900.0}), "out_of_range"),
    ("a boolean metric that is not 0 or 1", reading(metrics={"water_leak": 0.5}), "bad_value"),
    ("no metrics", reading(metrics={}), "bad_shape"),
    ("an unregistered device", record(device="ghost-9"), "unknown_device"),
    ("a hostile tenant", record(tenant="x'; DROP TABLE readings;--"), "bad_tenant"),
    ("a tenant with a trailing newline", record(tenant="acme\n"), "bad_tenant"),
    ("a device id that is not text", record(device=["home-1"]), "bad_device"),
    ("a kind no profile knows", record(kind="bogus"), "bad_kind"),
    ("a registered device of a kind no profile knows", record(device="odd-1", kind="bogus"), "bad_kind"),
    ("another kind than the registry's", record(kind="vehicle"), "bad_kind"),
    ("seq of 2^63", reading(seq=2**63), "bad_seq"),
    ("a negative seq", reading(seq=-1), "bad_seq"),
    ("a seq that is text", reading(seq="7"), "bad_seq"),
    ("a ts that is not an integer", reading(ts=1.5e12), "bad_ts"),
    ("a ts after the heat death", reading(ts=2**62), "future_ts"),
    ("a ts more than 5 minutes after ingest", reading(ts=NOW + 6 * 60_000), "future_ts"),
    ("ingested_at in the future", record(ingested_at=NOW + 3_600_000), "future_ts"),
    ("no readings", record(readings=[]), "bad_shape"),
    ("another contract version", record(v=2), "bad_version"),
    ("not JSON", b"\x00\x01 binary", "malformed_json"),
]


@pytest.mark.parametrize(("what", "raw", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_readings_record_is_refused_with_the_contracts_reason(what: str, raw: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as refused:
        check_readings(raw, REGISTRY, NOW)
    assert refused.value.reason == reason, refused.value


def test_a_valid_readings_record_passes_whole() -> None:
    batch = check_readings(record(), REGISTRY, NOW)
    assert (batch.key, batch.kind, batch.readings) == (
        "acme/home-1",
        "home",
        (Reading(NOW - 1000, {"temp_c": 21.5}, 7),),
    )
    # a backlog: ingest checked these readings an hour ago, the worker does not refuse them for it
    assert check_readings(record(), REGISTRY, NOW + 3_600_000).ingested_at == NOW
    # a boolean metric as ingest wrote it, and the largest seq a bigint holds
    check_readings(reading(metrics={"water_leak": 1.0}, seq=2**63 - 1), REGISTRY, NOW)


def status(**changes: Any) -> StatusRecord:
    fields: dict[str, Any] = {"tenant": "acme", "device": "home-1", "kind": "home", "state": "offline"}
    return StatusRecord(**{**fields, "received_at": NOW, **changes})


@pytest.mark.parametrize(
    ("record_", "reason"),
    [
        (status(), None),
        (status(tenant="Acme"), "bad_tenant"),
        (status(device="ghost-9"), "unknown_device"),
        (status(kind="bogus"), "bad_kind"),
        (status(received_at=NOW + 3_600_000), "future_ts"),
        (status(received_at=-1), "bad_ts"),
        (status(ts=2**70), "future_ts"),
    ],
)
def test_status_records_are_rechecked(record_: StatusRecord, reason: str | None) -> None:
    verdict(lambda: check_status(record_, REGISTRY, NOW), reason)


@pytest.mark.parametrize(
    ("tick", "reason"),
    [
        (TickRecord("acme", "car-1", "vehicle", NOW), None),
        (TickRecord("acme", "car-1", "home", NOW), "bad_kind"),
        (TickRecord("acme", "ghost-9", "home", NOW), "unknown_device"),
        (TickRecord("acme", "car-1", "vehicle", NOW + 3_600_000), "future_ts"),
    ],
)
def test_ticks_are_rechecked(tick: TickRecord, reason: str | None) -> None:
    verdict(lambda: check_tick(tick, REGISTRY, NOW), reason)


def warning(**changes: Any) -> WarningEvent:
    fields: dict[str, Any] = {
        "warning_id": warning_id("acme", "home-1", "water_leak", NOW),
        "tenant": "acme",
        "device": "home-1",
        "kind": "home",
        "risk": "water_leak",
        "action": "open",
        "severity": "critical",
        "score": 1.0,
        "at_ms": NOW,
        "opened_at_ms": NOW,
        "predicted_loss_at_ms": NOW + 1_200_000,
        "evidence": {"water_leak": True},
    }
    return WarningEvent(**{**fields, **changes})


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (warning(), None),
        (warning(tenant="x'; DROP TABLE warnings;--"), "bad_tenant"),
        (warning(device="ghost-9"), "unknown_device"),
        (warning(warning_id="not-a-uuid"), "bad_shape"),
        (warning(risk="alien_invasion"), "bad_shape"),
        (warning(action="explode"), "bad_shape"),
        (warning(severity="apocalyptic"), "bad_shape"),
        (warning(score=float("nan")), "bad_shape"),
        (warning(score=7.0), "bad_shape"),
        (warning(score="1"), "bad_shape"),
        (warning(at_ms=2**63), "future_ts"),
        (warning(opened_at_ms="yesterday"), "bad_ts"),
        (warning(predicted_loss_at_ms=2**63), "future_ts"),
        (warning(evidence=["not", "an", "object"]), "bad_shape"),
    ],
)
def test_warning_records_are_rechecked(event: WarningEvent, reason: str | None) -> None:
    verdict(lambda: check_warning(event, REGISTRY, NOW), reason)


def verdict(check: Any, reason: str | None) -> None:
    if reason is None:
        check()
        return
    with pytest.raises(ContractError) as refused:
        check()
    assert refused.value.reason == reason, refused.value


# ---------------------------------------------------------------- whose fault a failed write is


@pytest.mark.parametrize(
    ("exc", "records_to_blame"),
    [
        (errors.NumericValueOutOfRange("bigint out of range"), True),
        (errors.InvalidTextRepresentation("invalid input syntax"), True),
        (errors.CheckViolation("violates check constraint"), True),
        (errors.UniqueViolation("duplicate key"), True),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), True),  # client-side
        (OverflowError("int too big to convert"), True),
        (ValueError("year 60000 is out of range"), True),
        (psycopg.OperationalError("connection refused"), False),
        (errors.AdminShutdown("terminating connection due to administrator command"), False),
        (errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (errors.DeadlockDetected("deadlock detected"), False),
        (psycopg.InterfaceError("the connection is closed"), False),
        (PoolTimeout("couldn't get a connection after 30 sec"), False),
        (TimeoutError(), False),
        (DatabaseError("no connection to PostgreSQL at 127.0.0.1:5432/forewarn within 10 s"), False),  # ours
        (ConnectionResetError("reset by peer"), False),
        (errors.UndefinedTable('relation "readings" does not exist'), False),  # not migrated: wait
        (errors.InsufficientPrivilege("permission denied for table readings"), False),
        (errors.InFailedSqlTransaction("current transaction is aborted"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_only_what_a_record_carries_is_blamed_on_it(exc: BaseException, records_to_blame: bool) -> None:
    assert blames_records(exc) is records_to_blame


def test_the_reason_kept_names_the_error_and_its_sqlstate() -> None:
    reason = reason_of(errors.NumericValueOutOfRange('value "9223372036854775808" is out of range for type bigint'))
    assert reason == 'NumericValueOutOfRange [22003]: value "9223372036854775808" is out of range for type bigint'


# ---------------------------------------------------------------- isolating the records to blame


class Database:
    """A write that refuses batches holding a poison value, fails with an outage ``outages``
    times first, and records every attempt."""

    def __init__(self, outages: int = 0) -> None:
        self.outages = outages
        self.attempts: list[tuple[int, ...]] = []
        self.stored: list[int] = []
        self.waited: list[BaseException] = []
        self.paused: list[float] = []

    async def write(self, batch: Sequence[int]) -> int:
        self.attempts.append(tuple(batch))
        if self.outages:
            self.outages -= 1
            raise psycopg.OperationalError("connection to server lost")
        if any(value < 0 for value in batch):
            raise errors.NumericValueOutOfRange("out of range")
        self.stored.extend(batch)
        return len(batch)

    async def wait_out(self, exc: BaseException) -> None:
        self.waited.append(exc)

    async def sleep(self, seconds: float) -> None:
        self.paused.append(seconds)

    async def run(self, items: Sequence[int], retries: int = 2) -> Any:
        return await write_isolating(
            items,
            self.write,
            blames_records=blames_records,
            wait_out=self.wait_out,
            retries=retries,
            sleep=self.sleep,
        )


async def test_a_poison_record_is_isolated_and_everything_around_it_is_written() -> None:
    db = Database()
    done = await db.run([1, 2, 3, -4, 5, 6, 7, 8])
    assert sorted(db.stored) == [1, 2, 3, 5, 6, 7, 8]
    assert [(item, type(exc).__name__) for item, exc in done.poison] == [(-4, "NumericValueOutOfRange")]
    assert sum(done.results) == 7
    # the whole batch three times (two retries), then halves once each, the lone record three times
    assert db.attempts[:3] == [(1, 2, 3, -4, 5, 6, 7, 8)] * 3
    assert db.attempts.count((-4,)) == 3
    # 3 × all; (1, 2, 3, -4) fails: (1, 2) ok, (3, -4) fails: (3) ok, 3 × (-4); then (5, 6, 7, 8) ok
    assert len(db.attempts) == 3 + 1 + 1 + 1 + 1 + 3 + 1


async def test_several_poison_records_are_each_set_aside_and_a_batch_of_only_poison_writes_nothing() -> None:
    db = Database()
    done = await db.run([-1, 2, -3, 4, 5, -6])
    assert sorted(db.stored) == [2, 4, 5]
    assert sorted(item for item, _ in done.poison) == [-6, -3, -1]
    db = Database()
    done = await db.run([-1])
    assert (db.stored, [item for item, _ in done.poison], db.attempts) == ([], [-1], [(-1,)] * 3)


async def test_an_outage_is_waited_out_and_never_blamed_on_a_record() -> None:
    db = Database(outages=5)
    done = await db.run([1, 2, 3])
    assert (db.stored, done.poison, len(db.waited), db.paused) == ([1, 2, 3], [], 5, [])
    # an outage in the middle of isolating a poison record splits nothing more
    db = Database()
    original, blips = db.write, [psycopg.OperationalError("server closed the connection unexpectedly")] * 4

    async def flaky(batch: Sequence[int]) -> int:
        if tuple(batch) == (-2,) and blips:
            raise blips.pop()
        return await original(batch)

    db.write = flaky  # type: ignore[method-assign]
    done = await db.run([1, -2])
    assert (db.stored, [item for item, _ in done.poison], len(db.waited)) == ([1], [-2], 4)
    assert db.attempts.count((-2,)) == 3, "the outage's attempts do not count against the record"


async def test_nothing_to_write_writes_nothing() -> None:
    db = Database()
    done = await db.run([])
    assert (done.results, done.poison, db.attempts) == ([], [], [])
