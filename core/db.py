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
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from core import apikeys, lifecycle
from core.contract import DEVICE_KINDS, LOCALES, SEGMENT_RE, Reading, ReadingsBatch, RejectRecord
from core.risks import check_risk

log = logging.getLogger(__name__)
# psycopg_pool logs every failed reconnection attempt and psycopg every query it could not
# cancel: during an outage that is a line a second. Our callers tell an outage once
# (core.outage) and the pools' errors still reach them; only the pools' own errors are logged.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
logging.getLogger("psycopg").setLevel(logging.ERROR)

_LOCK_ID = 0x0F0E_3A2E  # advisory lock for migrations


class DatabaseError(RuntimeError):
    """A database problem stated so an operator can act on it."""


# ------------------------------------------------------------------- connections
#
# No connection waits forever on a server that has gone. Every one (the services' pools, the
# CLI's and the timers' one-shot connections, migrations) gets a connect timeout, TCP keepalives
# on an idle link and ``tcp_user_timeout`` on sent data that goes unacknowledged: a dead or
# partitioned server is noticed within about 10 s. The services' pools (:class:`Store`,
# :class:`Desk`) add a server-side statement timeout and a client-side deadline on each use of a
# pooled connection: a link that accepts bytes and never answers (a proxy or load balancer in
# front of a partitioned server acknowledges every segment, so TCP sees nothing wrong) is shut
# when the deadline passes and the operation fails instead of hanging. Migrations may run long:
# they get the link settings, never a statement timeout. Parameters in FOREWARN_DATABASE_URL
# (e.g. ``?keepalives_idle=30``) take precedence over these.

LINK: dict[str, int] = {
    "connect_timeout": 5,  # s, the whole connection attempt
    "keepalives": 1,
    "keepalives_idle": 5,  # s of silence before the first probe
    "keepalives_interval": 1,  # s between probes
    "keepalives_count": 5,  # probes lost: dead after 5 + 5 x 1 = 10 s
    "tcp_user_timeout": 10_000,  # ms that sent data may stay unacknowledged
}
CHECK_TIMEOUT_S = 5.0
"""A pooled connection is checked (an empty query) before each use; a check that gets no answer
in this time discards the connection and the pool tries another."""
DEADLINE_MARGIN_S = 2.0
"""A pooled use ends at the statement timeout plus this: the server's own cancel comes first."""
IDLE_IN_TRANSACTION_S = 60
"""The server ends a service's session idle inside a transaction this long (its client is gone)."""


def _link(url: str) -> dict[str, Any]:
    """The link settings the URL does not set itself."""
    given = conninfo_to_dict(url)
    return {k: v for k, v in LINK.items() if k not in given}


def _connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """``psycopg.connect`` with the link settings: for one-shot connections (CLI, migrations, timers)."""
    return psycopg.connect(url, **{**_link(url), **kwargs})


def statement_timeout_s() -> float:
    """``FOREWARN_DB_STATEMENT_TIMEOUT_S``, read now (tests set the environment late)."""
    from core.settings import Settings

    return Settings().db_statement_timeout_s


def _service_kwargs(url: str, statement_timeout: float) -> dict[str, Any]:
    """Connection settings of the services' pools: the link's, a statement timeout, an idle-in-transaction one."""
    options = (
        f"-c statement_timeout={int(statement_timeout * 1000)}"
        f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_S * 1000}"
    )
    theirs = conninfo_to_dict(url).get("options")  # the URL's own options come after ours: they win
    return {**_link(url), "options": f"{options} {theirs}" if theirs else options}


def _sever(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], fired: list[bool] | None = None) -> None:
    """Shut a connection's socket down: whatever waits on it fails at once, and the pool discards
    it when it comes back. The descriptor stays libpq's (only a duplicate is closed here)."""
    if fired is not None:
        fired.append(True)
    with contextlib.suppress(OSError, psycopg.Error), socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def _no_answer(url: str, seconds: float) -> DatabaseError:
    return DatabaseError(
        f"PostgreSQL at {_where(url)} gave no answer within {seconds:g} s, so the connection was dropped"
        " and the operation abandoned: check the server and the network to it (FOREWARN_DATABASE_URL)"
    )


async def _check_async(conn: psycopg.AsyncConnection[Any]) -> None:
    handle = asyncio.get_running_loop().call_later(CHECK_TIMEOUT_S, _sever, conn)
    try:
        await AsyncConnectionPool.check_connection(conn)
    finally:
        handle.cancel()


def _check_sync(conn: psycopg.Connection[Any]) -> None:
    timer = threading.Timer(CHECK_TIMEOUT_S, _sever, (conn,))
    timer.daemon = True
    timer.start()
    try:
        ConnectionPool.check_connection(conn)
    finally:
        timer.cancel()


