"""A detector's state as plain, JSON-able data — and back into a freshly built detector.

What is saved is a detector's *state*: every attribute that is not a constructor parameter
(those are its configuration, which comes from the profile and the tenant's or device's
settings at restore time, never from the saved copy) and not its ``metrics``. Values are
encoded recursively:

- ``None``, booleans, integers, strings and finite floats as themselves; lists as lists;
- a non-finite float as ``{"float": "inf"}``, a tuple as ``{"tuple": [...]}``, a dict (string
  keys) as ``{"dict": {...}}``, a deque as ``{"deque": [...], "maxlen": n}``;
- a helper object of :mod:`detectors.windows`, :mod:`detectors.trend` or
  :mod:`detectors.readings` as ``{"type": NAME, "state": {...}}``, NAME from :data:`HELPERS`
  (stable names, not class paths), its state being again what is not a constructor parameter;
  or, for a helper that packs its own state (``pack_state``: a :class:`~detectors.trend.Trend`'s
  buckets, the bulk of a device's state, as packed float32), ``{"type": NAME, "packed": ...}``.
  Both forms load (state saved before a helper packed itself too); a helper whose saved state
  holds more than it keeps now (``restored``: a trend of fewer buckets) adapts it on loading.

:func:`capture` gives ``{"v": state_version, "state": {...}}``. :func:`restore` loads such a
copy into a freshly built detector, whose configuration stays as built: a helper keeps its
new settings and takes the saved state, a deque keeps its new ``maxlen`` (the newest items
kept). The saved state of a detector is used only if it fits — same ``state_version``, the
same state attributes, the same helper types where the detector has helpers — otherwise
nothing is loaded and the detector starts afresh. A changed parameter does not by itself
discard state: what the detectors keep is readings, times and sums, which mean the same under
new settings, and the new settings apply from the next reading (a condition timed under an old
threshold, say, goes on counting until a reading breaks it under the new one).

>>> from detectors.home import WaterLeak
>>> leak = WaterLeak()
>>> leak.learn_one({"ts": 60.0, "water_leak": 1.0})
>>> saved = capture(leak)
>>> saved
{'v': 1, 'state': {'_wet': {'type': 'sustained', 'state': {'since': 60.0, 'last_true': 60.0, 'last_ts': 60.0}}}}
>>> later = WaterLeak(debounce_s=120.0)  # configured since: the sensor must stay wet 2 min
>>> restore(later, saved), later.assess_one({"ts": 200.0, "water_leak": 1.0}).score
(True, 1.0)
"""

from __future__ import annotations

import copy
import math
from collections import deque
from typing import Any

from detectors.base import RiskDetector, parameter_names
from detectors.readings import LastKnown
from detectors.trend import HeldForecast, Trend
from detectors.windows import EventLog, Ewma, RollingMin, RollingQuantile, Sustained

HELPERS: dict[str, type] = {
    "trend": Trend,
    "held_forecast": HeldForecast,
    "sustained": Sustained,
    "event_log": EventLog,
    "rolling_min": RollingMin,
    "rolling_quantile": RollingQuantile,
    "ewma": Ewma,
    "last_known": LastKnown,
}
"""Stable name → helper class a detector may hold in its state. A renamed class keeps its
name here, so state saved before the rename still loads."""

_HELPER_NAME: dict[type, str] = {cls: name for name, cls in HELPERS.items()}


class StateMismatch(ValueError):
    """Saved state that does not fit the detector it is loaded into."""


def _state_names(cls: type) -> tuple[str, ...] | None:
    """A slotted class's state attributes (its slots that are not constructor parameters nor
    named in its ``_transient``: a cache), or ``None`` for a class whose instances keep a
    ``__dict__`` (read per instance)."""
    if cls not in _SLOTTED_STATE:
        names: tuple[str, ...] | None = None
        if all("__slots__" in vars(c) for c in cls.__mro__ if c is not object):
            config = set(parameter_names(cls)) | set(getattr(cls, "_transient", ()))
            slots = [name for c in reversed(cls.__mro__) for name in vars(c).get("__slots__", ())]
            names = tuple(name for name in slots if name not in config)
        _SLOTTED_STATE[cls] = names
    return _SLOTTED_STATE[cls]


_SLOTTED_STATE: dict[type, tuple[str, ...] | None] = {}


def state_names(obj: object) -> tuple[str, ...]:
    """The names of ``obj``'s state: its attributes that are not constructor parameters (and,
    for a detector, not its ``metrics``).

    Read once per class, from the first instance asked about: on Python 3.11 ``vars()`` gives
    an object a dict of its own for good, and every attribute it reads afterwards costs about
    twice as much (a detector reads dozens per reading). So every instance of a detector class
    holds the same attributes, whatever its parameters, set in ``__init__`` (which a restore
    needs anyway: the freshly built detector must hold what was saved);
    ``tests/unit/test_monitor_state.py`` checks it for every detector the profiles build."""
    cls = type(obj)
    names = _state_names(cls)
    if names is None:
        names = _INSTANCE_STATE.get(cls)
        if names is None:
            config = set(parameter_names(cls))
            names = _INSTANCE_STATE[cls] = tuple(n for n in vars(obj) if n not in config and n != "metrics")
    return names


_INSTANCE_STATE: dict[type, tuple[str, ...]] = {}


def _finite_numbers(values: Any) -> bool:
    """Whether ``values`` (a list or tuple) holds only finite numbers, which are plain data as
    they are: the common case (a trend's sums, a window's readings), checked in one C loop."""
    try:
        return math.isfinite(sum(values))  # a NaN or infinity makes the sum one (so may overflow)
    except TypeError:  # not numbers only
        return False


