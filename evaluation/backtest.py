"""Replay a recorded series through a univariate detector, as it would have run live.

:func:`detect_csv` streams a ``timestamp,value`` CSV one row at a time — each reading is
scored *before* the detector learns it, so no score sees the future — and writes
``timestamp,value,anomaly_score``. :func:`score_nab_corpus_with` does that for every series
of the NAB dev subset and scores the result with :mod:`evaluation.nab`.

Detector parameters arrive as strings (``--param alpha=0.05``) and are converted to the
types of the detector's constructor; anything unknown or unconvertible is a ``ValueError``
that names it.
"""

from __future__ import annotations

import csv
import inspect
import logging
import math
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from detectors.base import Detector
from detectors.univariate import UNIVARIATE
from evaluation.nab import NabReport, default_nab_dir, load_windows, score_corpus

log = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class BacktestInputError(ValueError):
    """A CSV row the backtest cannot read; the message names the source and line."""


# --------------------------------------------------------------------------- parameters


def detector_parameters(detector: str) -> dict[str, tuple[type, Any]]:
    """The constructor parameters of a registered detector: name → (type, default).

    ``float | None`` counts as ``float`` (and accepts ``none``); an unannotated parameter
    takes the type of its default.
    """
    cls = _detector_class(detector)
    hints = typing.get_type_hints(cls.__init__)
    params: dict[str, tuple[type, Any]] = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        params[name] = (_param_type(hints.get(name), p.default), p.default)
    return params


def _param_type(hint: Any, default: Any) -> type:
    if isinstance(hint, type):
        return hint
    if typing.get_origin(hint) is tuple:
        return tuple
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(options) == 1 and isinstance(options[0], type):
        return options[0]
    if default is not inspect.Parameter.empty and default is not None:
        return type(default)
    return str


