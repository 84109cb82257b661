"""One danger, one warning: related risks join the open warning, a new danger still gets through.

A device's second risk of the same family (water escaping, a trip's driving, a home's power)
joins the warning already open instead of opening a second; a loss under way after a forecast,
or a higher severity, escalates the open one (``test_escalate_decisions``). A device gone silent
while one of its warnings is critical opens nothing new. Counting: only an incident's first
warning is a hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import SimpleNamespace

from core.contract import Reading, WarningEvent
from detectors.base import Finding, RiskDetector, Severity
from detectors.home import BurstPipe, WaterLeak
from detectors.silent import DeviceSilent
from detectors.vehicle import HarshBraking
from evaluation.matching import false_warnings
from streams.decisions import DeviceMonitor

MIN = 60_000


class Scripted(RiskDetector):
    """A detector of ``risk`` that says what its script says at each minute."""

    metrics = ("tick",)

    def __init__(self, risk: str, script: Mapping[int, tuple[float, Severity, float | None]]) -> None:
        self.risk = risk  # type: ignore[misc]
        self.script = dict(script)

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        score, severity, ttl = self.script.get(int(x["tick"]), (0.0, "advisory", None))
        return Finding(self.risk, score, severity, ttl)

    def learn_one(self, x: Mapping[str, float]) -> None:
        pass


def run(monitor: DeviceMonitor, minutes: Iterable[int]) -> list[WarningEvent]:
    events: list[WarningEvent] = []
    for m in minutes:
        events += monitor.heard(m * MIN)
        events += monitor.observe(Reading(ts=m * MIN, metrics={"tick": float(m)}, seq=m))
    return events


def opened(events: list[WarningEvent]) -> list[tuple[str, str]]:
    return [(e.risk, e.severity) for e in events if e.action == "open"]


def test_a_burst_during_a_slow_leak_warning_says_more_and_escalates_it() -> None:
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(10, 200)})
    burst = Scripted("burst_pipe", {m: (1.0, "critical", 0.0) for m in range(40, 60)})
    events = run(DeviceMonitor("t", "home-1", "home", [slow, burst]), range(200))
    assert opened(events) == [("slow_leak", "warning")]
    assert [(e.risk, e.severity, e.evidence["now"]) for e in events if e.action == "escalate"] == [
        ("slow_leak", "critical", "burst_pipe")
    ]


def test_a_second_risk_of_no_higher_severity_joins_the_open_warning_and_keeps_it_open() -> None:
    braking = Scripted("harsh_braking", {m: (0.7, "warning", None) for m in (5, 6, 80)})
    speeding = Scripted("speeding", {m: (0.7, "warning", None) for m in range(30, 40)})
    monitor = DeviceMonitor("t", "car-1", "vehicle", [braking, speeding])
    events = run(monitor, range(0, 200))
    assert opened(events) == [("harsh_braking", "warning")]  # one risky trip, one warning
    assert monitor.joined == {"speeding": 10}
    resolved = [e.at_ms // MIN for e in events if e.action == "resolve"]
    assert resolved and resolved[0] >= 80 + 60  # an hour calm after the last harsh brake


def test_water_on_the_floor_after_a_slow_leak_warning_reaches_the_customer() -> None:
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(10, 200)})
    wet = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in range(100, 200)})
    events = run(DeviceMonitor("t", "home-1", "home", [slow, wet]), range(200))
    assert opened(events) == [("slow_leak", "warning")]  # the same warning, escalated: water now
    assert [(e.severity, e.evidence["now"]) for e in events if e.action == "escalate"] == [("critical", "water_leak")]


def test_a_slow_leak_reading_during_a_wet_floor_warning_joins_it() -> None:
    wet = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in range(10, 200)})
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(50, 200)})
    burst = Scripted("burst_pipe", {m: (1.0, "critical", 0.0) for m in range(60, 70)})
    monitor = DeviceMonitor("t", "home-1", "home", [wet, slow, burst])
    events = run(monitor, range(200))
    assert opened(events) == [("water_leak", "critical")]
    assert set(monitor.joined) == {"slow_leak", "burst_pipe"}


def test_unrelated_risks_still_open_their_own_warnings() -> None:
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(10, 200)})
    mould = Scripted("mould_risk", {m: (0.5, "advisory", None) for m in range(50, 200)})
    events = run(DeviceMonitor("t", "home-1", "home", [slow, mould]), range(200))
    assert opened(events) == [("slow_leak", "warning"), ("mould_risk", "advisory")]


def test_a_leak_reopens_at_once_inside_its_cool_down() -> None:
    script = {m: (1.0, "critical", 0.0) for m in [*range(10, 20), *range(40, 50)]}
    events = run(DeviceMonitor("t", "home-1", "home", [Scripted("water_leak", script)]), range(60))
    assert [e.at_ms // MIN for e in events if e.action == "open"] == [10, 40]


def silent_after(detectors: list[RiskDetector], minutes: int) -> list[WarningEvent]:
    monitor = DeviceMonitor("t", "home-1", "home", [*detectors, DeviceSilent()])
    events = run(monitor, range(minutes))
    return events + monitor.tick((minutes + 120) * MIN)


def test_a_device_gone_silent_while_a_warning_is_critical_opens_nothing_new() -> None:
    wet = Scripted("water_leak", {29: (1.0, "critical", 0.0)})
    events = silent_after([wet], 30)
    assert opened(events) == [("water_leak", "critical")]


def test_a_device_gone_silent_during_a_forecast_warning_is_a_critical_silence() -> None:
    freeze = Scripted("freeze_risk", {m: (0.6, "warning", 3600.0) for m in range(20, 30)})
    events = silent_after([freeze, WaterLeak()], 30)
    assert opened(events) == [("freeze_risk", "warning"), ("device_silent", "critical")]


def test_a_crash_impact_is_no_harsh_braking() -> None:
    braking = HarshBraking()
    crash = {"ts": 0.0, "accel_long_g": -3.0, "impact_g": 27.0, "speed_kmh": 0.0}
    stop = {"ts": 10.0, "accel_long_g": -0.8, "speed_kmh": 40.0}
    assert braking.assess_one(crash).score == 0.0
    assert braking.assess_one(stop).severity == "critical"  # an emergency stop still is


def test_a_burst_pipe_detector_on_its_own_still_warns() -> None:
    monitor = DeviceMonitor("t", "home-1", "home", [BurstPipe()])
    events: list[WarningEvent] = []
    for m in range(25):
        events += monitor.observe(Reading(ts=m * MIN, metrics={"flow_lpm": 35.0}, seq=m))
    assert opened(events) == [("burst_pipe", "warning")]


def test_the_joined_counts_survive_a_restore() -> None:
    wet = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in range(10, 20)})
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(12, 20)})
    monitor = DeviceMonitor("t", "home-1", "home", [wet, slow])
    run(monitor, range(20))
    again = DeviceMonitor.from_state(monitor.to_state(), [wet, slow])
    assert again.joined == monitor.joined == {"slow_leak": 8}


def test_only_an_incidents_first_warning_is_a_hit() -> None:
    incident = SimpleNamespace(device="d", risks=("harsh_braking", "speeding"), precursor_start_ms=0, loss_at_ms=100)
    warnings = [
        SimpleNamespace(warning_id=str(i), device=device, risk=risk, at_ms=at)
        for i, (device, risk, at) in enumerate(
            [
                ("d", "harsh_braking", 10),
                ("d", "speeding", 20),
                ("d", "harsh_braking", 30),
                ("d", "harsh_braking", 200),  # after the loss: not the answer either
                ("q", "speeding", 5),
            ]
        )
    ]
    causes = [(w.warning_id, cause) for w, cause in false_warnings([incident], warnings)]
    assert causes == [("1", "second_risk"), ("2", "reopened"), ("3", "reopened"), ("4", "quiet_device")]


def test_a_late_first_warning_is_a_miss_not_also_a_false_warning() -> None:
    incident = SimpleNamespace(device="d", risks=("water_leak",), precursor_start_ms=0, loss_at_ms=100)
    late = [SimpleNamespace(warning_id="a", device="d", risk="water_leak", at_ms=150)]
    assert false_warnings([incident], late) == []
