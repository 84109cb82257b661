"""Resource bounds of ingest and the worker over a steady run at the demo's load.

Private Mosquitto and Tansu on free loopback ports, a fresh ``forewarn_bench_<hex>`` database
(dropped at the end), ``forewarn ingest`` and ``forewarn worker`` as child processes. The demo's
fleet (``simulator.fleet.demo_fleet``: a freezing pipe, a burst pipe, a car braking hard, quiet
devices) is published exactly as ``forewarn demo`` does (``forewarn.publish.publish_fleet``, 12
simulated hours per wall minute, 1 % broken messages) for ``--minutes`` minutes, its warnings
delivered to a local HTTP sink. Every ``--every`` seconds the script samples each process's open
file descriptors (``/proc/PID/fd``) and resident memory (VmRSS), and prints per process: start,
end and max, the slope per minute after a warm-up (least squares), end/start ratios and a
verdict. Figures only, no assertions; the thresholds of the verdict are printed with it.

Tansu (memory storage: it keeps every record) and Mosquitto are sampled too, for information.

    python benchmarks/resource_bounds.py [--minutes 5] [--every 5] [--warmup-s 60]
        [--compression 12] [--seed 7] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import bench_database, machine, rss_mb, say, table  # this folder's helper

from core import bus, db
from forewarn import launcher
from forewarn.children import Child, spawn
from forewarn.publish import PublishStats, publish_fleet, register_fleet
from forewarn.sink import HttpSink
from simulator.fleet import demo_fleet

DEMO_COMPRESSION = 12.0  # forewarn demo: 12 simulated hours in 60 wall seconds
DEMO_GARBAGE = 0.01  # forewarn demo: 1 % broken messages
PARTITIONS = 4
# the verdict: growth is a slope above these AND an end above the warmed-up start by the margin
FD_SLOPE_PER_MIN = 0.5
FD_MARGIN = 2
RSS_SLOPE_MIB_PER_MIN = 1.0
RSS_MARGIN = 0.05


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass
class Series:
    """One process's samples: (seconds since the load began, fds, RSS MiB)."""

    name: str
    pid: int
    points: list[tuple[float, int, float]] = field(default_factory=list)

    def sample(self, t: float) -> None:
        fds, rss = open_fds(self.pid), rss_mb(self.pid)
        if fds is not None and rss is not None:
            self.points.append((t, fds, rss))


