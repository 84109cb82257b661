"""How fast ``core.db.Store.store_readings`` writes readings, first time and on replay.

``store_readings`` is what the worker's ``store_readings`` agent calls for every
``stream.take(500, within=0.5)``: it flattens the batches to one row per metric value, COPYs
them (binary) into a temporary staging table, then ``INSERT … SELECT DISTINCT ON … ON CONFLICT
DO NOTHING`` into ``readings`` (unique on tenant, device, metric, ts), in one transaction.

For calls of 1k, 10k and 50k rows (``--sizes``) it prints rows/s of the first write and of a
replay of the very same batches (every row a conflict), then where the time of one call goes
(building the rows in Python, COPY into staging, the INSERT, the commit), and today's
baselines on the same server next to FIELD-NOTES: COPY binary into a plain table (730k rows/s
there), into a table with the same unique key, and ``executemany`` 1k rows per transaction
(60k rows/s there).

Uses a fresh ``forewarn_bench_<hex>`` database on ``FOREWARN_DATABASE_URL``'s server
(127.0.0.1:5432 by default; a private cluster when none answers), dropped at the end.
Figures only, no assertions. About 20-40 s.

    python benchmarks/store_throughput.py [--sizes 1000 10000 50000] [--rows-per-size 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
from benchlib import bench_database, machine, say, table  # this folder's helper

from core.contract import Reading, ReadingsBatch
from core.db import Store

DEVICES = 200
READINGS_PER_BATCH = 10  # a record of 10 readings; 2 or 3 metrics each (2.5 rows per reading)
METRIC_SETS = (("temp_c", "pipe_temp_c", "humidity_pct"), ("temp_c", "pipe_temp_c"))
FIELD_NOTES = {"copy_plain": 730_000, "copy_hypertable": 115_000, "executemany_1k": 60_000}


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Readings:
    """Distinct readings for a fleet of devices: every call continues each device's time line."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.next_seq = [0] * DEVICES
        self.device = 0

    def batches(self, rows: int) -> list[ReadingsBatch]:
        out: list[ReadingsBatch] = []
        made = 0
        now_ms = int(time.time() * 1000)
        while made < rows:
            d = self.device
            self.device = (self.device + 1) % DEVICES
            readings = []
            for _ in range(READINGS_PER_BATCH):
                seq = self.next_seq[d]
                self.next_seq[d] += 1
                names = METRIC_SETS[seq % 2]
                metrics = {name: 10.0 + (seq % 97) * 0.1 + i for i, name in enumerate(names)}
                readings.append(Reading(ts=self.start_ms + seq * 1000, metrics=metrics, seq=seq))
                made += len(metrics)
                if made >= rows:
                    break
            out.append(ReadingsBatch("bench", f"dev-{d:04d}", "home", tuple(readings), now_ms))
        return out


def rows_of(batches: Sequence[ReadingsBatch]) -> list[tuple[object, ...]]:
    """The rows store_readings makes (same comprehension)."""
    return [
        (b.tenant, b.device, metric, _ts(r.ts), value, r.seq, _ts(b.ingested_at))
        for b in batches
        for r in b.readings
        for metric, value in r.metrics.items()
    ]


async def timed_calls(store: Store, sets: Sequence[list[ReadingsBatch]]) -> tuple[list[float], list[int], int]:
    seconds, inserted, rows = [], [], 0
    for batches in sets:
        n = sum(len(r.metrics) for b in batches for r in b.readings)
        t0 = time.perf_counter()
        inserted.append(await store.store_readings(batches))
        seconds.append(time.perf_counter() - t0)
        rows += n
    return seconds, inserted, rows


INSERT_AS_STORED = (
    "INSERT INTO readings (tenant, device, metric, ts, value, seq, ingested_at)"
    " SELECT DISTINCT ON (tenant, device, metric, ts) * FROM readings_stage"
    " ON CONFLICT (tenant, device, metric, ts) DO NOTHING"
)
# What if: ON CONFLICT DO NOTHING already skips duplicates inside one statement (only DO UPDATE
# refuses to touch a row twice), so the DISTINCT ON sort is not needed for correctness.
INSERT_WITHOUT_DISTINCT = (
    "INSERT INTO readings (tenant, device, metric, ts, value, seq, ingested_at)"
    " SELECT * FROM readings_stage ON CONFLICT (tenant, device, metric, ts) DO NOTHING"
)


