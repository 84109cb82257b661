"""Devices that go silent: the pure rule (``streams.silence``) as ``DeviceMonitor`` applies it.

A protective device (a leak or smoke sensor) that sends nothing for ``max(multiple × usual
interval, floor)``, or says ``offline`` and does not come back within the grace, opens a
``device_silent`` warning — critical while another of its warnings is open — that resolves
when its readings come back. Any other device's silence is counted, never sent. The clock is
the caller's: ``heard`` when readings arrive, ``status`` for what the device says, ``tick``
when ``silence_due_ms`` comes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import pytest

from core.contract import Reading, WarningEvent, warning_id
from detectors.base import Finding, RiskDetector
from detectors.home import WaterLeak
from detectors.profiles import build_detectors
from detectors.silent import DeviceSilent
from evaluation.harness import monitor_device
from simulator.fleet import Realism, build_fleet
from streams.decisions import DeviceMonitor
from streams.silence import GAPS_KEPT, SilenceWatch

T0 = 1_763_654_400_000
S = 1000
MIN = 60 * S
H = 60 * MIN


class FreezeForecast(RiskDetector):
    """A scripted freeze forecast: warns while the reading carries ``pipe_temp_c`` below 3 °C."""

    risk = "freeze_risk"
    metrics = ("pipe_temp_c",)

    def learn_one(self, x: Mapping[str, float]) -> None:
        pass

    def score_one(self, x: Mapping[str, float]) -> float:
        return 0.8 if x.get("pipe_temp_c", 10.0) < 3.0 else 0.0

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        return Finding(self.risk, self.score_one(x), "warning", 3 * 3600.0)


def leak_sensor(rule: DeviceSilent | None = None) -> DeviceMonitor:
    """A home leak sensor (protective) that also forecasts freezing."""
    detectors: list[RiskDetector] = [WaterLeak(), FreezeForecast()] + ([rule] if rule else [DeviceSilent()])
    return DeviceMonitor("acme", "leak-1", "home", detectors)


def feed(monitor: DeviceMonitor, times: list[int], pipe_temp_c: float = 12.0) -> list[WarningEvent]:
    """Readings arriving at ``times``, with the clock run between them as the worker's would."""
    events: list[WarningEvent] = []
    for seq, at in enumerate(times):
        events += run_clock(monitor, at)
        events += monitor.heard(at)
        events += monitor.observe(Reading(at, {"water_leak": 0.0, "pipe_temp_c": pipe_temp_c}, seq))
    return events


