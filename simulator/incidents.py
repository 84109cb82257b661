"""Ground truth and the scenario framework the device kinds write their scenarios with.

A scenario is a device kind, the faults injected into its physical model, and the ground
truth an evaluation scores against: an :class:`Incident` with the risk types that count as
warning it, the moment the precursor becomes observable, the moment of loss, and what the
loss costs a Chinese P&C insurer (CNY). Ground truth is read from the simulated physics
(the pipe reaching −1 °C, the leaked litres reaching the damage threshold), never assumed.

Every scenario also has *knobs* (:class:`Knob`): the physical parameters its replicas vary
over plausible ranges (how cold the night gets, how fast a joint leaks, how quickly a
bearing wears …). :meth:`ScenarioSpec.simulate_variant` draws them and runs the physics
forward; the loss lands wherever the physics puts it, so lead times vary as they would in
a real book of policies. :meth:`ScenarioSpec.simulate` is the scenario with its typical,
narrow parameter ranges and an optional requested loss moment (the live demo's).

Each kind module (:mod:`simulator.home`, :mod:`simulator.vehicle`, :mod:`simulator.equipment`,
:mod:`simulator.coldchain`) defines its scenarios and quiet profiles with what is here (the
draw helpers :func:`uniform`, :func:`city`, :func:`loss_target`, :func:`calibrate` included);
:mod:`simulator.scenarios` assembles the library.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.risks import check_risk
from simulator.signals import DEFAULT_INTERVALS, HOUR_S, SampleIntervals, Span, Trace, child, rng_for

# Cities the fleet lives in: (name, lat, lon, winter mean °C).
CITIES: tuple[tuple[str, float, float, float], ...] = (
    ("shanghai", 31.2304, 121.4737, 5.0),
    ("hangzhou", 30.2741, 120.1551, 5.0),
    ("nanjing", 32.0603, 118.7969, 3.0),
    ("wuhan", 30.5928, 114.3055, 4.0),
    ("chengdu", 30.5728, 104.0668, 7.0),
    ("beijing", 39.9042, 116.4074, -3.0),
)


@dataclass(frozen=True, slots=True)
class Incident:
    """Ground truth for one device: a warning for any of ``risks`` between
    ``precursor_start_ms`` and ``loss_at_ms`` counts as warning this incident in time."""

    device: str
    scenario: str
    risks: tuple[str, ...]
    precursor_start_ms: int
    loss_at_ms: int
    loss_type: str
    cost_band_cny: tuple[float, float]
    expected_cost_cny: float
    tenant: str = "demo"
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.risks:
            raise ValueError(f"{self.device}: an incident needs at least one risk type")
        for risk in self.risks:
            check_risk(risk)
        if not self.precursor_start_ms < self.loss_at_ms:
            raise ValueError(
                f"{self.device}: precursor_start_ms {self.precursor_start_ms} must be before "
                f"loss_at_ms {self.loss_at_ms}"
            )
        lo, hi = self.cost_band_cny
        if not 0 < lo <= self.expected_cost_cny <= hi:
            raise ValueError(f"expected_cost_cny {self.expected_cost_cny} outside {self.cost_band_cny}")

    @property
    def warning_window_s(self) -> float:
        """How long the precursor is observable before the loss."""
        return (self.loss_at_ms - self.precursor_start_ms) / 1000.0

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "scenario": self.scenario,
            "risks": list(self.risks),
            "precursor_start_ms": self.precursor_start_ms,
            "loss_at_ms": self.loss_at_ms,
            "loss_type": self.loss_type,
            "cost_band_cny": list(self.cost_band_cny),
            "expected_cost_cny": self.expected_cost_cny,
            "tenant": self.tenant,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Incident:
        lo, hi = doc["cost_band_cny"]
        return cls(
            device=str(doc["device"]),
            scenario=str(doc["scenario"]),
            risks=tuple(doc["risks"]),
            precursor_start_ms=int(doc["precursor_start_ms"]),
            loss_at_ms=int(doc["loss_at_ms"]),
            loss_type=str(doc["loss_type"]),
            cost_band_cny=(float(lo), float(hi)),
            expected_cost_cny=float(doc["expected_cost_cny"]),
            tenant=str(doc.get("tenant", "demo")),
            kind=str(doc.get("kind", "")),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running a scenario produced: the device's trace and the moments that matter.

    ``params`` holds knob values a variant run had to adjust (e.g. a pipe exposure capped so
    the pipe stays warm while the heating works); they replace the drawn values.
    """

    trace: Trace
    precursor_start_ms: int
    loss_at_ms: int
    params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Knob:
    """One physical parameter a scenario's replicas vary, uniform over [low, high]."""

    name: str
    low: float
    high: float
    unit: str
    about: str
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"knob {self.name}: low {self.low} above high {self.high}")

    def at(self, u: float) -> float:
        """The value at quantile ``u`` (0–1) of the range (integers: equal-width bins)."""
        u = min(max(u, 0.0), 1.0)
        if self.integer:
            return float(min(int(self.low) + math.floor(u * (self.high - self.low + 1)), int(self.high)))
        return round(self.low + (self.high - self.low) * u, 3)


