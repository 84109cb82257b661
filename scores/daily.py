"""The daily recompute: every device's score for a local day, from the stored data.

A day's score looks back over a window of :data:`WINDOW_DAYS` local days ending with that
day (midnight to midnight on the deployment's clock, ``FOREWARN_TIMEZONE``): a vehicle's
readings (read through :func:`core.db.iter_readings`, a few hours at a time) give its driver
score, night judged on its customer's own clock; a home's, an equipment site's or a
cold-chain unit's warnings give its property score. Scores are written per (tenant, device,
day, model version) and replaced only when they differ, so a recompute is idempotent and a
past day recomputed from the same data gives the same rows.

Run by ``forewarn scores compute``, and by the worker once a day after local midnight, in a
child process (``python -m scores.daily``), so the scoring's CPU never slows the warnings.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from core import db
from core.localtime import zone
from scores.features import WarningFact, driver_features, property_features
from scores.model import SCORE_VERSION, WINDOW_DAYS, Score, driver_score, property_score

log = logging.getLogger(__name__)

DRIVING_METRICS: tuple[str, ...] = ("ignition", "speed_kmh", "speed_limit_kmh", "accel_long_g", "lat", "lon")
"""What a driver score reads of a vehicle's readings."""
SCORE_KIND: dict[str, str] = {"vehicle": "driver", "home": "property", "equipment": "property", "coldchain": "property"}
"""Which score each device kind gets."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def score_window(day: date, tz: ZoneInfo, days: int = WINDOW_DAYS) -> tuple[datetime, datetime]:
    """[start, end) of ``day``'s window: local midnight ``days - 1`` days before it to the
    local midnight after it, on ``tz``'s clock (UTC datetimes).

    >>> start, end = score_window(date(2025, 1, 31), zone("Asia/Shanghai"))
    >>> start.isoformat(), end.isoformat()
    ('2025-01-03T16:00:00+00:00', '2025-01-31T16:00:00+00:00')
    """
    if days < 1:
        raise ValueError("a window needs at least one day")
    first = datetime.combine(day - timedelta(days=days - 1), clock(0), tz)
    after = datetime.combine(day + timedelta(days=1), clock(0), tz)
    return first.astimezone(UTC), after.astimezone(UTC)


def last_complete_day(now: datetime, tz: ZoneInfo) -> date:
    """The newest local day that has ended by ``now``: yesterday on ``tz``'s clock.

    >>> last_complete_day(datetime(2025, 1, 31, 17, 0, tzinfo=UTC), zone("Asia/Shanghai"))  # 01:00 on Feb 1
    datetime.date(2025, 1, 31)
    """
    return now.astimezone(tz).date() - timedelta(days=1)


SCORE_AFTER = timedelta(minutes=30)
"""How long after local midnight the worker scores the day that ended (its last readings in)."""
EXIT_BUSY = 3
"""``python -m scores.daily``'s exit status when another recompute holds the lock."""


def due_day(now: datetime, tz: ZoneInfo, done: date | None, after: timedelta = SCORE_AFTER) -> date | None:
    """The day the worker's daily recompute should score at ``now``: the last complete local
    day once ``after`` has passed since local midnight, unless that day is ``done``.

    >>> tz = zone("Asia/Shanghai")
    >>> due_day(datetime(2025, 1, 31, 16, 10, tzinfo=UTC), tz, None)  # 00:10 on Feb 1: too early
    >>> due_day(datetime(2025, 1, 31, 16, 45, tzinfo=UTC), tz, None)
    datetime.date(2025, 1, 31)
    >>> due_day(datetime(2025, 1, 31, 23, 0, tzinfo=UTC), tz, date(2025, 1, 31))  # done already
    """
    local = now.astimezone(tz)
    if local - datetime.combine(local.date(), clock(0), tz) < after:
        return None
    day = local.date() - timedelta(days=1)
    return None if done is not None and day <= done else day


def score_device(conn: Any, device: dict[str, Any], start: datetime, end: datetime, default_tz: ZoneInfo) -> Score:
    """One device's score over [start, end) from what ``conn`` has stored."""
    tenant, name, kind = device["tenant"], device["device"], device["kind"]
    if SCORE_KIND.get(kind) == "driver":
        tz = zone(device.get("timezone"), str(default_tz))
        readings = db.iter_readings(conn, tenant, name, start, end, DRIVING_METRICS)
        return driver_score(driver_features(readings, tz))
    facts = [
        WarningFact(
            w["risk"], w["severity"], _ms(w["opened_at"]), None if w["resolved_at"] is None else _ms(w["resolved_at"])
        )
        for w in db.device_warnings(conn, tenant, name, start, end)
    ]
    reported = db.has_readings(conn, tenant, name, start, end)
    return property_score(property_features(facts, _ms(start), _ms(end)), reported=reported)


