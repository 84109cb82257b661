"""People in the loop: seeded customers and staff (``simulator.people``), each warning played
forward on the simulated clock with quiet hours and the follow-up policies
(``evaluation.people``), and the figures ``forewarn eval`` reports, on a hand-made fleet."""

from __future__ import annotations

import doctest
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from core.contract import WarningEvent
from detectors.base import Finding, RiskDetector
from evaluation import people as eval_people
from evaluation.harness import evaluate
from evaluation.people import PeopleSettings, follow
from simulator import people as sim_people
from simulator.fleet import SimDevice, SimReading
from simulator.incidents import Incident
from simulator.people import Customer, Staff, assign, parse_mix

MIN = 60_000
H = 3600_000
DAY = 1_736_870_400_000  # 2025-01-15 00:00 in Shanghai (UTC+8)


def event(action: str, at_ms: int, severity: str = "critical", wid: str = "w1") -> WarningEvent:
    return WarningEvent(wid, "demo", "home-1", "home", "water_leak", action, severity, 0.9, at_ms, at_ms, None)  # type: ignore[arg-type]


class SlowStaff(Staff):
    """Staff who take an hour: the last step comes due before they act."""

    def acts_at(self, escalated_ms: int, key: str) -> int:
        return escalated_ms + 60 * MIN


# ------------------------------------------------------------------------------- person models


def test_behaviours_are_assigned_by_the_mix_and_deterministic_per_seed() -> None:
    ids = [f"cust-{i}" for i in range(1000)]
    seven = [assign(7, c) for c in ids]
    assert seven == [assign(7, c) for c in ids]
    assert Counter(c.behaviour for c in seven) == {"prompt": 370, "late": 313, "never": 192, "night_only": 125}
    assert sum(1 for c in seven if c.quiet_hours == ("22:00-07:00",)) == 517
    eight = [assign(8, c) for c in ids]
    assert Counter(c.behaviour for c in eight)["prompt"] == 421
    # a customer's model does not depend on who else is in the fleet
    assert assign(7, "cust-500") == seven[500]
    assert {assign(7, c, {"never": 1.0}).behaviour for c in ids[:50]} == {"never"}
    assert not any(assign(7, c, quiet_share=0.0).quiet_hours for c in ids[:50])


def test_answers_are_seeded_per_message_and_fall_in_the_documented_ranges() -> None:
    t = DAY + 12 * H  # 12:00 local
    for i in range(200):
        key = f"w{i}:0"
        prompt = Customer(f"c{i}", "prompt").acknowledges_at(t, key)
        late = Customer(f"c{i}", "late").acknowledges_at(t, key)
        assert prompt is not None and 1 * MIN <= prompt - t <= 5 * MIN
        assert late is not None and 20 * MIN <= late - t <= 90 * MIN
        assert Customer(f"c{i}", "never").acknowledges_at(t, key) is None
        assert 5 * MIN <= Staff(7).acts_at(t, key) - t <= 30 * MIN
    c = Customer("c1", "late", fleet_seed=7)
    assert c.acknowledges_at(t, "w:0") == c.acknowledges_at(t, "w:0")
    assert c.acknowledges_at(t, "w:0") != c.acknowledges_at(t, "w:1")
    assert c.acknowledges_at(t, "w:0") != Customer("c1", "late", fleet_seed=8).acknowledges_at(t, "w:0")


def test_a_night_only_customer_answers_between_19_and_24_local() -> None:
    c = Customer("c1", "night_only")
    for at, earliest in ((DAY + 12 * H, DAY + 19 * H), (DAY + 1 * H, DAY + 19 * H), (DAY + 20 * H, DAY + 20 * H)):
        answer = c.acknowledges_at(at, "w:0")
        assert answer is not None and earliest + MIN <= answer <= earliest + 5 * MIN


def test_parse_mix() -> None:
    assert parse_mix("prompt=0.4,late=0.3,never=0.2,night_only=0.1") == sim_people.DEFAULT_MIX
    for bad in ("prompt=0.5", "shy=1", "prompt=x", "prompt"):
        with pytest.raises(ValueError):
            parse_mix(bad)
    with pytest.raises(ValueError):
        PeopleSettings(quiet_share=1.5)


# ------------------------------------------------------------------------ one warning, followed


def test_a_never_acking_customer_on_a_critical_warning_gets_remind_staff_final_in_order() -> None:
    t = DAY + 12 * H
    followed = follow(event("open", t), [], Customer("c1", "never"), SlowStaff(7))
    assert [(m.kind, m.due_ms - t, m.delivered_ms) for m in followed.messages] == [
        ("warning", 0, t),
        ("remind", 10 * MIN, t + 10 * MIN),
        ("staff", 20 * MIN, t + 20 * MIN),
        ("final", 45 * MIN, t + 45 * MIN),
    ]
    assert followed.acknowledged_by == "staff" and followed.acknowledged_at_ms == t + 80 * MIN
    assert followed.time_to_ack_s == 80 * 60