class _DeadlinePool(AsyncConnectionPool):
    """An async pool whose every use of a connection ends by ``deadline_s``; a connection that
    gives no answer by then is shut (see :func:`_sever`) and the use fails with :class:`DatabaseError`."""

    def __init__(self, url: str, *, deadline_s: float, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.url = url
        self.deadline_s = deadline_s

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> Any:
        try:
            async with super().connection(timeout) as conn:
                fired: list[bool] = []
                handle = asyncio.get_running_loop().call_later(self.deadline_s, _sever, conn, fired)
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    if fired:
                        raise _no_answer(self.url, self.deadline_s) from exc
                    raise
                finally:
                    handle.cancel()
        except PoolTimeout as exc:
            raise DatabaseError(
                f"no connection to PostgreSQL at {_where(self.url)} within {timeout or self.timeout:g} s"
                " (down, unreachable or not answering): check the server and FOREWARN_DATABASE_URL"
            ) from exc


class _DeadlineSyncPool(ConnectionPool):
    """:class:`_DeadlinePool` for threads (the API): a timer shuts a connection that gives no answer."""

    def __init__(self, url: str, *, deadline_s: float, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.url = url
        self.deadline_s = deadline_s

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Any:
        with super().connection(timeout) as conn:
            fired: list[bool] = []
            timer = threading.Timer(self.deadline_s, _sever, (conn, fired))
            timer.daemon = True
            timer.start()
            try:
                yield conn
            except psycopg.OperationalError as exc:
                if fired:
                    raise _no_answer(self.url, self.deadline_s) from exc
                raise
            finally:
                timer.cancel()


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def reading_rows(batches: Iterable[ReadingsBatch]) -> list[tuple[Any, ...]]:
    """The ``readings`` rows of some batches: one per metric value, each time converted once
    per reading (the worker's storing agent makes tens of thousands a second).

    >>> batch = ReadingsBatch("acme", "h1", "home", (Reading(0, {"temp_c": 20.5, "humidity_pct": 40.0}, 7),), 1000)
    >>> [(m, ts.isoformat(), v, seq) for _, _, m, ts, v, seq, _ in reading_rows([batch])]
    [('temp_c', '1970-01-01T00:00:00+00:00', 20.5, 7), ('humidity_pct', '1970-01-01T00:00:00+00:00', 40.0, 7)]
    """
    rows: list[tuple[Any, ...]] = []
    add = rows.append
    for b in batches:
        tenant, device, ingested = b.tenant, b.device, _ts(b.ingested_at)
        for r in b.readings:
            ts, seq = _ts(r.ts), r.seq
            for metric, value in r.metrics.items():
                add((tenant, device, metric, ts, value, seq, ingested))
    return rows


def ensure_database(url: str) -> bool:
    """Create the configured database when the server has none by that name."""
    info = conninfo_to_dict(url)
    try:
        _connect(url).close()
        return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise DatabaseError(f"cannot reach PostgreSQL at {_where(url)}: {exc}".strip()) from None
    name = info.get("dbname", "forewarn")
    admin = make_conninfo(url, dbname="postgres")
    with _connect(admin, autocommit=True) as conn:
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
    with _connect(url, autocommit=True) as conn:
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
        with _connect(make_conninfo(url, dbname="postgres")) as conn:
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
        with _connect(target, autocommit=True) as conn:
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
    if not SEGMENT_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must match {SEGMENT_RE.pattern} (lower-case, digits, - _)")


class Desk:
    """The API's connections: a pool of autocommit connections (sync: FastAPI runs each request
    in a worker thread), opened without waiting, so the API starts while PostgreSQL does.

    Pass it where a function takes a :data:`Target`: each call borrows one connection for its
    own duration, so a request never holds one while it waits for a worker thread (with as
    many threads as connections, none ever waits for a connection)."""

    def __init__(
        self, url: str, max_size: int = 8, timeout_s: float = 10.0, statement_timeout: float | None = None
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.max_size = max_size
        limit = statement_timeout_s() if statement_timeout is None else statement_timeout
        self.pool = _DeadlineSyncPool(
            url,
            deadline_s=limit + DEADLINE_MARGIN_S,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=timeout_s,
            check=_check_sync,  # a connection broken while idle is replaced, not handed out
            kwargs={"autocommit": True, **_service_kwargs(url, limit)},
        )
        self._opened = False
        self._lock = threading.Lock()

    def open(self) -> None:
        with self._lock:
            if not self._opened:
                self.pool.open(wait=False)
                self._opened = True

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self.pool.close()
                self._opened = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for one request (the pool opens on the first); :class:`DatabaseError`
        when none comes in time."""
        self.open()
        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise DatabaseError(
                f"no database connection within {self.timeout_s:g} s: is PostgreSQL at {_where(self.url)} up?"
            ) from None


Target = str | psycopg.Connection[Any] | Desk
"""Where a registry or desk function runs: a database URL (a short-lived connection of its own),
a connection to use as it is, or the API's :class:`Desk` (a pooled connection for the call)."""


@contextlib.contextmanager
def _registry(url: Target) -> Iterator[psycopg.Connection[Any]]:
    """A short-lived connection for the CLI, a pooled one for the API (a :class:`Desk`), or the
    caller's connection as it is; connection and schema problems become clear errors."""
    try:
        if isinstance(url, Desk):
            with url.connection() as pooled:
                yield pooled
            return
        if not isinstance(url, str):
            yield url
            return
        with _connect(url) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        where = _where(url if isinstance(url, str) else url.url) if isinstance(url, str | Desk) else "the database"
        raise DatabaseError(
            f"cannot reach PostgreSQL at {where} ({str(exc).splitlines()[0]}); "
            "is it running, and is FOREWARN_DATABASE_URL right?"
        ) from None
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        raise DatabaseError(
            f"the database {_where(url) if isinstance(url, str) else ''} has no (or an older) forewarn schema:"
            " run 'forewarn db migrate'"
        ) from None


def add_customer(url: Target, customer_id: str, name: str, locale: str, notify: Sequence[str], *, tenant: str) -> None:
    """Create or update one of ``tenant``'s customers (idempotent: the same command twice changes
    nothing). A tenant named for the first time is created, named as its id."""
    _check_id(customer_id, "customer id")
    _check_id(tenant, "tenant")
    if locale not in LOCALES:
        raise ValueError(f"locale {locale!r} must be one of {', '.join(LOCALES)}")
    with _registry(url) as conn, conn.transaction():
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING", (tenant, tenant))
        conn.execute(
            "INSERT INTO customers (tenant, id, name, locale, notify_urls) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, locale = excluded.locale,"
            " notify_urls = excluded.notify_urls, updated_at = now()",
            (tenant, customer_id, name, locale, list(notify)),
        )


def add_device(url: str, device_id: str, tenant: str, customer_id: str, kind: str) -> None:
    _check_id(device_id, "device id")
    _check_id(tenant, "tenant")
    if kind not in DEVICE_KINDS:
        raise ValueError(f"kind {kind!r} must be one of {', '.join(DEVICE_KINDS)}")
    with _registry(url) as conn:
        if (
            conn.execute("SELECT 1 FROM customers WHERE tenant = %s AND id = %s", (tenant, customer_id)).fetchone()
            is None
        ):
            raise ValueError(
                f"customer {customer_id!r} of tenant {tenant!r} does not exist: add it first with"
                " 'forewarn customer add --tenant'"
            )
        conn.execute(
            "INSERT INTO devices (tenant, id, customer_id, kind) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (tenant, id) DO UPDATE SET customer_id = excluded.customer_id, kind = excluded.kind",
            (tenant, device_id, customer_id, kind),
        )


def set_device_credential(url: Target, tenant: str, device_id: str, mqtt_hash: str | None) -> bool:
    """Keep a device's MQTT password hash (``core.mqttauth``), replacing any earlier one; ``None``
    revokes it. Returns False when there was nothing to revoke."""
    _check_id(device_id, "device id")
    _check_id(tenant, "tenant")
    with _registry(url) as conn:
        if mqtt_hash is None:
            gone = conn.execute("DELETE FROM device_credentials WHERE tenant = %s AND device = %s", (tenant, device_id))
            return gone.rowcount > 0
        if conn.execute("SELECT 1 FROM devices WHERE tenant = %s AND id = %s", (tenant, device_id)).fetchone() is None:
            raise ValueError(f"device {tenant}/{device_id} does not exist: add it first with 'forewarn device add'")
        conn.execute(
            "INSERT INTO device_credentials (tenant, device, mqtt_hash) VALUES (%s, %s, %s)"
            " ON CONFLICT (tenant, device) DO UPDATE SET mqtt_hash = excluded.mqtt_hash, issued_at = now()",
            (tenant, device_id, mqtt_hash),
        )
        return True


def device_credentials(url: Target) -> list[tuple[str, str, str]]:
    """(tenant, device, MQTT password hash) of every device that has credentials."""
    with _registry(url) as conn:
        rows = conn.execute("SELECT tenant, device, mqtt_hash FROM device_credentials ORDER BY tenant, device")
        return [(str(t), str(d), str(h)) for t, d, h in rows.fetchall()]


def query(url: Target, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
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
    url: Target, warning_id: str, actor: str, *, tenant: str | None = None, nonce: str | None = None
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
    url: Target,
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
        _count_false_alarms(conn, row)


def _count_false_alarms(conn: psycopg.Connection[Any], warning: Mapping[str, Any]) -> None:
    """Keep the device's count of recorded false alarms of the warning's risk in its detector
    configuration (parameter ``false_alarms``): the worker reloads it and makes that detector
    less eager (``detectors.feedback``), as after any ``forewarn detectors set``."""
    tenant, device, risk = warning["tenant"], warning["device"], warning["risk"]
    kind = warning.get("kind")
    if not kind:
        found = conn.execute("SELECT kind FROM devices WHERE tenant = %s AND id = %s", (tenant, device)).fetchone()
        kind = found[0] if found else None
    if not kind:
        return
    (count,) = conn.execute(
        "SELECT count(*) FROM outcomes o JOIN warnings w ON w.id = o.warning_id"
        " WHERE w.tenant = %s AND w.device = %s AND w.risk = %s AND o.outcome = 'false_alarm'",
        (tenant, device, risk),
    ).fetchone() or (0,)
    scope = (tenant, kind, device, risk)
    row = conn.execute(
        "SELECT params FROM detector_config WHERE tenant = %s AND kind = %s AND device = %s AND risk = %s", scope
    ).fetchone()
    if (dict(row[0]).get("false_alarms", 0) if row else 0) == count:
        return
    if count:
        conn.execute(
            "INSERT INTO detector_config (tenant, kind, device, risk, params) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant, kind, device, risk) DO UPDATE"
            " SET params = detector_config.params || excluded.params, updated_at = now()",
            (*scope, Jsonb({"false_alarms": count})),
        )
    else:
        conn.execute(
            "UPDATE detector_config SET params = params - 'false_alarms', updated_at = now()"
            " WHERE tenant = %s AND kind = %s AND device = %s AND risk = %s",
            scope,
        )
        conn.execute(
            "DELETE FROM detector_config WHERE tenant = %s AND kind = %s AND device = %s AND risk = %s"
            " AND params = '{}'::jsonb",
            scope,
        )
    log.info("%s/%s: %d false alarm(s) of %s recorded; its detector takes them in", tenant, device, count, risk)


def warning_detail(url: Target, warning_id: str, tenant: str | None = None) -> dict[str, Any]:
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


def reseal_channels(url: Target, protect: Callable[[str], str]) -> tuple[int, int]:
    """Pass every stored channel URL (customers' ``notify_urls``, ``tenant_contacts``) through
    ``protect`` (seal a plain one, re-seal a sealed one with the newest key: notifiers.channels) and
    store the results, in one transaction: all or nothing. (values seen, values changed)."""
    seen = changed = 0
    with _registry(url) as conn, conn.transaction():
        customers = conn.execute("SELECT tenant, id, notify_urls FROM customers ORDER BY tenant, id FOR UPDATE")
        for tenant, customer_id, stored in customers.fetchall():
            new = [protect(value) for value in stored or []]
            seen += len(new)
            if new != list(stored or []):
                changed += sum(a != b for a, b in zip(new, stored, strict=True))
                conn.execute(
                    "UPDATE customers SET notify_urls = %s WHERE tenant = %s AND id = %s", (new, tenant, customer_id)
                )
        contacts = conn.execute("SELECT tenant, role, position, url FROM tenant_contacts FOR UPDATE")
        for tenant, role, position, stored_url in contacts.fetchall():
            new_url = protect(stored_url)
            seen += 1
            if new_url != stored_url:
                changed += 1
                conn.execute(
                    "UPDATE tenant_contacts SET url = %s WHERE tenant = %s AND role = %s AND position = %s",
                    (new_url, tenant, role, position),
                )
    return seen, changed


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


_CLAIM_COLUMNS = (
    "cn.ref, cn.tenant, cn.device, cn.kind, cn.customer_id, cn.warning_id::text AS warning_id, cn.risk,"
    " cn.severity, cn.opened_at, cn.lat, cn.lon, cn.evidence, cn.created_at"
)


def claim_notices(url: Target, tenant: str, limit: int = 20) -> list[dict[str, Any]]:
    """A tenant's first notices of loss, the newest first, without their readings, with the
    customer's name."""
    _check_id(tenant, "tenant")
    with _registry(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_CLAIM_COLUMNS}, c.name AS customer_name"  # noqa: S608
            " FROM claim_notices cn LEFT JOIN customers c ON c.tenant = cn.tenant AND c.id = cn.customer_id"
            " WHERE cn.tenant = %s ORDER BY cn.opened_at DESC, cn.id DESC LIMIT %s",
            (tenant, limit),
        )
        return cur.fetchall()


def claim_notice_of(url: Target, warning_id: str) -> dict[str, Any] | None:
    """The first notice of loss a warning opened (without its readings), or ``None``."""
    with _registry(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_CLAIM_COLUMNS} FROM claim_notices cn WHERE cn.warning_id::text = %s",  # noqa: S608
            (warning_id,),
        )
        return cur.fetchone()


def set_customer_preferences(
    url: Target,
    customer_id: str,
    *,
    tenant: str,
    timezone: str | None = None,
    quiet_hours: Sequence[str] | None = None,
    daily_budget: int | None = None,
    clear_budget: bool = False,
) -> dict[str, Any]:
    """Set a customer's time zone, quiet hours (validated by the caller) and daily budget; the result."""
    if daily_budget is not None and daily_budget < 0:
        raise ValueError("the daily budget is a number of messages, 0 or more")
    key = (tenant, customer_id)
    with _registry(url) as conn, conn.transaction():
        found = conn.execute("SELECT 1 FROM customers WHERE tenant = %s AND id = %s FOR UPDATE", key).fetchone()
        if found is None:
            raise NotFound(f"no customer {customer_id!r} of tenant {tenant!r} ('forewarn customer add' creates one)")
        where = " WHERE tenant = %s AND id = %s"
        if timezone is not None:
            conn.execute("UPDATE customers SET timezone = %s" + where, (timezone, *key))
        if quiet_hours is not None:
            conn.execute("UPDATE customers SET quiet_hours = %s" + where, (list(quiet_hours), *key))
        if daily_budget is not None or clear_budget:
            conn.execute("UPDATE customers SET daily_budget = %s" + where, (daily_budget, *key))
        conn.execute("UPDATE customers SET updated_at = now()" + where, key)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT tenant, id, timezone, quiet_hours, daily_budget FROM customers" + where, key)
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
    """The services' connection pool and their writes.

    Each use of a pooled connection ends within the statement timeout plus
    :data:`DEADLINE_MARGIN_S`; a connection that broke while idle is replaced before use; waiting
    for a free connection ends after ``timeout_s``. Failures are :class:`DatabaseError` (or
    psycopg's): the callers treat them as an outage and retry."""

    def __init__(
        self, url: str, max_size: int = 4, timeout_s: float = 10.0, statement_timeout: float | None = None
    ) -> None:
        self.url = url
        limit = statement_timeout_s() if statement_timeout is None else statement_timeout
        self.pool = _DeadlinePool(
            url,
            deadline_s=limit + DEADLINE_MARGIN_S,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=timeout_s,
            configure=_stage,
            check=_check_async,
            kwargs=_service_kwargs(url, limit),
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    async def devices(self) -> dict[str, str]:
        """``tenant/device`` → kind, for ingest's registry check."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT tenant, id, kind FROM devices")
            return {f"{t}/{d}": k for t, d, k in await cur.fetchall()}

    async def device_kind(self, tenant: str, device: str) -> str | None:
        """One device's kind, ``None`` when it is not registered (a registry miss, looked up alone)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT kind FROM devices WHERE tenant = %s AND id = %s", (tenant, device))
            row = await cur.fetchone()
            return None if row is None else str(row[0])

    async def store_readings(self, batches: Iterable[ReadingsBatch]) -> int:
        """COPY into a staging table, then insert what is new: a replay stores nothing twice."""
        rows = reading_rows(batches)
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
                " FROM devices d JOIN customers c ON c.tenant = d.tenant AND c.id = d.customer_id"
                " WHERE d.tenant = %s AND d.id = %s",
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
                " LEFT JOIN customers c ON c.tenant = w.tenant AND c.id = w.customer_id"
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

    async def sent_today(self, customer_id: str, since: datetime, tenant: str | None = None) -> int:
        """Non-critical messages sent to a customer (of ``tenant``: customers are per tenant) since
        ``since`` (the start of their local day)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM deliveries d JOIN warnings w ON w.id = d.warning_id"
                " WHERE w.customer_id = %s AND (%s::text IS NULL OR w.tenant = %s) AND d.audience = 'customer'"
                " AND d.status = 'sent' AND w.severity <> 'critical' AND d.sent_at >= %s",
                (customer_id, tenant, tenant, since),
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
                " FROM fired JOIN warnings w ON w.id = fired.warning_id"
                " LEFT JOIN customers c ON c.tenant = w.tenant AND c.id = w.customer_id",
                (limit,),
            )
            return await cur.fetchall()

    async def followup_outcome(self, warning_id: str, action: str, outcome: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE followups SET outcome = %s WHERE warning_id = %s AND action = %s", (outcome, warning_id, action)
            )

    # ------------------------------------------------------------ first notices of loss (notifiers.dispatch)

    async def claim_notice(self, warning_id: str) -> dict[str, Any] | None:
        """The claim notice ``warning_id`` opened (its ``claim_notices`` row), or ``None``."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_CLAIM_COLUMNS}, cn.readings FROM claim_notices cn WHERE cn.warning_id = %s",  # noqa: S608
                (warning_id,),
            )
            return await cur.fetchone()

    async def complete_claim_notice(
        self, warning_id: str, lat: float | None, lon: float | None, readings: Mapping[str, Any]
    ) -> None:
        """A claim notice's readings (and the place they give) once they are all stored."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE claim_notices SET lat = %s, lon = %s, readings = %s WHERE warning_id = %s",
                (lat, lon, Jsonb(readings), warning_id),
            )

    async def readings_between(
        self, tenant: str, device: str, start: datetime, end: datetime, limit: int = 20_000
    ) -> list[tuple[str, datetime, float]]:
        """One device's stored readings from ``start`` to ``end`` (both included) as (metric, ts,
        value), the latest ``limit`` of them."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT metric, ts, value FROM readings WHERE tenant = %s AND device = %s AND ts >= %s AND ts <= %s"
                " ORDER BY ts DESC, metric LIMIT %s",
                (tenant, device, start, end, limit),
            )
            return [(str(m), ts, float(v)) for m, ts, v in await cur.fetchall()]

    async def open_claim_notice(self, refs: Sequence[str], notice: Mapping[str, Any]) -> tuple[str, bool]:
        """Store a claim notice (``notice``: its ``claim_notices`` columns but ``ref``) under the
        first of ``refs`` not taken by another warning's: (its ref, True). When its warning has
        one already (a replay), nothing changes: (that notice's ref, False)."""
        columns = ("tenant", "device", "kind", "customer_id", "warning_id", "risk", "severity", "opened_at")
        values = [notice[c] for c in columns]
        values += [notice.get("lat"), notice.get("lon"), Jsonb(notice.get("evidence") or {})]
        values.append(Jsonb(notice.get("readings") or {}))
        async with self.pool.connection() as conn:
            for ref in refs:
                cur = await conn.execute(
                    f"INSERT INTO claim_notices (ref, {', '.join(columns)}, lat, lon, evidence, readings)"  # noqa: S608
                    f" VALUES (%s, {', '.join(['%s'] * len(columns))}, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING ref",
                    (ref, *values),
                )
                if await cur.fetchone() is not None:
                    return ref, True
                cur = await conn.execute("SELECT ref FROM claim_notices WHERE warning_id = %s", (notice["warning_id"],))
                row = await cur.fetchone()
                if row is not None:
                    return str(row[0]), False
        raise DatabaseError(f"every claim reference of warning {notice['warning_id']} is taken: {', '.join(refs)}")

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