@dataclass
class RecomputeReport:
    """What one :func:`recompute` did."""

    day: date
    version: str
    devices: int = 0
    """Devices scored (the others: already scored, with ``only_missing``)."""
    written: int = 0
    """Scores new or changed."""
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(tenant/device, why) of the devices that could not be scored."""
    busy: bool = False
    """Another recompute was running: nothing done."""
    kept_stored: bool = False
    """The window reaches back beyond the readings' retention: some of its readings may be
    gone, so the scores stored for the day were kept and only missing ones computed."""
    seconds: float = 0.0
    grades: dict[str, int] = field(default_factory=dict)


Progress = Callable[[int, int, str], None]
"""Called after each device: (devices done, devices to do, tenant/device)."""


def recompute(
    url: str,
    day: date | None = None,
    *,
    tenant: str | None = None,
    only_missing: bool = False,
    timezone: str | None = None,
    window_days: int = WINDOW_DAYS,
    retention_days: int | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RecomputeReport:
    """Score every registered device (or ``tenant``'s) for ``day`` (default: the last complete
    local day) and store the scores; ``only_missing``: only the devices without a score for
    that day under this model version. When the window reaches back beyond
    ``retention_days`` (``FOREWARN_RETENTION_DAYS``: readings older are dropped), stored scores
    are kept — recomputed from fewer readings they would change — and only missing ones are
    computed. One recompute at a time (a second one returns ``busy``). A device that fails is
    logged and listed, and the others go on."""
    t0 = time.perf_counter()
    tz = zone(timezone)
    now = now or datetime.now(UTC)
    day = day or last_complete_day(now, tz)
    start, end = score_window(day, tz, window_days)
    report = RecomputeReport(day, SCORE_VERSION)
    if retention_days is not None and start < now - timedelta(days=retention_days):
        only_missing = report.kept_stored = True
    with db.session(url) as conn, db.scores_lock(conn) as locked:
        if not locked:
            report.busy = True
            return report
        devices = db.score_targets(conn, tenant)
        done = db.scored_devices(conn, day, SCORE_VERSION)  # also: is the table there (migrated)?
        if only_missing:
            devices = [d for d in devices if (d["tenant"], d["device"]) not in done]
        for i, device in enumerate(devices, 1):
            key = f"{device['tenant']}/{device['device']}"
            try:
                score = score_device(conn, device, start, end, tz)
                changed = db.write_risk_score(conn, _row(device, day, score, start, end))
            except db.DatabaseError:
                raise
            except Exception as exc:  # noqa: BLE001 - one device's bad data must not stop the day
                log.exception("risk score of %s for %s failed", key, day)
                report.failed.append((key, (str(exc).splitlines() or [repr(exc)])[0]))
            else:
                report.devices += 1
                report.written += int(changed)
                report.unchanged += int(not changed)
                report.grades[score.grade] = report.grades.get(score.grade, 0) + 1
            if progress is not None:
                progress(i, len(devices), key)
    report.seconds = time.perf_counter() - t0
    return report


def _row(device: dict[str, Any], day: date, score: Score, start: datetime, end: datetime) -> dict[str, Any]:
    doc = score.to_json()
    return {
        "tenant": device["tenant"],
        "device": device["device"],
        "kind": score.kind,
        "day": day,
        "score": score.value,
        "grade": score.grade,
        "factors": doc["factors"],
        "basis": doc["basis"],
        "version": score.version,
        "window_start": start,
        "window_end": end,
    }


def stored_scores(
    url: str, tenant: str, device: str | None = None, day: date | None = None, days: int = 1
) -> list[dict[str, Any]]:
    """A tenant's stored scores (or one device's), newest day first: for the CLI and the API
    (``core.db.risk_scores``)."""
    with db.session(url) as conn:
        return db.risk_scores(conn, tenant, device, day, days=days)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scores.daily [YYYY-MM-DD]``: the missing scores of that day (default: the
    last complete local day), logged; what the worker's daily timer runs. Exits 0 when every
    device is scored, 1 when some failed, :data:`EXIT_BUSY` when another recompute runs."""
    from core.settings import get_settings

    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    day = date.fromisoformat(args[0]) if args else None
    report = recompute(
        settings.database_url,
        day,
        only_missing=True,
        timezone=settings.timezone,
        retention_days=settings.retention_days,
    )
    if report.busy:
        log.info("risk scores for %s: another recompute is running", report.day)
        return EXIT_BUSY
    log.info(
        "risk scores for %s (model %s): %d devices scored, %d new or changed, %d failed (%.1f s); grades %s",
        report.day,
        report.version,
        report.devices,
        report.written,
        len(report.failed),
        report.seconds,
        report.grades,
    )
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
