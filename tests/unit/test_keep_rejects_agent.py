"""The worker keeps what ingest refused (``keep_rejects`` on ``forewarn.rejects``), without a
broker or a database: Faust's ``agent.test_context()`` and a stand-in for ``core.db.store_rejects``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest

import streams.app as worker
from core.contract import RejectRecord, reject_record
from core.db import Store


@pytest.fixture
async def kept(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[RejectRecord]]:
    """What the agent hands to the database, on this test's loop (Faust's testing guide)."""
    worker.app.loop = asyncio.get_running_loop()
    worker.app.finalize()
    worker.app.flow_control.resume()
    records: list[RejectRecord] = []

    async def store_rejects(store: Store, batch: Sequence[RejectRecord]) -> int:
        records.extend(batch)
        return len(batch)

    monkeypatch.setattr(worker, "store_rejects", store_rejects)
    worker.use_store(Store("postgresql://in-memory.invalid/unused"))  # never opened: no real call may reach it
    yield records
    worker.use_store(None)


async def test_refused_messages_are_kept_with_their_device_and_a_broken_record_is_skipped(
    kept: list[RejectRecord],
) -> None:
    bad_before = worker.counters["bad_records"]
    kept_before = worker.counters.get("rejects_kept", 0)
    now = 1_763_700_000_000
    async with worker.keep_rejects.test_context() as agent:
        await agent.put(
            reject_record("unknown_metric", "no metric 'flux'", "forewarn/v1/acme/home-1/telemetry", b"{}", now)
        )
        await agent.put(b"\x00 not a reject record")
        await agent.put(reject_record("bad_topic", "not a forewarn topic", "x/y", {"a": 1}, now + 1))
        deadline = time.monotonic() + 5
        while len(kept) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    assert [(r.tenant, r.device, r.reason) for r in kept] == [
        ("acme", "home-1", "unknown_metric"),
        ("", "", "bad_topic"),  # a topic that names no tenant is kept, seen by no tenant
    ]
    assert worker.counters["bad_records"] == bad_before + 1
    assert worker.counters["rejects_kept"] == kept_before + 2