ScenarioRun = Callable[[np.random.SeedSequence, Span, SampleIntervals, float, float | None], Outcome]
# a variant run: knobs in, the outcome out, or None when the loss does not happen in the span
VariantRun = Callable[[np.random.SeedSequence, Span, SampleIntervals, float, Mapping[str, float]], Outcome | None]
# a quiet device: an ordinary device of a kind, no incident
QuietRun = Callable[[np.random.SeedSequence, Span, SampleIntervals, float], Trace]
Range = tuple[float, float]

VARIANT_DRAWS = 40  # redraws allowed before a replica gives up (a pipe that never freezes …)
LOSS_MARGIN_S = 3600.0  # a replica's loss lands at least this long before its span ends


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """One entry of the library. ``run(seed, span, intervals, noise, at)`` simulates it;
    ``at`` (0–1) asks for the loss at that fraction of the span, None lets the seed choose."""

    name: str
    kind: str
    title: str
    risks: tuple[str, ...]
    loss_type: str
    cost_band_cny: tuple[float, float]
    natural_duration_s: float
    min_duration_s: float
    run: ScenarioRun
    knobs: tuple[Knob, ...] = ()  # what replicas vary; the first is spread evenly by the fleet
    variant: VariantRun | None = None

    def __post_init__(self) -> None:
        for risk in self.risks:
            check_risk(risk)

    def simulate(
        self,
        seed: np.random.SeedSequence,
        span: Span,
        intervals: SampleIntervals = DEFAULT_INTERVALS,
        noise: float = 1.0,
        at: float | None = None,
    ) -> Outcome:
        if span.duration_s < self.min_duration_s:
            raise ValueError(
                f"scenario {self.name} needs at least {self.min_duration_s / HOUR_S:g} h, "
                f"got {span.duration_s / HOUR_S:g} h"
            )
        if at is not None and not 0 < at < 1:
            raise ValueError(f"at must be a fraction of the span in (0, 1), got {at}")
        out = self.run(seed, span, intervals, noise, at)
        if not span.start_ms <= out.precursor_start_ms < out.loss_at_ms <= span.end_ms:
            raise RuntimeError(f"scenario {self.name}: ground truth outside the span ({out})")
        return out

    def simulate_variant(
        self,
        seed: np.random.SeedSequence,
        span: Span,
        intervals: SampleIntervals = DEFAULT_INTERVALS,
        noise: float = 1.0,
        spread: float | None = None,
    ) -> tuple[Outcome, dict[str, float]]:
        """One replica: the knobs drawn over their plausible ranges, the physics run forward.

        Returns the outcome and the knob values used. ``spread`` (0–1) places the first knob
        at that quantile of its range (a fleet spreads its replicas evenly); None draws it.
        A draw whose loss does not happen inside the span (a mild night and a lagged pipe
        that never freezes) is redrawn: a replica is the scenario *given* that the loss
        happens, at least :data:`LOSS_MARGIN_S` before the span ends. The draws come from
        the device's own seed, so a replica never depends on the rest of the fleet.
        """
        if self.variant is None or not self.knobs:
            raise ValueError(f"scenario {self.name} has no variants")
        if span.duration_s < self.natural_duration_s:
            raise ValueError(
                f"scenario {self.name}'s variants need its natural {self.natural_duration_s / HOUR_S:g} h, "
                f"got {span.duration_s / HOUR_S:g} h"
            )
        if spread is not None and not 0 <= spread < 1:
            raise ValueError(f"spread must be in [0, 1), got {spread}")
        rng = rng_for(child(seed, 11))
        latest_ms = span.end_ms - int(LOSS_MARGIN_S * 1000)
        for attempt in range(VARIANT_DRAWS):
            u = rng.random(len(self.knobs))
            if spread is not None and attempt < VARIANT_DRAWS // 2:
                u[0] = spread  # keep the fleet's placement while the others are redrawn
            knobs = {k.name: k.at(float(x)) for k, x in zip(self.knobs, u, strict=True)}
            out = self.variant(seed, span, intervals, noise, knobs)
            if out is not None and span.start_ms <= out.precursor_start_ms < out.loss_at_ms <= latest_ms:
                return out, {**knobs, **out.params}
        raise RuntimeError(f"scenario {self.name}: no loss inside the span after {VARIANT_DRAWS} draws")

    def incident(self, device: str, outcome: Outcome, seed: np.random.SeedSequence, tenant: str = "demo") -> Incident:
        rng = rng_for(child(seed, 9))
        lo, hi = self.cost_band_cny
        expected = round(lo * (hi / lo) ** float(rng.beta(2.0, 3.0)), -2)
        return Incident(
            device=device,
            scenario=self.name,
            risks=self.risks,
            precursor_start_ms=outcome.precursor_start_ms,
            loss_at_ms=outcome.loss_at_ms,
            loss_type=self.loss_type,
            cost_band_cny=self.cost_band_cny,
            expected_cost_cny=min(max(expected, lo), hi),
            tenant=tenant,
            kind=self.kind,
        )


