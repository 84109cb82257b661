"""A fleet model per device kind: what a kind's devices normally look like, learnt from the
fleet's stored history, and how unusual one device's last hour is against it.

Two parts, both pure (no I/O, no clock):

- :class:`FleetWindow` keeps one device's sliding window of its metrics in a fixed number of
  time buckets (bounded state whatever the reporting rate) and turns it into a feature row:
  per metric the last value, the window's mean, standard deviation, minimum, maximum, slope
  (per hour), the last step (last − previous value) and how often the metric was missing;
  plus how many readings the window holds. :func:`observe` is the one way training and the
  worker read a device: a row is made when a reading opens a new bucket (the row then covers
  whole buckets), so both see the same features.
- :class:`FleetModel` is fitted by :func:`fit_fleet_model` on those rows (by ``forewarn
  train``) and passed in. Each feature becomes a robust z-score (its distance from the
  training median in units of the training IQR / 1.349); the model scores the z-scores —
  ``pca`` (scikit-learn's PCA keeping 95 % of the variance: Hotelling's T² inside the principal
  subspace plus the reconstruction error outside it, each over its training mean), ``iforest``
  (scikit-learn's IsolationForest) or ``zmax`` (the largest |z|) — and the raw anomaly is
  calibrated to [0, 1] against the training rows (0.999: more unusual than 99.9 % of them).
  ``pca`` is the default by measurement (``benchmarks/fleet_model.py``: on the simulator's
  pumps, cold-chain units and homes it ranks precursor windows above quiet ones best, and the
  forest's scores saturate, so few faults reach its top 0.05 %). The features with the largest
  |z| say which metrics were most unusual (:meth:`FleetModel.unusual`).

A fleet model's warning is only ever advisory on its own: :func:`fleet_severity` keeps it
below the physical rules' severity unless a physical rule's finding on the same device
corroborates it.

Models are saved with skops (``skops.io``), the format scikit-learn's documentation names as
the safer alternative to pickle: loading builds only the types it is allowed to, never runs
code from the file. :meth:`FleetModel.from_bytes` allows scikit-learn's tree storage type
(``sklearn.tree._tree.Tree``, which skops does not trust by default because a forged file can
make it read out of bounds) and nothing else the file may ask for; the worker also checks the
file's SHA-256 against its manifest before loading it.

This is the only module of ours that imports scikit-learn and skops.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.contract import METRICS
from detectors.base import SEVERITIES, Severity

STATS: tuple[str, ...] = ("last", "mean", "std", "min", "max", "slope_per_h", "step", "missing", "vs_baseline")
"""The features of each metric, in the order of a feature row."""
WINDOW_FEATURES: tuple[str, ...] = ("window:log_readings",)
"""The features of the whole window, after the metrics'."""
EXCLUDED_METRICS = frozenset({"lat", "lon", "heading_deg"})
"""Where a vehicle is and which way it heads say nothing about how it behaves: never modelled."""
METHODS: tuple[str, ...] = ("pca", "iforest", "zmax")
FORMAT_VERSION = 1
"""The layout of :meth:`FleetModel.to_bytes`; a file of another version is refused."""
TRUSTED_TYPES: tuple[str, ...] = ("sklearn.tree._tree.Tree",)
"""The types skops does not trust by default that a fleet model file may contain."""

_SLOT = 8  # per bucket and metric: n, Σv, Σv², Σt, Σt², Σtv, min, max (t: hours since the bucket's start)
_Z_CLIP = 100.0


MIN_METRIC_SHARE = 0.01
"""A metric is modelled when at least this share of the readings it is chosen from carry it."""


def choose_metrics(counts: Mapping[str, int], readings: int, share: float = MIN_METRIC_SHARE) -> list[str]:
    """The catalogue's metrics carried by at least ``share`` of ``readings`` (positions aside), by
    name: what a kind's model reads (``forewarn train`` and ``forewarn eval`` choose alike).

    >>> choose_metrics({"temp_c": 1000, "lat": 1000, "smoke": 0, "co_ppm": 2}, 1000)
    ['temp_c']
    """
    usable = (m for m in counts if m in METRICS and m not in EXCLUDED_METRICS)
    return sorted(m for m in usable if readings and counts[m] / readings >= share)


