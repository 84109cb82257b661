"""The worker's second look at what Kafka hands it, and how a write that fails is isolated. Pure.

Kafka is not a trust boundary: anyone who can write to ``forewarn.readings`` bypasses ingest.
So the worker checks each decoded record again with the contract's own rules
(:mod:`core.contract`: id segments, the metric catalog and its ranges, ``seq`` within a signed
64-bit integer, times a ``timestamptz`` can hold) and against the device registry, and refuses
what fails with the contract's reason codes (:data:`core.contract.REJECT_REASONS`). The checks
take the registry and ``now`` from the caller: no I/O, no clock.

:func:`write_isolating` is the other half of "no record is poison": a batch write that fails
because of what it carries is retried a bounded number of times, then split in halves until the
records to blame are alone; those are handed back to be set aside, everything else is written.
A failure that is not the records' fault (an outage) is waited out and never splits anything.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.contract import (
    DEVICE_KINDS,
    MAX_FUTURE_MS,
    ContractError,
    ReadingsBatch,
    StatusRecord,
    TickRecord,
    WarningEvent,
    check_readings_record,
    check_segment,
    device_key,
)
from core.lifecycle import ACTIONS
from core.risks import RISKS
from detectors.base import SEVERITIES

LOSS_HORIZON_MS = 366 * 86_400_000
"""How far ahead a warning may predict a loss (a year is more than any detector looks)."""


def check_device(tenant: str, device: str, kind: str, registry: Mapping[str, str]) -> None:
    """The ids follow the contract, the kind has a profile, and the registry knows the device as
    that kind (ingest stamps the registry's kind on each record; another one was not written by it)."""
    check_segment(tenant, "tenant")
    check_segment(device, "device")
    if kind not in DEVICE_KINDS:
        raise ContractError("bad_kind", f"device kind {str(kind)[:40]!r} is not one of {', '.join(DEVICE_KINDS)}")
    registered = registry.get(device_key(tenant, device))
    if registered is None:
        raise ContractError("unknown_device", f"device {tenant}/{device} is not registered ('forewarn device add')")
    if registered != kind:
        raise ContractError("bad_kind", f"device {tenant}/{device} is registered as {registered}, not {kind}")


def check_time(ms: object, what: str, now_ms: int) -> int:
    """An epoch-millisecond time that is an integer, not before 1970 and not more than the
    contract's 5 minutes ahead of ``now_ms`` (so it converts to a ``timestamptz``)."""
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise ContractError("bad_ts", f"{what} must be epoch milliseconds, got {type(ms).__name__}")
    if ms < 0:
        raise ContractError("bad_ts", f"{what} {ms} is before 1970")
    if ms > now_ms + MAX_FUTURE_MS:
        raise ContractError("future_ts", f"{what} is {(ms - now_ms) / 1000:.0f} s in the future (more than 5 minutes)")
    return ms


def check_readings(raw: bytes, registry: Mapping[str, str], now_ms: int) -> ReadingsBatch:
    """A ``forewarn.readings`` record holds what ingest would have let through: the contract's own
    check of a raw record (:func:`core.contract.check_readings_record`: ids, kind, times, ``seq``,
    every metric) and the registry's word on the device (:class:`ContractError` otherwise)."""
    batch = check_readings_record(raw, now_ms)
    check_device(batch.tenant, batch.device, batch.kind, registry)
    return batch


def check_status(record: StatusRecord, registry: Mapping[str, str], now_ms: int) -> None:
    """A ``forewarn.status`` record names a registered device and times it sanely."""
    check_device(record.tenant, record.device, record.kind, registry)
    check_time(record.received_at, "received_at", now_ms)
    if record.ts is not None:
        check_time(record.ts, "ts", now_ms)


def check_tick(tick: TickRecord, registry: Mapping[str, str], now_ms: int) -> None:
    """A ``forewarn.ticks`` record names a registered device and a time not ahead of the clock."""
    check_device(tick.tenant, tick.device, tick.kind, registry)
    check_time(tick.now, "now", now_ms)


def check_warning(event: WarningEvent, registry: Mapping[str, str], now_ms: int) -> None:
    """A ``forewarn.warnings`` record is one the decisions could have made: a registered device,
    a known risk, action and severity, a UUID id, a finite score in [0, 1], sane times."""
    check_device(event.tenant, event.device, event.kind, registry)
    try:
        uuid.UUID(str(event.warning_id))
    except ValueError:
        raise ContractError("bad_shape", f"warning_id {str(event.warning_id)[:40]!r} is not a UUID") from None
    if event.risk not in RISKS:
        raise ContractError("bad_shape", f"risk {str(event.risk)[:40]!r} is not in the risk catalogue")
    if event.action not in ACTIONS:
        raise ContractError("bad_shape", f"action {str(event.action)[:40]!r} is not one of {', '.join(ACTIONS)}")
    if event.severity not in SEVERITIES:
        raise ContractError("bad_shape", f"severity {str(event.severity)[:40]!r} is not one of {', '.join(SEVERITIES)}")
    score = event.score
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ContractError("bad_shape", f"score must be a finite number, got {str(score)[:40]}")
    if not 0 <= score <= 1:
        raise ContractError("bad_shape", f"score {score:g} is outside [0, 1]")
    at = check_time(event.at_ms, "at_ms", now_ms)
    check_time(event.opened_at_ms, "opened_at_ms", at)
    if event.predicted_loss_at_ms is not None:
        check_time(event.predicted_loss_at_ms, "predicted_loss_at_ms", at + LOSS_HORIZON_MS)
    if not isinstance(event.evidence, dict):
        raise ContractError("bad_shape", "evidence must be an object")


# ---------------------------------------------------------------- writes that fail

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class Isolated(Generic[T, R]):
    """What came of :func:`write_isolating`: the results of the writes that succeeded, and the
    records that failed alone (each with the error that blamed it), to be set aside."""

    results: list[R]
    poison: list[tuple[T, BaseException]]


class _Blamed(Exception):
    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


async def write_isolating(
    items: Sequence[T],
    write: Callable[[Sequence[T]], Awaitable[R]],
    *,
    blames_records: Callable[[BaseException], bool],
    wait_out: Callable[[BaseException], Awaitable[None]],
    retries: int = 2,
    pause_s: float = 0.2,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> Isolated[T, R]:
    """Write ``items``; isolate the ones whose write fails because of what they carry.

    An error ``blames_records`` rejects (an outage: connection lost, a timeout) is handed to
    ``wait_out`` (which sleeps the backoff) and the same write is tried again, for as long as it
    takes: an outage is never blamed on a record. An error it accepts is retried ``retries``
    times (``pause_s`` apart, growing); then the batch is split in halves, each written once,
    and a half that fails is split again, down to single records, which get ``retries`` retries
    of their own before they are handed back in :attr:`Isolated.poison`. Writes must be
    idempotent or all-or-nothing (one transaction): a failed write is repeated.
    """
    out: Isolated[T, R] = Isolated([], [])

    async def attempt(batch: Sequence[T], tries: int) -> R:
        failed = 0
        while True:
            try:
                return await write(batch)
            except Exception as exc:  # noqa: BLE001 - sorted below: outage or the records' fault
                if not blames_records(exc):
                    await wait_out(exc)
                    continue
                failed += 1
                if failed >= tries:
                    raise _Blamed(exc) from exc
                await sleep(pause_s * failed)

    async def isolate(batch: Sequence[T], tries: int) -> None:
        try:
            out.results.append(await attempt(batch, tries))
        except _Blamed as blamed:
            if len(batch) == 1:
                out.poison.append((batch[0], blamed.exc))
                return
            middle = len(batch) // 2
            for half in (batch[:middle], batch[middle:]):
                await isolate(half, retries + 1 if len(half) == 1 else 1)

    if items:
        await isolate(items, retries + 1)
    return out
