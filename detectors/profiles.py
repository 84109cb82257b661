"""Which detectors watch which kind of device, and with which parameters.

:data:`REGISTRY` maps each risk type (the name the simulator labels scenarios with and the
notifier templates are keyed by) to its detector class; :data:`RISK_TYPES` lists them.
:data:`PROFILES` gives each device kind its ``(risk type, params)`` pairs; every kind also
watches its battery and checks its main metric for a stuck sensor. :func:`build_detectors`
makes fresh detectors for one device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.base import RiskDetector
from detectors.device import BatteryDrain, SensorStuck
from detectors.equipment import BearingWear, ColdChain
from detectors.home import (
    BurstPipe,
    FireRisk,
    FreezeRisk,
    MouldRisk,
    PowerCut,
    SlowLeak,
    WaterLeak,
)
from detectors.vehicle import DriverFatigue, HarshBraking, Speeding

REGISTRY: dict[str, type[RiskDetector]] = {
    cls.risk: cls
    for cls in (
        WaterLeak,
        FreezeRisk,
        HarshBraking,
        Speeding,
        DriverFatigue,
        SlowLeak,
        BurstPipe,
        MouldRisk,
        FireRisk,
        PowerCut,
        BearingWear,
        ColdChain,
        BatteryDrain,
        SensorStuck,
    )
}
"""Risk type → detector class."""

RISK_TYPES: tuple[str, ...] = tuple(REGISTRY)
"""Every risk type a detector can report."""

PROFILES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "vehicle": (
        ("harsh_braking", {}),
        ("speeding", {}),
        ("driver_fatigue", {}),
        ("battery_drain", {}),
        ("sensor_stuck", {"metric": "speed_kmh", "ignore_values": (0.0,)}),
    ),
    "home": (
        ("water_leak", {}),
        ("freeze_risk", {}),
        ("slow_leak", {}),
        ("burst_pipe", {}),
        ("mould_risk", {}),
        ("fire_risk", {}),
        ("power_cut", {}),
        ("battery_drain", {}),
        ("sensor_stuck", {"metric": "temp_c"}),
        ("sensor_stuck", {"metric": "pipe_temp_c"}),
    ),
    "equipment": (
        ("bearing_failure", {}),
        ("battery_drain", {}),
        ("sensor_stuck", {"metric": "vibration_mm_s", "ignore_values": (0.0,)}),
    ),
    "coldchain": (
        ("coldchain_failure", {}),
        ("battery_drain", {}),
        ("sensor_stuck", {"metric": "temp_c"}),
    ),
}
"""Device kind → the detectors it runs, as ``(risk type, constructor params)`` pairs."""


def build_detectors(kind: str, overrides: Mapping[str, Mapping[str, Any] | None] | None = None) -> list[RiskDetector]:
    """Fresh detectors for one device of ``kind``.

    ``overrides`` maps a risk type to parameters laid over the profile's (for every instance
    of that type), or to ``None`` to leave that detector out; a risk type the profile does not
    have is added with the given parameters. An unknown kind, risk type or parameter raises
    :class:`ValueError`.

    >>> [d.risk for d in build_detectors("coldchain")]
    ['coldchain_failure', 'battery_drain', 'sensor_stuck']
    >>> freeze = build_detectors("home", {"freeze_risk": {"horizon_s": 3 * 3600.0}})[1]
    >>> freeze.risk, freeze.horizon_s
    ('freeze_risk', 10800.0)
    """
    if kind not in PROFILES:
        raise ValueError(f"unknown device kind {kind!r}; known kinds: {', '.join(PROFILES)}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown risk type(s) {', '.join(unknown)} in overrides; known: {', '.join(RISK_TYPES)}")
    plan = list(PROFILES[kind])
    present = {name for name, _ in plan}
    plan += [(name, {}) for name in overrides if name not in present]
    detectors: list[RiskDetector] = []
    for name, params in plan:
        if name in overrides and overrides[name] is None:
            continue
        merged = {**params, **(overrides.get(name) or {})}
        try:
            detectors.append(REGISTRY[name](**merged))
        except TypeError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return detectors
