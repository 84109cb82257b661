"""Outcomes feed back: a device's recorded false alarms make its detector less eager, within
bounds, through the device's own configuration (as the worker loads it)."""

from __future__ import annotations

import pytest

from core.contract import Reading
from detectors.feedback import FALSE_ALARMS, FEEDBACK, MAX_STEPS, desensitised
from detectors.home import FreezeRisk
from detectors.profiles import build_detectors, check_overrides, explain_parameters, parameter_defaults
from evaluation.people import reported_false_alarms
from streams.decisions import DeviceMonitor, detectors_for

MIN = 60_000


def freeze_of(overrides: dict) -> FreezeRisk:  # type: ignore[type-arg]
    found = [d for d in build_detectors("home", overrides) if isinstance(d, FreezeRisk)]
    return found[0]


def test_each_false_alarm_moves_the_risks_parameter_one_step_up_to_its_bound() -> None:
    horizons = [freeze_of({"freeze_risk": {FALSE_ALARMS: n}}).horizon_s for n in range(6)]
    assert horizons[0] == 6 * 3600.0
    assert horizons[1] == 0.75 * horizons[0] and horizons[2] == 0.75 * horizons[1]
    assert horizons[MAX_STEPS:] == [horizons[MAX_STEPS]] * (6 - MAX_STEPS)  # no further
    assert min(horizons) >= FEEDBACK["freeze_risk"].bound


def test_the_step_starts_from_the_configured_value_and_never_passes_the_bound() -> None:
    assert freeze_of({"freeze_risk": {"horizon_s": 3 * 3600.0, FALSE_ALARMS: 3}}).horizon_s == 2 * 3600.0
    assert freeze_of({"freeze_risk": {"horizon_s": 3600.0, FALSE_ALARMS: 3}}).horizon_s == 3600.0


def test_every_bound_keeps_the_detector_buildable() -> None:
    for risk, step in FEEDBACK.items():
        kind = next(k for k in ("home", "vehicle", "equipment", "coldchain") if risk in _risks(k))
        check_overrides(kind, {risk: {FALSE_ALARMS: 99}})
        built = [d for d in build_detectors(kind, {risk: {FALSE_ALARMS: 99}}) if d.risk == risk][0]
        assert getattr(built, step.parameter) != parameter_defaults(risk)[step.parameter]


def _risks(kind: str) -> set[str]:
    return {d.risk for d in build_detectors(kind)}


def test_a_loss_under_way_is_never_made_less_eager() -> None:
    assert "water_leak" not in FEEDBACK and "burst_pipe" not in FEEDBACK and "fire_risk" not in FEEDBACK
    assert desensitised("water_leak", {FALSE_ALARMS: 3}, parameter_defaults("water_leak")) == {}
    check_overrides("home", {"fire_risk": {FALSE_ALARMS: 2}})  # accepted: it does nothing


def test_a_count_that_is_not_a_whole_number_is_refused() -> None:
    with pytest.raises(ValueError, match="false_alarms"):
        build_detectors("home", {"freeze_risk": {FALSE_ALARMS: 1.5}})
    with pytest.raises(ValueError, match="false_alarms"):
        check_overrides("home", {"freeze_risk": {FALSE_ALARMS: -1}})


def test_explain_names_the_false_alarms_behind_a_parameter() -> None:
    settings = explain_parameters("home", [("device", {"freeze_risk": {FALSE_ALARMS: 2}})])
    horizon = next(s for s in settings if s.risk == "freeze_risk" and s.parameter == "horizon_s")
    assert horizon.value == 6 * 3600.0 * 0.75**2 and horizon.set_by == "default + 2 false alarm(s)"


def test_a_device_with_a_false_freeze_alarm_no_longer_warns_five_hours_ahead() -> None:
    """A pipe at 5 °C cooling 1 °C an hour: the profile warns (0 °C in 5 h, within 6 h); the
    same device after a recorded false alarm (horizon 4.5 h) waits until the crossing is closer."""

    def first_warning_min(overrides: dict | None) -> int:  # type: ignore[type-arg]
        monitor = DeviceMonitor("t", "home-1", "home", detectors_for("home", overrides))
        for m in range(0, 300, 2):
            temp = 8.0 - m / 60
            if monitor.observe(Reading(ts=m * MIN, metrics={"pipe_temp_c": temp}, seq=m)):
                return m
        raise AssertionError("no warning")

    plain = first_warning_min(None)
    fed_back = first_warning_min({"freeze_risk": {FALSE_ALARMS: 1}})
    assert 60 <= plain < fed_back
    assert fed_back - plain >= 60  # 1.5 h of horizon less, minus the trend's noise


class _Followed:
    def __init__(self, wid: str, device: str, risk: str, acked: bool) -> None:
        self.warning_id, self.device, self.risk = wid, device, risk
        self.acknowledged_at_ms = 1 if acked else None


class _People:
    def __init__(self) -> None:
        self.warnings = [
            _Followed("a", "home-1", "freeze_risk", True),
            _Followed("b", "home-1", "freeze_risk", True),
            _Followed("c", "home-1", "water_leak", True),  # a loss under way: they saw the water
            _Followed("d", "home-2", "freeze_risk", False),  # nobody looked: nobody tells
            _Followed("e", "home-3", "freeze_risk", True),  # it was real
        ]
        self.outcomes = {"a": "false_alarm", "b": "false_alarm", "c": "false_alarm", "d": "false_alarm"}
        self.outcomes["e"] = "loss_avoided"


def test_simulated_people_record_the_false_alarms_they_saw() -> None:
    assert reported_false_alarms(_People(), under_way=["c"]) == {("home-1", "freeze_risk"): 2}  # type: ignore[arg-type]
