"""Which warnings belong to which incident: one rule for ``forewarn eval`` and the demo's summary.

A warning answers an incident of the simulator's ground truth when it is on the incident's
device, of one of the incident's risk types, and opened between an hour before the precursor
started (``EARLY_SLACK_S``) and six hours after the loss (``FALSE_WARNING_GRACE_S``). The
first such warning opened no later than the loss is the one the lead time is measured from.

Only that first warning is a hit (or, for an incident warned only after its loss, the first late
one: the incident counts as missed, the warning not as false); **every other warning is a false
warning** (:func:`false_warnings`), by cause: another risk type on a device that has an
incident (``second_risk``), a risk warned of again on the same device (``reopened``), the
incident's own risk type outside its span (``outside_span``: more than an hour before its
precursor, or more than six hours after its loss), or any warning on a device without an
incident (``quiet_device``).

A loss notice (a risk the catalogue marks ``loss_notice``: ``vehicle_crash``) is not a warning:
it reports the loss, so it takes no part in that rule (:func:`preventive_warnings` leaves it
out). It answers an incident of the loss type it reports (a crash: ``collision``) on its device
when it opened within ``LOSS_NOTICE_SLACK_S`` of the loss (:func:`match_loss_notice`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from core.risks import preventive

FALSE_WARNING_GRACE_S = 6 * 3600.0  # a warning this long after the loss still belongs to it
EARLY_SLACK_S = 3600.0  # ... and one this long before its precursor started
LOSS_NOTICE_SLACK_S = 300.0  # a loss notice this close to an incident's loss reports it
NOTICE_LOSS_TYPES: dict[str, tuple[str, ...]] = {"vehicle_crash": ("collision",)}
"""Loss-notice risk → the simulator's loss types it reports."""


FALSE_CAUSES: tuple[str, ...] = ("second_risk", "reopened", "outside_span", "quiet_device")
"""Why a warning is false: :func:`false_warnings`."""


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


class TypedIncident(Incident, Protocol):
    @property
    def loss_type(self) -> str: ...


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
    """Every warning that belongs to the incident (its risk types, on its device, in its span)."""

    @property
    def warned_after_loss(self) -> bool:
        return self.first is None and bool(self.candidates)

    @property
    def answer(self) -> OpenedWarning | None:
        """The incident's one warning that is not false: the first before the loss, else the
        first after it (the incident is missed, but that warning is not also a false one)."""
        if self.first is not None:
            return self.first
        return min(self.candidates, key=lambda w: w.at_ms) if self.candidates else None

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


W = TypeVar("W", bound=OpenedWarning)


def false_warnings(incidents: Iterable[Incident], opened: Iterable[W]) -> list[tuple[W, str]]:
    """Every warning of ``opened`` that is not an incident's answer (:attr:`Match.answer`), in
    the order given, with its cause (:data:`FALSE_CAUSES`): ``quiet_device`` on a device without
    an incident, ``reopened`` when a warning of the same risk type opened earlier on the device,
    ``outside_span`` for one of an incident's risk types opened outside its span, else
    ``second_risk``.

    >>> from types import SimpleNamespace as W
    >>> inc = W(device="d", risks=("slow_leak", "water_leak"), precursor_start_ms=0, loss_at_ms=100)
    >>> ws = [W(warning_id=str(i), device=d, risk=r, at_ms=t) for i, (d, r, t) in enumerate(
    ...     [("d", "slow_leak", 10), ("d", "water_leak", 50), ("d", "slow_leak", 90), ("q", "speeding", 5),
    ...      ("d", "water_leak", 3_600_000 * 7)])]
    >>> [(w.warning_id, cause) for w, cause in false_warnings([inc], ws)]
    [('1', 'second_risk'), ('2', 'reopened'), ('3', 'quiet_device'), ('4', 'reopened')]
    >>> [cause for _, cause in false_warnings([inc], [ws[0], ws[4]])]
    ['outside_span']
    """
    warnings = list(opened)
    by_device: dict[str, list[W]] = {}
    for w in warnings:
        by_device.setdefault(w.device, []).append(w)
    answers: set[str] = set()
    spans: dict[str, list[tuple[Sequence[str], int, int]]] = {}
    for incident in incidents:
        lo = incident.precursor_start_ms - int(EARLY_SLACK_S * 1000)
        hi = incident.loss_at_ms + int(FALSE_WARNING_GRACE_S * 1000)
        spans.setdefault(incident.device, []).append((incident.risks, lo, hi))
        answer = match(incident, by_device.get(incident.device, [])).answer
        if answer is not None:
            answers.add(answer.warning_id)
    found: list[tuple[W, str]] = []
    for w in warnings:
        if w.warning_id in answers:
            continue
        if w.device not in spans:
            found.append((w, "quiet_device"))
        elif any(o.risk == w.risk and o.at_ms < w.at_ms for o in by_device[w.device]):
            found.append((w, "reopened"))
        else:
            own = [(lo, hi) for risks, lo, hi in spans[w.device] if w.risk in risks]
            outside = bool(own) and not any(lo <= w.at_ms <= hi for lo, hi in own)
            found.append((w, "outside_span" if outside else "second_risk"))
    return found


def preventive_warnings(opened: Iterable[W]) -> list[W]:
    """The warnings of ``opened`` that warn before a loss: every one but the loss notices."""
    return [w for w in opened if preventive(w.risk)]


def loss_notices(opened: Iterable[W]) -> list[W]:
    """The loss notices of ``opened`` (crash notices): reports of a loss, not warnings."""
    return [w for w in opened if not preventive(w.risk)]


def match_loss_notice(incident: TypedIncident, notices: Iterable[OpenedWarning]) -> OpenedWarning | None:
    """The first loss notice of ``notices`` that reports ``incident``: on its device, of a risk
    reporting its loss type, opened within ``LOSS_NOTICE_SLACK_S`` of its loss."""
    slack = int(LOSS_NOTICE_SLACK_S * 1000)
    found = [
        n
        for n in notices
        if n.device == incident.device
        and incident.loss_type in NOTICE_LOSS_TYPES.get(n.risk, ())
        and abs(n.at_ms - incident.loss_at_ms) <= slack
    ]
    return min(found, key=lambda n: n.at_ms) if found else None
