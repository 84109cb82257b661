"""PostgreSQL / TimescaleDB: migrations, the registry, idempotent writes. The only psycopg module.

Migrations are the numbered ``migrations/*.sql`` files, applied once each under an advisory
lock; when the ``timescaledb`` extension is available, ``readings`` becomes a hypertable
(with compression, retention and an hourly continuous aggregate under the Timescale licence).
Without it the same schema stays plain tables, and ``readings_hourly`` is a ``date_bin`` view.

Under TimescaleDB's Apache licence (no continuous aggregates, no jobs) ``readings_hourly`` is a
roll-up table kept current by :func:`refresh_rollups`, and :func:`apply_retention` drops whole
chunks; the worker runs both on a timer. :func:`series` reads one device's series at a chosen
resolution, with the same buckets (origin 2000-01-03 UTC) on every path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from core import lifecycle
from core.contract import DEVICE_KINDS, LOCALES, SEGMENT_RE, ReadingsBatch
from core.risks import check_risk

log = logging.getLogger(__name__)

_LOCK_ID = 0x0F0E_3A2E  # advisory lock for migrations


class DatabaseError(RuntimeError):
    """A database problem stated so an operator can act on it."""


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def ensure_database(url: str) -> bool:
    """Create the configured database when the server has none by that name."""
    info = conninfo_to_dict(url)
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise DatabaseError(f"cannot reach PostgreSQL at {_where(url)}: {exc}".strip()) from None
    name = info.get("dbname", "forewarn")
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
        except psycopg.errors.DuplicateDatabase:
            return False
    log.info("created database %s", name)
    return True


def _where(url: str) -> str:
    info = conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: tuple[str, ...]
    timescale: bool
    timescale_licence: str | None


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("core") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def migrate(
    url: str, progress: Callable[[str], None] = log.info, *, retention_days: int | None = None
) -> MigrationReport:
    """Bring the schema up to date; safe to run again and from several processes at once.

    ``retention_days`` (default ``FOREWARN_RETENTION_DAYS``) sets the retention policy where
    TimescaleDB runs its own jobs (Timescale licence); elsewhere :func:`apply_retention` applies it.
    """
    if retention_days is None:
        from core.settings import Settings

        retention_days = Settings().retention_days  # read now, not cached: tests set the environment late
    ensure_database(url)
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
            timescale, licence = _enable_timescale(conn, progress)
            for name, text in _migration_files():
                if name in done:
                    continue
                if name.startswith("0002_plain") and timescale:
                    progress(f"skip {name} (readings is a hypertable)")
                else:
                    progress(f"apply {name}")
                with conn.transaction():
                    if not (name.startswith("0002_plain") and timescale):
                        conn.execute(text)  # type: ignore[arg-type]
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                    if name.startswith("0001") and timescale:
                        _hypertable(conn, licence, progress)
                applied.append(name)
            _hourly_view(conn, timescale, licence, progress)
            if licence == "timescale":
                _retention_policy(conn, retention_days, progress)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return MigrationReport(tuple(applied), timescale, licence)


def _enable_timescale(conn: psycopg.Connection[Any], progress: Callable[[str], None]) -> tuple[bool, str | None]:
    """Enable TimescaleDB when the server can run it; say which way it went and why."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is None:
            progress("TimescaleDB is not installed on this server: plain PostgreSQL tables")
            return False, None
        if not timescale_preloaded(conn):
            # CREATE EXTENSION would fail and close the connection: say what to set instead
            progress(
                "TimescaleDB is installed but not preloaded: set shared_preload_libraries = 'timescaledb'"
                " in postgresql.conf and restart PostgreSQL to use it; continuing on plain PostgreSQL tables"
            )
            return False, None
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except psycopg.Error as exc:  # no privilege, or a broken installation
            progress(f"TimescaleDB cannot be enabled ({exc}); continuing on plain PostgreSQL tables")
            return False, None
    licence = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return True, (licence[0] if licence else None)


def timescale_status(url: str) -> str:
    """``preloaded`` (TimescaleDB usable), ``not_preloaded`` (installed, not loaded at start),
    ``not_installed``, or ``unreachable``, for the server ``url`` points at."""
    try:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), connect_timeout=5) as conn:
            if timescale_preloaded(conn):
                return "preloaded"
            row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
            return "not_preloaded" if row else "not_installed"
    except psycopg.Error:
        return "unreachable"


