"""First notice of loss: a crash is told from hard braking and a pothole, a loss under way opens a
claim notice (its reference, who, what, when, where, the evidence, the readings before) that the
claims desk reads, the customer's message gives its reference, and ``forewarn eval`` counts
crash notices apart from the warnings it measures."""

from __future__ import annotations

import doctest
from collections.abc import Mapping
from typing import Any

import pytest

import core.risks
import notifiers.claims
from core.contract import Reading, WarningEvent
from core.localtime import zone
from core.risks import opens_claim, preventive, protective
from detectors.vehicle import VehicleCrash
from evaluation.harness import evaluate
from notifiers.claims import ClaimNotice, claim_refs, place, summarise
from notifiers.render import render_claim_notice, render_warning
from simulator.fleet import build_fleet
from streams.decisions import DeviceMonitor

T0 = 1_763_654_400.0  # 2025-11-21 00:00 in Shanghai
AT = {"lat": 31.2304, "lon": 121.4737}


def drive(*legs: tuple[int, dict[str, float]]) -> list[dict[str, float]]:
    """Readings a second apart: each leg is (seconds, the metrics of each of its readings)."""
    out: list[dict[str, float]] = []
    for seconds, metrics in legs:
        for _ in range(seconds):
            out.append({"ts": T0 + len(out), **metrics})
    return out


def firings(readings: list[dict[str, float]], **params: Any) -> list[tuple[int, dict[str, Any]]]:
    """(index, evidence) of every reading the crash detector fires on, learning as it goes."""
    detector = VehicleCrash(**params)
    fired = []
    for i, x in enumerate(readings):
        finding = detector.assess_one(x)
        if finding.score >= 0.5:
            assert (finding.severity, finding.time_to_loss_s, finding.score) == ("critical", 0.0, 1.0)
            fired.append((i, finding.evidence))
        detector.learn_one(x)
    return fired


CRUISE = {"speed_kmh": 72.0, "accel_long_g": 0.0, **AT}

CASES: list[tuple[str, list[dict[str, float]], int | None, Mapping[str, Any]]] = [
    # the simulator's crash: the impact's reading already reports the vehicle standing
    (
        "impact, and standing in the same reading",
        drive((30, CRUISE), (1, {"impact_g": 18.5, "speed_kmh": 0.0, "accel_long_g": -2.0}), (120, {"speed_kmh": 0.0})),
        30,
        {"impact_g": 18.5, "speed_before_kmh": 72.0, "stopped_after_s": 0.0, **AT},
    ),
    # a box that reports the speed at the impact, then the car skids to a stop in 4 s
    (
        "impact at speed, stopped 4 s later",
        drive(
            (30, CRUISE),
            (1, {"impact_g": 9.0, "speed_kmh": 50.0}),
            (3, {"speed_kmh": 20.0}),
            (60, {"speed_kmh": 0.0}),
        ),
        34,
        {"impact_g": 9.0, "speed_before_kmh": 50.0, "stopped_after_s": 4.0},
    ),
    # a second blow while pending (a pile-up): one crash, the hardest impact
    (
        "two blows, one crash",
        drive((30, CRUISE), (1, {"impact_g": 6.0, "speed_kmh": 40.0}), (1, {"impact_g": 12.0, "speed_kmh": 2.0})),
        31,
        {"impact_g": 12.0, "speed_before_kmh": 40.0},
    ),
    (
        "hard braking, no stop",
        drive((30, CRUISE), (4, {"speed_kmh": 40.0, "accel_long_g": -0.8}), (60, CRUISE)),
        None,
        {},
    ),
    (
        "an emergency stop without an impact",
        drive((30, CRUISE), (4, {"speed_kmh": 20.0, "accel_long_g": -0.9}), (60, {"speed_kmh": 0.0})),
        None,
        {},
    ),
    (
        "a pothole jolt while moving, a red light 90 s later",
        drive((30, CRUISE), (1, {"impact_g": 5.0, "speed_kmh": 60.0}), (89, CRUISE), (60, {"speed_kmh": 0.0})),
        None,
        {},
    ),
    (
        "a light knock below the threshold, then standing",
        drive((30, CRUISE), (1, {"impact_g": 2.5, "speed_kmh": 0.0}), (60, {"speed_kmh": 0.0})),
        None,
        {},
    ),
    (
        "an impact, standing only 75 s later",
        drive(
            (30, CRUISE), (1, {"impact_g": 8.0, "speed_kmh": 30.0}), (74, {"speed_kmh": 30.0}), (30, {"speed_kmh": 0.0})
        ),
        None,
        {},
    ),
]


