"""The simulator's standard library as the monitor tests read it (not a test module)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from core.contract import DEVICE_KINDS, Reading
from simulator.fleet import Fleet, standard_library


def device_readings(fleet: Fleet, device: str) -> list[Reading]:
    """A simulated device's readings as the worker sees them (floats, times in ms)."""
    sim = fleet.device(device)
    return [Reading(int(r.ts_ms), {k: float(v) for k, v in r.metrics.items()}, r.seq) for r in fleet.readings(sim)]


@functools.cache
def library() -> Fleet:
    return standard_library(7)


def one_device_per_scenario() -> list[Any]:
    """One device of each (kind, scenario) of the library, as test parameters."""
    picked: dict[tuple[str, str | None], str] = {}
    for device in library().devices:
        picked.setdefault((device.kind, device.scenario), device.device)
    assert {kind for kind, _ in picked} == set(DEVICE_KINDS)
    return [pytest.param(device, id=f"{kind}-{scenario or 'quiet'}") for (kind, scenario), device in picked.items()]
