"""The worker's silence agents without a broker, through Faust's ``agent.test_context()``.

A status record (``forewarn.status``) or a clock tick (``forewarn.ticks``) reaches the device's
monitor as a readings record does; a silent leak sensor publishes a ``device_silent`` warning,
a silent car only a counter; the timer's half puts a tick on Kafka for each device whose
silence is due, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from unittest.mock import AsyncMock, patch

import orjson
import pytest

import streams.app as worker
from core.contract import DeviceStatus, Reading, readings_record, status_record, tick_record

NOW_MS = 1_763_700_000_000
MIN_MS = 60_000
H_MS = 60 * MIN_MS


class ConfigStore:
    """The only Store calls these agents make: the detector configuration."""

    def __init__(self, overrides: dict[str, dict[str, Any]] | None = None) -> None:
        self.overrides = overrides or {}

    async def detector_overrides(self, tenant: str, kind: str, device: str) -> dict[str, dict[str, Any]]:
        return self.overrides

    async def detector_config_version(self) -> int:
        return 1

    async def devices(self) -> dict[str, str]:
        """The registry the worker re-checks records against."""
        homes = ("leak-off", "leak-quiet", "leak-due", "leak-fresh", "leak-restart", "never-seen")
        return {"acme/car-quiet": "vehicle", **{f"acme/{device}": "home" for device in homes}}

    async def device_kind(self, tenant: str, device: str) -> str | None:
        return (await self.devices()).get(f"{tenant}/{device}")


@pytest.fixture
async def config() -> AsyncIterator[ConfigStore]:
    worker.app.loop = asyncio.get_running_loop()
    worker.app.finalize()
    worker.app.flow_control.resume()
    store = ConfigStore()
    worker.use_store(store)  # type: ignore[arg-type]
    worker.detector_config = worker.DetectorConfig(refresh_s=0.0)
    yield store
    worker.save_unsaved()  # what the worker's timer does: the scored records it held are let go
    worker.use_store(None)
    worker.detector_config = worker.DetectorConfig()


@pytest.fixture
def published() -> Iterator[AsyncMock]:
    with patch.object(worker.warnings_topic, "send", new_callable=AsyncMock) as send:
        yield send


def sent(send: AsyncMock) -> list[dict[str, Any]]:
    return [orjson.loads(call.kwargs["value"]) for call in send.await_args_list]


def counted(name: str) -> Callable[[], int]:
    start = worker.counters[name]
    return lambda: worker.counters[name] - start


async def until(what: str, probe: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def readings(device: str, kind: str, arrived_ms: int, metrics: dict[str, float]) -> bytes:
    return readings_record("acme", device, kind, [Reading(arrived_ms, metrics, 1)], arrived_ms)


async def score(device: str, kind: str, arrived_ms: int, metrics: dict[str, float]) -> None:
    scored = counted("batches_scored")
    async with worker.score_device_readings.test_context() as agent:
        await agent.put(readings(device, kind, arrived_ms, metrics), key=f"acme/{device}".encode())
        await until("the batch to be scored", lambda: scored() == 1)


async def test_an_offline_leak_sensor_with_no_grace_publishes_device_silent(
    config: ConfigStore, published: AsyncMock
) -> None:
    config.overrides = {"device_silent": {"offline_grace_s": 0.0}}
    statuses = counted("statuses")
    async with worker.watch_device_status.test_context() as agent:
        record = status_record("acme", "leak-off", "home", DeviceStatus("offline"), NOW_MS)
        await agent.put(record, key=b"acme/leak-off")
        await until("the status to be noted", lambda: statuses() == 1)

    [warning] = sent(published)
    assert (warning["device"], warning["risk"], warning["action"], warning["severity"]) == (
        "leak-off",
        "device_silent",
        "open",
        "warning",
    )
    assert warning["evidence"]["reason"] == "offline" and warning["at_ms"] == NOW_MS


async def test_a_tick_finds_a_quiet_leak_sensor_silent_and_its_readings_resolve_it(
    config: ConfigStore, published: AsyncMock
) -> None:
    await score("leak-quiet", "home", NOW_MS, {"water_leak": 0.0})
    assert published.await_count == 0
    async with worker.check_device_silence.test_context() as agent:
        await agent.put(tick_record("acme", "leak-quiet", "home", NOW_MS + 30 * MIN_MS), key=b"acme/leak-quiet")
        await agent.put(tick_record("acme", "leak-quiet", "home", NOW_MS + 6 * H_MS), key=b"acme/leak-quiet")
        await until("the silence warning", lambda: published.await_count == 1)
    await score("leak-quiet", "home", NOW_MS + 7 * H_MS, {"water_leak": 0.0})

    opened, resolved = sent(published)
    assert (opened["risk"], opened["action"], opened["at_ms"]) == ("device_silent", "open", NOW_MS + 6 * H_MS)
    assert (resolved["risk"], resolved["action"], resolved["warning_id"]) == (
        "device_silent",
        "resolve",
        opened["warning_id"],
    )


async def test_a_silent_car_is_counted_and_nobody_is_told(config: ConfigStore, published: AsyncMock) -> None:
    unprotected = counted("silent_unprotected")
    await score("car-quiet", "vehicle", NOW_MS, {"speed_kmh": 0.0})
    async with worker.check_device_silence.test_context() as agent:
        await agent.put(tick_record("acme", "car-quiet", "vehicle", NOW_MS + 6 * H_MS), key=b"acme/car-quiet")
        await until("the silence to be counted", lambda: unprotected() == 1)
    assert published.await_count == 0


async def test_a_tick_for_a_device_never_scored_is_ignored(config: ConfigStore, published: AsyncMock) -> None:
    async with worker.check_device_silence.test_context() as agent:
        await agent.put(tick_record("acme", "never-seen", "home", NOW_MS), key=b"acme/never-seen")
        await agent.put(b"not a tick")
        await asyncio.sleep(0.1)
    assert published.await_count == 0 and worker.device_to_monitor.get(b"acme/never-seen") is None


async def test_the_timer_asks_once_for_each_device_whose_silence_is_due(config: ConfigStore) -> None:
    await score("leak-due", "home", NOW_MS, {"water_leak": 0.0})
    await score("leak-fresh", "home", NOW_MS + 5 * H_MS, {"water_leak": 0.0})
    with patch.object(worker.ticks_topic, "send", new_callable=AsyncMock) as send:
        assert await worker.send_silence_ticks(NOW_MS + 5 * H_MS + 30_000) >= 1
        ticks = {call.kwargs["key"]: orjson.loads(call.kwargs["value"]) for call in send.await_args_list}
        assert b"acme/leak-due" in ticks and b"acme/leak-fresh" not in ticks
        assert ticks[b"acme/leak-due"]["now"] == NOW_MS + 5 * H_MS + 30_000
        send.reset_mock()
        await worker.send_silence_ticks(NOW_MS + 5 * H_MS + 60_000)  # asked already: the tick is on its way
        assert b"acme/leak-due" not in {call.kwargs["key"] for call in send.await_args_list}


async def test_after_a_restart_the_timer_finds_the_devices_in_the_table(config: ConfigStore) -> None:
    await score("leak-restart", "home", NOW_MS, {"water_leak": 0.0})
    worker._live_monitors.pop(b"acme/leak-restart")  # what a new worker process has: the table only
    with patch.object(worker.ticks_topic, "send", new_callable=AsyncMock) as send:
        await worker.send_silence_ticks(NOW_MS + 6 * H_MS)
    assert b"acme/leak-restart" in {call.kwargs["key"] for call in send.await_args_list}


def test_no_silence_is_decided_while_readings_are_scored_far_behind_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_silence_clock", {"settled_from": time.monotonic() - 2 * worker.SILENCE_SETTLE_S})
    monkeypatch.setattr(worker, "_scoring_lag", {"lag_ms": 0.0, "at": time.monotonic()})
    assert worker._silence_clock_trusted()
    worker._scoring_lag.update(lag_ms=10 * 60_000.0, at=time.monotonic())  # a backlog being caught up
    assert not worker._silence_clock_trusted()
    worker._silence_clock["settled_from"] = None  # just started: it settles first
    worker._scoring_lag.update(lag_ms=0.0)
    assert not worker._silence_clock_trusted()
