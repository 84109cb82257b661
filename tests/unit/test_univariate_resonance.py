"""The adaptive-resonance detectors: river contract once past their probationary period, an
injected anomaly found on a synthetic series, NAB's series facts handed over by the backtest."""

from __future__ import annotations

import copy
import doctest
import io
import math
import pickle
import random

import pytest

from detectors import ensemble, resonance
from detectors.base import Detector
from detectors.ensemble import ResonanceEnsemble
from detectors.resonance import AdaptiveResonance
from evaluation.backtest import convert_params, detect_csv

N = 3000  # readings of the synthetic series; the probationary period is its first 450
CLASSES = [AdaptiveResonance, ResonanceEnsemble]
IDS = [cls.__name__ for cls in CLASSES]


def _series(seed: int, n: int = N) -> list[float]:
    """A noisy daily cycle sampled every 10 minutes."""
    rng = random.Random(seed)
    return [20 + 3 * math.sin(i * 2 * math.pi / 144) + rng.gauss(0, 0.3) for i in range(n)]


def _x(i: int, value: float) -> dict[str, float]:
    return {"ts": 600.0 * i, "value": value}


def _run(detector: Detector, values: list[float]) -> list[float]:
    scores = []
    for i, v in enumerate(values):
        scores.append(detector.score_one(_x(i, v)))
        detector.learn_one(_x(i, v))
    return scores


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_flags_an_injected_surge_and_stays_quiet_on_the_normal_part(cls: type) -> None:
    values = _series(seed=1)
    for i in range(2000, 2010):  # the signal jumps 40 standard deviations for ten readings
        values[i] += 12.0
    scores = _run(cls(series_length=N), values)
    assert max(scores[2000:2020]) > 0.9
    assert max(scores[:2000]) < 0.5
    assert max(scores[2100:]) < 0.5


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_neutral_through_the_probationary_period(cls: type) -> None:
    detector = cls(series_length=N)
    values = _series(seed=2)
    values[300] = 1e6  # inside the first 15 %: learnt, never scored
    assert set(_run(detector, values[:450])) == {0.0}


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_does_not_mutate_its_input_and_scoring_does_not_learn(cls: type) -> None:
    detector = cls(series_length=N)
    _run(detector, _series(seed=3)[:1000])
    state = pickle.dumps(detector)
    for i in range(1000, 1020):  # a spike at every offset of the downsampling step
        x = _x(i, 60.0)
        before = copy.deepcopy(x)
        detector.score_one(x)
        assert x == before
    assert pickle.dumps(detector) == state
    x = _x(1000, 21.0)
    detector.learn_one(x)
    assert x == _x(1000, 21.0)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_pickles_mid_stream_and_carries_on_identically(cls: type) -> None:
    values = _series(seed=4)
    values[1500] = 45.0
    detector = cls(series_length=N)
    _run(detector, values[:1000])
    clone = pickle.loads(pickle.dumps(detector))
    assert _run(clone, values[1000:]) == _run(detector, values[1000:])


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_deterministic(cls: type) -> None:
    values = _series(seed=5)
    values[2222] = -5.0
    first = _run(cls(series_length=N), values)
    assert first == _run(cls(series_length=N), values)
    assert max(first) > 0.0


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_odd_readings_after_the_probationary_period_keep_scores_in_the_unit_interval(cls: type) -> None:
    detector = cls(series_length=1000)
    rng = random.Random(6)
    odd = [0.0, -1e300, 1e300, -1e308, 1e308, float("nan"), float("inf"), 5e-324, 42.0]
    for i, v in enumerate(_series(seed=6, n=1000)):
        value = rng.choice(odd) if i > 200 and i % 17 == 0 else v
        score = detector.score_one(_x(i, value))
        assert 0.0 <= score <= 1.0, (i, value, score)
        detector.learn_one(_x(i, value))
    assert detector.score_one({"ts": 1.0}) == 0.0  # no value at all


def test_without_series_facts_the_range_is_the_probationary_periods() -> None:
    values = _series(seed=7)
    for i in range(2000, 2010):
        values[i] += 12.0  # above everything seen while learning: clipped to the top level
    scores = _run(AdaptiveResonance(default_probation=450), values)
    assert max(scores[2000:2020]) > 0.9
    assert max(scores[:2000]) < 0.5


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (AdaptiveResonance, {"input_min": float("nan")}, "input_min"),
        (AdaptiveResonance, {"input_min": 2.0, "input_max": 1.0}, "input_min must not exceed"),
        (AdaptiveResonance, {"series_length": 0}, "series_length"),
        (AdaptiveResonance, {"default_probation": 1}, "default_probation"),
        (AdaptiveResonance, {"window": 6}, "window"),
        (AdaptiveResonance, {"windows_per_probation": 1}, "windows_per_probation"),
        (AdaptiveResonance, {"levels": 1}, "levels"),
        (AdaptiveResonance, {"median_snap": 1.0}, "median_snap"),
        (AdaptiveResonance, {"initial_vigilance": 0.0}, "initial_vigilance"),
        (ResonanceEnsemble, {"levels": ()}, "levels"),
        (ResonanceEnsemble, {"levels": (30, 30)}, "levels"),
        (ResonanceEnsemble, {"levels": (30, 1)}, "levels"),
    ],
)
def test_bad_configuration_is_refused_at_construction(cls: type, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_the_backtest_hands_over_the_series_facts_as_nab_does() -> None:
    values = _series(seed=8, n=1200)
    values[900] = 35.0
    text = "timestamp,value\n" + "".join(f"{600 * i},{v!r}\n" for i, v in enumerate(values))
    out = io.StringIO()
    detect_csv(io.StringIO(text), out, "resonance_ensemble")
    written = [float(line.rsplit(",", 1)[1]) for line in out.getvalue().splitlines()[1:]]
    expected = _run(ResonanceEnsemble(min(values), max(values), len(values)), values)
    assert written == expected
    assert max(written) > 0.5


def test_levels_arrive_from_the_command_line_as_comma_separated_integers() -> None:
    assert convert_params("resonance_ensemble", {"levels": "30,60"}) == {"levels": (30, 60)}
    with pytest.raises(ValueError, match="comma-separated integers"):
        convert_params("resonance_ensemble", {"levels": "thirty"})


@pytest.mark.parametrize("module", [resonance, ensemble], ids=["resonance", "ensemble"])
def test_doctests_pass(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted >= 1
    assert result.failed == 0
