"""TimescaleDB (Apache licence) against plain PostgreSQL, on the same rows and the same settings.

Two private clusters of this machine's PostgreSQL (``forewarn.launcher.start_postgres``: fsync
off, default shared_buffers), one with TimescaleDB preloaded (``readings`` a hypertable of
1-day chunks, ``readings_hourly`` a roll-up table) and one without (plain tables, a ``date_bin``
view); each gets a fresh database migrated by ``core.db.migrate``.

1. **Writes.** The standard fleet (``simulator.fleet.standard_library(7)``: every scenario's
   replicas at their natural durations plus quiet devices, up to 10 simulated days) in time
   order, in records of one device's readings and calls of ~10k rows, through
   ``core.db.Store.store_readings`` (COPY into staging + ``INSERT … ON CONFLICT DO NOTHING``),
   alternating between the two databases call by call: rows/s for each, and the ratio.
2. **Storage.** Chunks, total size (``hypertable_size``, the chunks' heap/index split from
   ``chunks_detailed_size``) against ``pg_total_relation_size`` of the plain table, and the hourly
   roll-up: the time of its first full ``refresh_rollups`` and of a default one (last 3 days).
3. **Reads.** One device's first 7 days through ``core.db.series`` at 1-minute and 1-hour
   resolution on both (median of ``--repeat`` calls, after one warm-up), and on the hypertable
   the 1-hour series aggregated from raw readings, to show what the roll-up saves.

Figures only, no assertions; both clusters are stopped and deleted at the end. About 2-3 min.

    python benchmarks/timescale_storage.py [--rows-per-call 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import statistics
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from benchlib import machine, say, table  # this folder's helper

from core import db
from core.contract import Reading, ReadingsBatch, check_metric
from forewarn import launcher
from simulator.fleet import Fleet, standard_library

SEED = 7
READINGS_PER_RECORD = 10  # one device's readings per record, as ingest merges them
WEEK = timedelta(days=7)


def _calls(fleet: Fleet, rows_per_call: int) -> Iterator[list[ReadingsBatch]]:
    """The fleet's readings in time order, cut into calls of about ``rows_per_call`` metric values;
    within a call, one device's consecutive readings make records of up to 10."""
    stream = heapq.merge(*(fleet.readings(d) for d in fleet.devices), key=lambda r: r.ts_ms)
    now_ms = int(time.time() * 1000)
    pending: dict[str, list[Reading]] = {}
    kinds: dict[str, str] = {}
    rows = 0

    def flush() -> list[ReadingsBatch]:
        out = [
            ReadingsBatch(fleet.tenant, device, kinds[device], tuple(readings[k : k + READINGS_PER_RECORD]), now_ms)
            for device, readings in pending.items()
            for k in range(0, len(readings), READINGS_PER_RECORD)
        ]
        pending.clear()
        return out

    for r in stream:
        metrics = {k: check_metric(k, v) for k, v in r.metrics.items()}
        pending.setdefault(r.device.device, []).append(Reading(r.ts_ms, metrics, r.seq))
        kinds[r.device.device] = r.device.kind
        rows += len(metrics)
        if rows >= rows_per_call:
            yield flush()
            rows = 0
    if pending:
        yield flush()


async def load(urls: dict[str, str], fleet: Fleet, rows_per_call: int) -> dict[str, dict[str, float]]:
    """Every call to both databases, alternating which goes first; seconds and rows per side."""
    stores = {side: db.Store(url, max_size=1) for side, url in urls.items()}
    for store in stores.values():
        await store.open()
    spent = {side: {"seconds": 0.0, "rows": 0, "inserted": 0, "calls": 0} for side in urls}
    order = list(urls)
    try:
        for i, batches in enumerate(_calls(fleet, rows_per_call)):
            rows = sum(len(r.metrics) for b in batches for r in b.readings)
            for side in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                inserted = await stores[side].store_readings(batches)
                spent[side]["seconds"] += time.perf_counter() - t0
                spent[side]["rows"] += rows
                spent[side]["inserted"] += inserted
                spent[side]["calls"] += 1
            if i % 50 == 49:
                done = spent[order[0]]["rows"]
                say(f"  {done:,.0f} rows stored in each, {i + 1} calls")
    finally:
        for store in stores.values():
            await store.close()
    return spent


