"""Which warnings belong to which incident: one rule for ``forewarn eval`` and the demo's summary.

A warning answers an incident of the simulator's ground truth when it is on the incident's
device, of one of the incident's risk types, and opened between an hour before the precursor
started (``EARLY_SLACK_S``) and six hours after the loss (``FALSE_WARNING_GRACE_S``). The
first such warning opened no later than the loss is the one the lead time is measured from;
every other warning is a false one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

FALSE_WARNING_GRACE_S = 6 * 3600.0  # a warning this long after the loss still belongs to it
EARLY_SLACK_S = 3600.0  # ... and one this long before its precursor started


class OpenedWarning(Protocol):
    @property
    def warning_id(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def risk(self) -> str: ...
    @property
    def at_ms(self) -> int: ...


class Incident(Protocol):
    @property
    def device(self) -> str: ...
    @property
    def risks(self) -> Sequence[str]: ...
    @property
    def precursor_start_ms(self) -> int: ...
    @property
    def loss_at_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StoredWarning:
    """A warning as read back from the database, in the shape :func:`match` takes."""

    warning_id: str
    device: str
    risk: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Match:
    first: OpenedWarning | None
    """The first warning opened no later than the loss; ``None``: the incident was missed."""
    candidates: tuple[OpenedWarning, ...]
    """Every warning that belongs to the incident (none of them counts as false)."""

    @property
    def warned_after_loss(self) -> bool:
        return self.first is None and bool(self.candidates)

    def lead_time_s(self, loss_at_ms: int) -> float | None:
        return None if self.first is None else (loss_at_ms - self.first.at_ms) / 1000


def match(incident: Incident, opened: Iterable[OpenedWarning]) -> Match:
    """The warnings of ``opened`` (any device's) that answer ``incident``."""
    lo = incident.precursor_start_ms - int(EARLY_SLACK_S * 1000)
    hi = incident.loss_at_ms + int(FALSE_WARNING_GRACE_S * 1000)
    candidates = tuple(
        w for w in opened if w.device == incident.device and w.risk in incident.risks and lo <= w.at_ms <= hi
    )
    before = [w for w in candidates if w.at_ms <= incident.loss_at_ms]
    return Match(min(before, key=lambda w: w.at_ms) if before else None, candidates)
