"""The fleet model: window features, a model of normal pumps that sees a failing one, batch
scoring, which metrics it names, how severe it may be, and the skops file it is kept in."""

from __future__ import annotations

import doctest
import math
import pickle

import numpy as np
import pytest

from detectors import fleet
from detectors.fleet import (
    FleetModel,
    FleetRow,
    FleetWindow,
    feature_names,
    fit_fleet_model,
    fleet_severity,
    rows_of_device,
    score_rows,
)
from simulator.equipment import BearingWearFault, EquipmentParams, simulate_equipment
from simulator.signals import Span

START_MS = 1_767_225_600_000
METRICS = ["bearing_temp_c", "current_a", "pressure_kpa", "vibration_mm_s"]


def _readings(trace) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    out = []
    for i, ts in enumerate(trace.ts_ms.tolist()):
        x = {"ts": ts / 1000.0}
        x.update({m: float(trace.metrics[m][i]) for m in METRICS if not math.isnan(trace.metrics[m][i])})
        out.append(x)
    return out


def _pump(seed: int, hours: float = 24.0, wear: BearingWearFault | None = None) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    params = EquipmentParams(
        baseline_vibration_mm_s=float(rng.uniform(1.5, 3.0)),
        rated_current_a=float(rng.uniform(40, 120)),
        pressure_kpa=float(rng.uniform(350, 650)),
    )
    return _readings(simulate_equipment(seed, Span(START_MS, hours * 3600.0), params, wear))


@pytest.fixture(scope="module")
def normal_rows() -> np.ndarray:
    rows = [r.features for seed in range(1, 9) for r in rows_of_device(FleetWindow(METRICS), _pump(seed))]
    return np.array(rows, dtype=float)


def test_features_are_deterministic_and_bounded_in_state() -> None:
    readings = _pump(3, hours=6)
    first = [r.features for r in rows_of_device(FleetWindow(METRICS), readings)]
    again = [r.features for r in rows_of_device(FleetWindow(METRICS), readings)]
    assert first == again and len(first) > 20
    window = FleetWindow(METRICS)
    size = len(pickle.dumps(window))
    for x in readings:
        window.learn_one(x)
    assert len(pickle.dumps(window)) == size  # the same arrays whatever it has seen


def test_features_match_the_window_arithmetic() -> None:
    window = FleetWindow(["temp_c", "humidity_pct"], window_s=600.0, buckets=2)
    for k in range(10):  # one reading a minute, the humidity in every other one
        x = {"ts": 60.0 * k, "temp_c": 10.0 + k}
        if k % 2 == 0:
            x["humidity_pct"] = 50.0
        window.learn_one(x)
    f = dict(zip(feature_names(["temp_c", "humidity_pct"]), window.features(), strict=True))
    assert f["temp_c:mean"] == pytest.approx(14.5)
    assert f["temp_c:std"] == pytest.approx(np.std(np.arange(10.0, 20.0)))
    assert (f["temp_c:min"], f["temp_c:max"], f["temp_c:last"], f["temp_c:step"]) == (10.0, 19.0, 19.0, 1.0)
    assert f["temp_c:slope_per_h"] == pytest.approx(60.0)  # 1 °C a minute
    assert f["humidity_pct:missing"] == pytest.approx(0.5)
    assert f["window:log_readings"] == pytest.approx(math.log1p(10))
    window.learn_one({"ts": 1200.0, "temp_c": 0.0})  # two buckets later: the old ones have left the window
    f = dict(zip(feature_names(["temp_c", "humidity_pct"]), window.features(), strict=True))
    assert f["temp_c:mean"] == 0.0 and math.isnan(f["humidity_pct:mean"]) and f["humidity_pct:missing"] == 1.0