def timescale_preloaded(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server loads TimescaleDB at start (``shared_preload_libraries``)."""
    row = conn.execute("SELECT current_setting('shared_preload_libraries', true)").fetchone()
    libraries = [part.strip() for part in str(row[0] if row and row[0] else "").split(",")]
    return any(lib == "timescaledb" or lib.startswith("timescaledb-") for lib in libraries)


def _hypertable(conn: psycopg.Connection[Any], licence: str | None, progress: Callable[[str], None]) -> None:
    progress("make readings a hypertable")
    conn.execute(
        "SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '1 day',"
        " if_not_exists => true, migrate_data => true)"
    )
    if licence == "timescale":
        conn.execute(
            "ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'tenant, device, metric')"
        )
        conn.execute("SELECT add_compression_policy('readings', interval '7 days', if_not_exists => true)")
        # the retention policy (FOREWARN_RETENTION_DAYS) is set by _retention_policy after the files


ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
"""Where every bucket grid starts, on every path: time_bucket's default origin (a Monday),
given to date_bin too, so both cut time at the same instants."""
_ORIGIN_SQL = "timestamptz '2000-01-03 00:00:00+00'"  # +00: never the session's time zone
HOUR = timedelta(hours=1)
LATE_DATA = timedelta(days=3)
"""How late a reading may be stored (after its own time) and still be rolled up by a default
:func:`refresh_rollups` (the same window as the continuous aggregate's policy)."""
RECENT_DATA = timedelta(hours=1)
"""The window of the worker's frequent refreshes (every few minutes): readings stored later
than this after their own time wait for its hourly refresh over :data:`LATE_DATA`."""
_REALTIME_MARGIN = timedelta(minutes=15)
""":func:`series` reads raw readings from this long before the last refresh on: rows whose
transaction was still open when the refresh took its snapshot are there, not yet rolled up."""
_ROLLUP_LOCK = 0x0F0E_3A2F  # one refresh at a time (several workers run the same timer)
_RETENTION_LOCK = 0x0F0E_3A30
_HOURLY_COLUMNS = "tenant, device, metric, bucket, avg_value, min_value, max_value, n, sum_value"
_HOURLY_SELECT = (
    "SELECT tenant, device, metric, {bucket} AS bucket, avg(value) AS avg_value, min(value) AS min_value,"
    " max(value) AS max_value, count(*) AS n, sum(value) AS sum_value FROM readings{where}"
    " GROUP BY tenant, device, metric, bucket"
)


def _bucket_sql(timescale: bool, width: str = "interval '1 hour'", column: str = "ts") -> str:
    """time_bucket on TimescaleDB, date_bin elsewhere: same origin, so the same buckets."""
    return f"{'time_bucket' if timescale else 'date_bin'}({width}, {column}, {_ORIGIN_SQL})"


def _floor(moment: datetime, width: timedelta) -> datetime:
    """The start of ``moment``'s bucket of ``width`` (Python's twin of date_bin/time_bucket)."""
    return moment - (moment - ORIGIN) % width


def _has_timescale(conn: psycopg.Connection[Any]) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def _has_column(conn: psycopg.Connection[Any], relation: str, column: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
        (relation, column),
    ).fetchone()
    return row is not None


def _rollup_kind(conn: psycopg.Connection[Any]) -> str | None:
    """What ``readings_hourly`` is here: ``table``, ``view``, ``cagg`` (continuous aggregate), or None."""
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('readings_hourly')").fetchone()
    if row is None:
        return None
    if row[0] in ("r", "p"):
        return "table"
    if (
        _has_timescale(conn)
        and conn.execute(
            "SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_hourly'"
        ).fetchone()
    ):
        return "cagg"
    return "view"


def _hourly_view(
    conn: psycopg.Connection[Any], timescale: bool, licence: str | None, progress: Callable[[str], None]
) -> None:
    """Make ``readings_hourly`` what this server can keep current, with the same columns everywhere:
    tenant, device, metric, bucket (1 h), avg_value, min_value, max_value, n, sum_value."""
    kind = _rollup_kind(conn)
    if timescale and licence == "timescale":
        if kind == "cagg" and _has_column(conn, "readings_hourly", "sum_value"):
            return
        _continuous_aggregate(conn, kind, progress)
    elif timescale:
        if kind != "table":
            _rollup_table(conn, kind, progress)
    elif kind is None or (kind == "view" and not _has_column(conn, "readings_hourly", "sum_value")):
        # (a roll-up table made under TimescaleDB stays: refresh_rollups keeps it with date_bin)
        progress(("create" if kind is None else "update") + " view readings_hourly (date_bin)")
        conn.execute(
            "CREATE OR REPLACE VIEW readings_hourly AS "
            + _HOURLY_SELECT.format(bucket=_bucket_sql(timescale=False), where="")
        )


def _continuous_aggregate(conn: psycopg.Connection[Any], kind: str | None, progress: Callable[[str], None]) -> None:
    """Timescale licence: readings_hourly as a continuous aggregate with its refresh policy."""
    if kind is not None:  # a view, a roll-up table, or an aggregate without sum_value: rebuilt from readings
        progress(f"replace {kind} readings_hourly by a continuous aggregate")
        drop = {"table": "TABLE", "view": "VIEW", "cagg": "MATERIALIZED VIEW"}[kind]
        conn.execute(f"DROP {drop} readings_hourly")
    else:
        progress("create continuous aggregate readings_hourly")
    conn.execute(
        "CREATE MATERIALIZED VIEW readings_hourly WITH (timescaledb.continuous) AS "
        # time_bucket's default origin for timestamptz is ORIGIN, the same as date_bin's elsewhere
        + _HOURLY_SELECT.format(bucket="time_bucket(interval '1 hour', ts)", where="")
        + " WITH NO DATA"
    )
    conn.execute(
        "SELECT add_continuous_aggregate_policy('readings_hourly', start_offset => interval '3 days',"
        " end_offset => interval '1 hour', schedule_interval => interval '30 minutes')"
    )
    if kind is not None:  # the policy only covers 3 days: materialize the history once (autocommit)
        conn.execute("CALL refresh_continuous_aggregate('readings_hourly', NULL, now() - interval '1 hour')")


def _rollup_table(conn: psycopg.Connection[Any], kind: str | None, progress: Callable[[str], None]) -> None:
    """Apache licence: readings_hourly as a table that refresh_rollups keeps current.

    Built as ``readings_hourly_new`` from all readings, then swapped for the view (if any) in a
    short transaction: readers keep the view until the table is complete. A converted table's
    watermark is the build's snapshot, so the next refresh adds what was stored meanwhile; a new
    table has none, so the first refresh rolls up everything (a bulk load included)."""
    progress(f"replace {kind} readings_hourly by a roll-up table" if kind else "create roll-up table readings_hourly")
    conn.execute("DROP TABLE IF EXISTS readings_hourly_new")  # left by an interrupted conversion
    with conn.transaction():
        conn.execute(
            "CREATE TABLE readings_hourly_new ("
            " tenant text NOT NULL, device text NOT NULL, metric text NOT NULL, bucket timestamptz NOT NULL,"
            " avg_value double precision NOT NULL, min_value double precision NOT NULL,"
            " max_value double precision NOT NULL, n bigint NOT NULL, sum_value double precision NOT NULL,"
            " CONSTRAINT readings_hourly_pkey PRIMARY KEY (tenant, device, metric, bucket))"
        )
        conn.execute("CREATE INDEX readings_hourly_bucket ON readings_hourly_new (bucket)")  # retention
        snapshot = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            f"INSERT INTO readings_hourly_new ({_HOURLY_COLUMNS}) "  # noqa: S608 - our own constants
            + _HOURLY_SELECT.format(bucket=_bucket_sql(_has_timescale(conn)), where="")
        )
    with conn.transaction():
        if kind is not None:
            conn.execute(f"DROP {'MATERIALIZED VIEW' if kind == 'cagg' else 'VIEW'} readings_hourly")
        conn.execute("ALTER TABLE readings_hourly_new RENAME TO readings_hourly")
        if kind is not None:
            _set_watermark(conn, snapshot)


def _set_watermark(conn: psycopg.Connection[Any], refreshed_at: datetime) -> None:
    conn.execute(
        "INSERT INTO rollup_watermarks (rollup, refreshed_at) VALUES ('readings_hourly', %s)"
        " ON CONFLICT (rollup) DO UPDATE SET refreshed_at = excluded.refreshed_at, updated_at = now()",
        (refreshed_at,),
    )


def _retention_policy(conn: psycopg.Connection[Any], days: int, progress: Callable[[str], None]) -> bool:
    """Timescale licence: TimescaleDB's own retention jobs at ``days`` (readings, and the hourly
    aggregate when its window allows); True when a policy was (re)set."""
    changed = False
    for relation in ("readings", "readings_hourly"):
        row = conn.execute(  # a continuous aggregate's jobs name its materialization hypertable
            "SELECT (config->>'drop_after')::interval = make_interval(days => %(days)s)"
            " FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
            " AND (hypertable_name = %(name)s OR hypertable_name IN (SELECT materialization_hypertable_name"
            " FROM timescaledb_information.continuous_aggregates WHERE view_name = %(name)s))",
            {"days": days, "name": relation},
        ).fetchone()
        if row is not None and row[0]:
            continue
        try:
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (relation,))
            conn.execute("SELECT add_retention_policy(%s, make_interval(days => %s))", (relation, days))
        except psycopg.Error as exc:  # e.g. the aggregate's refresh window (3 days) is longer than days
            progress(f"no retention policy on {relation} ({str(exc).splitlines()[0]})")
            continue
        progress(f"retention policy on {relation}: {days} days")
        changed = True
    return changed


# ------------------------------------------------------------------- roll-ups, retention, series


