"""Trends and forecasts: a time-windowed least-squares :class:`Trend` of one metric, the
:func:`forecast` of when it crosses a threshold (:class:`Forecast`), the settings of a
detector that forecasts from a trend (:class:`TrendForecaster`), and a :class:`HeldForecast`
carried over a step that restarts the trend.

Adding a point and fitting cost O(1); the forecast's levelling-off check is O(window buckets)
and runs only when a crossing is already forecast within the horizon. Memory is bounded by
the number of buckets, however fast a sensor reports.
"""

from __future__ import annotations

import base64
import math
import struct
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any

from detectors.checks import check, count, non_negative, positive
from detectors.physical import PhysicalDetector


@dataclass(slots=True)
class Fit:
    """A least-squares line through a window of ``(t, value)`` points.

    ``slope`` is per second, ``level`` the line's value at time ``at``, ``t_mean`` the mean
    time of the points, ``slope_se`` the slope's standard error. A value, never changed once
    made (not a frozen dataclass only because building one costs three times as much, and
    detectors fit a line at nearly every reading).
    """

    n: int
    span_s: float
    slope: float
    slope_se: float
    level: float
    at: float
    t_mean: float

    @property
    def t_stat(self) -> float:
        if self.slope_se > 0:
            return abs(self.slope) / self.slope_se
        return math.inf if self.slope != 0 else 0.0

    def time_to(self, threshold: float, *, rising: bool) -> float | None:
        """Seconds from ``at`` until the line crosses ``threshold`` going up (``rising``) or
        down; 0 if it is already beyond; ``None`` if it is not heading there."""
        if rising:
            if self.level >= threshold:
                return 0.0
            return (threshold - self.level) / self.slope if self.slope > 0 else None
        if self.level <= threshold:
            return 0.0
        return (self.level - threshold) / -self.slope if self.slope < 0 else None


# A bucket holds the least-squares sums of the points that fell in it, with times relative
# to the bucket's start: [start, last_t, n, su, sv, suu, suv, svv].
_START, _LAST, _N, _SU, _SV, _SUU, _SUV, _SVV = range(8)


def _shifted(b: list[float], d: float) -> tuple[float, float, float, float, float, float]:
    """A bucket's sums with times relative to a reference ``d`` seconds before its start."""
    n, su, sv = b[_N], b[_SU], b[_SV]
    return (n, su + n * d, sv, b[_SUU] + 2 * d * su + n * d * d, b[_SUV] + d * sv, b[_SVV])


def _solve(
    n: float,
    su: float,
    sv: float,
    suu: float,
    suv: float,
    svv: float,
    ref: float,
    at: float,
    first: float,
    last: float,
) -> Fit | None:
    # Runs at nearly every reading: max() is written out as what it returns.
    if n < 2:
        return None
    mean_u, mean_v = su / n, sv / n
    cuu = suu - su * mean_u
    if cuu <= 1e-9 * (suu if suu > 1.0 else 1.0):
        return None
    cuv = suv - su * mean_v
    cvv = svv - sv * mean_v
    slope = cuv / cuu
    rss = cvv - slope * cuv
    if rss < 0.0:
        rss = 0.0
    se = math.sqrt(rss / (n - 2) / cuu) if n > 2 else math.inf
    level = mean_v + slope * (at - ref - mean_u)
    span = last - first
    return Fit(round(n), span if span > 0.0 else 0.0, slope, se, level, at, ref + mean_u)