def test_a_window_refuses_a_bad_configuration() -> None:
    for kwargs in ({"metrics": []}, {"metrics": ["a", "a"]}, {"metrics": ["a"], "buckets": 1}):
        with pytest.raises(ValueError):
            FleetWindow(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", fleet.METHODS)
def test_a_model_of_normal_pumps_scores_a_failing_bearing_above_normal_windows(method: str, normal_rows) -> None:  # type: ignore[no-untyped-def]
    model = fit_fleet_model("equipment", METRICS, normal_rows, method=method, seed=1)
    healthy = np.array([r.features for r in rows_of_device(FleetWindow(METRICS), _pump(101))])
    wear = BearingWearFault(onset_s=4 * 3600.0, fail_at_s=22 * 3600.0)
    failing = rows_of_device(FleetWindow(METRICS), _pump(102, wear=wear))
    late = np.array([r.features for r in failing if r.ts >= START_MS / 1000 + 16 * 3600])  # vibration 4x baseline
    healthy_scores, _ = model.score_many(healthy)
    late_scores, z = model.score_many(late)
    assert fleet.auc(healthy_scores, late_scores) > 0.9
    if method == "pca":  # iforest isolates every late window at about the same depth (~0.94 here), and zmax
        # saturates at the z clip that the pumps' planned stops reach in training too
        assert np.median(late_scores) > np.quantile(healthy_scores, 0.95)
    assert model.unusual(z[-1])[0].metric == "vibration_mm_s"


def test_batch_scores_equal_row_by_row_scores(normal_rows) -> None:  # type: ignore[no-untyped-def]
    model = fit_fleet_model("equipment", METRICS, normal_rows, method="iforest", seed=2)
    batch, z = model.score_many(normal_rows[:200])
    one_by_one = np.array([model.score_many(row)[0][0] for row in normal_rows[:200]])
    assert np.array_equal(batch, one_by_one)
    assert np.array_equal(z[5], model.score_many(normal_rows[5])[1][0])


def test_a_finding_names_the_unusual_metrics_and_stays_advisory_unless_corroborated(normal_rows) -> None:  # type: ignore[no-untyped-def]
    model = fit_fleet_model("equipment", METRICS, normal_rows, seed=3)
    odd = normal_rows[10].copy()
    for stat in ("last", "mean", "min", "max", "vs_baseline"):
        odd[model.feature_names.index(f"bearing_temp_c:{stat}")] += 50.0  # a bearing 50 °C hotter than it was
    rows = [
        FleetRow("t/pump-a", "equipment", 1.0, odd),
        FleetRow("t/pump-b", "equipment", 1.0, odd),
        FleetRow("t/pump-c", "equipment", 1.0, normal_rows[11]),
        FleetRow("t/car", "vehicle", 1.0, [0.0]),
    ]
    findings = {f.key: f for f in score_rows({"equipment": model}, rows, {"t/pump-b": "critical"}, threshold=0.99)}
    assert set(findings) == {"t/pump-a", "t/pump-b"}  # the vehicle has no model: skipped
    alone, backed = findings["t/pump-a"], findings["t/pump-b"]
    assert (alone.severity, alone.corroborated) == ("advisory", False)
    assert (backed.severity, backed.corroborated) == ("critical", True)
    assert alone.unusual[0].metric == "bearing_temp_c" and alone.unusual[0].z > 10
    assert alone.evidence["unusual_metrics"][0] == "bearing_temp_c"
    assert "bearing_temp_c" in alone.describe()


@pytest.mark.parametrize(
    ("physical", "expected"),
    [
        (None, "advisory"),
        ("advisory", "advisory"),
        ("warning", "warning"),
        ("critical", "critical"),
        ("bogus", "advisory"),
    ],
)
def test_fleet_severity_never_exceeds_the_physical_rules(physical: str | None, expected: str) -> None:
    assert fleet_severity(physical) == expected


def test_the_model_round_trips_through_skops_and_refuses_other_types(normal_rows) -> None:  # type: ignore[no-untyped-def]
    for method in fleet.METHODS:
        model = fit_fleet_model("equipment", METRICS, normal_rows, method=method, seed=4)
        back = FleetModel.from_bytes(model.to_bytes())
        assert back.metrics == model.metrics and back.method == method
        assert np.array_equal(back.score_many(normal_rows[:50])[0], model.score_many(normal_rows[:50])[0])
    import skops.io as sio

    with pytest.raises(ValueError, match="not trusted"):
        FleetModel.from_bytes(sio.dumps({"format": 1, "trap": fleet.Unusual("a", "b", 1.0)}))


def test_fitting_refuses_too_few_rows_or_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        fit_fleet_model("home", ["temp_c"], np.zeros((5, len(feature_names(["temp_c"])))))
    with pytest.raises(ValueError, match="features per row"):
        fit_fleet_model("home", ["temp_c"], np.zeros((50, 3)))


def test_doctests() -> None:
    assert doctest.testmod(fleet).failed == 0