@contextlib.contextmanager
def _connected(target: str | psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A connection of our own for a URL (autocommit, closed after), or the caller's as it is."""
    if isinstance(target, str):
        with psycopg.connect(target, autocommit=True, connect_timeout=5) as conn:
            yield conn
    else:
        yield target


@dataclass(frozen=True, slots=True)
class RollupRefresh:
    """What one :func:`refresh_rollups` did."""

    rollup: str
    """``table`` (refreshed here), ``view`` (always current), ``cagg`` (TimescaleDB's own job),
    ``busy`` (another process was refreshing), or ``none`` (not migrated)."""
    since: datetime | None
    """First bucket recomputed (None: all of them, or nothing done)."""
    buckets: int
    """(tenant, device, metric, hour) buckets recomputed."""
    changed: int
    """Of those, the ones new or different (the only rows written)."""
    seconds: float


def refresh_rollups(
    target: str | psycopg.Connection[Any], since: datetime | None = None, late: timedelta = LATE_DATA
) -> RollupRefresh:
    """Bring the hourly roll-up table up to date: recompute every bucket from ``since`` on.

    ``since`` defaults to the last refresh minus ``late`` (all buckets on the first refresh), so
    readings stored up to ``late`` after their own time are rolled up; later ones are not. Only
    buckets that are new or differ are written (``INSERT … ON CONFLICT DO UPDATE … WHERE``). Where
    ``readings_hourly`` is a view or a continuous aggregate there is nothing to do. One refresh
    at a time: another one running returns ``busy``."""
    t0 = time.perf_counter()
    with _connected(target) as conn:
        kind = _rollup_kind(conn)
        if kind != "table":
            return RollupRefresh(kind or "none", None, 0, 0, time.perf_counter() - t0)
        bucket = _bucket_sql(_has_timescale(conn))
        with conn.transaction():
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_ROLLUP_LOCK,)).fetchone()
            if not (locked and locked[0]):
                return RollupRefresh("busy", None, 0, 0, time.perf_counter() - t0)
            snapshot, watermark = conn.execute(  # type: ignore[misc]
                "SELECT now(), (SELECT refreshed_at FROM rollup_watermarks WHERE rollup = 'readings_hourly')"
            ).fetchone()
            if since is None and watermark is not None:
                since = watermark - late
            start = None if since is None else _floor(since, HOUR)
            fresh = _HOURLY_SELECT.format(bucket=bucket, where="" if start is None else " WHERE ts >= %(start)s")
            counts = conn.execute(
                f"WITH fresh AS ({fresh}), written AS ("  # noqa: S608 - our own constants
                f" INSERT INTO readings_hourly AS h ({_HOURLY_COLUMNS}) SELECT {_HOURLY_COLUMNS} FROM fresh"
                " ON CONFLICT (tenant, device, metric, bucket) DO UPDATE SET avg_value = excluded.avg_value,"
                " min_value = excluded.min_value, max_value = excluded.max_value, n = excluded.n,"
                " sum_value = excluded.sum_value"
                " WHERE (h.n, h.sum_value, h.min_value, h.max_value)"
                " IS DISTINCT FROM (excluded.n, excluded.sum_value, excluded.min_value, excluded.max_value)"
                " RETURNING 1)"
                " SELECT (SELECT count(*) FROM fresh), (SELECT count(*) FROM written)",
                {"start": start},
            ).fetchone()
            _set_watermark(conn, snapshot)
    buckets, changed = counts if counts else (0, 0)
    return RollupRefresh("table", start, int(buckets), int(changed), time.perf_counter() - t0)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one :func:`apply_retention` did."""

    how: str
    """``chunks`` (drop_chunks on the hypertable), ``delete`` (batched DELETE, plain tables),
    ``policy`` (TimescaleDB's own job, Timescale licence), or ``busy`` (another process at it)."""
    cutoff: datetime | None
    """Readings older than this may go (whole chunks: some a little older stay until their chunk
    is all past it)."""
    chunks_dropped: int
    rows_deleted: int
    """Readings deleted by the batched DELETE (0 when whole chunks were dropped)."""
    rollups_deleted: int
    seconds: float


def apply_retention(target: str | psycopg.Connection[Any], days: int, batch: int = 50_000) -> RetentionReport:
    """Forget readings older than ``days`` (and the hourly roll-ups of what is gone).

    On a hypertable: ``drop_chunks`` (whole chunks, nearly free); roll-ups go below the oldest
    chunk left. On plain tables: DELETE in batches of ``batch`` rows, one transaction each, up to
    a whole hour. Under the Timescale licence TimescaleDB's own retention job does it: its policy
    is set to ``days`` and nothing is dropped here."""
    if days < 1:
        raise ValueError(f"retention days must be at least 1, got {days}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    t0 = time.perf_counter()
    with _connected(target) as conn:
        timescale = _has_timescale(conn)
        if timescale:
            row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
            if row is not None and row[0] == "timescale":
                _retention_policy(conn, days, log.info)
                return RetentionReport("policy", None, 0, 0, 0, time.perf_counter() - t0)
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_RETENTION_LOCK,)).fetchone()
        if not (locked and locked[0]):
            return RetentionReport("busy", None, 0, 0, 0, time.perf_counter() - t0)
        try:
            return _retention(conn, days, batch, timescale, t0)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_RETENTION_LOCK,))


def _retention(conn: psycopg.Connection[Any], days: int, batch: int, timescale: bool, t0: float) -> RetentionReport:
    cutoff: datetime = conn.execute("SELECT now() - make_interval(days => %s)", (days,)).fetchone()[0]  # type: ignore[index]
    rollup_table = _rollup_kind(conn) == "table"
    hypertable = timescale and (
        conn.execute("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings'").fetchone()
        is not None
    )
    rollups = 0
    if hypertable:
        with conn.transaction():
            dropped = conn.execute("SELECT drop_chunks('readings', older_than => %s)", (cutoff,)).fetchall()
            if rollup_table:  # what the chunks left summarise stays: below the oldest chunk left, or the cutoff
                rollups = conn.execute(
                    "DELETE FROM readings_hourly WHERE bucket < LEAST(%s, (SELECT min(range_start)"
                    " FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'))",
                    (_floor(cutoff, HOUR),),
                ).rowcount
        return RetentionReport("chunks", cutoff, len(dropped), 0, rollups, time.perf_counter() - t0)
    cutoff = _floor(cutoff, HOUR)  # whole hours: the roll-up's buckets stay exact
    deleted = 0
    while True:
        with conn.transaction():
            n = conn.execute(
                "DELETE FROM readings WHERE ctid = ANY(ARRAY(SELECT ctid FROM readings WHERE ts < %s LIMIT %s))",
                (cutoff, batch),
            ).rowcount
        deleted += n
        if n < batch:
            break
    if rollup_table:
        with conn.transaction():
            rollups = conn.execute("DELETE FROM readings_hourly WHERE bucket < %s", (cutoff,)).rowcount
    return RetentionReport("delete", cutoff, 0, deleted, rollups, time.perf_counter() - t0)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket of one metric: its start, and the values stored in it."""

    bucket: datetime
    avg: float
    min: float
    max: float
    n: int


MIN_RESOLUTION = timedelta(seconds=1)
MAX_RESOLUTION = timedelta(days=7)
MAX_POINTS = 100_000
"""Buckets per metric one :func:`series` call may ask for."""
_RESOLUTION_RE = re.compile(r"([1-9][0-9]*)\s*(s|m|min|h|d|w)")
_RESOLUTION_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_resolution(value: str | timedelta) -> timedelta:
    """``30s``, ``1m``, ``15m``, ``1h``, ``6h``, ``1d``, ``1w`` (or a timedelta) → the bucket width.

    Whole seconds from 1 s to 7 days: fixed widths only (no months), so that date_bin and
    time_bucket cut the same buckets."""
    if isinstance(value, str):
        match = _RESOLUTION_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"resolution {value!r} must be a whole number and a unit: 30s, 1m, 15m, 1h, 6h, 1d, 1w")
        width = timedelta(**{_RESOLUTION_UNITS[match[2]]: int(match[1])})
    elif isinstance(value, timedelta):
        width = value
    else:
        raise ValueError(f"resolution must be a string such as '1h' or a timedelta, got {type(value).__name__}")
    if width % MIN_RESOLUTION or not MIN_RESOLUTION <= width <= MAX_RESOLUTION:
        raise ValueError(f"resolution {value!r} must be whole seconds from 1 s to 7 days")
    return width


def _series_window(start: datetime, end: datetime, width: timedelta) -> tuple[datetime, datetime]:
    """[start, end) widened to whole buckets, checked."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a time zone (aware datetimes)")
    if start >= end:
        raise ValueError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    first, last = _floor(start, width), _floor(end, width)
    if last < end:
        last += width
    if (last - first) // width > MAX_POINTS:
        asked = (last - first) // width
        raise ValueError(f"{asked:,} buckets asked for, at most {MAX_POINTS:,}: use a coarser resolution")
    return first, last