def feature_names(metrics: Sequence[str]) -> list[str]:
    """The names of a feature row's columns for ``metrics``.

    >>> feature_names(["temp_c"])[:3], len(feature_names(["temp_c", "humidity_pct"]))
    (['temp_c:last', 'temp_c:mean', 'temp_c:std'], 19)
    """
    return [f"{m}:{s}" for m in metrics for s in STATS] + list(WINDOW_FEATURES)


class FleetWindow:
    """One device's last ``window_s`` of ``metrics`` in ``buckets`` time buckets.

    ``learn_one(x)`` adds a reading (``x["ts"]`` in epoch seconds; metrics it does not know
    are ignored; a reading older than the window is dropped). ``features()`` is the window's
    feature row (:func:`feature_names`); a metric absent from the window has NaN values and
    ``missing`` 1; ``vs_baseline`` is the window's mean against the metric's long-run level
    for this device (an EWMA of its bucket means with half-life ``baseline_half_life_s``), so a
    pump drifting from its own normal shows even where the fleet's levels differ.
    ``ready`` once the device has reported for a whole window.

    >>> w = FleetWindow(["temp_c"], window_s=600.0, buckets=2)
    >>> for k in range(11):
    ...     w.learn_one({"ts": 60.0 * k, "temp_c": 20.0 + 0.1 * k})
    >>> w.ready
    True
    >>> dict(zip(feature_names(["temp_c"]), (round(v, 3) for v in w.features())))["temp_c:slope_per_h"]
    6.0
    """

    def __init__(
        self, metrics: Sequence[str], window_s: float = 3600.0, buckets: int = 6, baseline_half_life_s: float = 86400.0
    ) -> None:
        if not metrics or len(set(metrics)) != len(metrics):
            raise ValueError("metrics must name at least one metric, each once")
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if buckets < 2:
            raise ValueError(f"buckets must be at least 2, got {buckets!r}")
        if not (baseline_half_life_s > 0 and math.isfinite(baseline_half_life_s)):
            raise ValueError(f"baseline_half_life_s must be a positive number of seconds, got {baseline_half_life_s!r}")
        self.metrics = tuple(metrics)
        self.window_s = float(window_s)
        self.buckets = int(buckets)
        self.baseline_half_life_s = float(baseline_half_life_s)
        self._bucket_s = self.window_s / self.buckets
        self._alpha = 1.0 - 0.5 ** (self._bucket_s / self.baseline_half_life_s)
        self._index = {m: i for i, m in enumerate(self.metrics)}
        m = len(self.metrics)
        self._ids = [-1] * self.buckets  # the bucket number each slot holds (-1: none)
        self._counts = array("d", [0.0] * self.buckets)  # readings per slot
        self._stats = array("d", [0.0] * (self.buckets * m * _SLOT))
        self._last = array("d", [math.nan] * m)
        self._last_t = array("d", [-math.inf] * m)
        self._prev = array("d", [math.nan] * m)
        self._base = array("d", [math.nan] * m)  # each metric's long-run level: an EWMA of its bucket means
        self._newest = -1
        self._first_t = math.nan

    @property
    def ready(self) -> bool:
        return self._newest >= 0 and (self._newest + 1) * self._bucket_s - self._first_t >= self.window_s

    def bucket_of(self, ts: float) -> int:
        return int(ts // self._bucket_s)

    def opens_bucket(self, ts: float) -> bool:
        """Whether a reading at ``ts`` would start a bucket newer than any the window holds."""
        return self._newest >= 0 and self.bucket_of(ts) > self._newest

    def learn_one(self, x: Mapping[str, float]) -> None:
        t = float(x["ts"])
        bid = self.bucket_of(t)
        if bid <= self._newest - self.buckets:
            return  # older than the window
        slot = bid % self.buckets
        if self._ids[slot] != bid:
            if self._ids[slot] > bid:
                return
            self._ids[slot] = bid
            self._counts[slot] = 0.0
            base = slot * len(self.metrics) * _SLOT
            for k in range(base, base + len(self.metrics) * _SLOT):
                self._stats[k] = 0.0
        if bid > self._newest:
            if self._newest >= 0:
                self._fold(self._newest % self.buckets)
            self._newest = bid
        if math.isnan(self._first_t):
            self._first_t = t
        self._counts[slot] += 1.0
        tt = (t - bid * self._bucket_s) / 3600.0
        stats, index, width = self._stats, self._index, len(self.metrics) * _SLOT
        for name, value in x.items():
            i = index.get(name)
            if i is None:
                continue
            v = float(value)
            if not math.isfinite(v):
                continue
            b = slot * width + i * _SLOT
            first = stats[b] == 0.0
            stats[b] += 1.0
            stats[b + 1] += v
            stats[b + 2] += v * v
            stats[b + 3] += tt
            stats[b + 4] += tt * tt
            stats[b + 5] += tt * v
            stats[b + 6] = v if first or v < stats[b + 6] else stats[b + 6]
            stats[b + 7] = v if first or v > stats[b + 7] else stats[b + 7]
            if t >= self._last_t[i]:
                self._prev[i] = self._last[i]
                self._last[i] = v
                self._last_t[i] = t

    def _fold(self, slot: int) -> None:
        """Fold a completed bucket's means into each metric's long-run level."""
        m, alpha = len(self.metrics), self._alpha
        for i in range(m):
            b = (slot * m + i) * _SLOT
            n = self._stats[b]
            if n:
                mean = self._stats[b + 1] / n
                base = self._base[i]
                self._base[i] = mean if math.isnan(base) else base + alpha * (mean - base)

    def features(self) -> list[float]:
        """The window's feature row (the buckets up to the newest one the window holds)."""
        m = len(self.metrics)
        oldest = self._newest - self.buckets + 1
        origin_h = oldest * self._bucket_s / 3600.0
        agg = [[0.0] * 6 + [math.inf, -math.inf] for _ in range(m)]
        total = 0.0
        for slot, bid in enumerate(self._ids):
            if bid < oldest or bid < 0:
                continue
            total += self._counts[slot]
            o = bid * self._bucket_s / 3600.0 - origin_h  # the bucket's start, hours into the window
            for i in range(m):
                b = (slot * m + i) * _SLOT
                n = self._stats[b]
                if n == 0.0:
                    continue
                sv, st = self._stats[b + 1], self._stats[b + 3]
                a = agg[i]
                a[0] += n
                a[1] += sv
                a[2] += self._stats[b + 2]
                a[3] += st + n * o
                a[4] += self._stats[b + 4] + 2 * o * st + n * o * o
                a[5] += self._stats[b + 5] + o * sv
                a[6] = min(a[6], self._stats[b + 6])
                a[7] = max(a[7], self._stats[b + 7])
        window_start = oldest * self._bucket_s
        row: list[float] = []
        for i in range(m):
            n, sv, svv, st, stt, stv, lo, hi = agg[i]
            if n == 0.0:
                row += [math.nan] * 7 + [1.0, math.nan]  # the order of STATS: only ``missing`` is known
                continue
            mean = sv / n
            std = math.sqrt(max(svv / n - mean * mean, 0.0))
            denominator = n * stt - st * st
            slope = (n * stv - st * sv) / denominator if denominator > 1e-12 * max(n * stt, 1.0) else 0.0
            fresh = self._last_t[i] >= window_start
            last = self._last[i] if fresh else math.nan
            step = last - self._prev[i] if fresh and not math.isnan(self._prev[i]) else 0.0
            versus = mean - self._base[i] if not math.isnan(self._base[i]) else 0.0
            row += [last, mean, std, lo, hi, slope, step, 1.0 - n / total if total else 1.0, versus]
        row.append(math.log1p(total))
        return row


def observe(window: FleetWindow, x: Mapping[str, float]) -> list[float] | None:
    """Learn ``x``; when it opens a new bucket of a window that is ready, first return the
    feature row of the window as it stood (whole buckets). Training and the worker both read
    devices through this, so they see the same rows."""
    row = window.features() if window.ready and window.opens_bucket(float(x["ts"])) else None
    window.learn_one(x)
    return row


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Unusual:
    """One feature of a scored row far from the fleet's normal: its metric, statistic and robust z."""

    metric: str
    stat: str
    z: float

    def __str__(self) -> str:
        return f"{self.metric} ({self.stat}, z={self.z:+.1f})"


class FleetModel:
    """A fitted fleet model of one device kind (built by :func:`fit_fleet_model` or
    :meth:`from_bytes`). ``score_many(X)`` scores feature rows in one call: calibrated scores in
    [0, 1] and the rows' robust z-scores (for :meth:`unusual`).

    >>> rng = np.random.default_rng(7)
    >>> X = rng.normal(20.0, 1.0, size=(400, len(feature_names(["temp_c"]))))
    >>> model = fit_fleet_model("home", ["temp_c"], X, method="zmax", window_s=3600.0, buckets=6)
    >>> scores, z = model.score_many(np.vstack([X[:1], X[:1] + 8.0]))
    >>> bool(scores[1] > 0.99 > scores[0])
    True
    """

    def __init__(
        self,
        kind: str,
        metrics: Sequence[str],
        *,
        method: str,
        window_s: float,
        buckets: int,
        baseline_half_life_s: float = 86400.0,
        medians: np.ndarray,
        scales: np.ndarray,
        calibration: np.ndarray,
        estimator: Any = None,
        norms: np.ndarray | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if (estimator is None) != (method == "zmax"):
            raise ValueError(f"method {method!r} {'takes no' if method == 'zmax' else 'needs an'} estimator")
        self.kind = kind
        self.metrics = tuple(metrics)
        self.method = method
        self.window_s = float(window_s)
        self.buckets = int(buckets)
        self.baseline_half_life_s = float(baseline_half_life_s)
        self.feature_names = feature_names(self.metrics)
        n = len(self.feature_names)
        if medians.shape != (n,) or scales.shape != (n,):
            raise ValueError(f"medians and scales must have one value per feature ({n})")
        self.medians = medians.astype(float)
        self.scales = scales.astype(float)
        self.calibration = np.sort(calibration.astype(float))
        self.estimator = estimator
        self.norms = np.ones(2) if norms is None else np.asarray(norms, dtype=float)
        """pca: the training means of the two parts of its raw score (see :meth:`raw_scores`)."""

    def new_window(self) -> FleetWindow:
        """An empty window of this model's metrics and shape, for one device."""
        return FleetWindow(self.metrics, self.window_s, self.buckets, self.baseline_half_life_s)

    def robust_z(self, X: np.ndarray) -> np.ndarray:
        """Each feature's robust z against the training rows; a missing value is at the median (0)."""
        z = (np.asarray(X, dtype=float) - self.medians) / self.scales
        return np.clip(np.nan_to_num(z, nan=0.0), -_Z_CLIP, _Z_CLIP)

    def raw_scores(self, z: np.ndarray) -> np.ndarray:
        """Uncalibrated anomaly of z-scored rows: higher is more unusual."""
        if self.method == "zmax":
            return np.asarray(np.abs(z).max(axis=1), dtype=float)
        if self.method == "iforest":
            return np.asarray(-self.estimator.score_samples(z), dtype=float)
        t2, spe = self._pca_parts(z)
        return np.asarray(np.sqrt(0.5 * t2 / self.norms[0] + 0.5 * spe / self.norms[1]), dtype=float)

    def _pca_parts(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hotelling's T² inside the principal subspace (a move along the fleet's usual directions,
        e.g. every feature of one metric rising together) and the squared reconstruction error
        outside it (relations between metrics broken), each per row."""
        pca = self.estimator
        t = pca.transform(z)
        t2 = (t**2 / pca.explained_variance_).mean(axis=1)
        spe = ((z - pca.inverse_transform(t)) ** 2).mean(axis=1)
        return t2, spe

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """The share of training rows less unusual than each raw score, in [0, 1]."""
        c = self.calibration
        return np.searchsorted(c, raw, side="left") / len(c)

    def score_many(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} features per row, got {X.shape[1]}")
        z = self.robust_z(X)
        return self.calibrate(self.raw_scores(z)), z

    def unusual(self, z_row: np.ndarray, top: int = 3) -> list[Unusual]:
        """The ``top`` metrics whose features are furthest from the fleet's normal (each metric
        once, by its most unusual feature; the window's own feature counts as ``window``)."""
        best: dict[str, Unusual] = {}
        for k in np.argsort(-np.abs(z_row), kind="stable"):
            metric, _, stat = self.feature_names[int(k)].partition(":")
            if metric not in best and z_row[k] != 0.0:
                best[metric] = Unusual(metric, stat, float(z_row[k]))
                if len(best) == top:
                    break
        return list(best.values())

    # ------------------------------------------------------------------ persistence

    def to_bytes(self) -> bytes:
        """The model in skops' format (config as plain values, arrays, the scikit-learn estimator)."""
        doc = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "metrics": list(self.metrics),
            "method": self.method,
            "window_s": self.window_s,
            "buckets": self.buckets,
            "baseline_half_life_s": self.baseline_half_life_s,
            "medians": self.medians,
            "scales": self.scales,
            "calibration": self.calibration,
            "norms": self.norms,
            "estimator": self.estimator,
        }
        import skops.io as sio  # here, not at the top: a worker with no fleet model never pays ~1 s to import it

        return bytes(sio.dumps(doc))

    @classmethod
    def from_bytes(cls, data: bytes) -> FleetModel:
        """Load :meth:`to_bytes`' output; :class:`ValueError` for a file asking for a type beyond
        skops' defaults and :data:`TRUSTED_TYPES`, or of another format version."""
        import skops.io as sio

        untrusted = sio.get_untrusted_types(data=data)
        unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if unexpected:
            raise ValueError(f"refusing a fleet model that asks for types not trusted: {', '.join(unexpected)}")
        doc = sio.loads(data, trusted=list(untrusted))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"not a fleet model of format {FORMAT_VERSION}")
        return cls(
            str(doc["kind"]),
            [str(m) for m in doc["metrics"]],
            method=str(doc["method"]),
            window_s=float(doc["window_s"]),
            buckets=int(doc["buckets"]),
            baseline_half_life_s=float(doc["baseline_half_life_s"]),
            medians=np.asarray(doc["medians"]),
            scales=np.asarray(doc["scales"]),
            calibration=np.asarray(doc["calibration"]),
            estimator=doc["estimator"],
            norms=np.asarray(doc["norms"]),
        )