def convert_params(detector: str, params: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``--param k=v`` strings into constructor arguments of ``detector``.

    >>> convert_params("ewma_zscore", {"alpha": "0.1", "grace_period": "5"})
    {'alpha': 0.1, 'grace_period': 5}
    """
    accepted = detector_parameters(detector)
    out: dict[str, Any] = {}
    for name, text in params.items():
        if name not in accepted:
            raise ValueError(
                f"unknown parameter {name!r} for detector {detector!r} (accepted: {', '.join(accepted) or 'none'})"
            )
        kind, default = accepted[name]
        if str(text).strip().lower() == "none" and default is None:
            out[name] = None
        else:
            out[name] = _convert(detector, name, str(text), kind)
    return out


def _convert(detector: str, name: str, text: str, kind: type) -> Any:
    value = text.strip()
    try:
        if kind is bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValueError(value)
        if kind is int:
            return int(value)
        if kind is tuple:  # comma-separated integers, e.g. levels=30,60,90
            return tuple(int(part) for part in value.split(","))
        if kind is float:
            result = float(value)
            if not math.isfinite(result):
                raise ValueError(value)
            return result
        return kind(value)
    except (TypeError, ValueError):
        expected = "comma-separated integers" if kind is tuple else kind.__name__
        raise ValueError(f"parameter {name}={text!r} for detector {detector!r}: expected {expected}") from None


def make_detector(detector: str, params: Mapping[str, str] | None = None) -> Detector:
    """Build a registered univariate detector from string parameters."""
    cls = _detector_class(detector)
    kwargs = convert_params(detector, params or {})
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(f"detector {detector!r}: {exc}") from None


def _detector_class(detector: str) -> type[Detector]:
    try:
        return UNIVARIATE[detector]
    except KeyError:
        raise ValueError(f"unknown detector {detector!r} (known: {', '.join(sorted(UNIVARIATE))})") from None


# --------------------------------------------------------------------------- replay


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an ISO date-time (naive = UTC) or of a plain number of seconds.

    >>> parse_timestamp("2014-04-01 00:05:00"), parse_timestamp("1396310700")
    (1396310700.0, 1396310700.0)
    """
    s = text.strip()
    try:
        seconds = float(s)
    except ValueError:
        moment = datetime.fromisoformat(s)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(seconds):
        raise ValueError(s)
    return seconds


SERIES_FACTS = ("input_min", "input_max", "series_length")
"""What NAB tells every detector about a series before it runs (its ``inputMin``, ``inputMax``
and length, from which the probationary period follows). A detector whose constructor takes
any of these names gets them from the file when ``--param`` does not set them."""


def detect_csv(
    src: Path | TextIO,
    out: TextIO,
    detector: str,
    params: Mapping[str, str] | None = None,
    *,
    score_digits: int | None = None,
) -> int:
    """Stream ``src`` (``timestamp,value`` with a header) through ``detector`` into ``out``.

    For each row the detector scores the reading, then learns it. ``out`` receives
    ``timestamp,value,anomaly_score``: timestamp and value copied as written, the score in
    [0, 1] at full precision, or rounded to ``score_digits`` significant digits (NAB's
    published results carry 12). Returns the number of rows written.

    A detector that takes :data:`SERIES_FACTS` is given them as NAB gives them to its
    detectors: the minimum and maximum of the file's finite values and its number of rows
    (the file is read in full before the first row is scored; the others stream).
    """
    if score_digits is not None and not 1 <= score_digits <= 17:
        raise ValueError(f"score_digits must be in [1, 17], got {score_digits!r}")
    make_detector(detector, params)  # fail on bad parameters before reading
    fmt = repr if score_digits is None else f"{{:.{score_digits}g}}".format
    if isinstance(src, (str, Path)):
        with open(src, newline="", encoding="utf-8-sig") as f:
            return _replay(f, str(src), out, detector, params or {}, fmt)
    return _replay(src, getattr(src, "name", "<stream>"), out, detector, params or {}, fmt)


def _replay(
    src: TextIO,
    name: str,
    out: TextIO,
    detector: str,
    params: Mapping[str, str],
    fmt: Callable[[float], str],
) -> int:
    rows: Iterable[tuple[int, str, str, dict[str, float]]] = _rows(src, name)
    wanted = [f for f in SERIES_FACTS if f in detector_parameters(detector) and f not in params]
    if wanted:
        rows = list(rows)
        values = [x["value"] for *_, x in rows if math.isfinite(x["value"])]
        known = {"input_min": min(values, default=0.0), "input_max": max(values, default=0.0)}
        known["series_length"] = len(rows)
        params = {**params, **{f: repr(known[f]) for f in wanted}}
    model = make_detector(detector, params)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score"])
    written = 0
    for line, ts_text, value_text, x in rows:
        score = float(model.score_one(x))
        if not 0.0 <= score <= 1.0:
            raise RuntimeError(f"{name}, line {line}: detector {detector!r} returned score {score!r} outside [0, 1]")
        model.learn_one(x)
        writer.writerow([ts_text, value_text, fmt(score)])
        written += 1
    log.debug("%s: %d rows scored with %s", name, written, detector)
    return written


def _rows(src: TextIO, name: str) -> Iterator[tuple[int, str, str, dict[str, float]]]:
    """(line, timestamp text, value text, reading) of each data row of a ``timestamp,value`` CSV."""
    reader = csv.reader(src)
    header = next(reader, None)
    if header is None:
        raise BacktestInputError(f"{name}: empty input, a 'timestamp,value' header is required")
    columns = [h.strip() for h in header]
    if "timestamp" not in columns or "value" not in columns:
        raise BacktestInputError(
            f"{name}, line 1: a header naming 'timestamp' and 'value' is required, got {','.join(columns)!r}"
        )
    ts_col, value_col = columns.index("timestamp"), columns.index("value")
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(columns):
            raise BacktestInputError(f"{name}, line {line}: expected {len(columns)} fields, got {len(row)}")
        ts_text, value_text = row[ts_col].strip(), row[value_col].strip()
        try:
            ts = parse_timestamp(ts_text)
        except ValueError:
            raise BacktestInputError(f"{name}, line {line}: timestamp {ts_text!r} is not a date-time") from None
        try:
            value = float(value_text)
        except ValueError:
            raise BacktestInputError(f"{name}, line {line}: value {value_text!r} is not a number") from None
        yield line, ts_text, value_text, {"ts": ts, "value": value}


# --------------------------------------------------------------------------- NAB corpus


def score_nab_corpus_with(
    detector: str,
    params: Mapping[str, str] | None,
    nab_dir: Path | None,
    out_dir: Path,
    progress: Callable[[str], None] | None = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    score_digits: int | None = None,
) -> NabReport:
    """Run ``detector`` over every NAB series into ``out_dir`` and score the results.

    ``out_dir/<category>/<detector>_<name>.csv`` is written for each series of
    ``combined_windows.json`` (the layout :func:`evaluation.nab.score_corpus` reads), then the
    corpus is scored with optimised thresholds, or ``thresholds`` when given.
    ``score_digits=12`` writes scores as NAB's published (Python 2) results files did, which
    is what the scoreboard numbers were computed from.
    """
    nab_dir = Path(nab_dir) if nab_dir is not None else default_nab_dir()
    out_dir = Path(out_dir)
    make_detector(detector, params)  # fail on bad parameters before any work
    for series in sorted(load_windows(nab_dir)):
        if progress:
            progress(f"{detector}: {series}")
        category, _, name = series.rpartition("/")
        target = out_dir / category / f"{detector}_{name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", newline="", encoding="utf-8") as out:
            detect_csv(nab_dir / "data" / series, out, detector, params, score_digits=score_digits)
    return score_corpus(out_dir, nab_dir, thresholds, progress)