def _rows(values: deque[Any]) -> list[Any] | None:
    """A window's items encoded at C speed when they are all lists (a trend's buckets) or all
    tuples (``(time, value)`` pairs) of finite numbers; else ``None``."""
    if not values:
        return None
    row = type(values[0])
    if row is not list and row is not tuple:
        return None
    for v in values:
        if type(v) is not row:
            return None
    try:
        if not math.isfinite(sum(map(sum, values))):
            return None
    except TypeError:
        return None
    if row is list:
        return list(map(list, values))
    return [{"tuple": list(v)} for v in values]


def _encode(value: Any, compact: bool = True) -> Any:
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else {"float": repr(value)}
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is list:
        return list(value) if _finite_numbers(value) else [_encode(v, compact) for v in value]
    if kind is tuple:
        return {"tuple": list(value) if _finite_numbers(value) else [_encode(v, compact) for v in value]}
    if kind is deque:
        items = list(value) if _finite_numbers(value) else _rows(value) or [_encode(v, compact) for v in value]
        return {"deque": items, "maxlen": value.maxlen}
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise TypeError("only a dict with string keys can be saved as detector state")
        return {"dict": {k: _encode(v, compact) for k, v in value.items()}}
    name = _HELPER_NAME.get(kind)
    if name is None:
        raise TypeError(f"a {kind.__name__} cannot be saved as detector state: add it to detectors.state.HELPERS")
    if compact and hasattr(kind, "pack_state"):
        packed = value.pack_state()
        if packed is not None:
            return {"type": name, "packed": packed}
    return {"type": name, "state": {a: _encode(getattr(value, a), compact) for a in state_names(value)}}


def _decode(data: Any, fresh: Any = None) -> Any:
    """``data`` as a value, shaped by ``fresh`` (the freshly built value it replaces) where the
    configuration lives in the value: a helper's settings, a deque's ``maxlen``."""
    if fresh is not None and (type(fresh) is deque or type(fresh) in _HELPER_NAME):
        return _decode_configured(data, fresh)
    kind = type(data)
    if kind is float or kind is int or kind is str or kind is bool or data is None:
        return data
    if kind is list:
        return list(data) if _finite_numbers(data) else [_decode(v) for v in data]
    if kind is not dict or len(data) != 1:
        raise StateMismatch(f"cannot read {data!r}")
    if "tuple" in data:
        items = data["tuple"]
        return tuple(items) if _finite_numbers(items) else tuple(_decode(v) for v in items)
    if "dict" in data:
        return {str(k): _decode(v) for k, v in data["dict"].items()}
    if "float" in data:
        value = float(data["float"])
        if math.isfinite(value):
            raise StateMismatch(f"{data!r} is not a non-finite float")
        return value
    raise StateMismatch(f"cannot read {data!r}")


def _decode_configured(data: Any, fresh: Any) -> Any:
    """A deque with ``fresh``'s ``maxlen`` (the newest items kept), or a copy of the helper
    ``fresh`` (its settings) with the saved state."""
    if type(data) is not dict:
        raise StateMismatch(f"cannot read {data!r} as a {type(fresh).__name__}")
    if type(fresh) is deque:
        if set(data) != {"deque", "maxlen"}:
            raise StateMismatch(f"expected a deque, got {data!r}")
        return deque([v if type(v) is float else _decode(v) for v in data["deque"]], maxlen=fresh.maxlen)
    name = _HELPER_NAME[type(fresh)]
    if data.get("type") != name:
        raise StateMismatch(f"expected a {name}, got {data.get('type')!r}")
    helper = copy.copy(fresh)
    if set(data) == {"type", "packed"} and hasattr(helper, "unpack_state"):
        helper.unpack_state(data["packed"])
        return helper
    if set(data) != {"type", "state"}:
        raise StateMismatch(f"cannot read {sorted(data)} as a {name}")
    _load(helper, data["state"])
    if hasattr(helper, "restored"):
        helper.restored()
    return helper


def _load(obj: Any, state: Any) -> None:
    names = state_names(obj)
    if not isinstance(state, dict) or set(state) != set(names):
        raise StateMismatch(f"{type(obj).__name__} holds {sorted(names)}, the saved state {sorted(state)}")
    values = {name: _decode(state[name], getattr(obj, name)) for name in names}
    for name, value in values.items():
        setattr(obj, name, value)


def capture(detector: RiskDetector, compact: bool = True) -> dict[str, Any]:
    """``detector``'s state as plain data: ``{"v": state_version, "state": {...}}``; with
    ``compact`` (what the worker saves) helpers that pack themselves do (a trend: float32, its
    buckets merged, so a restore is close to, not bit for bit, the live detector), without it
    every float is saved as it is and a restore gives the very same detector back."""
    state = {a: _encode(getattr(detector, a), compact) for a in state_names(detector)}
    return {"v": detector.state_version, "state": state}


def restore(detector: RiskDetector, saved: Any) -> bool:
    """Load ``saved`` (from :func:`capture`, possibly through JSON) into the freshly built
    ``detector``; ``False``, with the detector left as built, when it does not fit."""
    if not isinstance(saved, dict) or saved.get("v") != detector.state_version:
        return False
    try:
        _load(detector, saved.get("state"))
    except (StateMismatch, KeyError, TypeError, ValueError, AttributeError):
        return False
    return True
