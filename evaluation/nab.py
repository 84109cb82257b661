"""Score a detector's output the way the Numenta Anomaly Benchmark (NAB v1.1) does.

A faithful re-implementation of NAB's ``sweeper.py`` / ``optimizer.py`` / ``scorer.py`` /
``runner.normalize``, so that a forewarn detector can be compared with the published
scoreboard on the same terms:

* the first 15 % of each series (at most 750 rows) is a probationary period and is not
  scored; a window's rows inside it are dropped too;
* each labelled anomaly window (``combined_windows.json``) is worth ``tpWeight`` scaled by a
  sigmoid of how early its *earliest* detection falls (full credit at the left edge, zero at
  the right edge); a window without any detection costs ``fnWeight``;
* a detection outside every window costs ``fpWeight`` scaled by a sigmoid of its distance
  past the preceding window's right edge (relative to that window's length), or the full
  ``fpWeight`` before the first window;
* positions are row indices, not times: a window spans from the first row carrying its start
  timestamp to the first row carrying its end timestamp (duplicated timestamps, as in
  ``machine_temperature_system_failure.csv``, count as separate rows);
* one threshold per cost profile turns scores into detections (``score >= threshold``); the
  optimiser evaluates the corpus score at *every* distinct anomaly score, exactly as NAB
  v1.1's ``optimizer.optimizeThreshold`` does, and keeps the best (the highest threshold on
  ties);
* the corpus score is normalised as ``100 * (S - S_null) / (S_perfect - S_null)`` where the
  null detector flags nothing and the perfect one scores ``tpWeight`` per labelled window.

NAB v1.0 searched the threshold with a hill-climbing "twiddle"; :func:`twiddle_threshold`
keeps that search for comparison (it can stop on a local optimum).

Pure apart from reading the CSV / JSON files it is pointed at. Numbers are reproduced to the
last bit where NAB's own summation order is known (it sums per-window parts in the order
the windows are first met, from the highest anomaly score down).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

PROBATIONARY_PERCENT = 0.15
"""Share of each series NAB leaves unscored (``probationPercent``)."""
PROBATIONARY_CAP_ROWS = 5000
"""NAB caps the probationary period at ``probationPercent * 5000`` = 750 rows."""
NO_DETECTION_THRESHOLD = 1.1
"""NAB's starting threshold: above every score, so nothing is detected."""
NAB_DIR_ENV = "FOREWARN_NAB_DIR"
PROFILE_NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")

_OUTSIDE = -1
_PROBATIONARY = -2

Progress = Callable[[str], None]
Optimiser = Literal["sweep", "twiddle"]


class NabDataError(ValueError):
    """A results or data file the scorer cannot use; the message names the file and row."""


# --------------------------------------------------------------------------- profiles & labels


