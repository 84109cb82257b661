"""What happens to a warning nobody acknowledges: reminders, then the insurer's staff, then the last step.

Pure: a tenant's :class:`FollowUpPolicy` for one severity is a list of :class:`Step`, each due a
fixed time after the warning was first sent; :func:`due_steps` says which steps are due at
``now`` for a warning that is still unacknowledged. The worker persists one timer row per
step (``core.db``), claims each once and sends it; ``forewarn eval`` calls the same function on
the simulated clock.

Step kinds:
- ``remind``: the customer again (``next_channel``: on the channel after the one that was
  used, for example a call after an SMS);
- ``staff``: the tenant's risk-service on-call list (apprise URLs);
- ``final``: the tenant's last resort (a call-centre or voice gateway URL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

StepKind = Literal["remind", "staff", "final"]
STEP_KINDS: tuple[StepKind, ...] = get_args(StepKind)
SEVERITIES = ("advisory", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Step:
    after_s: float
    """Seconds after the warning was first sent."""
    kind: StepKind
    next_channel: bool = False

    def __post_init__(self) -> None:
        if self.kind not in STEP_KINDS:
            raise ValueError(f"unknown step {self.kind!r}; a step is one of {', '.join(STEP_KINDS)}")
        if not self.after_s > 0:
            raise ValueError(f"a {self.kind} step must come after the warning (after_s > 0), got {self.after_s:g}")

    @property
    def action(self) -> str:
        """The delivery action this step sends as (unique per warning, so a step is sent once)."""
        return f"{self.kind}@{int(self.after_s)}"


@dataclass(frozen=True, slots=True)
class FollowUpPolicy:
    severity: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; one of {', '.join(SEVERITIES)}")
        times = [s.after_s for s in self.steps]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("the steps of a policy must come at distinct times, in order")


DEFAULT_POLICIES: Mapping[str, FollowUpPolicy] = {
    "critical": FollowUpPolicy(
        "critical", (Step(10 * 60, "remind", next_channel=True), Step(20 * 60, "staff"), Step(45 * 60, "final"))
    ),
    "warning": FollowUpPolicy("warning", (Step(60 * 60, "remind"), Step(3 * 3600, "staff"))),
    "advisory": FollowUpPolicy("advisory", ()),
}
"""Used for a tenant that has set no policy of its own for a severity."""


def parse_steps(specs: Iterable[str]) -> tuple[Step, ...]:
    """``["remind:10m", "remind:15m:next", "staff:20m", "final:1h"]`` → steps, in order.

    >>> [s.action for s in parse_steps(["staff:20m", "remind:10m:next"])]
    ['remind@600', 'staff@1200']
    """
    steps = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "next"):
            raise ValueError(f"step {spec!r} must be KIND:DELAY[:next], e.g. remind:10m or remind:15m:next")
        steps.append(Step(parse_duration(parts[1]), parts[0], len(parts) == 3))  # type: ignore[arg-type]
    return tuple(sorted(steps, key=lambda s: s.after_s))


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``2h``, ``1d`` → seconds; :class:`ValueError` for anything else.

    >>> parse_duration("10m"), parse_duration("1.5h")
    (600.0, 5400.0)
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    if not text or text[-1] not in units:
        raise ValueError(f"duration {text!r} needs a unit: s, m, h or d (e.g. 10m)")
    try:
        value = float(text[:-1])
    except ValueError:
        raise ValueError(f"duration {text!r} is not a number with a unit (e.g. 10m)") from None
    if not value > 0:
        raise ValueError(f"duration {text!r} must be positive")
    return value * units[text[-1]]


def due_steps(policy: FollowUpPolicy, sent_at_s: float, now_s: float, done: Sequence[str] = ()) -> list[Step]:
    """The steps of ``policy`` due by ``now_s`` for a warning first sent at ``sent_at_s`` and not
    acknowledged, leaving out those already ``done`` (by action).

    >>> p = DEFAULT_POLICIES["critical"]
    >>> [s.kind for s in due_steps(p, 0, 25 * 60)], [s.kind for s in due_steps(p, 0, 25 * 60, ["remind@600"])]
    (['remind', 'staff'], ['staff'])
    """
    return [s for s in policy.steps if sent_at_s + s.after_s <= now_s and s.action not in done]