# ------------------------------------------------------------------- risk scores (scores/daily.py; sync)
#
# The daily recompute reads each device's readings over its window in chunks (a month of a
# 1 Hz vehicle never sits in memory at once), its warnings, and writes one risk_scores row per
# device, day and model version. The API reads them back with risk_scores().

SCORE_CHUNK = timedelta(hours=6)
"""How much of a device's readings one :func:`iter_readings` query fetches."""
_SCORES_LOCK = 0x0F0E_3A31  # one daily recompute at a time (the worker's timer and the CLI)


@contextlib.contextmanager
def session(url: str) -> Iterator[psycopg.Connection[Any]]:
    """One connection for a batch job (autocommit), with the CLI's clear errors; closed after."""
    with _registry(url) as conn:
        conn.autocommit = True
        yield conn


@contextlib.contextmanager
def scores_lock(conn: psycopg.Connection[Any]) -> Iterator[bool]:
    """Hold the risk-score recompute's lock on ``conn`` while inside; ``False``: another
    process holds it (it is recomputing)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_SCORES_LOCK,)).fetchone()
    locked = bool(row and row[0])
    try:
        yield locked
    finally:
        if locked:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCORES_LOCK,))


def iter_readings(
    target: str | psycopg.Connection[Any],
    tenant: str,
    device: str,
    start: datetime,
    end: datetime,
    metrics: Sequence[str],
    chunk: timedelta = SCORE_CHUNK,
) -> Iterator[Reading]:
    """One device's readings of ``metrics`` over [start, end), in time order, one
    :class:`~core.contract.Reading` per timestamp (the narrow rows gathered back), fetched
    ``chunk`` at a time."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a time zone (aware datetimes)")
    if chunk <= timedelta(0):
        raise ValueError("chunk must be positive")
    with _connected(target) as conn:
        lo = start
        while lo < end:
            hi = min(lo + chunk, end)
            rows = conn.execute(
                "SELECT (extract(epoch FROM ts) * 1000)::bigint, array_agg(metric), array_agg(value) FROM readings"
                " WHERE tenant = %s AND device = %s AND metric = ANY(%s) AND ts >= %s AND ts < %s"
                " GROUP BY ts ORDER BY ts",
                (tenant, device, list(metrics), lo, hi),
            ).fetchall()
            for ms, names, values in rows:
                yield Reading(int(ms), dict(zip(names, values, strict=True)))
            lo = hi