@dataclass(frozen=True, slots=True)
class CostProfile:
    """One NAB application profile (its ``CostMatrix``)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


def default_nab_dir() -> Path:
    """Where the NAB dev subset lives: ``$FOREWARN_NAB_DIR`` or ``../shared/benchmarks/nab-dev``.

    The second is resolved from the repository root (the folder holding ``evaluation/``).
    The path is returned whether or not it exists; :func:`score_corpus` says if it does not.
    """
    env = os.environ.get(NAB_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "nab-dev"


def load_profiles(nab_dir: Path) -> dict[str, CostProfile]:
    """Read ``profiles.json`` (NAB's three cost profiles) from ``nab_dir``."""
    path = Path(nab_dir) / "profiles.json"
    raw = _read_json(path)
    profiles: dict[str, CostProfile] = {}
    for name, body in raw.items():
        try:
            cm = body["CostMatrix"]
            profiles[name] = CostProfile(name, float(cm["tpWeight"]), float(cm["fpWeight"]), float(cm["fnWeight"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise NabDataError(f"{path}: profile {name!r} has no usable CostMatrix ({exc})") from exc
    return profiles


def load_windows(nab_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Read ``combined_windows.json``: series path (``category/name.csv``) → windows."""
    path = Path(nab_dir) / "combined_windows.json"
    raw = _read_json(path)
    windows: dict[str, list[tuple[str, str]]] = {}
    for series, limits in raw.items():
        try:
            windows[series] = [(str(a), str(b)) for a, b in limits]
        except (TypeError, ValueError) as exc:
            raise NabDataError(f"{path}: windows of {series!r} are not [start, end] pairs") from exc
    return windows


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"NAB file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise NabDataError(f"{path}: not valid JSON ({exc})") from exc


# --------------------------------------------------------------------------- reading CSVs


def _parse_times(stamps: list[str], path: Path, lines: list[int]) -> np.ndarray:
    """Timestamps as int64 microseconds; a bad one is reported with its line number."""
    try:
        return np.array(stamps, dtype="datetime64[us]").astype(np.int64)
    except ValueError:
        for line, s in zip(lines, stamps, strict=True):
            try:
                np.datetime64(s, "us")
            except ValueError:
                raise NabDataError(f"{path}, line {line}: timestamp {s!r} is not a date-time") from None
        raise


def read_series_timestamps(path: Path) -> np.ndarray:
    """The ``timestamp`` column of a NAB data CSV, as int64 microseconds."""
    header, rows = _read_csv(path)
    col = _column(header, "timestamp", path)
    stamps = []
    for line, row in rows:
        if len(row) != len(header):
            raise NabDataError(f"{path}, line {line}: expected {len(header)} fields, got {len(row)}")
        stamps.append(row[col].strip())
    return _parse_times(stamps, path, [line for line, _ in rows])


def read_anomaly_scores(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``anomaly_score`` (float64) and, when present, ``timestamp`` (int64 µs) of a results CSV."""
    header, rows = _read_csv(path)
    score_col = _column(header, "anomaly_score", path)
    ts_col = header.index("timestamp") if "timestamp" in header else None
    scores = np.empty(len(rows), dtype=np.float64)
    stamps: list[str] = []
    for i, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise NabDataError(f"{path}, line {line}: expected {len(header)} fields, got {len(row)}")
        text = row[score_col].strip()
        try:
            value = float(text)
        except ValueError:
            raise NabDataError(f"{path}, line {line}: anomaly_score {text!r} is not a number") from None
        if not math.isfinite(value):
            raise NabDataError(f"{path}, line {line}: anomaly_score {text!r} is not finite")
        scores[i] = value
        if ts_col is not None:
            stamps.append(row[ts_col].strip())
    times = _parse_times(stamps, path, [line for line, _ in rows]) if ts_col is not None else None
    return scores, times


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise NabDataError(f"{path}: empty file, a header line is required")
            header = [h.strip() for h in header]
            rows = [(reader.line_num, row) for row in reader if row]
    except FileNotFoundError:
        raise FileNotFoundError(f"file not found: {path}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise NabDataError(f"{path}: unreadable CSV ({exc})") from exc
    return header, rows


def _column(header: list[str], name: str, path: Path) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise NabDataError(f"{path}, line 1: no {name!r} column (header is {','.join(header)})") from None


def find_results_files(results_dir: Path, series: Iterable[str]) -> dict[str, Path]:
    """Map each series (``category/name.csv``) to its results CSV in ``results_dir``.

    A results file is named as the series (``art_flatline.csv``) or prefixed with the detector
    (``numenta_art_flatline.csv``) and sits in the series' category folder. A file that could
    belong to two series goes to the longer name; a series with two files, or none, is an error.
    """
    results_dir = Path(results_dir)
    by_category: dict[str, list[str]] = {}
    for s in series:
        category, _, name = s.rpartition("/")
        by_category.setdefault(category, []).append(name)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for category, names in by_category.items():
        folder = results_dir / category if category else results_dir
        candidates = sorted(p.name for p in folder.glob("*.csv")) if folder.is_dir() else []
        claimed: dict[str, list[str]] = {n: [] for n in names}
        for fname in candidates:
            matches = [n for n in names if fname == n or fname.endswith("_" + n)]
            if matches:
                claimed[max(matches, key=len)].append(fname)
        for n in names:
            key = f"{category}/{n}" if category else n
            files = claimed[n]
            if not files:
                missing.append(str(folder / n))
            elif len(files) > 1:
                raise NabDataError(f"{folder}: several results files for series {key}: {', '.join(files)}")
            else:
                found[key] = folder / files[0]
    if missing:
        raise NabDataError(
            f"results for {len(missing)} series missing under {results_dir} "
            f"(expected <name>.csv or <detector>_<name>.csv): {', '.join(missing)}"
        )
    return found


# --------------------------------------------------------------------------- the sweep


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's reward curve: ~0.987 at the left window edge (-1), 0 at the right edge (0).

    Positive positions are past the window and give a penalty falling towards -1; from 3.0 on
    it is exactly -1.

    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), scaled_sigmoid(3.0)
    (0.98661, 0.0, -1.0)
    """
    if relative_position >= 3.0:
        return -1.0
    return 2 * (1 / (1 + math.exp(-(-5 * relative_position)))) - 1.0


_MAX_TP = scaled_sigmoid(-1.0)


def probationary_length(n_rows: int, percent: float = PROBATIONARY_PERCENT) -> float:
    """Rows at the start of a series that are not scored: ``min(floor(15 %), 750)``."""
    return min(math.floor(percent * n_rows), percent * PROBATIONARY_CAP_ROWS)


@dataclass(frozen=True, slots=True)
class SeriesSweep:
    """One series after NAB's ``calcSweepScore``, before any cost profile is applied.

    ``window`` is, per row, the series-local window ordinal, ``-1`` outside every window or
    ``-2`` in the probationary period. ``curve`` is the row's unweighted scaled sigmoid (its
    reward inside a window, its penalty outside).
    """

    series: str
    scores: np.ndarray
    window: np.ndarray
    curve: np.ndarray
    n_labelled_windows: int

    def weighted(self, profile: CostProfile) -> np.ndarray:
        """Each row's ``sweepScore`` under ``profile`` (NAB's operation order kept)."""
        inside = self.window >= 0
        return np.where(inside, self.curve * profile.tp_weight / _MAX_TP, self.curve * profile.fp_weight)


def sweep_series(
    series: str,
    timestamps: np.ndarray,
    scores: np.ndarray,
    windows: list[tuple[np.int64, np.int64]] | list[tuple[int, int]],
    probation_percent: float = PROBATIONARY_PERCENT,
) -> SeriesSweep:
    """Port of NAB v1.1 ``Sweeper.calcSweepScore``: place every row relative to the windows.

    ``timestamps`` and the window limits are comparable integers (µs); rows are matched to
    window edges by equality, the width counted in rows from the first row holding the start
    to the first row holding the end.
    """
    n = len(timestamps)
    if len(scores) != n:
        raise ValueError(f"{series}: {len(scores)} scores for {n} timestamps")
    first_index: dict[int, int] = {}
    for i, t in enumerate(timestamps.tolist()):
        first_index.setdefault(t, i)
    pending = [(int(a), int(b)) for a, b in windows]
    for a, b in pending:
        for edge in (a, b):
            if edge not in first_index:
                raise NabDataError(
                    f"{series}: window edge {np.datetime64(edge, 'us')} is not a timestamp "
                    "of the series (NAB requires exact matches)"
                )
    probation = probationary_length(n, probation_percent)
    window = np.empty(n, dtype=np.int64)
    curve = np.empty(n, dtype=np.float64)
    ordinal = -1
    cur: tuple[int, int] | None = None
    cur_right = cur_width = 0.0
    prev_right: int | None = None
    prev_width = 0.0
    for i, t in enumerate(timestamps.tolist()):
        if pending and t == pending[0][0]:
            cur = pending.pop(0)
            ordinal += 1
            cur_right = first_index[cur[1]]
            cur_width = float(cur_right - first_index[cur[0]] + 1)
        if cur is not None:
            curve[i] = scaled_sigmoid(-(cur_right - i + 1) / cur_width)
            tag = ordinal
        else:
            if prev_right is None:
                position = 3.0
            elif prev_width > 1:
                position = abs(prev_right - i) / float(prev_width - 1)
            else:  # NAB divides by zero here; a one-row window is followed by full penalties
                position = 3.0
            curve[i] = scaled_sigmoid(position)
            tag = _OUTSIDE
        window[i] = tag if i >= probation else _PROBATIONARY
        if cur is not None and t == cur[1]:
            prev_right, prev_width = i, cur_width
            cur = None
    return SeriesSweep(series, np.asarray(scores, dtype=np.float64), window, curve, len(windows))


# --------------------------------------------------------------------------- threshold tables


@dataclass(frozen=True, slots=True)
class ThresholdTable:
    """NAB's ``calcScoreByThreshold``: the score at every distinct threshold, highest first.

    Row ``k`` counts as detections every scorable row whose anomaly score is at least
    ``thresholds[k]``; row 0 is NAB's 1.1 (no detections). Counts are in rows, as in NAB.
    """

    thresholds: np.ndarray
    scores: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    def best(self) -> int:
        """Index of the best row (the first, i.e. highest threshold, among equal scores)."""
        return int(np.argmax(self.scores))

    def row_for(self, threshold: float) -> int:
        """The row NAB's ``scoreDataSet`` picks for ``threshold`` (``score >= threshold``).

        Where NAB finds no row (a threshold above 1.1 or below every score) the natural
        reading is used: nothing detected, or everything detected.
        """
        t = self.thresholds
        above = int(np.count_nonzero(t > threshold))
        if above < len(t) and t[above] == threshold:
            return above
        return max(above - 1, 0)


def threshold_table(scores: np.ndarray, sweep: np.ndarray, window: np.ndarray, fn_weight: float) -> ThresholdTable:
    """Vectorised ``calcScoreByThreshold`` over scorable rows (``window`` ≠ -2).

    ``window`` holds corpus-unique window ids (``>= 0``) or -1 outside; ids need not be dense.
    """
    keep = window != _PROBATIONARY
    s_all, w_all, g_all = scores[keep], sweep[keep], window[keep]
    order = np.argsort(-s_all, kind="stable")
    s, w, g = s_all[order], w_all[order], g_all[order]
    n = len(s)
    inside = g >= 0

    # NAB emits a row each time the score changes (holding every point above it; the first
    # row is 1.1, nothing detected) and a last row holding every point.
    prev = np.concatenate(([NO_DETECTION_THRESHOLD], s[:-1]))
    starts = np.flatnonzero(s != prev)
    prefix = np.concatenate((starts, [n])).astype(np.int64)
    thresholds = np.concatenate(([NO_DETECTION_THRESHOLD], s[starts]))
    # fp part: sequential cumulative sum, as NAB's running ``scoreParts["fp"] +=``.
    fp_cum = np.concatenate(([0.0], np.cumsum(np.where(inside, 0.0, w))))
    total = fp_cum[prefix].copy()
    # Window parts, added in the order NAB's dict first meets the windows.
    if inside.any():
        ids = g[inside]
        pos = np.flatnonzero(inside)
        uniq, first = np.unique(ids, return_index=True)
        for wid in uniq[np.argsort(first, kind="stable")]:
            at = pos[ids == wid]
            vals = w[at]
            best = np.maximum.accumulate(vals)
            rises = np.concatenate(([True], best[1:] > best[:-1]))
            ev_pos, ev_val = at[rises], best[rises]
            k = np.searchsorted(ev_pos, prefix, side="left")
            part = np.where(k > 0, ev_val[np.maximum(k - 1, 0)], -fn_weight)
            part = np.maximum(part, -fn_weight)
            total = total + part
    in_cum = np.concatenate(([0], np.cumsum(inside)))
    tp = in_cum[prefix]
    fp = prefix - tp
    n_in = int(in_cum[-1])
    return ThresholdTable(
        thresholds=thresholds,
        scores=total,
        tp=tp,
        fp=fp,
        fn=n_in - tp,
        tn=(n - n_in) - fp,
    )


# --------------------------------------------------------------------------- corpus & report


@dataclass(frozen=True, slots=True)
class NabCorpus:
    """A detector's results for every series, swept and ready to score."""

    results_dir: Path
    nab_dir: Path
    series: tuple[SeriesSweep, ...]
    n_labelled_windows: int


def load_corpus(results_dir: Path, nab_dir: Path | None = None, progress: Progress | None = None) -> NabCorpus:
    """Read every series' data timestamps and results scores and sweep them."""
    nab_dir = Path(nab_dir) if nab_dir is not None else default_nab_dir()
    results_dir = Path(results_dir)
    if not nab_dir.is_dir():
        raise FileNotFoundError(f"NAB data folder not found: {nab_dir} (set {NAB_DIR_ENV} or pass nab_dir)")
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder not found: {results_dir}")
    windows = load_windows(nab_dir)
    files = find_results_files(results_dir, windows)
    sweeps = []
    for name in sorted(windows):
        if progress:
            progress(f"reading {name}")
        data_path = nab_dir / "data" / name
        stamps = read_series_timestamps(data_path)
        scores, result_stamps = read_anomaly_scores(files[name])
        _check_alignment(files[name], data_path, stamps, scores, result_stamps)
        limits = [
            (np.datetime64(a, "us").astype(np.int64), np.datetime64(b, "us").astype(np.int64)) for a, b in windows[name]
        ]
        sweeps.append(sweep_series(name, stamps, scores, limits))
    total_windows = sum(len(v) for v in windows.values())
    return NabCorpus(results_dir, nab_dir, tuple(sweeps), total_windows)


def _check_alignment(
    results: Path,
    data: Path,
    stamps: np.ndarray,
    scores: np.ndarray,
    result_stamps: np.ndarray | None,
) -> None:
    if len(scores) != len(stamps):
        raise NabDataError(f"{results}: {len(scores)} rows, but {data} has {len(stamps)} (one score per row)")
    if result_stamps is not None:
        bad = np.flatnonzero(result_stamps != stamps)
        if bad.size:
            i = int(bad[0])
            raise NabDataError(
                f"{results}, line {i + 2}: timestamp {np.datetime64(result_stamps[i], 'us')} "
                f"does not match {data} ({np.datetime64(stamps[i], 'us')})"
            )


@dataclass(frozen=True, slots=True)
class SeriesScore:
    """One series' raw NAB score and row counts at the profile's threshold."""

    score: float
    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True, slots=True)
class ProfileScore:
    """A profile's outcome over the corpus; ``normalised`` is the scoreboard number."""

    profile: str
    threshold: float
    optimised: bool
    raw: float
    null: float
    perfect: float
    normalised: float
    tp: int
    fp: int
    fn: int
    tn: int
    per_series: dict[str, SeriesScore] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "optimised": self.optimised,
            "normalised_score": self.normalised,
            "raw_score": self.raw,
            "null_score": self.null,
            "perfect_score": self.perfect,
            "counts": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn},
            "per_series": {
                name: {"score": s.score, "tp": s.tp, "fp": s.fp, "fn": s.fn, "tn": s.tn}
                for name, s in self.per_series.items()
            },
        }