_SERIES_CONTEXT = (
    "SELECT c.relkind, EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),"
    " (SELECT refreshed_at FROM rollup_watermarks WHERE rollup = 'readings_hourly')"
    " FROM (SELECT 1) AS one LEFT JOIN pg_class c ON c.oid = to_regclass('readings_hourly')"
)
_SERIES_CAGG = "SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_hourly'"


def _series_sql(
    relkind: str | None,
    timescale: bool,
    cagg: bool,
    watermark: datetime | None,
    params: dict[str, Any],
) -> str:
    """The series query for this server; ``params`` (tenant, device, first, last, width, metrics)
    gains ``split``: roll-up buckets before it, raw readings from it on."""
    width: timedelta = params["width"]
    only = " AND metric = ANY(%(metrics)s)" if params.get("metrics") is not None else ""
    bucket = _bucket_sql(timescale, width="%(width)s", column="ts")
    rollup = width % HOUR == timedelta(0) and (relkind in ("r", "p") or cagg)
    if not rollup:
        return (
            f"SELECT metric, {bucket} AS bucket, avg(value), min(value), max(value), count(*)"  # noqa: S608
            " FROM readings WHERE tenant = %(tenant)s AND device = %(device)s"
            f" AND ts >= %(first)s AND ts < %(last)s{only} GROUP BY metric, bucket ORDER BY metric, bucket"
        )
    if cagg:  # TimescaleDB's own aggregate: its real-time setting decides about the newest hours
        split = params["last"]
    elif watermark is None:
        split = params["first"]
    else:
        split = min(max(_floor(watermark - _REALTIME_MARGIN, HOUR), params["first"]), params["last"])
    params["split"] = split
    return (
        "WITH parts AS ("  # noqa: S608 - our own constants
        " SELECT metric, bucket AS ts, sum_value AS s, n, min_value AS lo, max_value AS hi FROM readings_hourly"
        f" WHERE tenant = %(tenant)s AND device = %(device)s AND bucket >= %(first)s AND bucket < %(split)s{only}"
        " UNION ALL"
        " SELECT metric, ts, value, 1, value, value FROM readings"
        f" WHERE tenant = %(tenant)s AND device = %(device)s AND ts >= %(split)s AND ts < %(last)s{only})"
        f" SELECT metric, {bucket} AS bucket, sum(s) / sum(n)::float8, min(lo), max(hi), sum(n)::bigint"
        " FROM parts GROUP BY metric, bucket ORDER BY metric, bucket"
    )


def _series_params(
    tenant: str,
    device: str,
    start: datetime,
    end: datetime,
    resolution: str | timedelta,
    metrics: Sequence[str] | None,
) -> dict[str, Any]:
    width = parse_resolution(resolution)
    first, last = _series_window(start, end, width)
    return {
        "tenant": tenant,
        "device": device,
        "first": first,
        "last": last,
        "width": width,
        "metrics": None if metrics is None else list(metrics),
    }


def _series_points(rows: Iterable[Sequence[Any]]) -> dict[str, list[SeriesPoint]]:
    out: dict[str, list[SeriesPoint]] = {}
    for metric, bucket, avg, lo, hi, n in rows:
        out.setdefault(metric, []).append(SeriesPoint(bucket, float(avg), float(lo), float(hi), int(n)))
    return out


def series(
    target: str | psycopg.Connection[Any],
    tenant: str,
    device: str,
    start: datetime,
    end: datetime,
    resolution: str | timedelta = "1h",
    metrics: Sequence[str] | None = None,
) -> dict[str, list[SeriesPoint]]:
    """One device's series per metric (all of them, or ``metrics``) over [start, end) widened to
    whole buckets of ``resolution``: metric → points in time order (average, min, max, count).

    Buckets start on the same grid on every path (:data:`ORIGIN`): time_bucket on TimescaleDB,
    date_bin elsewhere. Hourly and coarser read the hourly roll-up (where it is a table or a
    continuous aggregate) up to the last refresh and raw readings after it, so the answers are
    those of the raw readings (averages merged from hourly sums may differ in the last bits).
    Raises ValueError for a bad resolution or range."""
    params = _series_params(tenant, device, start, end, resolution, metrics)
    with _connected(target) as conn:
        relkind, timescale, watermark = conn.execute(_SERIES_CONTEXT).fetchone()  # type: ignore[misc]
        cagg = bool(timescale and relkind == "v" and conn.execute(_SERIES_CAGG).fetchone())
        statement = _series_sql(relkind, timescale, cagg, watermark, params)
        return _series_points(conn.execute(statement, params).fetchall())  # type: ignore[arg-type]


# ------------------------------------------------------------------- registry (CLI, sync)


def _check_id(value: str, what: str) -> None:
    if not SEGMENT_RE.match(value):
        raise ValueError(f"{what} {value!r} must match {SEGMENT_RE.pattern} (lower-case, digits, - _)")


@contextlib.contextmanager
def _registry(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A short-lived connection for the CLI; connection and schema problems become clear errors."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot reach PostgreSQL at {_where(url)} ({str(exc).splitlines()[0]}); "
            "is it running, and is FOREWARN_DATABASE_URL right?"
        ) from None
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        raise DatabaseError(
            f"the database {_where(url)} has no (or an older) forewarn schema: run 'forewarn db migrate'"
        ) from None


def add_customer(url: str, customer_id: str, name: str, locale: str, notify: Sequence[str]) -> None:
    """Create or update a customer (idempotent: the same command twice changes nothing)."""
    _check_id(customer_id, "customer id")
    if locale not in LOCALES:
        raise ValueError(f"locale {locale!r} must be one of {', '.join(LOCALES)}")
    with _registry(url) as conn:
        conn.execute(
            "INSERT INTO customers (id, name, locale, notify_urls) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, locale = excluded.locale,"
            " notify_urls = excluded.notify_urls, updated_at = now()",
            (customer_id, name, locale, list(notify)),
        )


def add_device(url: str, device_id: str, tenant: str, customer_id: str, kind: str) -> None:
    _check_id(device_id, "device id")
    _check_id(tenant, "tenant")
    if kind not in DEVICE_KINDS:
        raise ValueError(f"kind {kind!r} must be one of {', '.join(DEVICE_KINDS)}")
    with _registry(url) as conn:
        if conn.execute("SELECT 1 FROM customers WHERE id = %s", (customer_id,)).fetchone() is None:
            raise ValueError(f"customer {customer_id!r} does not exist: add it first with 'forewarn customer add'")
        conn.execute(
            "INSERT INTO devices (tenant, id, customer_id, kind) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (tenant, id) DO UPDATE SET customer_id = excluded.customer_id, kind = excluded.kind",
            (tenant, device_id, customer_id, kind),
        )


