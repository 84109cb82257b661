"""The worker's own check that its partitions move: records on Kafka that nobody takes.

Faust, after a rebalance, has been seen to leave a partition's commit stuck behind records it
took and never acknowledged, or to deliver nothing more from it (records fetched while its
recovery resumed and sought the partitions; ``streams.app._Recovery`` closes that window, this
stays as the safety net). Nothing in the worker was held, so the progress check (``forewarn
health``: work held and not moved) called it healthy while readings piled up unread. This module decides, from plain
numbers, when a partition is stuck:

- Kafka has records in it beyond the worker's committed offset (its *lag*), and
- that committed offset has not moved for ``stall_s``.

Committed, not merely fetched: a record is committed only once it was stored or scored and its
state kept, so a partition counts as moving only when records really get through, whatever it
is that stopped them (the fetcher, a paused partition, an agent's queue). A worker waiting on
a dependency holds its records and commits nothing either; the caller tells that case apart
(it holds records) and leaves it to the outage handling.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_P = TypeVar("_P", bound=Hashable)

EXIT_STUCK = 3
"""The worker's exit code when its partitions stayed stuck after it resumed them: a supervisor
(``forewarn up``, compose's ``restart``) starts it again; nothing acknowledged is lost, and
what it had taken is read again."""


@dataclass
class StallWatch(Generic[_P]):
    """Which partitions have had records waiting, and their committed offset unmoved, for
    ``stall_s``. Feed it :meth:`observe` every few seconds."""

    stall_s: float = 30.0
    _since: dict[_P, tuple[int, float]] = field(default_factory=dict)

    def observe(self, now: float, offsets: Mapping[_P, tuple[int | None, int]]) -> list[_P]:
        """``offsets``: partition → (committed offset, or ``None`` when nothing was committed
        yet; end offset: the offset Kafka gives its next record). The partitions stuck, in order.

        >>> watch = StallWatch(stall_s=30.0)
        >>> watch.observe(0.0, {"r-0": (10, 12), "r-1": (5, 5)})
        []
        >>> watch.observe(31.0, {"r-0": (10, 14), "r-1": (5, 9)})  # r-1 only started waiting
        ['r-0']
        >>> watch.observe(40.0, {"r-0": (14, 14), "r-1": (5, 9)})
        []
        """
        stuck = []
        for part, (committed, end) in offsets.items():
            start = committed if committed is not None else 0
            if end <= start:  # nothing waiting: moving, or idle
                self._since.pop(part, None)
                continue
            seen = self._since.get(part)
            if seen is None or seen[0] != start:  # just began waiting, or moved since
                self._since[part] = (start, now)
            elif now - seen[1] >= self.stall_s:
                stuck.append(part)
        for part in set(self._since) - set(offsets):  # no longer ours
            del self._since[part]
        return stuck

    def waiting_for(self, now: float, part: _P) -> float:
        """How long ``part`` has had records waiting with its committed offset unmoved (0: not)."""
        seen = self._since.get(part)
        return now - seen[1] if seen is not None else 0.0

    def forget(self) -> None:
        """Start afresh (after a rebalance: offsets and owners changed)."""
        self._since.clear()


def lag(offsets: Mapping[_P, tuple[int | None, int]]) -> int:
    """Records on Kafka beyond the committed offsets, over all ``offsets``.

    >>> lag({"r-0": (10, 12), "r-1": (None, 3), "r-2": (7, 7)})
    5
    """
    return sum(max(0, end - (committed or 0)) for committed, end in offsets.values())
