"""A warning's lifecycle, in one place: its statuses, the events that move it, and which notify.

``open → notified → acknowledged → resolved``, or ``expired``; ``escalated`` is a step in
between (a higher severity while still open). The decisions (``streams/decisions.py``) emit
the detector-side events (open, escalate, resolve, expire); a successful delivery emits
``notified``; a person emits ``acknowledge``. :func:`next_status` says where each event takes
a warning in each status — ``None`` when the event changes nothing there (a late delivery
receipt for a resolved warning, a second acknowledgement). The database applies exactly this
table (``core/db.py``), so the rule lives here and nowhere else.
"""

from __future__ import annotations

from typing import Literal, get_args

Status = Literal["open", "notified", "escalated", "acknowledged", "resolved", "expired"]
Event = Literal["open", "notified", "escalate", "acknowledge", "resolve", "expire"]
Action = Literal["open", "escalate", "resolve", "expire"]
"""The events the decisions emit and publish on ``forewarn.warnings``."""

STATUSES: tuple[Status, ...] = get_args(Status)
EVENTS: tuple[Event, ...] = get_args(Event)
ACTIONS: tuple[Action, ...] = get_args(Action)
FINAL: frozenset[Status] = frozenset({"resolved", "expired"})
"""Statuses no event leaves."""
LIVE: tuple[Status, ...] = tuple(s for s in STATUSES if s not in FINAL)
NOTIFY_ACTIONS: tuple[Action, ...] = ("open", "escalate")
"""Decision events that send the customer a message."""

_TRANSITIONS: dict[Event, dict[Status, Status]] = {
    "open": {},  # creates the warning in "open"; on an existing one it changes nothing
    "notified": {"open": "notified"},
    "escalate": {"open": "escalated", "notified": "escalated", "escalated": "escalated", "acknowledged": "escalated"},
    "acknowledge": {"open": "acknowledged", "notified": "acknowledged", "escalated": "acknowledged"},
    "resolve": {s: "resolved" for s in LIVE},
    "expire": {s: "expired" for s in LIVE},
}


def next_status(status: Status | None, event: Event) -> Status | None:
    """The status ``event`` moves a warning in ``status`` to; ``None`` when it changes nothing.

    >>> next_status(None, "open"), next_status("notified", "acknowledge"), next_status("resolved", "notified")
    ('open', 'acknowledged', None)
    """
    if event not in _TRANSITIONS:
        raise ValueError(f"unknown lifecycle event {event!r}; known: {', '.join(EVENTS)}")
    if status is None:
        return "open" if event == "open" else None
    return _TRANSITIONS[event].get(status)


def sources(event: Event) -> tuple[Status, ...]:
    """The statuses from which ``event`` moves a warning (for the database's guarded UPDATE)."""
    return tuple(_TRANSITIONS[event])