# --------------------------------------------------------------------- drawing a scenario


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One uniform draw in [lo, hi)."""
    return float(lo + (hi - lo) * rng.random())


def city(rng: np.random.Generator) -> tuple[str, float, float, float]:
    """A city of :data:`CITIES`: (name, lat, lon, winter mean °C)."""
    return CITIES[int(rng.integers(len(CITIES)))]


def loss_target(rng: np.random.Generator, span: Span, at: float | None, lo: float, hi: float) -> float:
    """The loss moment in seconds from the span start: ``at`` or a draw in [lo, hi]."""
    frac = at if at is not None else uniform(rng, lo, hi)
    return frac * span.duration_s


def calibrate(
    simulate: Callable[[float], tuple[Trace, int | None]], lo: float, hi: float, target_ms: int, iters: int = 14
) -> tuple[float, Trace, int]:
    """Find the event time ``x`` in [lo, hi] whose simulated loss lands nearest ``target_ms``.

    The loss time grows with ``x`` (a later failure, a later loss); bisection on that.
    """
    best: tuple[float, float, Trace, int] | None = None
    for _ in range(iters):
        x = (lo + hi) / 2
        trace, loss = simulate(x)
        if loss is not None:
            err = abs(loss - target_ms)
            if best is None or err < best[0]:
                best = (err, x, trace, loss)
        if loss is None or loss > target_ms:
            hi = x
        else:
            lo = x
    if best is None:
        x = lo
        trace, loss = simulate(x)
        if loss is None:
            raise RuntimeError("calibration found no loss in the span")
        return x, trace, loss
    return best[1], best[2], best[3]