def test_staff_who_act_before_the_last_step_stop_the_follow_ups() -> None:
    t = DAY + 12 * H
    staff = Staff(7)
    followed = follow(event("open", t), [], Customer("c1", "never"), staff)
    acted = staff.acts_at(t + 20 * MIN, "w1:staff@1200")
    assert followed.acknowledged_by == "staff" and followed.acknowledged_at_ms == acted
    expected = ["warning", "remind", "staff"] + (["final"] if acted > t + 45 * MIN else [])
    assert [m.kind for m in followed.messages] == expected


def test_a_prompt_customer_gets_no_reminder() -> None:
    t = DAY + 3 * H
    for severity in ("critical", "warning"):
        followed = follow(event("open", t, severity), [], Customer("c1", "prompt"), Staff(7))
        assert [m.kind for m in followed.messages] == ["warning"]
        assert followed.acknowledged_by == "customer"
        assert followed.acknowledged_at_ms is not None and t + MIN <= followed.acknowledged_at_ms <= t + 5 * MIN


def test_a_non_critical_warning_in_quiet_hours_is_delivered_when_they_end_never_dropped() -> None:
    night = DAY + 23 * H  # 23:00 local
    morning = DAY + 31 * H  # 07:00 the next day
    quiet = Customer("c1", "never", ("22:00-07:00",))
    followed = follow(event("open", night, "warning"), [], quiet, SlowStaff(7))
    assert followed.held_quiet
    # the reminder (1 h) and the staff (3 h) are timed from the moment it reached the customer
    assert [(m.kind, m.due_ms, m.delivered_ms) for m in followed.messages] == [
        ("warning", night, morning),
        ("remind", morning + H, morning + H),
        ("staff", morning + 3 * H, morning + 3 * H),
    ]
    prompt = follow(event("open", night, "warning"), [], Customer("c2", "prompt", ("22:00-07:00",)), Staff(7))
    assert prompt.acknowledged_at_ms is not None and morning + MIN <= prompt.acknowledged_at_ms <= morning + 5 * MIN
    # a critical warning goes through at once
    critical = follow(event("open", night, "critical"), [], quiet, SlowStaff(7))
    assert critical.messages[0].delivered_ms == night and not critical.held_quiet


def test_a_warning_that_closes_while_held_is_superseded_and_followed_no_further() -> None:
    night = DAY + 23 * H
    followed = follow(
        event("open", night, "warning"),
        [event("resolve", night + 2 * H, "warning")],
        Customer("c1", "prompt", ("22:00-07:00",)),
        Staff(7),
    )
    assert [(m.kind, m.delivered_ms) for m in followed.messages] == [("warning", None)]
    assert followed.acknowledged_at_ms is None and followed.closed_at_ms == night + 2 * H


def test_no_step_after_the_warning_resolves_and_no_late_acknowledgement() -> None:
    t = DAY + 12 * H
    followed = follow(event("open", t), [event("resolve", t + 15 * MIN)], Customer("c1", "never"), Staff(7))
    assert [m.kind for m in followed.messages] == ["warning", "remind"]
    assert followed.acknowledged_at_ms is None


def test_an_escalation_notifies_again_and_runs_the_new_severitys_policy() -> None:
    t = DAY + 12 * H
    escalated = t + 30 * MIN
    followed = follow(
        event("open", t, "warning"), [event("escalate", escalated, "critical")], Customer("c1", "never"), SlowStaff(7)
    )
    assert [(m.kind, m.due_ms - t) for m in followed.messages] == [
        ("warning", 0),
        ("escalation", 30 * MIN),
        ("remind", 40 * MIN),
        ("staff", 50 * MIN),
        ("final", 75 * MIN),
    ]


# ------------------------------------------------------------------------------ a hand-made fleet


class LeakSensor(RiskDetector):
    risk = "water_leak"
    metrics = ("water_leak",)

    def learn_one(self, x: Mapping[str, float]) -> None:
        pass

    def score_one(self, x: Mapping[str, float]) -> float:
        return x["water_leak"]

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        return Finding(self.risk, self.score_one(x), "critical", 0.0)


@dataclass
class HandMadeFleet:
    devices: list[SimDevice]
    incidents: list[Incident]
    wet: dict[str, list[int]]  # device → hours at which the leak sensor is wet
    seed: int = 7

    def readings(self, device: SimDevice):  # type: ignore[no-untyped-def]
        for hour in range(48):
            wet = hour in self.wet.get(device.device, [])
            yield SimReading(device, DAY + hour * H, hour, {"water_leak": wet})


BEHAVIOUR = {
    "prompt-early": "prompt",
    "never-early": "never",
    "never-tight": "never",
    "prompt-tight": "prompt",
    "missed": "prompt",
    "quiet": "prompt",
}


