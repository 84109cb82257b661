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
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# ``python benchmarks/NAME.py`` puts this folder first on sys.path, not the checkout: without this
# the scripts (and the children they start) would import the package the virtualenv was installed
# from, which may be another checkout's code
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))

import psycopg  # noqa: E402

from core import db  # noqa: E402
from core.settings import Settings, host_port  # noqa: E402
from forewarn import launcher  # noqa: E402

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


def bulk_devices(url: str, tenant: str, customer: str, devices: Iterable[tuple[str, str]]) -> int:
    """Register many (device id, kind) of one existing customer in one transaction (``db.add_device``
    opens a connection per device: minutes for 10,000). Returns how many."""
    rows = [(tenant, device, customer, kind) for device, kind in devices]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO devices (tenant, id, customer_id, kind) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (tenant, id) DO UPDATE SET customer_id = excluded.customer_id, kind = excluded.kind",
            rows,
        )
    return len(rows)


# ------------------------------------------------------------------------------ what else used the machine


@dataclass(frozen=True)
class MachineSnapshot:
    """CPU counters of the whole machine and of every process, at one moment."""

    wall: float
    busy: int
    steal: int
    total: int
    procs: dict[int, tuple[str, int, float]]  # pid -> (name, parent pid, CPU seconds)


def _proc_name(pid: str, comm: str) -> str:
    """A process's short name; for an interpreter, what it runs (``python -m pytest``, a script)."""
    if comm not in ("python", "python3", "python3.11", "node", "java", "sh", "bash"):
        return comm
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return comm
    shown = [os.path.basename(a) if "/" in a else a for a in (args or [comm])[:4]]
    return " ".join(shown)[:60]


def machine_snapshot() -> MachineSnapshot:
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (parts + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    procs: dict[int, tuple[str, int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                head, tail = fh.read().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        comm = head.split("(", 1)[1]
        procs[int(entry.name)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    named = {pid: (_proc_name(str(pid), comm), ppid, cpu) for pid, (comm, ppid, cpu) in procs.items()}
    return MachineSnapshot(time.perf_counter(), busy, steal, busy + idle + iowait + steal, named)


def _ours(snapshot: MachineSnapshot, root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (_, ppid, _) in snapshot.procs.items():
        children[ppid].append(pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo.extend(children.get(pid, ()))
    return out


def machine_between(a: MachineSnapshot, b: MachineSnapshot, top: int = 4) -> str:
    """What the machine did between two snapshots, beside us: busy and steal %, load average, and
    the processes outside this benchmark's tree that used the most CPU (cores on average), so a
    noisy run shows. PostgreSQL's backends are summed (ours among them: the server is shared)."""
    wall = max(b.wall - a.wall, 1e-9)
    total = max(b.total - a.total, 1)
    ours = _ours(b, os.getpid()) | _ours(a, os.getpid())
    used: dict[str, float] = defaultdict(float)
    ours_cores = 0.0
    for pid, (name, _, cpu) in b.procs.items():
        before = a.procs.get(pid)  # a process born during the interval counts whole
        delta = cpu - (before[2] if before is not None else 0.0)
        if pid in ours:
            ours_cores += max(0.0, delta) / wall
            continue
        if delta > 0:
            if name == "postgres":
                name = "postgres (all backends, ours too)"
            elif name.startswith("kworker/"):  # the kernel's workers rename themselves as they work
                name = "kernel workers (kworker)"
            used[name] += delta / wall
    others = sorted(used.items(), key=lambda kv: -kv[1])[:top]
    busy_cores = (b.busy - a.busy) / total * (os.cpu_count() or 1)
    gone = max(0.0, busy_cores - ours_cores - sum(used.values()))
    load = os.getloadavg()
    listed = ", ".join(f"{name} {cores:.2f}" for name, cores in others if cores >= 0.01) or "nothing"
    return (
        f"machine busy {100 * (b.busy - a.busy) / total:.0f} %, steal {100 * (b.steal - a.steal) / total:.1f} %, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; outside this benchmark (cores): {listed}; "
        f"unattributed {gone:.2f} (processes that ended before the phase did, interrupts)"
    )
