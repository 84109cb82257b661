"""Simulated time for live runs: hours of fleet life in a minute of wall time.

A :class:`CompressedClock` maps wall seconds to simulated epoch milliseconds
(``compression`` simulated seconds per wall second: 720 = 12 simulated hours per wall
minute). For a live run the publisher starts the simulation ``duration`` in the past
(:meth:`CompressedClock.catching_up`), so the simulated clock approaches the wall clock as
the run ends and stays behind it throughout; :func:`paced` releases readings when the
simulated clock reaches them and never before the wall clock has, so the edge never sees a
timestamp in the future.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CompressedClock:
    """Simulated time ``start_ms`` at wall time ``wall_start_s``, running ``compression``× fast."""

    start_ms: int
    compression: float
    wall_start_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.compression > 0:
            raise ValueError(f"compression must be positive, got {self.compression}")

    @classmethod
    def catching_up(cls, now_ms: int, duration_s: float, wall_seconds: float) -> CompressedClock:
        """A run of ``duration_s`` simulated seconds in ``wall_seconds`` starting now, whose
        simulated clock starts ``duration_s`` in the past and ends ``wall_seconds`` behind
        the wall clock: it can never be ahead of it."""
        if duration_s <= 0 or wall_seconds <= 0:
            raise ValueError("duration_s and wall_seconds must be positive")
        return cls(now_ms - int(round(duration_s * 1000)), duration_s / wall_seconds, now_ms / 1000)

    @property
    def sim_hours_per_wall_minute(self) -> float:
        return self.compression / 60.0

    def sim_ms(self, wall_s: float) -> int:
        """The simulated time (epoch ms) at wall time ``wall_s`` (epoch seconds)."""
        return self.start_ms + int((wall_s - self.wall_start_s) * 1000 * self.compression)

    def wall_s(self, sim_ms: int) -> float:
        """The wall time (epoch seconds) at which the simulated clock reaches ``sim_ms``."""
        return self.wall_start_s + (sim_ms - self.start_ms) / 1000 / self.compression


def _due_s(clock: CompressedClock, ts_ms: int) -> float:
    # due when the simulated clock has reached ts AND the wall clock has too
    return max(clock.wall_s(ts_ms), ts_ms / 1000)


def paced(
    items: Iterable[T],
    clock: CompressedClock,
    ts_of: Callable[[T], int],
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[T]:
    """Yield items (in timestamp order) as the compressed clock reaches them.

    An item is never yielded while its timestamp is ahead of the wall clock (``now``, epoch
    seconds), whatever the clock's start and compression.
    """
    for item in items:
        due = _due_s(clock, ts_of(item))
        while (wait := due - now()) > 0:
            sleep(min(wait, 0.5))
        yield item
