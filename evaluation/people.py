"""People in the loop: what the warnings of ``forewarn eval`` lead people to do, on the simulated clock.

For every warning a :class:`streams.decisions.DeviceMonitor` opened, :func:`follow` plays the
insurer's side forward with the same pure rules the worker applies:

- the warning goes to the customer when it opens, unless quiet hours hold it
  (``notifiers.quiet.decide``: a critical warning always goes through; anything else waits
  for the end of the customer's quiet hours, never dropped); no daily budget is simulated;
- while nobody has acknowledged it, the follow-up steps of its severity come due, timed from
  the moment it first reached the customer (``notifiers.followup.due_steps`` with
  ``DEFAULT_POLICIES``): reminders (held by quiet hours like any non-critical message), then
  the insurer's staff, then the last step (a call-centre call to the customer);
- an escalation to a higher severity notifies the customer again, and from then on the
  follow-up policy of the new severity runs, timed from that notice (steps already sent are
  not repeated);
- each message that reaches the customer is a fresh chance for them to acknowledge
  (:class:`simulator.people.Customer`); a staff escalation makes the staff call the customer
  after their delay (:class:`simulator.people.Staff`), which counts as a person acting and
  acknowledges the warning;
- once the warning resolves or expires nothing more is sent (a message still held is
  superseded) and a later acknowledgement is refused, as the lifecycle refuses it.

Then per incident: a person **acted in time** when the customer or the staff acted on one of
the incident's warnings (``evaluation.matching``) at least ``min_lead_s`` before the loss; the
**loss avoidable with people** is the expected cost of those incidents only. Each warning's
**outcome**: ``loss_avoided`` (its incident was acted on in time), ``loss_occurred`` (a real
incident nobody acted on in time), ``false_alarm`` (no incident); **precision** is the share
of warnings on a real incident; the **loss avoided per warning** is the loss avoidable with
people over every warning sent, false alarms included.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from core.contract import WarningEvent
from core.localtime import zone
from evaluation.matching import match
from notifiers.followup import DEFAULT_POLICIES, FollowUpPolicy, due_steps
from notifiers.quiet import QuietHours, decide
from simulator.people import DEFAULT_MIX, QUIET_SHARE, Behaviour, Customer, Staff, assign, check_mix

MessageKind = Literal["warning", "escalation", "remind", "staff", "final"]
Outcome = Literal["loss_avoided", "loss_occurred", "false_alarm"]
QUIET_DEVICES = "(quiet devices)"
"""The row of the warnings on devices without an incident."""

_CLOSING = ("resolve", "expire")


@dataclass(frozen=True, slots=True)
class PeopleSettings:
    """Who the simulated customers are and which follow-up policies the insurer runs."""

    mix: Mapping[Behaviour, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    quiet_share: float = QUIET_SHARE
    policies: Mapping[str, FollowUpPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))

    def __post_init__(self) -> None:
        check_mix(self.mix)
        if not 0.0 <= self.quiet_share <= 1.0:
            raise ValueError(f"quiet_share must be in [0, 1], got {self.quiet_share}")


@dataclass(frozen=True, slots=True)
class Message:
    kind: MessageKind
    due_ms: int
    """When it was due to go out (the warning's open or escalation, or the step's due time)."""
    delivered_ms: int | None
    """When it reached its audience; later than ``due_ms`` when quiet hours held it; None when
    the warning closed while it was held (superseded)."""


@dataclass(frozen=True, slots=True)
class Followed:
    """One warning, played forward with people in the loop."""

    warning_id: str
    device: str
    risk: str
    severity: str
    opened_at_ms: int
    closed_at_ms: int | None
    messages: tuple[Message, ...]
    acknowledged_at_ms: int | None
    acknowledged_by: Literal["customer", "staff"] | None

    def count(self, kind: MessageKind) -> int:
        return sum(1 for m in self.messages if m.kind == kind and m.delivered_ms is not None)

    @property
    def held_quiet(self) -> bool:
        first = self.messages[0] if self.messages else None
        return first is not None and first.delivered_ms != first.due_ms

    @property
    def time_to_ack_s(self) -> float | None:
        """From the warning's opening (quiet-hours hold included) to the acknowledgement."""
        return None if self.acknowledged_at_ms is None else (self.acknowledged_at_ms - self.opened_at_ms) / 1000


