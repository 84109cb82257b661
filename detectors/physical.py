"""What the physical detectors share: the scoring convention and the :class:`PhysicalDetector`
base.

A score of 0 means quiet, a finding worth telling the customer about scores at least
:data:`FIRING` (0.5: ``streams.decisions`` opens a warning there), and ``severity`` says how
urgent it is. A detector that judges a reading several ways (smoke, heat, carbon monoxide)
keeps the worst of its judgements in a :class:`WorstJudgement`, which names the ones that
fired (the evidence's ``triggers``: what the warning gives as its cause); :func:`ramp` turns a
measurement into a score, :func:`rnd` a figure into evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from detectors.base import Finding, RiskDetector, Severity

FIRING = 0.5
"""The score from which a finding is worth a warning (``WarningPolicy.open_score``)."""

_SEVERITY_RANK: dict[Severity, int] = {"advisory": 0, "warning": 1, "critical": 2}


def ramp(value: float, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear in between.

    >>> ramp(4.0, 2.0, 6.0), ramp(1.0, 2.0, 6.0), ramp(9.0, 2.0, 6.0)
    (0.5, 0.0, 1.0)
    """
    if high <= low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


def rnd(value: float, digits: int = 2) -> float:
    """A figure for the evidence: rounded, finite, JSON-serialisable.

    >>> rnd(2.345678), rnd(0.0), rnd(-0.0), rnd(float("inf"))
    (2.35, 0.0, -0.0, 0.0)
    """
    if type(value) is float and digits >= 0 and value.is_integer():
        return value  # round() would return it as it is (0.0 most often), ten times slower
    return round(value, digits) if value - value == 0.0 else 0.0  # finite (math.isfinite, cheaper)


def escalate(severity: Severity) -> Severity:
    """One level up (advisory → warning → critical).

    >>> escalate("advisory"), escalate("warning"), escalate("critical")
    ('warning', 'critical', 'critical')
    """
    return "critical" if severity != "advisory" else "warning"


class WorstJudgement:
    """The worst of several judgements about one reading: highest score and severity,
    earliest time to loss, and which judgements fired (``reason``: what a warning states as
    its cause; most severe first in :attr:`triggers`).

    >>> worst = WorstJudgement()
    >>> worst.add(0.6, "warning", 7200.0, reason="trend")
    >>> worst.add(0.9, "critical", reason="smoke")
    >>> worst.add(0.5, "advisory", 600.0, reason="baseline")
    >>> worst.score, worst.severity, worst.eta, worst.triggers
    (0.9, 'critical', 600.0, ['smoke', 'trend', 'baseline'])
    """

    __slots__ = ("score", "severity", "eta", "_reasons")

    def __init__(self) -> None:
        self.score = 0.0
        self.severity: Severity = "advisory"
        self.eta: float | None = None
        self._reasons: list[tuple[int, float, str]] = []

    def add(self, score: float, severity: Severity, eta: float | None = None, *, reason: str | None = None) -> None:
        self.score = max(self.score, score)
        if _SEVERITY_RANK[severity] > _SEVERITY_RANK[self.severity]:
            self.severity = severity
        if eta is not None:
            self.eta = eta if self.eta is None else min(self.eta, eta)
        if reason is not None:
            self._reasons.append((_SEVERITY_RANK[severity], score, reason))

    @property
    def triggers(self) -> list[str]:
        """The reasons of the judgements added, most severe first (then highest score, then
        in the order added), each once."""
        ranked = sorted(enumerate(self._reasons), key=lambda item: (-item[1][0], -item[1][1], item[0]))
        return list(dict.fromkeys(reason for _, (_, _, reason) in ranked))


class TwoWayAssess:
    """A mixin for a detector that assesses in one method, ``_assess(x, full)``: ``assess_one``
    is it with every figure, ``assess_bare`` without the evidence of a finding scoring 0 (its
    :meth:`PhysicalDetector._bare`). Put it first among the bases."""

    def _assess(self, x: Mapping[str, float], full: bool) -> Finding:
        raise NotImplementedError

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        return self._assess(x, True)

    def assess_bare(self, x: Mapping[str, float]) -> Finding:
        """:meth:`assess_one`, but a finding scoring 0 may come without its evidence (for a caller
        that drops such a finding: ``streams.decisions`` when no warning of this risk is open)."""
        return self._assess(x, False)


class PhysicalDetector(RiskDetector):
    """A :class:`RiskDetector` whose score is the score of its finding.

    Subclasses implement ``assess_one`` and ``learn_one``; ``score_one`` follows. One that
    assesses through :class:`TwoWayAssess` also has ``assess_bare``: ``assess_one``, but a
    finding scoring 0 may come without its evidence, as :meth:`_bare` (``streams.decisions``
    asks so when no warning of its risk is open: such a finding is dropped at once, and figures
    rounded for it would be wasted).
    """

    _bare_finding: ClassVar[Finding]
    """The class's quiet finding without evidence (:meth:`_bare`), made with the class."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "risk" in vars(cls):
            cls._bare_finding = Finding(cls.risk, 0.0, "advisory", None, {})

    def score_one(self, x: Mapping[str, float]) -> float:
        return self.assess_one(x).score

    def _bare(self) -> Finding:
        """The quiet finding without evidence that ``assess_bare`` returns: one per class,
        shared (a value: never change it)."""
        return self._bare_finding

    def _quiet(self, evidence: dict[str, Any] | None = None) -> Finding:
        return Finding(self.risk, 0.0, "advisory", None, evidence or {})

    def _judged(self, worst: WorstJudgement, evidence: dict[str, Any]) -> Finding:
        """The finding of a :class:`WorstJudgement`: quiet if nothing was added to it; else
        with the judgements that fired under ``evidence["triggers"]``."""
        if worst.score == 0.0:
            return self._quiet(evidence)
        if worst.triggers:
            evidence["triggers"] = worst.triggers
        return Finding(self.risk, worst.score, worst.severity, worst.eta, evidence)
