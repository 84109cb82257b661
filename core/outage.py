"""One dependency's outage, told once: a line when it starts, a line when it ends.

A process that loses PostgreSQL, Kafka or the MQTT broker keeps going and retries with
backoff (capped, with jitter, so several processes do not retry in step). Logging each attempt
buries the log; :class:`Outage` logs the first failure (what, why, what to check), stays
quiet while the dependency is down, and logs once more when it answers again, with how long
it was gone and how many attempts it took. Pure: the caller sleeps and retries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable


class Outage:
    """The state of one dependency as one caller sees it (``what``: e.g. "PostgreSQL")."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        hint: str = "",
        *,
        first_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.what = what
        self.log = logger
        self.hint = hint
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._jitter = jitter
        self.since: float | None = None
        self.attempts = 0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def down_for(self) -> float:
        return 0.0 if self.since is None else self._clock() - self.since

    def failed(self, exc: BaseException, doing: str = "") -> float:
        """Note a failed attempt; returns how long to wait before the next one. Logs only the
        first failure of an outage."""
        self.attempts += 1
        if self.since is None:
            self.since = self._clock()
            self.outages += 1
            text = (str(exc).strip().splitlines() or [""])[0][:300]
            if isinstance(exc, TimeoutError) and not text:
                text = "no answer in time"
            why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            self.log.warning(
                "%s unavailable%s (%s); waiting and retrying with backoff, nothing is dropped%s",
                self.what,
                f" while {doing}" if doing else "",
                why,
                f"; check {self.hint}" if self.hint else "",
            )
        base = min(self.max_delay_s, self.first_delay_s * 2 ** min(self.attempts - 1, 16))
        return base * (0.75 + 0.5 * self._jitter())

    def recovered(self) -> None:
        """The dependency answered: log the end of the outage, if there was one."""
        if self.since is None:
            return
        self.log.warning(
            "%s back after %.1f s (%d attempt%s); resuming",
            self.what,
            self._clock() - self.since,
            self.attempts,
            "" if self.attempts == 1 else "s",
        )
        self.since = None
        self.attempts = 0
