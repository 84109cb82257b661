"""The worker's stuck-partition check (streams.watchdog): pure numbers in, partitions out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.watchdog import StallWatch, lag


def test_a_partition_with_records_waiting_and_its_commit_unmoved_is_stuck_after_stall_s() -> None:
    watch: StallWatch[str] = StallWatch(stall_s=30.0)
    assert watch.observe(0.0, {"p": (100, 150)}) == []
    assert watch.observe(29.0, {"p": (100, 180)}) == [], "records keep arriving, but 29 s is not yet 30"
    assert watch.observe(30.0, {"p": (100, 190)}) == ["p"]
    assert watch.waiting_for(30.0, "p") == 30.0


def test_a_commit_that_moves_restarts_the_clock() -> None:
    watch: StallWatch[str] = StallWatch(stall_s=30.0)
    watch.observe(0.0, {"p": (100, 150)})
    watch.observe(20.0, {"p": (101, 150)})  # one record got through
    assert watch.observe(45.0, {"p": (101, 150)}) == []
    assert watch.observe(50.0, {"p": (101, 150)}) == ["p"]


def test_an_idle_partition_is_never_stuck_and_one_that_catches_up_is_forgotten() -> None:
    watch: StallWatch[str] = StallWatch(stall_s=30.0)
    for t in range(0, 300, 5):
        assert watch.observe(float(t), {"idle": (7, 7), "never": (None, 0)}) == []
    watch.observe(0.0, {"p": (0, 5)})
    watch.observe(10.0, {"p": (5, 5)})  # caught up
    assert watch.waiting_for(10.0, "p") == 0.0
    assert watch.observe(20.0, {"p": (5, 9)}) == []  # waiting again, from 20 s
    assert watch.observe(45.0, {"p": (5, 9)}) == []
    assert watch.observe(50.0, {"p": (5, 9)}) == ["p"]


def test_partitions_no_longer_ours_are_dropped_and_forget_starts_afresh() -> None:
    watch: StallWatch[str] = StallWatch(stall_s=10.0)
    watch.observe(0.0, {"a": (0, 3), "b": (0, 3)})
    assert watch.observe(10.0, {"a": (0, 3)}) == ["a"]
    assert watch.waiting_for(10.0, "b") == 0.0
    watch.forget()
    assert watch.observe(15.0, {"a": (0, 3)}) == []


def test_nothing_committed_yet_counts_from_offset_zero() -> None:
    watch: StallWatch[str] = StallWatch(stall_s=10.0)
    watch.observe(0.0, {"p": (None, 4)})
    assert watch.observe(10.0, {"p": (None, 4)}) == ["p"]
    assert lag({"p": (None, 4)}) == 4


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=30))
def test_a_partition_whose_commit_moves_at_every_look_is_never_stuck(steps: list[tuple[int, int]]) -> None:
    watch: StallWatch[str] = StallWatch(stall_s=1.0)
    committed = 0
    for t, (advance, waiting) in enumerate(steps):
        committed += advance + 1
        assert watch.observe(float(t * 10), {"p": (committed, committed + waiting)}) == []
    assert lag({"p": (committed, committed + steps[-1][1])}) == steps[-1][1]
