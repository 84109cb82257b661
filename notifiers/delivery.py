"""Delivery that does not give up: which channels a message goes to, and what a failure leads to. Pure.

A customer's channels are an ordered preference list (``customer add --notify A --notify B``).
A critical warning goes to every channel at once; anything else goes to the first channel,
and to the next one only when a channel has failed for good. A failed attempt is retried
after :data:`RETRY_DELAYS_S` (5 s, 30 s, 2 min); after the last retry the channel is given up
and the next channel takes over. Every attempt is a row (``delivery_attempts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RETRY_DELAYS_S: tuple[float, ...] = (5.0, 30.0, 120.0)
"""Waits before the 2nd, 3rd and 4th attempt on one channel."""
SEND_TIMEOUT_S = 45.0
"""An attempt that has not answered by then counts as failed (and is retried)."""
LEASE_S = 120.0
"""A claimed delivery whose sender died is claimed again after this long."""


def first_channels(severity: str, channels: int) -> list[int]:
    """The channel positions a new message goes to.

    >>> first_channels("critical", 3), first_channels("warning", 3), first_channels("warning", 0)
    ([0, 1, 2], [0], [])
    """
    if channels <= 0:
        return []
    return list(range(channels)) if severity == "critical" else [0]


@dataclass(frozen=True, slots=True)
class AfterFailure:
    then: Literal["retry", "next_channel", "give_up"]
    delay_s: float = 0.0
    channel: int | None = None


def after_failure(
    attempts: int, channel: int, channels: int, fanned_out: bool, delays: tuple[float, ...] = RETRY_DELAYS_S
) -> AfterFailure:
    """What follows the ``attempts``-th failed attempt on channel ``channel`` of ``channels``.

    ``fanned_out``: every channel already has its own copy (a critical warning), so no fallback.

    >>> after_failure(1, 0, 2, False), after_failure(4, 0, 2, False).then, after_failure(4, 1, 2, False).then
    (AfterFailure(then='retry', delay_s=5.0, channel=0), 'next_channel', 'give_up')
    """
    if attempts <= len(delays):
        return AfterFailure("retry", delays[attempts - 1], channel)
    if not fanned_out and channel + 1 < channels:
        return AfterFailure("next_channel", 0.0, channel + 1)
    return AfterFailure("give_up")


def reminder_channel(channel_used: int, channels: int, next_channel: bool) -> int:
    """The channel a reminder goes to: the next one after the channel used, when asked and there is one.

    >>> reminder_channel(0, 2, True), reminder_channel(1, 2, True), reminder_channel(0, 2, False)
    (1, 1, 0)
    """
    if next_channel and channel_used + 1 < channels:
        return channel_used + 1
    return channel_used