def robust_centre_and_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the median and IQR / 1.349 of the finite values (a normal's standard
    deviation), floored so that a feature constant in training still gives finite z-scores."""
    X = np.asarray(X, dtype=float)
    finite = np.isfinite(X)
    medians = np.zeros(X.shape[1])
    scales = np.ones(X.shape[1])
    for j in range(X.shape[1]):
        col = X[finite[:, j], j]
        if col.size:
            q1, med, q3 = np.quantile(col, [0.25, 0.5, 0.75])
            medians[j] = med
            spread = (q3 - q1) / 1.349
            if spread <= 0:
                spread = float(np.std(col))
            scales[j] = max(spread, 1e-3 * (abs(med) + 1.0))
    return medians, scales


def fit_fleet_model(
    kind: str,
    metrics: Sequence[str],
    X: np.ndarray,
    *,
    method: str = "pca",
    window_s: float = 3600.0,
    buckets: int = 6,
    baseline_half_life_s: float = 86400.0,
    n_estimators: int = 100,
    max_samples: int = 256,
    seed: int = 0,
    calibration_points: int = 10_001,
) -> FleetModel:
    """Fit a fleet model of ``kind`` on feature rows ``X`` (rows of :func:`observe`)."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    names = feature_names(metrics)
    if X.shape[1] != len(names):
        raise ValueError(f"expected {len(names)} features per row, got {X.shape[1]}")
    if X.shape[0] < 10:
        raise ValueError(f"a fleet model needs at least 10 feature rows, got {X.shape[0]}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    medians, scales = robust_centre_and_scale(X)
    z = np.clip(np.nan_to_num((X - medians) / scales, nan=0.0), -_Z_CLIP, _Z_CLIP)
    from sklearn.decomposition import PCA  # here: importing scikit-learn costs ~0.5 s
    from sklearn.ensemble import IsolationForest

    estimator: Any = None
    if method == "iforest":
        estimator = IsolationForest(
            n_estimators=n_estimators, max_samples=min(max_samples, X.shape[0]), random_state=seed
        ).fit(z)
    elif method == "pca":
        estimator = PCA(n_components=0.95, svd_solver="full", random_state=seed).fit(z)
    model = FleetModel(
        kind,
        metrics,
        method=method,
        window_s=window_s,
        buckets=buckets,
        baseline_half_life_s=baseline_half_life_s,
        medians=medians,
        scales=scales,
        calibration=np.zeros(1),
        estimator=estimator,
    )
    if method == "pca":
        t2, spe = model._pca_parts(z)
        model.norms = np.array([max(float(t2.mean()), 1e-12), max(float(spe.mean()), 1e-12)])
    raw = model.raw_scores(z)
    model.calibration = np.quantile(raw, np.linspace(0.0, 1.0, min(calibration_points, raw.size)))
    return model


def auc(normal: Sequence[float] | np.ndarray, unusual: Sequence[float] | np.ndarray) -> float:
    """The probability that an unusual row scores above a normal one (ties count half).

    >>> auc([0.1, 0.2], [0.3, 0.2])
    0.875
    """
    a, b = np.asarray(normal, dtype=float), np.asarray(unusual, dtype=float)
    if not a.size or not b.size:
        return math.nan
    ranks = _ranks(np.concatenate([a, b]))
    return float((ranks[a.size :].sum() - b.size * (b.size + 1) / 2) / (a.size * b.size))


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size)
    sorted_values = values[order]
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