def follow(
    opened: WarningEvent,
    later: Sequence[WarningEvent],
    customer: Customer,
    staff: Staff,
    policies: Mapping[str, FollowUpPolicy] = DEFAULT_POLICIES,
) -> Followed:
    """Play one warning forward: its messages, the follow-up steps that come due before anyone
    acknowledges it, and who acknowledges it when. ``later`` holds the warning's escalate,
    resolve and expire events (in any order; others are ignored)."""
    tz = zone(customer.timezone)
    windows = [QuietHours.parse(w) for w in customer.quiet_hours]
    wid = opened.warning_id
    escalations = sorted((e for e in later if e.action == "escalate"), key=lambda e: e.at_ms)
    closes = [e.at_ms for e in later if e.action in _CLOSING]
    closed_ms = min(closes) if closes else None
    messages: list[Message] = []
    answers: list[tuple[int, Literal["customer", "staff"]]] = []

    def open_at(t: int) -> bool:
        return closed_ms is None or t < closed_ms

    def to_customer(kind: MessageKind, due_ms: int, severity: str) -> int | None:
        decision, release = decide(severity, due_ms, tz, windows, 0, None)
        delivered: int | None = due_ms if decision == "send" or release is None else release
        if delivered is not None and not open_at(delivered):
            delivered = None
        key = f"{wid}:{len(messages)}"
        messages.append(Message(kind, due_ms, delivered))
        if delivered is not None:
            at = customer.acknowledges_at(delivered, key)
            if at is not None:
                answers.append((at, "customer"))
        return delivered

    anchor = to_customer("warning", opened.at_ms, opened.severity)
    severity = opened.severity
    policy = policies.get(severity)
    done: list[str] = []
    pending_escalations = list(escalations)
    while anchor is not None:
        steps_at = [anchor + round(s.after_s * 1000) for s in (policy.steps if policy else ()) if s.action not in done]
        next_step = min(steps_at) if steps_at else None
        next_escalation = pending_escalations[0].at_ms if pending_escalations else None
        candidates = [t for t in (next_step, next_escalation) if t is not None]
        if not candidates:
            break
        now = min(candidates)
        if (answers and min(answers)[0] <= now) or not open_at(now):
            break
        if next_escalation is not None and next_escalation == now:
            escalation = pending_escalations.pop(0)
            severity = escalation.severity
            delivered = to_customer("escalation", now, severity)
            if delivered is not None:
                anchor, policy = delivered, policies.get(severity)
            continue
        assert policy is not None and next_step is not None
        due = due_steps(policy, 0.0, (now - anchor) / 1000 + 1e-6, done)
        if not due:  # cannot happen (now is a step's due time); never loop for ever
            break
        for step in due:
            done.append(step.action)
            if step.kind == "staff":
                messages.append(Message("staff", now, now))
                answers.append((staff.acts_at(now, f"{wid}:{step.action}"), "staff"))
            else:
                to_customer(step.kind, now, severity)
    first = min((a for a in answers if open_at(a[0])), default=None)
    return Followed(
        warning_id=wid,
        device=opened.device,
        risk=opened.risk,
        severity=opened.severity,
        opened_at_ms=opened.at_ms,
        closed_at_ms=closed_ms,
        messages=tuple(messages),
        acknowledged_at_ms=first[0] if first else None,
        acknowledged_by=first[1] if first else None,
    )


@dataclass(frozen=True, slots=True)
class IncidentActed:
    device: str
    scenario: str
    loss_at_ms: int
    expected_cost_cny: float
    acted_at_ms: int | None
    """The first moment a person acted on one of the incident's warnings (before the loss or not)."""
    acted_by: Literal["customer", "staff"] | None
    acted_in_time: bool


@dataclass(frozen=True, slots=True)
class PeopleSummary:
    scenario: str
    warnings: int
    acknowledged: int
    acknowledged_by_customer: int
    acknowledged_by_staff: int
    ack_rate: float
    time_to_ack_median_min: float | None
    held_quiet: int
    reminders: int
    staff_escalations: int
    final_steps: int
    incidents: int
    acted_in_time: int
    loss_avoidable_with_people_cny: float
    loss_avoided: int
    loss_occurred: int
    false_alarms: int
    precision: float | None
    loss_avoided_per_warning_cny: float | None


