"""Quiet hours and message budgets, on the customer's own clock. Pure.

A customer may set quiet hours (``22:00-07:00``) in their own time zone
(``core.localtime``). A critical warning always goes through; anything else that falls in
quiet hours waits until they end — it is never dropped. A per-customer budget caps the
non-critical messages of one local day; what is over the budget is held and goes out as one
digest when the day's budget resets (or at the end of quiet hours, whichever comes later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Decision = Literal["send", "hold_quiet", "hold_budget"]


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    """Quiet from ``start`` to ``end`` local time; ``end`` before ``start`` wraps past midnight."""

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours must not start and end at the same time")

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"22:00-07:00"`` → quiet hours; :class:`ValueError` with an example otherwise.

        >>> QuietHours.parse("22:00-07:00").contains(time(23, 30))
        True
        """
        try:
            a, b = text.split("-")
            return cls(time.fromisoformat(a.strip()), time.fromisoformat(b.strip()))
        except ValueError as exc:
            if "same time" in str(exc):
                raise
            raise ValueError(f"quiet hours {text!r} must look like 22:00-07:00") from None

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def end_after(self, local: datetime) -> datetime:
        """The first end of quiet hours after ``local`` (an aware local datetime)."""
        candidate = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return candidate if candidate > local else candidate + timedelta(days=1)

    def minutes(self) -> set[int]:
        """The minutes of the day it covers (to find overlaps between several windows)."""
        s, e = self.start.hour * 60 + self.start.minute, self.end.hour * 60 + self.end.minute
        return set(range(s, e)) if s < e else set(range(s, 1440)) | set(range(0, e))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def check_windows(windows: list[QuietHours]) -> list[QuietHours]:
    """``windows`` when no two overlap; :class:`ValueError` naming the pair otherwise."""
    for i, a in enumerate(windows):
        for b in windows[i + 1 :]:
            if a.minutes() & b.minutes():
                raise ValueError(f"quiet hours {a} and {b} overlap: give one window per stretch of the day")
    return windows


def decide(
    severity: str,
    now_ms: int,
    tz: ZoneInfo,
    windows: list[QuietHours],
    sent_today: int,
    daily_budget: int | None,
) -> tuple[Decision, int | None]:
    """Whether a message goes out now, and if not, when (epoch ms) it may.

    ``sent_today`` counts the non-critical messages already sent on the customer's local day.

    >>> from core.localtime import zone
    >>> night = 1_763_654_400_000 - 3_600_000  # 23:00 in Shanghai
    >>> decide("critical", night, zone(None), [QuietHours.parse("22:00-07:00")], 0, 5)
    ('send', None)
    >>> decide("warning", night, zone(None), [QuietHours.parse("22:00-07:00")], 0, 5)[0]
    'hold_quiet'
    """
    if severity == "critical":
        return "send", None
    local = datetime.fromtimestamp(now_ms / 1000, tz=tz)
    for window in windows:
        if window.contains(local.time()):
            return "hold_quiet", int(window.end_after(local).timestamp() * 1000)
    if daily_budget is not None and sent_today >= daily_budget:
        tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        release = tomorrow
        for window in windows:
            if window.contains(tomorrow.time()):
                release = max(release, window.end_after(tomorrow))
        return "hold_budget", int(release.timestamp() * 1000)
    return "send", None