# ----------------------------------------------------------------------------- findings


def fleet_severity(physical: str | None) -> Severity:
    """The severity of a fleet model's finding on a device whose strongest open physical-rule
    warning has severity ``physical`` (``None``: none): advisory alone, below every physical
    rule's warning; with a physical rule's finding on the same device it may reach that
    finding's severity, never more.

    >>> fleet_severity(None), fleet_severity("warning"), fleet_severity("critical")
    ('advisory', 'warning', 'critical')
    """
    if physical in SEVERITIES:
        return physical  # type: ignore[return-value]
    return "advisory"


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One device's feature row, ready to score with its kind's model (``ts``: epoch seconds)."""

    key: str
    kind: str
    ts: float
    features: Sequence[float]


@dataclass(frozen=True, slots=True)
class FleetFinding:
    """A fleet model's judgement of one device's window: how unusual (``score``, calibrated:
    the share of the fleet's training windows less unusual), the metrics most unusual, the
    severity it may carry (:func:`fleet_severity`) and whether a physical rule corroborates it."""

    key: str
    kind: str
    ts: float
    score: float
    severity: Severity
    corroborated: bool
    unusual: tuple[Unusual, ...] = field(default_factory=tuple)

    @property
    def evidence(self) -> dict[str, Any]:
        return {
            "fleet_score": round(self.score, 5),
            "more_unusual_than_pct": round(self.score * 100, 2),
            "unusual_metrics": [u.metric for u in self.unusual],
            "unusual": [{"metric": u.metric, "stat": u.stat, "z": round(u.z, 2)} for u in self.unusual],
            "corroborated": self.corroborated,
        }

    def describe(self) -> str:
        what = ", ".join(str(u) for u in self.unusual) or "no single metric"
        return (
            f"{self.key} ({self.kind}) unusual for its fleet: score {self.score:.4f}, {self.severity}"
            f"{' (corroborated by a physical rule)' if self.corroborated else ''}; most unusual: {what}"
        )


def score_rows(
    models: Mapping[str, FleetModel],
    rows: Sequence[FleetRow],
    physical: Mapping[str, str | None],
    threshold: float = 0.999,
    top: int = 3,
) -> list[FleetFinding]:
    """Score ``rows`` with their kind's model, one scikit-learn call per kind, and return a
    finding for each row scoring at least ``threshold`` (rows of a kind without a model are
    skipped). ``physical`` maps a device key to the severity of its strongest open physical-rule
    warning (missing or ``None``: none)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    by_kind: dict[str, list[FleetRow]] = {}
    for row in rows:
        if row.kind in models:
            by_kind.setdefault(row.kind, []).append(row)
    findings: list[FleetFinding] = []
    for kind, group in by_kind.items():
        model = models[kind]
        scores, z = model.score_many(np.array([r.features for r in group], dtype=float))
        for k in np.flatnonzero(scores >= threshold):
            row = group[int(k)]
            corroborating = physical.get(row.key)
            findings.append(
                FleetFinding(
                    row.key,
                    kind,
                    row.ts,
                    float(scores[k]),
                    fleet_severity(corroborating),
                    corroborating in SEVERITIES,
                    tuple(model.unusual(z[k], top)),
                )
            )
    return findings


def rows_of_device(
    window: FleetWindow, readings: Iterable[Mapping[str, float]], key: str = "", kind: str = ""
) -> list[FleetRow]:
    """Every feature row :func:`observe` makes from ``readings`` (in time order), each stamped
    with the time of the reading that closed its window."""
    out: list[FleetRow] = []
    for x in readings:
        row = observe(window, x)
        if row is not None:
            out.append(FleetRow(key, kind, float(x["ts"]), row))
    return out
