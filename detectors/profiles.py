"""Which detectors watch which kind of device, and with which parameters.

:data:`REGISTRY` maps each risk type of the catalogue (:mod:`core.risks`) to its detector
class. :data:`PROFILES` gives each device kind its ``(risk type, params)`` pairs: every risk
type the catalogue says the kind is watched for, in the catalogue's order; a stuck sensor is
checked on each of the kind's main metrics. :func:`build_detectors` makes fresh detectors for
one device, with parameters laid over the profile's (a tenant's or a device's configuration);
:func:`check_overrides` says whether such parameters are valid configuration and
:func:`explain_parameters` where each effective parameter comes from.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.contract import DEVICE_KINDS
from core.risks import RISK_TYPES, RISKS
from detectors.base import RiskDetector, parameter_names
from detectors.baseline import UnusualReading
from detectors.device import BatteryDrain, SensorStuck
from detectors.equipment import BearingWear, ColdChain
from detectors.feedback import FALSE_ALARMS, FEEDBACK, desensitised
from detectors.home import (
    BurstPipe,
    FireRisk,
    FreezeRisk,
    MouldRisk,
    PowerCut,
    SlowLeak,
    WaterLeak,
)
from detectors.silent import DeviceSilent
from detectors.vehicle import DriverFatigue, HarshBraking, Speeding, VehicleCrash

_DETECTOR_OF: dict[str, type[RiskDetector]] = {
    cls.risk: cls
    for cls in (
        WaterLeak,
        FreezeRisk,
        HarshBraking,
        Speeding,
        DriverFatigue,
        VehicleCrash,
        SlowLeak,
        BurstPipe,
        MouldRisk,
        FireRisk,
        PowerCut,
        BearingWear,
        ColdChain,
        BatteryDrain,
        SensorStuck,
        DeviceSilent,
        UnusualReading,
    )
}

REGISTRY: dict[str, type[RiskDetector]] = {risk: _DETECTOR_OF[risk] for risk in RISK_TYPES}
"""Risk type → detector class, in the catalogue's order (a risk type without a detector fails
here, at import)."""

_STUCK_SENSOR_CHECKS: dict[str, tuple[dict[str, Any], ...]] = {
    "vehicle": ({"metric": "speed_kmh", "ignore_values": (0.0,)},),
    "home": ({"metric": "temp_c"}, {"metric": "pipe_temp_c"}),
    "equipment": ({"metric": "vibration_mm_s", "ignore_values": (0.0,)},),
    "coldchain": ({"metric": "temp_c"},),
}
"""Device kind → one ``SensorStuck`` parameter set per metric checked for a stuck sensor."""

_BASELINED: dict[str, tuple[tuple[str, ...], bool]] = {
    "vehicle": (("rssi_dbm",), False),
    "home": (("rssi_dbm",), True),
    "equipment": (("vibration_mm_s", "current_a", "pressure_kpa", "rssi_dbm"), True),
    "coldchain": (("temp_c", "compressor_on", "rssi_dbm"), True),
}
"""Device kind → the metrics ``UnusualReading`` may open a warning on, and whether also on the
device's readings per hour (it watches every other metric: :data:`_WATCHED`). Measured on the
simulator's quiet devices over ten days (``forewarn eval``'s learned group): what varies with
the weather or with use rather than with the hour — a home's temperatures and humidity (a cold
snap), a bearing's temperature (a pump stopped for a while), a vehicle's driving (a trip at
another hour), a cold-chain door (a busy delivery round) — made a false warning every few
device-days when it could open one, and is only watched; so are accelerations
(the driving rules' events), batteries (their own rule, and never stationary) and a home's
outdoor temperature. A vehicle's readings per hour are not learnt at all: they follow its trips.
Each is one parameter away from opening: ``forewarn detectors set --risk unusual_reading``."""

_WATCHED: dict[str, tuple[str, ...]] = {
    "vehicle": (
        "speed_kmh",
        "accel_long_g",
        "accel_lat_g",
        "impact_g",
        "engine_rpm",
        "coolant_temp_c",
        "battery_v",
        "ignition",
    ),
    "home": (
        "temp_c",
        "outdoor_temp_c",
        "pipe_temp_c",
        "humidity_pct",
        "flow_lpm",
        "co_ppm",
        "mains_v",
        "battery_pct",
    ),
    "equipment": ("bearing_temp_c",),
    "coldchain": ("door_open", "battery_pct"),
}
"""Device kind → the rest of its metrics: *watched* by ``UnusualReading`` — learnt and scored
like the ones above, named in the evidence (``watched_unusual``) when they are unusual, but
never opening a warning alone, for the reasons above. Together with :data:`_BASELINED` every
metric a kind sends has a baseline, but for what is not a measurement of the device's own
state: a vehicle's position (``lat``, ``lon``) and heading (an angle: 359° and 1° are
neighbours), the road's speed limit, and a home's ``water_leak`` and ``smoke`` (alarms that
switch a few times in a device's life: each switch is its own rule's warning, a rate of them
has nothing to learn)."""

_ACTIVE: dict[str, dict[str, Any]] = {"equipment": {"active_metric": "current_a", "active_min": 1.0}}
"""A machine's metrics are learnt while it runs (a stopped pump draws no current)."""

