"""A device's monitor saved as plain data and restored, as the worker does across restarts.

The worker writes ``DeviceMonitor.to_state()`` (JSON bytes) to its changelog after every batch
and rebuilds the monitor with ``DeviceMonitor.from_state`` from detectors built with the
configuration in force at that moment. Restored, a device must decide as if it had never been
saved (the same warnings, opened, escalated and resolved at the same readings; a trend is saved
as float32, so a figure it gives may differ in its last digits); a parameter changed meanwhile
must take effect while what the detectors learnt is kept; saved state nobody knows any more, or
saved in the older, uncompacted form, must not stop a device from being scored.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
import pytest
from sim_devices import device_readings, library, one_device_per_scenario

from core.contract import DEVICE_KINDS, Reading, WarningEvent
from detectors.profiles import build_detectors
from detectors.state import capture
from simulator.fleet import Fleet
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


def decisions(events: list[WarningEvent]) -> list[tuple[Any, ...]]:
    """What was decided and when: which warning, what happened to it, how severe, at which reading."""
    return [(e.warning_id, e.risk, e.action, e.severity, e.at_ms, e.opened_at_ms) for e in events]


def assert_same_figures(got: list[WarningEvent], want: list[WarningEvent]) -> None:
    """Scores, predicted times and evidence as the live monitor's, up to float32 rounding."""
    for a, b in zip(got, want, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-3)
        if b.predicted_loss_at_ms is None:
            assert a.predicted_loss_at_ms is None
        else:
            assert a.predicted_loss_at_ms == pytest.approx(b.predicted_loss_at_ms, abs=60_000)
        assert a.evidence.keys() == b.evidence.keys()
        for key, value in b.evidence.items():
            if isinstance(value, float):
                assert a.evidence[key] == pytest.approx(value, rel=1e-3, abs=0.01), key
            else:
                assert a.evidence[key] == value, key


# ---------------------------------------------------------------------- the simulator's devices


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
    live = observe_all(never_saved, readings[half:])
    assert decisions(second_half) == decisions(live)
    assert_same_figures(second_half, live)
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
    assert 3 * 3600 < events[0].evidence["predicted_zero_at_s"] - events[0].at_ms / 1000 < 5 * 3600
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


# ---------------------------------------------------------------------- compact state


WEEK_START_MS = 1_763_654_400_000
HOUR_MS = 3_600_000


@functools.cache
def eight_days() -> Fleet:
    """One device per scenario over eight simulated days (incidents fall within the first week)."""
    from simulator.fleet import build_fleet

    return build_fleet(7, quiet_ratio=0.0, start_ms=WEEK_START_MS, duration_s=8 * 86400)


@pytest.mark.parametrize("lead_h", [1, 6])
def test_restored_hours_before_each_warning_a_device_decides_the_same_for_the_following_day(lead_h: int) -> None:
    """The worker may restore a device at any moment, also while a risk builds up. Restored
    ``lead_h`` hours before each warning of a simulated week opens, every device gives the same
    warnings over the next day: same risks, actions and severities, and (a trend restored from
    float32, its oldest buckets merged) at most ten minutes apart. Six hours ahead, measured,
    at the very same readings; one hour ahead a freeze or battery warning may come a reading
    or a few later (a merged bucket of the trend leaves its window with its newest point)."""
    fleet = eight_days()
    restores = shifted = 0
    for sim in fleet.devices:
        readings = device_readings(fleet, sim.device)
        live = DeviceMonitor(sim.tenant, sim.device, sim.kind)
        events = []
        for reading in readings:
            live.heard(reading.ts)
            events.extend(live.observe(reading))
        cuts = sorted({e.at_ms - lead_h * HOUR_MS for e in events if e.action == "open"})
        for cut in cuts:
            monitor = DeviceMonitor(sim.tenant, sim.device, sim.kind)
            day = []
            for reading in readings:
                if reading.ts >= cut + 24 * HOUR_MS:
                    break
                if reading.ts >= cut and not day:
                    monitor = DeviceMonitor.from_state(through_json(monitor), build_detectors(sim.kind))
                    day.append(reading)
                elif day:
                    day.append(reading)
                else:
                    monitor.heard(reading.ts)
                    monitor.observe(reading)
            got = []
            for reading in day:
                monitor.heard(reading.ts)
                got.extend(monitor.observe(reading))
            want = [e for e in events if cut <= e.at_ms < cut + 24 * HOUR_MS]
            assert [(e.risk, e.action, e.severity) for e in got] == [(e.risk, e.action, e.severity) for e in want]
            assert all(abs(a.at_ms - b.at_ms) <= 10 * 60_000 for a, b in zip(got, want, strict=True))
            restores += 1
            shifted += decisions(got) != decisions(want)
    assert restores >= 15, "every scenario's warnings give a restore to compare"
    if lead_h >= 6:
        assert shifted == 0