async def breakdown(url: str, batches: list[ReadingsBatch], insert_sql: str = INSERT_AS_STORED) -> dict[str, float]:
    """One store_readings call, step by step, with the same SQL (seconds per step)."""
    steps: dict[str, float] = {}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        t0 = time.perf_counter()
        rows = rows_of(batches)
        t1 = time.perf_counter()
        steps["build rows (Python)"] = t1 - t0
        async with conn.transaction():
            t1 = time.perf_counter()
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS readings_stage"
                " (tenant text, device text, metric text, ts timestamptz, value float8,"
                " seq bigint, ingested_at timestamptz) ON COMMIT DELETE ROWS"
            )
            t2 = time.perf_counter()
            steps["create temp table"] = t2 - t1
            async with conn.cursor().copy(
                "COPY readings_stage (tenant, device, metric, ts, value, seq, ingested_at) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "text", "timestamptz", "float8", "int8", "timestamptz"])
                for row in rows:
                    await copy.write_row(row)
            t3 = time.perf_counter()
            steps["COPY into staging"] = t3 - t2
            await conn.execute(insert_sql)  # type: ignore[arg-type]
            t4 = time.perf_counter()
            steps["INSERT … ON CONFLICT"] = t4 - t3
        steps["commit"] = time.perf_counter() - t4
    return steps


def baselines(url: str, gen: Readings, rows_total: int) -> list[list[object]]:
    """Today's reference figures on the same server (sync psycopg, like FIELD-NOTES)."""
    out: list[list[object]] = []
    columns = "tenant text, device text, metric text, ts timestamptz, value float8, seq bigint, ingested_at timestamptz"
    types = ["text", "text", "text", "timestamptz", "float8", "int8", "timestamptz"]
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE bench_plain ({columns})")
        conn.execute(f"CREATE TABLE bench_unique ({columns}, UNIQUE (tenant, device, metric, ts))")
        conn.commit()
        for target, label, note in (
            ("bench_plain", "COPY binary, plain table, 10k rows per commit", FIELD_NOTES["copy_plain"]),
            ("bench_unique", "COPY binary, same unique key as readings, 10k rows per commit", None),
        ):
            chunks = [rows_of(gen.batches(10_000)) for _ in range(max(1, rows_total // 10_000))]
            t0 = time.perf_counter()
            for rows in chunks:
                with conn.cursor().copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row)
                conn.commit()
            dt = time.perf_counter() - t0
            n = sum(len(c) for c in chunks)
            out.append([label, f"{n:,}", f"{n / dt:,.0f}", f"{note:,}" if note else "—"])
            say(f"  baseline: {label}: {n / dt:,.0f} rows/s")
        n_em = min(rows_total, 20_000)
        chunks = [rows_of(gen.batches(1_000)) for _ in range(n_em // 1_000)]
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            for rows in chunks:
                cur.executemany("INSERT INTO bench_plain VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
                conn.commit()
        dt = time.perf_counter() - t0
        n = sum(len(c) for c in chunks)
        out.append(
            [
                "executemany, plain table, 1k rows per transaction",
                f"{n:,}",
                f"{n / dt:,.0f}",
                f"{FIELD_NOTES['executemany_1k']:,}",
            ]
        )
        say(f"  baseline: executemany: {n / dt:,.0f} rows/s")
        conn.execute("DROP TABLE bench_plain, bench_unique")
        conn.commit()
    return out


async def run(url: str, sizes: Sequence[int], rows_per_size: int) -> None:
    gen = Readings(start_ms=int(time.time() * 1000) - 7 * 86_400_000)
    store = Store(url, max_size=2)
    await store.open()
    results = []
    parts: dict[int, dict[str, float]] = {}
    variants: dict[int, dict[str, float]] = {}
    try:
        await store.store_readings(gen.batches(500))  # warm the pool and the temp table
        for size in sizes:
            calls = max(3, rows_per_size // size)
            sets = [gen.batches(size) for _ in range(calls)]
            say(f"store_readings: {calls} calls of {size:,} rows, first write …")
            first_s, first_ins, rows = await timed_calls(store, sets)
            say(f"store_readings: {calls} calls of {size:,} rows, replay …")
            replay_s, replay_ins, _ = await timed_calls(store, sets)
            results.append((size, calls, rows, first_s, first_ins, replay_s, replay_ins))
            first_rps, replay_rps = rows / sum(first_s), rows / sum(replay_s)
            say(f"  {size:,} rows/call: first {first_rps:,.0f} rows/s, replay {replay_rps:,.0f} rows/s")
            say(f"  {size:,} rows/call: step by step, and the INSERT without DISTINCT ON …")
            parts[size] = await breakdown(url, gen.batches(size))
            insert_ms: dict[str, list[float]] = {"as stored": [], "without DISTINCT ON": []}
            for _ in range(3):  # interleaved, fresh rows each time
                for label, sql_text in (
                    ("as stored", INSERT_AS_STORED),
                    ("without DISTINCT ON", INSERT_WITHOUT_DISTINCT),
                ):
                    steps = await breakdown(url, gen.batches(size), sql_text)
                    insert_ms[label].append(steps["INSERT … ON CONFLICT"])
            variants[size] = {k: statistics.median(v) for k, v in insert_ms.items()}
        async with store.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*), pg_size_pretty(pg_table_size('readings')),"
                " pg_size_pretty(pg_indexes_size('readings')) FROM readings"
            )
            stored, heap, indexes = await cur.fetchone()  # type: ignore[misc]
    finally:
        await store.close()

    say("baselines on the same server …")
    base_rows = baselines(url, gen, rows_total=min(100_000, rows_per_size))

    print()
    print(f"machine: {machine()}")
    print(
        f"rows: {READINGS_PER_BATCH} readings per batch (record), 2-3 metrics per reading, "
        f"{DEVICES} devices; one row per metric value"
    )
    print()
    print("## Store.store_readings (COPY into staging + INSERT … ON CONFLICT DO NOTHING, one transaction per call)")
    print()
    rows_out = []
    for size, calls, rows, first_s, first_ins, replay_s, replay_ins in results:
        first_rate = [size / s for s in first_s]
        replay_rate = [size / s for s in replay_s]
        rows_out.append(
            [
                f"{size:,}",
                calls,
                f"{statistics.median(first_rate):,.0f}",
                f"{min(first_rate):,.0f}–{max(first_rate):,.0f}",
                f"{statistics.median(first_s) * 1000:,.0f}",
                f"{sum(first_ins):,}/{rows:,}",
                f"{statistics.median(replay_rate):,.0f}",
                f"{statistics.median(replay_s) * 1000:,.0f}",
                f"{sum(replay_ins):,}",
                f"{statistics.median(first_rate) / FIELD_NOTES['copy_plain']:.2f}",
                f"{statistics.median(first_rate) / FIELD_NOTES['executemany_1k']:.2f}",
            ]
        )
    print(
        table(
            [
                "rows/call",
                "calls",
                "first write rows/s (median)",
                "range",
                "ms/call",
                "inserted",
                "replay rows/s",
                "replay ms/call",
                "replay inserted",
                "÷ COPY 730k",
                "÷ executemany 60k",
            ],
            rows_out,
        )
    )
    print()
    print(f"readings after the run: {stored:,} rows, heap {heap}, indexes {indexes}")
    print()
    print("## One first-write call, step by step (same SQL as store_readings)")
    print()
    names = list(next(iter(parts.values())))
    brow = []
    for size, steps in parts.items():
        total = sum(steps.values())
        brow.append(
            [f"{size:,}", *(f"{steps[n] * 1000:,.1f} ({steps[n] / total:.0%})" for n in names), f"{total * 1000:,.0f}"]
        )
    print(table(["rows", *(f"{n} ms" for n in names), "total ms"], brow))
    print()
    print("## What if the INSERT had no DISTINCT ON (ON CONFLICT DO NOTHING skips in-statement duplicates too)")
    print()
    vrow = []
    for size, v in variants.items():
        a, b = v["as stored"], v["without DISTINCT ON"]
        vrow.append(
            [
                f"{size:,}",
                f"{a * 1000:,.1f}",
                f"{b * 1000:,.1f}",
                f"{size / a:,.0f}",
                f"{size / b:,.0f}",
                f"{a / b:.2f}",
            ]
        )
    print(
        table(
            [
                "rows",
                "INSERT ms as stored",
                "INSERT ms without DISTINCT ON",
                "INSERT rows/s as stored",
                "rows/s without",
                "speed-up",
            ],
            vrow,
        )
    )
    print("(median of 3 first-write calls each, interleaved)")
    print()
    print("## Baselines today on the same server (sync psycopg), next to FIELD-NOTES")
    print()
    print(table(["what", "rows", "rows/s today", "FIELD-NOTES rows/s"], base_rows))
    print()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 50_000], help="rows per call")
    parser.add_argument("--rows-per-size", type=int, default=200_000, help="rows written per size (at least 3 calls)")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    with bench_database() as url:
        asyncio.run(run(url, args.sizes, args.rows_per_size))
    say(f"done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
