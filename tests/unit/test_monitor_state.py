"""A device's monitor saved as plain data and restored, as the worker does across restarts.

The worker writes ``DeviceMonitor.to_state()`` (JSON bytes) to its changelog after every batch
and rebuilds the monitor with ``DeviceMonitor.from_state`` from detectors built with the
configuration in force at that moment. Restored, a device must decide exactly as if it had
never been saved; a parameter changed meanwhile must take effect while what the detectors
learnt is kept; saved state nobody knows any more must not stop a device from being scored.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
import pytest

from core.contract import DEVICE_KINDS, Reading, WarningEvent
from detectors.profiles import build_detectors
from simulator.fleet import Fleet, standard_library
from streams.decisions import STATE_VERSION, DeviceMonitor, detectors_for

T0_MS = 1_763_654_400_000  # 2025-11-21 00:00 in China
MIN_MS = 60_000


def through_json(monitor: DeviceMonitor) -> dict:  # type: ignore[type-arg]
    """What the worker writes to its changelog and reads back."""
    return orjson.loads(orjson.dumps(monitor.to_state()))


def cooling_pipe(minutes: range, start_c: float = 6.0, per_hour_c: float = 1.0) -> list[Reading]:
    """A pipe in an unheated room cooling steadily, one reading every 5 minutes."""
    return [
        Reading(T0_MS + m * MIN_MS, {"pipe_temp_c": start_c - per_hour_c * m / 60, "temp_c": 12.0}, m)
        for m in minutes
        if m % 5 == 0
    ]


def observe_all(monitor: DeviceMonitor, readings: list[Reading]) -> list[WarningEvent]:
    return [event for reading in readings for event in monitor.observe(reading)]


# ---------------------------------------------------------------------- the simulator's devices


@functools.cache
def library() -> Fleet:
    return standard_library(7)


def one_device_per_scenario() -> list[Any]:
    picked: dict[tuple[str, str | None], str] = {}
    for device in library().devices:
        picked.setdefault((device.kind, device.scenario), device.device)
    assert {kind for kind, _ in picked} == set(DEVICE_KINDS)
    return [pytest.param(device, id=f"{kind}-{scenario or 'quiet'}") for (kind, scenario), device in picked.items()]


@pytest.mark.parametrize("device", one_device_per_scenario())
def test_a_device_saved_halfway_and_restored_decides_as_if_never_saved(device: str) -> None:
    sim = library().device(device)
    readings = [
        Reading(int(r.ts_ms), {k: float(v) for k, v in r.metrics.items()}, r.seq) for r in library().readings(sim)
    ]
    half = len(readings) // 2
    never_saved = DeviceMonitor(sim.tenant, sim.device, sim.kind)
    first_half = observe_all(never_saved, readings[:half])
    saved = through_json(never_saved)

    restored = DeviceMonitor.from_state(saved, build_detectors(sim.kind))
    assert restored.to_state() == saved
    second_half = observe_all(restored, readings[half:])
    assert second_half == observe_all(never_saved, readings[half:])
    if sim.scenario is not None:
        assert first_half + second_half, "a device with an incident warns: the comparison has something to compare"


def test_the_state_is_plain_versioned_data_without_classes_or_parameters() -> None:
    monitor = DeviceMonitor("acme", "home-1", "home")
    observe_all(monitor, cooling_pipe(range(0, 120)))
    state = monitor.to_state()
    assert state["v"] == STATE_VERSION
    assert (state["tenant"], state["device"], state["kind"]) == ("acme", "home-1", "home")
    assert "sensor_stuck:pipe_temp_c" in state["detectors"] and "sensor_stuck:temp_c" in state["detectors"]
    text = orjson.dumps(state).decode()
    assert "detectors." not in text and "FreezeRisk" not in text  # no class paths
    assert "horizon_s" not in text and "window_s" not in text  # no parameters


# ---------------------------------------------------------------------- configuration changes


def test_a_parameter_changed_for_a_device_with_state_takes_effect_and_keeps_what_was_learnt() -> None:
    early = cooling_pipe(range(0, 95))  # 6 °C falling 1 °C an hour: zero in about 4.5 h
    later = cooling_pipe(range(95, 100))
    short = DeviceMonitor("acme", "home-1", "home", build_detectors("home", {"freeze_risk": {"horizon_s": 3600.0}}))
    assert observe_all(short, early) == []  # 4.5 h away is beyond a 1 h horizon
    saved = through_json(short)

    unchanged = DeviceMonitor.from_state(saved, build_detectors("home", {"freeze_risk": {"horizon_s": 3600.0}}))
    assert observe_all(unchanged, later) == []

    # the tenant widens the horizon to the profile's 6 h: the next reading warns, with the
    # trend learnt before the change (a fresh detector would need an hour of readings first)
    widened = DeviceMonitor.from_state(saved, build_detectors("home"))
    events = observe_all(widened, later)
    assert [(e.risk, e.action) for e in events] == [("freeze_risk", "open")]
    assert 3 * 3600_000 < events[0].predicted_loss_at_ms - events[0].at_ms < 5 * 3600_000
    assert observe_all(DeviceMonitor("acme", "home-1", "home"), later) == []


def test_configuration_that_no_longer_builds_leaves_that_detector_on_its_profile() -> None:
    detectors = detectors_for("home", {"freeze_risk": {"horizon": 3600}, "water_leak": {"debounce_s": 60.0}})
    by_name = {d.instance_name: d for d in detectors}
    assert by_name["freeze_risk"].horizon_s == 6 * 3600.0  # type: ignore[attr-defined]
    assert by_name["water_leak"].debounce_s == 60.0  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- state that does not fit


def test_unknown_and_renamed_detectors_in_saved_state_do_not_stop_the_restore() -> None:
    monitor = DeviceMonitor("acme", "home-1", "home")
    opened = observe_all(monitor, [Reading(T0_MS, {"water_leak": 1.0}, 1)])
    assert [e.action for e in opened] == ["open"]
    saved = through_json(monitor)
    saved["detectors"]["pipe_freeze"] = saved["detectors"].pop("freeze_risk")  # a detector renamed since
    saved["detectors"]["water_leak"] = {"v": 1, "state": {"_wet_since": 5.0}}  # its state reshaped since
    saved["detectors"]["sensor_stuck:temp_c"] = {"v": 99, "state": {}}  # saved by newer code
    saved["detectors"]["telepathy"] = {"v": 1, "state": {"_mood": "calm"}}  # a detector nobody has

    restored = DeviceMonitor.from_state(saved, build_detectors("home"))
    assert restored.open.keys() == {"water_leak"}  # the open warning survives the restore
    assert observe_all(restored, [Reading(T0_MS + MIN_MS, {"water_leak": 1.0}, 2)]) == []  # no repeat
    assert restored.readings_seen == 2


def test_state_of_another_version_is_refused_with_a_reason() -> None:
    saved = through_json(DeviceMonitor("acme", "home-1", "home"))
    with pytest.raises(ValueError, match="version"):
        DeviceMonitor.from_state({**saved, "v": STATE_VERSION + 1})
    with pytest.raises(ValueError, match="shape"):
        DeviceMonitor.from_state({"v": STATE_VERSION, "tenant": "acme"})