def test_after_a_simulated_week_a_device_of_any_kind_saves_at_most_4_kb() -> None:
    """The issue's bound (a million devices in a few GB of changelog): a quiet device of each
    kind after a week of readings, as ``benchmarks/device_state_size.py`` measures it."""
    from simulator.fleet import build_fleet

    fleet = build_fleet(7, devices=len(DEVICE_KINDS), quiet_ratio=1.0, start_ms=WEEK_START_MS, duration_s=7 * 86400)
    sizes = {}
    for sim in fleet.devices:
        monitor = DeviceMonitor(sim.tenant, sim.device, sim.kind)
        for reading in device_readings(fleet, sim.device):
            monitor.heard(reading.ts)
            monitor.observe(reading)
        sizes[sim.kind] = len(orjson.dumps(monitor.to_state()))
    assert set(sizes) == set(DEVICE_KINDS)
    assert all(size <= 4096 for size in sizes.values()), sizes


def test_state_saved_by_the_previous_version_uncompacted_restores_exactly() -> None:
    """Before trends were packed, every float was saved as it was (``capture(compact=False)``
    writes that form still). A device saved so goes on exactly as if never saved, and saves
    itself compactly from then on."""
    sim = library().device("home-frozen-pipe-01")
    readings = device_readings(library(), sim.device)
    half = len(readings) // 2
    live = DeviceMonitor(sim.tenant, sim.device, sim.kind)
    observe_all(live, readings[:half])
    old = orjson.loads(orjson.dumps(live.to_state()))
    old["detectors"] = {name: capture(d, compact=False) for name, d in live._named_detectors()}
    old = orjson.loads(orjson.dumps(old))
    assert '"packed"' not in orjson.dumps(old).decode() and '"_buckets"' in orjson.dumps(old).decode()

    restored = DeviceMonitor.from_state(old, build_detectors(sim.kind))
    assert [name for name, d in restored._named_detectors()] == [name for name, d in live._named_detectors()]
    assert observe_all(restored, readings[half:]) == observe_all(live, readings[half:])
    assert '"packed"' in orjson.dumps(restored.to_state()).decode()


def test_a_trend_saved_compactly_that_does_not_read_leaves_its_detector_afresh() -> None:
    monitor = DeviceMonitor("acme", "home-1", "home")
    observe_all(monitor, cooling_pipe(range(0, 120)))
    saved = through_json(monitor)
    packed = saved["detectors"]["freeze_risk"]["state"]["_trend"]["packed"]
    packed["f32"] = packed["f32"][:-8]  # truncated
    restored = DeviceMonitor.from_state(saved, build_detectors("home"))
    fresh = build_detectors("home")[1]
    assert restored.detectors[1].instance_name == "freeze_risk"
    assert capture(restored.detectors[1]) == capture(fresh)


@pytest.mark.parametrize("device", one_device_per_scenario())
def test_every_instance_of_a_detector_class_holds_the_same_state_attributes(device: str) -> None:
    """``detectors.state.state_names`` reads a class's state attributes from its first instance
    (``vars()`` would slow every later attribute read of the instance it is called on): each
    detector, after its readings, and each built with another value of any numeric parameter,
    holds exactly them."""
    import inspect

    from detectors.base import parameter_names
    from detectors.state import state_names

    def own(detector: object) -> set[str]:
        config = set(parameter_names(type(detector)))
        return {n for n in vars(detector) if n not in config and n != "metrics"}

    sim = library().device(device)
    monitor = DeviceMonitor(sim.tenant, sim.device, sim.kind)
    for reading in device_readings(library(), device):
        monitor.observe(reading)
    checked = 0
    for detector in monitor.detectors:
        cls = type(detector)
        assert own(detector) == set(state_names(detector)), cls.__name__
        for name, parameter in inspect.signature(cls).parameters.items():
            if type(parameter.default) not in (int, float) or parameter.default <= 0:
                continue
            try:
                other = cls(**{name: type(parameter.default)(parameter.default * 2)})
            except (TypeError, ValueError):
                continue  # a value this parameter does not take
            assert own(other) == set(state_names(other)), (cls.__name__, name)
            checked += 1
    assert checked, "some parameters were varied"
