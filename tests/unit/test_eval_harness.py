"""The evaluation harness: recall, lead time, false warnings and the loss avoidable, checked
on a hand-made fleet whose answer is known, then on a real simulated scenario."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from detectors.base import Finding, RiskDetector
from evaluation import harness
from evaluation.harness import evaluate, percentile
from simulator.fleet import SimDevice, SimReading, build_fleet
from simulator.incidents import Incident

H = 3600_000


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

    def readings(self, device: SimDevice):  # type: ignore[no-untyped-def]
        for hour in range(48):
            wet = hour in self.wet.get(device.device, [])
            yield SimReading(device, hour * H, hour, {"water_leak": wet})


@pytest.fixture(autouse=True)
def leak_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.decisions.build_detectors", lambda kind: [LeakSensor()])


def incident(device: str, precursor_h: int, loss_h: int, cost: float) -> Incident:
    return Incident(
        device, "slow_leak", ("water_leak",), precursor_h * H, loss_h * H, "water_damage", (cost / 2, cost * 2), cost
    )


def test_known_answer() -> None:
    dev = [SimDevice("demo", name, "home", "c", None) for name in ("early", "late", "missed", "quiet")]
    fleet = HandMadeFleet(
        dev,
        [incident("early", 10, 20, 10_000), incident("late", 10, 20, 30_000), incident("missed", 5, 30, 50_000)],
        {"early": [12, 13], "late": [25], "quiet": [40]},
    )
    report = evaluate(fleet, min_lead_s=3600)
    by_device = {r.device: r for r in report.incidents}
    assert by_device["early"].lead_time_s == 8 * 3600 and by_device["early"].detection_delay_s == 2 * 3600
    assert not by_device["late"].warned and by_device["late"].warned_after_loss
    assert not by_device["missed"].warned and not by_device["missed"].warned_after_loss
    assert report.overall.recall == pytest.approx(1 / 3)
    assert report.false_warnings == 1 and report.false_warnings_by_risk == {"water_leak": 1}
    assert report.device_days == pytest.approx(4 * 47 / 24)
    assert report.loss_avoidable_cny == 10_000


def test_a_warning_with_too_little_lead_earns_no_avoided_loss() -> None:
    dev = [SimDevice("demo", "tight", "home", "c", None)]
    fleet = HandMadeFleet(dev, [incident("tight", 10, 20, 10_000)], {"tight": [20]})
    report = evaluate(fleet, min_lead_s=1800)
    assert report.overall.warned == 1 and report.incidents[0].lead_time_s == 0
    assert report.loss_avoidable_cny == 0


def test_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 90) == 5.0


def test_report_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from evaluation.report import write_eval

    dev = [SimDevice("demo", "early", "home", "c", None)]
    report = evaluate(HandMadeFleet(dev, [incident("early", 10, 20, 10_000)], {"early": [12]}))
    json_path, png = write_eval(report, tmp_path)
    assert json_path.read_text().count('"lead_time_s": 28800.0') == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_frozen_pipe_scenario_runs_through_the_workers_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real detectors
    fleet = build_fleet(3, scenarios=["frozen_pipe"], quiet_ratio=0.0, start_ms=1_736_870_400_000, duration_s=36 * 3600)
    report = harness.evaluate(fleet)
    assert report.readings > 1000 and report.overall.incidents == 1
    result = report.incidents[0]
    assert result.warned, "the freeze detector should warn on the frozen-pipe scenario"
    assert result.lead_time_s is not None and result.lead_time_s > 3600
