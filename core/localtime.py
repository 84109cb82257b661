"""The one time-zone rule: a customer's own zone, else the deployment's default.

Messages state times on the customer's clock; the simulator's daily rhythms, the demo summary
and reports use the same rule. The default zone is ``FOREWARN_TIMEZONE`` (``Asia/Shanghai``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"


@lru_cache(maxsize=256)
def zone(name: str | None, default: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    """The zone a customer's times are shown in: ``name`` when given, else ``default``.

    >>> str(zone(None)), str(zone("Europe/Berlin"))
    ('Asia/Shanghai', 'Europe/Berlin')
    """
    return check_zone(name or default)


def check_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; :class:`ValueError` with an example when it is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file name
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Asia/Shanghai") from None


def local_datetime(ts_ms: int, tz: ZoneInfo) -> datetime:
    """Epoch milliseconds → an aware datetime on ``tz``'s clock."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(tz)


def hour_of_day(ts_ms: int, tz: ZoneInfo) -> float:
    """Hour of the day (0–24, fractional) on ``tz``'s clock.

    >>> hour_of_day(1_763_654_400_000 + 5_400_000, zone(None))  # 2025-11-21 01:30 in Shanghai
    1.5
    """
    local = local_datetime(ts_ms, tz)
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def utc_offset_hours(tz: ZoneInfo, at_ms: int) -> float:
    """``tz``'s offset from UTC in hours at ``at_ms`` (vectorised code applies it to a whole span).

    >>> utc_offset_hours(zone(None), 1_763_654_400_000)
    8.0
    """
    offset = local_datetime(at_ms, tz).utcoffset()
    return offset.total_seconds() / 3600 if offset else 0.0
