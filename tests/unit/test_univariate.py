"""Every univariate detector keeps the river contract (one check list run over all of them)."""

from __future__ import annotations

import copy
import doctest
import inspect
import math
import pickle
import random

import numpy as np
import pytest

from detectors import univariate
from detectors.base import Detector
from detectors.univariate import UNIVARIATE, EwmaZScore, WindowedGaussian

DETECTORS = sorted(UNIVARIATE.items())
IDS = [name for name, _ in DETECTORS]
# Detectors that score every reading; the downsampling ones (adaptive resonance) score one
# reading in a few and have their own behaviour tests in test_univariate_resonance.py.
EVERY_READING = [(name, cls) for name, cls in DETECTORS if not getattr(cls, "downsamples", False)]
EVERY_READING_IDS = [name for name, _ in EVERY_READING]


def _readings(n: int, seed: int = 1) -> list[dict[str, float]]:
    """A noisy daily cycle sampled every 5 minutes."""
    rng = random.Random(seed)
    return [{"ts": 300.0 * i, "value": 20 + 3 * math.sin(i / 288 * 2 * math.pi) + rng.gauss(0, 0.3)} for i in range(n)]


def _trained(cls: type[Detector], n: int = 600) -> Detector:
    detector = cls()
    for x in _readings(n):
        detector.learn_one(x)
    return detector


@pytest.mark.parametrize(("name", "cls"), DETECTORS, ids=IDS)
def test_is_a_detector_with_its_configuration_stored_by_name(name: str, cls: type) -> None:
    detector = cls()
    assert isinstance(detector, Detector)
    for param, p in inspect.signature(cls.__init__).parameters.items():
        if param == "self":
            continue
        assert getattr(detector, param) == p.default
        assert not isinstance(p.default, (list, dict, set)), "mutable default"
    assert repr(detector).startswith(f"{cls.__name__}(")


@pytest.mark.parametrize(("name", "cls"), DETECTORS, ids=IDS)
def test_does_not_mutate_its_input(name: str, cls: type) -> None:
    detector = _trained(cls, 50)
    x = {"ts": 15000.0, "value": 21.5}
    before = copy.deepcopy(x)
    detector.score_one(x)
    detector.learn_one(x)
    assert x == before


@pytest.mark.parametrize(("name", "cls"), DETECTORS, ids=IDS)
def test_neutral_before_learning(name: str, cls: type) -> None:
    assert cls().score_one({"ts": 0.0, "value": 1e9}) == 0.0


@pytest.mark.parametrize(("name", "cls"), DETECTORS, ids=IDS)
def test_scoring_does_not_learn(name: str, cls: type) -> None:
    detector = _trained(cls, 100)
    state = pickle.dumps(detector)
    for _ in range(5):
        detector.score_one({"ts": 1.0, "value": 1e6})
    assert pickle.dumps(detector) == state


@pytest.mark.parametrize(("name", "cls"), DETECTORS, ids=IDS)
def test_pickles_mid_stream_and_carries_on_identically(name: str, cls: type) -> None:
    detector = _trained(cls, 300)
    clone = pickle.loads(pickle.dumps(detector))
    for x in _readings(400, seed=2)[300:]:
        assert clone.score_one(x) == detector.score_one(x)
        clone.learn_one(x)
        detector.learn_one(x)
    assert repr(clone) == repr(detector)


@pytest.mark.parametrize(("name", "cls"), DETECTORS, ids=IDS)
def test_scores_stay_in_unit_interval_even_on_odd_input(name: str, cls: type) -> None:
    detector = cls()
    rng = random.Random(5)
    odd = [0.0, -1e300, 1e300, -1e308, 1e308, float("nan"), float("inf"), 5e-324, 42.0]
    for i in range(400):
        value = rng.choice(odd) if i % 17 == 0 else rng.gauss(10, 1)
        x = {"ts": float(i), "value": value}
        score = detector.score_one(x)
        assert 0.0 <= score <= 1.0, (i, value, score)
        detector.learn_one(x)
    assert 0.0 <= detector.score_one({"ts": 1.0}) <= 1.0  # no value at all


@pytest.mark.parametrize(("name", "cls"), EVERY_READING, ids=EVERY_READING_IDS)
def test_flags_an_obvious_spike(name: str, cls: type) -> None:
    detector = _trained(cls)
    normal = [detector.score_one(x) for x in _readings(650)[600:]]
    spike = detector.score_one({"ts": 600 * 300.0, "value": 60.0})
    assert spike > 0.9
    assert spike > max(normal)


@pytest.mark.parametrize(("name", "cls"), EVERY_READING, ids=EVERY_READING_IDS)
def test_a_flat_signal_does_not_divide_by_zero(name: str, cls: type) -> None:
    detector = cls()
    for i in range(100):
        detector.learn_one({"ts": float(i), "value": 45.0})
    assert detector.score_one({"ts": 100.0, "value": 45.0}) <= 0.5
    assert detector.score_one({"ts": 100.0, "value": 46.0}) > 0.99


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (EwmaZScore, {"alpha": 0.0}),
        (EwmaZScore, {"alpha": 1.0}),
        (EwmaZScore, {"alpha": float("nan")}),
        (EwmaZScore, {"grace_period": 0}),
        (EwmaZScore, {"z_half": 0.0}),
        (EwmaZScore, {"min_std": -1.0}),
        (WindowedGaussian, {"window_size": 1}),
        (WindowedGaussian, {"step_size": 0}),
        (WindowedGaussian, {"window_size": 10, "step_size": 11}),
        (WindowedGaussian, {"grace_period": 0}),
    ],
)
def test_bad_configuration_is_refused_at_construction(cls: type, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        cls(**kwargs)


def test_doctests_pass() -> None:
    result = doctest.testmod(univariate)
    assert result.attempted >= 4
    assert result.failed == 0


def _nab_windowed_gaussian(values: list[float], window_size: int, step_size: int) -> list[float]:
    """NAB's ``WindowedGaussianDetector.handleRecord``, list for list."""
    window: list[float] = []
    buffer: list[float] = []
    mean, std = 0.0, 1.0
    out = []
    for v in values:
        score = 0.0
        if window:
            x = 2 * mean - v if v < mean else v
            score = 1 - 0.5 * math.erfc(((x - mean) / std) / math.sqrt(2))
        out.append(score)
        if len(window) < window_size:
            window.append(v)
            mean, std = float(np.mean(window)), float(np.std(window)) or 0.000001
        else:
            buffer.append(v)
            if len(buffer) == step_size:
                window = window[step_size:] + buffer
                buffer = []
                mean, std = float(np.mean(window)), float(np.std(window)) or 0.000001
    return out


def test_windowed_gaussian_is_nab_bit_for_bit() -> None:
    values = [x["value"] for x in _readings(700, seed=9)]
    values[400] = 80.0
    detector = WindowedGaussian(window_size=200, step_size=30)
    ours = []
    for i, v in enumerate(values):
        ours.append(detector.score_one({"ts": float(i), "value": v}))
        detector.learn_one({"ts": float(i), "value": v})
    assert ours == _nab_windowed_gaussian(values, 200, 30)
