"""``assess_bare`` saves the figures of a quiet finding and nothing else.

``streams.decisions`` asks a detector with ``assess_bare`` when no warning of its risk is open:
a finding below ``open_score`` is then dropped at once, so a quiet one (score 0) may come
without its evidence. Everything else must be ``assess_one``'s very own: the score, severity
and time to loss of every finding, the evidence of every finding that is not quiet — and so
every decision, and every figure of every warning (a resolve quotes a quiet finding's
evidence, which is why a risk with an open warning is asked with ``assess_one``).
"""

from __future__ import annotations

from typing import Any

import pytest
from sim_devices import device_readings, library, one_device_per_scenario

from core.contract import Reading, WarningEvent
from detectors.profiles import build_detectors
from streams.decisions import DeviceMonitor


def readings_of(device: str) -> list[Reading]:
    return device_readings(library(), device)


class _AlwaysFull(DeviceMonitor):
    """A monitor that asks every detector with ``assess_one`` (as before ``assess_bare``)."""

    def _plan(self, x: Any, metrics: tuple[str, ...]) -> Any:
        return [(wants, assess, None, learn, risk) for wants, assess, _, learn, risk in super()._plan(x, metrics)]


@pytest.mark.parametrize("device", one_device_per_scenario())
def test_a_bare_finding_is_the_full_one_but_for_a_quiet_ones_evidence(device: str) -> None:
    kind = library().device(device).kind
    detectors = [d for d in build_detectors(kind) if hasattr(d, "assess_bare")]
    assert detectors, f"the {kind} profile has detectors with assess_bare"
    quiet_bare = 0
    for reading in readings_of(device):
        x = {"ts": reading.ts / 1000, **reading.metrics}
        for detector in detectors:
            if not detector.wants(x):
                continue
            full, bare = detector.assess_one(x), detector.assess_bare(x)  # type: ignore[attr-defined]
            assert (bare.risk, bare.score, bare.severity, bare.time_to_loss_s) == (
                full.risk,
                full.score,
                full.severity,
                full.time_to_loss_s,
            ), (detector.risk, x)
            if bare.evidence != full.evidence:
                assert bare.score == 0.0 and bare.evidence == {}, (detector.risk, x)
                quiet_bare += 1
            detector.learn_one(x)
    assert quiet_bare, "some quiet findings came without their figures: the test compares something"


def both_ways(device: str) -> tuple[DeviceMonitor, DeviceMonitor, list[WarningEvent], list[WarningEvent]]:
    """The device's readings through a monitor as the worker runs it and one that asks every
    detector with ``assess_one``: both monitors and the events each decided."""
    sim = library().device(device)
    bare = DeviceMonitor(sim.tenant, sim.device, sim.kind)
    full = _AlwaysFull(sim.tenant, sim.device, sim.kind)
    got: list[WarningEvent] = []
    expected: list[WarningEvent] = []
    for reading in readings_of(device):
        got += bare.observe(reading)
        expected += full.observe(reading)
    return bare, full, got, expected


@pytest.mark.parametrize("device", one_device_per_scenario())
def test_a_monitor_decides_and_quotes_as_if_it_asked_assess_one_only(device: str) -> None:
    sim = library().device(device)
    bare, full, got, expected = both_ways(device)
    assert got == expected  # every event, evidence and all
    assert bare.to_state() == full.to_state()
    if sim.scenario is not None:
        assert got, "a device with an incident warns: the comparison has something to compare"


@pytest.mark.parametrize("device", ["home-frozen-pipe-05", "home-mould-03"])
def test_a_resolve_quotes_the_figures_of_the_quiet_finding_that_resolves_it(device: str) -> None:
    bare, full, got, expected = both_ways(device)
    resolved = [e for e in got if e.action == "resolve" and e.risk == "freeze_risk"]
    assert resolved and all(e.score < 0.2 and "pipe_temp_c" in e.evidence for e in resolved)
    assert got == expected