def kind_readings(
    url: str,
    kind: str,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fetch_rows: int = 20_000,
) -> Iterator[tuple[str, str, Reading]]:
    """Every stored reading of the devices of ``kind`` (or of one tenant's), as (tenant, device,
    :class:`~core.contract.Reading`) — one per device and timestamp — in (tenant, device, ts)
    order, optionally only within [since, until). Streamed through a server-side cursor,
    ``fetch_rows`` at a time, so memory stays flat however large ``readings`` is (``forewarn
    train`` reads the fleet's history with it). No statement timeout: a long read is expected."""
    if fetch_rows < 1:
        raise ValueError("fetch_rows must be at least 1")
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise ValueError("since and until must carry a time zone (aware datetimes)")
    with _connect(url) as conn, conn.transaction(), conn.cursor(name=f"kind_readings_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = fetch_rows
        cur.execute(
            "SELECT r.tenant, r.device, (extract(epoch FROM r.ts) * 1000)::bigint,"
            " array_agg(r.metric), array_agg(r.value)"
            " FROM readings r JOIN devices d ON d.tenant = r.tenant AND d.id = r.device"
            " WHERE d.kind = %(kind)s AND (%(tenant)s::text IS NULL OR r.tenant = %(tenant)s)"
            " AND (%(since)s::timestamptz IS NULL OR r.ts >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR r.ts < %(until)s)"
            " GROUP BY r.tenant, r.device, r.ts ORDER BY r.tenant, r.device, r.ts",
            {"kind": kind, "tenant": tenant, "since": since, "until": until},
        )
        for row_tenant, device, ms, names, values in cur:
            yield row_tenant, device, Reading(int(ms), dict(zip(names, values, strict=True)))


def has_readings(
    target: str | psycopg.Connection[Any], tenant: str, device: str, start: datetime, end: datetime
) -> bool:
    """Whether the device stored any reading in [start, end)."""
    with _connected(target) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM readings WHERE tenant = %s AND device = %s AND ts >= %s AND ts < %s)",
            (tenant, device, start, end),
        ).fetchone()
    return bool(row and row[0])


def device_warnings(
    target: str | psycopg.Connection[Any], tenant: str, device: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The device's warnings that were open at some time in [start, end): risk, severity,
    opened_at, resolved_at (set when resolved or expired; None while open)."""
    with _connected(target) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT risk, severity, opened_at, resolved_at FROM warnings"
            " WHERE tenant = %s AND device = %s AND opened_at < %s AND (resolved_at IS NULL OR resolved_at >= %s)"
            " ORDER BY opened_at, id",
            (tenant, device, end, start),
        )
        return list(cur.fetchall())


def score_targets(target: str | psycopg.Connection[Any], tenant: str | None = None) -> list[dict[str, Any]]:
    """Every registered device (or a tenant's), with its kind and its customer's time zone
    (None: the deployment's), in (tenant, id) order."""
    with _connected(target) as conn:
        by_tenant = " AND c.tenant = d.tenant" if _has_column(conn, "customers", "tenant") else ""
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT d.tenant, d.id AS device, d.kind, c.timezone FROM devices d"  # noqa: S608 - our own constants
                f" LEFT JOIN customers c ON c.id = d.customer_id{by_tenant}"
                " WHERE %(tenant)s::text IS NULL OR d.tenant = %(tenant)s ORDER BY d.tenant, d.id",
                {"tenant": tenant},
            )
            return list(cur.fetchall())


def scored_devices(target: str | psycopg.Connection[Any], day: Any, version: str) -> set[tuple[str, str]]:
    """(tenant, device) of the scores already stored for ``day`` under ``version``."""
    with _connected(target) as conn:
        rows = conn.execute("SELECT tenant, device FROM risk_scores WHERE day = %s AND version = %s", (day, version))
        return {(str(t), str(d)) for t, d in rows.fetchall()}


def write_risk_score(target: str | psycopg.Connection[Any], row: dict[str, Any]) -> bool:
    """Store one device's score for a day (tenant, device, kind, day, score, grade, factors,
    basis, version, window_start, window_end); a row already there for the same day and
    version is replaced only when something differs. True when the row is new or changed."""
    with _connected(target) as conn:
        cur = conn.execute(
            "INSERT INTO risk_scores AS r (tenant, device, kind, day, score, grade, factors, basis, version,"
            " window_start, window_end)"
            " VALUES (%(tenant)s, %(device)s, %(kind)s, %(day)s, %(score)s, %(grade)s, %(factors)s, %(basis)s,"
            " %(version)s, %(window_start)s, %(window_end)s)"
            " ON CONFLICT (tenant, device, day, version) DO UPDATE SET kind = excluded.kind, score = excluded.score,"
            " grade = excluded.grade, factors = excluded.factors, basis = excluded.basis,"
            " window_start = excluded.window_start, window_end = excluded.window_end, computed_at = now()"
            " WHERE (r.kind, r.score, r.grade, r.factors, r.basis, r.window_start, r.window_end)"
            " IS DISTINCT FROM (excluded.kind, excluded.score, excluded.grade, excluded.factors, excluded.basis,"
            " excluded.window_start, excluded.window_end)"
            " RETURNING 1",
            {**row, "factors": Jsonb(row["factors"]), "basis": Jsonb(row["basis"])},
        )
        return cur.fetchone() is not None


def risk_scores(
    target: str | psycopg.Connection[Any],
    tenant: str,
    device: str | None = None,
    day: Any = None,
    version: str | None = None,
    days: int = 1,
) -> list[dict[str, Any]]:
    """A tenant's stored scores (or one device's): the newest ``days`` days up to ``day``
    (default: the newest day scored), newest first, then by device. Each row has tenant,
    device, kind, day, score, grade, factors, basis, version, window_start, window_end,
    computed_at. ``version`` None: the newest version scored that day."""
    _check_id(tenant, "tenant")
    if days < 1:
        raise ValueError("days must be at least 1")
    with _connected(target) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "WITH mine AS (SELECT * FROM risk_scores WHERE tenant = %(tenant)s"
            " AND (%(device)s::text IS NULL OR device = %(device)s)"
            " AND (%(version)s::text IS NULL OR version = %(version)s)),"
            " last AS (SELECT coalesce(%(day)s::date, max(day)) AS day FROM mine)"
            " SELECT DISTINCT ON (m.day, m.device) m.tenant, m.device, m.kind, m.day, m.score, m.grade, m.factors,"
            " m.basis, m.version, m.window_start, m.window_end, m.computed_at"
            " FROM mine m, last WHERE m.day <= last.day AND m.day > last.day - %(days)s"
            " ORDER BY m.day DESC, m.device, m.computed_at DESC, m.version DESC",
            {"tenant": tenant, "device": device, "version": version, "day": day, "days": days},
        )
        return list(cur.fetchall())


# ------------------------------------------------------------------- the insurer's desk (API, CLI; sync)
#
# Tenants, API keys (only a hash of the secret is stored: core.apikeys), the audit log of staff
# writes, customers and devices per tenant, and what the API reads: warnings, a device's
# readings with its warnings marked, the portfolio, rejected telemetry. Each function takes a
# URL or one of the API's pooled connections (Desk.connection) and one tenant: another
# tenant's customer, device or warning is NotFound, never its data.


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda obj: json.dumps(obj, default=str))