@pytest.mark.parametrize(("name", "readings", "fires_at", "evidence"), CASES, ids=[c[0] for c in CASES])
def test_a_crash_is_an_impact_followed_by_a_stop(
    name: str, readings: list[dict[str, float]], fires_at: int | None, evidence: Mapping[str, Any]
) -> None:
    fired = firings(readings)
    if fires_at is None:
        assert fired == [], name
        return
    [(index, found)] = fired  # once per crash, however long it stands afterwards
    assert index == fires_at, name
    assert {k: found.get(k) for k in evidence} == dict(evidence), name


def test_a_device_without_a_position_reports_none_and_the_threshold_is_configurable() -> None:
    readings = drive((10, {"speed_kmh": 50.0}), (1, {"impact_g": 3.0, "speed_kmh": 0.0}))
    assert firings(readings) == []
    [(_, evidence)] = firings(readings, threshold_g=2.0)
    assert "lat" not in evidence and "lon" not in evidence


def test_a_vehicles_monitor_opens_one_critical_crash_warning_that_opens_a_claim() -> None:
    monitor = DeviceMonitor("acme", "car-1", "vehicle")
    events = []
    readings = drive(
        (60, {**CRUISE, "ignition": 1.0}), (1, {"impact_g": 21.0, "speed_kmh": 0.0}), (1200, {"speed_kmh": 0.0})
    )
    for seq, x in enumerate(readings):
        metrics = {k: v for k, v in x.items() if k != "ts"}
        events += monitor.observe(Reading(ts=int(x["ts"] * 1000), metrics=metrics, seq=seq))
    crash = [e for e in events if e.risk == "vehicle_crash"]
    assert [e.action for e in crash] == ["open", "resolve"]
    opened = crash[0]
    assert opened.severity == "critical" and opened.time_to_loss_s == 0.0 and opened.at_ms == int((T0 + 60) * 1000)
    assert opens_claim(opened.risk, opened.severity, opened.time_to_loss_s)
    assert not monitor.protective, "a vehicle's silence is no warning: the driver is there when it crashes"


@pytest.mark.parametrize(
    ("risk", "severity", "time_to_loss_s", "opens"),
    [
        ("water_leak", "critical", 0.0, True),
        ("fire_risk", "critical", 0.0, True),
        ("burst_pipe", "critical", 0.0, True),
        ("vehicle_crash", "critical", 0.0, True),
        ("burst_pipe", "warning", 0.0, False),  # sustained high flow: not yet a claim
        ("fire_risk", "warning", None, False),  # a fast temperature rise: a warning, no loss yet
        ("water_leak", "critical", 1200.0, False),
        ("freeze_risk", "critical", 0.0, False),  # preventive: the pipe has not burst
        ("driver_fatigue", "critical", 0.0, False),
    ],
)
def test_which_warnings_open_a_claim_notice(
    risk: str, severity: str, time_to_loss_s: float | None, opens: bool
) -> None:
    assert opens_claim(risk, severity, time_to_loss_s) is opens


def test_a_crash_is_a_loss_notice_not_a_preventive_warning_and_protects_nothing() -> None:
    assert not preventive("vehicle_crash") and preventive("water_leak") and preventive("harsh_braking")
    assert not protective(["harsh_braking", "vehicle_crash", "device_silent"])
    assert protective(["water_leak"])


