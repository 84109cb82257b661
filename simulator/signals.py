"""What every device model is built from: spans, sample grids, traces, seeds and signal shapes.

A device model (:mod:`simulator.home`, :mod:`simulator.vehicle`, :mod:`simulator.equipment`,
:mod:`simulator.coldchain`) turns a seed, a :class:`Span` and its parameters into a
:class:`Trace`. This module holds what they share: the sample grid and the local clock, the
seeded generators (one named sub-stream per purpose, :func:`child`), slow random processes
and lags (:func:`ar1`, :func:`lag`), and the catalog clipping and firmware rounding every
reported value goes through (:func:`as_reported`).

The local clock is :mod:`core.localtime`'s default zone (``DEFAULT_TIMEZONE``, China standard
time); it sets the daily rhythms (weather, water use, commuting, deliveries).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from core.contract import METRICS
from core.localtime import DEFAULT_TIMEZONE, utc_offset_hours, zone

MINUTE_S = 60.0
HOUR_S = 3600.0
DAY_S = 24 * HOUR_S

SeedLike = int | Sequence[int] | np.random.SeedSequence

# Decimals each metric is reported with (what a real sensor's firmware would send).
DECIMALS: dict[str, int] = {
    "speed_kmh": 1,
    "speed_limit_kmh": 0,
    "accel_long_g": 3,
    "accel_lat_g": 3,
    "impact_g": 2,
    "lat": 6,
    "lon": 6,
    "heading_deg": 1,
    "engine_rpm": 0,
    "coolant_temp_c": 1,
    "battery_v": 2,
    "temp_c": 2,
    "outdoor_temp_c": 1,
    "pipe_temp_c": 2,
    "humidity_pct": 1,
    "flow_lpm": 2,
    "co_ppm": 1,
    "mains_v": 1,
    "vibration_mm_s": 2,
    "bearing_temp_c": 1,
    "current_a": 1,
    "pressure_kpa": 1,
    "battery_pct": 0,
    "rssi_dbm": 0,
}


@dataclass(frozen=True, slots=True)
class Span:
    """The simulated time a device covers: ``start_ms`` (epoch ms) plus ``duration_s``."""

    start_ms: int
    duration_s: float

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(round(self.duration_s * 1000))

    def grid(self, interval_ms: int) -> np.ndarray:
        """Sample times (epoch ms, int64) every ``interval_ms`` from the start to the end."""
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        n = int(self.duration_s * 1000 // interval_ms) + 1
        return self.start_ms + np.arange(n, dtype=np.int64) * interval_ms

    def at(self, offset_s: float) -> int:
        """Epoch ms of a moment given in seconds since the start."""
        return self.start_ms + int(round(offset_s * 1000))


@dataclass(frozen=True, slots=True)
class SampleIntervals:
    """How often each kind of device reports (milliseconds)."""

    vehicle_driving_ms: int = 1_000
    vehicle_parked_ms: int = 300_000
    home_ms: int = 60_000
    equipment_ms: int = 60_000
    coldchain_ms: int = 60_000

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 1000:
                raise ValueError(f"{name} must be at least 1000 ms")


DEFAULT_INTERVALS = SampleIntervals()


@dataclass(frozen=True, slots=True)
class Trace:
    """What one device reports over its span, before transport realism is applied.

    ``ts_ms`` are nominal sample times (int64, strictly increasing). ``metrics`` maps catalog
    names to float arrays of the same length, already clipped to the catalog range and
    rounded; NaN means "not in this reading"; booleans are 0.0 / 1.0. ``state`` holds the
    noise-free physical quantities (pipe temperature, leaked litres …) on the same grid.
    """

    ts_ms: np.ndarray
    metrics: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def offsets_s(self) -> np.ndarray:
        return (self.ts_ms - self.ts_ms[0]) / 1000.0 if len(self) else self.ts_ms.astype(float)

    def first_time(self, mask: np.ndarray) -> int | None:
        """Epoch ms of the first sample where ``mask`` holds, or None."""
        hits = np.flatnonzero(mask)
        return int(self.ts_ms[hits[0]]) if hits.size else None


# ---------------------------------------------------------------------------------- seeds


def rng_for(seed: SeedLike) -> np.random.Generator:
    return np.random.default_rng(seed)


def child(seed: np.random.SeedSequence, key: int) -> np.random.SeedSequence:
    """A named sub-stream of a device's seed (unlike ``spawn``, the same key every time)."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, key))


# -------------------------------------------------------------------------- time and grid


def local_hours(ts_ms: np.ndarray, span: Span) -> np.ndarray:
    """Hour of day (0–24, float) on the local clock for epoch-ms times inside ``span``.

    The clock is :mod:`core.localtime`'s default zone at its UTC offset at the span start
    (the default zone, Asia/Shanghai, keeps one offset all year).
    """
    offset_h = utc_offset_hours(zone(DEFAULT_TIMEZONE), span.start_ms)
    return (ts_ms / 3_600_000.0 + offset_h) % 24.0


def sample_grid(
    seed: SeedLike, span: Span, interval_ms: int
) -> tuple[np.random.Generator, np.ndarray, int, float, np.ndarray, np.ndarray]:
    """A regularly sampled device's generator and grid: the sample times (epoch ms), their
    count, the step and each sample's offset from the span start (s), its local hour."""
    ts = span.grid(interval_ms)
    return rng_for(seed), ts, ts.size, interval_ms / 1000.0, (ts - span.start_ms) / 1000.0, local_hours(ts, span)


# -------------------------------------------------------------------------- signal shapes


def ar1(rng: np.random.Generator, n: int, dt_s: float, tau_s: float, sd: float) -> np.ndarray:
    """A stationary first-order autoregressive process (slow weather, drifting driver)."""
    phi = math.exp(-dt_s / tau_s)
    shocks = rng.standard_normal(n) * sd * math.sqrt(1 - phi * phi)
    y0 = sd * rng.standard_normal()
    out, _ = lfilter([1.0], [1.0, -phi], shocks, zi=[phi * y0])
    return np.asarray(out)


def lag(x: np.ndarray, dt_s: float, tau_s: float, y0: float) -> np.ndarray:
    """First-order lag of ``x`` with time constant ``tau_s`` (thermal mass, sensor lag)."""
    a = math.exp(-dt_s / tau_s)
    out, _ = lfilter([1.0 - a], [1.0, -a], x, zi=[a * y0])
    return np.asarray(out)


def as_reported(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Clip to the catalog's plausible range and round like the firmware does."""
    out: dict[str, np.ndarray] = {}
    for name, arr in values.items():
        metric = METRICS[name]  # KeyError here = a model emitting a name outside the contract
        a = np.asarray(arr, dtype=float)
        if metric.kind == "bool":
            out[name] = np.where(np.isnan(a), np.nan, (a > 0.5).astype(float))
            continue
        a = np.clip(a, metric.low, metric.high)
        if name == "heading_deg":
            a = np.where(a >= 359.95, 0.0, a)
        out[name] = np.round(a, DECIMALS.get(name, 3))
    return out
