"""Adaptive resonance over a downsampled series: an ARTime-style univariate detector.

The approach is Mark Hampton's ARTime (the best published NAB score), re-implemented here
from its description and published source (ARTimeNAB.jl) as a river-style detector:

1. The series is downsampled: every ``step`` readings become one value, the reading of that
   block farthest from a running average (so a spike survives), or the block mean when the
   extreme is within 10 % of it.
2. That value is scaled to [0, 1] with the series' range, rounded to one of ``levels`` levels,
   and snapped to a running median level when within ``median_snap`` of it.
3. The last ``window`` values, and their Haar wavelet transform (both min-max scaled), are one
   feature vector.
4. A fuzzy ART network with two vigilances (distributed dual-vigilance fuzzy ART) clusters the
   feature vectors. A vector that resonates with no category (similarity below the lower
   vigilance) opens a new cluster: that is an anomaly, scored by how far below the vigilances
   it fell and how far its current level is outside the best category's range. Vigilances
   adapt to the similarities the series shows, and repeated alarms are masked.

The first 15 % of a series (at most 750 readings, NAB's probationary period) is learnt as a
batch once it is complete; scores are 0 until then and between downsampled readings. NAB
gives its detectors the series' minimum, maximum and length (``inputMin`` / ``inputMax``,
and the length that fixes the probationary period): pass them as ``input_min``,
``input_max`` and ``series_length`` to run exactly as on NAB. Without them the range is the
probationary period's widened by ``range_margin`` times its span on each side (readings
outside that are clipped), and the probationary period is ``default_probation`` readings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from detectors.base import Detector
from detectors.readings import num

_NAB_PROBATION_SHARE = 0.15
_NAB_PROBATION_CAP = 750
_SPIKE_SHARE = 0.1  # a block extreme within 10 % of the block mean counts as the mean
_UPPER_VIGILANCE_CAP = 0.97
_MASK_FACTOR = 1.5
NAB_CAP_LENGTH = 5000
"""From this length on NAB's probationary period is its 750-reading cap."""


def _haar(values: np.ndarray) -> np.ndarray:
    """Full Haar wavelet decomposition of a power-of-two length vector (coarsest first)."""
    out: list[np.ndarray] = []
    approx = values
    while len(approx) > 1:
        even, odd = approx[0::2], approx[1::2]
        out.append((even - odd) / math.sqrt(2.0))
        approx = (even + odd) / math.sqrt(2.0)
    out.append(approx)
    return np.concatenate(out[::-1])


def _level(scaled: float, levels: int) -> int:
    """The nearest level in [0, levels]; an overflowing reading is the top one (nan the bottom)."""
    if math.isfinite(scaled):
        return min(max(round(scaled), 0), levels)
    return levels if scaled > 0 else 0


