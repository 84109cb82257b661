"""What the benchmark scripts share: progress lines, Markdown tables, a throw-away database,
and what /proc says about a process (peak RSS, CPU time).

Not part of forewarn: imported by the scripts next to it (``python benchmarks/NAME.py`` puts
this folder on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence

import psycopg

from core import db
from core.settings import Settings, host_port
from forewarn import launcher

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    """A progress line (stderr, so stdout keeps only the figures)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, numbers right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, rule, *body])


@contextlib.contextmanager
def bench_database(progress: bool = True) -> Iterator[str]:
    """A fresh, migrated ``forewarn_bench_<hex>`` database, dropped at the end.

    On the server of ``FOREWARN_DATABASE_URL`` (default 127.0.0.1:5432) when it answers, else
    on a private cluster started for the occasion (and stopped).
    """
    base = Settings().database_url
    host, port = host_port(base, 5432)
    private = None
    if not launcher.reachable(host, port):
        if progress:
            say(f"no PostgreSQL at {host}:{port}: starting a private cluster")
        private = launcher.start_postgres()
        base = private.url
    name = f"forewarn_bench_{uuid.uuid4().hex[:8]}"
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        if progress:
            say(f"database {name} on {host}:{port}")
        db.migrate(url, progress=lambda m: None)
        yield url
    finally:
        try:
            with psycopg.connect(base.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if progress:
                say(f"dropped database {name}")
        finally:
            if private is not None:
                launcher.LocalStack("", "", "", [private]).stop()


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    """VmRSS (current resident set) of a live process, in MiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far (its own threads, not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine() -> str:
    cpus = os.cpu_count()
    load = os.getloadavg()
    return f"{cpus} CPU, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