def query(url: str, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Run a read-only query (reports, tests) and return rows as dicts."""
    with _registry(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(statement, params).fetchall())  # type: ignore[arg-type]


# ------------------------------------------------------------------- detector configuration


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """A row of ``detector_config``: parameters of the ``risk`` detector of ``tenant``'s devices
    of ``kind`` (``device`` ``None``) or of one device."""

    tenant: str
    kind: str
    device: str | None
    risk: str
    params: dict[str, Any]


def effective_overrides(rows: Iterable[DetectorParams], device: str | None) -> dict[str, dict[str, Any]]:
    """Risk type → the parameters in force for ``device`` (``None``: a device of the tenant and
    kind with none of its own) from one tenant's and kind's ``rows``: the tenant's parameters,
    and the device's over them, parameter by parameter.

    >>> rows = [DetectorParams("acme", "home", None, "freeze_risk", {"horizon_s": 10800, "margin_c": 1.0}),
    ...         DetectorParams("acme", "home", "home-1", "freeze_risk", {"horizon_s": 3600})]
    >>> effective_overrides(rows, "home-1")
    {'freeze_risk': {'horizon_s': 3600, 'margin_c': 1.0}}
    >>> effective_overrides(rows, "home-2")
    {'freeze_risk': {'horizon_s': 10800, 'margin_c': 1.0}}
    """
    rows = list(rows)
    merged: dict[str, dict[str, Any]] = {}
    for level in (None, device) if device is not None else (None,):
        for row in rows:
            if row.device == level:
                merged.setdefault(row.risk, {}).update(row.params)
    return merged


def _check_scope(tenant: str, kind: str, device: str | None) -> None:
    _check_id(tenant, "tenant")
    if kind not in DEVICE_KINDS:
        raise ValueError(f"kind {kind!r} must be one of {', '.join(DEVICE_KINDS)}")
    if device is not None:
        _check_id(device, "device id")


def detector_config(url: str, tenant: str, kind: str) -> list[DetectorParams]:
    """The configuration of ``tenant``'s devices of ``kind``: the tenant's rows and every device's."""
    _check_scope(tenant, kind, None)
    with _registry(url) as conn:
        rows = conn.execute(
            "SELECT device, risk, params FROM detector_config WHERE tenant = %s AND kind = %s"
            " ORDER BY device NULLS FIRST, risk",
            (tenant, kind),
        ).fetchall()
    return [DetectorParams(tenant, kind, device, risk, dict(params)) for device, risk, params in rows]


def set_detector_params(
    url: str, tenant: str, kind: str, device: str | None, risk: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Set ``params`` of the ``risk`` detector for ``tenant``'s devices of ``kind`` (``device``
    ``None``) or for one registered device of that kind, keeping the level's other parameters;
    returns all the level's parameters of ``risk`` now. Whether the values suit the detector
    is for the caller to check (``detectors.profiles.check_overrides``)."""
    _check_scope(tenant, kind, device)
    check_risk(risk)
    if not params:
        raise ValueError("give at least one parameter to set, as name=value")
    with _registry(url) as conn:
        if device is not None:
            found = conn.execute("SELECT kind FROM devices WHERE tenant = %s AND id = %s", (tenant, device)).fetchone()
            if found is None:
                raise ValueError(f"device {tenant}/{device} is not registered: add it first with 'forewarn device add'")
            if found[0] != kind:
                raise ValueError(f"device {tenant}/{device} is a {found[0]} device, not a {kind} one")
        row = conn.execute(
            "INSERT INTO detector_config (tenant, kind, device, risk, params) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant, kind, device, risk) DO UPDATE"
            " SET params = detector_config.params || excluded.params, updated_at = now()"
            " RETURNING params",
            (tenant, kind, device, risk, Jsonb(params)),
        ).fetchone()
    return dict(row[0]) if row else {}


def clear_detector_params(
    url: str, tenant: str, kind: str, device: str | None, risk: str | None = None, names: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Remove configuration of ``tenant``'s devices of ``kind`` (``device`` ``None``) or of one
    device: the parameters ``names`` of ``risk``, every parameter of ``risk``, or (no
    ``risk``) everything at that level. Returns the ``(risk, parameter)`` pairs removed."""
    _check_scope(tenant, kind, device)
    if risk is not None:
        check_risk(risk)
    elif names:
        raise ValueError("name the risk type whose parameters to clear")
    with _registry(url) as conn:
        rows = conn.execute(
            "SELECT risk, params FROM detector_config WHERE tenant = %s AND kind = %s"
            " AND device IS NOT DISTINCT FROM %s AND (%s::text IS NULL OR risk = %s) ORDER BY risk FOR UPDATE",
            (tenant, kind, device, risk, risk),
        ).fetchall()
        cleared: list[tuple[str, str]] = []
        for row_risk, params in rows:
            drop = [name for name in params if not names or name in names]
            kept = {name: value for name, value in params.items() if name not in drop}
            where = (tenant, kind, device, row_risk)
            scope = " WHERE tenant = %s AND kind = %s AND device IS NOT DISTINCT FROM %s AND risk = %s"
            if kept:
                conn.execute(
                    "UPDATE detector_config SET params = %s, updated_at = now()" + scope, (Jsonb(kept), *where)
                )
            else:
                conn.execute("DELETE FROM detector_config" + scope, where)
            cleared += [(row_risk, name) for name in drop]
    return cleared


# ------------------------------------------------------------------- async store (services)


# ------------------------------------------------------------------- the insurer's side (CLI, API; sync)

OUTCOMES = ("loss_avoided", "loss_occurred", "false_alarm")
CONTACT_ROLES = ("staff", "final", "claims")


class NotFound(DatabaseError):
    """No such warning (or not the caller's tenant's): nothing was changed."""


class Refused(DatabaseError):
    """The request is understood but must not change anything (a replayed link, a closed warning)."""


def _warning_row(conn: psycopg.Connection[Any], warning_id: str, tenant: str | None) -> dict[str, Any]:
    try:
        uuid.UUID(warning_id)
    except ValueError:
        raise NotFound(
            f"no warning {warning_id!r}: a warning id looks like 6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e"
        ) from None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT w.*, w.id::text AS id FROM warnings w WHERE w.id = %s AND (%s::text IS NULL OR w.tenant = %s)"
            " FOR UPDATE",
            (warning_id, tenant, tenant),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no warning {warning_id}" + (f" for tenant {tenant}" if tenant else ""))
    return row


def acknowledge(
    url: str, warning_id: str, actor: str, *, tenant: str | None = None, nonce: str | None = None
) -> dict[str, Any]:
    """A person acknowledges a warning (the customer through a link, or staff); the warning as it is now.

    A link's ``nonce`` is used once: a second use is :class:`Refused` and changes nothing. An
    already acknowledged warning stays as it was (and says by whom); a resolved or expired one is
    :class:`Refused`."""
    with _registry(url) as conn, conn.transaction():
        row = _warning_row(conn, warning_id, tenant)
        if nonce is not None:
            used = conn.execute(
                "INSERT INTO ack_tokens_used (nonce, warning_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING RETURNING nonce",
                (nonce, warning_id),
            ).fetchone()
            if used is None:
                raise Refused("this acknowledgement link was used already; nothing was changed")
        if row["status"] == "acknowledged":
            return row
        if row["status"] in lifecycle.FINAL:
            raise Refused(f"warning {warning_id} is {row['status']} already; nothing to acknowledge")
        target = lifecycle.next_status(row["status"], "acknowledge")
        conn.execute(
            "UPDATE warnings SET status = %s, acknowledged_at = now(), acknowledged_by = %s, updated_at = now()"
            " WHERE id = %s",
            (target, actor, warning_id),
        )
        conn.execute(
            "INSERT INTO warning_transitions (warning_id, event, from_status, to_status, actor)"
            " VALUES (%s, 'acknowledge', %s, %s, %s)",
            (warning_id, row["status"], target, actor),
        )
        return {**row, "status": target, "acknowledged_by": actor}


def record_outcome(
    url: str,
    warning_id: str,
    outcome: str,
    actor: str,
    *,
    tenant: str | None = None,
    cost_cny: float | None = None,
    note: str | None = None,
) -> None:
    """Staff record what really happened after a warning (one outcome per warning; a later one replaces it)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} must be one of {', '.join(OUTCOMES)}")
    if cost_cny is not None and (not math.isfinite(cost_cny) or cost_cny < 0):
        raise ValueError("the claim amount must be a non-negative number of CNY")
    if cost_cny is not None and outcome != "loss_occurred":
        raise ValueError("a claim amount goes with the outcome loss_occurred only")
    with _registry(url) as conn, conn.transaction():
        row = _warning_row(conn, warning_id, tenant)
        conn.execute(
            "INSERT INTO outcomes (warning_id, tenant, device, outcome, cost_cny, note, recorded_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (warning_id) DO UPDATE SET outcome = excluded.outcome,"
            " cost_cny = excluded.cost_cny, note = excluded.note, recorded_by = excluded.recorded_by,"
            " recorded_at = now()",
            (warning_id, row["tenant"], row["device"], outcome, cost_cny, note, actor),
        )


def warning_detail(url: str, warning_id: str, tenant: str | None = None) -> dict[str, Any]:
    """A warning with every transition, every delivery and its attempts, and its outcome."""
    with _registry(url) as conn:
        row = _warning_row(conn, warning_id, tenant)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT event, from_status, to_status, actor, note, at FROM warning_transitions"
                " WHERE warning_id = %s ORDER BY at, id",
                (warning_id,),
            )
            transitions = cur.fetchall()
            cur.execute(
                "SELECT id, action, audience, channel, status, attempts, error, due_at, sent_at, held_reason"
                " FROM deliveries WHERE warning_id = %s ORDER BY id",
                (warning_id,),
            )
            deliveries = cur.fetchall()
            cur.execute(
                "SELECT a.delivery_id, a.ok, a.error, a.seconds, a.attempted_at FROM delivery_attempts a"
                " JOIN deliveries d ON d.id = a.delivery_id WHERE d.warning_id = %s ORDER BY a.id",
                (warning_id,),
            )
            attempts = cur.fetchall()
            cur.execute(
                "SELECT action, kind, due_at, fired_at, outcome FROM followups WHERE warning_id = %s ORDER BY due_at",
                (warning_id,),
            )
            followups = cur.fetchall()
            cur.execute(
                "SELECT outcome, cost_cny, note, recorded_by, recorded_at FROM outcomes WHERE warning_id = %s",
                (warning_id,),
            )
            outcome = cur.fetchone()
    return {
        "warning": row,
        "transitions": transitions,
        "deliveries": deliveries,
        "attempts": attempts,
        "followups": followups,
        "outcome": outcome,
    }


def set_contacts(url: str, tenant: str, role: str, urls: Sequence[str]) -> None:
    """Replace the tenant's contacts for ``role`` (staff on call, the final step, claims) in order."""
    _check_id(tenant, "tenant")
    if role not in CONTACT_ROLES:
        raise ValueError(f"role {role!r} must be one of {', '.join(CONTACT_ROLES)}")
    with _registry(url) as conn, conn.transaction():
        conn.execute("DELETE FROM tenant_contacts WHERE tenant = %s AND role = %s", (tenant, role))
        for position, contact in enumerate(urls):
            conn.execute(
                "INSERT INTO tenant_contacts (tenant, role, position, url) VALUES (%s, %s, %s, %s)",
                (tenant, role, position, contact),
            )


def contacts(url: str, tenant: str) -> dict[str, list[str]]:
    with _registry(url) as conn:
        rows = conn.execute(
            "SELECT role, url FROM tenant_contacts WHERE tenant = %s ORDER BY role, position", (tenant,)
        ).fetchall()
    out: dict[str, list[str]] = {role: [] for role in CONTACT_ROLES}
    for role, contact in rows:
        out[role].append(contact)
    return out


def set_followup_policy(url: str, tenant: str, severity: str, steps: Sequence[dict[str, Any]]) -> None:
    """The tenant's follow-up steps for one severity (validated by the caller: notifiers.followup)."""
    _check_id(tenant, "tenant")
    with _registry(url) as conn:
        conn.execute(
            "INSERT INTO followup_policies (tenant, severity, steps) VALUES (%s, %s, %s)"
            " ON CONFLICT (tenant, severity) DO UPDATE SET steps = excluded.steps, updated_at = now()",
            (tenant, severity, Jsonb(list(steps))),
        )


def followup_policies(url: str, tenant: str) -> dict[str, list[dict[str, Any]]]:
    with _registry(url) as conn:
        rows = conn.execute("SELECT severity, steps FROM followup_policies WHERE tenant = %s", (tenant,)).fetchall()
    return {severity: list(steps) for severity, steps in rows}


def set_customer_preferences(
    url: str,
    customer_id: str,
    *,
    timezone: str | None = None,
    quiet_hours: Sequence[str] | None = None,
    daily_budget: int | None = None,
    clear_budget: bool = False,
) -> dict[str, Any]:
    """Set a customer's time zone, quiet hours (validated by the caller) and daily budget; the result."""
    if daily_budget is not None and daily_budget < 0:
        raise ValueError("the daily budget is a number of messages, 0 or more")
    with _registry(url) as conn, conn.transaction():
        found = conn.execute("SELECT 1 FROM customers WHERE id = %s FOR UPDATE", (customer_id,)).fetchone()
        if found is None:
            raise NotFound(f"no customer {customer_id!r} ('forewarn customer add' creates one)")
        if timezone is not None:
            conn.execute("UPDATE customers SET timezone = %s WHERE id = %s", (timezone, customer_id))
        if quiet_hours is not None:
            conn.execute("UPDATE customers SET quiet_hours = %s WHERE id = %s", (list(quiet_hours), customer_id))
        if daily_budget is not None or clear_budget:
            conn.execute("UPDATE customers SET daily_budget = %s WHERE id = %s", (daily_budget, customer_id))
        conn.execute("UPDATE customers SET updated_at = now() WHERE id = %s", (customer_id,))
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT id, timezone, quiet_hours, daily_budget FROM customers WHERE id = %s", (customer_id,))
            row = cur.fetchone()
    assert row is not None
    return row


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one tenant's run left in the database since a moment (the demo's summary)."""

    readings: int
    """Distinct (device, time) readings stored."""
    values: int
    """Metric values stored."""
    warnings: list[dict[str, Any]]
    """Warnings opened, oldest first: id, device, risk, severity, status, opened_at."""
    deliveries: dict[str, int]
    """Delivery attempts by status (sent, failed, sending)."""


def run_summary(url: str, tenant: str, since: datetime) -> RunSummary:
    stored = query(
        url,
        "SELECT count(DISTINCT (device, ts)) AS readings, count(*) AS values FROM readings"
        " WHERE ts >= %s AND tenant = %s",
        (since, tenant),
    )[0]
    warnings = query(
        url,
        "SELECT id, device, risk, severity, status, opened_at FROM warnings WHERE opened_at >= %s"
        " AND tenant = %s ORDER BY opened_at",
        (since, tenant),
    )
    deliveries = query(
        url,
        "SELECT d.status, count(*) AS n FROM deliveries d JOIN warnings w ON w.id = d.warning_id"
        " WHERE w.opened_at >= %s AND w.tenant = %s GROUP BY d.status",
        (since, tenant),
    )
    return RunSummary(
        int(stored["readings"]), int(stored["values"]), warnings, {r["status"]: int(r["n"]) for r in deliveries}
    )


def channel_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


async def _advance(
    conn: psycopg.AsyncConnection[Any],
    warning_id: str,
    event: lifecycle.Event,
    fields: str,
    values: tuple[Any, ...],
    actor: str = "worker",
    note: str | None = None,
) -> str | None:
    """Apply one lifecycle event to a stored warning, by :mod:`core.lifecycle`'s table, and record
    the transition (who or what caused it, when). The new status, or ``None`` when the event
    changes nothing in the warning's status (nothing is recorded then).

    ``fields`` (``col = %s, …``, may be empty) are set with the status."""
    target = {src: lifecycle.next_status(src, event) for src in lifecycle.sources(event)}
    cases = " ".join(f"WHEN '{src}' THEN '{dst}'" for src, dst in target.items())
    extra = f"{fields}, " if fields else ""
    cur = await conn.execute(
        "WITH old AS (SELECT id, status FROM warnings WHERE id = %s AND status = ANY(%s) FOR UPDATE)"
        f" UPDATE warnings w SET status = CASE old.status {cases} END, {extra}updated_at = now()"  # noqa: S608
        " FROM old WHERE w.id = old.id RETURNING old.status, w.status",
        (warning_id, list(target), *values),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await conn.execute(
        "INSERT INTO warning_transitions (warning_id, event, from_status, to_status, actor, note)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (warning_id, event, row[0], row[1], actor, note),
    )
    return str(row[1])


async def _stage(conn: psycopg.AsyncConnection[Any]) -> None:
    """Each pooled connection gets its staging table for COPY once, not per write."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS readings_stage"
        " (tenant text, device text, metric text, ts timestamptz, value float8,"
        " seq bigint, ingested_at timestamptz) ON COMMIT DELETE ROWS"
    )
    await conn.commit()


