"""One contract, every physical detector (river's ``check_estimator`` idea).

Each class in ``detectors.profiles.REGISTRY`` must: not mutate its input, be neutral before
it has learnt, pickle with its state and behave the same afterwards, save its state as plain
JSON and behave the same when it is loaded into a fresh instance, keep its configuration in
its constructor parameters and everything else as private state, have immutable default
parameters, reject bad parameters with ``ValueError``, and — fuzzed with plausible readings,
dropouts, duplicates and clock jitter — never raise and always give a well-formed finding.
The profiles and the doctests are checked here too.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import inspect
import json
import math
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import DEVICE_KINDS, METRICS
from core.risks import RISK_TYPES
from detectors.base import SEVERITIES, Finding, RiskDetector, parameter_names
from detectors.device import SensorStuck
from detectors.profiles import PROFILES, REGISTRY, build_detectors
from detectors.state import capture, restore

T0 = 1_763_654_400.0

CLASSES = sorted(REGISTRY.values(), key=lambda cls: cls.risk)

# The risk names are a contract with the simulator and the notifier templates: core.risks.
EXPECTED_RISKS = set(RISK_TYPES)

# An ordinary reading per risk type: nothing wrong, so the score is 0 before any learning.
QUIET: dict[str, dict[str, float]] = {
    "water_leak": {"water_leak": 0.0},
    "freeze_risk": {"pipe_temp_c": 9.0},
    "harsh_braking": {"accel_long_g": -0.1, "speed_kmh": 40.0},
    "speeding": {"speed_kmh": 95.0, "speed_limit_kmh": 100.0},
    "driver_fatigue": {"ignition": 1.0, "speed_kmh": 60.0},
    "vehicle_crash": {"speed_kmh": 60.0, "accel_long_g": -0.1},
    "slow_leak": {"flow_lpm": 0.0},
    "burst_pipe": {"flow_lpm": 6.0, "water_leak": 0.0},
    "mould_risk": {"humidity_pct": 55.0},
    "fire_risk": {"smoke": 0.0, "temp_c": 21.0, "co_ppm": 2.0},
    "power_cut": {"mains_v": 229.0},
    "bearing_failure": {"vibration_mm_s": 2.1, "bearing_temp_c": 45.0},
    "coldchain_failure": {"temp_c": 4.5, "door_open": 0.0, "compressor_on": 1.0},
    "battery_drain": {"battery_pct": 87.0},
    "sensor_stuck": {"temp_c": 20.5},
    "device_silent": {"temp_c": 20.5},
    "unusual_reading": {"temp_c": 20.5},
}

# Parameters each class must refuse.
BAD_PARAMS: dict[str, list[dict[str, Any]]] = {
    "water_leak": [{"debounce_s": -1.0}, {"debounce_s": math.nan}],
    "freeze_risk": [
        {"horizon_s": 0.0},
        {"min_span_s": 3 * 3600.0},
        {"min_points": 2.5},
        {"draw_lpm": 0.0},
        {"draw_c": -1.0},
        {"max_rate_c_per_h": math.nan},
    ],
    "harsh_braking": [{"threshold_g": 0.8}, {"threshold_g": -0.4}, {"window_s": 0}],
    "speeding": [{"margin": -0.1}, {"min_duration_s": math.inf}, {"severe_margin": 0.1}],
    "driver_fatigue": [{"advisory_s": 5 * 3600.0}, {"utc_offset_h": 20.0}, {"break_s": 0.0}],
    "vehicle_crash": [{"threshold_g": 0.5}, {"stop_within_s": -1.0}, {"stopped_kmh": math.nan}, {"threshold_g": "4"}],
    "slow_leak": [{"max_flow_lpm": 0.0}, {"zero_lpm": 3.0}, {"max_gap_s": -5.0}],
    "burst_pipe": [{"burst_lpm": -5.0}, {"min_duration_s": math.inf}, {"burst_lpm": "20"}],
    "mould_risk": [{"threshold_pct": 120.0}, {"min_duration_s": 0.0}, {"min_break_s": -1.0}],
    "fire_risk": [{"co_warning_ppm": 300.0}, {"rise_c": True}, {"rise_window_s": 0.0}],
    "power_cut": [{"hold_s": 60.0}, {"min_v": "150"}, {"min_duration_s": -1.0}],
    "bearing_failure": [{"warning_mm_s": 8.0}, {"alpha": 0.0}, {"grace_period": 0}],
    "coldchain_failure": [
        {"max_c": math.nan},
        {"window_s": -1.0},
        {"min_points": 1},
        {"cut_in_c": 9.0},
        {"cut_in_c": math.inf},
        {"margin_c": 0.0},
    ],
    "battery_drain": [{"low_pct": 3.0}, {"horizon_s": 0.0}, {"empty_pct": 150.0}],
    "sensor_stuck": [{"metric": ""}, {"ignore_values": [0.0]}, {"min_readings": 1}],
    "device_silent": [{"multiple": 0.5}, {"floor_s": 0.0}, {"offline_grace_s": -1.0}, {"floor_s": math.nan}],
    "unusual_reading": [{"metrics": ("temperature",)}, {"metrics": ()}, {"slack": 9.0}, {"sample_s": 0.0}],
}

# Detectors without state of their own: the silence rule's parameters (the device's contact
# times are the stream's to keep: streams.silence, saved with the device's monitor).
STATELESS = {"device_silent"}

# Metrics a fuzzed reading may carry besides the detector's own (context other detectors use).
CONTEXT = ("speed_kmh", "speed_limit_kmh", "ignition", "water_leak", "flow_lpm", "temp_c", "door_open", "compressor_on")


def _value(name: str) -> st.SearchStrategy[float]:
    metric = METRICS[name]
    if metric.kind == "bool":
        return st.sampled_from([0.0, 1.0])
    return st.floats(metric.low, metric.high, allow_nan=False, allow_infinity=False)


@st.composite
def reading_streams(draw: st.DrawFn, cls: type[RiskDetector]) -> list[dict[str, float]]:
    """A device's readings at a steady cadence, with new values or the previous ones held (so
    sustained conditions, trends and flat runs happen), exact duplicates, clock jitter (a
    time slightly before the last) and dropouts of up to three days."""
    names = sorted(set(cls.metrics) | set(CONTEXT))
    fresh = st.fixed_dictionaries({}, optional={n: _value(n) for n in names})
    cadence = draw(st.sampled_from([1.0, 10.0, 60.0, 300.0, 900.0]))
    events = st.sampled_from(["tick"] * 6 + ["duplicate", "jitter", "gap"])
    ts = T0
    out = [{"ts": ts, **draw(fresh)}]
    for _ in range(draw(st.integers(0, 80))):
        event = draw(events)
        if event == "duplicate":
            out.append(dict(out[-1]))
            continue
        if event == "tick":
            ts += cadence
        elif event == "jitter":
            ts -= draw(st.floats(0.0, 5.0))
        else:
            ts += draw(st.floats(cadence, 3 * 86400.0))
        held = {k: v for k, v in out[-1].items() if k != "ts"}
        out.append({"ts": ts, **(draw(fresh) if draw(st.integers(0, 4)) == 0 else held)})
    return out


def _assert_well_formed(finding: Finding, cls: type[RiskDetector]) -> None:
    assert isinstance(finding, Finding)
    assert finding.risk == cls.risk
    assert 0.0 <= finding.score <= 1.0 and math.isfinite(finding.score)
    assert finding.severity in SEVERITIES
    if finding.time_to_loss_s is not None:
        assert math.isfinite(finding.time_to_loss_s) and finding.time_to_loss_s >= 0
    json.dumps(finding.evidence, allow_nan=False)


def _reading(risk: str, ts: float = T0) -> dict[str, float]:
    return {"ts": ts, **QUIET[risk]}


# --------------------------------------------------------------------------- the registry


def test_the_registry_has_exactly_the_contracted_risk_types() -> None:
    assert set(REGISTRY) == EXPECTED_RISKS
    assert tuple(REGISTRY) == RISK_TYPES
    assert set(QUIET) == set(BAD_PARAMS) == EXPECTED_RISKS
    for risk, cls in REGISTRY.items():
        assert cls.risk == risk and issubclass(cls, RiskDetector)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_reads_only_catalogued_metrics(cls: type[RiskDetector]) -> None:
    assert cls.metrics and set(cls.metrics) <= set(METRICS)
    assert set(QUIET[cls.risk]) <= set(METRICS)


# --------------------------------------------------------------------------- river's checks


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_is_neutral_before_learning(cls: type[RiskDetector]) -> None:
    detector = cls()
    x = _reading(cls.risk)
    assert detector.wants(x)
    assert detector.score_one(x) == 0.0
    finding = detector.assess_one(x)
    assert finding.score == 0.0
    _assert_well_formed(finding, cls)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_assessing_does_not_learn(cls: type[RiskDetector]) -> None:
    detector = cls()
    for i in range(5):
        detector.learn_one(_reading(cls.risk, T0 + 60 * i))
    before = pickle.dumps(detector)
    detector.assess_one(_reading(cls.risk, T0 + 600))
    detector.score_one(_reading(cls.risk, T0 + 600))
    assert pickle.dumps(detector) == before


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_has_immutable_defaults_stored_under_their_names(cls: type[RiskDetector]) -> None:
    detector = cls()
    params = inspect.signature(cls.__init__).parameters
    for name, param in params.items():
        if name == "self":
            continue
        assert param.default is not inspect.Parameter.empty, f"{name} needs a default"
        assert isinstance(param.default, (int, float, str, bool, tuple, type(None)))
        if isinstance(param.default, tuple):
            assert all(isinstance(v, (int, float, str)) for v in param.default)
        assert getattr(detector, name) == param.default
    assert repr(detector).startswith(f"{cls.__name__}(")


@pytest.mark.parametrize(
    ("cls", "bad"),
    [(cls, bad) for cls in CLASSES for bad in BAD_PARAMS[cls.risk]],
    ids=lambda v: v.__name__ if isinstance(v, type) else repr(v),
)
def test_rejects_bad_params(cls: type[RiskDetector], bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        cls(**bad)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_copes_with_a_reading_without_time_or_with_garbage(cls: type[RiskDetector]) -> None:
    detector = cls()
    for x in ({}, {"ts": T0}, {"ts": math.nan, **QUIET[cls.risk]}, {"ts": T0, **{m: math.inf for m in cls.metrics}}):
        _assert_well_formed(detector.assess_one(x), cls)
        detector.learn_one(x)


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_fuzzed_streams_give_well_formed_findings_and_leave_input_alone(
    cls: type[RiskDetector],
) -> None:
    @FUZZ
    @given(stream=reading_streams(cls))
    def check(stream: list[dict[str, float]]) -> None:
        detector = cls()
        for x in stream:
            original = copy.deepcopy(x)
            _assert_well_formed(detector.assess_one(x), cls)
            assert 0.0 <= detector.score_one(x) <= 1.0
            detector.learn_one(x)
            assert x == original

    check()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_pickles_and_behaves_the_same_afterwards(cls: type[RiskDetector]) -> None:
    @FUZZ
    @given(stream=reading_streams(cls), cut=st.integers(0, 80))
    def check(stream: list[dict[str, float]], cut: int) -> None:
        detector = cls()
        for x in stream[:cut]:
            detector.assess_one(x)
            detector.learn_one(x)
        clone = pickle.loads(pickle.dumps(detector))
        assert repr(clone) == repr(detector)
        for x in stream[cut:]:
            assert clone.assess_one(x) == detector.assess_one(x)
            clone.learn_one(x)
            detector.learn_one(x)

    check()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_saves_its_state_as_json_and_behaves_the_same_in_a_fresh_instance(cls: type[RiskDetector]) -> None:
    @FUZZ
    @given(stream=reading_streams(cls), cut=st.integers(0, 80))
    def check(stream: list[dict[str, float]], cut: int) -> None:
        detector = cls()
        for x in stream[:cut]:
            detector.assess_one(x)
            detector.learn_one(x)
        fresh = cls()
        assert restore(fresh, orjson.loads(orjson.dumps(capture(detector, compact=False))))
        assert pickle.dumps(fresh) == pickle.dumps(detector)  # every bit of state came back
        for x in stream[cut:]:
            assert fresh.assess_one(x) == detector.assess_one(x)
            fresh.learn_one(x)
            detector.learn_one(x)

    check()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_its_compact_state_restores_and_saves_again_as_it_was(cls: type[RiskDetector]) -> None:
    """What the worker saves (a trend packed as float32) loads into a fresh instance that saves
    the very same state again; a detector without a trend comes back bit for bit. (That a
    restored trend decides as the live one does is shown on the simulator's devices, in
    test_monitor_state: on fuzzed readings a float32 rounding may tip a borderline fit.)"""

    @FUZZ
    @given(stream=reading_streams(cls), cut=st.integers(0, 80))
    def check(stream: list[dict[str, float]], cut: int) -> None:
        detector = cls()
        for x in stream[:cut]:
            detector.assess_one(x)
            detector.learn_one(x)
        saved = orjson.loads(orjson.dumps(capture(detector)))
        fresh = cls()
        assert restore(fresh, saved)
        assert orjson.loads(orjson.dumps(capture(fresh))) == saved
        if saved == orjson.loads(orjson.dumps(capture(detector, compact=False))):  # nothing packed
            assert pickle.dumps(fresh) == pickle.dumps(detector)
        for x in stream[cut:]:
            assert fresh.assess_one(x).risk == detector.assess_one(x).risk
            fresh.learn_one(x)
            detector.learn_one(x)

    check()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_keeps_configuration_in_parameters_and_saves_only_private_state(cls: type[RiskDetector]) -> None:
    detector = cls()
    saved = capture(detector)
    assert saved["v"] == cls.state_version
    assert bool(saved["state"]) == (cls.risk not in STATELESS), "a detector with no state needs no saving"
    assert all(name.startswith("_") for name in saved["state"]), sorted(saved["state"])
    public = {name for name in vars(detector) if not name.startswith("_")}
    assert public <= set(parameter_names(cls)) | {"metrics"}, "configuration is a constructor parameter"


@pytest.mark.parametrize("cls", [c for c in CLASSES if c.risk not in STATELESS], ids=lambda c: c.__name__)
def test_state_that_does_not_fit_is_not_loaded(cls: type[RiskDetector]) -> None:
    learnt = cls()
    for i in range(5):
        learnt.learn_one(_reading(cls.risk, T0 + 60 * i))
    saved = orjson.loads(orjson.dumps(capture(learnt)))
    first = next(iter(saved["state"]))
    misfits = [
        None,
        {"v": cls.state_version + 1, "state": saved["state"]},  # saved by code that meant something else
        {"v": cls.state_version, "state": {**saved["state"], "_renamed": 1.0}},
        {"v": cls.state_version, "state": {k: v for k, v in saved["state"].items() if k != first}},
        {"v": cls.state_version, "state": {**saved["state"], first: {"type": "no_such_helper", "state": {}}}},
    ]
    for misfit in misfits:
        fresh = cls()
        assert not restore(fresh, misfit)
        assert pickle.dumps(fresh) == pickle.dumps(cls()), "a detector whose state does not fit starts afresh"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_state_stays_bounded(cls: type[RiskDetector]) -> None:
    """Ten days of a reading a second must not grow the state beyond a few tens of KB."""
    detector = cls()
    x = _reading(cls.risk)
    sizes = []
    for day in range(10):
        for i in range(0, 86400, 1 if day == 9 else 60):
            reading = {**x, "ts": T0 + day * 86400 + i}
            for name in reading:  # a little movement so windows and trends fill
                if name != "ts" and METRICS[name].kind == "number":
                    reading[name] = x[name] + (i % 7) * 0.01
            detector.learn_one(reading)
        sizes.append(len(pickle.dumps(detector)))
    assert max(sizes) < 64_000, sizes


# --------------------------------------------------------------------------- profiles


def test_every_device_kind_has_a_profile_with_battery_and_stuck_sensor_checks() -> None:
    assert set(PROFILES) == set(DEVICE_KINDS)
    for kind, pairs in PROFILES.items():
        names = [name for name, _ in pairs]
        assert "battery_drain" in names and "sensor_stuck" in names, kind
        assert set(names) <= set(REGISTRY)
        detectors = build_detectors(kind)
        assert [d.risk for d in detectors] == names
        stuck = [d for d in detectors if d.risk == "sensor_stuck"]
        assert all(len(d.metrics) == 1 and d.metrics[0] in METRICS for d in stuck)


def test_build_detectors_gives_fresh_detectors_each_time() -> None:
    a, b = build_detectors("home"), build_detectors("home")
    assert all(x is not y for x, y in zip(a, b, strict=True))
    leak_a = next(d for d in a if d.risk == "slow_leak")
    leak_a.learn_one({"ts": T0, "flow_lpm": 0.5})
    leak_b = next(d for d in b if d.risk == "slow_leak")
    assert pickle.dumps(leak_a) != pickle.dumps(leak_b)


def test_overrides_change_add_and_remove_detectors() -> None:
    detectors = build_detectors(
        "coldchain",
        {"coldchain_failure": {"max_c": 5.0}, "power_cut": {}, "sensor_stuck": None},
    )
    by_risk = {d.risk: d for d in detectors}
    assert set(by_risk) == {"coldchain_failure", "battery_drain", "power_cut", "device_silent", "unusual_reading"}
    assert by_risk["coldchain_failure"].max_c == 5.0  # type: ignore[attr-defined]
    assert PROFILES["coldchain"][0] == ("coldchain_failure", {"tolerance_s": 5400.0})  # the profile is untouched


@pytest.mark.parametrize(
    ("kind", "overrides", "message"),
    [
        ("boat", None, "known kinds: vehicle, home, equipment, coldchain"),
        ("home", {"freezing": {}}, "unknown risk type"),
        ("home", {"freeze_risk": {"horizon": 3600}}, "freeze_risk"),
        ("home", {"freeze_risk": {"horizon_s": -1}}, "horizon_s"),
    ],
)
def test_build_detectors_refuses_what_it_does_not_know(
    kind: str, overrides: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_detectors(kind, overrides)


def test_a_sensor_stuck_instance_wants_only_its_metric() -> None:
    stuck = SensorStuck(metric="pipe_temp_c")
    assert stuck.metrics == ("pipe_temp_c",)
    assert stuck.wants({"ts": T0, "pipe_temp_c": 3.0})
    assert not stuck.wants({"ts": T0, "temp_c": 3.0})


# --------------------------------------------------------------------------- doctests


@pytest.mark.parametrize(
    "module",
    [
        "detectors.checks",
        "detectors.physical",
        "detectors.readings",
        "detectors.windows",
        "detectors.trend",
        "detectors.state",
        "detectors.home",
        "detectors.vehicle",
        "detectors.equipment",
        "detectors.device",
        "detectors.silent",
        "detectors.profiles",
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_detector_has_a_doctest_that_fires(cls: type[RiskDetector]) -> None:
    doc = cls.__doc__ or ""
    assert ">>>" in doc and cls.__name__ in doc
