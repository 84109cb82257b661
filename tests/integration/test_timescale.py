"""TimescaleDB (Apache licence) for real, next to plain PostgreSQL: hypertable, hourly roll-ups,
retention, and the series query giving the same answers on both.

A private cluster with TimescaleDB preloaded is started for this module; the plain side is a
fresh database on the configured server (127.0.0.1:5432, which does not preload TimescaleDB),
or on a private cluster without it when none answers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from core import db
from core.contract import Reading, ReadingsBatch
from core.settings import Settings, host_port
from forewarn import launcher

pytestmark = pytest.mark.integration

TENANT = "tsdb"
DAYS = 10
STEP = timedelta(minutes=10)
# "now" for the readings, on a whole minute, so that several tests store the very same rows
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@dataclass
class Database:
    url: str
    report: db.MigrationReport
    lines: list[str]


def _server_of(url: str) -> str:
    return url.rsplit("/", 1)[0]


@contextlib.contextmanager
def _fresh_database(server: str) -> Iterator[Database]:
    """A new database on ``server`` (migrated by db.migrate, which creates it), dropped after."""
    name = f"forewarn_tsdb_{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    report = db.migrate(f"{server}/{name}", progress=lines.append)
    try:
        yield Database(f"{server}/{name}", report, lines)
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def timescale_server() -> Iterator[str]:
    """A private cluster with TimescaleDB preloaded (the Apache-licence build on this machine)."""
    if not launcher.timescale_installed():
        pytest.skip(
            "TimescaleDB is not installed for this machine's PostgreSQL (no timescaledb.control under "
            "/usr/share/postgresql/*/extension): nothing to run these tests against"
        )
    svc = launcher.start_postgres(preload_timescale=True)
    try:
        yield _server_of(svc.url)
    finally:
        launcher.LocalStack("", "", "", [svc]).stop()


@pytest.fixture(scope="module")
def plain_server() -> Iterator[str]:
    """The configured server (it does not preload TimescaleDB), else a private plain cluster."""
    base = Settings().database_url
    if launcher.reachable(*host_port(base, 5432)):
        yield _server_of(base)
        return
    svc = launcher.start_postgres()
    try:
        yield _server_of(svc.url)
    finally:
        launcher.LocalStack("", "", "", [svc]).stop()


@pytest.fixture(scope="module")
def timescale_db(timescale_server: str) -> Iterator[Database]:
    with _fresh_database(timescale_server) as database:
        yield database


@pytest.fixture(scope="module")
def plain_db(plain_server: str) -> Iterator[Database]:
    with _fresh_database(plain_server) as database:
        yield database


def _value(metric: str, i: int) -> float:
    base = {"temp_c": 18.0, "humidity_pct": 55.0}[metric]
    return round(base + ((i * 7919) % 101) / 10.0 - 5.0, 1)


def _batches(device: str, days: int = DAYS, step: timedelta = STEP, per_batch: int = 144) -> list[ReadingsBatch]:
    """One reading every ``step`` for ``days`` up to NOW, two metrics each, in records of ``per_batch``."""
    first = NOW - timedelta(days=days)
    count = int(timedelta(days=days) / step)
    readings = [
        Reading(
            int((first + i * step).timestamp() * 1000),
            {m: _value(m, i) for m in ("temp_c", "humidity_pct")},
            i,
        )
        for i in range(count)
    ]
    ingested = int(NOW.timestamp() * 1000)
    return [
        ReadingsBatch(TENANT, device, "home", tuple(readings[k : k + per_batch]), ingested)
        for k in range(0, count, per_batch)
    ]


def _hour_buckets(batches: list[ReadingsBatch]) -> int:
    """How many (device, metric, hour) buckets the batches touch."""
    return len(
        {
            (b.device, metric, db._floor(datetime.fromtimestamp(r.ts / 1000, UTC), db.HOUR))
            for b in batches
            for r in b.readings
            for metric in r.metrics
        }
    )


async def _store(url: str, batches: list[ReadingsBatch]) -> int:
    store = db.Store(url, max_size=1)
    await store.open()
    try:
        return await store.store_readings(batches)
    finally:
        await store.close()


def _rows(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(statement, params).fetchall())  # type: ignore[arg-type]


def _scalar(url: str, statement: str, params: tuple[Any, ...] = ()) -> Any:
    return _rows(url, statement, params)[0][0]


ROLLUP = (
    "SELECT tenant, device, metric, bucket, n, min_value, max_value, sum_value, avg_value FROM readings_hourly"
    " WHERE tenant = %s ORDER BY tenant, device, metric, bucket"
)
DIRECT = (
    "SELECT tenant, device, metric, time_bucket(interval '1 hour', ts) AS bucket, count(*), min(value),"
    " max(value), sum(value), avg(value) FROM readings WHERE tenant = %s"
    " GROUP BY tenant, device, metric, bucket ORDER BY tenant, device, metric, bucket"
)


def _same_aggregates(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[:7] == w[:7]  # keys, count, min, max: exact
        assert g[7] == pytest.approx(w[7], rel=1e-12) and g[8] == pytest.approx(w[8], rel=1e-12)


def test_readings_is_a_hypertable_under_the_apache_licence(timescale_db: Database) -> None:
    url = timescale_db.url
    assert timescale_db.report.timescale is True
    assert timescale_db.report.timescale_licence == "apache"
    assert "make readings a hypertable" in timescale_db.lines
    assert "create roll-up table readings_hourly" in timescale_db.lines
    dims = _rows(
        url,
        "SELECT column_name, time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'readings'",
    )
    assert dims == [("ts", timedelta(days=1))]
    assert _scalar(url, "SELECT relkind FROM pg_class WHERE oid = 'readings_hourly'::regclass") == "r"
    # no jobs of ours under the Apache licence: the worker's timer does their work
    assert _scalar(url, "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL") == 0
    again = db.migrate(url, progress=lambda m: None)
    assert again.applied == () and again.timescale


async def test_rollups_are_refreshed_incrementally_and_match_a_direct_aggregate(timescale_db: Database) -> None:
    url = timescale_db.url
    batches = _batches("roll-1") + _batches("roll-2", days=4)
    assert await _store(url, batches) == 2 * 144 * (DAYS + 4)

    first = db.refresh_rollups(url, since=NOW - timedelta(days=30))
    assert first.rollup == "table"
    assert first.buckets == first.changed == _hour_buckets(batches)
    _same_aggregates(_rows(url, ROLLUP, (TENANT,)), _rows(url, DIRECT, (TENANT,)))

    again = db.refresh_rollups(url)  # from the watermark minus 3 days: recomputed, nothing differs
    assert again.since is not None and again.since >= NOW - timedelta(days=3, hours=1)
    assert again.buckets > 0 and again.changed == 0

    # late readings: one two days old (inside the late-data window), one eight days old (outside)
    late_2d = NOW - timedelta(days=2, minutes=5)
    late_8d = NOW - timedelta(days=8, minutes=5)
    ingested = int(NOW.timestamp() * 1000)
    for when in (late_2d, late_8d):
        batch = ReadingsBatch(
            TENANT, "roll-1", "home", (Reading(int(when.timestamp() * 1000), {"temp_c": 99.5}),), ingested
        )
        assert await _store(url, [batch]) == 1
    window = db.refresh_rollups(url)
    assert window.changed == 1  # the two-day-old hour; the eight-day-old one is past the window
    assert _rows(url, ROLLUP, (TENANT,)) != _rows(url, DIRECT, (TENANT,))
    store = db.Store(url, max_size=1)  # the worker's way: async, on its own connection
    swept = await store.refresh_rollups(since=late_8d)
    assert swept.rollup == "table" and swept.changed == 1
    _same_aggregates(_rows(url, ROLLUP, (TENANT,)), _rows(url, DIRECT, (TENANT,)))
    high = _rows(
        url,
        "SELECT max_value, n FROM readings_hourly WHERE device = 'roll-1' AND metric = 'temp_c' AND bucket = %s",
        (db._floor(late_8d, db.HOUR),),
    )
    assert high == [(99.5, 7)]


async def test_an_existing_hourly_view_becomes_a_rollup_table(timescale_server: str) -> None:
    with _fresh_database(timescale_server) as database:
        url = database.url
        with psycopg.connect(url, autocommit=True) as conn:  # a database migrated before 0004
            conn.execute("DROP TABLE readings_hourly")
            conn.execute("DROP TABLE rollup_watermarks")
            conn.execute("DELETE FROM schema_migrations WHERE name = '0004_rollups.sql'")
            conn.execute(
                "CREATE VIEW readings_hourly AS SELECT tenant, device, metric,"
                " date_bin(interval '1 hour', ts, timestamptz '2000-01-03') AS bucket, avg(value) AS avg_value,"
                " min(value) AS min_value, max(value) AS max_value, count(*) AS n"
                " FROM readings GROUP BY tenant, device, metric, bucket"
            )
        await _store(url, _batches("view-1", days=3))
        lines: list[str] = []
        report = db.migrate(url, progress=lines.append)
        assert report.applied == ("0004_rollups.sql",)
        assert "replace view readings_hourly by a roll-up table" in lines
        assert _scalar(url, "SELECT relkind FROM pg_class WHERE oid = 'readings_hourly'::regclass") == "r"
        _same_aggregates(_rows(url, ROLLUP, (TENANT,)), _rows(url, DIRECT, (TENANT,)))
        assert _scalar(url, "SELECT count(*) FROM rollup_watermarks") == 1
        assert db.refresh_rollups(url).changed == 0  # complete as converted
        lines.clear()
        assert db.migrate(url, progress=lines.append).applied == ()
        assert not [line for line in lines if "readings_hourly" in line]


async def test_retention_drops_whole_old_chunks_and_their_rollups(timescale_server: str) -> None:
    with _fresh_database(timescale_server) as database:
        url = database.url
        await _store(url, _batches("ret-1"))
        db.refresh_rollups(url)
        chunks_before = _scalar(url, "SELECT count(*) FROM show_chunks('readings')")
        assert DAYS <= chunks_before <= DAYS + 1  # one chunk per UTC day touched
        recent = "SELECT count(*) FROM readings WHERE ts >= now() - interval '5 days'"
        recent_before = _scalar(url, recent)

        report = db.apply_retention(url, days=5)
        assert report.how == "chunks" and report.rows_deleted == 0
        chunks_after = _scalar(url, "SELECT count(*) FROM show_chunks('readings')")
        assert report.chunks_dropped == chunks_before - chunks_after >= 4
        assert report.cutoff is not None
        # whole chunks: what is left starts at the cutoff's UTC midnight at the earliest
        oldest = _scalar(url, "SELECT min(ts) FROM readings")
        assert db._floor(report.cutoff, timedelta(days=1)) <= oldest
        assert _scalar(url, recent) == recent_before
        # the roll-ups went with the chunks: they summarise exactly what is left
        assert report.rollups_deleted > 0
        _same_aggregates(_rows(url, ROLLUP, (TENANT,)), _rows(url, DIRECT, (TENANT,)))
        nothing = db.apply_retention(url, days=5)
        assert nothing.chunks_dropped == 0 and nothing.rollups_deleted == 0


async def test_series_answers_the_same_on_the_hypertable_and_on_plain_postgresql(
    timescale_db: Database, plain_db: Database
) -> None:
    batches = _batches("series-1", days=3, step=timedelta(minutes=1), per_batch=500)
    for database in (timescale_db, plain_db):
        await _store(database.url, batches)
    assert db.refresh_rollups(timescale_db.url).rollup == "table"
    assert db.refresh_rollups(plain_db.url).rollup == "view"  # always current: nothing to do
    # a reading after the refresh: the hypertable side reads it raw, past the roll-up's watermark
    latest = ReadingsBatch(
        TENANT,
        "series-1",
        "home",
        (Reading(int(NOW.timestamp() * 1000), {"temp_c": -3.0}),),
        int(NOW.timestamp() * 1000),
    )
    for database in (timescale_db, plain_db):
        assert await _store(database.url, [latest]) == 1

    start, end = NOW - timedelta(days=2, minutes=17), NOW + timedelta(minutes=1)  # not on bucket edges
    for resolution in ("1m", "15m", "1h", "6h", "1d", timedelta(hours=2)):
        hyper = db.series(timescale_db.url, TENANT, "series-1", start, end, resolution)
        plain = db.series(plain_db.url, TENANT, "series-1", start, end, resolution)
        assert set(hyper) == set(plain) == {"temp_c", "humidity_pct"}, resolution
        width = db.parse_resolution(resolution)
        for metric, points in hyper.items():
            other = plain[metric]
            assert [(p.bucket, p.n, p.min, p.max) for p in points] == [(p.bucket, p.n, p.min, p.max) for p in other]
            assert [p.avg for p in points] == pytest.approx([p.avg for p in other], rel=1e-12)
            assert points[0].bucket <= start < points[0].bucket + width  # whole buckets
            assert points[-1].bucket <= NOW and NOW - timedelta(minutes=1) < points[-1].bucket + width
        last = hyper["temp_c"][-1]  # the reading stored after the refresh is in
        assert last.bucket <= NOW < last.bucket + width and last.min == -3.0, resolution
        assert sum(p.n for p in hyper["humidity_pct"]) == _scalar(
            timescale_db.url,
            "SELECT count(*) FROM readings WHERE device = 'series-1' AND metric = 'humidity_pct'"
            " AND ts >= %s AND ts < %s",
            (hyper["humidity_pct"][0].bucket, hyper["humidity_pct"][-1].bucket + width),
        )

    store = db.Store(timescale_db.url, max_size=1)
    await store.open()
    try:
        got = await store.series(TENANT, "series-1", start, end, "1h", metrics=["temp_c"])
        want = db.series(timescale_db.url, TENANT, "series-1", start, end, "1h", metrics=["temp_c"])
        assert got == want
    finally:
        await store.close()

    # hourly and coarser really read the roll-up; finer resolutions read the readings
    day_old = db._floor(NOW - timedelta(days=1), db.HOUR)
    with psycopg.connect(timescale_db.url) as conn:
        conn.execute(
            "UPDATE readings_hourly SET max_value = 1000 WHERE device = 'series-1' AND metric = 'temp_c'"
            " AND bucket = %s",
            (day_old,),
        )
    hourly = db.series(timescale_db.url, TENANT, "series-1", day_old, day_old + db.HOUR, "1h", ["temp_c"])
    minutes = db.series(timescale_db.url, TENANT, "series-1", day_old, day_old + db.HOUR, "1m", ["temp_c"])
    assert hourly["temp_c"][0].max == 1000 and max(p.max for p in minutes["temp_c"]) < 1000
    # a refresh puts it right (and rolls up the reading stored after the last one)
    assert db.refresh_rollups(timescale_db.url).changed == 2


@pytest.mark.parametrize(
    ("resolution", "message"),
    [
        ("1mo", "whole number and a unit"),
        ("1.5h", "whole number and a unit"),
        ("0h", "whole number and a unit"),
        ("", "whole number and a unit"),
        (timedelta(milliseconds=500), "whole seconds"),
        (timedelta(days=8), "from 1 s to 7 days"),
        (3600, "string such as '1h' or a timedelta"),
    ],
)
def test_series_refuses_a_bad_resolution_with_a_reason(resolution: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        db.series("postgresql://nobody@127.0.0.1:1/none", TENANT, "d", NOW - timedelta(hours=1), NOW, resolution)


def test_series_refuses_a_bad_range_with_a_reason() -> None:
    nowhere = "postgresql://nobody@127.0.0.1:1/none"
    with pytest.raises(ValueError, match="time zone"):
        db.series(nowhere, TENANT, "d", datetime(2025, 1, 1), datetime(2025, 1, 2), "1h")  # noqa: DTZ001
    with pytest.raises(ValueError, match="must be before"):
        db.series(nowhere, TENANT, "d", NOW, NOW, "1h")
    with pytest.raises(ValueError, match="coarser resolution"):
        db.series(nowhere, TENANT, "d", NOW - timedelta(days=365), NOW, "1m")


async def test_plain_postgresql_falls_back_to_a_view_and_batched_deletes(plain_server: str) -> None:
    with _fresh_database(plain_server) as database:
        url = database.url
        assert database.report.timescale is False and database.report.timescale_licence is None
        if launcher.timescale_installed():  # installed on this machine, but the server does not preload it
            assert any("installed but not preloaded" in line for line in database.lines), database.lines
        assert "create view readings_hourly (date_bin)" in database.lines
        assert _scalar(url, "SELECT relkind FROM pg_class WHERE oid = 'readings_hourly'::regclass") == "v"
        batches = _batches("plain-1")
        await _store(url, batches)
        refresh = db.refresh_rollups(url)
        assert (refresh.rollup, refresh.buckets, refresh.changed) == ("view", 0, 0)
        view = _rows(url, ROLLUP, (TENANT,))
        direct_sql = DIRECT.replace("time_bucket(", "date_bin(").replace(", ts)", f", ts, {db._ORIGIN_SQL})")
        direct = _rows(url, direct_sql, (TENANT,))
        _same_aggregates(view, direct)

        report = db.apply_retention(url, days=5, batch=500)
        assert report.how == "delete" and report.chunks_dropped == 0 and report.cutoff is not None
        # whole hours, five days back
        assert report.cutoff == db._floor(report.cutoff, db.HOUR)
        assert timedelta(days=5) <= datetime.now(UTC) - report.cutoff < timedelta(days=5, hours=1, minutes=1)
        kept = sum(len(r.metrics) for b in batches for r in b.readings if r.ts >= report.cutoff.timestamp() * 1000)
        assert report.rows_deleted == 2 * 144 * DAYS - kept > 500  # in several batches
        assert _scalar(url, "SELECT min(ts) FROM readings") >= report.cutoff
        assert _scalar(url, "SELECT count(*) FROM readings") == kept
        with pytest.raises(ValueError, match="at least 1"):
            db.apply_retention(url, days=0)

        # a view made before sum_value existed gains it (the other columns unchanged)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP VIEW readings_hourly")
            conn.execute(
                "CREATE VIEW readings_hourly AS SELECT tenant, device, metric,"
                " date_bin(interval '1 hour', ts, timestamptz '2000-01-03') AS bucket, avg(value) AS avg_value,"
                " min(value) AS min_value, max(value) AS max_value, count(*) AS n"
                " FROM readings GROUP BY tenant, device, metric, bucket"
            )
        lines: list[str] = []
        assert db.migrate(url, progress=lines.append).applied == ()
        assert "update view readings_hourly (date_bin)" in lines
        _same_aggregates(_rows(url, ROLLUP, (TENANT,)), _rows(url, direct_sql, (TENANT,)))
