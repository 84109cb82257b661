"""Univariate online detectors for backtests: one metric, read from ``x["value"]``.

River-style (``learn_one`` / ``score_one``), pure and picklable, used by
``evaluation.backtest`` to replay a ``timestamp,value`` series and by the NAB benchmark.
A reading whose value is missing or not finite gets the neutral score and is not learnt.

:data:`UNIVARIATE` maps the names used on the command line to the classes, best first; the
adaptive-resonance detectors live in :mod:`detectors.resonance` and :mod:`detectors.ensemble`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from detectors.base import Detector
from detectors.ensemble import ResonanceEnsemble
from detectors.resonance import AdaptiveResonance

log = logging.getLogger(__name__)

_SQRT2 = math.sqrt(2.0)


def _value(x: Mapping[str, float]) -> float | None:
    v = x.get("value")
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class EwmaZScore(Detector):
    """How many exponentially weighted standard deviations a reading is from the EW mean.

    The mean and variance are exponentially weighted with smoothing factor ``alpha`` (the
    last ~``1/alpha`` readings matter). The score squashes ``|z|`` into [0, 1) as
    ``z² / (z² + z_half²)``: 0 at the mean, 0.5 at ``z_half`` standard deviations, 0.9 at
    three times that. It never saturates, so a threshold can still tell a 20-sigma reading
    from a 200-sigma one. ``min_std`` floors the standard deviation so a perfectly flat
    signal does not turn every tiny wobble into a certainty (with ``min_std=0`` any change
    of a flat signal scores 1). Until ``grace_period`` readings have been learnt the score
    is 0.

    >>> import random
    >>> rng = random.Random(7)
    >>> detector = EwmaZScore(alpha=0.05, grace_period=20)
    >>> for t in range(200):
    ...     detector.learn_one({"ts": 60.0 * t, "value": 20.0 + rng.gauss(0, 0.5)})
    >>> detector.score_one({"ts": 12000.0, "value": 20.2}) < 0.1
    True
    >>> round(detector.score_one({"ts": 12000.0, "value": 35.0}), 2)
    0.99
    """

    def __init__(
        self,
        alpha: float = 0.02,
        grace_period: int = 30,
        z_half: float = 3.0,
        min_std: float = 0.0,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if grace_period < 1:
            raise ValueError(f"grace_period must be at least 1, got {grace_period!r}")
        if not 0.0 < z_half < math.inf:
            raise ValueError(f"z_half must be a positive number, got {z_half!r}")
        if not 0.0 <= min_std < math.inf:
            raise ValueError(f"min_std must be a number >= 0, got {min_std!r}")
        self.alpha = float(alpha)
        self.grace_period = int(grace_period)
        self.z_half = float(z_half)
        self.min_std = float(min_std)
        self.n = 0
        self.mean = 0.0
        self.var = 0.0

    def learn_one(self, x: Mapping[str, float]) -> None:
        v = _value(x)
        if v is None:
            return
        if self.n == 0:
            self.mean = v
        else:
            delta = v - self.mean
            self.mean += self.alpha * delta
            self.var = (1.0 - self.alpha) * (self.var + self.alpha * delta * delta)
        self.n += 1

    def score_one(self, x: Mapping[str, float]) -> float:
        v = _value(x)
        if v is None or self.n < self.grace_period:
            return 0.0
        deviation = abs(v - self.mean)
        std = max(math.sqrt(self.var), self.min_std)
        if std == 0.0:
            return 0.0 if deviation == 0.0 else 1.0
        z = deviation / std
        z2 = z * z
        if math.isinf(z2):
            return 1.0
        return z2 / (z2 + self.z_half * self.z_half)


class WindowedGaussian(Detector):
    """NAB's windowed Gaussian baseline: the Gaussian tail of a reading over a sliding window.

    A Gaussian is fitted (``numpy.mean`` / ``numpy.std``) to the last ``window_size``
    readings; once the window is full it slides forward ``step_size`` readings at a time. The
    score is ``1 - Q(|z|)`` with ``Q`` the Gaussian tail probability — exactly NAB's
    ``windowedGaussian`` detector (defaults 6400 / 100 are NAB's), so a reading at the mean
    scores 0.5 and a far outlier approaches 1. Before ``grace_period`` readings the score is 0.

    >>> import random
    >>> rng = random.Random(3)
    >>> detector = WindowedGaussian(window_size=100, step_size=10)
    >>> for t in range(300):
    ...     detector.learn_one({"ts": 300.0 * t, "value": rng.gauss(50, 2)})
    >>> 0.5 <= detector.score_one({"ts": 90000.0, "value": 50.5}) < 0.9
    True
    >>> detector.score_one({"ts": 90000.0, "value": 80.0}) > 0.9999
    True
    """

    def __init__(self, window_size: int = 6400, step_size: int = 100, grace_period: int = 1) -> None:
        if window_size < 2:
            raise ValueError(f"window_size must be at least 2, got {window_size!r}")
        if not 1 <= step_size <= window_size:
            raise ValueError(f"step_size must be in [1, window_size], got {step_size!r}")
        if not 1 <= grace_period <= window_size:
            raise ValueError(f"grace_period must be in [1, window_size], got {grace_period!r}")
        self.window_size = int(window_size)
        self.step_size = int(step_size)
        self.grace_period = int(grace_period)
        self.n = 0
        self.mean = 0.0
        self.std = 1.0
        self._window = np.empty(0, dtype=np.float64)
        self._filled = 0
        self._pending: list[float] = []

    def learn_one(self, x: Mapping[str, float]) -> None:
        v = _value(x)
        if v is None:
            return
        self.n += 1
        if self._filled < self.window_size:
            if self._window.size == 0:
                self._window = np.empty(self.window_size, dtype=np.float64)
            self._window[self._filled] = v
            self._filled += 1
            self._refit(self._window[: self._filled])
            return
        self._pending.append(v)
        if len(self._pending) == self.step_size:
            self._window = np.concatenate((self._window[self.step_size :], self._pending))
            self._pending = []
            self._refit(self._window)

    def _refit(self, data: np.ndarray) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # absurd readings give inf / nan
            self.mean = float(np.mean(data))
            std = float(np.std(data))
        self.std = std if std != 0.0 else 0.000001

    def score_one(self, x: Mapping[str, float]) -> float:
        v = _value(x)
        if v is None or self.n < self.grace_period:
            return 0.0
        if v < self.mean:  # mirrored as NAB does, to keep its numbers bit for bit
            v = 2 * self.mean - v
        z = (v - self.mean) / self.std
        score = 1.0 - 0.5 * math.erfc(z / _SQRT2)
        return score if 0.0 <= score <= 1.0 else 0.0  # nan once the window holds inf


UNIVARIATE: dict[str, type[Detector]] = {
    "resonance_ensemble": ResonanceEnsemble,
    "adaptive_resonance": AdaptiveResonance,
    "ewma_zscore": EwmaZScore,
    "windowed_gaussian": WindowedGaussian,
}
"""Univariate detectors by the name ``--detector`` / ``score_nab_corpus_with`` take, best
first: ranked by their NAB dev subset score (``benchmarks/nab_dev.py``), which is the order
``forewarn detect --list`` prints."""