_PARAMS: dict[str, dict[str, tuple[dict[str, Any], ...]]] = {
    "sensor_stuck": _STUCK_SENSOR_CHECKS,
    "unusual_reading": {
        kind: ({"metrics": m, "arrivals": a, "watched": _WATCHED[kind], **_ACTIVE.get(kind, {})},)
        for kind, (m, a) in _BASELINED.items()
    },
}

_PROFILE_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("vehicle", "driver_fatigue"): {"day_advisory": False},
    ("equipment", "bearing_failure"): {"zone_c_rise": 1.1},
    ("home", "freeze_risk"): {"ice_plug_c": 2.5},
    ("coldchain", "coldchain_failure"): {"tolerance_s": 5400.0},
}
"""(device kind, risk type) → parameters the kind's profile sets: a daytime drive warns at the
4-hour rule, not at the 3.5-hour advisory; zone C counts 10 % above the machine's own normal;
a pipe bursts once an ice plug has formed, a chilled load spoils 90 minutes above 8 °C."""

PROFILES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    kind: tuple(
        (risk, params)
        for risk in RISK_TYPES
        if kind in RISKS[risk].kinds
        for params in (_PARAMS[risk][kind] if risk in _PARAMS else (_PROFILE_PARAMS.get((kind, risk), {}),))
    )
    for kind in DEVICE_KINDS
}
"""Device kind → the detectors it runs, as ``(risk type, constructor params)`` pairs.

>>> [risk for risk, _ in PROFILES["vehicle"]]  # doctest: +NORMALIZE_WHITESPACE
['harsh_braking', 'speeding', 'driver_fatigue', 'vehicle_crash', 'battery_drain', 'sensor_stuck', 'device_silent',
 'unusual_reading']
"""

Overrides = Mapping[str, Mapping[str, Any] | None]
"""Risk type → parameters laid over the profile's (``None``: leave that detector out)."""


def _construct(risk: str, cls: type[RiskDetector], params: Mapping[str, Any]) -> RiskDetector:
    """``cls(**params)``, with a list where a tuple is expected (configuration read from JSON)
    made a tuple, and every refusal a :class:`ValueError` naming the risk type."""
    _check_names(risk, cls, params)
    defaults = _defaults(cls)
    args = {
        name: tuple(value) if isinstance(value, list) and isinstance(defaults[name], tuple) else value
        for name, value in params.items()
    }
    try:
        return cls(**args)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{risk}: {exc}") from None


def _check_names(risk: str, cls: type[RiskDetector], params: Mapping[str, Any]) -> None:
    names = parameter_names(cls)
    for name in params:
        if name not in names and name != FALSE_ALARMS:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]}?" if close else f"its parameters: {', '.join(names)}"
            raise ValueError(f"{risk} has no parameter {name!r} ({hint})")


def parameter_defaults(risk: str) -> dict[str, Any]:
    """The constructor defaults of ``risk``'s detector (before any profile sets one).

    >>> parameter_defaults("water_leak")
    {'debounce_s': 0.0}
    """
    return dict(_defaults(REGISTRY[risk]))


def _defaults(cls: type[RiskDetector]) -> dict[str, Any]:
    if cls not in _DEFAULTS:
        _DEFAULTS[cls] = {name: p.default for name, p in inspect.signature(cls).parameters.items()}
    return _DEFAULTS[cls]


_DEFAULTS: dict[type, dict[str, Any]] = {}