def test_a_reference_is_the_warnings_and_a_taken_one_gives_way_to_a_longer_one() -> None:
    shanghai = zone("Asia/Shanghai")
    refs = claim_refs("w-1", int(T0 * 1000) + 3600_000, shanghai)
    assert refs == claim_refs("w-1", int(T0 * 1000) + 3600_000, shanghai), "a replay finds the same reference"
    assert refs[0].startswith("FNOL-20251121-") and len(refs[0]) == len("FNOL-20251130-4F2A9C")
    assert [len(r) for r in refs] == sorted({len(r) for r in refs}) and all(r.startswith(refs[0]) for r in refs)
    assert claim_refs("w-2", int(T0 * 1000), shanghai)[0] != refs[0]
    # the local date: 23:30 UTC on the 20th is the 21st in Shanghai
    assert claim_refs("w-1", int(T0 * 1000) - 30 * 60_000, zone("UTC"))[0].startswith("FNOL-20251120-")


def test_the_place_is_the_evidences_else_the_last_reported_position() -> None:
    series = {"lat": [[1, 30.0], [2, 30.5]], "lon": [[1, 120.0], [2, 120.5]]}
    assert place({"lat": 31.0, "lon": 121.0}, series) == (31.0, 121.0)
    assert place({}, series) == (30.5, 120.5)
    assert place({"lat": True}, {}) == (None, None)


def notice(**kw: Any) -> ClaimNotice:
    base: dict[str, Any] = dict(
        ref="FNOL-20251121-4F2A9C",
        tenant="acme",
        device="car-7",
        kind="vehicle",
        risk="vehicle_crash",
        severity="critical",
        warning_id="6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e",
        opened_at_ms=int(T0 * 1000) + 8 * 3600_000 + 5 * 60_000,  # 08:05 in Shanghai
        customer_id="wang",
        customer_name="王女士",
        lat=31.2304,
        lon=121.4737,
        evidence={"impact_g": 18.5, "speed_kmh": 0.0, "stopped_after_s": 0.0, "speed_before_kmh": 72.0, **AT},
        readings={"speed_kmh": [[1, 72.0], [2, 71.0], [3, 0.0]], "impact_g": [[3, 18.5]]},
        readings_from_ms=int(T0 * 1000) + 8 * 3600_000 - 5 * 60_000,
    )
    base.update(kw)
    return ClaimNotice(**base)


def test_the_claims_desk_reads_the_reference_who_what_when_where_the_evidence_and_the_readings() -> None:
    message = render_claim_notice(notice(), "en", "Asia/Shanghai")
    assert message.title == "First notice of loss FNOL-20251121-4F2A9C: Vehicle crash — 王女士"
    body = message.body
    assert "What: Vehicle crash (critical): your vehicle's sensor registered an impact of 18.5 g at 72 km/h" in body
    assert "When: 2025-11-21 08:05 (Asia/Shanghai)" in body
    assert "Where: 31.23040, 121.47370" in body
    assert "Who: 王女士 (customer wang), device car-7 (vehicle), tenant acme" in body
    assert "Evidence: impact_g=18.5, speed_kmh=0, stopped_after_s=0, speed_before_kmh=72" in body
    assert "Readings from 2025-11-21 07:55 (Asia/Shanghai)" in body
    assert "- speed: 3 readings, 72 km/h → 0 km/h (lowest 0 km/h, highest 72 km/h)" in body
    assert "- impact: 1 reading, 18.5 g" in body
    assert "Warning 6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e" in body


