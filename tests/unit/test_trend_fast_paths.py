"""The trend's fast paths give the very same figures as the plain ones.

A forecast near a crossing sums the older and the newer part of its window at every reading
(:meth:`Trend.fit_split`, one pass), and a detector may ask for the same window twice at one
reading (the window is kept, ``_memo``). Neither may change a figure: a warning's decision
and its evidence come from them, and a restored device must decide as a live one.
"""

from __future__ import annotations

import copy
import math
import pickle
import random

import pytest

from detectors.device import BatteryDrain
from detectors.state import capture, restore
from detectors.trend import Trend

H = 3600.0


def noisy_trend(points: int, *, window_s: float = 24 * H, max_buckets: int = 96, seed: int = 5) -> Trend:
    """A draining metric sampled every minute or so, with noise and some jitter."""
    rng = random.Random(seed)
    trend = Trend(window_s, max_buckets=max_buckets)
    for i in range(points):
        trend.add(60.0 * i + rng.uniform(-5, 5), 80.0 - i / 90 + rng.gauss(0, 0.3))
    return trend


@pytest.mark.parametrize("points", [3, 40, 1500, 4000])
@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 0.99, 1.5])
def test_fit_split_is_the_two_fits_between(points: int, share: float) -> None:
    trend = noisy_trend(points)
    at = 60.0 * points
    split = at - share * trend.window_s
    for extra in (None, (at, 40.0), (split - 1.0, 40.0), (split, 40.0)):
        older, newer = trend.fit_split(split, at, extra)
        assert older == trend.fit_between(-math.inf, split, at, extra)
        assert newer == trend.fit_between(split, math.inf, at, extra)


def test_fit_split_of_an_empty_trend_or_its_newest_point_only() -> None:
    trend = Trend(H)
    assert trend.fit_split(0.0, 10.0) == (None, None)
    assert trend.fit_split(0.0, 10.0, (10.0, 1.0)) == (None, None)  # one point: no line
    trend.add(0.0, 1.0)
    assert trend.fit_split(5.0, 10.0, (10.0, 3.0)) == (None, None)  # one point on each side


def test_the_kept_window_goes_when_the_trend_changes() -> None:
    trend = noisy_trend(200, window_s=2 * H, max_buckets=24)
    at = 60.0 * 200
    first, mean = trend.fit(at), trend.mean(at)
    assert trend.fit(at) == first and trend.mean(at) == mean  # asked again: the same
    trend.add(at, 60.0)
    fresh = Trend(2 * H, max_buckets=24)
    fresh.__setstate__(trend.__getstate__())  # the same points, never fitted
    assert trend.fit(at) == fresh.fit(at) != first
    assert trend.mean(at) == fresh.mean(at) != mean
    trend.clear()
    assert trend.fit(at) is None and trend.mean(at) is None


def test_the_kept_window_is_no_state() -> None:
    trend = noisy_trend(300)
    at = 60.0 * 300
    trend.fit(at, (at, 50.0))
    assert trend._memo is not None
    assert pickle.loads(pickle.dumps(trend))._memo is None
    assert copy.copy(trend)._memo is None
    battery = BatteryDrain()
    for i in range(300):
        battery.learn_one({"ts": 600.0 * i, "battery_pct": 90.0 - i / 20})
    before = capture(battery, compact=False)  # every float as it is: an exact restore
    battery.assess_one({"ts": 600.0 * 300, "battery_pct": 75.0})  # fits: keeps a window
    assert capture(battery, compact=False) == before
    restored = BatteryDrain()
    assert restore(restored, before)
    x = {"ts": 600.0 * 301, "battery_pct": 74.9}
    assert restored.assess_one(x) == BatteryDrain.assess_one(battery, x)
