"""Seeded fleets of simulated policyholders and devices, with their labelled incidents.

:func:`build_fleet` assembles any mix of scenario devices and quiet devices;
:func:`standard_library` is the evaluation fleet (several replicas of every scenario at its
natural duration, each with its own physical parameters, plus quiet devices of every kind
and profile); :func:`demo_fleet` is the small fleet the two-minute live demo publishes.
A :class:`Fleet` hands out each device's clean reading stream (transport realism —
dropouts, clock jitter, duplicates — applied; the contract-breaking garbage lives only in
:mod:`simulator.wire`) and the ground truth.

Every device draws from its own seed, derived from the fleet seed and the device id, so a
device's stream never changes when other devices are added or removed. (A replica's place
in its scenario's ranges depends on the fleet seed, the scenario and its ordinal only.)
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from core.contract import DEVICE_KINDS, LOCALES, METRICS, check_segment, device_key, telemetry_topic
from simulator.faults import FAULTS
from simulator.incidents import Incident, Outcome, ScenarioSpec
from simulator.scenarios import QUIET_DURATION_S, QUIET_PROFILES, SCENARIOS, quiet_profile, simulate_quiet
from simulator.signals import HOUR_S, SampleIntervals, Span, Trace, child, rng_for

logger = logging.getLogger(__name__)

# 2025-01-15 00:00 China standard time: a winter night, when pipes freeze.
STANDARD_START_MS = 1_736_870_400_000


@dataclass(frozen=True, slots=True)
class SimCustomer:
    """A policyholder: who gets the warning, and in which language."""

    id: str
    name: str
    locale: str  # "zh-CN" or "en"


@dataclass(frozen=True, slots=True)
class SimDevice:
    """A simulated device; ``scenario`` is None for a quiet device (no incident)."""

    tenant: str
    device: str
    kind: str
    customer: str
    scenario: str | None

    @property
    def key(self) -> str:
        return device_key(self.tenant, self.device)

    @property
    def topic(self) -> str:
        return telemetry_topic(self.tenant, self.device)


@dataclass(frozen=True, slots=True)
class SimReading:
    """One reading of one device, as it would be sent (``metrics`` already in the catalog)."""

    device: SimDevice
    ts_ms: int
    seq: int
    metrics: dict[str, float | bool]

    def to_json(self) -> dict[str, object]:
        return {"ts": self.ts_ms, "seq": self.seq, "metrics": self.metrics}


@dataclass(frozen=True, slots=True)
class Realism:
    """What makes the stream look like a real fleet's: noise and transport imperfections.

    ``noise`` scales every sensor's noise (0 = ideal sensors). Dropout gaps (radio loss,
    power blips) start ``dropouts_per_day`` times a day on average, whatever the sample rate
    (a 1 Hz tracker is no likelier to lose its link per hour than a 1/min sensor), and last
    ``dropout_mean_s`` on average (exponential);
    timestamps move by up to ±``jitter_ms``; ``duplicate_rate`` of readings are resent with
    the same ts and seq. ``garbage_rate`` is the share of raw messages that break the
    contract; it is used only by :mod:`simulator.wire`.
    """

    noise: float = 1.0
    dropouts_per_day: float = 1.0
    dropout_mean_s: float = 600.0
    jitter_ms: int = 300
    duplicate_rate: float = 0.002
    garbage_rate: float = 0.003

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "garbage_rate"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")
        if not 0.0 <= self.dropouts_per_day <= 1000:
            raise ValueError(f"dropouts_per_day must be in [0, 1000], got {self.dropouts_per_day}")
        if self.noise < 0 or self.dropout_mean_s <= 0 or self.jitter_ms < 0:
            raise ValueError("noise and jitter_ms must be >= 0, dropout_mean_s > 0")


IDEAL = Realism(noise=0.0, dropouts_per_day=0.0, jitter_ms=0, duplicate_rate=0.0, garbage_rate=0.0)

_ZH_NAMES = (
    "张伟",
    "王芳",
    "李娜",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄强",
    "周杰",
    "吴婷",
    "徐明",
    "孙丽",
    "马超",
    "朱琳",
    "胡斌",
    "郭蕾",
)
_EN_NAMES = (
    "Emma Wilson",
    "James Chen",
    "Olivia Brown",
    "Liam Zhang",
    "Sophia Martin",
    "Noah Li",
    "Ava Thompson",
    "Lucas Wang",
)
_ZH_COMPANIES = (
    "华东冷链物流有限公司",
    "苏州精密泵业有限公司",
    "鲜达冷链运输有限公司",
    "宁波恒力机械有限公司",
    "成都川味食品有限公司",
    "武汉长江水务设备厂",
)
_EN_COMPANIES = ("Riverside Foods Ltd", "Harbour Pumps Co", "Northwind Cold Logistics", "Pearl Delta Machinery")


@dataclass(frozen=True, slots=True)
class _Plan:
    device: SimDevice
    span: Span
    seed: np.random.SeedSequence
    quiet_ordinal: int  # which quiet profile (quiet devices only)
    at: float | None  # where in the span the loss should land (scenario devices only)
    spread: float | None = None  # a replica: where its first knob sits in its range (0–1)


def device_seed(fleet_seed: int, device: str) -> np.random.SeedSequence:
    """The seed of one device: the fleet seed and a stable hash of the device id."""
    digest = hashlib.blake2b(device.encode(), digest_size=8).digest()
    return np.random.SeedSequence([int(fleet_seed), int.from_bytes(digest, "little")])


_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def replica_spread(fleet_seed: int, scenario: str, ordinal: int) -> float:
    """Where replica ``ordinal`` of ``scenario`` sits in its first knob's range (0–1).

    A golden-ratio sequence from a seeded offset: any number of replicas covers the range
    evenly, and replica n's place never depends on how many replicas there are.
    """
    offset = rng_for(device_seed(fleet_seed, f"spread:{scenario}")).random()
    return (offset + ordinal * _GOLDEN) % 1.0


class Fleet:
    """Customers, devices, ground-truth incidents, and each device's reading stream."""

    def __init__(
        self,
        seed: int,
        tenant: str,
        plans: list[_Plan],
        customers: list[SimCustomer],
        intervals: SampleIntervals,
        realism: Realism,
    ) -> None:
        self.seed = seed
        self.tenant = tenant
        self.library = ""
        """Which library this fleet is ("standard": ``standard_library``'s; ``forewarn eval`` runs
        the learned detector's faults beside it)."""
        self.intervals = intervals
        self.realism = realism
        self.customers = customers
        self.devices = [p.device for p in plans]
        self._plans = {p.device.device: p for p in plans}
        self._customers = {c.id: c for c in customers}
        self._traces: dict[str, Trace] = {}
        self._parameters: dict[str, dict[str, float]] = {}
        self.incidents: list[Incident] = []
        for plan in plans:
            if plan.device.scenario is not None:
                spec = scenario_spec(plan.device.scenario)
                outcome: Outcome
                if plan.spread is not None:
                    outcome, knobs = spec.simulate_variant(plan.seed, plan.span, intervals, realism.noise, plan.spread)
                    self._parameters[plan.device.device] = knobs
                else:
                    outcome = spec.simulate(plan.seed, plan.span, intervals, realism.noise, plan.at)
                self._traces[plan.device.device] = outcome.trace
                self.incidents.append(spec.incident(plan.device.device, outcome, plan.seed, tenant))

    # ------------------------------------------------------------------ look-ups

    def __repr__(self) -> str:
        return (
            f"Fleet(seed={self.seed}, tenant={self.tenant!r}, devices={len(self.devices)}, "
            f"incidents={len(self.incidents)})"
        )

    def device(self, device: SimDevice | str) -> SimDevice:
        return self._plan(device).device

    def customer(self, device: SimDevice | str) -> SimCustomer:
        return self._customers[self._plan(device).device.customer]

    def incident(self, device: SimDevice | str) -> Incident | None:
        name = self._plan(device).device.device
        return next((i for i in self.incidents if i.device == name), None)

    def span(self, device: SimDevice | str) -> Span:
        return self._plan(device).span

    def parameters(self, device: SimDevice | str) -> dict[str, float]:
        """A replica's physical parameters (its scenario's knobs, see ``ScenarioSpec.knobs``);
        empty for a scenario device with the typical draws and for a quiet device."""
        return dict(self._parameters.get(self._plan(device).device.device, {}))

    def profile(self, device: SimDevice | str) -> str:
        """What the device simulates: its scenario, or ``quiet:<profile>``."""
        plan = self._plan(device)
        if plan.device.scenario is not None:
            return plan.device.scenario
        return f"quiet:{quiet_profile(plan.device.kind, plan.quiet_ordinal)}"

    def seed_of(self, device: SimDevice | str) -> np.random.SeedSequence:
        """The device's own seed (fleet seed + device id); sub-streams via ``child``."""
        return self._plan(device).seed

    @property
    def start_ms(self) -> int:
        return min(p.span.start_ms for p in self._plans.values())

    @property
    def end_ms(self) -> int:
        return max(p.span.end_ms for p in self._plans.values())

    def _plan(self, device: SimDevice | str) -> _Plan:
        name = device if isinstance(device, str) else device.device
        try:
            return self._plans[name]
        except KeyError:
            raise KeyError(f"no device {name!r} in this fleet") from None

    # ------------------------------------------------------------------ streams

    def trace(self, device: SimDevice | str) -> Trace:
        """The device's sampled physics (clean: no dropouts, jitter or duplicates)."""
        plan = self._plan(device)
        name = plan.device.device
        if name not in self._traces:
            self._traces[name] = simulate_quiet(
                plan.device.kind, plan.quiet_ordinal, plan.seed, plan.span, self.intervals, self.realism.noise
            )
        return self._traces[name]

    def readings(self, device: SimDevice | str, interval_ms: int | None = None) -> Iterator[SimReading]:
        """One device's readings in time order, with dropouts, jitter and duplicates.

        ``interval_ms`` thins the stream to at most one reading per interval (a lighter
        stream for a quick look; it drops short events such as a 2 s harsh brake).
        """
        plan = self._plan(device)
        sim_device = plan.device
        trace = self.trace(sim_device)
        n = len(trace)
        if n == 0:
            return
        r = self.realism
        rng = rng_for(child(plan.seed, 5))
        ts = trace.ts_ms
        keep = np.ones(n, dtype=bool)
        step_s = np.diff(ts, prepend=ts[0]) / 1000.0
        gap_starts = rng.random(n) < r.dropouts_per_day * step_s / 86_400.0
        gap_ms = rng.exponential(r.dropout_mean_s * 1000.0, n)
        for i in np.flatnonzero(gap_starts):
            j = int(np.searchsorted(ts, ts[i] + gap_ms[i]))
            keep[i:j] = False
        if "impact_g" in trace.metrics:  # crash reports are stored and forwarded, never lost
            keep |= ~np.isnan(trace.metrics["impact_g"])
        min_step = int(np.diff(ts).min()) if n > 1 else 1_000_000
        jit = min(r.jitter_ms, max((min_step - 1) // 2, 0))
        offsets = rng.integers(-jit, jit + 1, n) if jit else np.zeros(n, dtype=np.int64)
        duplicate = rng.random(n) < r.duplicate_rate
        stamped = np.maximum(ts + offsets, ts[0])
        columns = [(name, arr.tolist(), METRICS[name].kind == "bool") for name, arr in trace.metrics.items()]
        last_kept = None
        ts_list = stamped.tolist()
        dup_list = duplicate.tolist()
        for k in np.flatnonzero(keep).tolist():
            when = ts_list[k]
            if interval_ms is not None:
                if last_kept is not None and when - last_kept < interval_ms:
                    continue
                last_kept = when
            metrics: dict[str, float | bool] = {}
            for name, values, is_bool in columns:
                v = values[k]
                if v == v:  # not NaN: the metric is in this reading
                    metrics[name] = v > 0.5 if is_bool else v
            reading = SimReading(sim_device, when, k, metrics)
            yield reading
            if dup_list[k]:
                yield reading

    def merged(self, interval_ms: int | None = None) -> Iterator[SimReading]:
        """Every device's readings merged in timestamp order."""
        return heapq.merge(*(self.readings(d, interval_ms) for d in self.devices), key=lambda r: r.ts_ms)

    def count_readings(self) -> int:
        return sum(1 for d in self.devices for _ in self.readings(d))


# ------------------------------------------------------------------------------ building


def _device_id(kind: str, label: str, ordinal: int) -> str:
    return check_segment(f"{kind}-{label.replace('_', '-')}-{ordinal:02d}", "device")


def _customer(seed: np.random.SeedSequence, device: str, kind: str, locale: str | None = None) -> SimCustomer:
    rng = rng_for(child(seed, 3))
    chosen = locale or ("zh-CN" if rng.random() < 0.7 else "en")
    if chosen not in LOCALES:
        raise ValueError(f"locale must be one of {LOCALES}, got {chosen!r}")
    business = kind in ("equipment", "coldchain")
    pool = {
        ("zh-CN", False): _ZH_NAMES,
        ("en", False): _EN_NAMES,
        ("zh-CN", True): _ZH_COMPANIES,
        ("en", True): _EN_COMPANIES,
    }[(chosen, business)]
    return SimCustomer(f"cust-{device}", pool[int(rng.integers(len(pool)))], chosen)


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str
    label: str  # scenario name, or "quiet"
    ordinal: int
    duration_s: float
    at: float | None = None
    locale: str | None = None
    varied: bool = False  # a replica: its scenario's knobs drawn over their plausible ranges


def _assemble(
    seed: int,
    tenant: str,
    start_ms: int,
    entries: Iterable[_Entry],
    intervals: SampleIntervals | None,
    realism: Realism | None,
) -> Fleet:
    check_segment(tenant, "tenant")
    plans: list[_Plan] = []
    customers: list[SimCustomer] = []
    for e in entries:
        if e.kind not in DEVICE_KINDS:
            raise ValueError(f"unknown device kind {e.kind!r}")
        name = _device_id(e.kind, e.label, e.ordinal)
        dseed = device_seed(seed, name)
        customer = _customer(dseed, name, e.kind, e.locale)
        scenario = None if e.label == "quiet" else e.label
        device = SimDevice(tenant, name, e.kind, customer.id, scenario)
        spread = replica_spread(seed, e.label, e.ordinal) if e.varied and scenario else None
        plans.append(_Plan(device, Span(start_ms, e.duration_s), dseed, e.ordinal - 1, e.at, spread))
        customers.append(customer)
    return Fleet(seed, tenant, plans, customers, intervals or SampleIntervals(), realism or Realism())


def build_fleet(
    seed: int = 7,
    *,
    devices: int | None = None,
    scenarios: list[str] | None = None,
    quiet_ratio: float = 0.5,
    start_ms: int,
    duration_s: float,
    tenant: str = "demo",
    intervals: SampleIntervals | None = None,
    realism: Realism | None = None,
) -> Fleet:
    """A fleet over one common span.

    ``scenarios`` (default: every scenario that fits in ``duration_s``) are cycled over the
    incident devices; ``quiet_ratio`` is the share of quiet devices, spread over the kinds.
    With ``devices`` None there is one device per scenario plus the quiet share on top.
    """
    if not 0.0 <= quiet_ratio <= 1.0:
        raise ValueError(f"quiet_ratio must be in [0, 1], got {quiet_ratio}")
    if scenarios is None:
        names = [s.name for s in SCENARIOS.values() if s.min_duration_s <= duration_s]
    else:
        unknown = [s for s in scenarios if s not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
        short = [s for s in scenarios if SCENARIOS[s].min_duration_s > duration_s]
        if short:
            raise ValueError(f"scenarios {short} need a longer duration than {duration_s} s")
        names = list(scenarios)
    if devices is None:
        if quiet_ratio >= 1.0:
            raise ValueError("quiet_ratio 1 needs an explicit number of devices")
        n_incident = len(names)
        n_quiet = round(n_incident * quiet_ratio / (1.0 - quiet_ratio))
    else:
        if devices < 1:
            raise ValueError("devices must be >= 1")
        n_quiet = round(devices * quiet_ratio)
        n_incident = devices - n_quiet
        if n_incident and not names:
            raise ValueError("no scenario fits the duration; use quiet_ratio=1")
    entries: list[_Entry] = []
    for i in range(n_incident):
        name = names[i % len(names)]
        entries.append(_Entry(SCENARIOS[name].kind, name, i // len(names) + 1, duration_s))
    for i in range(n_quiet):
        kind = DEVICE_KINDS[i % len(DEVICE_KINDS)]
        entries.append(_Entry(kind, "quiet", i // len(DEVICE_KINDS) + 1, duration_s))
    return _assemble(seed, tenant, start_ms, entries, intervals, realism)


MAX_REPLICAS = 99  # device ids carry a two-digit ordinal


def scenario_spec(name: str) -> ScenarioSpec:
    """A scenario of the library or a fault no rule names (``simulator.faults.FAULTS``)."""
    return SCENARIOS[name] if name in SCENARIOS else FAULTS[name]


def standard_library(
    seed: int = 7,
    *,
    replicas: int = 5,
    quiet_per_kind: int = 5,
    start_ms: int = STANDARD_START_MS,
    tenant: str = "demo",
    intervals: SampleIntervals | None = None,
    realism: Realism | None = None,
) -> Fleet:
    """The fleet ``forewarn eval`` scores detectors against.

    ``replicas`` devices per scenario (``home-frozen-pipe-01`` …), each at the scenario's
    natural duration with its own seed and its own physical parameters drawn from the
    scenario's plausible ranges (``SCENARIOS[name].knobs``; the first knob spread evenly over
    the replicas), so lead times form a distribution. ``quiet_per_kind`` quiet devices of
    every kind cycle through the kind's quiet profiles (``QUIET_PROFILES``), each drawing its
    own parameters. Devices are independent: ``replicas=2`` gives the first two replicas of
    ``replicas=5`` unchanged.
    """
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"replicas must be in 1..{MAX_REPLICAS}, got {replicas}")
    if not 0 <= quiet_per_kind <= MAX_REPLICAS:
        raise ValueError(f"quiet_per_kind must be in 0..{MAX_REPLICAS}, got {quiet_per_kind}")
    entries = [
        _Entry(s.kind, s.name, r + 1, s.natural_duration_s, varied=True)
        for s in SCENARIOS.values()
        for r in range(replicas)
    ]
    for kind in DEVICE_KINDS:
        for i in range(quiet_per_kind):
            entries.append(_Entry(kind, "quiet", i + 1, QUIET_DURATION_S[kind]))
    fleet = _assemble(seed, tenant, start_ms, entries, intervals, realism)
    fleet.library = "standard"
    return fleet


def fault_library(
    seed: int = 7,
    *,
    replicas: int = 5,
    start_ms: int = STANDARD_START_MS,
    tenant: str = "demo",
    intervals: SampleIntervals | None = None,
    realism: Realism | None = None,
) -> Fleet:
    """The faults no rule names (``simulator.faults``), ``replicas`` devices each
    (``coldchain-sensor-drift-01`` …), at their natural duration: what ``forewarn eval`` scores
    the learned detector against, apart from the standard library. Its devices are new ones,
    each with its own seed (fleet seed + device id), so the standard library is unchanged."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"replicas must be in 1..{MAX_REPLICAS}, got {replicas}")
    entries = [_Entry(s.kind, s.name, r + 1, s.natural_duration_s) for s in FAULTS.values() for r in range(replicas)]
    return _assemble(seed, tenant, start_ms, entries, intervals, realism)


def demo_fleet(
    seed: int,
    start_ms: int,
    duration_s: float,
    *,
    tenant: str = "demo",
    intervals: SampleIntervals | None = None,
    realism: Realism | None = None,
) -> Fleet:
    """The live demo's fleet (made for ~12 simulated hours).

    A home whose pipe freezes (loss at 60 % of the span, at most 8 h in: hours 4–10 of a
    12 h demo), a car braking hard in its first hour, a burst pipe, and a few quiet devices.
    """
    if duration_s < SCENARIOS["frozen_pipe"].min_duration_s:
        raise ValueError(f"the demo needs at least {SCENARIOS['frozen_pipe'].min_duration_s} s")
    d = duration_s
    entries = [
        _Entry("home", "frozen_pipe", 1, d, at=min(0.6 * d, 8 * HOUR_S) / d, locale="zh-CN"),
        _Entry("vehicle", "harsh_braking_trip", 1, d, at=min(0.12 * d, 1.3 * HOUR_S) / d, locale="en"),
        _Entry("home", "burst_pipe", 1, d, at=min(0.35 * d, 4.5 * HOUR_S) / d, locale="zh-CN"),
    ]
    entries += [_Entry(kind, "quiet", 1, d) for kind in DEVICE_KINDS]
    entries.append(_Entry("home", "quiet", 2, d, locale="en"))
    return _assemble(seed, tenant, start_ms, entries, intervals, realism)


__all__ = [
    "IDEAL",
    "MAX_REPLICAS",
    "QUIET_PROFILES",
    "STANDARD_START_MS",
    "Fleet",
    "Realism",
    "SimCustomer",
    "SimDevice",
    "SimReading",
    "build_fleet",
    "demo_fleet",
    "device_seed",
    "fault_library",
    "replica_spread",
    "standard_library",
]