@dataclass
class PeopleReport:
    scenarios: list[PeopleSummary]
    overall: PeopleSummary
    warnings: list[Followed]
    outcomes: dict[str, Outcome]
    """Warning id → outcome."""
    incidents: list[IncidentActed]
    customers: dict[str, int]
    """Customers per behaviour (every customer of the fleet)."""
    customers_with_quiet_hours: int
    min_lead_s: float
    settings: PeopleSettings

    @property
    def loss_avoidable_cny(self) -> float:
        return self.overall.loss_avoidable_with_people_cny

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": asdict(self.overall),
            "scenarios": [asdict(s) for s in self.scenarios],
            "customers": self.customers,
            "customers_with_quiet_hours": self.customers_with_quiet_hours,
            "mix": dict(self.settings.mix),
            "quiet_share": self.settings.quiet_share,
            "policies": {
                sev: [{"after_s": s.after_s, "kind": s.kind, "next_channel": s.next_channel} for s in p.steps]
                for sev, p in self.settings.policies.items()
            },
            "min_lead_s": self.min_lead_s,
            "loss_avoidable_with_people_cny": self.loss_avoidable_cny,
            "incidents": [asdict(i) for i in self.incidents],
            "warnings": [
                {
                    "warning_id": w.warning_id,
                    "device": w.device,
                    "risk": w.risk,
                    "severity": w.severity,
                    "opened_at_ms": w.opened_at_ms,
                    "closed_at_ms": w.closed_at_ms,
                    "acknowledged_at_ms": w.acknowledged_at_ms,
                    "acknowledged_by": w.acknowledged_by,
                    "time_to_ack_s": w.time_to_ack_s,
                    "outcome": self.outcomes[w.warning_id],
                    "messages": [asdict(m) for m in w.messages],
                }
                for w in self.warnings
            ],
        }


def people_in_the_loop(
    fleet: Any,
    events: Mapping[str, Iterable[WarningEvent]],
    min_lead_s: float,
    settings: PeopleSettings | None = None,
) -> PeopleReport:
    """Every warning of ``events`` (device → the monitor's events) followed with the fleet's
    simulated customers and staff, scored against ``fleet.incidents``."""
    settings = settings or PeopleSettings()
    seed = int(getattr(fleet, "seed", 0))
    staff = Staff(seed)
    devices = {d.device: d for d in fleet.devices}
    customers = {d.customer: assign(seed, d.customer, settings.mix, settings.quiet_share) for d in devices.values()}
    followed: list[Followed] = []
    opened_by_device: dict[str, list[WarningEvent]] = defaultdict(list)
    for device, device_events in events.items():
        by_warning: dict[str, list[WarningEvent]] = defaultdict(list)
        for e in device_events:
            by_warning[e.warning_id].append(e)
        for es in by_warning.values():
            opens = [e for e in es if e.action == "open"]
            if not opens:
                continue
            customer = customers[devices[device].customer]
            followed.append(follow(opens[0], [e for e in es if e is not opens[0]], customer, staff, settings.policies))
            opened_by_device[device].append(opens[0])
    acked = {w.warning_id: w for w in followed}
    incidents: list[IncidentActed] = []
    outcomes: dict[str, Outcome] = {w.warning_id: "false_alarm" for w in followed}
    for incident in fleet.incidents:
        found = match(incident, opened_by_device.get(incident.device, []))
        acts = [
            (w.acknowledged_at_ms, w.acknowledged_by)
            for w in (acked[c.warning_id] for c in found.candidates)
            if w.acknowledged_at_ms is not None
        ]
        first = min(acts, key=lambda a: a[0], default=None)
        in_time = first is not None and first[0] <= incident.loss_at_ms - min_lead_s * 1000
        incidents.append(
            IncidentActed(
                device=incident.device,
                scenario=incident.scenario,
                loss_at_ms=incident.loss_at_ms,
                expected_cost_cny=float(incident.expected_cost_cny),
                acted_at_ms=first[0] if first else None,
                acted_by=first[1] if first else None,
                acted_in_time=in_time,
            )
        )
        for candidate in found.candidates:
            if in_time:
                outcomes[candidate.warning_id] = "loss_avoided"
            elif outcomes[candidate.warning_id] == "false_alarm":
                outcomes[candidate.warning_id] = "loss_occurred"
    warning_groups: dict[str, list[Followed]] = defaultdict(list)
    for w in followed:
        warning_groups[devices[w.device].scenario or QUIET_DEVICES].append(w)
    incident_groups: dict[str, list[IncidentActed]] = defaultdict(list)
    for i in incidents:
        incident_groups[i.scenario].append(i)
    names = sorted(set(warning_groups) | set(incident_groups), key=lambda n: (n == QUIET_DEVICES, n))
    behaviours: dict[str, int] = {b: 0 for b in settings.mix}
    for c in customers.values():
        behaviours[c.behaviour] = behaviours.get(c.behaviour, 0) + 1
    return PeopleReport(
        scenarios=[_summarise(n, warning_groups.get(n, []), incident_groups.get(n, []), outcomes) for n in names],
        overall=_summarise("overall", followed, incidents, outcomes),
        warnings=followed,
        outcomes=outcomes,
        incidents=incidents,
        customers=behaviours,
        customers_with_quiet_hours=sum(1 for c in customers.values() if c.quiet_hours),
        min_lead_s=min_lead_s,
        settings=settings,
    )


