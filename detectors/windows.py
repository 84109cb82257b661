"""Timers and sliding windows over reading time, each holding bounded state and costing O(1)
per reading: how long a condition has held (:class:`Sustained`), discrete events in a window
(:class:`EventLog`), the minimum (:class:`RollingMin`) or a quantile
(:class:`RollingQuantile`) of a metric over a window, and an exponentially weighted baseline
(:class:`Ewma`).

Constructor arguments are each helper's configuration; everything else it holds is state
(``detectors.state`` saves that, and only that).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from typing import Any


class Sustained:
    """How long a condition has held, in reading time.

    A run starts at the first reading where the condition holds. It ends when the condition
    has been false for at least ``min_break_s`` (0: at the first false reading) or when two
    readings are more than ``max_gap_s`` apart (a dropout: continuity is unknown).
    Readings slightly out of order never make a duration negative.

    >>> s = Sustained(max_gap_s=120.0)
    >>> for t in (0.0, 60.0, 120.0):
    ...     s.update(t, True)
    >>> s.duration_if(180.0, True), s.duration_if(180.0, False), s.duration_if(400.0, True)
    (180.0, 0.0, 0.0)
    """

    __slots__ = ("max_gap_s", "min_break_s", "since", "last_true", "last_ts")

    def __init__(self, max_gap_s: float = math.inf, min_break_s: float = 0.0) -> None:
        self.max_gap_s = max_gap_s
        self.min_break_s = min_break_s
        self.since: float | None = None
        self.last_true: float | None = None
        self.last_ts: float | None = None

    def next_since(self, ts: float, holds: bool) -> float | None:
        """Start of the run after a reading at ``ts`` (``None``: no run), without updating."""
        since = self.since
        if since is not None and self.last_ts is not None and self.last_true is not None:
            dropout = ts - self.last_ts > self.max_gap_s
            if dropout or (not holds and ts - self.last_true >= self.min_break_s):
                since = None
        if holds and since is None:
            since = ts
        return since

    def run_if(self, ts: float, holds: bool) -> tuple[float | None, float]:
        """Start and length of the run after a reading at ``ts``, without updating
        (``(None, 0.0)``: no run)."""
        since = self.next_since(ts, holds)
        return since, 0.0 if since is None else max(0.0, ts - since)

    def duration_if(self, ts: float, holds: bool) -> float:
        """How long the run would be after a reading at ``ts``, without updating."""
        return self.run_if(ts, holds)[1]

    def update(self, ts: float, holds: bool) -> None:
        self.since = self.next_since(ts, holds)
        # The latest times seen (``max`` written out: it runs for every reading).
        if holds:
            last_true = self.last_true
            if last_true is None or ts > last_true:
                self.last_true = ts
        last_ts = self.last_ts
        if last_ts is None or ts > last_ts:
            self.last_ts = ts


class EventLog:
    """Discrete events (a harsh brake, …) in a sliding time window.

    Event readings closer than ``min_gap_s`` to the previous event reading belong to the same
    event (a 2-second brake sampled at 10 Hz is one brake, not twenty).

    >>> log = EventLog(window_s=3600.0, min_gap_s=3.0)
    >>> for t in (0.0, 0.1, 0.2, 600.0, 4000.0):
    ...     log.record(t, True)
    >>> log.count(4000.0), log.count(4001.0, event=True), log.count(4300.0, event=True)
    (2, 2, 2)
    """

    __slots__ = ("window_s", "min_gap_s", "_events", "_last")

    def __init__(self, window_s: float, min_gap_s: float = 0.0, maxlen: int = 1024) -> None:
        self.window_s = window_s
        self.min_gap_s = min_gap_s
        self._events: deque[float] = deque(maxlen=maxlen)
        self._last = -math.inf

    def is_new(self, ts: float) -> bool:
        return abs(ts - self._last) >= self.min_gap_s

    def record(self, ts: float, event: bool) -> None:
        if not event:
            return
        if self.is_new(ts):
            self._events.append(ts)
        self._last = max(self._last, ts)
        cutoff = ts - self.window_s
        while self._events and self._events[0] <= cutoff:
            self._events.popleft()

    def count(self, ts: float, event: bool = False) -> int:
        """Events in ``(ts - window_s, ts]``, counting a reading at ``ts`` if ``event``."""
        cutoff = ts - self.window_s
        n = sum(1 for t in self._events if cutoff < t <= ts)
        return n + 1 if event and self.is_new(ts) else n


class RollingMin:
    """Minimum of a metric over the last ``window_s`` seconds (monotonic deque, O(1)).

    >>> low = RollingMin(window_s=600.0)
    >>> for t, temp in ((0.0, 20.0), (300.0, 21.0), (700.0, 26.0)):
    ...     low.add(t, temp)
    >>> low.min(700.0), low.min(1000.0, extra=19.5)
    (21.0, 19.5)
    """

    __slots__ = ("window_s", "_q")

    def __init__(self, window_s: float, maxlen: int = 4096) -> None:
        self.window_s = window_s
        self._q: deque[tuple[float, float]] = deque(maxlen=maxlen)

    def add(self, ts: float, value: float) -> None:
        q = self._q
        while q and q[-1][1] >= value:
            q.pop()
        q.append((ts, value))
        cutoff = ts - self.window_s
        while q and q[0][0] < cutoff:
            q.popleft()

    def min(self, ts: float, extra: float | None = None) -> float | None:
        """The window's minimum at ``ts``, including ``extra`` (a reading not yet added)."""
        cutoff = ts - self.window_s
        low: float | None = None
        for t, v in self._q:
            if t >= cutoff:
                low = v
                break
        if extra is not None:
            low = extra if low is None else min(low, extra)
        return low