def _merged(buckets: list[list[float]], limit: int) -> list[list[float]]:
    """``buckets`` in at most ``limit`` buckets (``limit`` >= 2): the newest, still filling,
    as it is, the others merged in runs of consecutive buckets (exact sums; a merged bucket
    leaves the window with its newest point)."""
    if len(buckets) <= limit:
        return buckets
    older, newest = buckets[:-1], buckets[-1]
    size = -(-len(older) // (limit - 1))
    out = []
    for i in range(0, len(older), size):
        run = older[i : i + size]
        start = run[0][_START]
        merged = [start, max(b[_LAST] for b in run), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        for b in run:
            for j, c in enumerate(_shifted(b, b[_START] - start)):
                merged[_N + j] += c
        out.append(merged)
    out.append(newest)
    return out


def _fit_rows(rows: list[list[float]], extra: tuple[float, float] | None, at: float) -> Fit | None:
    """The line through the buckets ``rows`` and the point ``extra``, times relative to the
    first one (:meth:`Trend.fit_between`'s sums: ``_shifted`` inline, in local variables, as
    the forecast sums up to four parts of a window at every reading near a crossing)."""
    if rows:
        ref = rows[0][_START]
    elif extra is not None:
        ref = extra[0]
    else:
        return None
    n = su = sv = suu = suv = svv = 0.0
    first, last = math.inf, -math.inf
    for start, end, bn, bsu, bsv, bsuu, bsuv, bsvv in rows:
        d = start - ref
        n += bn
        su += bsu + bn * d
        sv += bsv
        suu += bsuu + 2 * d * bsu + bn * d * d
        suv += bsuv + d * bsv
        svv += bsvv
        if start < first:
            first = start
        if end > last:
            last = end
    if extra is not None:
        t, v = extra
        u = t - ref
        n, su, sv, suu, suv, svv = n + 1, su + u, sv + v, suu + u * u, suv + u * v, svv + v * v
        first, last = min(first, t), max(last, t)
    if n < 2:
        return None
    return _solve(n, su, sv, suu, suv, svv, ref, at, first, last)


_PACK_COLUMNS = 8

_Window = tuple[tuple[float, float, float, float, float, float], float, float, float]
"""A window's sums (n, su, sv, suu, suv, svv), their reference time, first and last time."""


class Trend:
    """Least-squares trend of one metric over the last ``window_s`` seconds.

    Points are summed into at most ``max_buckets`` time buckets, so memory is bounded however
    fast the sensor reports, and the running sums make adding a point and fitting O(1). The
    fit is exact least squares over every point of the kept buckets; whole buckets leave the
    window. An exact duplicate of the last point is ignored. Saved (:meth:`pack_state`), at
    most ``saved_buckets`` buckets are kept, merging older ones.

    >>> trend = Trend(window_s=3600.0)
    >>> for minute in range(61):
    ...     trend.add(60.0 * minute, 10.0 - minute / 60.0)  # falling 1 unit per hour
    >>> fit = trend.fit(3600.0)
    >>> round(fit.slope * 3600, 3), round(fit.level, 3), round(fit.time_to(0.0, rising=False))
    (-1.0, 9.0, 32400)
    """

    __slots__ = (
        "window_s",
        "max_buckets",
        "saved_buckets",
        "_buckets",
        "_t0",
        "_sums",
        "_last",
        "_skip",
        "_memo",
    )
    _transient = ("_skip", "_memo")
    """Slots that are a cache, not state: never saved (``detectors.state``)."""

    def __init__(self, window_s: float, max_buckets: int = 120, saved_buckets: int = 24) -> None:
        self.window_s = window_s
        self.max_buckets = max_buckets
        self.saved_buckets = max(saved_buckets, 2)
        self._buckets: deque[list[float]] = deque()
        self._t0 = 0.0
        self._sums = [0.0] * 6  # n, su, sv, suu, suv, svv with times relative to _t0
        self._last: tuple[float, float] | None = None
        # The window's sums with its oldest, expired buckets taken out: (cutoff, how many
        # buckets, sums). A trend that takes no readings for a while (water drawn through a
        # pipe) is fitted against an ever later cutoff; this spares re-subtracting the same
        # buckets at every reading. Any change to the buckets or sums drops it.
        self._skip: tuple[float, int, tuple[float, ...]] | None = None
        # The last window summed: ``(at, extra, window)``. A detector may ask for the same
        # window twice at one reading (its line, then its mean when the line is too short to
        # judge). Any change to the buckets or sums drops it.
        self._memo: tuple[float, tuple[float, float] | None, _Window | None] | None = None

    @property
    def resolution_s(self) -> float:
        """How much time one bucket covers (configuration: ``window_s / max_buckets``)."""
        return self.window_s / self.max_buckets

    def clear(self) -> None:
        self._skip = self._memo = None
        self._buckets.clear()
        self._sums = [0.0] * 6
        self._last = None

    def add(self, ts: float, value: float) -> None:
        point = (ts, value)
        if self._last == point:
            return
        buckets = self._buckets
        resolution_s = self.window_s / self.max_buckets  # self.resolution_s, without a call
        bucket = buckets[-1] if buckets else None
        if bucket is not None and ts < bucket[_LAST] - resolution_s:
            return  # far out of order (not clock jitter): it would bend the line
        self._last = point
        self._skip = self._memo = None
        if bucket is not None and ts - bucket[_START] < resolution_s:
            if ts > bucket[_LAST]:
                bucket[_LAST] = ts
        else:
            if bucket is None:
                self._t0 = ts
            bucket = [ts, ts, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            buckets.append(bucket)
        # The sums in local variables, stored back at once (fewer index operations).
        start, _, n, su, sv, suu, suv, svv = bucket
        ul = ts - start
        bucket[_N:] = [n + 1, su + ul, sv + value, suu + ul * ul, suv + ul * value, svv + value * value]
        u = ts - self._t0
        n, su, sv, suu, suv, svv = self._sums
        s = self._sums = [n + 1, su + u, sv + value, suu + u * u, suv + u * value, svv + value * value]
        cutoff = ts - self.window_s
        while len(buckets) > 1 and (buckets[0][_LAST] < cutoff or len(buckets) > self.max_buckets + 1):
            old = buckets.popleft()
            for i, c in enumerate(_shifted(old, old[_START] - self._t0)):
                s[i] -= c
        if ts - self._t0 > 4 * self.window_s:
            self._rebase()

    def _rebase(self) -> None:
        """Re-sum relative to the oldest bucket: keeps the sums small and exact."""
        self._skip = self._memo = None
        if not self._buckets:
            self._sums = [0.0] * 6
            return
        self._t0 = self._buckets[0][_START]
        sums = [0.0] * 6
        for b in self._buckets:
            for i, c in enumerate(_shifted(b, b[_START] - self._t0)):
                sums[i] += c
        self._sums = sums

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """Pickled without its caches (``_skip``, ``_memo``): fitting does not change what a
        trend holds."""
        return None, {name: getattr(self, name) for name in self.__slots__ if name not in self._transient}

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        for name, value in state[1].items():
            setattr(self, name, value)
        self._skip = self._memo = None

    def pack_state(self) -> dict[str, Any] | None:
        """The state as compact plain data (``detectors.state`` saves it so), or ``None`` when
        it does not pack (times beyond 49 days from the oldest bucket, a non-finite sum).

        ``{"t0": oldest bucket's start, "last": [ts, value] or None, "f32": base64}``: per
        bucket its start and length in milliseconds (uint32), its point count (uint32), and
        the means and centred sums of its times and values (float32: mean time, mean value,
        sum of squares of times, of products, of squares of values), column by column, little
        endian. Centred sums keep float32's seven digits where they matter (raw sums of squares
        would lose them to cancellation). More than ``saved_buckets`` buckets are merged (the
        newest is kept as it is) as :func:`_merged` does: at 32 bytes a bucket, 24 of them are
        about 1 KB of JSON. So a restored trend differs from the live one by float32 rounding
        and, when buckets were merged, in when its oldest points leave the window (a merged
        bucket leaves with its newest point: for up to one merged bucket's time, the restored
        window reaches that much further back)."""
        buckets = _merged(list(self._buckets), self.saved_buckets)
        base = buckets[0][_START] if buckets else 0.0
        ints: list[list[int]] = [[], [], []]
        floats: list[list[float]] = [[], [], [], [], []]
        for b in buckets:
            n, su, sv, suu, suv, svv = b[_N:]
            if not n >= 1:
                return None
            mean_u, mean_v = su / n, sv / n
            values = (mean_u, mean_v, suu - su * mean_u, suv - su * mean_v, svv - sv * mean_v)
            for column, value in zip(ints, (1000 * (b[_START] - base), 1000 * (b[_LAST] - b[_START]), n), strict=True):
                if not 0 <= value < 2**32:
                    return None
                column.append(round(value))
            for floats_column, value in zip(floats, values, strict=True):
                if not abs(value) < 3e38:
                    return None
                floats_column.append(value)
        k = len(buckets)
        blob = struct.pack(f"<{3 * k}I{5 * k}f", *(v for c in ints for v in c), *(v for c in floats for v in c))
        last = None if self._last is None else list(self._last)
        return {"t0": base, "last": last, "f32": base64.b64encode(blob).decode("ascii")}

    def unpack_state(self, data: Any) -> None:
        """Take the state :meth:`pack_state` saved (:class:`ValueError` if ``data`` is not
        such). Buckets beyond what this trend holds (``max_buckets``) are merged."""
        try:
            blob = base64.b64decode(data["f32"], validate=True)
            base = float(data["t0"])
            last = data["last"]
            k, rest = divmod(len(blob), 4 * _PACK_COLUMNS)
            values = struct.unpack(f"<{3 * k}I{5 * k}f", blob)
            if rest or not math.isfinite(base):
                raise ValueError(f"{len(blob)} bytes of buckets from {base}")
            saved_last = None if last is None else (float(last[0]), float(last[1]))
        except (KeyError, TypeError, IndexError, struct.error) as exc:
            raise ValueError(f"not a packed trend: {exc}") from None
        columns = [values[i * k : (i + 1) * k] for i in range(_PACK_COLUMNS)]
        buckets: list[list[float]] = []
        for start_ms, span_ms, n, mean_u, mean_v, cuu, cuv, cvv in zip(*columns, strict=True):
            if n < 1:
                raise ValueError("a packed trend bucket without points")
            su, sv = n * mean_u, n * mean_v
            start = base + start_ms / 1000
            sums = [float(n), su, sv, cuu + su * mean_u, cuv + su * mean_v, cvv + sv * mean_v]
            buckets.append([start, start + span_ms / 1000, *sums])
        self._buckets = deque(_merged(buckets, max(self.max_buckets + 1, 2)))
        self._last = saved_last
        self._rebase()

    def restored(self) -> None:
        """After a state of another ``max_buckets`` was loaded (``detectors.state``): merge
        buckets beyond what this trend holds, rather than drop the oldest at the next point."""
        self._skip = self._memo = None
        if len(self._buckets) > self.max_buckets + 1:
            self._buckets = deque(_merged(list(self._buckets), max(self.max_buckets + 1, 2)))
            self._rebase()

    def _window(self, at: float, extra: tuple[float, float] | None) -> _Window | None:
        """The sums of the window ending at ``at`` plus ``extra``: (sums, t0, first, last)."""
        memo = self._memo
        if memo is not None and memo[0] == at and memo[1] == extra:
            return memo[2]
        window = self._sum_window(at, extra)
        self._memo = (at, extra, window)
        return window

    def _sum_window(self, at: float, extra: tuple[float, float] | None) -> _Window | None:
        t0 = self._t0
        cutoff = at - self.window_s
        first = last = math.nan
        skip = self._skip
        if skip is not None and skip[0] <= cutoff:  # those buckets have expired at this cutoff too
            k = skip[1]
            n, su, sv, suu, suv, svv = skip[2]
        else:
            k = 0
            n, su, sv, suu, suv, svv = self._sums
        buckets = self._buckets
        if not k and buckets and buckets[0][_LAST] >= cutoff:  # the usual case: nothing expired
            first, last = buckets[0][_START], buckets[-1][_LAST]
        else:
            for b in islice(buckets, k, None) if k else buckets:
                if b[_LAST] >= cutoff:
                    first, last = b[_START], buckets[-1][_LAST]
                    break
                cn, csu, csv, csuu, csuv, csvv = _shifted(b, b[_START] - t0)
                n, su, sv, suu, suv, svv = n - cn, su - csu, sv - csv, suu - csuu, suv - csuv, svv - csvv
                k += 1
        if k and (skip is None or skip[1] != k):
            self._skip = (cutoff, k, (n, su, sv, suu, suv, svv))
        empty = first != first  # NaN: no bucket in the window
        if empty:
            n = su = sv = suu = suv = svv = 0.0
        if extra is not None and extra != self._last:
            t, v = extra
            if empty:
                t0 = first = last = t
                empty = t != t
            u = t - t0
            n, su, sv, suu, suv, svv = n + 1, su + u, sv + v, suu + u * u, suv + u * v, svv + v * v
            if t < first:  # min() and max(), written out
                first = t
            if t > last:
                last = t
        if empty or n < 0.5:
            return None
        return (n, su, sv, suu, suv, svv), t0, first, last

    def fit(self, at: float, extra: tuple[float, float] | None = None) -> Fit | None:
        """The line through the window ending at ``at`` (plus ``extra``, a point not yet
        added), evaluated at ``at``; ``None`` with fewer than two distinct times."""
        window = self._window(at, extra)
        if window is None:
            return None
        (n, su, sv, suu, suv, svv), t0, first, last = window
        return _solve(n, su, sv, suu, suv, svv, t0, at, first, last)

    def mean(self, at: float, extra: tuple[float, float] | None = None) -> float | None:
        """The mean value over the window ending at ``at`` (plus ``extra``)."""
        window = self._window(at, extra)
        return None if window is None else window[0][2] / window[0][0]

    def fit_between(self, start: float, end: float, at: float, extra: tuple[float, float] | None = None) -> Fit | None:
        """The line through the buckets starting in ``[start, end)`` (and ``extra`` if its
        time is in that range) that are still in the window at ``at``. O(buckets)."""
        cutoff = at - self.window_s
        rows = [b for b in self._buckets if b[_LAST] >= cutoff and start <= b[_START] < end]
        if extra is not None and (extra == self._last or not start <= extra[0] < end):
            extra = None
        return _fit_rows(rows, extra, at)

    def fit_split(
        self, split: float, at: float, extra: tuple[float, float] | None = None
    ) -> tuple[Fit | None, Fit | None]:
        """``fit_between(-inf, split, …)`` and ``fit_between(split, inf, …)``, the window's
        older and newer part, in one pass over the buckets (the very same figures)."""
        cutoff = at - self.window_s
        older: list[list[float]] = []
        newer: list[list[float]] = []
        for b in self._buckets:
            if b[_LAST] >= cutoff:
                (older if b[_START] < split else newer).append(b)
        old_extra = new_extra = None
        if extra is not None and extra != self._last:
            if extra[0] < split:
                old_extra = extra
            else:
                new_extra = extra
        return _fit_rows(older, old_extra, at), _fit_rows(newer, new_extra, at)

    def fit_knee(
        self, at: float, extra: tuple[float, float] | None = None, min_after: int = 2
    ) -> tuple[Fit, float] | None:
        """A metric that held steady and then started to move (a defect's onset): the
        least-squares broken line through the window ending at ``at`` (plus ``extra``), level
        until a knee, then straight. Returns ``(fit, knee)``: ``fit`` is the line after the
        knee (``slope``; ``level`` at ``at``; ``n``, ``span_s`` and ``t_mean`` of the points
        after the knee; ``slope_se`` counting the knee as a third parameter). The knee is the
        start of one of the window's buckets with at least ``min_after`` buckets from it on,
        the one that leaves the least squared error; at the oldest bucket it is the window's
        straight line. ``None`` without enough buckets. O(buckets).

        Why: a line through a window that holds both the steady part and the onset is too
        flat, and a window short enough to hold the onset only is too noisy; the knee lets
        the fit take the steady part as what it is.

        >>> trend = Trend(window_s=12 * 3600.0, max_buckets=12)
        >>> for minute in range(0, 12 * 60, 10):  # level at 1.0, then rising 0.5 an hour
        ...     trend.add(60.0 * minute, 1.0 + 0.5 * max(0.0, minute / 60 - 8))
        >>> fit, knee = trend.fit_knee(12 * 3600.0)
        >>> knee / 3600, round(fit.slope * 3600, 3), round(fit.level, 2)
        (8.0, 0.5, 3.0)
        """
        cutoff = at - self.window_s
        rows = [b for b in self._buckets if b[_LAST] >= cutoff]
        candidates = len(rows) - min_after + 1
        if extra is not None and extra != self._last:
            t, v = extra
            rows.append([t, t, 1.0, 0.0, v, 0.0, 0.0, v * v])
        if candidates < 1:
            return None
        ref = rows[0][_START]
        sums = [  # _shifted(b, b[_START] - ref) of each row, inline (O(buckets) at every reading)
            (n, su + n * d, sv, suu + 2 * d * su + n * d * d, suv + d * sv, svv)
            for start, _, n, su, sv, suu, suv, svv in rows
            for d in (start - ref,)
        ]
        n_all = sum(s[0] for s in sums)
        sv_all = sum(s[2] for s in sums)
        cvv = sum(s[5] for s in sums) - sv_all * sv_all / n_all
        best: tuple[float, int, float, float, float, float, float, float] | None = None
        n = su = suu = suv = sv = 0.0
        for i in range(len(rows) - 1, -1, -1):
            bn, bsu, bsv, bsuu, bsuv, _ = sums[i]
            n, su, sv, suu, suv = n + bn, su + bsu, sv + bsv, suu + bsuu, suv + bsuv
            if i >= candidates:
                continue
            c = rows[i][_START] - ref
            sx, sxx, sxy = su - n * c, suu - 2 * c * su + n * c * c, suv - c * sv
            cxx = sxx - sx * sx / n_all
            if cxx <= 1e-9 * max(1.0, sxx):
                continue
            cxy = sxy - sx * sv_all / n_all
            rss = max(cvv - cxy * cxy / cxx, 0.0)
            if best is None or rss < best[0]:
                best = (rss, i, cxy / cxx, cxx, sx, n, su, c)
        if best is None:
            return None
        rss, i, slope, cxx, sx, n, su, c = best
        se = math.sqrt(rss / (n_all - 3) / cxx) if n_all > 3 else math.inf
        level = (sv_all - slope * sx) / n_all + slope * (at - ref - c)
        knee = ref + c
        last = max(r[_LAST] for r in rows)
        return Fit(int(round(n)), max(0.0, last - knee), slope, se, level, at, ref + su / n), knee


@dataclass(slots=True)
class Forecast:
    """When a trending metric will cross a threshold (a value, never changed once made).

    ``level`` is the best estimate of the metric now (the fitted line, not the noisy reading),
    ``time_to_s`` the seconds until the crossing by the window's line (``None``: not heading
    there, or levelling off short of it), ``settles_at`` the level an exponential approach is
    heading for when the trend is significantly levelling off (Newton's law of cooling), else
    ``None``.
    """

    fit: Fit
    level: float
    time_to_s: float | None
    settles_at: float | None = None
    model: str = "line"
    """What the forecast follows: ``line`` (the window's straight line), ``steepening`` (the
    metric moves faster and faster: the newer part's line), ``levelling`` (an exponential
    approach to ``settles_at``)."""
    slope: float | None = None
    """The model's rate of change now (per second; ``None``: the whole window's line's)."""
    steeper_s: float | None = None
    """``steepening``: the newer part's (earlier) time to the threshold."""

    @property
    def stated_s(self) -> float | None:
        """The time to state (a warning's time to loss): the newer pace's when the metric moves
        faster and faster, else :attr:`time_to_s`. Whether to warn at all is :attr:`time_to_s`'s
        to say: a faster pace may be a passing dip; it sharpens the time, it never opens a
        warning by itself."""
        return self.steeper_s if self.steeper_s is not None else self.time_to_s

    def rate_at(self, value: float) -> float:
        """The model's rate of change (per second) when the metric is at ``value``."""
        slope = self.fit.slope if self.slope is None else self.slope
        if self.model == "levelling" and self.settles_at is not None and self.level != self.settles_at:
            return slope * (value - self.settles_at) / (self.level - self.settles_at)
        return slope


def forecast(
    trend: Trend,
    at: float,
    value: float | None,
    threshold: float,
    *,
    rising: bool,
    min_points: int,
    min_span_s: float,
    min_t_stat: float,
    within_s: float = math.inf,
    z_levelling: float = 3.0,
    z_steepening: float = 4.0,
) -> Forecast | None:
    """Forecast when the trend of ``trend`` (plus the reading ``value`` at ``at``) crosses
    ``threshold`` going up (``rising``) or down. ``None`` before ``min_points`` points over
    ``min_span_s`` seconds; no crossing unless the slope is ``min_t_stat`` standard errors
    away from 0.

    A straight line is wrong both ways for a body exchanging heat with its surroundings
    (Newton's law of cooling, ``dT/dt = -k (T - T_ambient)``). Towards a steady ambient the
    approach is exponential and levels off (a pipe cooling towards a stable room); towards a
    falling ambient (a cold front, a room losing its heating) it goes faster and faster. When
    the line heads for the threshold (a crossing within ``4 * within_s``), the slopes of the
    window's older and newer halves are compared. Newer steeper by more than ``z_steepening``
    standard errors: the line of the newer half (or of the newest quarter, when that is
    steeper than the rest by as much: a change of pace) gives the (earlier) time to state,
    ``steeper_s`` (``steepening``; :attr:`Forecast.stated_s`). Newer flatter by more than
    ``z_levelling``: the approach is exponential
    with a cautious ``k`` (``levelling``): no crossing if it settles short of the threshold;
    if it does not, the straight line's (earlier) time stands — levelling off may cancel a
    warning, never delay one. Else the whole window's line stands.

    >>> trend = Trend(window_s=7200.0)
    >>> for minute in range(90):  # 5 °C, falling 1 °C an hour
    ...     trend.add(60.0 * minute, 5.0 - minute / 60)
    >>> fc = forecast(trend, 5400.0, 3.5, 0.0, rising=False, min_points=8, min_span_s=3600.0,
    ...               min_t_stat=3.0)
    >>> round(fc.level, 2), round(fc.time_to_s / 3600, 2), fc.settles_at
    (3.5, 3.5, None)
    """
    extra = (at, value) if value is not None else None
    fit = trend.fit(at, extra)
    if fit is None or fit.n < min_points or fit.span_s < min_span_s:
        return None
    if fit.t_stat < min_t_stat or fit.slope == 0 or (fit.slope > 0) != rising:
        return Forecast(fit, fit.level, 0.0 if _beyond(fit.level, threshold, rising) else None)
    eta = fit.time_to(threshold, rising=rising)
    if eta is None or eta == 0.0 or eta > 4 * within_s:
        return Forecast(fit, fit.level, eta)
    middle = at - fit.span_s / 2
    old, new = trend.fit_split(middle, at, extra)
    if old is None or new is None or old.n < 3 or new.n < 3:
        return Forecast(fit, fit.level, eta)
    same_way = (old.slope > 0) == rising and (new.slope > 0) == rising and new.slope != 0
    slowing = abs(old.slope) - abs(new.slope)
    spread = math.hypot(old.slope_se, new.slope_se)
    dt = new.t_mean - old.t_mean
    if not same_way or dt <= 0:
        return Forecast(fit, fit.level, eta)
    if -slowing > z_steepening * spread:  # faster and faster: the newer part's line
        quarter = at - fit.span_s / 4
        before, last = trend.fit_split(quarter, at, extra)
        if (
            last is not None
            and before is not None
            and last.n >= 3
            and before.n >= 3
            and abs(last.slope) - abs(before.slope) > z_steepening * math.hypot(last.slope_se, before.slope_se)
            and (last.slope > 0) == rising
        ):
            new = last
        steeper = new.time_to(threshold, rising=rising)
        if steeper is not None and steeper < eta:
            return Forecast(fit, fit.level, eta, None, "steepening", new.slope, steeper)
        return Forecast(fit, fit.level, eta)
    if not slowing > z_levelling * spread:
        return Forecast(fit, fit.level, eta)
    # A cautious rate: the older slope one standard error flatter, the newer one steeper.
    # It settles lower (for a fall) and crosses sooner than the point estimate says.
    k = math.log((abs(old.slope) - old.slope_se) / (abs(new.slope) + new.slope_se)) / dt
    if not k > 0:
        return Forecast(fit, fit.level, eta)
    slope_now = new.slope * math.exp(-k * (at - new.t_mean))
    level = new.level
    settle = level + slope_now / k
    if not math.isfinite(settle) or not _beyond(settle, threshold, rising):
        return Forecast(fit, level, None, settle if math.isfinite(settle) else None, "levelling", slope_now)
    # It will get there all the same: keep the straight line's earlier time (never warn late).
    return Forecast(fit, fit.level, eta, settle, "levelling", slope_now)


def _beyond(value: float, threshold: float, rising: bool) -> bool:
    return value >= threshold if rising else value <= threshold


class TrendForecaster(PhysicalDetector):
    """A detector that forecasts a threshold crossing from the least-squares trend of a
    metric: the settings it checks and hands to :func:`forecast`.

    ``horizon_s`` is how far ahead a crossing counts, ``window_s`` the trend's window; a trend
    counts from ``min_points`` readings over ``min_span_s`` seconds, a slope from
    ``min_t_stat`` standard errors.
    """

    horizon_s: float
    window_s: float
    min_points: int
    min_span_s: float
    min_t_stat: float

    def _trend_settings(
        self, horizon_s: float, window_s: float, min_points: int, min_span_s: float, min_t_stat: float
    ) -> None:
        self.horizon_s = positive("horizon_s", horizon_s)
        self.window_s = positive("window_s", window_s)
        self.min_points = count("min_points", min_points, 3)
        self.min_span_s = positive("min_span_s", min_span_s)
        check(min_span_s <= window_s, "min_span_s must be <= window_s")
        self.min_t_stat = non_negative("min_t_stat", min_t_stat)

    def _forecast_trend(
        self, trend: Trend, ts: float, value: float | None, threshold: float, *, rising: bool
    ) -> Forecast | None:
        """:func:`forecast` of ``trend`` (plus ``value`` at ``ts``) with this detector's
        settings, crossings within ``horizon_s``."""
        return forecast(
            trend,
            ts,
            value,
            threshold,
            rising=rising,
            min_points=self.min_points,
            min_span_s=self.min_span_s,
            min_t_stat=self.min_t_stat,
            within_s=self.horizon_s,
        )


class HeldForecast:
    """A crossing forecast carried over a step that restarts a trend.

    Some events move a metric by a step that is no part of its trend (water drawn through a
    pipe, the door of a cold box opened): the trend restarts after the step, and until the
    new one has formed, the crossing forecast before it stands. ``held`` is ``(crossing
    time, when it was made)``; it lapses ``max_age_s`` after it was made.

    >>> held = HeldForecast(max_age_s=3600.0)
    >>> held.held = (5000.0, 1000.0)
    >>> held.get(4000.0), held.get(5000.0)
    ((5000.0, 1000.0), None)
    """

    __slots__ = ("max_age_s", "held")

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self.held: tuple[float, float] | None = None

    def get(self, ts: float) -> tuple[float, float] | None:
        """The forecast carried at ``ts``, if it has not lapsed."""
        held = self.held
        return None if held is None or ts - held[1] > self.max_age_s else held

    def carry_over(
        self, ts: float, before: Forecast | None, within_s: float, counts: bool = True
    ) -> tuple[float, float] | None:
        """What a restart at ``ts`` carries over: the crossing within ``within_s`` that
        ``before`` (the trend's forecast up to the restart) makes, if it ``counts``; or, when
        no trend had formed since the last restart (``before`` is ``None``), what that one
        carried."""
        if before is None:
            return self.get(ts)
        eta = before.time_to_s
        if eta is None or eta > within_s or not counts:
            return None
        return ts + eta, ts

    def release(self, trend: Trend, ts: float, min_points: int, min_span_s: float) -> None:
        """Drop the carried forecast once the new trend has formed (``min_points`` readings
        over ``min_span_s``) or it has lapsed."""
        if self.held is None:
            return
        fit = trend.fit(ts)
        formed = fit is not None and fit.n >= min_points and fit.span_s >= min_span_s
        if formed or self.get(ts) is None:
            self.held = None