def run_clock(monitor: DeviceMonitor, until_ms: int, step_ms: int = 30 * S) -> list[WarningEvent]:
    """The worker's timer, a tick every ``step_ms`` from the last contact, before ``until_ms``
    (the ticks before the due time, which decide nothing, are skipped)."""
    events: list[WarningEvent] = []
    start = monitor.silence.quiet_since_ms()
    due = monitor.silence_due_ms()
    while start is not None and due is not None:
        now = start + -(-(due - start) // step_ms) * step_ms  # the first tick at or after the due time
        if now >= until_ms:
            break
        events += monitor.tick(now)
        if monitor.silence_due_ms() == due:
            break
        due = monitor.silence_due_ms()
    return events


def opened(events: list[WarningEvent]) -> list[WarningEvent]:
    return [e for e in events if e.risk == "device_silent" and e.action == "open"]


def every(interval_ms: int, n: int, start: int = T0) -> list[int]:
    return [start + i * interval_ms for i in range(n)]


# ------------------------------------------------------------------------ quiet → silent


@dataclass(frozen=True)
class Quiet:
    name: str
    arrivals: list[int]
    quiet_ms: int  # nothing arrives for this long after the last
    silent_after_ms: int | None  # how long after the last arrival it counts as silent (None: it does not)


QUIET = [
    Quiet("every minute: the one-hour floor", every(MIN, 120), 2 * H, 1 * H),
    Quiet("every minute, quiet 50 min: a drop-out", every(MIN, 120), 50 * MIN, None),
    Quiet("every 20 min: five missed reports", every(20 * MIN, 30), 3 * H, 100 * MIN),
    Quiet("every 3 h: five missed reports", every(3 * H, 10), 20 * H, 15 * H),
    Quiet("a single reading: five floors, its interval unknown", [T0], 6 * H, 5 * H),
]


@pytest.mark.parametrize("case", QUIET, ids=lambda c: c.name)
def test_a_device_that_goes_quiet_is_silent_after_a_multiple_of_its_interval_or_the_floor(case: Quiet) -> None:
    monitor = leak_sensor()
    assert not opened(feed(monitor, case.arrivals))
    last = case.arrivals[-1]
    events = run_clock(monitor, last + case.quiet_ms)
    if case.silent_after_ms is None:
        assert opened(events) == []
        return
    [warning] = opened(events)
    assert last + case.silent_after_ms <= warning.at_ms < last + case.silent_after_ms + 30 * S
    assert (warning.severity, warning.kind, warning.evidence["reason"]) == ("warning", "home", "no_readings")
    assert warning.warning_id == warning_id("acme", "leak-1", "device_silent", warning.at_ms)


def test_a_jittery_device_is_silent_after_five_times_its_median_interval() -> None:
    rng = random.Random(3)
    arrivals = [T0]
    for _ in range(40):  # every 20 minutes ± 40 %
        arrivals.append(arrivals[-1] + int(20 * MIN * rng.uniform(0.6, 1.4)))
    monitor = leak_sensor()
    assert not opened(feed(monitor, arrivals))
    median = monitor.silence.usual_interval_s
    assert median is not None and 16 * 60 < median < 24 * 60
    [warning] = opened(run_clock(monitor, arrivals[-1] + 4 * H))
    assert 0 <= warning.at_ms - (arrivals[-1] + 5 * median * 1000) < 30 * S
    assert warning.evidence["usual_interval_s"] == round(median, 1)


def test_a_drop_out_in_the_gaps_does_not_move_the_usual_interval() -> None:
    arrivals = every(MIN, 60) + every(MIN, 60, start=T0 + 59 * MIN + 40 * MIN)  # a 40-minute drop-out
    watch = SilenceWatch()
    for at in arrivals:
        watch.heard(at)
    assert watch.usual_interval_s == 60.0
    assert len(watch.gaps_ms) == GAPS_KEPT


def test_one_message_split_into_records_or_a_duplicate_says_nothing_about_the_interval() -> None:
    watch = SilenceWatch()
    for at in (T0, T0, T0 + 5, T0 + 10 * MIN, T0 + 10 * MIN + 1):
        watch.heard(at)
    assert watch.gaps_ms == [10 * MIN - 5]


# ------------------------------------------------------------------------ what it says


def test_an_offline_status_makes_it_silent_after_the_grace() -> None:
    monitor = leak_sensor(DeviceSilent(offline_grace_s=600.0))
    feed(monitor, every(20 * MIN, 10))  # reports every 20 min: quiet for 100 min would be silent
    last = T0 + 9 * 20 * MIN
    assert monitor.status("offline", last + 2 * MIN) == []
    assert monitor.silence_due_ms() == last + 12 * MIN
    [warning] = opened(run_clock(monitor, last + 30 * MIN))
    assert warning.at_ms == last + 12 * MIN
    assert warning.evidence["reason"] == "offline"


@pytest.mark.parametrize("comes_back", ["online", "reading"])
def test_a_reconnect_within_the_grace_is_no_warning(comes_back: str) -> None:
    monitor = leak_sensor(DeviceSilent(offline_grace_s=600.0))
    feed(monitor, every(MIN, 30))
    last = T0 + 29 * MIN
    monitor.status("offline", last + MIN)
    if comes_back == "online":
        assert monitor.status("online", last + 6 * MIN) == []
    else:
        assert feed(monitor, [last + 6 * MIN]) == []
    assert monitor.silence.offline_since_ms is None
    assert opened(run_clock(monitor, last + 50 * MIN)) == []  # the floor counts from the reconnect
    assert monitor.silence_due_ms() == last + 6 * MIN + H


def test_an_offline_status_with_no_grace_is_silent_at_once() -> None:
    monitor = leak_sensor(DeviceSilent(offline_grace_s=0.0))
    feed(monitor, every(MIN, 5))
    [warning] = opened(monitor.status("offline", T0 + 5 * MIN))
    assert warning.at_ms == T0 + 5 * MIN


def test_a_status_older_than_the_last_reading_is_ignored() -> None:
    monitor = leak_sensor(DeviceSilent(offline_grace_s=0.0))
    feed(monitor, every(MIN, 10))
    assert monitor.status("offline", T0 + 8 * MIN) == []  # arrived before the last readings
    assert monitor.silence.offline_since_ms is None


def test_a_status_the_broker_replays_is_no_news_for_a_device_it_knows() -> None:
    known = leak_sensor(DeviceSilent(offline_grace_s=0.0))
    feed(known, every(MIN, 10))
    assert known.status("offline", T0 + 11 * MIN, retained=True) == []
    assert known.silence.offline_since_ms is None
    # ... but it is all we know of a device never heard from
    unknown = leak_sensor(DeviceSilent(offline_grace_s=0.0))
    [warning] = opened(unknown.status("offline", T0, retained=True))
    assert warning.evidence["reason"] == "offline"


# ------------------------------------------------------------------------ who is told


def test_a_device_that_protects_nothing_is_counted_never_warned() -> None:
    car = DeviceMonitor("acme", "car-1", "vehicle")
    assert not car.protective and car.silence_rule is not None
    for seq, at in enumerate(every(MIN, 30)):
        car.heard(at)
        car.observe(Reading(at, {"speed_kmh": 40.0, "speed_limit_kmh": 60.0}, seq))
    assert run_clock(car, T0 + 5 * H) == []
    assert car.silence.silent and car.silence.silences == 1
    assert car.heard(T0 + 5 * H) == [] and not car.silence.silent


def test_a_home_protects_by_its_leak_and_smoke_detectors() -> None:
    assert DeviceMonitor("acme", "h", "home").protective
    unarmed = build_detectors("home", {"water_leak": None, "fire_risk": None, "burst_pipe": None})
    assert not DeviceMonitor("acme", "h", "home", unarmed).protective
    assert not any(DeviceMonitor("acme", "d", kind).protective for kind in ("vehicle", "equipment", "coldchain"))


def test_silence_while_a_freeze_warning_is_open_is_critical() -> None:
    monitor = leak_sensor()
    events = feed(monitor, every(MIN, 30), pipe_temp_c=1.5)
    assert [(e.risk, e.action) for e in events] == [("freeze_risk", "open")]
    [warning] = opened(run_clock(monitor, T0 + 3 * H))
    assert warning.severity == "critical"
    assert warning.evidence["open_risks"] == "freeze_risk"


def test_the_warning_resolves_when_readings_come_back() -> None:
    monitor = leak_sensor()
    feed(monitor, every(MIN, 30))
    [warning] = opened(run_clock(monitor, T0 + 3 * H))
    back = feed(monitor, [T0 + 3 * H])
    assert [(e.risk, e.action, e.warning_id) for e in back] == [("device_silent", "resolve", warning.warning_id)]
    assert not monitor.silence.silent and "device_silent" not in monitor.open
    # and it can go silent again
    assert opened(run_clock(monitor, T0 + 5 * H))


def test_an_online_status_alone_does_not_end_a_silence() -> None:
    monitor = leak_sensor()
    feed(monitor, every(MIN, 30))
    assert opened(run_clock(monitor, T0 + 3 * H))
    assert monitor.status("online", T0 + 3 * H) == []
    assert "device_silent" in monitor.open  # it says it is back; nothing is protected until readings come


def test_a_replayed_older_record_neither_resolves_nor_moves_the_clock() -> None:
    monitor = leak_sensor()
    feed(monitor, every(MIN, 30))
    assert opened(run_clock(monitor, T0 + 3 * H))
    assert monitor.heard(T0 + 10 * MIN) == []
    assert monitor.silence.silent and monitor.silence.last_heard_ms == T0 + 29 * MIN


def test_configured_away_no_device_is_watched() -> None:
    monitor = DeviceMonitor("acme", "h", "home", build_detectors("home", {"device_silent": None}))
    feed(monitor, every(MIN, 30))
    assert monitor.silence_due_ms() is None and run_clock(monitor, T0 + 5 * H) == []


# ------------------------------------------------------------------------ saved and restored


def test_the_watch_survives_the_changelog_and_older_state_restores() -> None:
    monitor = leak_sensor()
    feed(monitor, every(MIN, 30))
    saved = orjson.loads(orjson.dumps(monitor.to_state()))
    restored = DeviceMonitor.from_state(saved, [WaterLeak(), FreezeForecast(), DeviceSilent()])
    assert restored.silence == monitor.silence
    assert restored.silence_due_ms() == T0 + 29 * MIN + H
    older = {k: v for k, v in saved.items() if k != "silence"}  # saved before silence was watched
    assert DeviceMonitor.from_state(older, [WaterLeak(), DeviceSilent()]).silence == SilenceWatch()
    broken = {**saved, "silence": {"gaps_ms": "nonsense"}}
    assert DeviceMonitor.from_state(broken, [WaterLeak(), DeviceSilent()]).silence == SilenceWatch()


# ------------------------------------------------------------------------ the simulator's drop-outs


def test_the_simulators_drop_outs_are_no_silence_but_a_dead_device_is() -> None:
    """Quiet homes with four times the simulator's usual drop-outs (ten minutes on average,
    some far longer): ``forewarn eval``'s clock must not turn one into a warning."""
    fleet = build_fleet(
        7,
        devices=6,
        quiet_ratio=1.0,
        start_ms=T0,
        duration_s=2 * 86400,
        realism=Realism(dropouts_per_day=4.0),
    )
    homes = [d for d in fleet.devices if d.kind == "home"]
    assert homes
    longest = 0
    for device in homes:
        readings = list(fleet.readings(device))
        times = [r.ts_ms for r in readings]
        longest = max(longest, max(b - a for a, b in zip(times, times[1:], strict=False)))
        events, _ = monitor_device(device, readings, until_ms=fleet.span(device).end_ms)
        assert opened(events) == [], f"{device.device}: a drop-out became a warning"
        # the same device dying two hours before the end of its span is found silent
        cut = [r for r in readings if r.ts_ms < fleet.span(device).end_ms - 2 * H]
        events, _ = monitor_device(device, cut, until_ms=fleet.span(device).end_ms)
        [warning] = opened(events)
        assert warning.at_ms - cut[-1].ts_ms == H
    assert longest > 15 * MIN, "drop-outs long enough that a 15-minute floor would have warned"
