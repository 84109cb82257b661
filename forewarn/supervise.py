"""When ``forewarn up`` restarts a process that died, and when it gives up: pure, no clock of its own.

A child (ingest, the worker, the API) or a service ``up`` started that dies is restarted after a
backoff that doubles with each death in a row (1, 2, 4 … 30 s), so a process that cannot start
does not spin; a run that lasted ``stable_after_s`` counts as healthy and starts the streak again.
Dying ``max_deaths`` times within ``window_s`` is a crash loop: restarting again would only hide
it, so ``up`` stops everything and exits non-zero with that reason.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0
    """A run at least this long resets the backoff to ``first_delay_s``."""
    max_deaths: int = 5
    window_s: float = 300.0
    """``max_deaths`` deaths within this many seconds is a crash loop: give up."""


@dataclass(frozen=True, slots=True)
class Verdict:
    restart_in_s: float | None
    """Seconds to wait before the restart; ``None``: give up."""
    reason: str
    """What to tell the operator (why it gives up, or which restart this is)."""


@dataclass
class Restarts:
    """The deaths of one supervised process, and what to do about the latest."""

    name: str
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    streak: int = 0
    deaths: list[float] = field(default_factory=list)

    def died(self, at: float, started_at: float) -> Verdict:
        """The process started at ``started_at`` died at ``at`` (seconds on one monotonic clock)."""
        p = self.policy
        if at - started_at >= p.stable_after_s:
            self.streak = 0
        self.streak += 1
        self.deaths = [t for t in self.deaths if at - t < p.window_s] + [at]
        if len(self.deaths) >= p.max_deaths:
            return Verdict(
                None,
                f"{self.name} died {len(self.deaths)} times within {p.window_s / 60:g} min (a crash loop): "
                "its log says why; fix that and start again",
            )
        delay = min(p.max_delay_s, p.first_delay_s * 2 ** min(self.streak - 1, 16))
        return Verdict(
            delay, f"restart {len(self.deaths)} of at most {p.max_deaths - 1} within {p.window_s / 60:g} min"
        )


def exit_description(code: int | None) -> str:
    """A child's return code as a person reads it: ``exit code 1`` or ``killed by SIGKILL``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