class Store:
    """The services' connection pool and their writes."""

    def __init__(self, url: str, max_size: int = 4) -> None:
        self.url = url
        self.pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False, configure=_stage)

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    async def devices(self) -> dict[str, str]:
        """``tenant/device`` → kind, for ingest's registry check."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT tenant, id, kind FROM devices")
            return {f"{t}/{d}": k for t, d, k in await cur.fetchall()}

    async def store_readings(self, batches: Iterable[ReadingsBatch]) -> int:
        """COPY into a staging table, then insert what is new: a replay stores nothing twice."""
        rows = [
            (b.tenant, b.device, metric, _ts(r.ts), value, r.seq, _ts(b.ingested_at))
            for b in batches
            for r in b.readings
            for metric, value in r.metrics.items()
        ]
        if not rows:
            return 0
        async with self.pool.connection() as conn, conn.transaction():
            async with conn.cursor().copy(
                "COPY readings_stage (tenant, device, metric, ts, value, seq, ingested_at) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "text", "timestamptz", "float8", "int8", "timestamptz"])
                for row in rows:
                    await copy.write_row(row)
            cur = await conn.execute(
                "INSERT INTO readings (tenant, device, metric, ts, value, seq, ingested_at)"
                " SELECT * FROM readings_stage"  # DO NOTHING also skips a duplicate within the batch
                " ON CONFLICT (tenant, device, metric, ts) DO NOTHING"
            )
            return cur.rowcount

    async def detector_overrides(self, tenant: str, kind: str, device: str) -> dict[str, dict[str, Any]]:
        """Risk type → the configured parameters in force for one device (the worker's read)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT device, risk, params FROM detector_config"
                " WHERE tenant = %s AND kind = %s AND (device IS NULL OR device = %s)",
                (tenant, kind, device),
            )
            rows = [DetectorParams(tenant, kind, d, risk, dict(params)) for d, risk, params in await cur.fetchall()]
        return effective_overrides(rows, device)

    async def detector_config_version(self) -> int:
        """A number that moves whenever any detector configuration changes."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT version FROM detector_config_version")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def customer_of(self, tenant: str, device: str) -> dict[str, Any] | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            # a cursor's own row factory: the pooled connection stays as it was
            await cur.execute(
                "SELECT c.id, c.name, c.locale, c.notify_urls, c.timezone, c.quiet_hours, c.daily_budget"
                " FROM devices d JOIN customers c ON c.id = d.customer_id WHERE d.tenant = %s AND d.id = %s",
                (tenant, device),
            )
            return await cur.fetchone()

    async def record_warning(self, event: Any, customer_id: str | None) -> bool:
        """Insert or advance a warning's lifecycle from a decision event (idempotent).

        True when this call changed something (a replayed event changes nothing)."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO warnings (id, tenant, device, kind, customer_id, risk, severity, status, score,"
                " opened_at, predicted_loss_at, evidence)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'open', %s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                (
                    event.warning_id,
                    event.tenant,
                    event.device,
                    event.kind,
                    customer_id,
                    event.risk,
                    event.severity,
                    event.score,
                    _ts(event.opened_at_ms),
                    _ts(event.predicted_loss_at_ms),
                    Jsonb(event.evidence),
                ),
            )
            if event.action == "open":
                inserted = await cur.fetchone() is not None
                if inserted:
                    await conn.execute(
                        "INSERT INTO warning_transitions (warning_id, event, from_status, to_status, actor, at)"
                        " VALUES (%s, 'open', NULL, 'open', 'worker', %s)",
                        (event.warning_id, _ts(event.at_ms)),
                    )
                return inserted
            fields = (
                "resolved_at = %s"
                if event.action in ("resolve", "expire")
                else ("severity = %s, score = %s, predicted_loss_at = %s, evidence = %s")
            )
            values: tuple[Any, ...] = (
                (_ts(event.at_ms),)
                if event.action in ("resolve", "expire")
                else (event.severity, event.score, _ts(event.predicted_loss_at_ms), Jsonb(event.evidence))
            )
            return await _advance(conn, event.warning_id, event.action, fields, values) is not None

    # ------------------------------------------------------------ the outbox (notifiers.dispatch)

    async def enqueue(
        self,
        warning_id: str,
        action: str,
        audience: str,
        channel_index: int,
        url: str,
        masked_url: str,
        *,
        due_at: datetime | None = None,
        held_reason: str | None = None,
        reminder: int = 0,
    ) -> bool:
        """Put one message in the outbox; False when (warning, action, channel) is there already."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO deliveries (warning_id, action, audience, channel_index, channel, channel_key,"
                " status, due_at, held_reason, reminder)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()), %s, %s)"
                " ON CONFLICT (warning_id, action, channel_key) DO NOTHING RETURNING id",
                (
                    warning_id,
                    action,
                    audience,
                    channel_index,
                    masked_url,
                    channel_key(url),
                    "held" if held_reason else "pending",
                    due_at,
                    held_reason,
                    reminder,
                ),
            )
            return await cur.fetchone() is not None

    async def claim_due(self, limit: int = 50, lease_s: float = 120.0) -> list[dict[str, Any]]:
        """Claim the deliveries due now (and those whose sender died: lease expired), with what
        rendering and sending them needs: the warning, the customer, the real channel URL."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "WITH claimed AS ("
                " UPDATE deliveries SET status = 'sending', lease_until = now() + make_interval(secs => %s)"
                " WHERE id IN (SELECT id FROM deliveries WHERE (status IN ('pending', 'held') AND due_at <= now())"
                "  OR (status = 'sending' AND lease_until < now()) ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING *)"
                " SELECT claimed.id, claimed.warning_id::text AS warning_id, claimed.action, claimed.audience,"
                " claimed.channel_index, claimed.channel, claimed.attempts, claimed.held_reason, claimed.reminder,"
                " w.tenant, w.device, coalesce(w.kind, dv.kind) AS kind, w.risk, w.severity, w.score,"
                " w.opened_at, w.predicted_loss_at, w.evidence, w.status AS warning_status, w.notified_at,"
                " c.id AS customer_id, c.name AS customer_name, c.locale, c.timezone,"
                " coalesce(array_length(c.notify_urls, 1), 0) AS channels,"
                " CASE WHEN claimed.audience = 'customer' THEN c.notify_urls[claimed.channel_index + 1]"
                "  ELSE tc.url END AS url"
                " FROM claimed JOIN warnings w ON w.id = claimed.warning_id"
                " LEFT JOIN devices dv ON dv.tenant = w.tenant AND dv.id = w.device"
                " LEFT JOIN customers c ON c.id = w.customer_id"
                " LEFT JOIN tenant_contacts tc ON tc.tenant = w.tenant AND tc.role = claimed.audience"
                "  AND tc.position = claimed.channel_index"
                " ORDER BY claimed.id",
                (lease_s, limit),
            )
            return await cur.fetchall()

    async def record_attempt(
        self, delivery_id: int, ok: bool, error: str | None, seconds: float, retry_in_s: float | None = None
    ) -> None:
        """One attempt: a row of its own; the delivery is sent, due again in ``retry_in_s``, or failed."""
        status = "sent" if ok else ("pending" if retry_in_s is not None else "failed")
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, ok, error, seconds) VALUES (%s, %s, %s, %s)",
                (delivery_id, ok, error, seconds),
            )
            await conn.execute(
                "UPDATE deliveries SET status = %s, error = %s, attempts = attempts + 1, attempted_at = now(),"
                " lease_until = NULL, sent_at = CASE WHEN %s THEN now() ELSE sent_at END,"
                " due_at = now() + make_interval(secs => %s) WHERE id = %s",
                (status, error, ok, retry_in_s or 0.0, delivery_id),
            )

    async def settle_held(self, delivery_ids: Sequence[int], note: str) -> None:
        """Deliveries folded into one digest: sent as part of it."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE deliveries SET status = 'sent', sent_at = now(), lease_until = NULL, error = %s,"
                " attempts = attempts + 1 WHERE id = ANY(%s)",
                (note, list(delivery_ids)),
            )

    async def advance(self, warning_id: str, event: lifecycle.Event, actor: str, note: str | None = None) -> str | None:
        """A lifecycle event caused by ``actor`` (delivery receipts, follow-ups)."""
        fields = "notified_at = coalesce(notified_at, now())" if event == "notified" else ""
        async with self.pool.connection() as conn, conn.transaction():
            return await _advance(conn, warning_id, event, fields, (), actor, note)

    async def sent_today(self, customer_id: str, since: datetime) -> int:
        """Non-critical messages sent to a customer since ``since`` (the start of their local day)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM deliveries d JOIN warnings w ON w.id = d.warning_id"
                " WHERE w.customer_id = %s AND d.audience = 'customer' AND d.status = 'sent'"
                " AND w.severity <> 'critical' AND d.sent_at >= %s",
                (customer_id, since),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def contacts(self, tenant: str, role: str) -> list[tuple[int, str]]:
        """The tenant's contacts for ``role`` (staff, final, claims): (position, apprise URL)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT position, url FROM tenant_contacts WHERE tenant = %s AND role = %s ORDER BY position",
                (tenant, role),
            )
            return [(int(p), str(u)) for p, u in await cur.fetchall()]

    async def followup_steps(self, tenant: str, severity: str) -> list[dict[str, Any]] | None:
        """The tenant's own follow-up steps for a severity, or ``None`` (the default applies)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT steps FROM followup_policies WHERE tenant = %s AND severity = %s", (tenant, severity)
            )
            row = await cur.fetchone()
            return list(row[0]) if row else None

    async def schedule_followups(self, warning_id: str, steps: Iterable[tuple[str, str, bool, datetime]]) -> int:
        """One timer row per (action, kind, next_channel, due_at); already scheduled ones stay as they are."""
        rows = list(steps)
        if not rows:
            return 0
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO followups (warning_id, action, kind, next_channel, due_at) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (warning_id, action) DO NOTHING",
                [(warning_id, action, kind, nxt, due) for action, kind, nxt, due in rows],
            )
            return len(rows)

    async def claim_followups(self, limit: int = 50) -> list[dict[str, Any]]:
        """Claim the follow-up steps due now, each exactly once (a restart never fires one twice)."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "WITH fired AS ("
                " UPDATE followups SET fired_at = now() WHERE (warning_id, action) IN ("
                "  SELECT warning_id, action FROM followups WHERE fired_at IS NULL AND due_at <= now()"
                "  ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *)"
                " SELECT fired.warning_id::text AS warning_id, fired.action, fired.kind, fired.next_channel,"
                " fired.due_at, w.status AS warning_status, w.tenant, w.severity, w.customer_id,"
                " coalesce(array_length(c.notify_urls, 1), 0) AS channels, c.notify_urls,"
                " (SELECT min(d.channel_index) FROM deliveries d WHERE d.warning_id = fired.warning_id"
                "  AND d.audience = 'customer' AND d.status = 'sent') AS channel_used"
                " FROM fired JOIN warnings w ON w.id = fired.warning_id LEFT JOIN customers c ON c.id = w.customer_id",
                (limit,),
            )
            return await cur.fetchall()

    async def followup_outcome(self, warning_id: str, action: str, outcome: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE followups SET outcome = %s WHERE warning_id = %s AND action = %s", (outcome, warning_id, action)
            )

    async def refresh_rollups(self, since: datetime | None = None, late: timedelta = LATE_DATA) -> RollupRefresh:
        """:func:`refresh_rollups` on a connection of its own (in a thread: the pool stays free)."""
        return await asyncio.to_thread(refresh_rollups, self.url, since, late)

    async def apply_retention(self, days: int) -> RetentionReport:
        """:func:`apply_retention` on a connection of its own (in a thread: the pool stays free)."""
        return await asyncio.to_thread(apply_retention, self.url, days)

    async def series(
        self,
        tenant: str,
        device: str,
        start: datetime,
        end: datetime,
        resolution: str | timedelta = "1h",
        metrics: Sequence[str] | None = None,
    ) -> dict[str, list[SeriesPoint]]:
        """:func:`series` on the pool (for the API and charts)."""
        params = _series_params(tenant, device, start, end, resolution, metrics)
        async with self.pool.connection() as conn:
            cur = await conn.execute(_SERIES_CONTEXT)
            relkind, timescale, watermark = await cur.fetchone()  # type: ignore[misc]
            cagg = bool(timescale and relkind == "v" and await (await conn.execute(_SERIES_CAGG)).fetchone())
            statement = _series_sql(relkind, timescale, cagg, watermark, params)
            cur = await conn.execute(statement, params)  # type: ignore[arg-type]
            return _series_points(await cur.fetchall())