class RollingQuantile:
    """A quantile of a metric over the last ``window_s`` seconds (at most the last ``maxlen``
    readings count): with ``q`` = 0.25, the level the metric has held at least three quarters
    of the time, which neither a noisy reading nor a short spike lifts.

    >>> held = RollingQuantile(window_s=900.0, q=0.25)
    >>> for minute, v in enumerate((4.6, 4.7, 4.2, 4.8, 4.9)):  # one reading dips to 4.2
    ...     held.add(60.0 * minute, v)
    >>> held.quantile(300.0, extra=4.7), held.quantile(300.0, extra=4.7, q=0.5), held.count(300.0)
    (4.6, 4.7, 5)
    >>> held.quantile(2000.0), held.quantile(2000.0, extra=5.0)  # the window has moved on
    (None, 5.0)
    """

    __slots__ = ("window_s", "q", "_q", "_sorted", "_memo")
    _transient = ("_sorted", "_memo")
    """``_sorted``: the window's values in order, kept as readings come and go (a cache: the
    quantiles of a full window without sorting it at every reading); ``_memo``: the last
    :meth:`levels` asked and its answer (a detector asks the same while it judges a reading and
    while it learns it), dropped when a reading comes or goes."""

    def __init__(self, window_s: float, q: float = 0.5, maxlen: int = 256) -> None:
        self.window_s = window_s
        self.q = q
        self._q: deque[tuple[float, float]] = deque(maxlen=maxlen)
        self._sorted: list[float] = []
        self._memo: tuple[float, float | None, tuple[float, ...], int, list[float | None]] | None = None

    def restored(self) -> None:
        """Called by ``detectors.state`` after loading ``_q``: the cache built again."""
        self._sorted = sorted(v for _, v in self._q)
        self._memo = None

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """Pickled without ``_memo``: asking for levels does not change what the window holds."""
        return None, {name: getattr(self, name) for name in self.__slots__ if name != "_memo"}

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        for name, value in state[1].items():
            setattr(self, name, value)
        self._memo = None

    def add(self, ts: float, value: float) -> None:
        self._memo = None
        q, ordered = self._q, self._sorted
        if len(q) == q.maxlen:  # the deque drops its oldest as it takes the new one
            del ordered[bisect_left(ordered, q[0][1])]
        q.append((ts, value))
        insort(ordered, value)
        cutoff = ts - self.window_s
        while q and q[0][0] <= cutoff:
            del ordered[bisect_left(ordered, q.popleft()[1])]

    def _whole(self, ts: float) -> bool:
        """Whether the window ``(ts - window_s, ts]`` holds every reading kept (the usual case:
        ``ts`` is the newest reading's or just after it), so ``_sorted`` is its values."""
        q = self._q
        return not q or (q[0][0] > ts - self.window_s and q[-1][0] <= ts)

    def _values(self, ts: float, extra: float | None) -> list[float]:
        cutoff = ts - self.window_s
        values = [v for t, v in self._q if cutoff < t <= ts]
        if extra is not None:
            values.append(extra)
        return values

    def count(self, ts: float, extra: float | None = None) -> int:
        """How many readings the window ``(ts - window_s, ts]`` holds, with ``extra``."""
        if self._whole(ts):
            return len(self._q) + (extra is not None)
        return len(self._values(ts, extra))

    def quantile(self, ts: float, extra: float | None = None, q: float | None = None) -> float | None:
        """The ``q`` quantile (default: the instance's; nearest rank, rounding down) of the
        window ``(ts - window_s, ts]``, including ``extra`` (a reading at ``ts`` not yet
        added): at least a ``1 - q`` share of the readings is at or above it. ``None`` when
        the window is empty."""
        return self.levels(ts, extra, (self.q if q is None else q,))[1][0]

    def levels(self, ts: float, extra: float | None, qs: tuple[float, ...]) -> tuple[int, list[float | None]]:
        """:meth:`count` and the :meth:`quantile` of each of ``qs``, from the values in order.

        >>> held = RollingQuantile(window_s=900.0, q=0.25)
        >>> for minute, v in enumerate((4.6, 4.7, 4.2, 4.8, 4.9)):
        ...     held.add(60.0 * minute, v)
        >>> held.levels(300.0, 4.7, (0.25, 0.5))
        (6, [4.6, 4.7])
        """
        memo = self._memo
        if memo is not None and memo[0] is ts and memo[1] is extra and memo[2] == qs:  # the very same floats
            return memo[3], list(memo[4])
        n, picked = self._levels(ts, extra, qs)
        self._memo = (ts, extra, qs, n, picked)
        return n, list(picked)

    def _levels(self, ts: float, extra: float | None, qs: tuple[float, ...]) -> tuple[int, list[float | None]]:
        if not self._whole(ts):
            values = sorted(self._values(ts, extra))
            top = len(values) - 1
            return len(values), [values[int(q * top)] if values else None for q in qs]
        ordered = self._sorted
        if extra is None:
            top = len(ordered) - 1
            return len(ordered), [ordered[int(q * top)] if ordered else None for q in qs]
        at = bisect_left(ordered, extra)  # ``extra`` takes this rank among them
        top = len(ordered)
        picked: list[float | None] = []
        for q in qs:
            k = int(q * top)
            picked.append(ordered[k] if k < at else extra if k == at else ordered[k - 1])
        return top + 1, picked


class Ewma:
    """Exponentially weighted mean; the first ``1/alpha`` values get a plain running mean.

    >>> baseline = Ewma(alpha=0.1)
    >>> for v in (2.0, 4.0, 3.0):
    ...     baseline.update(v)
    >>> baseline.n, baseline.mean
    (3, 3.0)
    """

    __slots__ = ("alpha", "n", "mean")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.n = 0
        self.mean = 0.0

    def update(self, value: float) -> None:
        self.n += 1
        self.mean += max(self.alpha, 1.0 / self.n) * (value - self.mean)
