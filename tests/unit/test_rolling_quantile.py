"""A vibration level held over a window: the quantiles kept in order as readings come and go are
the ones a full sort of the window gives, whatever the order, gaps and repeats of the readings,
and after a save and restore of the detector state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.state import _decode, _encode
from detectors.windows import RollingQuantile

steps = st.lists(
    st.tuples(st.floats(0, 120), st.sampled_from([0.0, 1.0, 2.5, 4.5, 7.1, 11.2]) | st.floats(-50, 50)),
    min_size=0,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    look=st.floats(-30, 200),
    extra=st.none() | st.floats(-60, 60),
    qs=st.lists(st.floats(0, 1), min_size=1, max_size=3),
    restore=st.booleans(),
)
def test_levels_are_those_of_the_window_sorted(
    steps: list[tuple[float, float]], look: float, extra: float | None, qs: list[float], restore: bool
) -> None:
    window_s, maxlen = 300.0, 16
    held = RollingQuantile(window_s, q=0.25, maxlen=maxlen)
    reference = RollingQuantile(window_s, q=0.25, maxlen=maxlen)
    ts = 0.0
    for gap, value in steps:
        ts += gap
        held.add(ts, value)
        reference._q.append((ts, value))  # the plain deque, pruned as ``add`` prunes it
        while reference._q and reference._q[0][0] <= ts - window_s:
            reference._q.popleft()
    if restore:
        held = _decode(_encode(held), RollingQuantile(window_s, q=0.25, maxlen=maxlen))
    at = ts + look
    values = sorted([*(v for t, v in reference._q if at - window_s < t <= at), *([] if extra is None else [extra])])
    expected = [values[int(q * (len(values) - 1))] if values else None for q in qs]
    assert held.levels(at, extra, tuple(qs)) == (len(values), expected)
    assert held.count(at, extra) == len(values)
    assert held.quantile(at, extra, qs[0]) == expected[0]
