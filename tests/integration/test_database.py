"""The schema and the idempotent writes, on a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from core import db
from core.contract import Reading, ReadingsBatch

pytestmark = pytest.mark.integration


def test_migrate_twice_changes_nothing_the_second_time(services) -> None:  # type: ignore[no-untyped-def]
    report = db.migrate(services.database_url, progress=lambda m: None)
    assert report.applied == ()
    tables = {
        r["tablename"]
        for r in db.query(services.database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"customers", "devices", "readings", "warnings", "deliveries", "outcomes"} <= tables
    assert db.query(services.database_url, "SELECT count(*) AS n FROM readings_hourly")[0]["n"] >= 0


def test_registry_refuses_bad_input_with_a_reason(services) -> None:  # type: ignore[no-untyped-def]
    url = services.database_url
    with pytest.raises(ValueError, match="locale"):
        db.add_customer(url, "c-1", "A", "fr", ["json://127.0.0.1:1/x"], tenant="acme")
    with pytest.raises(ValueError, match="does not exist"):
        db.add_device(url, "d-1", "acme", "nobody", "home")
    with pytest.raises(ValueError, match="kind"):
        db.add_device(url, "d-1", "acme", "nobody", "spaceship")
    with pytest.raises(ValueError, match="must match"):
        db.add_customer(url, "Bad Id", "A", "en", [], tenant="acme")


async def test_a_replayed_batch_stores_nothing_twice(services) -> None:  # type: ignore[no-untyped-def]
    store = db.Store(services.database_url)
    await store.open()
    try:
        batch = ReadingsBatch(
            "acme",
            "idem-1",
            "home",
            (
                Reading(1_763_700_000_000, {"temp_c": 20.0, "water_leak": 0.0}, 1),
                Reading(1_763_700_060_000, {"temp_c": 19.5}, 2),
            ),
            1_763_700_061_000,
        )
        assert await store.store_readings([batch]) == 3
        assert await store.store_readings([batch, batch]) == 0
    finally:
        await store.close()
    rows = db.query(
        services.database_url, "SELECT metric, value FROM readings WHERE device = 'idem-1' ORDER BY ts, metric"
    )
    assert [(r["metric"], r["value"]) for r in rows] == [("temp_c", 20.0), ("water_leak", 0.0), ("temp_c", 19.5)]


def test_an_unreachable_or_unmigrated_database_says_what_to_do(services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(db.DatabaseError, match="is it running"):
        db.add_customer("postgresql://postgres@127.0.0.1:1/forewarn", "c-1", "A", "en", [], tenant="acme")
    server = services.database_url.rsplit("/", 1)[0]
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS forewarn_unmigrated")
        conn.execute("CREATE DATABASE forewarn_unmigrated")
    try:
        with pytest.raises(db.DatabaseError, match="run 'forewarn db migrate'"):
            db.add_device(server + "/forewarn_unmigrated", "d-1", "acme", "c-1", "home")
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE forewarn_unmigrated WITH (FORCE)")
