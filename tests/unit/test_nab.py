"""The NAB scorer reproduces NAB's own numbers on the dev subset.

The subset lives in ``shared/benchmarks/nab-dev`` (or ``$FOREWARN_NAB_DIR``); CI has it, so a
missing folder fails these tests instead of skipping them.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import pytest

from evaluation import nab


@pytest.fixture(scope="module")
def nab_dir() -> Path:
    path = nab.default_nab_dir()
    if not (path / "combined_windows.json").is_file():
        pytest.fail(
            f"NAB dev subset not found at {path}: check out shared/benchmarks/nab-dev beside "
            f"the repository or set {nab.NAB_DIR_ENV}",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def numenta_optimised(nab_dir: Path) -> nab.NabReport:
    return nab.score_corpus(nab_dir / "reference" / "numenta", nab_dir)


def _write_results(nab_dir: Path, out: Path, score_of: object) -> None:
    """Write a results folder: for each series, ``score_of(series, row, timestamp)``."""
    windows = nab.load_windows(nab_dir)
    for series in windows:
        src = nab_dir / "data" / series
        dst = out / series
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(src, newline="") as f, open(dst, "w", newline="") as g:
            rows = list(csv.reader(f))[1:]
            w = csv.writer(g)
            w.writerow(["timestamp", "value", "anomaly_score"])
            for i, (ts, value) in enumerate(rows):
                w.writerow([ts, value, score_of(series, i, ts)])  # type: ignore[operator]


# --------------------------------------------------------------------------- reference numbers


def test_numenta_htm_with_thresholds_optimised_on_the_subset(
    numenta_optimised: nab.NabReport,
) -> None:
    scores = {k: round(v, 2) for k, v in numenta_optimised.normalised.items()}
    assert scores == {"standard": 61.30, "reward_low_FP_rate": 54.31, "reward_low_FN_rate": 66.20}


def test_numenta_htm_with_the_published_thresholds(nab_dir: Path) -> None:
    expected = json.loads((nab_dir / "reference" / "numenta_expected.json").read_text())
    report = nab.score_corpus(nab_dir / "reference" / "numenta", nab_dir, expected["thresholds"])
    scores = {k: round(v, 2) for k, v in report.normalised.items()}
    assert scores == {"standard": 58.13, "reward_low_FP_rate": 52.99, "reward_low_FN_rate": 64.09}
    for profile, value in expected["normalized_scores_on_this_subset"].items():
        assert report.normalised[profile] == pytest.approx(value, abs=1e-9)
    assert report.thresholds == expected["thresholds"]


def test_report_carries_raw_null_and_perfect_scores(numenta_optimised: nab.NabReport) -> None:
    standard = numenta_optimised.profiles["standard"]
    assert standard.optimised
    assert standard.null == -25.0  # 25 windows, each missed: -fnWeight
    assert standard.perfect == 25.0
    assert numenta_optimised.profiles["reward_low_FN_rate"].null == -50.0
    assert standard.raw == pytest.approx(sum(s.score for s in standard.per_series.values()))
    assert len(standard.per_series) == 18
    body = json.loads(json.dumps(numenta_optimised.to_json()))
    assert body["normalised_scores"]["standard"] == pytest.approx(61.30, abs=0.005)
    assert set(body["profiles"]["standard"]) >= {"threshold", "raw_score", "null_score", "counts"}


def test_twiddle_search_reaches_the_same_score_on_numenta(nab_dir: Path) -> None:
    corpus = nab.load_corpus(nab_dir / "reference" / "numenta", nab_dir)
    for profile in nab.load_profiles(nab_dir).values():
        _, swept = nab.optimise_threshold(corpus, profile)
        _, climbed = nab.twiddle_threshold(corpus, profile)
        assert climbed == pytest.approx(swept, abs=1e-9)


def test_optimiser_is_fast(nab_dir: Path) -> None:
    corpus = nab.load_corpus(nab_dir / "reference" / "numenta", nab_dir)
    started = time.perf_counter()
    for profile in nab.load_profiles(nab_dir).values():
        nab.optimise_threshold(corpus, profile)
    assert time.perf_counter() - started < 5.0


# --------------------------------------------------------------------------- null / perfect


def test_null_detector_scores_zero(nab_dir: Path, tmp_path: Path) -> None:
    _write_results(nab_dir, tmp_path, lambda series, i, ts: 0.5)
    report = nab.score_corpus(tmp_path, nab_dir)
    assert report.normalised == {name: 0.0 for name in nab.PROFILE_NAMES}


def test_perfect_detector_scores_one_hundred(nab_dir: Path, tmp_path: Path) -> None:
    starts = {series: {a.split(".")[0] for a, _ in limits} for series, limits in nab.load_windows(nab_dir).items()}
    _write_results(nab_dir, tmp_path, lambda series, i, ts: 1.0 if ts in starts[series] else 0.0)
    report = nab.score_corpus(tmp_path, nab_dir)
    for profile in report.profiles.values():
        assert profile.normalised == pytest.approx(100.0)
        assert profile.threshold == 1.0


def test_detector_prefixed_and_plain_names_are_both_found(nab_dir: Path, tmp_path: Path) -> None:
    _write_results(nab_dir, tmp_path, lambda series, i, ts: 0.0)
    flat = tmp_path / "artificialNoAnomaly" / "art_flatline.csv"
    flat.rename(flat.with_name("mydetector_art_flatline.csv"))
    files = nab.find_results_files(tmp_path, nab.load_windows(nab_dir))
    assert files["artificialNoAnomaly/art_flatline.csv"].name == "mydetector_art_flatline.csv"
    assert files["artificialNoAnomaly/art_noisy.csv"].name == "art_noisy.csv"


# --------------------------------------------------------------------------- errors


def test_missing_series_is_named(nab_dir: Path, tmp_path: Path) -> None:
    _write_results(nab_dir, tmp_path, lambda series, i, ts: 0.0)
    (tmp_path / "realKnownCause" / "nyc_taxi.csv").unlink()
    with pytest.raises(nab.NabDataError, match=r"realKnownCause/nyc_taxi\.csv"):
        nab.score_corpus(tmp_path, nab_dir)


def test_bad_score_row_is_named_by_file_and_line(nab_dir: Path, tmp_path: Path) -> None:
    bad = "artificialWithAnomaly/art_daily_flatmiddle.csv"
    _write_results(nab_dir, tmp_path, lambda series, i, ts: "oops" if series == bad and i == 9 else 0.1)
    with pytest.raises(nab.NabDataError, match=r"art_daily_flatmiddle\.csv, line 11: .*'oops'"):
        nab.score_corpus(tmp_path, nab_dir)


def test_misaligned_timestamps_are_named(nab_dir: Path, tmp_path: Path) -> None:
    _write_results(nab_dir, tmp_path, lambda series, i, ts: 0.1)
    path = tmp_path / "artificialNoAnomaly" / "art_noisy.csv"
    lines = path.read_text().splitlines()
    del lines[5]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(nab.NabDataError, match=r"art_noisy\.csv: 4031 rows, but .* has 4032"):
        nab.score_corpus(tmp_path, nab_dir)


def test_thresholds_must_name_every_profile(nab_dir: Path) -> None:
    with pytest.raises(ValueError, match="missing"):
        nab.score_corpus(nab_dir / "reference" / "numenta", nab_dir, {"standard": 0.5})


def test_missing_nab_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="NAB data folder not found"):
        nab.score_corpus(tmp_path, tmp_path / "nowhere")


def test_default_nab_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(nab.NAB_DIR_ENV, "/data/nab")
    assert nab.default_nab_dir() == Path("/data/nab")
    monkeypatch.delenv(nab.NAB_DIR_ENV)
    assert nab.default_nab_dir().parts[-3:] == ("shared", "benchmarks", "nab-dev")


def test_thresholds_file_accepts_nab_and_plain_shapes(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"standard": 0.5}))
    wrapped = tmp_path / "nab.json"
    wrapped.write_text(json.dumps({"standard": {"threshold": 0.7, "score": 3.0}}))
    assert nab.load_thresholds(plain) == {"standard": 0.5}
    assert nab.load_thresholds(wrapped) == {"standard": 0.7}


# --------------------------------------------------------------------------- against NAB's loops


def _sigmoid_curve(x: float) -> float:
    return -1.0 if x >= 3.0 else 2 * (1 / (1 + math.exp(5 * x))) - 1.0


def _nab_rows(ts: list[int], scores: list[float], windows: list[tuple[int, int]], cost: dict):
    """NAB v1.1 ``calcSweepScore`` + ``calcScoreByThreshold``, loop for loop, for comparison."""
    probation = min(math.floor(0.15 * len(ts)), 0.15 * 5000)
    pending, points = list(windows), []
    cur = cur_name = None
    cur_right = cur_width = prev_right = prev_width = None
    for i, (t, s) in enumerate(zip(ts, scores, strict=True)):
        if pending and t == pending[0][0]:
            cur = pending.pop(0)
            cur_name = f"w{cur[0]}"
            cur_right = ts.index(cur[1])
            cur_width = float(cur_right - ts.index(cur[0]) + 1)
        if cur is not None:
            position = -(cur_right - i + 1) / cur_width
            sweep = _sigmoid_curve(position) * cost["tp"] / _sigmoid_curve(-1)
        else:
            pos = 3.0 if prev_right is None else abs(prev_right - i) / float(prev_width - 1)
            sweep = _sigmoid_curve(pos) * cost["fp"]
        points.append((s, sweep, cur_name if i >= probation else "probationary"))
        if cur is not None and t == cur[1]:
            prev_right, prev_width, cur, cur_name = i, cur_width, None, None
    scorable = [p for p in points if p[2] != "probationary"]
    scorable.sort(key=lambda p: p[0], reverse=True)
    parts: dict[str, float] = {"fp": 0}
    for _, _, name in scorable:
        if name is not None:
            parts[name] = -cost["fn"]
    rows, threshold = [], 1.1
    for s, sweep, name in scorable:
        if s != threshold:
            rows.append((threshold, sum(parts.values())))
            threshold = s
        if name is None:
            parts["fp"] += sweep
        else:
            parts[name] = max(parts[name], sweep)
    rows.append((threshold, sum(parts.values())))
    return rows


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_sweep_matches_nab_loops_on_random_series(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(40, 400)
    ts = [1_000_000 * i for i in range(n)]
    for i in range(1, n):  # a few repeated timestamps, as in machine_temperature
        if rng.random() < 0.05:
            ts[i] = ts[i - 1]
    levels = [round(rng.random(), 2) for _ in range(rng.randint(2, 30))]  # many ties
    scores = [rng.choice(levels) for _ in range(n)]
    windows, start = [], rng.randint(0, n // 3)
    while start < n - 3 and len(windows) < 4:
        end = min(n - 1, start + rng.randint(2, 25))
        windows.append((ts[start], ts[end]))
        start = end + rng.randint(1, 60)
    cost = {"tp": 1.0, "fp": rng.choice([0.11, 0.22]), "fn": rng.choice([1.0, 2.0])}
    expected = _nab_rows(ts, scores, windows, cost)

    sweep = nab.sweep_series("s", np.array(ts, dtype=np.int64), np.array(scores), windows)
    profile = nab.CostProfile("p", cost["tp"], cost["fp"], cost["fn"])
    table = nab.threshold_table(sweep.scores, sweep.weighted(profile), sweep.window, cost["fn"])
    assert table.thresholds.tolist() == [t for t, _ in expected]
    assert table.scores.tolist() == pytest.approx([s for _, s in expected], abs=1e-12)
    best = max(range(len(expected)), key=lambda k: expected[k][1])  # first max, as NAB's sort
    assert table.best() == best


def test_row_for_threshold_follows_nab_matching() -> None:
    table = nab.ThresholdTable(
        thresholds=np.array([1.1, 0.9, 0.5, 0.2]),
        scores=np.array([-1.0, 0.5, 0.2, -3.0]),
        tp=np.zeros(4, dtype=int),
        fp=np.zeros(4, dtype=int),
        fn=np.zeros(4, dtype=int),
        tn=np.zeros(4, dtype=int),
    )
    assert table.row_for(0.9) == 1  # exact match
    assert table.row_for(0.7) == 1  # scores >= 0.7 are those >= 0.9
    assert table.row_for(0.95) == 0  # nothing reaches it
    assert table.row_for(0.1) == 3  # everything detected
    assert table.row_for(2.0) == 0


def test_doctests_pass() -> None:
    import doctest

    assert doctest.testmod(nab).failed == 0
