"""The scenario library and the quiet devices, assembled from the device kinds.

Each kind module (:mod:`simulator.home`, :mod:`simulator.vehicle`, :mod:`simulator.equipment`,
:mod:`simulator.coldchain`) defines its scenarios (what goes wrong on that kind of device,
and when the loss happens: :class:`~simulator.incidents.ScenarioSpec`) and its quiet
profiles (ordinary devices with no incident: everything they trigger is a false warning).
This module gathers them: :data:`SCENARIOS` by name, :data:`QUIET_PROFILES` and
:data:`QUIET_DURATION_S` by kind, and :func:`simulate_quiet` runs a quiet device.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from core.contract import DEVICE_KINDS
from simulator import coldchain, equipment, home, vehicle
from simulator.incidents import QuietRun, ScenarioSpec
from simulator.signals import DEFAULT_INTERVALS, SampleIntervals, Span, Trace

_KINDS: dict[str, ModuleType] = {"vehicle": vehicle, "home": home, "equipment": equipment, "coldchain": coldchain}
assert set(_KINDS) == set(DEVICE_KINDS), "every device kind needs its simulator module"

# The library's order (homes, vehicles, equipment, cold chain) is the order fleets list
# their scenario devices in.
SCENARIOS: dict[str, ScenarioSpec] = {
    spec.name: spec for module in (home, vehicle, equipment, coldchain) for spec in module.SCENARIOS
}

QUIET_PROFILES: dict[str, tuple[tuple[str, QuietRun], ...]] = {
    kind: _KINDS[kind].QUIET_PROFILES for kind in DEVICE_KINDS
}
"""Each kind's quiet profiles, in order: quiet device n of a kind runs profile (n - 1) mod their count."""

QUIET_DURATION_S: dict[str, float] = {kind: _KINDS[kind].QUIET_DURATION_S for kind in DEVICE_KINDS}
"""How long a quiet device of each kind runs in the standard library."""


def quiet_profile(kind: str, ordinal: int) -> str:
    """The name of the quiet profile ``ordinal`` (0-based) of ``kind`` runs."""
    profiles = QUIET_PROFILES[kind]
    return profiles[ordinal % len(profiles)][0]


def simulate_quiet(
    kind: str,
    ordinal: int,
    seed: np.random.SeedSequence,
    span: Span,
    intervals: SampleIntervals = DEFAULT_INTERVALS,
    noise: float = 1.0,
) -> Trace:
    """An ordinary device of ``kind``; ``ordinal`` picks among the kind's quiet profiles."""
    profiles = QUIET_PROFILES[kind]
    _, run = profiles[ordinal % len(profiles)]
    return run(seed, span, intervals, noise)