def _rows(conn: psycopg.Connection[Any], statement: str, params: Any = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(statement, params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def _like(text: str) -> str:
    """An ILIKE pattern finding ``text`` anywhere (its own % and _ taken literally)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ------------------------------------------------------------ tenants and API keys


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A tenant's API key as stored (never its secret)."""

    id: int
    tenant: str
    role: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def actor(self) -> str:
        """Who acts with this key, as transitions and the audit log record it."""
        return f"staff:{self.name} (key {self.id})"


_KEY_COLUMNS = "id, tenant, role, name, prefix, created_at, revoked_at"


def add_tenant(url: Target, tenant: str, name: str) -> dict[str, Any]:
    """Create a tenant, or rename it; the tenant as stored."""
    _check_id(tenant, "tenant")
    if not name.strip() or "\x00" in name or len(name) > 200:
        raise ValueError("a tenant's name is 1 to 200 characters")
    with _registry(url) as conn:
        return _rows(
            conn,
            "INSERT INTO tenants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET name = excluded.name"
            " RETURNING id, name, created_at",
            (tenant, name.strip()),
        )[0]


def tenants(url: Target) -> list[dict[str, Any]]:
    """Every tenant with its number of customers, devices and live API keys."""
    with _registry(url) as conn:
        return _rows(
            conn,
            "SELECT t.id, t.name, t.created_at,"
            " (SELECT count(*) FROM customers c WHERE c.tenant = t.id) AS customers,"
            " (SELECT count(*) FROM devices d WHERE d.tenant = t.id) AS devices,"
            " (SELECT count(*) FROM api_keys k WHERE k.tenant = t.id AND k.revoked_at IS NULL) AS keys"
            " FROM tenants t ORDER BY t.id",
        )


def create_api_key(url: Target, tenant: str, role: str, name: str) -> tuple[ApiKey, str]:
    """A new key for ``tenant``: the key as stored, and its full text (to show once, never again)."""
    _check_id(tenant, "tenant")
    apikeys.check_role(role)
    if not name.strip() or "\x00" in name or len(name) > 100:
        raise ValueError("a key's name says where it is used (1 to 100 characters), e.g. 'desk PC'")
    with _registry(url) as conn, conn.transaction():
        if conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant,)).fetchone() is None:
            raise NotFound(f"no tenant {tenant!r}: 'forewarn tenant add {tenant} --name …' creates it")
        for _ in range(5):  # a prefix already taken (one in 4 billion) draws again
            issued = apikeys.issue()
            try:
                with conn.transaction():
                    row = conn.execute(
                        "INSERT INTO api_keys (tenant, role, name, prefix, secret_sha256) VALUES (%s, %s, %s, %s, %s)"
                        f" RETURNING {_KEY_COLUMNS}",  # noqa: S608 - our own constants
                        (tenant, role, name.strip(), issued.prefix, issued.sha256),
                    ).fetchone()
            except psycopg.errors.UniqueViolation:
                continue
            assert row is not None
            return ApiKey(*row), issued.text
    raise DatabaseError("could not draw an unused key prefix; try again")


def api_keys(url: Target, tenant: str) -> list[ApiKey]:
    """A tenant's keys, revoked ones included, oldest first."""
    _check_id(tenant, "tenant")
    with _registry(url) as conn:
        rows = conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant = %s ORDER BY id",  # noqa: S608
            (tenant,),
        ).fetchall()
    return [ApiKey(*row) for row in rows]


def revoke_api_key(url: Target, key_id: int, tenant: str | None = None) -> ApiKey:
    """Revoke a key (of ``tenant`` only, when given): it is refused from the next request on."""
    with _registry(url) as conn:
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = %s AND (%s::text IS NULL OR tenant = %s)"
            f" RETURNING {_KEY_COLUMNS}",  # noqa: S608
            (key_id, tenant, tenant),
        ).fetchone()
    if row is None:
        raise NotFound(f"no API key {key_id}" + (f" of tenant {tenant}" if tenant else ""))
    return ApiKey(*row)


def find_api_key(url: Target, presented: str) -> ApiKey | None:
    """The key a request presents, revoked or not; ``None`` when no key has that text.

    Raises :class:`core.apikeys.BadKey` (a ValueError) when the text cannot be a key at all."""
    key = apikeys.parse(presented)
    with _registry(url) as conn:
        row = conn.execute(
            f"SELECT {_KEY_COLUMNS}, secret_sha256 FROM api_keys WHERE prefix = %s",  # noqa: S608
            (key.prefix,),
        ).fetchone()
    if row is None or not apikeys.matches(key.text, row[-1]):
        return None
    return ApiKey(*row[:-1])


# ------------------------------------------------------------ the audit log


@dataclass(slots=True)
class AuditEntry:
    """A staff write in progress: its connection (use it for the write) and what to record."""

    conn: psycopg.Connection[Any]
    target: str | None
    detail: dict[str, Any]


@contextlib.contextmanager
def audited(
    url: Target, tenant: str, actor: str, action: str, target: str | None = None, **detail: Any
) -> Iterator[AuditEntry]:
    """A staff write and its audit row (who, what, on what, when) in one transaction: both or
    neither. Write through ``entry.conn``; add to ``entry.detail`` what the write found out."""
    with _registry(url) as conn, conn.transaction():
        entry = AuditEntry(conn, target, dict(detail))
        yield entry
        conn.execute(
            "INSERT INTO audit_log (tenant, actor, action, target, detail) VALUES (%s, %s, %s, %s, %s)",
            (tenant, actor, action, entry.target, _jsonb(entry.detail)),
        )


