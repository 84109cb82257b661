"""``forewarn api`` under load: requests/s and latency of the insurer's desk with a real-sized tenant.

1. **Data.** A private PostgreSQL cluster (``forewarn.launcher.start_postgres``: TimescaleDB
   preloaded when this machine has it, as the test session does; fsync off, default
   shared_buffers), migrated by ``core.db.migrate``. One tenant with ``--devices`` home devices
   (five per customer) and ``--days`` of hourly readings of ``--metrics`` metrics each, written
   day by day with ``INSERT … SELECT generate_series`` (server-side: no client round trips),
   then the hourly roll-up refreshed (``core.db.refresh_rollups``) as the worker would; and
   ``--warnings`` warnings spread over the month, in every status, risk and severity, a tenth
   with an outcome.
2. **Server.** ``forewarn api`` itself in a child process (uvicorn, one process, its access log
   on, as shipped), on a free loopback port, with a read-only key made by ``core.db.create_api_key``.
3. **Load.** For each endpoint and each ``--concurrency`` level, that many clients (asyncio,
   one httpx connection each, keep-alive) send requests back to back for ``--seconds``
   (after a warm-up of 2 s): requests/s, the median and p99 latency, and the server's CPU per
   request (from /proc), and the cores the server and the clients used. The clients run in this
   process on the same 2 vCPU: what they use is taken from the server, so read the figures as
   a floor.

   - ``warnings``: ``GET /v1/warnings?limit=50`` (the newest page of the tenant's warnings);
   - ``warnings filtered``: ``GET /v1/warnings?status=open,notified,escalated&severity=critical&limit=50``;
   - ``week of readings``: ``GET /v1/devices/{a random device}/readings`` over the last 7 days
     at 1 h (168 buckets per metric, from the roll-up), its warnings marked.

Figures only, no assertions; the cluster is stopped and deleted at the end. About 4-6 min at
the defaults.

    python benchmarks/api_throughput.py [--devices 10000] [--days 30] [--metrics 2] [--warnings 3000]
        [--concurrency 1 8 32] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from benchlib import cpu_seconds, machine, say, table  # this folder's helper

from core import db
from forewarn import launcher

TENANT = "bench"
METRICS = ("temp_c", "humidity_pct", "pipe_temp_c")
RISKS = ("freeze_risk", "water_leak", "slow_leak", "mould_risk", "battery_drain", "device_silent")
STATUSES = ("open", "notified", "escalated", "acknowledged", "resolved", "expired")
ROOT = Path(__file__).resolve().parents[1]


def load(url: str, devices: int, days: int, metrics: int, warnings: int) -> dict[str, float]:
    """The tenant's customers, devices, readings and warnings; seconds per step."""
    spent: dict[str, float] = {}
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    names = list(METRICS[:metrics])
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'Bench Insurance')", (TENANT,))
        conn.execute(
            "INSERT INTO customers (tenant, id, name, locale, notify_urls)"
            " SELECT %s, 'cust-' || lpad(c::text, 5, '0'), 'Customer ' || c, 'en', ARRAY['json://127.0.0.1:9/x']"
            " FROM generate_series(1, %s) AS c",
            (TENANT, (devices + 4) // 5),
        )
        conn.execute(
            "INSERT INTO devices (tenant, id, customer_id, kind)"
            " SELECT %s, 'dev-' || lpad(d::text, 5, '0'), 'cust-' || lpad(((d - 1) / 5 + 1)::text, 5, '0'), 'home'"
            " FROM generate_series(1, %s) AS d",
            (TENANT, devices),
        )
        spent["registry"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for day in range(days):
            lo = start + timedelta(days=day)
            conn.execute(
                "INSERT INTO readings (tenant, device, metric, ts, value, seq)"
                " SELECT %(tenant)s, 'dev-' || lpad(d::text, 5, '0'), m, ts,"
                " 20 + 5 * sin(extract(epoch FROM ts) / 86400 * 2 * pi()) + (d %% 7), 0"
                " FROM generate_series(1, %(devices)s) AS d, unnest(%(metrics)s::text[]) AS m,"
                " generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - interval '1 hour',"
                " interval '1 hour') AS ts",
                {"tenant": TENANT, "devices": devices, "metrics": names, "lo": lo, "hi": lo + timedelta(days=1)},
            )
            if (day + 1) % 5 == 0 or day + 1 == days:
                rows = devices * len(names) * 24 * (day + 1)
                say(
                    f"  readings: {day + 1}/{days} days, {rows:,} rows, {rows / (time.perf_counter() - t0):,.0f} rows/s"
                )
        spent["readings"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute(
            "INSERT INTO warnings (id, tenant, device, customer_id, kind, risk, severity, status, score, opened_at,"
            " predicted_loss_at, notified_at, acknowledged_at, evidence)"
            " SELECT gen_random_uuid(), %(tenant)s, 'dev-' || lpad(d::text, 5, '0'),"
            " 'cust-' || lpad(((d - 1) / 5 + 1)::text, 5, '0'), 'home',"
            " (%(risks)s::text[])[1 + w %% %(n_risks)s],"
            " (ARRAY['advisory', 'warning', 'critical'])[1 + w %% 3],"
            " (%(statuses)s::text[])[1 + w %% %(n_statuses)s], 0.8, opened,"
            " opened + interval '3 hours', opened + interval '1 minute',"
            " CASE WHEN w %% 3 = 0 THEN opened + interval '20 minutes' END, '{\"pipe_temp_c\": 1.5}'::jsonb"
            " FROM (SELECT w, 1 + (w * 7919) %% %(devices)s AS d,"
            "  %(start)s::timestamptz + (w::float8 / %(warnings)s) * (%(end)s::timestamptz - %(start)s::timestamptz)"
            "  AS opened FROM generate_series(1, %(warnings)s) AS w) AS planned",
            {
                "tenant": TENANT,
                "risks": list(RISKS),
                "n_risks": len(RISKS),
                "statuses": list(STATUSES),
                "n_statuses": len(STATUSES),
                "devices": devices,
                "warnings": warnings,
                "start": start,
                "end": end,
            },
        )
        conn.execute(
            "INSERT INTO outcomes (warning_id, tenant, device, outcome, loss_at)"
            " SELECT id, tenant, device, (ARRAY['loss_avoided', 'loss_occurred', 'false_alarm'])[1 + n %% 3],"
            " opened_at + interval '2 hours' FROM (SELECT id, tenant, device, opened_at,"
            " row_number() OVER (ORDER BY opened_at) AS n FROM warnings WHERE tenant = %s) AS w WHERE n %% 10 = 0",
            (TENANT,),
        )
        spent["warnings"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    refresh = db.refresh_rollups(url)
    spent["rollup"] = time.perf_counter() - t0
    say(f"  roll-up: {refresh.rollup}, {refresh.buckets:,} hourly buckets in {refresh.seconds:.1f} s")
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    spent["vacuum analyze"] = time.perf_counter() - t0
    return spent


def start_api(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = launcher.free_port()
    env = {
        **os.environ,
        "FOREWARN_DATABASE_URL": url,
        "FOREWARN_API_HOST": "127.0.0.1",
        "FOREWARN_API_PORT": str(port),
        "FOREWARN_ACK_SECRET": uuid.uuid4().hex,
        "FOREWARN_STATE_DIR": str(workdir),
    }
    log = (workdir / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "forewarn.cli", "api"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"forewarn api did not answer: {(workdir / 'api.log').read_text(errors='replace')[-2000:]}")


async def hammer(base: str, key: str, paths: Any, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` clients sending requests back to back for ``seconds``: latencies (s), errors."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {key}"}

    async def client(http: httpx.AsyncClient, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            path = paths()
            t0 = time.perf_counter()
            try:
                answer = await http.get(path, headers=headers)
            except httpx.TransportError as exc:  # counted, not fatal: the next request opens a new connection
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            spent = time.perf_counter() - t0
            if answer.status_code != 200:
                errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
            elif record:
                latencies.append(spent)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        warm = time.perf_counter() + 2
        await asyncio.gather(*(client(http, warm, False) for _ in range(clients)))
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http, t0 + seconds, True) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def _own_cpu() -> float:
    """CPU seconds this process (the clients) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--metrics", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--warnings", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    timescale = launcher.timescale_installed()
    say(f"starting a private PostgreSQL cluster ({'TimescaleDB preloaded' if timescale else 'plain'}) …")
    cluster = launcher.start_postgres(preload_timescale=timescale)
    workdir = Path(tempfile.mkdtemp(prefix="forewarn-api-bench-"))
    proc = None
    results: list[list[object]] = []
    try:
        url = cluster.url.rsplit("/", 1)[0] + "/forewarn_bench"
        report = db.migrate(url, progress=lambda m: None)
        say(f"migrated: timescale={report.timescale} licence={report.timescale_licence}")
        rows = args.devices * args.metrics * 24 * args.days
        say(f"loading {args.devices:,} devices, {rows:,} hourly readings, {args.warnings:,} warnings …")
        spent = load(url, args.devices, args.days, args.metrics, args.warnings)
        with psycopg.connect(url) as conn:
            size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]  # type: ignore[index]
            server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        _, key = db.create_api_key(url, TENANT, "read_only", "benchmark")
        proc, base = start_api(url, workdir)
        say(f"forewarn api on {base} (pid {proc.pid})")

        end = datetime.now(UTC)
        week = {"start": (end - timedelta(days=7)).isoformat(), "end": end.isoformat(), "resolution": "1h"}
        rng = random.Random(7)
        endpoints: dict[str, Any] = {
            "warnings": lambda: "/v1/warnings?limit=50",
            "warnings filtered": lambda: "/v1/warnings?status=open,notified,escalated&severity=critical&limit=50",
            "week of readings": lambda: httpx.URL(
                f"/v1/devices/dev-{rng.randint(1, args.devices):05d}/readings", params=week
            ),
        }
        sample = httpx.get(f"{base}/v1/devices/dev-00001/readings", params=week, headers={"X-API-Key": key}).json()
        buckets = {m: len(p) for m, p in sample["series"].items()}
        say(f"a week of readings: {buckets} buckets, {len(sample['warnings'])} warnings marked")
        for name, paths in endpoints.items():
            for clients in args.concurrency:
                cpu0, mine0 = cpu_seconds(proc.pid) or 0.0, _own_cpu()
                run = asyncio.run(hammer(base, key, paths, clients, args.seconds))
                cpu, mine = (cpu_seconds(proc.pid) or 0.0) - cpu0, _own_cpu() - mine0
                wall = run["elapsed"] + 2  # with the warm-up
                lat = sorted(run["latencies"])
                n = len(lat)
                p99 = lat[min(n - 1, int(n * 0.99))] if n else float("nan")
                results.append(
                    [
                        name,
                        clients,
                        f"{n:,}",
                        f"{n / run['elapsed']:,.0f}",
                        f"{statistics.median(lat) * 1000:.1f}" if n else "—",
                        f"{p99 * 1000:.1f}",
                        f"{cpu / wall * run['elapsed'] / max(n, 1) * 1000:.2f}",  # the warm-up's share left out
                        f"{cpu / wall:.2f} / {mine / wall:.2f}",
                        ", ".join(f"{k}×{v}" for k, v in run["errors"].items()) or "0",
                    ]
                )
                say(f"  {name}, {clients} clients: {n / run['elapsed']:,.0f} req/s, p99 {p99 * 1000:.1f} ms")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        launcher.LocalStack("", "", "", [cluster]).stop()
        shutil.rmtree(workdir, ignore_errors=True)
        say("api stopped, cluster stopped and deleted")

    print()
    print(f"machine: {machine()}")
    flavour = f"TimescaleDB, {report.timescale_licence} licence" if report.timescale else "plain"
    print(
        f"PostgreSQL {server} ({flavour}),"
        f" private cluster (fsync off, default shared_buffers); database {size} after loading"
    )
    print(
        f"data: {args.devices:,} devices, {rows:,} hourly readings ({args.metrics} metric(s) × {args.days} days),"
        f" {args.warnings:,} warnings; loaded in " + ", ".join(f"{k} {v:.0f} s" for k, v in spent.items())
    )
    print("server: `forewarn api` (uvicorn, 1 process, access log on); clients: httpx in this process, keep-alive")
    print()
    print(
        table(
            [
                "endpoint",
                "clients",
                "requests",
                "req/s",
                "p50 ms",
                "p99 ms",
                "server CPU ms/req",
                "cores: server / clients",
                "errors",
            ],
            results,
        )
    )


if __name__ == "__main__":
    main()
