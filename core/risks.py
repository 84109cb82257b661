"""The risk catalogue: every risk type forewarn warns about, named once.

Detectors report these names (``detectors/``), the simulator labels its incidents with them
(``simulator/``), the message catalogue is keyed by them (``notifiers/catalog.py``), and the
database stores them in ``warnings.risk``. A test ties the four together.

``loss_under_way`` marks the risks whose warning means the loss is already happening (water
on the floor, smoke): a recurrence of those is never swallowed by a cool-down. A device that
watches for one of them is a *protective* device (a leak or smoke sensor): its silence
(``device_silent``, decided on the stream's clock by ``streams.silence``, not from a reading)
is itself a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.contract import DEVICE_KINDS


@dataclass(frozen=True, slots=True)
class RiskType:
    name: str
    kinds: tuple[str, ...]
    """Device kinds whose profile watches for it."""
    loss_under_way: bool = False
    """The warning means the loss is happening now, not that it may come."""


_ALL_KINDS = tuple(sorted(DEVICE_KINDS))

RISKS: dict[str, RiskType] = {
    risk.name: risk
    for risk in (
        RiskType("water_leak", ("home",), loss_under_way=True),
        RiskType("freeze_risk", ("home",)),
        RiskType("harsh_braking", ("vehicle",)),
        RiskType("speeding", ("vehicle",)),
        RiskType("driver_fatigue", ("vehicle",)),
        RiskType("slow_leak", ("home",)),
        RiskType("burst_pipe", ("home",), loss_under_way=True),
        RiskType("mould_risk", ("home",)),
        RiskType("fire_risk", ("home",), loss_under_way=True),
        RiskType("power_cut", ("home",)),
        RiskType("bearing_failure", ("equipment",)),
        RiskType("coldchain_failure", ("coldchain",)),
        RiskType("battery_drain", _ALL_KINDS),
        RiskType("sensor_stuck", _ALL_KINDS),
        RiskType("device_silent", _ALL_KINDS),
    )
}
"""Risk name → what it is."""

RISK_TYPES: tuple[str, ...] = tuple(RISKS)
"""Every risk type, in the catalogue's order."""


SILENT = "device_silent"
"""The risk of a device that has gone silent: no reading for a multiple of its usual interval,
or an offline status (``streams.silence``)."""


def protective(risks: Iterable[str]) -> bool:
    """Whether a device watching ``risks`` protects against a loss that happens all at once
    (it watches a risk marked ``loss_under_way``: a leak or smoke sensor)."""
    return any(risk in RISKS and RISKS[risk].loss_under_way for risk in risks)


def check_risk(name: str) -> str:
    """``name`` if it is a known risk type; :class:`ValueError` naming the known ones otherwise."""
    if name not in RISKS:
        raise ValueError(f"unknown risk type {name!r}; known: {', '.join(RISK_TYPES)}")
    return name
