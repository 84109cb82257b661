"""People in the loop: simulated customers who get warnings and the insurer's staff. Pure, seeded.

A warning is worth what somebody does with it. Each simulated customer gets a
:class:`Customer` model — how they answer a message — and a :class:`Staff` model stands for
the insurer's risk-service desk that a staff escalation reaches. Every draw comes from the
fleet seed, the customer (or warning) and the message's own key, so an answer never depends
on which other messages were simulated or in which order.

Behaviours (``BEHAVIOURS``), assigned per customer id by :func:`assign` with ``DEFAULT_MIX``
(40 % prompt, 30 % late, 20 % never, 10 % night only):

- ``prompt``: acknowledges 1–5 minutes after a message reaches them, day or night;
- ``late``: acknowledges 20–90 minutes after a message;
- ``never``: never acknowledges, whatever reaches them (reminders and calls included);
- ``night_only``: looks at the phone only in the evening and at night, 19:00–24:00 on their
  own clock (busy by day, asleep after midnight); there they acknowledge 1–5 minutes after a
  message, or 1–5 minutes after 19:00 for a message that came while they were away.

Rules shared by all of them: every message that reaches the customer — the warning, a
notice that it escalated, each reminder, the last step's call — is a fresh chance, drawn
independently; the customer acknowledges at the earliest of their answers. So a reminder can
make a late customer act sooner (a second draw from the reminder's time), never later.

Half the customers (``QUIET_SHARE``) set quiet hours ``22:00-07:00`` (``QUIET_HOURS``) on their
clock; every customer's zone is the deployment default (``core.localtime``, Asia/Shanghai).

Staff (:class:`Staff`): the on-call desk acts — calls the customer, which counts as a person
acting on the warning — 5–30 minutes after a staff escalation reaches it, at any hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from core.localtime import DEFAULT_TIMEZONE, hour_of_day, zone
from simulator.fleet import device_seed
from simulator.signals import rng_for

Behaviour = Literal["prompt", "late", "never", "night_only"]
BEHAVIOURS: tuple[Behaviour, ...] = get_args(Behaviour)

DEFAULT_MIX: Mapping[Behaviour, float] = {"prompt": 0.4, "late": 0.3, "never": 0.2, "night_only": 0.1}
"""Share of customers per behaviour (sums to 1)."""

QUIET_SHARE = 0.5
QUIET_HOURS = "22:00-07:00"

MINUTE_MS = 60_000
PROMPT_MIN = (1.0, 5.0)
"""A prompt answer comes this many minutes (uniform) after the message."""
LATE_MIN = (20.0, 90.0)
NIGHT_ONLY_HOURS = (19.0, 24.0)
"""The local hours a ``night_only`` customer looks at the phone (start inclusive, end exclusive)."""
STAFF_MIN = (5.0, 30.0)
"""Minutes (uniform) from a staff escalation to the staff's call to the customer."""


def _uniform_ms(seed_key: str, fleet_seed: int, bounds: tuple[float, float]) -> int:
    """A draw in ``bounds`` minutes, as ms, from its own stream (``seed_key`` names it)."""
    lo, hi = bounds
    return int(round(rng_for(device_seed(fleet_seed, seed_key)).uniform(lo, hi) * MINUTE_MS))


@dataclass(frozen=True, slots=True)
class Customer:
    """How one simulated customer answers warnings."""

    id: str
    behaviour: Behaviour
    quiet_hours: tuple[str, ...] = ()
    """Quiet windows on the customer's clock, as ``notifiers.quiet.QuietHours.parse`` reads them."""
    timezone: str = DEFAULT_TIMEZONE
    fleet_seed: int = field(default=7, compare=False)

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.behaviour!r}; one of {', '.join(BEHAVIOURS)}")

    def acknowledges_at(self, delivered_ms: int, key: str) -> int | None:
        """When (epoch ms) the customer acknowledges a message that reached them at
        ``delivered_ms``; None: never (for this message). ``key`` names the message (the
        warning and which message of it), so each message draws from its own stream.

        >>> c = Customer("c1", "night_only", fleet_seed=7)
        >>> noon = 1_736_913_600_000  # 2025-01-15 12:00 in Shanghai
        >>> (c.acknowledges_at(noon, "w:0") - noon) // 3_600_000  # waits for 19:00
        7
        """
        if self.behaviour == "never":
            return None
        stream = f"person:{self.id}:{key}"
        if self.behaviour == "prompt":
            return delivered_ms + _uniform_ms(stream, self.fleet_seed, PROMPT_MIN)
        if self.behaviour == "late":
            return delivered_ms + _uniform_ms(stream, self.fleet_seed, LATE_MIN)
        return self.awake_from(delivered_ms) + _uniform_ms(stream, self.fleet_seed, PROMPT_MIN)

    def awake_from(self, at_ms: int) -> int:
        """The first moment at or after ``at_ms`` that a ``night_only`` customer looks at the
        phone (``at_ms`` itself for every other behaviour)."""
        if self.behaviour != "night_only":
            return at_ms
        start, end = NIGHT_ONLY_HOURS
        hour = hour_of_day(at_ms, zone(self.timezone))
        if start <= hour < end:
            return at_ms
        wait_h = (start - hour) % 24
        return at_ms + int(round(wait_h * 3_600_000))


