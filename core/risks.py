"""The risk catalogue: every risk type forewarn warns about, named once.

Detectors report these names (``detectors/``), the simulator labels its incidents with them
(``simulator/``), the message catalogue is keyed by them (``notifiers/catalog.py``), and the
database stores them in ``warnings.risk``. A test ties the four together.

``loss_under_way`` marks the risks whose warning means the loss is already happening (water
on the floor, smoke): a recurrence of those is never swallowed by a cool-down. A device that
watches for one of them is a *protective* device (a leak or smoke sensor): its silence
(``device_silent``, decided on the stream's clock by ``streams.silence``, not from a reading)
is itself a warning.

``loss_notice`` marks a risk whose warning reports a loss that has happened (a vehicle's
crash): never preventive, so ``forewarn eval`` counts it apart from the warnings it measures,
and a device watching it is not protective for that (the driver is there when it happens).
A warning of a loss under way, critical and happening now (:func:`opens_claim`), opens a
first notice of loss for the insurer's claims desk (``notifiers.claims``) — so does the
escalation of a warning whose evidence says such a loss is happening now (:func:`risk_now`:
water on the floor after a slow-leak warning).

``unusual_reading`` is the one learned risk: a reading unusual for *this* device at this time of
day and week (``detectors.baseline``), for what no physical rule names (a sensor drifting, a
compressor short-cycling, a pump's current creeping up, a connection that comes and goes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.contract import DEVICE_KINDS


@dataclass(frozen=True, slots=True)
class RiskType:
    name: str
    kinds: tuple[str, ...]
    """Device kinds whose profile watches for it."""
    loss_under_way: bool = False
    """The warning means the loss is happening now, not that it may come."""
    loss_notice: bool = False
    """The warning reports a loss that has happened (a crash): never a preventive warning."""


_ALL_KINDS = tuple(sorted(DEVICE_KINDS))

RISKS: dict[str, RiskType] = {
    risk.name: risk
    for risk in (
        RiskType("water_leak", ("home",), loss_under_way=True),
        RiskType("freeze_risk", ("home",)),
        RiskType("harsh_braking", ("vehicle",)),
        RiskType("speeding", ("vehicle",)),
        RiskType("driver_fatigue", ("vehicle",)),
        RiskType("vehicle_crash", ("vehicle",), loss_under_way=True, loss_notice=True),
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
        RiskType("unusual_reading", _ALL_KINDS),
    )
}
"""Risk name → what it is."""

RISK_TYPES: tuple[str, ...] = tuple(RISKS)
"""Every risk type, in the catalogue's order."""


SILENT = "device_silent"
"""The risk of a device that has gone silent: no reading for a multiple of its usual interval,
or an offline status (``streams.silence``)."""


LOSS_NOW_S = 60.0
"""A time to loss below this means the loss is happening now."""


def protective(risks: Iterable[str]) -> bool:
    """Whether a device watching ``risks`` protects against a loss that happens all at once
    (it watches a risk marked ``loss_under_way`` that is not a ``loss_notice``: a leak or smoke
    sensor, not a vehicle's crash detection)."""
    return any(risk in RISKS and RISKS[risk].loss_under_way and not RISKS[risk].loss_notice for risk in risks)


def preventive(risk: str) -> bool:
    """Whether a warning of ``risk`` warns before a loss (every risk but a ``loss_notice``).

    >>> preventive("freeze_risk"), preventive("water_leak"), preventive("vehicle_crash")
    (True, True, False)
    """
    return not (risk in RISKS and RISKS[risk].loss_notice)


def opens_claim(risk: str, severity: str, time_to_loss_s: float | None) -> bool:
    """Whether a warning (opened or escalated) reports a loss under way that the insurer's claims
    desk must hear of at once — a first notice of loss: a risk marked ``loss_under_way``, critical,
    and happening now (time to loss below :data:`LOSS_NOW_S`). A burst pipe's sustained high
    flow (a warning) opens none until it turns critical; smoke, a wet leak sensor or a crash do.

    >>> opens_claim("water_leak", "critical", 0.0), opens_claim("vehicle_crash", "critical", 0.0)
    (True, True)
    >>> opens_claim("burst_pipe", "warning", 0.0), opens_claim("freeze_risk", "critical", 0.0)
    (False, False)
    >>> opens_claim("fire_risk", "critical", None)
    False
    """
    known = RISKS.get(risk)
    return bool(
        known
        and known.loss_under_way
        and severity == "critical"
        and time_to_loss_s is not None
        and time_to_loss_s < LOSS_NOW_S
    )


def risk_now(risk: str, evidence: Mapping[str, Any]) -> str:
    """The risk a warning of ``risk`` reports happening now: the known risk its evidence's
    ``"now"`` names — a finding of a related risk escalated the warning (``streams.decisions``:
    water on the floor after a slow-leak or a power-cut warning) — else ``risk`` itself. A
    message takes its words from it, and :func:`opens_claim` is asked about it.

    >>> risk_now("slow_leak", {"now": "water_leak", "wet_for_s": 0.0}), risk_now("slow_leak", {})
    ('water_leak', 'slow_leak')
    >>> opens_claim(risk_now("power_cut", {"now": "water_leak"}), "critical", 0.0)
    True
    """
    now = evidence.get("now")
    return now if isinstance(now, str) and now in RISKS else risk


def check_risk(name: str) -> str:
    """``name`` if it is a known risk type; :class:`ValueError` naming the known ones otherwise."""
    if name not in RISKS:
        raise ValueError(f"unknown risk type {name!r}; known: {', '.join(RISK_TYPES)}")
    return name
