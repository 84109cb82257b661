"""Replaying a recorded series through a detector, and scoring a detector on NAB."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from detectors.base import Detector
from detectors.univariate import UNIVARIATE, EwmaZScore
from evaluation import backtest, nab
from evaluation.backtest import (
    BacktestInputError,
    convert_params,
    detect_csv,
    make_detector,
    score_nab_corpus_with,
)


def _write_series(path: Path, n: int = 200, spike_at: int = 150) -> list[tuple[str, str]]:
    rows = []
    for i in range(n):
        ts = f"2014-04-01 {i // 60:02d}:{i % 60:02d}:00"
        value = 100.0 if i == spike_at else 20 + math.sin(i / 10)
        rows.append((ts, repr(value)))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        w.writerows(rows)
    return rows


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_rows_and_scores_the_spike(tmp_path: Path) -> None:
    src = tmp_path / "boiler.csv"
    rows = _write_series(src)
    out = io.StringIO()

    written = detect_csv(src, out, "ewma_zscore", {"alpha": "0.1", "grace_period": "10"})

    table = _read(out.getvalue())
    assert written == 200
    assert table[0] == ["timestamp", "value", "anomaly_score"]
    assert [(r[0], r[1]) for r in table[1:]] == rows
    scores = [float(r[2]) for r in table[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[:10] == [0.0] * 10  # grace period
    assert max(range(200), key=scores.__getitem__) == 150


def test_each_row_is_scored_before_it_is_learnt(tmp_path: Path) -> None:
    src = tmp_path / "series.csv"
    rows = _write_series(src, n=80, spike_at=60)
    out = io.StringIO()
    detect_csv(src, out, "windowed_gaussian", {"window_size": "30", "step_size": "5"})

    detector = UNIVARIATE["windowed_gaussian"](window_size=30, step_size=5)
    expected = []
    for ts, value in rows:
        x = {"ts": backtest.parse_timestamp(ts), "value": float(value)}
        expected.append(detector.score_one(x))
        detector.learn_one(x)
    assert [float(r[2]) for r in _read(out.getvalue())[1:]] == expected


def test_reads_from_an_open_stream_and_extra_columns(tmp_path: Path) -> None:
    src = io.StringIO("value,timestamp,label\n1.0,1396310400,0\n1.5,1396310460,0\n")
    out = io.StringIO()
    assert detect_csv(src, out, "ewma_zscore", {}) == 2
    assert _read(out.getvalue())[1] == ["1396310400", "1.0", "0.0"]


def test_score_digits_round_like_nab_results_files() -> None:
    src = io.StringIO("timestamp,value\n" + "".join(f"{i},{i % 7}\n" for i in range(50)))
    out = io.StringIO()
    detect_csv(src, out, "windowed_gaussian", {}, score_digits=3)
    assert all(len(r[2].split(".")[-1]) <= 3 for r in _read(out.getvalue())[1:])


# --------------------------------------------------------------------------- parameters


def test_params_are_converted_to_the_constructor_types() -> None:
    assert convert_params("ewma_zscore", {"alpha": "0.05", "grace_period": "12"}) == {
        "alpha": 0.05,
        "grace_period": 12,
    }
    detector = make_detector("windowed_gaussian", {"window_size": "500"})
    assert detector.window_size == 500  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("detector", "params", "message"),
    [
        ("ewma_zscore", {"alpah": "0.1"}, r"unknown parameter 'alpah' .*accepted: alpha"),
        ("ewma_zscore", {"alpha": "fast"}, r"alpha='fast' .*expected float"),
        ("ewma_zscore", {"alpha": "nan"}, r"alpha='nan' .*expected float"),
        ("ewma_zscore", {"grace_period": "2.5"}, r"grace_period='2.5' .*expected int"),
        ("ewma_zscore", {"alpha": "2"}, r"'ewma_zscore': alpha must be in \(0, 1\)"),
        ("isolation", {}, r"unknown detector 'isolation' \(known: .*ewma_zscore, .*windowed_gaussian"),
    ],
)
def test_bad_params_are_named(detector: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_csv(io.StringIO("timestamp,value\n1,1\n"), io.StringIO(), detector, params)


class _Switchable(Detector):
    def __init__(self, enabled: bool = True, level: int = 1) -> None:
        self.enabled = enabled
        self.level = level

    def learn_one(self, x: object) -> None:
        pass

    def score_one(self, x: object) -> float:
        return 0.0


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("Off", False), ("1", True), ("no", False)])
def test_boolean_params(monkeypatch: pytest.MonkeyPatch, text: str, expected: bool) -> None:
    monkeypatch.setitem(UNIVARIATE, "switchable", _Switchable)
    assert convert_params("switchable", {"enabled": text}) == {"enabled": expected}


def test_bad_boolean_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(UNIVARIATE, "switchable", _Switchable)
    with pytest.raises(ValueError, match=r"enabled='maybe' .*expected bool"):
        convert_params("switchable", {"enabled": "maybe"})


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty input"),
        ("2014-04-01 00:00:00,1.0\n", r"line 1: a header naming 'timestamp' and 'value'"),
        ("timestamp,value\n1,1\n2,abc\n", r"line 3: value 'abc' is not a number"),
        ("timestamp,value\n1,1\nyesterday,2\n", r"line 3: timestamp 'yesterday'"),
        ("timestamp,value\n1,1\n2,2\n3\n", r"line 4: expected 2 fields, got 1"),
    ],
)
def test_bad_csv_is_named_by_line(text: str, message: str) -> None:
    with pytest.raises(BacktestInputError, match=message):
        detect_csv(io.StringIO(text), io.StringIO(), "ewma_zscore", {})


def test_a_detector_scoring_outside_the_unit_interval_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(EwmaZScore):
        def score_one(self, x: object) -> float:
            return 1.5

    monkeypatch.setitem(UNIVARIATE, "broken", Broken)
    with pytest.raises(RuntimeError, match=r"line 2: detector 'broken' returned score 1.5"):
        detect_csv(io.StringIO("timestamp,value\n1,1\n"), io.StringIO(), "broken", {})


# --------------------------------------------------------------------------- NAB


def test_nab_windowed_gaussian_baseline_is_reproduced(tmp_path: Path) -> None:
    """Our WindowedGaussian + scorer give NAB's own Windowed Gaussian numbers on the subset.

    NAB's published results files hold 12 significant digits (Python 2), hence score_digits.
    """
    nab_dir = nab.default_nab_dir()
    if not (nab_dir / "combined_windows.json").is_file():
        pytest.fail(f"NAB dev subset not found at {nab_dir}", pytrace=False)
    report = score_nab_corpus_with("windowed_gaussian", {}, nab_dir, tmp_path, score_digits=12)
    assert {k: round(v, 2) for k, v in report.normalised.items()} == {
        "standard": 12.07,
        "reward_low_FP_rate": 4.81,
        "reward_low_FN_rate": 16.04,
    }
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv"))
    assert len(written) == 18
    assert "realKnownCause/windowed_gaussian_nyc_taxi.csv" in written


def test_doctests_pass() -> None:
    import doctest

    result = doctest.testmod(backtest)
    assert result.attempted >= 2
    assert result.failed == 0