@dataclass(frozen=True, slots=True)
class Staff:
    """The insurer's on-call risk-service desk."""

    fleet_seed: int = 7

    def acts_at(self, escalated_ms: int, key: str) -> int:
        """When the staff call the customer after an escalation sent at ``escalated_ms``
        (``key`` names the warning and the step)."""
        return escalated_ms + _uniform_ms(f"staff:{key}", self.fleet_seed, STAFF_MIN)


def parse_mix(text: str) -> dict[Behaviour, float]:
    """``"prompt=0.4,late=0.3,never=0.2,night_only=0.1"`` → a behaviour mix; behaviours left
    out get 0; :class:`ValueError` for anything that is not a mix summing to 1.

    >>> parse_mix("prompt=0.5, never=0.5")
    {'prompt': 0.5, 'never': 0.5}
    """
    mix: dict[Behaviour, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in BEHAVIOURS or not value.strip():
            raise ValueError(
                f"behaviour share {part.strip()!r} must be NAME=SHARE with NAME one of {', '.join(BEHAVIOURS)}"
            )
        try:
            mix[name] = float(value)  # type: ignore[index]
        except ValueError:
            raise ValueError(f"behaviour share {part.strip()!r}: {value.strip()!r} is not a number") from None
    check_mix(mix)
    return mix


def check_mix(mix: Mapping[Behaviour, float]) -> None:
    """:class:`ValueError` unless ``mix`` names known behaviours with shares >= 0 summing to 1."""
    unknown = [b for b in mix if b not in BEHAVIOURS]
    if unknown:
        raise ValueError(f"unknown behaviours {unknown}; known: {', '.join(BEHAVIOURS)}")
    total = sum(mix.values())
    if any(not v >= 0 for v in mix.values()) or abs(total - 1.0) > 1e-6:
        raise ValueError(f"a behaviour mix needs shares >= 0 that sum to 1, got {dict(mix)}")


def assign(
    fleet_seed: int,
    customer_id: str,
    mix: Mapping[Behaviour, float] = DEFAULT_MIX,
    quiet_share: float = QUIET_SHARE,
    timezone: str = DEFAULT_TIMEZONE,
) -> Customer:
    """The customer model of ``customer_id``: its behaviour drawn by ``mix`` and quiet hours
    for a ``quiet_share`` of customers, from the customer's own stream (fleet seed + id), so
    it never changes when other customers are added.

    >>> assign(7, "cust-home-frozen-pipe-01") == assign(7, "cust-home-frozen-pipe-01")
    True
    """
    check_mix(mix)
    if not 0.0 <= quiet_share <= 1.0:
        raise ValueError(f"quiet_share must be in [0, 1], got {quiet_share}")
    u_behaviour, u_quiet = rng_for(device_seed(fleet_seed, f"person:{customer_id}")).random(2)
    chosen: Behaviour = BEHAVIOURS[0]
    edge = 0.0
    for behaviour in BEHAVIOURS:
        share = mix.get(behaviour, 0.0)
        if share <= 0:
            continue
        chosen = behaviour
        edge += share
        if u_behaviour < edge:
            break
    quiet = (QUIET_HOURS,) if u_quiet < quiet_share else ()
    return Customer(customer_id, chosen, quiet, timezone, fleet_seed)


__all__ = [
    "BEHAVIOURS",
    "DEFAULT_MIX",
    "QUIET_HOURS",
    "QUIET_SHARE",
    "Behaviour",
    "Customer",
    "Staff",
    "assign",
    "check_mix",
    "parse_mix",
]
