"""One incident, one warning thread: a related finding that says more escalates the open warning.

Water on the floor after a slow-leak warning, or while a home's power is cut (its sump pump
stopped), escalates that warning — critical, ``evidence["now"] = "water_leak"`` with the leak
sensor's own evidence — instead of opening a second warning; said once, then it joins. The
state stays small, round-trips, and reads state saved before the field existed.
"""

from __future__ import annotations

import doctest
from collections.abc import Iterable, Mapping

import orjson
from test_quiet_decisions import Scripted as Plain

import core.risks
import streams.decisions
from core.contract import Reading, WarningEvent
from core.risks import opens_claim, risk_now
from detectors.base import Finding, RiskDetector
from streams.decisions import DeviceMonitor, related

MIN = 60_000


class Scripted(Plain):
    """A scripted detector (``test_quiet_decisions``) whose findings carry evidence: their minute."""

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        said = super().assess_one(x)
        evidence = {"minute": int(x["tick"])} if said.score else {}
        return Finding(said.risk, said.score, said.severity, said.time_to_loss_s, evidence)


def run(monitor: DeviceMonitor, minutes: Iterable[int]) -> list[WarningEvent]:
    events: list[WarningEvent] = []
    for m in minutes:
        events += monitor.observe(Reading(ts=m * MIN, metrics={"tick": float(m)}, seq=m))
    return events


def thread(events: list[WarningEvent]) -> list[tuple[str, str, str, int]]:
    return [(e.action, e.risk, e.severity, e.at_ms // MIN) for e in events]


def slow_then_wet(wet_from: int = 100) -> list[RiskDetector]:
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(10, 200)})
    wet = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in range(wet_from, 200)})
    return [slow, wet]


def test_escalate_water_on_the_floor_after_a_slow_leak_warning_escalates_it_once() -> None:
    monitor = DeviceMonitor("t", "home-1", "home", slow_then_wet())
    events = run(monitor, range(200))
    assert thread(events) == [("open", "slow_leak", "warning", 10), ("escalate", "slow_leak", "critical", 100)]
    opened, escalated = events
    assert escalated.warning_id == opened.warning_id and escalated.opened_at_ms == opened.opened_at_ms
    assert escalated.evidence == {"now": "water_leak", "minute": 100}, "what is happening now, and its evidence"
    assert escalated.predicted_loss_at_ms == escalated.at_ms, "the loss is under way"
    assert monitor.joined == {"water_leak": 99}, "the sensor's later wet readings keep the thread hot"
    assert opens_claim(risk_now(escalated.risk, escalated.evidence), escalated.severity, escalated.time_to_loss_s)


def test_escalate_water_on_the_floor_during_a_power_cut_escalates_the_power_cut_warning() -> None:
    cut = Scripted("power_cut", {m: (0.7, "warning" if m < 60 else "critical", 3600.0) for m in range(5, 200)})
    wet = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in range(90, 120)})
    monitor = DeviceMonitor("t", "home-1", "home", [cut, wet])
    events = run(monitor, range(200))
    assert thread(events) == [
        ("open", "power_cut", "warning", 5),
        ("escalate", "power_cut", "critical", 60),  # its own last quarter
        ("escalate", "power_cut", "critical", 90),  # same level, but now water is on the floor: said
    ]
    assert "now" not in events[1].evidence and events[2].evidence["now"] == "water_leak"
    assert monitor.joined == {"water_leak": 29}


def test_escalate_a_second_finding_at_the_same_level_joins() -> None:
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(10, 200)})
    wet = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in [*range(100, 110), *range(150, 160)]})
    burst = Scripted("burst_pipe", {m: (1.0, "critical", 0.0) for m in range(170, 180)})
    monitor = DeviceMonitor("t", "home-1", "home", [slow, wet, burst])
    events = run(monitor, range(200))
    assert [e.action for e in events] == ["open", "escalate"], "one escalation per level, then joins"
    assert monitor.joined == {"water_leak": 19, "burst_pipe": 10}


def test_escalate_a_higher_severity_of_the_family_escalates_without_a_loss_under_way() -> None:
    braking = Scripted("harsh_braking", {m: (0.7, "warning", None) for m in range(5, 10)})
    speeding = Scripted("speeding", {m: (0.9, "critical", None) for m in range(20, 25)})
    events = run(DeviceMonitor("t", "car-1", "vehicle", [braking, speeding]), range(40))
    assert thread(events)[:2] == [
        ("open", "harsh_braking", "warning", 5),
        ("escalate", "harsh_braking", "critical", 20),
    ]
    assert events[1].evidence["now"] == "speeding"


def test_escalate_unrelated_risks_and_a_power_cut_with_a_slow_leak_keep_their_own_warnings() -> None:
    cut = Scripted("power_cut", {m: (0.7, "warning", 3600.0) for m in range(5, 200)})
    slow = Scripted("slow_leak", {m: (0.6, "warning", None) for m in range(30, 200)})
    mould = Scripted("mould_risk", {m: (0.5, "advisory", None) for m in range(50, 200)})
    events = run(DeviceMonitor("t", "home-1", "home", [cut, slow, mould]), range(200))
    assert [(e.action, e.risk) for e in events] == [
        ("open", "power_cut"),
        ("open", "slow_leak"),
        ("open", "mould_risk"),
    ]
    assert not related("power_cut", "slow_leak") and not related("slow_leak", "mould_risk")


def test_escalate_water_with_nothing_open_still_opens_its_own_warning() -> None:
    wet = Scripted("water_leak", {m: (1.0, "critical", 0.0) for m in range(10, 20)})
    events = run(DeviceMonitor("t", "home-1", "home", [wet]), range(30))
    assert [(e.action, e.risk, e.evidence.get("now")) for e in events if e.action == "open"] == [
        ("open", "water_leak", None)
    ]


def test_escalate_state_keeps_what_was_said_and_reads_older_state() -> None:
    monitor = DeviceMonitor("t", "home-1", "home", slow_then_wet(wet_from=50))
    run(monitor, range(60))
    saved = orjson.loads(orjson.dumps(monitor.to_state()))
    assert saved["open"]["slow_leak"]["now"] == "water_leak"
    again = DeviceMonitor.from_state(saved, slow_then_wet(wet_from=50))
    assert run(again, range(60, 80)) == [], "restored, the escalation is not said twice"
    older = orjson.loads(orjson.dumps(DeviceMonitor("t", "home-1", "home", slow_then_wet()).to_state()))
    run(fresh := DeviceMonitor("t", "home-1", "home", slow_then_wet()), range(60))
    older["open"] = fresh.to_state()["open"]  # as saved before the field existed: no "now"
    assert "now" not in older["open"]["slow_leak"]
    assert [e.action for e in run(DeviceMonitor.from_state(older, slow_then_wet()), range(60, 120))] == ["escalate"]
    assert len(orjson.dumps(saved)) < 4096


def test_escalate_doctests() -> None:
    for module in (streams.decisions, core.risks):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