def build_detectors(kind: str, overrides: Overrides | None = None) -> list[RiskDetector]:
    """Fresh detectors for one device of ``kind``.

    ``overrides`` maps a risk type to parameters laid over the profile's (for every instance
    of that type), or to ``None`` to leave that detector out; a risk type the profile does not
    have is added with the given parameters. A device's recorded false alarms of a risk
    (``false_alarms``, :mod:`detectors.feedback`) make its detector less eager. An unknown
    kind, risk type or parameter, or a bad value, raises :class:`ValueError`.

    >>> [d.risk for d in build_detectors("coldchain")]
    ['coldchain_failure', 'battery_drain', 'sensor_stuck', 'device_silent', 'unusual_reading']
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
        cls = REGISTRY[name]
        merged = {**params, **(overrides.get(name) or {})}
        _check_names(name, cls, merged)
        try:
            merged = desensitised(name, merged, _defaults(cls))
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        detectors.append(_construct(name, cls, merged))
    return detectors


def check_parameter_names(kind: str, overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """:class:`ValueError` unless ``overrides`` names only risk types devices of ``kind`` are
    watched for and parameters their detectors have (the values are not looked at).

    >>> check_parameter_names("home", {"freeze_risk": {"horizon": 3600}})
    Traceback (most recent call last):
    ...
    ValueError: freeze_risk has no parameter 'horizon' (did you mean horizon_s?)
    """
    if kind not in PROFILES:
        raise ValueError(f"unknown device kind {kind!r}; known kinds: {', '.join(PROFILES)}")
    watched = list(dict.fromkeys(name for name, _ in PROFILES[kind]))
    for risk, params in overrides.items():
        if risk not in RISKS:
            close = difflib.get_close_matches(risk, RISK_TYPES, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(RISK_TYPES)}"
            raise ValueError(f"unknown risk type {risk!r} ({hint})")
        if risk not in watched:
            raise ValueError(f"{kind} devices are not watched for {risk} (they are for {', '.join(watched)})")
        if not isinstance(params, Mapping):
            raise ValueError(f"{risk}: parameters must be a mapping of name to value, got {params!r}")
        _check_names(risk, REGISTRY[risk], params)


def check_overrides(kind: str, overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """:class:`ValueError` unless ``overrides`` is valid configuration for devices of ``kind``:
    parameters (not ``None``) of risk types the kind is watched for, each known to the
    detector and of a value it accepts (the detectors are built to see), and no two detectors
    of a device watching the same.

    >>> check_overrides("home", {"freeze_risk": {"horizon_s": 3 * 3600.0}})
    >>> check_overrides("home", {"battery_drain": {"empty_pct": 15.0}})
    Traceback (most recent call last):
    ...
    ValueError: battery_drain: empty_pct must be < low_pct
    """
    check_parameter_names(kind, overrides)
    names = [d.instance_name for d in build_detectors(kind, overrides)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"two detectors of one device would be the same ({', '.join(twice)})")


@dataclass(frozen=True, slots=True)
class ParameterSetting:
    """One effective parameter of one of a device's detectors, and who set it: ``default``
    (the detector's), ``profile`` (the kind's profile) or the name of a configuration level."""

    detector: str
    risk: str
    parameter: str
    value: Any
    set_by: str


def explain_parameters(
    kind: str, levels: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]]
) -> list[ParameterSetting]:
    """Every parameter of every detector a device of ``kind`` runs with the overrides of
    ``levels`` (``(name, overrides)``, most general first: a later level's parameter wins),
    and which level set it.

    >>> [s for s in explain_parameters("home", [("tenant", {"water_leak": {"debounce_s": 30}})])
    ...  if s.risk == "water_leak"]
    [ParameterSetting(detector='water_leak', risk='water_leak', parameter='debounce_s', value=30, set_by='tenant')]
    """
    merged: dict[str, dict[str, Any]] = {}
    for _, overrides in levels:
        for risk, params in overrides.items():
            merged.setdefault(risk, {}).update(params)
    check_overrides(kind, merged)
    settings: list[ParameterSetting] = []
    for (risk, profile_params), detector in zip(PROFILES[kind], build_detectors(kind, merged), strict=True):
        fed = FEEDBACK.get(risk)
        for name, value in detector._params().items():
            set_by = "profile" if name in profile_params else "default"
            for level, overrides in levels:
                if name in overrides.get(risk, {}):
                    set_by = level
            if fed is not None and fed.parameter == name and merged.get(risk, {}).get(FALSE_ALARMS):
                set_by = f"{set_by} + {merged[risk][FALSE_ALARMS]} false alarm(s)"
            settings.append(ParameterSetting(detector.instance_name, risk, name, value, set_by))
    return settings
