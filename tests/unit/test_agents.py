"""The worker's agents without a broker or a database, through Faust's ``agent.test_context()``.

Each test puts raw records on an agent's local test channel, as Kafka would deliver them, and
checks what a user of the system would see: readings stored, a warning published, a message
on the customer's phone (a real local HTTP sink reached through apprise), a failed channel
recorded. The database is an in-memory stand-in for the ``Store`` calls the agents make; the
integration tests run the same agents on real services.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from unittest.mock import AsyncMock, patch

import orjson
import psycopg
import pytest

import streams.app as worker
from core.contract import Reading, ReadingsBatch, WarningEvent, readings_record, warning_id
from core.db import DetectorParams, Store, effective_overrides
from core.deadletters import DeadLetter
from core.readiness import StatusFile, read_status
from forewarn.sink import HttpSink
from notifiers.dispatch import Dispatcher
from streams.decisions import DeviceMonitor

NOW_MS = 1_763_700_000_000
MINUTE_MS = 60_000

REGISTERED = {
    **{
        f"acme/{device}": "home"
        for device in (
            "leak-home",
            "dry-home",
            "after-bad",
            "splash-home",
            "restart-home",
            "store-home",
            "ana-home",
            "bo-home",
            "no-customer",
            "slow-home",
            "fast-home",
            "busy-home",
            "after-hostile",
            "after-odd",
        )
    },
    "acme/lin-car": "vehicle",
}
"""The device registry the worker re-checks records against (``forewarn device add``)."""


class MemoryStore(Store):
    """The Store calls the agents make, kept in dicts with the database's idempotence.

    Its own pool is never opened: a Store call the agents were not expected to make fails.
    """

    def __init__(self, customers: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        super().__init__("postgresql://in-memory.invalid/unused")
        self.customers = customers or {}
        self.readings: dict[tuple[str, str, str, int], float] = {}  # unique (tenant, device, metric, ts)
        self.batches_seen = 0
        self.warnings: list[tuple[str, str, str | None]] = []  # (warning id, action, customer id)
        self.deliveries: dict[tuple[str, str, str], tuple[str, str | None]] = {}  # → (status, error)
        self.outbox: list[dict[str, Any]] = []
        self.events: dict[str, tuple[WarningEvent, str | None]] = {}
        self.transitions: list[tuple[str, str, str]] = []
        self.followups: list[tuple[str, str]] = []
        self.attempts: Counter[tuple[str, str, str]] = Counter()
        self.detector_config: list[DetectorParams] = []  # what `forewarn detectors set` wrote
        self.detector_config_changes = 0
        self.tenant_contacts: dict[tuple[str, str], list[str]] = {}  # (tenant, role) → apprise URLs
        self.claim_notices: dict[str, dict[str, Any]] = {}  # warning id → claim_notices row
        self.registry = dict(REGISTERED)
        self.dead_letters: list[DeadLetter] = []  # what core.deadletters.set_aside was handed
        self.refused = AsyncMock()  # forewarn.rejects' send, mocked by the fixture

    def rejects(self) -> list[dict[str, Any]]:
        """The reject records the worker sent to forewarn.rejects."""
        return [orjson.loads(call.kwargs["value"]) for call in self.refused.await_args_list]

    async def devices(self) -> dict[str, str]:
        return dict(self.registry)

    async def device_kind(self, tenant: str, device: str) -> str | None:
        return self.registry.get(f"{tenant}/{device}")

    def configure(self, *rows: DetectorParams) -> None:
        """Replace the detector configuration, as `forewarn detectors set/clear` would."""
        self.detector_config = list(rows)
        self.detector_config_changes += 1

    async def detector_overrides(self, tenant: str, kind: str, device: str) -> dict[str, dict[str, Any]]:
        mine = [r for r in self.detector_config if (r.tenant, r.kind) == (tenant, kind)]
        return effective_overrides(mine, device)

    async def detector_config_version(self) -> int:
        return self.detector_config_changes

    async def store_readings(self, batches: Iterable[ReadingsBatch]) -> int:
        new = 0
        for batch in batches:
            self.batches_seen += 1
            for reading in batch.readings:
                for metric, value in reading.metrics.items():
                    key = (batch.tenant, batch.device, metric, reading.ts)
                    if key not in self.readings:  # ON CONFLICT DO NOTHING
                        self.readings[key] = value
                        new += 1
        return new

    async def customer_of(self, tenant: str, device: str) -> dict[str, Any] | None:
        return self.customers.get((tenant, device))

    async def record_warning(self, event: Any, customer_id: str | None) -> bool:
        replay = any(w == (event.warning_id, event.action, customer_id) for w in self.warnings)
        self.warnings.append((event.warning_id, event.action, customer_id))
        self.events.setdefault(event.warning_id, (event, customer_id))
        return not replay

    # the outbox, with the database's (warning, action, channel) uniqueness
    async def enqueue(
        self,
        warning_id: str,
        action: str,
        audience: str,
        channel_index: int,
        url: str,
        masked_url: str,
        *,
        due_at: datetime | None = None,
        held_reason: str | None = None,
        reminder: int = 0,
    ) -> bool:
        if (warning_id, action, url) in self.deliveries:
            return False
        self.deliveries[(warning_id, action, url)] = ("held" if held_reason else "pending", None)
        self.outbox.append(
            {
                "id": len(self.outbox) + 1,
                "warning_id": warning_id,
                "action": action,
                "audience": audience,
                "channel_index": channel_index,
                "channel": masked_url,
                "url": url,
                "attempts": 0,
                "held_reason": held_reason,
                "reminder": reminder,
                "due": due_at,
            }
        )
        return True

    async def claim_due(self, limit: int = 50, lease_s: float = 120.0) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        claimed = []
        for row in self.outbox:
            key = (row["warning_id"], row["action"], row["url"])
            status, _ = self.deliveries[key]
            if status in ("pending", "held") and (row["due"] is None or row["due"] <= now):
                self.deliveries[key] = ("sending", None)
                event, customer_id = self.events[row["warning_id"]]
                customer = next(c for c in self.customers.values() if c["id"] == customer_id)
                claimed.append(
                    {
                        **row,
                        "tenant": event.tenant,
                        "device": event.device,
                        "kind": event.kind,
                        "risk": event.risk,
                        "severity": event.severity,
                        "score": event.score,
                        "evidence": event.evidence,
                        "opened_at": datetime.fromtimestamp(event.opened_at_ms / 1000, UTC),
                        "predicted_loss_at": None,
                        "warning_status": "open",
                        "notified_at": None,
                        "customer_id": customer_id,
                        "customer_name": customer["name"],
                        "locale": customer["locale"],
                        "timezone": None,
                        "channels": len(customer["notify_urls"]),
                    }
                )
        return claimed[:limit]

    async def record_attempt(
        self, delivery_id: int, ok: bool, error: str | None, seconds: float, retry_in_s: float | None = None
    ) -> None:
        row = self.outbox[delivery_id - 1]
        row["attempts"] += 1
        key = (row["warning_id"], row["action"], row["url"])
        self.deliveries[key] = ("sent" if ok else ("pending" if retry_in_s is not None else "failed"), error)
        self.attempts[key] += 1

    async def advance(self, warning_id: str, event: str, actor: str, note: str | None = None) -> str | None:
        self.transitions.append((warning_id, event, actor))
        return "notified" if event == "notified" else event

    async def followup_steps(self, tenant: str, severity: str) -> list[dict[str, Any]] | None:
        return None

    async def settle_held(self, delivery_ids: Any, note: str) -> None:
        for delivery_id in delivery_ids:
            row = self.outbox[delivery_id - 1]
            self.deliveries[(row["warning_id"], row["action"], row["url"])] = ("sent", note)

    async def schedule_followups(self, warning_id: str, steps: Iterable[tuple[str, str, bool, datetime]]) -> int:
        self.followups.extend((warning_id, action) for action, *_ in steps)
        return len(self.followups)

    async def contacts(self, tenant: str, role: str) -> list[tuple[int, str]]:
        return list(enumerate(self.tenant_contacts.get((tenant, role), [])))

    # first notices of loss, with the database's uniqueness (one per warning, one per reference)
    async def claim_notice(self, warning_id: str) -> dict[str, Any] | None:
        return self.claim_notices.get(warning_id)

    async def open_claim_notice(self, refs: Sequence[str], notice: Mapping[str, Any]) -> tuple[str, bool]:
        if notice["warning_id"] in self.claim_notices:
            return self.claim_notices[notice["warning_id"]]["ref"], False
        taken = {row["ref"] for row in self.claim_notices.values()}
        ref = next(r for r in refs if r not in taken)
        self.claim_notices[notice["warning_id"]] = {**notice, "ref": ref}
        return ref, True

    async def complete_claim_notice(
        self, warning_id: str, lat: float | None, lon: float | None, readings: Mapping[str, Any]
    ) -> None:
        self.claim_notices[warning_id].update(lat=lat, lon=lon, readings=dict(readings))

    async def readings_between(
        self, tenant: str, device: str, start: datetime, end: datetime, limit: int = 20_000
    ) -> list[tuple[str, datetime, float]]:
        lo, hi = start.timestamp() * 1000, end.timestamp() * 1000
        return [
            (metric, datetime.fromtimestamp(ts / 1000, UTC), value)
            for (t, d, metric, ts), value in self.readings.items()
            if (t, d) == (tenant, device) and lo <= ts <= hi
        ][:limit]


@pytest.fixture
async def memory() -> AsyncIterator[MemoryStore]:
    """The worker's app on this test's loop (Faust's testing guide), with an in-memory store."""
    worker.app.loop = asyncio.get_running_loop()
    worker.app.finalize()
    worker.app.flow_control.resume()
    db = MemoryStore()
    worker.use_store(db)
    worker.detector_config = worker.DetectorConfig(refresh_s=0.0)  # every batch sees a change at once
    # the worker's notifier on this store, with quick retries and a recognisable acknowledgement link
    worker._dispatcher = Dispatcher(
        db, ack_link=lambda wid: f"https://forewarn.test/a/{wid[:8]}", retry_delays_s=(0, 0)
    )

    async def set_aside(store: Store, letters: Sequence[DeadLetter]) -> int:
        db.dead_letters.extend(letters)
        return len(letters)

    table = worker.device_to_monitor
    real_send = table.send_changelog

    def confirmed(*args: Any, **kwargs: Any) -> Any:
        """The changelog record as Kafka confirms it (a test context has no Kafka: at once)."""
        sent = real_send(*args, **kwargs)
        if not sent.done():
            sent.set_result(None)
        return sent

    # what is refused goes to forewarn.rejects (the topic mocked), what is set aside to dead_letters
    with (
        patch.object(worker.rejects_topic, "send", new_callable=AsyncMock) as refused,
        patch.object(worker, "set_aside", set_aside),
        patch.object(table, "send_changelog", side_effect=confirmed),
    ):
        db.refused = refused
        yield db
        worker.save_unsaved()  # what the worker's timer does: the scored records it held are let go
    worker._dispatcher = None
    worker.use_store(None)
    worker.detector_config = worker.DetectorConfig()


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    """The customer's phone: a local HTTP endpoint that apprise ``json://`` URLs reach."""
    phone = HttpSink(fail_paths=("/down",)).start()
    yield phone
    phone.stop()


@pytest.fixture
def published() -> Iterator[AsyncMock]:
    """What ``score_device_readings`` sends to the warnings topic (the topic mocked, as Faust's guide says)."""
    with patch.object(worker.warnings_topic, "send", new_callable=AsyncMock) as send:
        yield send


def home_record(device: str, *readings: tuple[int, dict[str, float]]) -> bytes:
    """A ``forewarn.readings`` record, as ingest writes it, for a home device of tenant acme."""
    batch = [Reading(ts, metrics, seq) for seq, (ts, metrics) in enumerate(readings)]
    return readings_record("acme", device, "home", batch, NOW_MS)


def warnings_sent(send: AsyncMock) -> list[tuple[bytes, dict[str, Any]]]:
    return [(call.kwargs["key"], orjson.loads(call.kwargs["value"])) for call in send.await_args_list]


def counted(name: str) -> Callable[[], int]:
    """How much the worker's counter ``name`` has grown since now."""
    start = worker.counters[name]
    return lambda: worker.counters[name] - start


async def until(what: str, probe: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for the agent to get there: ``put`` returns once the agent has taken the value."""
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------ score_device_readings


async def test_a_wet_leak_sensor_publishes_one_open_water_leak_warning(
    memory: MemoryStore, published: AsyncMock
) -> None:
    scored = counted("batches_scored")
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(home_record("leak-home", (NOW_MS, {"water_leak": 1.0, "flow_lpm": 4.5})), key=b"acme/leak-home")
        await until("the leak to be published", lambda: published.await_count == 1)
        # still wet a minute later: the warning is open already, nothing new is published
        await agent.put(home_record("leak-home", (NOW_MS + MINUTE_MS, {"water_leak": 1.0})), key=b"acme/leak-home")
        await until("the second batch to be scored", lambda: scored() == 2)

    [(key, warning)] = warnings_sent(published)
    assert key == b"acme/leak-home"
    assert {k: warning[k] for k in ("tenant", "device", "kind", "risk", "action", "severity", "opened_at_ms")} == {
        "tenant": "acme",
        "device": "leak-home",
        "kind": "home",
        "risk": "water_leak",
        "action": "open",
        "severity": "critical",
        "opened_at_ms": NOW_MS,
    }
    assert warning["warning_id"] == warning_id("acme", "leak-home", "water_leak", NOW_MS)
    assert WarningEvent.from_json(warning).key == "acme/leak-home"  # what notify_customers will read


async def test_a_dry_home_publishes_nothing(memory: MemoryStore, published: AsyncMock) -> None:
    scored = counted("batches_scored")
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(home_record("dry-home", (NOW_MS, {"water_leak": 0.0, "temp_c": 21.0})), key=b"acme/dry-home")
        await until("the batch to be scored", lambda: scored() == 1)

    assert published.await_count == 0


async def test_records_breaking_the_contract_are_skipped_by_scoring_which_goes_on(
    memory: MemoryStore, published: AsyncMock
) -> None:
    scored = counted("batches_scored")
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(b"not json at all")
        await agent.put(orjson.dumps({"v": 1, "tenant": "acme"}))  # no device, kind, readings
        await agent.put(orjson.dumps({"v": 99, "tenant": "acme", "device": "x", "kind": "home", "readings": []}))
        await agent.put(home_record("after-bad", (NOW_MS, {"water_leak": 1.0})))
        await until("the good record's warning", lambda: published.await_count == 1)

    assert scored() == 1
    assert [w["device"] for _, w in warnings_sent(published)] == ["after-bad"]
    assert memory.refused.await_count == 0, "store_readings refuses readings records: one reject each, not two"


async def test_a_parameter_changed_for_a_running_device_applies_to_its_next_batch_with_what_it_learnt(
    memory: MemoryStore, published: AsyncMock
) -> None:
    scored = counted("batches_scored")
    key = b"acme/splash-home"
    memory.configure(DetectorParams("acme", "home", "splash-home", "water_leak", {"debounce_s": 600.0}))
    async with worker.score_device_readings.test_context() as agent:
        for minute in (0, 1):  # wet for a minute: not the 10 minutes this splash-prone spot needs
            await agent.put(home_record("splash-home", (NOW_MS + minute * MINUTE_MS, {"water_leak": 1.0})), key=key)
        await until("two batches scored", lambda: scored() == 2)
        assert published.await_count == 0

        memory.configure(DetectorParams("acme", "home", "splash-home", "water_leak", {"debounce_s": 90.0}))
        await agent.put(home_record("splash-home", (NOW_MS + 2 * MINUTE_MS, {"water_leak": 1.0})), key=key)
        await until("the leak to be published", lambda: published.await_count == 1)

    [(_, warning)] = warnings_sent(published)
    # wet for two minutes by then: the detector rebuilt with 90 s kept when the sensor got wet
    assert (warning["risk"], warning["action"], warning["evidence"]["wet_for_s"]) == ("water_leak", "open", 120.0)


async def test_a_worker_that_lost_its_live_monitors_restores_the_device_from_the_table(
    memory: MemoryStore, published: AsyncMock
) -> None:
    scored = counted("batches_scored")
    key = b"acme/restart-home"
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(home_record("restart-home", (NOW_MS, {"water_leak": 1.0})), key=key)
        await until("the leak to be published", lambda: published.await_count == 1)
        saved = orjson.loads(worker.device_to_monitor[key])  # plain versioned JSON, not a pickle
        assert saved["v"] == 1 and saved["open"].keys() == {"water_leak"}

        worker._live_monitors.clear()  # as after a rebalance: only the table's bytes are left
        await agent.put(home_record("restart-home", (NOW_MS + MINUTE_MS, {"water_leak": 1.0})), key=key)
        await until("the second batch to be scored", lambda: scored() == 2)

    assert published.await_count == 1, "the warning restored open is not sent again"


def dry_reading(minute: int) -> Reading:
    """A quiet home's reading ``minute`` minutes in (``seq`` = the minute)."""
    metrics = {"temp_c": 20.0 + minute / 10, "pipe_temp_c": 14.0 - minute / 20, "water_leak": 0.0}
    return Reading(NOW_MS + minute * MINUTE_MS, metrics, minute)


def dry_minute(device: str, minute: int) -> bytes:
    """:func:`dry_reading` as its own record, as ingest writes it as it arrives."""
    reading = dry_reading(minute)
    return readings_record("acme", device, "home", [reading], reading.ts)


def changelog_writes(key: bytes) -> tuple[Any, Callable[[], int]]:
    """Watch the table's changelog: the patch, and how many times ``key`` was written."""
    table = worker.device_to_monitor
    spy = patch.object(table, "send_changelog", wraps=table.send_changelog)
    started = spy.start()
    return spy, lambda: sum(1 for call in started.call_args_list if key in (*call.args, call.kwargs.get("key")))


async def test_a_chatty_devices_learning_is_written_once_and_its_records_held_until_then(
    memory: MemoryStore, published: AsyncMock
) -> None:
    key = b"acme/busy-home"
    scored = counted("batches_scored")
    held_before = worker.work.held
    spy, writes = changelog_writes(key)
    try:
        async with worker.score_device_readings.test_context() as agent:
            await agent.put(dry_minute("busy-home", 0), key=key)
            await until("the first record to be scored", lambda: scored() == 1)
            assert writes() == 1, "a device new to the table is written at once"
            for minute in range(1, 6):
                await agent.put(dry_minute("busy-home", minute), key=key)
            await until("the other five to be scored", lambda: scored() == 6)

            # nothing material changed: not written again, and the five records are not acknowledged
            assert writes() == 1
            assert worker.work.held - held_before == 5
            assert orjson.loads(worker.device_to_monitor[key])["readings_seen"] == 1

            assert worker.save_unsaved() == 1  # the timer's (or a rebalance's, or a stop's) save
            await asyncio.sleep(0)  # the records are let go once Kafka confirms the state
            assert writes() == 2 and worker.work.held == held_before
            assert orjson.loads(worker.device_to_monitor[key])["readings_seen"] == 6
    finally:
        spy.stop()
    assert published.await_count == 0


async def test_a_crash_before_the_learning_is_written_loses_nothing_kafka_delivers_its_records_again(
    memory: MemoryStore, published: AsyncMock
) -> None:
    key = b"acme/fast-home"
    scored = counted("batches_scored")
    never_stopped = DeviceMonitor("acme", "fast-home", "home")
    for minute in range(8):
        reading = dry_reading(minute)
        never_stopped.heard(reading.ts)
        never_stopped.observe(reading)
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(dry_minute("fast-home", 0), key=key)
        await until("the first record scored (and written: the device is new)", lambda: scored() == 1)
        for minute in range(1, 5):
            await agent.put(dry_minute("fast-home", minute), key=key)
        await until("five records scored", lambda: scored() == 5)
        assert orjson.loads(worker.device_to_monitor[key])["readings_seen"] == 1  # minutes 1-4 held, unsaved

        # the worker dies: its memory is gone, the table is what the changelog restores, and the
        # records it held were never acknowledged, so Kafka delivers them again
        held = worker._unsaved.pop(key).events
        worker.work.finish(held)  # (this test's bookkeeping: they are put again below)
        worker._live_monitors.clear()
        for minute in range(1, 8):
            await agent.put(dry_minute("fast-home", minute), key=key)
        await until("the records after the restart scored", lambda: scored() == 12)
        worker.save_unsaved()

    restored = orjson.loads(worker.device_to_monitor[key])
    assert restored == orjson.loads(orjson.dumps(never_stopped.to_state()))
    assert restored["readings_seen"] == 8 and restored["duplicates"] == 0


# ------------------------------------------------------------------------------ store_readings


async def test_readings_are_stored_once_even_when_the_record_is_replayed(memory: MemoryStore) -> None:
    stored = counted("readings_stored")
    bad = counted("bad_records")
    record = home_record(
        "store-home",
        (NOW_MS, {"temp_c": 20.5, "water_leak": 0.0}),
        (NOW_MS + MINUTE_MS, {"temp_c": 20.25, "water_leak": 1.0}),
    )
    async with worker.store_readings.test_context() as agent:
        await agent.put(record)
        await agent.put(b"\x00 not a readings record")
        await agent.put(record)  # at-least-once: Kafka may deliver it again
        await until("both copies to reach the store", lambda: memory.batches_seen == 2)

    assert memory.readings == {
        ("acme", "store-home", "temp_c", NOW_MS): 20.5,
        ("acme", "store-home", "water_leak", NOW_MS): 0.0,
        ("acme", "store-home", "temp_c", NOW_MS + MINUTE_MS): 20.25,
        ("acme", "store-home", "water_leak", NOW_MS + MINUTE_MS): 1.0,
    }
    assert stored() == 4
    assert bad() == 1
    assert [r["reason"] for r in memory.rejects()] == ["malformed_json"]


# ---------------------------------------------------------------------------- notify_customers


def leak_warning(device: str) -> WarningEvent:
    return WarningEvent(
        warning_id=warning_id("acme", device, "water_leak", NOW_MS),
        tenant="acme",
        device=device,
        kind="home",
        risk="water_leak",
        action="open",
        severity="critical",
        score=1.0,
        at_ms=NOW_MS,
        opened_at_ms=NOW_MS,
        predicted_loss_at_ms=NOW_MS + 20 * MINUTE_MS,
        evidence={"water_leak": True, "flow_lpm": 4.5},
    )


async def test_a_warning_reaches_the_customers_phone_and_a_failed_channel_is_recorded(
    memory: MemoryStore, sink: HttpSink
) -> None:
    phone, broken = sink.url("ana"), sink.url("down")
    memory.customers[("acme", "ana-home")] = {
        "id": "c-ana",
        "name": "Ana",
        "locale": "en",
        "notify_urls": [phone, broken],
    }
    event = leak_warning("ana-home")
    record = orjson.dumps(event.to_json())

    async with worker.notify_customers.test_context() as agent:
        await agent.put(record, key=b"acme/ana-home")
        # a critical leak goes to both channels; the broken one is tried three times (two retries)
        await until("both channels to be tried", lambda: sum(memory.attempts.values()) == 4)
        # the record again (a replay after a crash): nobody is messaged twice, nothing is retried again
        await agent.put(record, key=b"acme/ana-home")
        await asyncio.sleep(0.5)

    assert memory.warnings == [(event.warning_id, "open", "c-ana")] * 2
    assert memory.attempts == {(event.warning_id, "open", phone): 1, (event.warning_id, "open", broken): 3}
    assert [d.path for d in sink.received] == ["/ana"]
    assert "water" in sink.received[0].body["title"].lower()
    assert f"https://forewarn.test/a/{event.warning_id[:8]}" in sink.received[0].body["message"]
    assert (event.warning_id, "notified", "delivery:1") in memory.transitions
    assert [action for _, action in memory.followups] == ["remind@600", "staff@1200", "final@2700"]
    assert memory.deliveries[(event.warning_id, "open", phone)] == ("sent", None)
    status, error = memory.deliveries[(event.warning_id, "open", broken)]
    assert status == "failed" and error and "refused or did not answer" in error


async def test_a_resolve_is_recorded_but_sends_no_message(memory: MemoryStore, sink: HttpSink) -> None:
    memory.customers[("acme", "bo-home")] = {
        "id": "c-bo",
        "name": "Bo",
        "locale": "en",
        "notify_urls": [sink.url("bo")],
    }
    opened = leak_warning("bo-home")
    resolved = WarningEvent.from_json({**opened.to_json(), "action": "resolve", "at_ms": NOW_MS + 30 * MINUTE_MS})

    async with worker.notify_customers.test_context() as agent:
        await agent.put(orjson.dumps(resolved.to_json()))
        await until("the resolve to be recorded", lambda: len(memory.warnings) == 1)

    assert memory.warnings == [(opened.warning_id, "resolve", "c-bo")]
    assert memory.deliveries == {} and sink.received == []


async def test_a_warning_record_breaking_the_contract_is_counted_and_skipped(memory: MemoryStore) -> None:
    bad = counted("bad_records")
    async with worker.notify_customers.test_context() as agent:
        await agent.put(b"{}")  # no version
        await agent.put(b"[not json")
        await agent.put(orjson.dumps(leak_warning("no-customer").to_json()))
        await until("the good record to be recorded", lambda: len(memory.warnings) == 1)

    assert bad() == 2
    assert memory.warnings == [(leak_warning("no-customer").warning_id, "open", None)]
    assert [(r["reason"], r["topic"]) for r in memory.rejects()] == [
        ("bad_shape", "forewarn.warnings"),
        ("malformed_json", "forewarn.warnings"),
    ]


# ---------------------------------------------------------------------------- first notice of loss


def crash_warning(device: str) -> WarningEvent:
    return WarningEvent(
        warning_id=warning_id("acme", device, "vehicle_crash", NOW_MS),
        tenant="acme",
        device=device,
        kind="vehicle",
        risk="vehicle_crash",
        action="open",
        severity="critical",
        score=1.0,
        at_ms=NOW_MS,
        opened_at_ms=NOW_MS,
        predicted_loss_at_ms=NOW_MS,
        evidence={"impact_g": 17.5, "speed_kmh": 0.0, "stopped_after_s": 0.0, "speed_before_kmh": 68.0},
    )


async def test_a_crash_opens_one_claim_notice_for_the_claims_desk_and_the_customer_reads_its_reference(
    memory: MemoryStore, sink: HttpSink
) -> None:
    memory.customers[("acme", "lin-car")] = {
        "id": "c-lin",
        "name": "Lin",
        "locale": "en",
        "notify_urls": [sink.url("lin")],
    }
    memory.tenant_contacts[("acme", "claims")] = [sink.url("claims-desk")]
    before = [(NOW_MS - s * 1000, {"speed_kmh": 68.0, "lat": 31.2301, "lon": 121.4701}) for s in (700, 120, 60, 1)]
    await memory.store_readings(
        [readings_record_batch("lin-car", *before, (NOW_MS, {"speed_kmh": 0.0, "impact_g": 17.5}))]
    )
    record = orjson.dumps(crash_warning("lin-car").to_json())

    async with worker.notify_customers.test_context() as agent:
        await agent.put(record, key=b"acme/lin-car")
        await until("the claims desk and the customer to hear of it", lambda: len(sink.received) == 2)
        await agent.put(record, key=b"acme/lin-car")  # replayed: no second notice, nobody messaged twice
        await asyncio.sleep(0.5)

    [notice] = memory.claim_notices.values()
    ref = notice["ref"]
    assert ref.startswith("FNOL-20251121-") and len(ref) == len("FNOL-20251121-4F2A9C")
    assert (notice["lat"], notice["lon"]) == (31.2301, 121.4701), "the last position before the crash"
    series = notice["readings"]["series"]
    assert len(series["speed_kmh"]) == 4, "the readings of the 10 minutes before, the one 700 s before left out"
    assert series["impact_g"] == [[NOW_MS, 17.5]]
    desk = next(d for d in sink.received if d.path == "/claims-desk")
    phone = next(d for d in sink.received if d.path == "/lin")
    assert ref in desk.body["title"] and "Vehicle crash" in desk.body["title"]
    assert "17.5 g" in desk.body["message"] and "31.23010, 121.47010" in desk.body["message"]
    assert ref in phone.body["message"] and "claim notice" in phone.body["message"]
    assert len(sink.received) == 2
    assert memory.attempts == {
        (notice["warning_id"], "claim", sink.url("claims-desk")): 1,
        (notice["warning_id"], "open", sink.url("lin")): 1,
    }


def readings_record_batch(device: str, *readings: tuple[int, dict[str, float]]) -> ReadingsBatch:
    """A vehicle's readings as the store receives them."""
    batch = tuple(Reading(ts, metrics, seq) for seq, (ts, metrics) in enumerate(readings))
    return ReadingsBatch("acme", device, "vehicle", batch, NOW_MS)


def freeze_warning(device: str, minute: int) -> WarningEvent:
    return WarningEvent(
        warning_id=warning_id("acme", device, "freeze_risk", NOW_MS + minute * MINUTE_MS),
        tenant="acme",
        device=device,
        kind="home",
        risk="freeze_risk",
        action="open",
        severity="warning",
        score=0.7,
        at_ms=NOW_MS + minute * MINUTE_MS,
        opened_at_ms=NOW_MS + minute * MINUTE_MS,
        predicted_loss_at_ms=NOW_MS + (minute + 180) * MINUTE_MS,
        evidence={"pipe_temp_c": 2.1, "pipe_trend_c_per_h": -0.6},
    )


async def test_a_slow_channel_does_not_hold_up_another_customers_message(
    memory: MemoryStore, sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifiers import channels

    real_send, finished = channels.send, []

    def send(url: str, title: str, body: str) -> channels.SendResult:
        if "/slow" in url:
            time.sleep(2.0)  # a gateway that takes its time to answer
        result = real_send(url, title, body)
        finished.append(url.rsplit("/", 1)[-1])
        return result

    monkeypatch.setattr(channels, "send", send)
    memory.customers[("acme", "slow-home")] = {
        "id": "c-slow",
        "name": "Slow",
        "locale": "en",
        "notify_urls": [sink.url("slow")],
    }
    memory.customers[("acme", "fast-home")] = {
        "id": "c-fast",
        "name": "Fast",
        "locale": "en",
        "notify_urls": [sink.url("fast")],
    }
    notifier = worker._dispatcher
    assert notifier is not None
    await notifier.handle(freeze_warning("slow-home", 0))  # the slow customer's message is first in the outbox
    await notifier.handle(freeze_warning("fast-home", 1))
    await notifier.flush()
    assert finished == ["fast", "slow"], "the message behind the slow channel went out without waiting for it"
    assert sorted(d.path for d in sink.received) == ["/fast", "/slow"]


async def test_messages_held_by_the_budget_go_out_as_one_digest(memory: MemoryStore, sink: HttpSink) -> None:
    memory.customers[("acme", "busy-home")] = {
        "id": "c-busy",
        "name": "Busy",
        "locale": "en",
        "notify_urls": [sink.url("busy")],
    }
    notifier = worker._dispatcher
    assert notifier is not None
    events = [freeze_warning("busy-home", minute) for minute in (0, 1, 2)]
    for event in events:
        memory.events[event.warning_id] = (event, "c-busy")
        await memory.enqueue(
            event.warning_id, "open", "customer", 0, sink.url("busy"), "json://…/busy", held_reason="budget"
        )
    await notifier.flush()
    assert len(sink.received) == 1, "three held messages, one digest"
    assert all(memory.deliveries[(e.warning_id, "open", sink.url("busy"))][0] == "sent" for e in events)


# ---------------------------------------------------------------------------- records that are not to be trusted


def hostile(device: str = "store-home", tenant: str = "acme", kind: str = "home", **reading: Any) -> bytes:
    """A readings record written straight to Kafka, not by ingest."""
    one = {"ts": NOW_MS, "metrics": {"temp_c": 20.0}, "seq": 1, **reading}
    doc = {"v": 1, "tenant": tenant, "device": device, "kind": kind, "ingested_at": NOW_MS, "readings": [one]}
    return orjson.dumps(doc)


async def test_hostile_readings_records_are_refused_with_reasons_and_neither_stored_nor_scored(
    memory: MemoryStore, published: AsyncMock
) -> None:
    records = [
        hostile().replace(b"20.0", b"NaN"),
        hostile().replace(b"20.0", b"Infinity"),
        hostile(metrics={"flux_capacitor": 1.21}),
        hostile(device="ghost-9"),
        hostile(tenant="x'; DROP TABLE readings;--"),
        hostile(kind="bogus"),
        hostile(seq=2**63),
    ]
    valid = home_record("after-hostile", (NOW_MS, {"water_leak": 1.0}))
    scored = counted("batches_scored")
    async with worker.store_readings.test_context() as storing, worker.score_device_readings.test_context() as scoring:
        for record in [*records, valid]:
            await storing.put(record)
            await scoring.put(record)
        await until("the valid record to be stored", lambda: memory.batches_seen == 1)
        await until("the valid record to be scored", lambda: scored() == 1)

    assert [r["reason"] for r in memory.rejects()] == [
        "malformed_json",
        "malformed_json",
        "unknown_metric",
        "unknown_device",
        "bad_tenant",
        "bad_kind",
        "bad_seq",
    ]
    assert {r["topic"] for r in memory.rejects()} == {"forewarn.readings"}
    assert memory.rejects()[4]["payload"].startswith('{"v":1,"tenant":"x\'; DROP TABLE readings;--"')
    assert memory.readings == {("acme", "after-hostile", "water_leak", NOW_MS): 1.0}
    assert [w["device"] for _, w in warnings_sent(published)] == ["after-hostile"]


async def test_a_registered_device_of_a_kind_no_profile_knows_does_not_stop_scoring(
    memory: MemoryStore, published: AsyncMock
) -> None:
    memory.registry["acme/odd-box"] = "bogus"  # devices.kind is free text in the database
    scored = counted("batches_scored")
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(hostile(device="odd-box", kind="bogus"), key=b"acme/odd-box")
        await agent.put(home_record("after-odd", (NOW_MS, {"water_leak": 1.0})), key=b"acme/after-odd")
        await until("the next record's warning", lambda: published.await_count == 1)
    assert scored() == 1
    assert b"acme/odd-box" not in worker._live_monitors


async def test_a_device_registered_after_the_registry_was_read_is_looked_up_at_once(
    memory: MemoryStore, published: AsyncMock
) -> None:
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(home_record("after-hostile", (NOW_MS, {"water_leak": 0.0})), key=b"acme/after-hostile")
        await until("the registry to be read", lambda: worker.devices.kinds is not None)
        memory.registry["acme/just-added"] = "home"  # ingest knew it already: the worker must too
        await agent.put(home_record("just-added", (NOW_MS, {"water_leak": 1.0})), key=b"acme/just-added")
        await until("the new device's warning", lambda: published.await_count == 1)
    assert memory.rejects() == []


class RefusingStore(MemoryStore):
    """The database refuses any batch holding a reading of ``poison`` (as PostgreSQL refuses a
    value out of a column's range); ``outages`` writes fail first with a lost connection."""

    def __init__(self, poison: float, outages: int = 0) -> None:
        super().__init__()
        self.poison = poison
        self.outages = outages
        self.write_attempts = 0

    async def store_readings(self, batches: Iterable[ReadingsBatch]) -> int:
        batches = list(batches)
        self.write_attempts += 1
        if self.outages:
            self.outages -= 1
            raise psycopg.OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
        if any(self.poison in r.metrics.values() for b in batches for r in b.readings):
            raise psycopg.errors.NumericValueOutOfRange("value out of range for type bigint")
        return await super().store_readings(batches)


async def test_a_record_the_database_refuses_is_set_aside_and_the_records_after_it_are_stored(
    memory: MemoryStore,
) -> None:
    db = RefusingStore(poison=66.6)
    db.refused = memory.refused
    worker.use_store(db)
    with patch.object(worker, "set_aside", functools.partial(set_aside_into, db)):
        async with worker.store_readings.test_context() as agent:
            await agent.put(home_record("store-home", (NOW_MS, {"temp_c": 20.0})), key=b"acme/store-home")
            await agent.put(home_record("dry-home", (NOW_MS, {"temp_c": 66.6})), key=b"acme/dry-home")
            await agent.put(home_record("leak-home", (NOW_MS, {"temp_c": 21.0})), key=b"acme/leak-home")
            await until("the poison record to be set aside", lambda: len(db.dead_letters) == 1, timeout=10)
            await until("the others to be stored", lambda: len(db.readings) == 2)

    [letter] = db.dead_letters
    assert (letter.topic, letter.key, letter.partition) == ("forewarn.readings", b"acme/dry-home", 0)
    assert isinstance(letter.offset, int)
    assert orjson.loads(letter.record)["device"] == "dry-home", "the record kept whole, as read"
    assert letter.reason.startswith("NumericValueOutOfRange [22003]: value out of range")
    assert set(db.readings) == {
        ("acme", "store-home", "temp_c", NOW_MS),
        ("acme", "leak-home", "temp_c", NOW_MS),
    }
    assert memory.rejects() == [], "set aside, not refused: the record broke no rule of the contract"


async def test_an_outage_is_waited_out_never_set_aside_and_the_status_reports_the_records_held(
    memory: MemoryStore, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = RefusingStore(poison=-1.0, outages=3)
    worker.use_store(db)
    status = StatusFile(tmp_path / "worker.json")
    status.mark_ready()
    monkeypatch.setattr(worker, "status", status)
    async with worker.store_readings.test_context() as agent:
        await agent.put(home_record("store-home", (NOW_MS, {"temp_c": 20.0})), key=b"acme/store-home")
        await until("the first failed write", lambda: db.write_attempts >= 1)
        worker.report()  # the timer's report, while the agent waits on the database
        held = read_status(tmp_path / "worker.json")
        await until("the write after the outage", lambda: len(db.readings) == 1, timeout=15)
        await until("the record to be finished", lambda: worker.work.held == 0)
        worker.report()

    assert held is not None and held["pending"] == 1 and held["database_down_s"] >= 0
    assert worker.database.outages >= 1 and not worker.database.down
    assert db.dead_letters == [] and memory.rejects() == []
    assert read_status(tmp_path / "worker.json")["pending"] == 0  # type: ignore[index]


async def set_aside_into(db: MemoryStore, store: Store, letters: Sequence[DeadLetter]) -> int:
    db.dead_letters.extend(letters)
    return len(letters)
