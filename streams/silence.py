"""Devices that go silent: the pure rule, on the clock its caller runs. No I/O, no clock.

A device is heard from when its readings arrive (the worker: ingest's arrival time of each
record; ``forewarn eval``: each simulated reading's time) and speaks for itself on its status
topic (``online`` / ``offline``, the MQTT last will). :class:`SilenceWatch` keeps, per device:

- the **usual interval**: the median of the last :data:`GAPS_KEPT` gaps between arrivals (a
  median, so a drop-out or a jittery clock does not move it; gaps under :data:`MIN_GAP_MS`
  — one message split into records, a duplicate — say nothing about it);
- the **last contact** (readings, or an ``online`` status) and an ``offline`` status not yet
  followed by contact.

It is **silent** from ``last contact + max(multiple × usual interval, floor)`` or ``offline +
grace``, whichever comes first (the parameters: ``detectors.silent.DeviceSilent``, configured
like any detector); the next readings end the silence. An ``online`` status (a reconnect)
cancels an ``offline`` one and counts as contact, but only readings end a silence already
declared: a device that says it is back and sends nothing is not protecting anything.

Arrivals and statuses reach the worker on two topics, so they may be decided out of order;
each carries its arrival time, and a statement older than what is known is ignored: a status
older than the last contact, readings that arrived before the last ones. A status the broker
replays on subscribing (``retained``) carries no news of when; it counts only for a device the
watch knows nothing about yet.

Nothing is decided without a caller asking: :meth:`SilenceWatch.due_ms` says when to ask
next, :meth:`SilenceWatch.check` decides at ``now``. ``streams.decisions.DeviceMonitor`` turns
a silence into a ``device_silent`` warning (for a protective device) and its end into the
warning's resolution.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

GAPS_KEPT = 15
MIN_GAP_MS = 1000

Reason = Literal["no_readings", "offline"]


class SilenceRule(Protocol):
    """The rule's parameters (``detectors.silent.DeviceSilent``)."""

    @property
    def offline_grace_s(self) -> float: ...

    def threshold_s(self, usual_interval_s: float | None) -> float: ...


@dataclass(slots=True)
class SilenceWatch:
    """One device's contact times and silence (all times in epoch ms on the caller's clock)."""

    last_heard_ms: int | None = None
    """When its last readings arrived."""
    last_contact_ms: int | None = None
    """When it last spoke: readings, or an ``online`` status."""
    offline_since_ms: int | None = None
    """An ``offline`` status that no contact has followed yet."""
    silent_since_ms: int | None = None
    """When it was found silent (``None``: it is not)."""
    reason: Reason | None = None
    """Why it is silent: nothing arrived (``no_readings``) or it said so (``offline``)."""
    gaps_ms: list[int] = field(default_factory=list)
    """The last gaps between arrivals (at least :data:`MIN_GAP_MS`), oldest first."""
    silences: int = 0
    """How many times the device has gone silent."""

    @property
    def silent(self) -> bool:
        return self.silent_since_ms is not None

    @property
    def usual_interval_s(self) -> float | None:
        """The median recent gap between arrivals; ``None`` before the second arrival."""
        return statistics.median(self.gaps_ms) / 1000 if self.gaps_ms else None

    def heard(self, at_ms: int) -> bool:
        """Readings arrived at ``at_ms``; ``True`` when that ends a silence."""
        if self.last_heard_ms is not None:
            if at_ms < self.last_heard_ms:  # arrived before the last ones (a replayed record)
                return False
            gap = at_ms - self.last_heard_ms
            if gap >= MIN_GAP_MS:
                self.gaps_ms.append(gap)
                del self.gaps_ms[:-GAPS_KEPT]
        self.last_heard_ms = at_ms
        self._contact(at_ms)
        if self.offline_since_ms is not None and at_ms > self.offline_since_ms:
            self.offline_since_ms = None  # (at the same instant, the goodbye came last)
        if self.silent_since_ms is None:
            return False
        self.silent_since_ms = self.reason = None
        return True

    def status(self, state: str, at_ms: int, retained: bool = False) -> None:
        """The device said ``online`` or ``offline`` (arriving at ``at_ms``)."""
        if retained and (self.last_contact_ms is not None or self.offline_since_ms is not None):
            return  # the broker's replay on subscribing: what it says is known already
        if state == "online":
            if self.offline_since_ms is None or at_ms >= self.offline_since_ms:
                self.offline_since_ms = None
                self._contact(at_ms)
        elif state == "offline":
            if self.last_contact_ms is not None and at_ms < self.last_contact_ms:
                return  # it has spoken since
            if self.offline_since_ms is None:
                self.offline_since_ms = at_ms
        else:
            raise ValueError(f"a status is online or offline, not {state!r}")

    def _contact(self, at_ms: int) -> None:
        self.last_contact_ms = at_ms if self.last_contact_ms is None else max(self.last_contact_ms, at_ms)

    def threshold_ms(self, rule: SilenceRule) -> int:
        """How long the device may stay quiet, by its usual interval."""
        return int(rule.threshold_s(self.usual_interval_s) * 1000)

    def due_ms(self, rule: SilenceRule) -> int | None:
        """When the device turns silent if nothing changes; ``None``: it is silent already or
        has never been heard of."""
        if self.silent_since_ms is not None:
            return None
        due: list[int] = []
        if self.last_contact_ms is not None:
            due.append(self.last_contact_ms + self.threshold_ms(rule))
        if self.offline_since_ms is not None:
            due.append(self.offline_since_ms + int(rule.offline_grace_s * 1000))
        return min(due) if due else None

    def check(self, now_ms: int, rule: SilenceRule) -> bool:
        """Decide at ``now_ms``; ``True`` when the device turns silent now."""
        due = self.due_ms(rule)
        if due is None or now_ms < due:
            return False
        self.silent_since_ms = now_ms
        self.reason = "offline" if self.offline_since_ms is not None else "no_readings"
        self.silences += 1
        return True

    def quiet_since_ms(self) -> int | None:
        """Since when nothing has been heard: the last contact (or the offline status)."""
        return self.last_contact_ms if self.last_contact_ms is not None else self.offline_since_ms

    def to_state(self) -> dict[str, Any]:
        return {
            "last_heard_ms": self.last_heard_ms,
            "last_contact_ms": self.last_contact_ms,
            "offline_since_ms": self.offline_since_ms,
            "silent_since_ms": self.silent_since_ms,
            "reason": self.reason,
            "gaps_ms": list(self.gaps_ms),
            "silences": self.silences,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> SilenceWatch:
        """The watch :meth:`to_state` saved; a fresh one for ``None`` (state saved before
        devices were watched for silence). :class:`ValueError` for another shape."""
        if state is None:
            return cls()
        try:

            def ms(name: str) -> int | None:
                value = state[name]
                return None if value is None else int(value)

            reason = state["reason"]
            if reason not in (None, "no_readings", "offline"):
                raise ValueError(f"reason {reason!r}")
            return cls(
                last_heard_ms=ms("last_heard_ms"),
                last_contact_ms=ms("last_contact_ms"),
                offline_since_ms=ms("offline_since_ms"),
                silent_since_ms=ms("silent_since_ms"),
                reason=reason,
                gaps_ms=[int(g) for g in state["gaps_ms"]][-GAPS_KEPT:],
                silences=int(state["silences"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"silence state without its shape: {exc!r}") from None