def _unit_scaled(values: np.ndarray) -> np.ndarray:
    shifted = values - values.min()
    top = shifted.max()
    return shifted / top if top != 0 else shifted


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Close to cosine similarity (ARTime's ``similarity``)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0:
        return 1.0 - nb
    if nb == 0.0:
        return 1.0 - na
    return float(a @ b) / (na * nb)


class _Art:
    """Dual-vigilance fuzzy ART with complement coding: categories are boxes in [0, 1]^d.

    A category's match for a complement-coded input ``x`` is ``feature³ · energy²`` where
    ``feature = |min(x, w)| / |w|`` and ``energy`` is the same ratio over the input's current
    level alone (the last feature and its complement).
    """

    __slots__ = ("weights", "lower", "upper")

    def __init__(self, dim: int, vigilance: float) -> None:
        self.weights = np.ones((1, 2 * dim))  # ARTime starts with one all-ones category
        self.lower = vigilance
        self.upper = vigilance

    def match(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self.weights
        common = np.minimum(x, w)
        size = w.sum(axis=1)
        size[size == 0.0] = 0.001
        feature = common.sum(axis=1) / size
        last, half = w.shape[1] - 1, w.shape[1] // 2 - 1
        energy_size = w[:, half] + w[:, last]
        energy_common = common[:, half] + common[:, last]
        with np.errstate(divide="ignore", invalid="ignore"):
            energy = np.where(energy_size > 0.0, energy_common / energy_size, 0.0)
        return feature**3 * energy**2, energy

    def best(self, x: np.ndarray) -> tuple[float, float, bool]:
        """(best match, its energy similarity, whether ``x`` would open a new cluster)."""
        m, e = self.match(x)
        k = int(np.argmax(m))
        top = float(m[k])
        if top <= 0.0:
            return 0.0, 0.0, top < self.lower
        return top, float(e[k]), top < self.lower

    def train(self, x: np.ndarray) -> tuple[float, float, bool]:
        """Learn ``x`` (fast commit); returns what :meth:`best` would have said."""
        m, e = self.match(x)
        k = int(np.argmax(m))
        top = float(m[k])
        if top >= self.upper:
            resonant = m >= self.upper
            self.weights[resonant] = np.minimum(x, self.weights[resonant])
        else:
            self.weights = np.vstack((self.weights, x))
        if top <= 0.0:
            return 0.0, 0.0, top < self.lower
        return top, float(e[k]), top < self.lower


class _Downsampler:
    """Steps 1–3: one feature vector every ``step`` readings (state kept in plain attributes)."""

    __slots__ = (
        "step",
        "levels",
        "snap",
        "window",
        "low",
        "span",
        "block",
        "average",
        "count",
        "histogram",
        "median",
        "below",
        "above",
        "recent",
    )

    def __init__(self, step: int, levels: int, snap: float, window: int, low: float, high: float) -> None:
        self.step, self.levels, self.snap, self.window = step, levels, snap, window
        self.low, self.span = low, high - low
        self.block: list[float] = [0.0] * step
        self.average = 0.0
        self.count = 0  # downsampled values so far
        self.histogram = [0] * (levels + 1)
        self.median = 0
        self.below = 0
        self.above = 0
        self.recent = np.zeros(window)

    def copy(self) -> _Downsampler:
        clone = _Downsampler.__new__(_Downsampler)
        for name in self.__slots__:
            setattr(clone, name, getattr(self, name))
        clone.block = list(self.block)
        clone.histogram = list(self.histogram)
        return clone

    def push(self, position: int, value: float) -> np.ndarray | None:
        """Feed reading number ``position`` (1-based); a feature vector at each block end."""
        self.block = [*self.block[1:], value]
        if position % self.step:
            return None
        block = self.block
        mean = sum(block) / len(block)
        self.count += 1
        if self.count == 1:
            self.average = mean
        self.average = (self.average + mean) / 2
        hi, lo = max(block), min(block)
        ds = lo if abs(hi - self.average) < abs(lo - self.average) else hi
        if abs(ds - mean) < _SPIKE_SHARE * mean:
            ds = mean
        ds -= self.low
        if self.span != 0:
            ds /= self.span
        level = _level(ds * self.levels, self.levels)
        ds = level / self.levels
        self._track_median(level)
        med = self.median / self.levels
        if abs(ds - med) < self.snap:
            ds = med
        self.recent = np.concatenate((self.recent[1:], [ds]))
        if self.count < self.window:
            return np.zeros(2 * self.window)
        return np.concatenate((_unit_scaled(_haar(_unit_scaled(self.recent))), self.recent))

    def _track_median(self, level: int) -> None:
        """A running median over the levels seen (ARTime's approximate one)."""
        h = self.histogram
        h[level] += 1
        if self.count == 1:
            self.median = level
        if self.median > level:
            self.below += 1
        elif self.median < level:
            self.above += 1
        half = self.count // 2
        if half < self.above:
            self.below += h[self.median]
            self.median += 1
            while h[self.median] == 0:
                self.median += 1
            self.above -= h[self.median]
        elif half < self.below:
            self.above += h[self.median]
            self.median -= 1
            while h[self.median] == 0:
                self.median -= 1
            self.below -= h[self.median]


class AdaptiveResonance(Detector):
    """ARTime-style anomaly detector: fuzzy ART over wavelet features of a downsampled series.

    ``window`` downsampled values make one feature vector; the probationary period is cut
    into ``window * windows_per_probation`` downsampled values (that fixes the downsampling
    step); ``levels`` and ``median_snap`` discretise the scaled values; ``initial_vigilance``
    starts the search for the first vigilance. ``input_min`` / ``input_max`` /
    ``series_length`` are what NAB tells its detectors about a series (see the module); the
    probationary period is NAB's (15 %, at most 750 readings) of ``series_length``, or
    ``default_probation`` readings without it. Without ``input_min`` / ``input_max`` the range
    is the probationary period's, widened by ``range_margin`` times its span on each side.
    Scores are 0 until the probationary period is over, and between downsampled readings.

    >>> import random
    >>> rng = random.Random(4)
    >>> values = [10 + 5 * math.sin(i * 2 * math.pi / 50) + rng.gauss(0, 0.2) for i in range(2000)]
    >>> values[1500] = 40.0
    >>> detector = AdaptiveResonance(series_length=2000)
    >>> scores = []
    >>> for i, v in enumerate(values):
    ...     scores.append(detector.score_one({"ts": 60.0 * i, "value": v}))
    ...     detector.learn_one({"ts": 60.0 * i, "value": v})
    >>> max(scores[1500:1510]) > 0.5, max(scores[400:1500]) < 0.5
    (True, True)
    """

    downsamples: ClassVar[bool] = True
    """Scores only every few readings (the downsampling step), 0 in between."""

    def __init__(
        self,
        input_min: float | None = None,
        input_max: float | None = None,
        series_length: int | None = None,
        default_probation: int = 750,
        range_margin: float = 0.5,
        window: int = 8,
        windows_per_probation: int = 13,
        levels: int = 80,
        median_snap: float = 0.075,
        initial_vigilance: float = 0.8,
    ) -> None:
        for name, bound in (("input_min", input_min), ("input_max", input_max)):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"{name} must be a finite number or None, got {bound!r}")
        if input_min is not None and input_max is not None and input_min > input_max:
            raise ValueError(f"input_min must not exceed input_max, got {input_min!r} > {input_max!r}")
        if series_length is not None and series_length < 1:
            raise ValueError(f"series_length must be at least 1, got {series_length!r}")
        if default_probation < 2:
            raise ValueError(f"default_probation must be at least 2, got {default_probation!r}")
        if not 0.0 <= range_margin < math.inf:
            raise ValueError(f"range_margin must be a number >= 0, got {range_margin!r}")
        if window < 2 or window & (window - 1):
            raise ValueError(f"window must be a power of two >= 2, got {window!r}")
        if windows_per_probation < 2:
            raise ValueError(f"windows_per_probation must be at least 2, got {windows_per_probation!r}")
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels!r}")
        if not 0.0 <= median_snap < 1.0:
            raise ValueError(f"median_snap must be in [0, 1), got {median_snap!r}")
        if not 0.0 < initial_vigilance < 1.0:
            raise ValueError(f"initial_vigilance must be in (0, 1), got {initial_vigilance!r}")
        self.input_min = None if input_min is None else float(input_min)
        self.input_max = None if input_max is None else float(input_max)
        self.series_length = None if series_length is None else int(series_length)
        self.default_probation = int(default_probation)
        self.range_margin = float(range_margin)
        self.window = int(window)
        self.windows_per_probation = int(windows_per_probation)
        self.levels = int(levels)
        self.median_snap = float(median_snap)
        self.initial_vigilance = float(initial_vigilance)

        if self.series_length is None:
            probation = self.default_probation
        elif self.series_length < NAB_CAP_LENGTH:
            probation = math.floor(_NAB_PROBATION_SHARE * self.series_length)
        else:
            probation = _NAB_PROBATION_CAP
        probation -= probation % 2
        self._step = max(1, round(probation // (self.window * self.windows_per_probation)))
        self._trend = max(probation // self._step, self.window + 2)
        self._mask = int(self.window * _MASK_FACTOR)
        self._n = 0  # readings learnt
        self._buffer: list[float] | None = []  # raw readings until the batch is learnt
        self._down: _Downsampler | None = None
        self._art: _Art | None = None
        self._i = 0  # downsampled feature vectors learnt
        self._last_anomaly_i = 0
        self._last_anomaly_sim = 0.0
        self._last_update_i = 0
        self._mask_after_cat = False
        self._no_new_cat = 0
        self._anomaly_sims: list[float] = []
        self._sim_window = np.ones(self._trend // 2 + 1)
        self._gap_window = np.zeros(self._trend + 1)
        self._sim_sum = 0.0
        self._sim_count = 0

    # ------------------------------------------------------------------ river contract

    def learn_one(self, x: Mapping[str, float]) -> None:
        v = num(x, "value")
        if v is None:
            return
        self._n += 1
        if self._buffer is not None:
            self._buffer.append(v)
            if self._n == self._trend * self._step:
                self._learn_probation(self._buffer)
                self._buffer = None
            return
        assert self._down is not None
        features = self._down.push(self._n, v)
        if features is not None:
            self._i += 1
            self._detect(features, self._i, learn=True)

    def score_one(self, x: Mapping[str, float]) -> float:
        v = num(x, "value")
        if v is None or self._down is None or (self._n + 1) % self._step:
            return 0.0
        features = self._down.copy().push(self._n + 1, v)
        if features is None:  # pragma: no cover - the step test above rules it out
            return 0.0
        return self._detect(features, self._i + 1, learn=False)

    # ------------------------------------------------------------------ probationary batch

    def _learn_probation(self, raw: list[float]) -> None:
        seen_low, seen_high = min(raw), max(raw)
        margin = self.range_margin * (seen_high - seen_low)
        low = seen_low - margin if self.input_min is None else self.input_min
        high = seen_high + margin if self.input_max is None else self.input_max
        down = _Downsampler(self._step, self.levels, self.median_snap, self.window, low, high)
        features = [f for n, v in enumerate(raw, start=1) if (f := down.push(n, v)) is not None]
        self._down = down
        dim = 2 * self.window
        vigilance = self._first_vigilance(np.array(features[self.window - 1 : self._trend]), dim)
        self._art = _Art(dim, vigilance)
        for i, f in enumerate(features, start=1):
            self._i = i
            self._detect(f, i, learn=True)

    def _first_vigilance(self, batch: np.ndarray, dim: int) -> float:
        """ARTime's ``init_rho``: train a trial network on the batch ordered from the least to
        the most typical vector, and take its mean similarity over the second half."""
        n = len(batch)
        sim = np.ones((n, n))
        for i in range(n):
            for j in range(i):
                sim[i, j] = sim[j, i] = _similarity(batch[i], batch[j])
        order = np.argsort(sim.sum(axis=0), kind="stable")
        trial = _Art(dim, self.initial_vigilance)
        similarities = [0.0]
        for f in batch[order][1:]:
            similarities.append(trial.train(np.concatenate((f, 1.0 - f)))[0])
        tail = similarities[self._trend // 2 - 1 :]
        return float(np.mean(tail)) if tail else self.initial_vigilance

    # ------------------------------------------------------------------ one feature vector

    def _detect(self, features: np.ndarray, i: int, *, learn: bool) -> float:
        """Score feature vector number ``i`` and, when ``learn``, update the network."""
        art = self._art
        assert art is not None
        x = np.concatenate((features, 1.0 - features))
        since_anomaly = i - self._last_anomaly_i
        mask_after_cat = self._mask_after_cat
        if i > self._trend + self._mask and mask_after_cat and self._no_new_cat >= self._mask:
            mask_after_cat = False
        if i == 1:  # the first vector only sets the network up
            sim, energy, new_cluster = 0.0, 0.0, True
        elif i < self.window:  # not a full window yet: matched, not learnt, counts as new
            sim, energy, _ = art.best(x)
            new_cluster = True
        elif not learn:
            sim, energy, new_cluster = art.best(x)
        else:
            sim, energy, new_cluster = art.train(x)
        masked = mask_after_cat or since_anomaly <= self._mask
        below_last = sim < self._last_anomaly_sim * (0.90 if since_anomaly <= self._mask else 0.70)
        anomalous = i > self._trend and new_cluster and (not masked or below_last)
        score = self._confidence(sim, energy) if anomalous else 0.0
        if not learn:
            return score
        self._no_new_cat = 0 if new_cluster else self._no_new_cat + 1
        self._sim_sum += sim
        self._sim_count += 1
        self._sim_window = np.concatenate((self._sim_window[1:], [sim]))
        self._gap_window = np.concatenate((self._gap_window[1:], [art.upper - sim]))
        if since_anomaly < self._mask and self._anomaly_sims and sim < self._anomaly_sims[-1]:
            self._anomaly_sims[-1] = sim
        if anomalous:
            self._anomaly_sims.append(sim)
            self._last_anomaly_sim = sim
            self._last_anomaly_i = i
        self._mask_after_cat = new_cluster or mask_after_cat
        if i > self._trend and (since_anomaly == self._mask or i - self._last_update_i >= self._trend // 2):
            self._adapt_vigilance(i)
        return score

    def _adapt_vigilance(self, i: int) -> None:
        art = self._art
        assert art is not None
        upper = min(_UPPER_VIGILANCE_CAP, self._sim_sum / self._sim_count)
        lowest = float(self._sim_window.min())
        lower = art.lower
        if lower <= lowest:
            lower += (lowest - lower) * 0.19
        else:
            step = 0.0
            if i > self._trend * 2:
                gaps = self._gap_window[self._gap_window > 0.05]
                if gaps.size:
                    step = float(np.minimum(gaps, 0.37).mean())
            lower -= max(0.01, step) / 2
            if self._anomaly_sims:
                lower = max(float(np.mean(self._anomaly_sims)), lower)
        art.lower = min(upper, lower)
        art.upper = upper
        self._last_update_i = i
        self._mask_after_cat = True

    def _confidence(self, sim: float, energy: float) -> float:
        art = self._art
        assert art is not None
        sim = min(0.999, sim)
        upper = 1.0 - (1.0 - art.upper) / (1.0 - sim)
        lower = 1.0 - (1.0 - art.lower) / (1.0 - sim)
        score = upper * 0.35 + lower * 0.65 + (1.0 - energy) * 1.5
        return min(1.0, max(0.0, score))
