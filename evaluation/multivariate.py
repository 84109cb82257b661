"""Backtests of recorded multi-metric series: a CSV with a timestamp and several value columns.

``forewarn detect FILE.csv`` comes here when the file is not the univariate
``timestamp,value`` layout (:func:`is_multivariate`). The delimiter is sniffed (``,`` ``;``
tab ``|``); the timestamp is the column named ``timestamp`` (or ``datetime``, ``time``,
``date``, ``ts``), else the first; a column that labels the answer (``label``,
``changepoint``, ``anomaly`` …) is ignored, and said so — a backtest never reads its labels.
Every other column is a metric; an empty cell is a missing value.

Two families score it (``--detector``):

- ``fleet`` — the fleet model (:mod:`detectors.fleet`): each row's window features (the last
  ``window`` rows, in time), a model fitted on the first ``probation`` share of the rows
  (``method`` pca, iforest or zmax; ``--param method=iforest``), then every row scored in one
  call;
- any univariate detector (``ewma_zscore`` …) — a per-metric baseline: one detector per
  column, each row's score the highest of its columns' (each reading scored before it is
  learnt).

Rows of the probationary period score 0 in both (the model is learning there). The output is
``timestamp,<the value columns as written>,anomaly_score,unusual``: ``unusual`` names the
metrics that made the score (the fleet model's most unusual three, or the baseline's column).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from detectors.fleet import METHODS, FleetWindow, fit_fleet_model
from evaluation.backtest import BacktestInputError, make_detector, parse_timestamp

LABEL_COLUMNS = frozenset(
    {"label", "labels", "changepoint", "change_point", "anomaly", "anomalies", "is_anomaly", "anomaly_label", "outlier"}
)
"""Columns that hold the answer: never read."""
TIME_COLUMNS = ("timestamp", "datetime", "time", "date", "ts")
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024
FLEET = "fleet"


@dataclass(frozen=True, slots=True)
class Layout:
    """How a CSV is laid out: its delimiter, header, which column is the time, which are values."""

    delimiter: str
    header: tuple[str, ...]
    time_column: int
    value_columns: tuple[int, ...]
    ignored: tuple[str, ...]

    @property
    def value_names(self) -> list[str]:
        return [self.header[i] for i in self.value_columns]


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample (``,`` when nothing tells).

    >>> sniff_delimiter("ts;a;b\\n1;2;3\\n"), sniff_delimiter("ts\\ta\\n1\\t2\\n"), sniff_delimiter("x\\n1\\n")
    (';', '\\t', ',')
    """
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def layout_of(sample: str) -> Layout:
    """The layout of a CSV from its first bytes (header and a few rows)."""
    delimiter = sniff_delimiter(sample)
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), None)
    if not header:
        raise BacktestInputError("empty input: a header row is required")
    names = tuple(h.strip() for h in header)
    lowered = [n.lower() for n in names]
    time_column = next((lowered.index(t) for t in TIME_COLUMNS if t in lowered), 0)
    ignored = tuple(n for i, n in enumerate(names) if i != time_column and n.lower() in LABEL_COLUMNS)
    values = tuple(i for i, n in enumerate(names) if i != time_column and n.lower() not in LABEL_COLUMNS)
    if not values:
        raise BacktestInputError(f"no value column besides the time ({names[time_column]!r}) and labels")
    return Layout(delimiter, names, time_column, values, ignored)


