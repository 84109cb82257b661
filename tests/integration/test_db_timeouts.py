"""A PostgreSQL that stops answering fails the services' operations in seconds, never hangs them.

Between the Store and a real PostgreSQL stands a TCP proxy (``chaos_proxy``) that, when told,
keeps every connection open and forwards nothing: its kernel still acknowledges every segment,
so only the Store's own deadlines can notice. After the proxy forwards again the same Store
works again, on new connections.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from chaos_proxy import ChaosProxy  # this folder's helper

from core import db
from core.settings import host_port

pytestmark = pytest.mark.integration

HANG_GUARD_S = 60  # far beyond the deadlines: reaching it means the Store hung


async def _fails_in(coro: object) -> tuple[float, BaseException]:
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(coro, HANG_GUARD_S)  # type: ignore[arg-type]
    except TimeoutError:
        pytest.fail(f"the operation hung for {HANG_GUARD_S} s on a blackholed PostgreSQL")
    except (db.DatabaseError, psycopg.Error) as exc:
        return time.monotonic() - t0, exc
    pytest.fail("the operation succeeded through a blackhole")


async def _works_again(store: db.Store, within_s: float = 60) -> float:
    t0 = time.monotonic()
    while True:
        try:
            await store.detector_config_version()
            return time.monotonic() - t0
        except (db.DatabaseError, psycopg.Error):
            if time.monotonic() - t0 > within_s:
                raise
            await asyncio.sleep(0.5)


async def _sleep_on_the_pool(store: db.Store, seconds: float) -> None:
    async with store.pool.connection() as conn:
        await conn.execute("SELECT pg_sleep(%s)", (seconds,))


async def test_a_blackholed_postgresql_fails_store_operations_within_seconds_and_the_store_recovers(services) -> None:  # type: ignore[no-untyped-def]
    host, port = host_port(services.database_url, 5432)
    with ChaosProxy(host, port) as proxy:
        store = db.Store(proxy.url_for(services.database_url), max_size=2)
        await store.open()
        try:
            await store.detector_config_version()

            # between operations: the idle pooled connection's check gets no answer
            proxy.blackhole()
            idle_s, idle_exc = await _fails_in(store.detector_config_version())
            print(f"blackhole noticed between operations after {idle_s:.1f} s: {idle_exc}")
            assert idle_s < 20, f"took {idle_s:.1f} s"
            proxy.heal()
            print(f"working again {await _works_again(store):.1f} s after the proxy forwards again")

            # during an operation: the answer to a statement in flight never comes
            running = asyncio.ensure_future(_sleep_on_the_pool(store, 1.0))
            await asyncio.sleep(0.3)
            proxy.blackhole()
            busy_s, busy_exc = await _fails_in(running)
            print(f"blackhole noticed during an operation after {busy_s + 0.3:.1f} s: {busy_exc}")
            assert busy_s < 20, f"took {busy_s:.1f} s"
            assert isinstance(busy_exc, db.DatabaseError) and "no answer within" in str(busy_exc)
            proxy.heal()
            await _works_again(store)
        finally:
            await asyncio.wait_for(store.close(), 30)


def test_the_api_pool_gives_up_on_a_blackholed_postgresql_and_recovers(services) -> None:  # type: ignore[no-untyped-def]
    host, port = host_port(services.database_url, 5432)
    with ChaosProxy(host, port) as proxy:
        desk = db.Desk(proxy.url_for(services.database_url), max_size=2, timeout_s=8)
        try:
            assert db.query(desk, "SELECT 1 AS one") == [{"one": 1}]
            proxy.blackhole()
            t0 = time.monotonic()
            with pytest.raises(db.DatabaseError):
                db.query(desk, "SELECT 1 AS one")
            took = time.monotonic() - t0
            print(f"API pool: blackhole noticed after {took:.1f} s")
            assert took < 20, f"took {took:.1f} s"
            proxy.heal()
            deadline = time.monotonic() + 60
            while True:
                try:
                    assert db.query(desk, "SELECT 1 AS one") == [{"one": 1}]
                    break
                except db.DatabaseError:
                    assert time.monotonic() < deadline, "the API pool did not recover after the proxy healed"
                    time.sleep(0.5)
        finally:
            desk.close()


def test_service_connections_carry_the_timeouts_and_migrations_none(services) -> None:  # type: ignore[no-untyped-def]
    """What the server sees on each kind of connection (the settings above are not just passed, but in force)."""

    async def seen_by_store() -> str:
        store = db.Store(services.database_url, max_size=1, statement_timeout=7)
        await store.open()
        try:
            async with store.pool.connection() as conn:
                cur = await conn.execute("SELECT current_setting('statement_timeout')")
                row = await cur.fetchone()
                assert row is not None
                assert conn.info.get_parameters().get("keepalives_idle") == "5"
                return str(row[0])
        finally:
            await store.close()

    assert asyncio.run(seen_by_store()) == "7s"
    with db._connect(services.database_url) as conn:  # one-shot (CLI, migrations): no statement timeout
        row = conn.execute("SELECT current_setting('statement_timeout')").fetchone()
        assert row is not None and row[0] == "0"
        info = conn.info.get_parameters()
        assert info.get("keepalives_idle") == "5" and info.get("tcp_user_timeout") == "10000"