@pytest.fixture()
def fleet(monkeypatch: pytest.MonkeyPatch) -> HandMadeFleet:
    monkeypatch.setattr("streams.decisions.build_detectors", lambda kind: [LeakSensor()])
    monkeypatch.setattr(
        eval_people, "assign", lambda seed, cid, mix, share: Customer(cid, BEHAVIOUR[cid], (), fleet_seed=seed)
    )

    def incident(device: str, warn_h: int, loss_ms: int, cost: float) -> Incident:
        return Incident(
            device, "slow_leak", ("water_leak",), DAY + (warn_h - 2) * H, loss_ms, "water_damage", (cost, cost), cost
        )

    names = list(BEHAVIOUR)
    devices = [SimDevice("demo", n, "home", n, None if n == "quiet" else "slow_leak") for n in names]
    return HandMadeFleet(
        devices,
        [
            incident("prompt-early", 12, DAY + 20 * H, 10_000),
            incident("never-early", 12, DAY + 20 * H, 20_000),
            incident("never-tight", 20, DAY + 20 * H + 40 * MIN, 40_000),
            incident("prompt-tight", 20, DAY + 20 * H + 20 * MIN, 80_000),
            incident("missed", 20, DAY + 21 * H, 160_000),
        ],
        {"prompt-early": [12], "never-early": [12], "never-tight": [20], "prompt-tight": [20], "quiet": [40]},
    )


def test_acted_in_time_and_the_loss_avoidable_with_people(fleet: HandMadeFleet) -> None:
    report = evaluate(fleet, min_lead_s=1800)
    # the figures without people stay as they were: warned ≥ 30 min ahead
    assert report.overall.warned == 4 and report.false_warnings == 1
    assert report.loss_avoidable_cny == 10_000 + 20_000 + 40_000
    people = report.people
    assert people is not None
    acted = {i.device: i for i in people.incidents}
    assert acted["prompt-early"].acted_by == "customer" and acted["prompt-early"].acted_in_time
    assert acted["never-early"].acted_by == "staff" and acted["never-early"].acted_in_time
    # staff act 25–50 min after the warning, the loss comes 40 min after it: too late
    assert acted["never-tight"].acted_by == "staff" and not acted["never-tight"].acted_in_time
    # acknowledged within 5 min, but the loss is 20 min away
    assert acted["prompt-tight"].acted_by == "customer" and not acted["prompt-tight"].acted_in_time
    assert acted["missed"].acted_at_ms is None and not acted["missed"].acted_in_time
    o = people.overall
    assert (o.incidents, o.acted_in_time, o.loss_avoidable_with_people_cny) == (5, 2, 30_000)
    assert (o.warnings, o.acknowledged, o.acknowledged_by_customer, o.acknowledged_by_staff) == (5, 5, 3, 2)
    assert (o.reminders, o.staff_escalations) == (2, 2)
    assert (o.loss_avoided, o.loss_occurred, o.false_alarms) == (2, 2, 1)
    assert o.precision == pytest.approx(0.8) and o.loss_avoided_per_warning_cny == pytest.approx(6_000)
    rows = {s.scenario: s for s in people.scenarios}
    assert set(rows) == {"slow_leak", "(quiet devices)"}
    assert rows["(quiet devices)"].false_alarms == 1 and rows["(quiet devices)"].precision == 0
    assert rows["slow_leak"].warnings == 4 and rows["slow_leak"].loss_avoidable_with_people_cny == 30_000
    outcomes = Counter(people.outcomes.values())
    assert outcomes == {"loss_avoided": 2, "loss_occurred": 2, "false_alarm": 1}


def test_people_are_deterministic_and_leave_every_other_figure_alone(fleet: HandMadeFleet) -> None:
    with_people = evaluate(fleet).to_json()
    again = evaluate(fleet).to_json()
    without = evaluate(fleet, people=None).to_json()
    assert with_people["people"] == again["people"] and without["people"] is None
    for doc in (with_people, without):
        doc.pop("people"), doc.pop("seconds")
    assert with_people == without


def test_the_printed_report_and_json_carry_people(fleet: HandMadeFleet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from rich.console import Console

    from evaluation.report import print_eval, write_eval

    report = evaluate(fleet, min_lead_s=1800)
    console = Console(record=True, width=200)
    print_eval(console, report)
    text = console.export_text()
    assert "people in the loop" in text and "loss avoidable with people: ¥30,000 for the portfolio" in text
    assert "precision 80%" in text and "¥6,000 per warning" in text
    doc = json.loads(write_eval(report, tmp_path)[0].read_text())
    assert doc["people"]["overall"]["acted_in_time"] == 2
    assert doc["people"]["loss_avoidable_with_people_cny"] == 30_000


def test_doctests_pass() -> None:
    assert doctest.testmod(sim_people).failed == 0
    assert doctest.testmod(eval_people).failed == 0