def _one(url: str, statement: str, params: Sequence[Any] = ()) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(statement, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def _median_s(fn: Any, repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up (and the answer)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _mb(n: int) -> str:
    return f"{n / 1_048_576:,.1f}"


def run(rows_per_call: int, repeat: int) -> None:
    if not launcher.timescale_installed():
        raise SystemExit("TimescaleDB is not installed for this machine's PostgreSQL: nothing to compare")
    say(f"simulating the standard fleet (seed {SEED}) …")
    fleet = standard_library(SEED)
    span_days = (fleet.end_ms - fleet.start_ms) / 86_400_000
    durations = sorted({fleet.span(d).duration_s / 86_400 for d in fleet.devices})
    say(
        f"  {fleet}: {span_days:g} days from first to last reading,"
        f" devices of {durations[0]:.2g}-{durations[-1]:g} days"
    )
    week_device = max(fleet.devices, key=lambda d: fleet.span(d).duration_s)

    say("starting two private clusters (TimescaleDB preloaded / plain) …")
    clusters = []
    try:
        clusters.append(launcher.start_postgres(preload_timescale=True))
        clusters.append(launcher.start_postgres())
        urls = {
            "hypertable": clusters[0].url.rsplit("/", 1)[0] + "/forewarn_bench",
            "plain table": clusters[1].url.rsplit("/", 1)[0] + "/forewarn_bench",
        }
        for side, url in urls.items():
            report = db.migrate(url, progress=lambda m: None)
            say(f"  {side}: migrated, timescale={report.timescale} licence={report.timescale_licence}")
        version = _one(urls["hypertable"], "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        server = _one(urls["plain table"], "SHOW server_version")

        say(f"storing the fleet through Store.store_readings, ~{rows_per_call:,} rows per call, both sides …")
        spent = asyncio.run(load(urls, fleet, rows_per_call))

        hyper, plain = urls["hypertable"], urls["plain table"]
        say("roll-ups: first full refresh, then a default one …")
        full = db.refresh_rollups(hyper)
        default = db.refresh_rollups(hyper, since=datetime.fromtimestamp(fleet.end_ms / 1000, UTC) - db.LATE_DATA)
        for url in urls.values():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")

        chunks = _one(hyper, "SELECT count(*) FROM show_chunks('readings')")
        hyper_total = _one(hyper, "SELECT hypertable_size('readings')")
        heap, index = (
            _one(hyper, "SELECT sum(table_bytes) FROM chunks_detailed_size('readings')"),
            _one(hyper, "SELECT sum(index_bytes) FROM chunks_detailed_size('readings')"),
        )
        plain_total = _one(plain, "SELECT pg_total_relation_size('readings')")
        plain_heap = _one(plain, "SELECT pg_table_size('readings')")
        plain_index = _one(plain, "SELECT pg_indexes_size('readings')")
        rollup_rows = _one(hyper, "SELECT count(*) FROM readings_hourly")
        rollup_size = _one(hyper, "SELECT pg_total_relation_size('readings_hourly')")
        stored = _one(hyper, "SELECT count(*) FROM readings")

        say(f"reading {week_device.device}'s first week at 1 min and 1 h, {repeat} times each …")
        start = datetime.fromtimestamp(fleet.span(week_device).start_ms / 1000, UTC)
        end = start + WEEK
        reads: list[list[object]] = []
        for resolution in ("1m", "1h"):
            got: dict[str, tuple[float, Any]] = {}
            for side, url in urls.items():
                got[side] = _median_s(
                    lambda u=url, r=resolution: db.series(u, fleet.tenant, week_device.device, start, end, r), repeat
                )
            h_s, h_points = got["hypertable"]
            p_s, p_points = got["plain table"]
            points = sum(len(v) for v in h_points.values())
            same = {m: [(p.bucket, p.n) for p in v] for m, v in h_points.items()} == {
                m: [(p.bucket, p.n) for p in v] for m, v in p_points.items()
            }
            source = "roll-up + raw since the last refresh" if resolution == "1h" else "raw readings"
            reads.append(
                [
                    resolution,
                    f"{len(h_points)} × {points // max(len(h_points), 1):,}",
                    f"{h_s * 1000:,.1f} ({source})",
                    f"{p_s * 1000:,.1f}",
                    f"{p_s / h_s:.2f}",
                    "yes" if same else "NO",
                ]
            )
        raw_hourly = (
            "SELECT metric, time_bucket(interval '1 hour', ts) AS b, avg(value), min(value), max(value), count(*)"
            " FROM readings WHERE tenant = %s AND device = %s AND ts >= %s AND ts < %s GROUP BY metric, b"
        )

        def hourly_from_raw() -> None:
            with psycopg.connect(hyper) as conn:
                conn.execute(raw_hourly, (fleet.tenant, week_device.device, start, end)).fetchall()

        raw_s, _ = _median_s(hourly_from_raw, repeat)
    finally:
        for svc in reversed(clusters):
            launcher.LocalStack("", "", "", [svc]).stop()
        say("clusters stopped and deleted")

    h, p = spent["hypertable"], spent["plain table"]
    print()
    print(f"machine: {machine()}")
    print(
        f"PostgreSQL {server}, TimescaleDB {version} (Apache licence); two private clusters, same settings "
        "(fsync off, shared_buffers default)"
    )
    print(
        f"fleet: standard_library({SEED}): {len(fleet.devices)} devices, {span_days:g} simulated days from first to "
        f"last reading (devices run {durations[0]:.2g}-{durations[-1]:g} days: each scenario at its natural "
        f"duration, no 7-day option); {h['rows']:,.0f} metric values, {h['inserted']:,.0f} stored "
        "(the rest are the simulator's duplicates)"
    )
    print()
    print(f"## Writes: Store.store_readings, {h['calls']:,.0f} calls of ~{rows_per_call:,} rows, alternating")
    print()
    print(
        table(
            ["target", "rows", "seconds", "rows/s", "÷ plain"],
            [
                [
                    "hypertable (1-day chunks)",
                    f"{h['rows']:,.0f}",
                    f"{h['seconds']:.1f}",
                    f"{h['rows'] / h['seconds']:,.0f}",
                    f"{(h['rows'] / h['seconds']) / (p['rows'] / p['seconds']):.2f}",
                ],
                ["plain table", f"{p['rows']:,.0f}", f"{p['seconds']:.1f}", f"{p['rows'] / p['seconds']:,.0f}", "1.00"],
            ],
        )
    )
    print()
    print(f"## Storage after the fleet's {span_days:g} days ({stored:,} rows)")
    print()
    print(
        table(
            ["target", "chunks", "total MiB", "heap MiB", "indexes MiB", "bytes/row"],
            [
                ["hypertable", chunks, _mb(hyper_total), _mb(heap), _mb(index), f"{hyper_total / stored:.0f}"],
                [
                    "plain table",
                    "—",
                    _mb(plain_total),
                    _mb(plain_heap),
                    _mb(plain_index),
                    f"{plain_total / stored:.0f}",
                ],
            ],
        )
    )
    print()
    print(
        f"hourly roll-up table: {rollup_rows:,} rows, {_mb(rollup_size)} MiB; first refresh_rollups (all "
        f"{full.buckets:,} buckets) {full.seconds:.2f} s, a default one (last 3 days: {default.buckets:,} "
        f"buckets, {default.changed} changed) {default.seconds:.2f} s"
    )
    print()
    print(f"## Reads: core.db.series, {week_device.device} over 7 days (median of {repeat}, ms)")
    print()
    print(
        table(
            ["resolution", "metrics × points", "hypertable ms", "plain ms", "plain ÷ hypertable", "same buckets"], reads
        )
    )
    print()
    print(f"1 h series aggregated from raw readings on the hypertable (no roll-up): {raw_s * 1000:,.1f} ms")
    print()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-per-call", type=int, default=10_000, help="metric values per store_readings call")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per series read")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    run(args.rows_per_call, args.repeat)
    say(f"done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
