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
import re
import time
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
        from core.settings import get_settings

        retention_days = get_settings().retention_days
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
        conn.execute("SELECT add_retention_policy('readings', interval '90 days', if_not_exists => true)")


def _hourly_view(
    conn: psycopg.Connection[Any], timescale: bool, licence: str | None, progress: Callable[[str], None]
) -> None:
    exists = conn.execute("SELECT to_regclass('readings_hourly')").fetchone()
    if exists and exists[0] is not None:
        return
    select = (
        " SELECT tenant, device, metric, {bucket} AS bucket, avg(value) AS avg_value,"
        " min(value) AS min_value, max(value) AS max_value, count(*) AS n"
        " FROM readings GROUP BY tenant, device, metric, bucket"
    )
    if timescale and licence == "timescale":
        progress("create continuous aggregate readings_hourly")
        conn.execute(
            "CREATE MATERIALIZED VIEW readings_hourly WITH (timescaledb.continuous) AS"
            # time_bucket's default origin for timestamptz is 2000-01-03, the same as date_bin's below
            + select.format(bucket="time_bucket(interval '1 hour', ts)")
            + " WITH NO DATA"
        )
        conn.execute(
            "SELECT add_continuous_aggregate_policy('readings_hourly', start_offset => interval '3 days',"
            " end_offset => interval '1 hour', schedule_interval => interval '30 minutes')"
        )
    else:
        progress("create view readings_hourly (date_bin)")
        conn.execute(
            "CREATE VIEW readings_hourly AS"
            + select.format(bucket="date_bin(interval '1 hour', ts, timestamptz '2000-01-03')")
        )


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
    except psycopg.errors.UndefinedTable:
        raise DatabaseError(
            f"the database {_where(url)} has no forewarn schema yet: run 'forewarn db migrate'"
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


# ------------------------------------------------------------------- async store (services)


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
    conn: psycopg.AsyncConnection[Any], warning_id: str, event: lifecycle.Event, fields: str, values: tuple[Any, ...]
) -> None:
    """Apply one lifecycle event to a stored warning, by :mod:`core.lifecycle`'s table.

    ``fields`` (``col = %s, …``) are set with the status; nothing changes in a status the
    event does not leave."""
    target = {src: lifecycle.next_status(src, event) for src in lifecycle.sources(event)}
    cases = " ".join(f"WHEN '{src}' THEN '{dst}'" for src, dst in target.items())
    await conn.execute(
        f"UPDATE warnings SET status = CASE status {cases} END, {fields}, updated_at = now()"  # noqa: S608
        " WHERE id = %s AND status = ANY(%s)",
        (*values, warning_id, list(target)),
    )


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

    async def customer_of(self, tenant: str, device: str) -> dict[str, Any] | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            # a cursor's own row factory: the pooled connection stays as it was
            await cur.execute(
                "SELECT c.id, c.name, c.locale, c.notify_urls FROM devices d"
                " JOIN customers c ON c.id = d.customer_id WHERE d.tenant = %s AND d.id = %s",
                (tenant, device),
            )
            return await cur.fetchone()

    async def record_warning(self, event: Any, customer_id: str | None) -> None:
        """Insert or advance a warning's lifecycle from a decision event (idempotent)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO warnings (id, tenant, device, customer_id, risk, severity, status, score,"
                " opened_at, predicted_loss_at, evidence)"
                " VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (
                    event.warning_id,
                    event.tenant,
                    event.device,
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
                return
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
            await _advance(conn, event.warning_id, event.action, fields, values)

    async def claim_delivery(self, warning_id: str, action: str, url: str, masked_url: str) -> bool:
        """Reserve (warning, action, channel); False when it was already sent."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO deliveries (warning_id, action, channel, channel_key, status)"
                " VALUES (%s, %s, %s, %s, 'sending')"
                " ON CONFLICT (warning_id, action, channel_key) DO UPDATE SET attempted_at = now()"
                " WHERE deliveries.status <> 'sent' RETURNING id",
                (warning_id, action, masked_url, channel_key(url)),
            )
            return await cur.fetchone() is not None

    async def record_delivery(self, warning_id: str, action: str, url: str, ok: bool, error: str | None) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE deliveries SET status = %s, error = %s, attempts = attempts + 1,"
                " attempted_at = now() WHERE warning_id = %s AND action = %s AND channel_key = %s",
                ("sent" if ok else "failed", error, warning_id, action, channel_key(url)),
            )
            if ok and action in lifecycle.NOTIFY_ACTIONS:
                await _advance(conn, warning_id, "notified", "notified_at = coalesce(notified_at, now())", ())
