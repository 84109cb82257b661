"""An ensemble of adaptive-resonance detectors that look at a series at several resolutions.

One :class:`~detectors.resonance.AdaptiveResonance` rounds the scaled series to a fixed
number of levels; which anomalies it can see depends on that resolution (too coarse and a
small shift vanishes, too fine and noise opens new categories). :class:`ResonanceEnsemble`
runs one member per resolution in ``levels`` and reports the highest member score, so a
reading is anomalous when it is new at any resolution. Members share every other setting,
so they downsample on the same readings and their scores line up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from detectors.base import Detector
from detectors.resonance import AdaptiveResonance


class ResonanceEnsemble(Detector):
    """The highest score of :class:`AdaptiveResonance` members, one per entry of ``levels``.

    ``input_min``, ``input_max``, ``series_length``, ``default_probation`` and
    ``range_margin`` are passed to every member (see :class:`AdaptiveResonance`); ``levels``
    are the members' resolutions.

    A daily cycle (every 15 minutes) whose swing reverses and flattens from reading 2000 on;
    the series' range and length are given, as NAB gives them:

    >>> import random
    >>> rng = random.Random(2)
    >>> cycle = [10 * math.sin(i * 2 * math.pi / 96) for i in range(3000)]
    >>> values = [50 + c * (1 if i < 2000 else -0.5) + rng.gauss(0, 1) for i, c in enumerate(cycle)]
    >>> detector = ResonanceEnsemble(min(values), max(values), series_length=len(values))
    >>> scores = []
    >>> for i, v in enumerate(values):
    ...     scores.append(detector.score_one({"ts": 900.0 * i, "value": v}))
    ...     detector.learn_one({"ts": 900.0 * i, "value": v})
    >>> [(i, round(score, 2)) for i, score in enumerate(scores) if score > 0.3]
    [(2003, 0.91), (2099, 0.57)]
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
        levels: tuple[int, ...] = (30, 60, 90, 120),
    ) -> None:
        levels = tuple(levels)
        if not levels:
            raise ValueError("levels must name at least one resolution")
        if len(set(levels)) != len(levels):
            raise ValueError(f"levels must not repeat a resolution, got {levels!r}")
        self.input_min = input_min
        self.input_max = input_max
        self.series_length = series_length
        self.default_probation = default_probation
        self.range_margin = range_margin
        self.levels = levels
        self._members = [
            AdaptiveResonance(input_min, input_max, series_length, default_probation, range_margin, levels=n)
            for n in levels
        ]

    def learn_one(self, x: Mapping[str, float]) -> None:
        for member in self._members:
            member.learn_one(x)

    def score_one(self, x: Mapping[str, float]) -> float:
        score = max(member.score_one(x) for member in self._members)
        return score if math.isfinite(score) else 0.0