@dataclass(frozen=True, slots=True)
class NabReport:
    """What :func:`score_corpus` found, per profile (``standard``, ``reward_low_FP_rate`` …)."""

    results_dir: str
    nab_dir: str
    series: tuple[str, ...]
    profiles: dict[str, ProfileScore]

    @property
    def thresholds(self) -> dict[str, float]:
        return {name: p.threshold for name, p in self.profiles.items()}

    @property
    def normalised(self) -> dict[str, float]:
        return {name: p.normalised for name, p in self.profiles.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "results_dir": self.results_dir,
            "nab_dir": self.nab_dir,
            "series": list(self.series),
            "thresholds": self.thresholds,
            "normalised_scores": self.normalised,
            "profiles": {name: p.to_json() for name, p in self.profiles.items()},
        }


def _corpus_arrays(corpus: NabCorpus, profile: CostProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores, sweeps, windows = [], [], []
    offset = 0
    for s in corpus.series:
        scores.append(s.scores)
        sweeps.append(s.weighted(profile))
        windows.append(np.where(s.window >= 0, s.window + offset, s.window))
        offset += s.n_labelled_windows
    return np.concatenate(scores), np.concatenate(sweeps), np.concatenate(windows)


def optimise_threshold(corpus: NabCorpus, profile: CostProfile) -> tuple[float, float]:
    """NAB v1.1 ``optimizeThreshold``: the best (threshold, raw corpus score) for ``profile``.

    Every distinct anomaly score of the corpus is tried at once (one sort, cumulative sums),
    so the result is the global optimum; ties go to the higher threshold.
    """
    table = threshold_table(*_corpus_arrays(corpus, profile), profile.fn_weight)
    k = table.best()
    return float(table.thresholds[k]), float(table.scores[k])


def twiddle_threshold(
    corpus: NabCorpus,
    profile: CostProfile,
    initial: float = 0.5,
    tolerance: float = 1e-7,
) -> tuple[float, float]:
    """NAB v1.0's hill-climbing ("twiddle") threshold search, for comparison.

    Steps of 0.1 that double on success and halve on failure, within [0, 1], until the step
    is below ``tolerance``; returns the best (threshold, raw corpus score) it visited.
    """
    tables = [_series_table(s, profile) for s in corpus.series]

    def objective(threshold: float) -> float:
        if not 0 <= threshold <= 1:
            return float("-inf")
        return _corpus_total(tables, threshold)

    past: dict[float, float] = {}
    x = initial
    delta = 0.1
    best = past[x] = objective(x)
    while delta > tolerance:
        x += delta
        if x not in past:
            past[x] = objective(x)
        if past[x] > best:
            best = past[x]
            delta *= 2
        else:
            x -= 2 * delta
            if x not in past:
                past[x] = objective(x)
            if past[x] > best:
                best = past[x]
                delta *= 2
            else:
                x += delta
                delta *= 0.5
    best_x = max(past, key=lambda k: past[k])
    return best_x, past[best_x]


def _series_table(s: SeriesSweep, profile: CostProfile) -> ThresholdTable:
    return threshold_table(s.scores, s.weighted(profile), s.window, profile.fn_weight)


def _corpus_total(tables: list[ThresholdTable], threshold: float) -> float:
    total = 0.0
    for t in tables:
        total += float(t.scores[t.row_for(threshold)])
    return total


def score_profile(
    corpus: NabCorpus,
    profile: CostProfile,
    threshold: float | None = None,
    optimiser: Optimiser = "sweep",
) -> ProfileScore:
    """Score ``corpus`` under ``profile`` at ``threshold`` (optimised when ``None``)."""
    optimised = threshold is None
    if threshold is None:
        if optimiser == "sweep":
            threshold, _ = optimise_threshold(corpus, profile)
        elif optimiser == "twiddle":
            threshold, _ = twiddle_threshold(corpus, profile)
        else:
            raise ValueError(f"optimiser must be 'sweep' or 'twiddle', got {optimiser!r}")
    per_series: dict[str, SeriesScore] = {}
    raw = null = 0.0
    tp = fp = fn = tn = 0
    for s in corpus.series:
        table = _series_table(s, profile)
        k = table.row_for(threshold)
        row = SeriesScore(
            float(table.scores[k]),
            int(table.tp[k]),
            int(table.fp[k]),
            int(table.fn[k]),
            int(table.tn[k]),
        )
        per_series[s.series] = row
        raw += row.score
        null += float(table.scores[0])
        tp, fp, fn, tn = tp + row.tp, fp + row.fp, fn + row.fn, tn + row.tn
    perfect = corpus.n_labelled_windows * profile.tp_weight
    denominator = perfect - null
    normalised = 100 * (raw - null) / denominator if denominator else 0.0
    return ProfileScore(
        profile=profile.name,
        threshold=float(threshold),
        optimised=optimised,
        raw=raw,
        null=null,
        perfect=perfect,
        normalised=normalised,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        per_series=per_series,
    )


def score_corpus(
    results_dir: Path,
    nab_dir: Path | None = None,
    thresholds: Mapping[str, float] | None = None,
    progress: Progress | None = None,
    *,
    optimiser: Optimiser = "sweep",
) -> NabReport:
    """Score a detector's results folder on NAB, every profile of ``profiles.json``.

    ``results_dir`` is laid out like NAB's ``data/`` (category sub-folders), one CSV per series
    named ``<name>.csv`` or ``<detector>_<name>.csv`` with an ``anomaly_score`` column (and
    ``timestamp``, checked against the data). ``thresholds`` maps profile → threshold; without
    it each profile's threshold is optimised on this corpus, by NAB v1.1's exhaustive sweep
    (``optimiser="sweep"``) or NAB v1.0's hill climb (``"twiddle"``).
    """
    nab_dir = Path(nab_dir) if nab_dir is not None else default_nab_dir()
    corpus = load_corpus(results_dir, nab_dir, progress)
    profiles = load_profiles(nab_dir)
    if thresholds is not None:
        unknown = sorted(set(thresholds) - set(profiles))
        missing = sorted(set(profiles) - set(thresholds))
        if unknown or missing:
            raise ValueError(
                f"thresholds must name exactly the profiles {sorted(profiles)}; unknown {unknown}, missing {missing}"
            )
    results: dict[str, ProfileScore] = {}
    for name, profile in profiles.items():
        if progress:
            progress(f"{'optimising and ' if thresholds is None else ''}scoring profile {name}")
        given = None if thresholds is None else float(thresholds[name])
        results[name] = score_profile(corpus, profile, given, optimiser)
        log.info(
            "NAB %s: threshold %.6f, normalised score %.2f",
            name,
            results[name].threshold,
            results[name].normalised,
        )
    return NabReport(
        results_dir=str(Path(results_dir)),
        nab_dir=str(nab_dir),
        series=tuple(s.series for s in corpus.series),
        profiles=results,
    )


def load_thresholds(path: Path) -> dict[str, float]:
    """Read thresholds for ``score_corpus``: ``{profile: t}`` or ``{"thresholds": {...}}``.

    NAB's own ``{profile: {"threshold": t, "score": s}}`` shape is accepted too.
    """
    raw = _read_json(Path(path))
    if isinstance(raw, dict) and isinstance(raw.get("thresholds"), dict):
        raw = raw["thresholds"]
    if not isinstance(raw, dict):
        raise NabDataError(f"{path}: expected a JSON object of profile → threshold")
    out: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, dict):
            value = value.get("threshold")
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise NabDataError(f"{path}: threshold of {name!r} is not a number") from None
    return out