def audit(url: Target, tenant: str, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
    """Record one staff action done elsewhere (the desk's CLI)."""
    with audited(url, tenant, actor, action, target, **detail):
        pass


def audit_log(url: Target, tenant: str, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """A tenant's audit rows, newest first."""
    with _registry(url) as conn:
        return _rows(
            conn,
            "SELECT id, actor, action, target, detail, at FROM audit_log WHERE tenant = %s"
            " ORDER BY at DESC, id DESC LIMIT %s OFFSET %s",
            (tenant, limit, offset),
        )


# ------------------------------------------------------------ customers and devices per tenant

CUSTOMER_FIELDS = ("name", "locale", "notify_urls", "timezone", "quiet_hours", "daily_budget")
"""What a customer has besides its id; their values are checked by the caller (forewarn.schemas)."""
_CUSTOMER_SELECT = (
    "SELECT c.id, c.name, c.locale, c.notify_urls, c.timezone, c.quiet_hours, c.daily_budget, c.created_at,"
    " c.updated_at, (SELECT count(*) FROM devices d WHERE d.tenant = c.tenant AND d.customer_id = c.id) AS devices"
    " FROM customers c"
)
_DEVICE_SELECT = (
    "SELECT d.id, d.customer_id, c.name AS customer_name, d.kind, d.created_at,"
    " (SELECT count(*) FROM warnings w WHERE w.tenant = d.tenant AND w.device = d.id"
    "  AND w.status IN ('open', 'notified', 'escalated', 'acknowledged')) AS open_warnings"
    " FROM devices d LEFT JOIN customers c ON c.tenant = d.tenant AND c.id = d.customer_id"
)


def _customer_columns(fields: dict[str, Any]) -> list[str]:
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise ValueError(f"a customer has no {', '.join(sorted(unknown))}")
    if "locale" in fields and fields["locale"] not in LOCALES:
        raise ValueError(f"locale {fields['locale']!r} must be one of {', '.join(LOCALES)}")
    return [name for name in CUSTOMER_FIELDS if name in fields]


def list_customers(
    url: Target, tenant: str, *, search: str | None = None, locale: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """A page of the tenant's customers by id; ``search`` finds text in the id or the name."""
    where = ["c.tenant = %(tenant)s"]
    if search:
        where.append("(c.id ILIKE %(like)s OR c.name ILIKE %(like)s)")
    if locale:
        where.append("c.locale = %(locale)s")
    params = {"tenant": tenant, "like": _like(search or ""), "locale": locale, "limit": limit, "offset": offset}
    with _registry(url) as conn:
        return _rows(
            conn,
            f"{_CUSTOMER_SELECT} WHERE {' AND '.join(where)} ORDER BY c.id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )


def get_customer(url: Target, tenant: str, customer_id: str) -> dict[str, Any]:
    with _registry(url) as conn:
        rows = _rows(conn, f"{_CUSTOMER_SELECT} WHERE c.tenant = %s AND c.id = %s", (tenant, customer_id))
    if not rows:
        raise NotFound(f"no customer {customer_id!r}")
    return rows[0]


def create_customer(url: Target, tenant: str, customer_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A new customer of ``tenant``; :class:`Refused` when the id is taken (in this tenant)."""
    _check_id(customer_id, "customer id")
    columns = _customer_columns(fields)
    if "name" not in fields:
        raise ValueError("a customer needs a name")
    with _registry(url) as conn:
        created = conn.execute(
            f"INSERT INTO customers (tenant, id, {', '.join(columns)})"  # noqa: S608 - names from CUSTOMER_FIELDS
            f" VALUES (%s, %s, {', '.join(['%s'] * len(columns))}) ON CONFLICT (tenant, id) DO NOTHING RETURNING id",
            (tenant, customer_id, *(fields[c] for c in columns)),
        ).fetchone()
        if created is None:
            raise Refused(f"customer {customer_id!r} exists already (change it with PATCH)")
        return get_customer(conn, tenant, customer_id)


def update_customer(url: Target, tenant: str, customer_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change some of a customer's fields; the customer as it is now."""
    columns = _customer_columns(changes)
    with _registry(url) as conn:
        if columns:
            found = conn.execute(
                f"UPDATE customers SET {', '.join(f'{c} = %s' for c in columns)}, updated_at = now()"  # noqa: S608
                " WHERE tenant = %s AND id = %s RETURNING id",
                (*(changes[c] for c in columns), tenant, customer_id),
            ).fetchone()
            if found is None:
                raise NotFound(f"no customer {customer_id!r}")
        return get_customer(conn, tenant, customer_id)


def import_customers(url: Target, tenant: str, rows: Sequence[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
    """Create or update the tenant's customers (id, fields) in one transaction: fields a row
    leaves out stay as they are. (created, updated)."""
    created = updated = 0
    with _registry(url) as conn, conn.transaction():
        for customer_id, fields in rows:
            _check_id(customer_id, "customer id")
            columns = _customer_columns(fields)
            update = ", ".join(f"{c} = excluded.{c}" for c in columns)
            row = conn.execute(
                f"INSERT INTO customers (tenant, id, {', '.join(columns)})"  # noqa: S608 - names from CUSTOMER_FIELDS
                f" VALUES (%s, %s, {', '.join(['%s'] * len(columns))}) ON CONFLICT (tenant, id)"
                f" DO UPDATE SET {update}, updated_at = now() RETURNING (xmax = 0)",
                (tenant, customer_id, *(fields[c] for c in columns)),
            ).fetchone()
            if row and row[0]:
                created += 1
            else:
                updated += 1
    return created, updated


def list_devices(
    url: Target,
    tenant: str,
    *,
    customer: str | None = None,
    kind: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A page of the tenant's devices by id, of one customer or kind; ``search`` finds text in the id."""
    where = ["d.tenant = %(tenant)s"]
    if customer:
        where.append("d.customer_id = %(customer)s")
    if kind:
        where.append("d.kind = %(kind)s")
    if search:
        where.append("d.id ILIKE %(like)s")
    params = {
        "tenant": tenant,
        "customer": customer,
        "kind": kind,
        "like": _like(search or ""),
        "limit": limit,
        "offset": offset,
    }
    with _registry(url) as conn:
        return _rows(
            conn,
            f"{_DEVICE_SELECT} WHERE {' AND '.join(where)} ORDER BY d.id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )


def get_device(url: Target, tenant: str, device_id: str) -> dict[str, Any]:
    with _registry(url) as conn:
        rows = _rows(conn, f"{_DEVICE_SELECT} WHERE d.tenant = %s AND d.id = %s", (tenant, device_id))
    if not rows:
        raise NotFound(f"no device {device_id!r}")
    return rows[0]


def _check_device(conn: psycopg.Connection[Any], tenant: str, customer_id: str | None, kind: str | None) -> None:
    if kind is not None and kind not in DEVICE_KINDS:
        raise ValueError(f"kind {kind!r} must be one of {', '.join(DEVICE_KINDS)}")
    if customer_id is not None and (
        conn.execute("SELECT 1 FROM customers WHERE tenant = %s AND id = %s", (tenant, customer_id)).fetchone() is None
    ):
        raise ValueError(f"customer {customer_id!r} does not exist: create it first")


def create_device(url: Target, tenant: str, device_id: str, customer_id: str, kind: str) -> dict[str, Any]:
    """A new device of ``tenant``'s customer; :class:`Refused` when the id is taken (in this tenant)."""
    _check_id(device_id, "device id")
    with _registry(url) as conn:
        _check_device(conn, tenant, customer_id, kind)
        created = conn.execute(
            "INSERT INTO devices (tenant, id, customer_id, kind) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (tenant, id) DO NOTHING RETURNING id",
            (tenant, device_id, customer_id, kind),
        ).fetchone()
        if created is None:
            raise Refused(f"device {device_id!r} exists already (change it with PATCH)")
        return get_device(conn, tenant, device_id)


def update_device(
    url: Target, tenant: str, device_id: str, *, customer_id: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    """Give a device another customer (of the tenant) or kind; the device as it is now."""
    with _registry(url) as conn:
        _check_device(conn, tenant, customer_id, kind)
        found = conn.execute(
            "UPDATE devices SET customer_id = coalesce(%s, customer_id), kind = coalesce(%s, kind)"
            " WHERE tenant = %s AND id = %s RETURNING id",
            (customer_id, kind, tenant, device_id),
        ).fetchone()
        if found is None:
            raise NotFound(f"no device {device_id!r}")
        return get_device(conn, tenant, device_id)


def import_devices(
    url: Target, tenant: str, rows: Sequence[tuple[int, str, str, str]]
) -> tuple[int, int, list[tuple[int, str]]]:
    """Create or update the tenant's devices, rows (row number, id, customer, kind), in one
    transaction; a row whose customer the tenant does not have is left out and reported.
    (created, updated, [(row number, reason)])."""
    errors: list[tuple[int, str]] = []
    created = updated = 0
    with _registry(url) as conn, conn.transaction():
        referenced = sorted({customer for _, _, customer, _ in rows})
        known = {
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM customers WHERE tenant = %s AND id = ANY(%s)", (tenant, referenced)
            ).fetchall()
        }
        for number, device_id, customer_id, kind in rows:
            _check_id(device_id, "device id")
            if kind not in DEVICE_KINDS:
                errors.append((number, f"kind {kind!r} must be one of {', '.join(DEVICE_KINDS)}"))
                continue
            if customer_id not in known:
                errors.append((number, f"customer {customer_id!r} does not exist: import or create it first"))
                continue
            row = conn.execute(
                "INSERT INTO devices (tenant, id, customer_id, kind) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (tenant, id) DO UPDATE SET customer_id = excluded.customer_id, kind = excluded.kind"
                " RETURNING (xmax = 0)",
                (tenant, device_id, customer_id, kind),
            ).fetchone()
            if row and row[0]:
                created += 1
            else:
                updated += 1
    return created, updated, errors


# ------------------------------------------------------------ warnings: lists and staff actions

_WARNING_LIST = (
    "SELECT w.id::text AS id, w.device, w.customer_id, c.name AS customer_name, w.kind, w.risk, w.severity,"
    " w.status, w.score, w.opened_at, w.predicted_loss_at, w.notified_at, w.acknowledged_at, w.acknowledged_by,"
    " w.resolved_at, w.updated_at, o.outcome FROM warnings w LEFT JOIN outcomes o ON o.warning_id = w.id"
    " LEFT JOIN customers c ON c.tenant = w.tenant AND c.id = w.customer_id"
)


def list_warnings(
    url: Target,
    tenant: str,
    *,
    statuses: Sequence[str] = (),
    risks: Sequence[str] = (),
    severities: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    device: str | None = None,
    customer: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A page of the tenant's warnings, newest first: opened in [since, until), of these
    statuses, risks and severities (any of each), of one device or customer."""
    where = ["w.tenant = %(tenant)s"]
    for column, values in (("status", statuses), ("risk", risks), ("severity", severities)):
        if values:
            where.append(f"w.{column} = ANY(%({column})s)")
    if since is not None:
        where.append("w.opened_at >= %(since)s")
    if until is not None:
        where.append("w.opened_at < %(until)s")
    if device:
        where.append("w.device = %(device)s")
    if customer:
        where.append("w.customer_id = %(customer)s")
    params = {
        "tenant": tenant,
        "status": list(statuses),
        "risk": list(risks),
        "severity": list(severities),
        "since": since,
        "until": until,
        "device": device,
        "customer": customer,
        "limit": limit,
        "offset": offset,
    }
    with _registry(url) as conn:
        return _rows(
            conn,
            f"{_WARNING_LIST} WHERE {' AND '.join(where)}"  # noqa: S608 - our own fragments
            " ORDER BY w.opened_at DESC, w.id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )


def escalate_warning(
    url: Target, warning_id: str, actor: str, *, tenant: str, note: str | None = None
) -> dict[str, Any]:
    """Staff escalate a warning (the lifecycle's ``escalate``, by ``actor``); the warning as it is
    now. A resolved or expired warning is :class:`Refused`."""
    with _registry(url) as conn, conn.transaction():
        row = _warning_row(conn, warning_id, tenant)
        target = lifecycle.next_status(row["status"], "escalate")
        if target is None:
            raise Refused(f"warning {warning_id} is {row['status']}; it cannot be escalated")
        conn.execute("UPDATE warnings SET status = %s, updated_at = now() WHERE id = %s", (target, warning_id))
        conn.execute(
            "INSERT INTO warning_transitions (warning_id, event, from_status, to_status, actor, note)"
            " VALUES (%s, 'escalate', %s, %s, %s, %s)",
            (warning_id, row["status"], target, actor, note),
        )
        return {**row, "status": target}


def warning_extras(url: Target, tenant: str, warning_id: str) -> dict[str, Any]:
    """What the API's warning detail adds to :func:`warning_detail`: the customer's name and the
    whole outcome (with the loss time and the loss avoided)."""
    with _registry(url) as conn:
        rows = _rows(
            conn,
            "SELECT c.name AS customer_name FROM warnings w"
            " LEFT JOIN customers c ON c.tenant = w.tenant AND c.id = w.customer_id"
            " WHERE w.id = %s AND w.tenant = %s",
            (warning_id, tenant),
        )
        if not rows:
            raise NotFound(f"no warning {warning_id}")
        outcome = _rows(
            conn,
            "SELECT outcome, loss_at, cost_cny::float8 AS cost_cny, avoided_cny::float8 AS avoided_cny, note,"
            " recorded_by, recorded_at FROM outcomes WHERE warning_id = %s",
            (warning_id,),
        )
    return {"customer_name": rows[0]["customer_name"], "outcome": outcome[0] if outcome else None}


def record_outcome_and_loss(
    url: Target,
    warning_id: str,
    outcome: str,
    actor: str,
    *,
    tenant: str,
    cost_cny: float | None = None,
    avoided_cny: float | None = None,
    loss_at: datetime | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """:func:`record_outcome` with when the loss happened (or would have) and, for a loss
    avoided, the loss staff estimate it avoided; the outcome as stored."""
    if avoided_cny is not None and (not math.isfinite(avoided_cny) or avoided_cny < 0):
        raise ValueError("the loss avoided must be a non-negative number of CNY")
    if avoided_cny is not None and outcome != "loss_avoided":
        raise ValueError("an avoided loss goes with the outcome loss_avoided only")
    if loss_at is not None and loss_at.tzinfo is None:
        raise ValueError("the loss time must carry a time zone")
    with _registry(url) as conn, conn.transaction():
        record_outcome(conn, warning_id, outcome, actor, tenant=tenant, cost_cny=cost_cny, note=note)
        return _rows(
            conn,
            "UPDATE outcomes SET loss_at = %s, avoided_cny = %s WHERE warning_id = %s"
            " RETURNING outcome, loss_at, cost_cny, avoided_cny, note, recorded_by, recorded_at",
            (loss_at, avoided_cny, warning_id),
        )[0]


def device_readings(
    url: Target,
    tenant: str,
    device_id: str,
    start: datetime,
    end: datetime,
    resolution: str | timedelta = "1h",
    metrics: Sequence[str] | None = None,
) -> tuple[dict[str, list[SeriesPoint]], list[dict[str, Any]]]:
    """One of the tenant's devices: its :func:`series` over [start, end), and its warnings that
    were open at some time in that range (opened before its end, not resolved before its start)."""
    with _registry(url) as conn:
        get_device(conn, tenant, device_id)
        points = series(conn, tenant, device_id, start, end, resolution, metrics)
        warnings = _rows(
            conn,
            "SELECT id::text AS id, risk, severity, status, opened_at, predicted_loss_at, resolved_at FROM warnings"
            " WHERE tenant = %s AND device = %s AND opened_at < %s AND (resolved_at IS NULL OR resolved_at >= %s)"
            " ORDER BY opened_at, id",
            (tenant, device_id, end, start),
        )
    return points, warnings


# ------------------------------------------------------------ the portfolio


LEAD_BUCKETS_H = (0.0, 0.5, 2.0, 6.0, 24.0)
"""Bounds (hours) of the portfolio's lead-time histogram; below the first: the loss came first."""


def portfolio(url: Target, tenant: str, since: datetime, until: datetime) -> dict[str, Any]:
    """What the tenant's warnings opened in [since, until) came to, from what is stored:

    - ``by_risk``: per risk and severity, warnings, acknowledged, outcomes recorded (false
      alarms, losses avoided, losses occurred), the loss avoided (``avoided_cny`` staff
      estimated) and the claims paid (``cost_cny`` of losses that occurred);
    - ``totals``: warnings, notified, acknowledged, the median time from the first message (the
      opening when none was sent) to the acknowledgement, the p10/median/p90 hours from opening
      to the loss where an outcome records when it happened (or would have) (``lead_h``), and
      the same to the predicted time of loss (``promised_h``);
    - ``lead_histogram``: those lead times counted in :data:`LEAD_BUCKETS_H`;
    - ``avoided_by_month``: the loss avoided per month (UTC) of the opening and risk;
    - ``exposure``: devices and device-days in the period (each device counted from its
      registration: devices removed since are not known).
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must carry a time zone")
    if since >= until:
        raise ValueError("since must be before until")
    p = {"tenant": tenant, "since": since, "until": until, "bounds": list(LEAD_BUCKETS_H)}
    period = "w.tenant = %(tenant)s AND w.opened_at >= %(since)s AND w.opened_at < %(until)s"
    quantiles = "percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY {})"
    lead = "extract(epoch FROM o.loss_at - w.opened_at)::float8 / 3600"
    with _registry(url) as conn:
        by_risk = _rows(
            conn,
            "SELECT w.risk, w.severity, count(*) AS warnings, count(w.acknowledged_at) AS acknowledged,"
            " count(*) FILTER (WHERE o.outcome = 'false_alarm') AS false_alarms,"
            " count(*) FILTER (WHERE o.outcome = 'loss_avoided') AS losses_avoided,"
            " count(*) FILTER (WHERE o.outcome = 'loss_occurred') AS losses_occurred,"
            " count(o.avoided_cny) AS avoided_estimates,"
            " coalesce(sum(o.avoided_cny), 0)::float8 AS loss_avoided_cny,"
            " coalesce(sum(o.cost_cny), 0)::float8 AS loss_occurred_cny"
            " FROM warnings w LEFT JOIN outcomes o ON o.warning_id = w.id"
            f" WHERE {period} GROUP BY w.risk, w.severity ORDER BY w.risk, w.severity",
            p,
        )
        totals = _rows(
            conn,
            "SELECT count(*) AS warnings, count(w.notified_at) AS notified, count(w.acknowledged_at) AS acknowledged,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM w.acknowledged_at"
            "  - coalesce(w.notified_at, w.opened_at))::float8) FILTER (WHERE w.acknowledged_at IS NOT NULL)"
            "  AS ack_median_s,"
            f" {quantiles.format('extract(epoch FROM w.predicted_loss_at - w.opened_at)::float8 / 3600')}"
            "  FILTER (WHERE w.predicted_loss_at >= w.opened_at) AS promised_h,"
            " count(*) FILTER (WHERE w.predicted_loss_at >= w.opened_at) AS promised_n,"
            f" (SELECT {quantiles.format(lead)} FROM outcomes o JOIN warnings w ON w.id = o.warning_id"
            f"  WHERE {period} AND o.loss_at IS NOT NULL) AS lead_h,"
            " (SELECT count(*) FROM outcomes o JOIN warnings w ON w.id = o.warning_id"
            f"  WHERE {period} AND o.loss_at IS NOT NULL) AS lead_n"
            f" FROM warnings w WHERE {period}",
            p,
        )[0]
        histogram = _rows(
            conn,
            f"SELECT width_bucket({lead}, %(bounds)s::float8[]) AS bucket, count(*) AS n"
            " FROM outcomes o JOIN warnings w ON w.id = o.warning_id"
            f" WHERE {period} AND o.loss_at IS NOT NULL GROUP BY bucket ORDER BY bucket",
            p,
        )
        by_month = _rows(
            conn,
            "SELECT to_char(w.opened_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, w.risk, count(*) AS losses_avoided,"
            " coalesce(sum(o.avoided_cny), 0)::float8 AS loss_avoided_cny"
            " FROM outcomes o JOIN warnings w ON w.id = o.warning_id"
            f" WHERE {period} AND o.outcome = 'loss_avoided' GROUP BY month, w.risk ORDER BY month, w.risk",
            p,
        )
        exposure = _rows(
            conn,
            "SELECT count(*) AS devices, coalesce(sum(extract(epoch FROM %(until)s::timestamptz"
            " - greatest(%(since)s::timestamptz, d.created_at))), 0)::float8 / 86400 AS device_days"
            " FROM devices d WHERE d.tenant = %(tenant)s AND d.created_at < %(until)s",
            p,
        )[0]
    counts = {int(r["bucket"]): int(r["n"]) for r in histogram}
    return {
        "by_risk": by_risk,
        "totals": totals,
        "lead_histogram": [counts.get(i, 0) for i in range(len(LEAD_BUCKETS_H) + 1)],
        "avoided_by_month": by_month,
        "exposure": exposure,
    }


# ------------------------------------------------------------ rejected telemetry

REJECTS_KEPT_PER_DEVICE = 50
"""The last rejects kept per (tenant, device); counts per reason and hour are kept for all."""


async def store_rejects(store: Store, records: Sequence[RejectRecord]) -> int:
    """Keep rejected telemetry for integrators (the worker, from ``forewarn.rejects``): every
    reject counted per device, reason and hour; the last :data:`REJECTS_KEPT_PER_DEVICE` per
    device kept whole. One transaction; returns the number of rejects counted."""
    if not records:
        return 0
    counts: dict[tuple[str, str, str, datetime], list[Any]] = {}
    per_device: dict[tuple[str, str], list[RejectRecord]] = {}
    for r in records:
        at = _ts(r.received_at)
        assert at is not None
        entry = counts.setdefault((r.tenant, r.device, r.reason, _floor(at, HOUR)), [0, at])
        entry[0] += 1
        entry[1] = max(entry[1], at)
        per_device.setdefault((r.tenant, r.device), []).append(r)
    kept = [r for rs in per_device.values() for r in rs[-REJECTS_KEPT_PER_DEVICE:]]
    touched = sorted(per_device)
    async with store.pool.connection() as conn, conn.transaction():
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO rejects (tenant, device, reason, detail, topic, payload, received_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(r.tenant, r.device, r.reason, r.detail, r.topic, r.payload, _ts(r.received_at)) for r in kept],
            )
            await cur.executemany(  # in key order: workers sharing a key ('' for unreadable topics) never deadlock
                "INSERT INTO reject_counts AS c (tenant, device, reason, hour, n, last_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, device, reason, hour)"
                " DO UPDATE SET n = c.n + excluded.n, last_at = greatest(c.last_at, excluded.last_at)",
                [(*key, n, last) for key, (n, last) in sorted(counts.items())],
            )
        await conn.execute(
            "DELETE FROM rejects r USING (SELECT id FROM (SELECT id, row_number() OVER"
            " (PARTITION BY tenant, device ORDER BY id DESC) AS rn FROM rejects"
            " WHERE (tenant, device) IN (SELECT * FROM unnest(%s::text[], %s::text[]))) AS ranked"
            " WHERE rn > %s) AS old WHERE r.id = old.id",
            ([t for t, _ in touched], [d for _, d in touched], REJECTS_KEPT_PER_DEVICE),
        )
    return len(records)


def prune_rejects(url: Target, days: int) -> int:
    """Forget rejects and their counts older than ``days``; the rejects deleted."""
    if days < 1:
        raise ValueError(f"retention days must be at least 1, got {days}")
    with _registry(url) as conn, conn.transaction():
        deleted = conn.execute(
            "DELETE FROM rejects WHERE received_at < now() - make_interval(days => %s)", (days,)
        ).rowcount
        conn.execute("DELETE FROM reject_counts WHERE hour < now() - make_interval(days => %s)", (days,))
    return deleted


def rejects_summary(
    url: Target,
    tenant: str,
    since: datetime,
    until: datetime,
    *,
    device: str | None = None,
    last: int = 5,
    devices: int = 50,
) -> dict[str, Any]:
    """Why the tenant's telemetry was refused in [since, until) (counted by the hour: the hour
    of ``since`` counts whole): counts per reason; per device (the ``devices`` with most
    rejects, or one ``device``) its counts and its ``last`` rejects."""
    if since >= until:
        raise ValueError("since must be before until")
    p = {
        "tenant": tenant,
        "since": since,
        "hour": _floor(since, HOUR),
        "until": until,
        "device": device,
        "devices": devices,
        "last": last,
    }
    one = " AND device = %(device)s" if device else ""
    window = f"tenant = %(tenant)s AND hour >= %(hour)s AND hour < %(until)s{one}"
    with _registry(url) as conn:
        reasons = _rows(
            conn,
            f"SELECT reason, sum(n)::bigint AS n FROM reject_counts WHERE {window}"  # noqa: S608
            " GROUP BY reason ORDER BY n DESC, reason",
            p,
        )
        by_device = _rows(
            conn,
            f"WITH counted AS (SELECT device, reason, sum(n)::bigint AS n, max(last_at) AS last_at"  # noqa: S608
            f" FROM reject_counts WHERE {window} GROUP BY device, reason),"
            " top AS (SELECT device, sum(n) AS total FROM counted GROUP BY device"
            " ORDER BY total DESC, device LIMIT %(devices)s)"
            " SELECT c.device, c.reason, c.n, c.last_at FROM counted c JOIN top USING (device)"
            " ORDER BY top.total DESC, c.device, c.n DESC, c.reason",
            p,
        )
        p["named"] = sorted({r["device"] for r in by_device})
        latest = _rows(
            conn,
            "SELECT device, reason, detail, topic, payload, received_at FROM (SELECT *, row_number() OVER"
            " (PARTITION BY device ORDER BY id DESC) AS rn FROM rejects WHERE tenant = %(tenant)s"
            " AND device = ANY(%(named)s) AND received_at >= %(since)s AND received_at < %(until)s) AS r"
            " WHERE rn <= %(last)s ORDER BY device, received_at DESC",
            p,
        )
    return {"reasons": reasons, "devices": by_device, "latest": latest}