def slope_per_min(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute (0 with fewer than 2 points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / var if var else 0.0


@dataclass(frozen=True)
class Figures:
    """Start (first sample), warm (first after the warm-up), end and max, the slope after the warm-up."""

    fd_start: int
    fd_warm: int
    fd_end: int
    fd_max: int
    fd_slope: float
    rss_start: float
    rss_warm: float
    rss_end: float
    rss_max: float
    rss_slope: float

    @property
    def rss_ratio(self) -> float:
        return self.rss_end / self.rss_warm if self.rss_warm else float("nan")

    @property
    def verdict(self) -> str:
        fd_grows = self.fd_slope > FD_SLOPE_PER_MIN and self.fd_end > self.fd_warm + FD_MARGIN
        rss_grows = self.rss_slope > RSS_SLOPE_MIB_PER_MIN and self.rss_end > self.rss_warm * (1 + RSS_MARGIN)
        return ("fds GROW" if fd_grows else "fds flat") + ", " + ("memory GROWS" if rss_grows else "memory flat")


def figures(series: Series, warmup_s: float) -> Figures:
    pts = series.points
    warm = [p for p in pts if p[0] >= warmup_s] or pts
    return Figures(
        fd_start=pts[0][1],
        fd_warm=warm[0][1],
        fd_end=warm[-1][1],
        fd_max=max(f for _, f, _ in pts),
        fd_slope=slope_per_min([(t, f) for t, f, _ in warm]),
        rss_start=pts[0][2],
        rss_warm=warm[0][2],
        rss_end=warm[-1][2],
        rss_max=max(r for _, _, r in pts),
        rss_slope=slope_per_min([(t, r) for t, _, r in warm]),
    )


def start_child(name: str, env: dict[str, str], logs: Path, timeout: float) -> Child:
    child = spawn(name, [name], env, logs / f"{name}.log")
    t0 = time.monotonic()
    if not child.wait_ready(timeout):
        tail = child.text()[-3000:]
        child.stop()
        raise RuntimeError(f"{name} did not get ready within {timeout:.0f} s (exit code {child.proc.poll()}):\n{tail}")
    say(f"{name} ready after {time.monotonic() - t0:.0f} s (pid {child.proc.pid})")
    return child


def run(args: argparse.Namespace, workdir: Path) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    services: list[launcher.Service] = []
    children: list[Child] = []
    sink = HttpSink().start()
    try:
        with bench_database() as database_url:
            mosquitto = launcher.start_mosquitto(log_dir=logs)
            services.append(mosquitto)
            tansu = launcher.start_tansu(log_dir=logs)
            services.append(tansu)
            bootstrap = tansu.url.split("://", 1)[1]
            asyncio.run(bus.ensure_topics(bootstrap, PARTITIONS))
            env = {
                "FOREWARN_MQTT_URL": mosquitto.url,
                "FOREWARN_KAFKA_URL": tansu.url,
                "FOREWARN_DATABASE_URL": database_url,
                "FOREWARN_PARTITIONS": str(PARTITIONS),
                "FOREWARN_INGEST_CLIENT_ID": f"forewarn-ingest-bounds-{uuid.uuid4().hex[:6]}",
                "FOREWARN_WORKER_ID": f"forewarn-bounds-{uuid.uuid4().hex[:6]}",
                "FOREWARN_STATE_DIR": str(workdir / "state"),
                "FOREWARN_PUBLIC_URL": "http://forewarn.bench",
                "FOREWARN_ACK_SECRET": uuid.uuid4().hex,
                "FOREWARN_LOG_LEVEL": "INFO",
                "TMPDIR": str(workdir),  # heartbeat files stay in our scratch directory
            }
            hours = args.compression * args.minutes
            now_ms = int(time.time() * 1000)
            start_ms = now_ms - int(hours * 3600_000)
            fleet = demo_fleet(args.seed, start_ms=start_ms, duration_s=hours * 3600, tenant="bounds")
            register_fleet(database_url, fleet, lambda c: [sink.url(c.id)])
            say(f"fleet: {len(fleet.devices)} devices, {hours:g} simulated hours over {args.minutes:g} min")
            children.append(start_child("worker", env, logs, 240))
            children.append(start_child("ingest", env, logs, 60))

            watched = [Series(c.name, c.proc.pid) for c in children]
            for svc in (tansu, mosquitto):
                if svc.proc is not None:
                    watched.append(Series(svc.name.split()[-1].strip("()"), svc.proc.pid))
            stats: list[PublishStats] = []
            failure: list[BaseException] = []

            def publish() -> None:
                try:
                    stats.append(
                        publish_fleet(mosquitto.url, fleet, start_ms, hours, args.compression, DEMO_GARBAGE, args.seed)
                    )
                except BaseException as exc:  # noqa: BLE001 - reported below
                    failure.append(exc)

            feeder = threading.Thread(target=publish, name="demo-feed", daemon=True)
            t0 = time.monotonic()
            feeder.start()
            say(f"publishing at the demo's load; sampling every {args.every:g} s")
            next_line = 60.0
            while feeder.is_alive():
                t = time.monotonic() - t0
                for s in watched:
                    s.sample(t)
                if t >= next_line:
                    say(
                        "  "
                        + ", ".join(
                            f"{s.name} {s.points[-1][1]} fds {s.points[-1][2]:.0f} MiB" for s in watched if s.points
                        )
                    )
                    next_line += 60.0
                feeder.join(args.every)
            elapsed = time.monotonic() - t0
            for s in watched:
                s.sample(elapsed)
            if failure:
                raise RuntimeError(f"publishing failed: {failure[0]!r}")
            alive = {c.name: c.alive() for c in children}
            # the pipeline kept up (a stalled one would hold its memory flat too): every distinct value stored?
            expected = len({(r.device.device, m, r.ts_ms) for r in fleet.merged() for m in r.metrics})
            count = "SELECT count(*) AS n FROM readings WHERE tenant = 'bounds'"
            deadline = time.monotonic() + 60
            while (stored := db.query(database_url, count)[0]["n"]) < expected and time.monotonic() < deadline:
                time.sleep(1)
            lag = time.monotonic() - t0 - elapsed
            report(args, watched, stats[0], (stored, expected, lag), elapsed, alive, len(sink.received))
    finally:
        for child in children:
            child.stop()
        sink.stop()
        if args.keep_logs is not None:
            shutil.copytree(logs, args.keep_logs, dirs_exist_ok=True)
        launcher.LocalStack("", "", "", services).stop()


def report(
    args: argparse.Namespace,
    watched: list[Series],
    stats: PublishStats,
    stored: tuple[int, int, float],
    elapsed: float,
    alive: dict[str, bool],
    delivered: int,
) -> None:
    print(f"## Resource bounds: {elapsed / 60:.1f} min at the demo's load ({args.machine})\n")
    print(
        f"{stats.readings} readings in {stats.messages} messages ({stats.readings / elapsed:.0f} readings/s), "
        f"{stats.garbage} broken messages; {stored[0]} of {stored[1]} distinct metric values stored "
        f"{stored[2]:.0f} s after the last publish; {delivered} messages delivered; "
        f"samples every {args.every:g} s, slope and 'warm' values after {args.warmup_s:g} s of warm-up\n"
    )
    rows = []
    for s in watched:
        if not s.points:
            rows.append([s.name, *["—"] * 12])
            continue
        f = figures(s, args.warmup_s)
        rows.append(
            [
                s.name,
                str(f.fd_start),
                str(f.fd_warm),
                str(f.fd_end),
                str(f.fd_max),
                f"{f.fd_slope:+.2f}",
                f"{f.rss_start:.0f}",
                f"{f.rss_warm:.0f}",
                f"{f.rss_end:.0f}",
                f"{f.rss_max:.0f}",
                f"{f.rss_slope:+.2f}",
                f"{f.rss_ratio:.2f}",
                f.verdict if s.name in alive else f"{f.verdict} (for information)",
            ]
        )
    headers = [
        "process",
        "fd start",
        "fd warm",
        "fd end",
        "fd max",
        "fd/min",
        "RSS start MiB",
        "RSS warm",
        "RSS end",
        "RSS max",
        "MiB/min",
        "end/warm",
        "verdict",
    ]
    print(table(headers, rows))
    print(
        f"\ngrowth = slope above {FD_SLOPE_PER_MIN} fd/min and end above warm + {FD_MARGIN}; "
        f"memory: slope above {RSS_SLOPE_MIB_PER_MIN} MiB/min and end above warm × {1 + RSS_MARGIN:.2f}"
    )
    dead = [name for name, ok in alive.items() if not ok]
    if dead:
        print(f"\nWARNING: {', '.join(dead)} exited during the run: its figures end early and prove nothing")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the load runs")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="left out of the slope and 'warm' values")
    parser.add_argument(
        "--compression", type=float, default=DEMO_COMPRESSION, help="simulated hours per wall minute (the demo: 12)"
    )
    parser.add_argument("--seed", type=int, default=7, help="the demo fleet's seed")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy ingest's and the worker's logs here")
    args = parser.parse_args(argv)
    args.machine = machine()
    workdir = Path(tempfile.mkdtemp(prefix="forewarn-bounds-"))
    try:
        run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