def _summarise(
    name: str, warnings: list[Followed], incidents: list[IncidentActed], outcomes: Mapping[str, Outcome]
) -> PeopleSummary:
    acked = [w for w in warnings if w.acknowledged_at_ms is not None]
    times = [w.time_to_ack_s / 60 for w in acked if w.time_to_ack_s is not None]
    kinds = [outcomes[w.warning_id] for w in warnings]
    avoided = [i for i in incidents if i.acted_in_time]
    loss = sum(i.expected_cost_cny for i in avoided)
    on_incident = sum(1 for k in kinds if k != "false_alarm")
    return PeopleSummary(
        scenario=name,
        warnings=len(warnings),
        acknowledged=len(acked),
        acknowledged_by_customer=sum(1 for w in acked if w.acknowledged_by == "customer"),
        acknowledged_by_staff=sum(1 for w in acked if w.acknowledged_by == "staff"),
        ack_rate=len(acked) / len(warnings) if warnings else 0.0,
        time_to_ack_median_min=statistics.median(times) if times else None,
        held_quiet=sum(1 for w in warnings if w.held_quiet),
        reminders=sum(w.count("remind") for w in warnings),
        staff_escalations=sum(w.count("staff") for w in warnings),
        final_steps=sum(w.count("final") for w in warnings),
        incidents=len(incidents),
        acted_in_time=len(avoided),
        loss_avoidable_with_people_cny=loss,
        loss_avoided=kinds.count("loss_avoided"),
        loss_occurred=kinds.count("loss_occurred"),
        false_alarms=kinds.count("false_alarm"),
        precision=on_incident / len(warnings) if warnings else None,
        loss_avoided_per_warning_cny=loss / len(warnings) if warnings else None,
    )


def reported_false_alarms(people: PeopleReport, under_way: Iterable[str] = ()) -> dict[tuple[str, str], int]:
    """(device, risk) → the false alarms the simulated people record (``forewarn warning outcome
    ID false_alarm``): each warning someone acknowledged (the customer, or staff who called
    them) whose outcome was a false alarm — except those of ``under_way`` (warning ids of a loss
    under way: whoever looked saw the water or the smoke)."""
    skip = set(under_way)
    found: dict[tuple[str, str], int] = defaultdict(int)
    for w in people.warnings:
        if w.acknowledged_at_ms is None or w.warning_id in skip:
            continue
        if people.outcomes.get(w.warning_id) == "false_alarm":
            found[w.device, w.risk] += 1
    return dict(found)


DEFAULT_PEOPLE = PeopleSettings()
"""The default mix of customers (``simulator.people.DEFAULT_MIX``) and the default follow-up policies."""
