"""Dead letters: Kafka records set aside because the database refuses them (``dead_letters``).

The worker stores and handles Kafka records in batches. When a write fails, the first question
is whose fault it is (:func:`blames_records`): a lost, refused or silent connection, a timeout,
a missing table or privilege is the database's or the operator's, and is waited out — never a
reason to set a record aside; a value the database refuses or a constraint a record breaks is
the record's, and after bounded retries that record alone is set aside here (:func:`set_aside`),
whole and with the error, so that everything after it flows. One of the core database modules
(psycopg is imported here and in :mod:`core.db` only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.db import DatabaseError, Store

REASON_CHARS = 1000
"""How much of the error is kept as the reason."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record set aside: where it was on Kafka (partition and offset when known), its key and
    bytes as read, and why it could not be stored."""

    topic: str
    key: bytes | None
    partition: int | None
    offset: int | None
    record: bytes
    reason: str


def blames_records(exc: BaseException) -> bool:
    """Whether a failed database write is the fault of what it carried (so retrying it as it is
    cannot help) rather than of the database, the network or the schema (so waiting can).

    The records' fault: a value or constraint PostgreSQL refuses (SQLSTATE classes 22 and 23:
    psycopg's ``DataError`` and ``IntegrityError``, e.g. a number out of a ``bigint``'s range), an
    internal error raised while handling them (class XX), or a value that cannot even be sent
    (a conversion error in Python). Not their fault: connection errors, timeouts and every other
    ``OperationalError`` (a statement timeout, a deadlock, a shutdown, a full disk), a pool that
    gives no connection, and a missing table, column or privilege (class 42: the schema is not
    migrated or the role lacks a grant — setting records aside would set aside the whole stream).
    """
    if isinstance(exc, (TimeoutError, OSError, DatabaseError)):  # DatabaseError: ours, no connection or no answer
        return False
    if isinstance(exc, (psycopg.DataError, psycopg.IntegrityError, psycopg.InternalError)):
        return not str(getattr(exc, "sqlstate", None) or "").startswith("25")  # 25: a transaction state, not data
    if isinstance(exc, psycopg.Error):  # OperationalError (PoolTimeout too), InterfaceError, ProgrammingError, …
        return False
    return isinstance(exc, Exception)


def reason_of(exc: BaseException) -> str:
    """The error as a reason to keep: its type, SQLSTATE when the server gave one, and message."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = " ".join(str(exc).split()) or repr(exc)
    where = f"{type(exc).__name__}" + (f" [{sqlstate}]" if sqlstate else "")
    return f"{where}: {text}"[:REASON_CHARS].replace("\x00", "\ufffd")


async def set_aside(store: Store, letters: Sequence[DeadLetter]) -> int:
    """Keep ``letters`` in ``dead_letters`` (one transaction); the ones new. A record already set
    aside at the same topic, partition and offset (a replay) is kept once."""
    if not letters:
        return 0
    async with store.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            'INSERT INTO dead_letters (topic, key, "partition", "offset", record, reason)'
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (d.topic[:300], d.key, d.partition, d.offset, d.record, d.reason[:REASON_CHARS].replace("\x00", ""))
                for d in letters
            ],
        )
        return max(cur.rowcount, 0)


async def dead_letters(store: Store, limit: int = 100, topic: str | None = None) -> list[dict[str, Any]]:
    """The latest dead letters, newest first (``topic``: of that topic only)."""
    async with store.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            'SELECT id, topic, key, "partition", "offset", record, reason, at FROM dead_letters'
            " WHERE %(topic)s::text IS NULL OR topic = %(topic)s ORDER BY id DESC LIMIT %(limit)s",
            {"topic": topic, "limit": limit},
        )
        return await cur.fetchall()


async def forget_dead_letters(store: Store, older_than: datetime) -> int:
    """Delete the dead letters set aside before ``older_than``; how many."""
    async with store.pool.connection() as conn:
        cur = await conn.execute("DELETE FROM dead_letters WHERE at < %s", (older_than,))
        return max(cur.rowcount, 0)