def is_multivariate(path: Path) -> bool:
    """Whether ``forewarn detect`` should take ``path`` here: anything but the univariate
    layout (comma-separated, a header naming ``timestamp`` and ``value``)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        sample = f.read(SNIFF_BYTES)
    first = sample.splitlines()[0] if sample else ""
    columns = [c.strip() for c in first.split(",")]
    return not ("timestamp" in columns and "value" in columns)


@dataclass(slots=True)
class _Table:
    ts_text: list[str]
    ts: np.ndarray
    cells: list[list[str]]
    values: np.ndarray  # rows × value columns, NaN where empty


def _read(src: TextIO, name: str, layout: Layout) -> _Table:
    reader = csv.reader(src, delimiter=layout.delimiter)
    next(reader, None)
    ts_text: list[str] = []
    ts: list[float] = []
    cells: list[list[str]] = []
    values: list[list[float]] = []
    for row in reader:
        line = reader.line_num
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(layout.header):
            raise BacktestInputError(f"{name}, line {line}: expected {len(layout.header)} fields, got {len(row)}")
        text = row[layout.time_column].strip()
        try:
            ts.append(parse_timestamp(text))
        except ValueError:
            raise BacktestInputError(f"{name}, line {line}: timestamp {text!r} is not a date-time") from None
        ts_text.append(text)
        written = [row[i].strip() for i in layout.value_columns]
        parsed = []
        for column, cell in zip(layout.value_names, written, strict=True):
            try:
                v = float(cell) if cell else math.nan
            except ValueError:
                raise BacktestInputError(f"{name}, line {line}: {column} {cell!r} is not a number") from None
            parsed.append(v if math.isfinite(v) else math.nan)
        cells.append(written)
        values.append(parsed)
    if not ts:
        raise BacktestInputError(f"{name}: no rows after the header")
    return _Table(ts_text, np.array(ts), cells, np.array(values, dtype=float).reshape(len(ts), -1))


def _fleet_scores(
    table: _Table, metrics: Sequence[str], probation_rows: int, window_rows: int, method: str, seed: int
) -> tuple[np.ndarray, list[str]]:
    steps = np.diff(table.ts)
    step = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 1.0
    window = FleetWindow(metrics, window_s=max(step * window_rows, 1e-3), buckets=6)
    rows = []
    for ts, values in zip(table.ts.tolist(), table.values.tolist(), strict=True):
        window.learn_one({"ts": ts, **{m: v for m, v in zip(metrics, values, strict=True) if v == v}})
        rows.append(window.features())
    X = np.array(rows, dtype=float)
    model = fit_fleet_model("backtest", metrics, X[:probation_rows], method=method, window_s=window.window_s, seed=seed)
    scores, z = model.score_many(X)
    unusual = [" ".join(u.metric for u in model.unusual(z[i])) for i in range(len(X))]
    return scores, unusual


def _baseline_scores(
    table: _Table, metrics: Sequence[str], detector: str, params: Mapping[str, str]
) -> tuple[np.ndarray, list[str]]:
    models = [make_detector(detector, params) for _ in metrics]
    scores = np.zeros(len(table.ts))
    unusual: list[str] = []
    for i, (ts, values) in enumerate(zip(table.ts.tolist(), table.values.tolist(), strict=True)):
        best, which = 0.0, ""
        for metric, model, v in zip(metrics, models, values, strict=True):
            if v != v:
                continue
            x = {"ts": ts, "value": v}
            s = float(model.score_one(x))
            model.learn_one(x)
            if s > best or not which:
                best, which = s, metric
        scores[i] = best
        unusual.append(which)
    return scores, unusual


def detect_multivariate(
    src: Path,
    out: TextIO,
    detector: str,
    params: Mapping[str, str] | None = None,
    note: Callable[[str], None] | None = None,
) -> int:
    """Score the multi-column CSV ``src`` into ``out`` (see the module); returns the rows written.

    ``params``: ``probation`` (share of rows, default 0.15), and for ``fleet`` ``window`` (rows,
    default 60), ``method`` and ``seed``; for a univariate detector, its own parameters."""
    params = dict(params or {})
    try:
        probation = float(params.pop("probation", "0.15"))
    except ValueError:
        raise ValueError("probation must be a share of the rows, e.g. probation=0.15") from None
    if not 0.0 < probation < 1.0:
        raise ValueError(f"probation must be between 0 and 1, got {probation!r}")
    with open(src, newline="", encoding="utf-8-sig") as f:
        layout = layout_of(f.read(SNIFF_BYTES))
        f.seek(0)
        table = _read(f, str(src), layout)
    metrics = layout.value_names
    if note:
        shown = {"\t": "tab"}.get(layout.delimiter, repr(layout.delimiter))
        note(
            f"{src}: {len(table.ts)} rows, delimiter {shown}, time {layout.header[layout.time_column]!r}, "
            f"{len(metrics)} value columns ({', '.join(metrics)})"
        )
        if layout.ignored:
            note(f"ignored (labels are never read by a backtest): {', '.join(layout.ignored)}")
    probation_rows = max(int(len(table.ts) * probation), 1)
    if detector == FLEET:
        method = params.pop("method", METHODS[0])
        try:
            window_rows, seed = int(params.pop("window", "60")), int(params.pop("seed", "0"))
        except ValueError:
            raise ValueError("window and seed must be whole numbers") from None
        if params:
            raise ValueError(
                f"unknown parameter(s) for fleet: {', '.join(params)} (accepted: probation, window, method, seed)"
            )
        if window_rows < 2:
            raise ValueError("window must be at least 2 rows")
        if probation_rows < 10:
            raise ValueError(f"the probationary period has {probation_rows} rows; the fleet model needs 10 at least")
        scores, unusual = _fleet_scores(table, metrics, probation_rows, window_rows, method, seed)
    else:
        scores, unusual = _baseline_scores(table, metrics, detector, params)
    scores[:probation_rows] = 0.0
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", *metrics, "anomaly_score", "unusual"])
    for i in range(len(table.ts)):
        writer.writerow(
            [table.ts_text[i], *table.cells[i], repr(float(scores[i])), unusual[i] if i >= probation_rows else ""]
        )
    return len(table.ts)
