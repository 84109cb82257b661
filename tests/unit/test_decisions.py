"""Warning decisions: one open warning per device and risk, hysteresis, escalation, cool-down."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from core.contract import Reading
from detectors.base import Finding, RiskDetector
from streams.decisions import DeviceMonitor, WarningPolicy

MIN = 60_000


class Scripted(RiskDetector):
    """Plays back the score carried in the reading (metric ``temp_c``), severity by level."""

    risk = "freeze_risk"
    metrics = ("temp_c",)

    def learn_one(self, x: Mapping[str, float]) -> None:
        pass

    def score_one(self, x: Mapping[str, float]) -> float:
        return x["temp_c"]

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        score = self.score_one(x)
        severity = "critical" if score >= 0.9 else "warning"
        return Finding(self.risk, score, severity, time_to_loss_s=3600, evidence={"temp_c": score})


def run(scores: list[float], policy: WarningPolicy | None = None, step_ms: int = MIN) -> list[tuple[int, str, str]]:
    monitor = DeviceMonitor(
        "acme", "home-1", "home", [Scripted()], policy or WarningPolicy(clear_after_s=300, cooldown_s=600)
    )
    out = []
    for i, score in enumerate(scores):
        for event in monitor.observe(Reading(ts=i * step_ms, metrics={"temp_c": score}, seq=i)):
            out.append((i, event.action, event.severity))
    return out


def test_a_risk_stays_one_warning_while_it_lasts() -> None:
    assert run([0.1, 0.6, 0.7, 0.6, 0.8, 0.6]) == [(1, "open", "warning")]


def test_rising_severity_escalates_once() -> None:
    assert run([0.6, 0.95, 0.97, 0.6, 0.99]) == [(0, "open", "warning"), (1, "escalate", "critical")]


def test_it_resolves_only_after_staying_calm_and_then_cools_down() -> None:
    events = run([0.6] + [0.1] * 6 + [0.8] * 5 + [0.1] * 6 + [0.8])
    # calm from reading 1; resolved 5 min later (reading 6); cool-down 10 min hides 7..16
    assert events[:2] == [(0, "open", "warning"), (6, "resolve", "warning")]
    assert (7, "open", "warning") not in events
    assert events[-1] == (18, "open", "warning")


def test_a_score_flapping_around_the_threshold_does_not_flap_the_warning() -> None:
    assert run([0.6, 0.45, 0.55, 0.45, 0.55, 0.45, 0.55]) == [(0, "open", "warning")]


def test_duplicates_and_replays_are_seen_once() -> None:
    monitor = DeviceMonitor("acme", "home-1", "home", [Scripted()])
    first = monitor.observe(Reading(ts=1000, metrics={"temp_c": 0.7}, seq=5))
    again = monitor.observe(Reading(ts=1000, metrics={"temp_c": 0.7}, seq=5))
    assert len(first) == 1 and again == [] and monitor.duplicates == 1


def test_the_warning_id_is_the_same_when_a_record_is_replayed_on_a_fresh_monitor() -> None:
    a = DeviceMonitor("acme", "home-1", "home", [Scripted()]).observe(Reading(5000, {"temp_c": 0.7}, 1))
    b = DeviceMonitor("acme", "home-1", "home", [Scripted()]).observe(Reading(5000, {"temp_c": 0.7}, 1))
    assert a[0].warning_id == b[0].warning_id
    assert a[0].predicted_loss_at_ms == 5000 + 3600_000


def test_a_monitor_saved_mid_warning_comes_back_with_it_open() -> None:
    monitor = DeviceMonitor("acme", "home-1", "home", [Scripted()])
    monitor.observe(Reading(0, {"temp_c": 0.7}, 1))
    restored = DeviceMonitor.from_state(orjson.loads(orjson.dumps(monitor.to_state())), [Scripted()])
    assert restored.observe(Reading(MIN, {"temp_c": 0.7}, 2)) == []  # still open, no repeat
    assert restored.observe(Reading(MIN, {"temp_c": 0.7}, 2)) == [] and restored.duplicates == 1


def test_an_open_warning_expires_when_its_detector_goes_silent() -> None:
    monitor = DeviceMonitor("acme", "home-1", "home", [Scripted()], WarningPolicy(expire_after_s=600))
    monitor.observe(Reading(0, {"temp_c": 0.7}, 1))
    events = monitor.observe(Reading(11 * MIN, {"humidity_pct": 50.0}, 2))
    assert [e.action for e in events] == ["expire"]


def leak_events(wet: list[bool]) -> list[tuple[int, str]]:
    """The real leak detector behind the real decisions, one reading a minute."""
    monitor = DeviceMonitor("acme", "home-1", "home")
    out = []
    for i, value in enumerate(wet):
        for event in monitor.observe(Reading(ts=i * MIN, metrics={"water_leak": value}, seq=i)):
            if event.risk == "water_leak":
                out.append((i, event.action))
    return out


def test_a_second_leak_in_the_cool_down_reopens_at_once() -> None:
    # wet 5 min, dry until the warning resolves (15 min calm), wet again 5 min later: well
    # inside the 30-minute cool-down, yet water is on the floor again — a new warning
    events = leak_events([True] * 5 + [False] * 20 + [True] * 3)
    assert [action for _, action in events] == ["open", "resolve", "open"]
    assert events[-1][0] == 25, "the second leak is warned on its first wet reading"


def test_a_risk_that_is_not_under_way_still_waits_out_its_cool_down() -> None:
    # the scripted freeze risk forecasts a loss in an hour: a recurrence inside the cool-down waits
    events = run([0.8] * 3 + [0.1] * 6 + [0.8] * 2, WarningPolicy(clear_after_s=180, cooldown_s=600))
    assert [action for _, action, _ in events] == ["open", "resolve"]