def test_the_claims_desk_reads_it_in_chinese_and_a_home_without_a_position_says_so() -> None:
    leak = notice(
        kind="home",
        device="home-3",
        risk="water_leak",
        lat=None,
        lon=None,
        evidence={"water_leak": True, "wet_for_s": 120.0, "duration_min": 2.0},
        readings={"water_leak": [[1, 0.0], [2, 1.0], [3, 1.0]]},
    )
    message = render_claim_notice(leak, "zh-CN", "Asia/Shanghai")
    assert message.title == "【报案】FNOL-20251121-4F2A9C · 漏水 · 王女士"
    assert "事故：漏水（紧急），漏水传感器检测到积水，已持续2分钟。" in message.body
    assert "时间：2025-11-21 08:05 (Asia/Shanghai)" in message.body
    assert "地点：设备未上报位置" in message.body
    assert "- 漏水传感器：3次读数，0 → 1（最低0，最高1）" in message.body
    english = render_claim_notice(leak, "en", "Asia/Shanghai")
    assert "Where: not reported by the device" in english.body


def test_a_notice_with_no_readings_stored_says_so() -> None:
    message = render_claim_notice(notice(readings={}, readings_from_ms=None), "en")
    assert "Readings until the notice:\n- none stored" in message.body


def test_the_customers_crash_message_puts_safety_first_and_gives_the_claim_reference() -> None:
    at = int(T0 * 1000)
    event = WarningEvent(
        "w1", "acme", "car-7", "vehicle", "vehicle_crash", "open", "critical", 1.0, at, at, at,
        {"impact_g": 18.5, "speed_kmh": 0.0, "stopped_after_s": 0.0, "speed_before_kmh": 72.0},
    )  # fmt: skip
    en = render_warning(event, "en", "Mr Smith", "Asia/Shanghai", claim_ref="FNOL-20251121-4F2A9C")
    assert en.title.startswith("Critical: Vehicle crash")
    assert "1. Safety first" in en.body and "call 120" in en.body
    assert "We have opened a claim notice for you, reference FNOL-20251121-4F2A9C" in en.body
    zh = render_warning(event, "zh-CN", "王女士", "Asia/Shanghai", claim_ref="FNOL-20251121-4F2A9C")
    assert "已为您登记报案，编号 FNOL-20251121-4F2A9C" in zh.body and "120" in zh.body
    assert "FNOL" not in render_warning(event, "en", "Mr Smith").body, "no notice, no reference"


def test_a_notice_round_trips_through_its_database_row() -> None:
    original = notice()
    row = {
        "ref": original.ref,
        "tenant": "acme",
        "device": "car-7",
        "kind": "vehicle",
        "risk": "vehicle_crash",
        "severity": "critical",
        "warning_id": original.warning_id,
        "opened_at": original.opened_at_ms,
        "customer_id": "wang",
        "lat": original.lat,
        "lon": original.lon,
        "evidence": dict(original.evidence),
        "readings": {"from_ms": original.readings_from_ms, "series": dict(original.readings)},
    }
    assert ClaimNotice.from_row(row, "王女士") == original
    assert [s.metric for s in summarise(original.readings)] == ["impact_g", "speed_kmh"]


def test_eval_counts_crash_notices_apart_from_the_warnings_it_measures() -> None:
    fleet = build_fleet(
        3, scenarios=["risky_driving_crash"], quiet_ratio=0.0, start_ms=1_736_870_400_000, duration_s=12 * 3600
    )
    report = evaluate(fleet, people=None)
    [crash] = report.incidents
    assert crash.warned and crash.first_warning_risk != "vehicle_crash"
    assert "vehicle_crash" not in report.false_warnings_by_risk
    [notice_] = report.crash_notices
    assert notice_.scenario == "risky_driving_crash" and notice_.after_loss_s is not None
    assert abs(notice_.after_loss_s) < 5
    assert (report.crash_incidents, report.crash_notices_on_a_crash, report.crashes_noticed) == (1, 1, 1)
    assert report.to_json()["crash_notices"]["on_a_crash"] == 1


@pytest.mark.parametrize("module", [core.risks, notifiers.claims])
def test_doctests(module: Any) -> None:
    assert doctest.testmod(module).failed == 0
