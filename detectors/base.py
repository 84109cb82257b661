"""What a detector is: a small river-style class, pure and picklable.

``learn_one(x)`` updates state, ``score_one(x)`` returns how anomalous ``x`` is in [0, 1]
(higher = riskier) without learning. ``x`` is a mapping of metric name → float with the
reading's time under ``"ts"`` in epoch **seconds** (a detector has no clock of its own).
Booleans arrive as 0.0 / 1.0. A metric a reading does not carry is simply absent.

A :class:`RiskDetector` also explains itself: ``assess_one(x)`` returns a :class:`Finding`
(what risk, how sure, how long until the loss, the evidence) — scoring stays separate from
deciding; the warning decisions live in ``streams.decisions``.

Constructor arguments are a detector's whole configuration, stored under the same names;
everything else it holds is its state, in attributes whose names start with ``_``
(``detectors.state`` saves exactly that, as plain data).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Severity = Literal["advisory", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("advisory", "warning", "critical")


@dataclass(slots=True)
class Finding:
    """A detector's judgement of one reading: a value, never changed once made (not a frozen
    dataclass only because building a frozen one costs about 1 µs more, and every detector of a
    device makes one at every reading).

    ``time_to_loss_s`` is the predicted time until the loss happens (``0`` = happening now,
    ``None`` = no forecast); ``evidence`` holds the figures a warning quotes (plain floats,
    strings or booleans, JSON-serialisable) and, from a detector that judges a reading several
    ways, ``triggers``: the names of the judgements that fired, most severe first.
    """

    risk: str
    score: float
    severity: Severity = "warning"
    time_to_loss_s: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


class Detector:
    """Base of every detector (river's ``AnomalyDetector`` contract)."""

    def learn_one(self, x: Mapping[str, float]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def score_one(self, x: Mapping[str, float]) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in parameter_names(type(self)) if hasattr(self, n)}


def parameter_names(cls: type) -> tuple[str, ...]:
    """The names of ``cls``'s constructor parameters: its configuration."""
    names = _PARAMETER_NAMES.get(cls)
    if names is None:
        names = _PARAMETER_NAMES[cls] = tuple(inspect.signature(cls).parameters)
    return names


_PARAMETER_NAMES: dict[type, tuple[str, ...]] = {}


class RiskDetector(Detector):
    """A detector with physical meaning for one risk type (``freeze_risk``, ``water_leak`` …).

    ``metrics`` names what it reads: a reading carrying none of them is not given to it.
    """

    risk: ClassVar[str]
    metrics: tuple[str, ...]  # a class default; an instance may narrow it (SensorStuck(metric=…))
    state_version: ClassVar[int] = 1
    """Bumped when the meaning of the saved state changes without its attributes changing:
    state saved under another version is not loaded (the detector starts afresh)."""

    @property
    def instance_name(self) -> str:
        """This detector's stable name among one device's detectors (its saved state is keyed
        by it): the risk type, plus what tells instances apart for a detector that a profile
        runs more than once."""
        return self.risk

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        """Score ``x`` and say why, without learning from it."""
        return Finding(self.risk, self.score_one(x))

    def wants(self, x: Mapping[str, float]) -> bool:
        return any(m in x for m in self.metrics)
