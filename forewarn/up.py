"""``forewarn up``: check (or, when asked, start) the services, migrate, and supervise ingest and
the worker (and the API with ``--api``).

- Nothing is started unless asked: without ``--start-services`` every service must answer at
  the URL its setting names, and one that does not is an error naming the setting and the flag.
  With it, a service that does not answer at a loopback URL is started at exactly that address
  (see :func:`forewarn.launcher.bring_up`), and ``up`` says so.
- A child that dies is restarted with backoff, and a service ``up`` started that dies is started
  again on its port (:mod:`forewarn.supervise` decides when, and when to give up); ``up`` exits
  non-zero only when it cannot go on, saying why.
- SIGTERM or SIGINT (Ctrl-C) stops everything ``up`` started, in order: ingest first (it drains
  what it holds into Kafka), then the worker, then the API, then the brokers, PostgreSQL last;
  each gets SIGTERM, then SIGKILL after a grace period. The children run in sessions of their
  own (a Ctrl-C in the terminal reaches ``up`` alone, which stops them in that order) and get
  SIGTERM should ``up`` itself be killed.
- ``state_dir``/run/up.json lists the pids of everything it started (for operators and tests).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from rich.console import Console

from core import db
from core.bus import ensure_topics
from core.settings import Settings, hide_password, kafka_bootstrap
from forewarn import launcher
from forewarn.children import Child, settings_env, spawn
from forewarn.supervise import RestartPolicy, Restarts, exit_description

CHILD_GRACE_S = 15.0
"""SIGTERM, then SIGKILL after this: ingest and the worker stop within 10 s whatever their dependencies do."""
SERVICE_CHECK_S = 2.0
STOP_ORDER = ("ingest", "worker", "api")
"""Ingest first (it drains what it holds into Kafka while the worker still runs), the API last."""
LOCAL_KAFKA_NOTE = (
    "the local Kafka (Tansu, memory storage) keeps every record in memory until it stops "
    "(about 190 MiB a minute at 750 readings/s) and loses them if it dies: it is for demos and tests. "
    "For real use, point FOREWARN_KAFKA_URL at an Apache Kafka (the compose stack has one)."
)


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: stop everything in order."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stopped


def start_stack(settings: Settings, console: Console, *, start_services: bool) -> launcher.LocalStack:
    """Reuse the services at the configured URLs (start the missing ones when ``start_services``),
    migrate the schema and create the topics."""
    running = launcher.bring_up(
        settings.mqtt_url,
        settings.kafka_url,
        settings.database_url,
        progress=lambda m: console.print(f"[dim]{m}[/dim]"),
        pg_data_dir=Path(settings.state_dir) / "postgres",
        database_named="FOREWARN_DATABASE_URL" in os.environ,
        start_missing=start_services,
    )
    try:
        for name, url, how in running.describe():
            console.print(f"  {name:<30} {hide_password(url):<55} {how}")
        if any(s.started and s.name.startswith("kafka") for s in running.services):
            console.print(f"[yellow]note:[/yellow] {LOCAL_KAFKA_NOTE}")
        db.migrate(running.database_url, progress=lambda m: console.print(f"[dim]  {m}[/dim]"))
        asyncio.run(ensure_topics(kafka_bootstrap(running.kafka_url), settings.partitions))
    except BaseException:
        running.stop()
        raise
    return running


@dataclass
class _Watched:
    """One supervised process (a child or a service) and its deaths."""

    name: str
    restarts: Restarts
    restart_at: float | None = None
    ready_said: bool = False


@dataclass
class Supervisor:
    """Keeps ``up``'s children and the services it started running; pure decisions in :mod:`forewarn.supervise`."""

    console: Console
    env: dict[str, str]
    run_dir: Path
    names: tuple[str, ...]
    stack: launcher.LocalStack
    partitions: int
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    children: dict[str, Child] = field(default_factory=dict)
    watched: dict[str, _Watched] = field(default_factory=dict)
    next_service_check: float = 0.0

    def _say(self, message: str) -> None:
        self.console.print(message)

    def _watch(self, name: str) -> _Watched:
        return self.watched.setdefault(name, _Watched(name, Restarts(name, self.policy)))

    def start(self) -> None:
        for name in self.names:
            self._spawn(name)
        self.write_pids()

    def _spawn(self, name: str) -> None:
        self.children[name] = spawn(name, [name], self.env, None, status_dir=self.run_dir, supervised=True)
        self._watch(name).ready_said = False

    def tick(self, now: float) -> str | None:
        """Look at every child and started service once; restart what is due. Returns why ``up``
        cannot go on, or ``None``."""
        for name, child in self.children.items():
            w = self._watch(name)
            if w.restart_at is not None:
                if now >= w.restart_at:
                    w.restart_at = None
                    self._spawn(name)
                    self._say(f"{name} restarted (pid {self.children[name].proc.pid})")
                    self.write_pids()
                continue
            if child.alive():
                if not w.ready_said and child.status().get("ready"):
                    w.ready_said = True
                    self._say(f"{name} ready (pid {child.proc.pid}, status in {child.status_path})")
                continue
            died = f"{name} died ({exit_description(child.proc.returncode)}) after {now - child.started_at:.0f} s"
            verdict = w.restarts.died(now, child.started_at)
            if verdict.restart_in_s is None:
                return f"{died}; {verdict.reason}"
            self._say(f"[red]{died}[/red]; restarting it in {verdict.restart_in_s:g} s ({verdict.reason})")
            w.restart_at = now + verdict.restart_in_s
        if now >= self.next_service_check:
            self.next_service_check = now + SERVICE_CHECK_S
            return self._check_services(now)
        return None

    def _check_services(self, now: float) -> str | None:
        for i, svc in enumerate(self.stack.services):
            if not svc.started or svc.restart is None:
                continue
            w = self._watch(svc.name)
            if w.restart_at is None and svc.alive():
                continue
            if w.restart_at is None:
                how = exit_description(svc.proc.returncode) if svc.proc is not None else "stopped answering"
                verdict = w.restarts.died(now, svc.started_at)
                if verdict.restart_in_s is None:
                    return f"{svc.name}, which up started, died ({how}); {verdict.reason}"
                self._say(f"[red]{svc.name} died ({how})[/red]; starting it again in {verdict.restart_in_s:g} s")
                w.restart_at = now + verdict.restart_in_s
                svc.stop(grace_s=2.0)  # what is left of it: a process that no longer answers, temporary files
                continue
            if now < w.restart_at:
                continue
            w.restart_at = None
            try:
                again = svc.restart()
            except launcher.StackError as exc:
                return f"{svc.name}, which up started, died and could not be started again: {exc}"
            again.url, again.restart = svc.url, svc.restart
            self.stack.services[i] = again
            self._say(f"{svc.name} started again at {hide_password(svc.url)} (pid {again.pid()})")
            if svc.name.startswith("kafka"):
                self._say("[yellow]the local Kafka kept its records in memory: those it held are lost[/yellow]")
                try:
                    asyncio.run(ensure_topics(kafka_bootstrap(svc.url), self.partitions))
                except Exception as exc:  # noqa: BLE001 - said, and up stops
                    return f"{svc.name} was started again but its topics could not be created: {exc}"
            self.write_pids()
        return None

    def stop(self, progress: Callable[[str], None]) -> None:
        """Stop the children in :data:`STOP_ORDER`, each SIGTERM then SIGKILL after the grace period."""
        for name in sorted(self.children, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else -1):
            child = self.children[name]
            if child.alive():
                progress(f"stopping {name} (pid {child.proc.pid})")
                t0 = time.monotonic()
                child.stop(CHILD_GRACE_S)
                progress(f"{name} stopped ({exit_description(child.proc.returncode)}) in {time.monotonic() - t0:.1f} s")

    def write_pids(self) -> None:
        doc = {
            "pid": os.getpid(),
            "children": {name: c.proc.pid for name, c in self.children.items()},
            "services": {s.name: s.pid() for s in self.stack.services if s.started},
        }
        path = self.run_dir / "up.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(path)


def up_command(
    settings: Settings,
    console: Console,
    *,
    start_services: bool = False,
    api: bool = False,
    policy: RestartPolicy | None = None,
) -> None:
    console.print(
        "[bold]forewarn up[/bold]: "
        + ("reusing the services that answer, starting the others" if start_services else "checking the services")
    )
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    running: launcher.LocalStack | None = None
    supervisor: Supervisor | None = None
    failure: str | None = None
    try:
        running = start_stack(settings, console, start_services=start_services)
        env = settings_env(settings, running.mqtt_url, running.kafka_url, running.database_url)
        names = ("worker", "ingest", "api") if api else ("worker", "ingest")
        supervisor = Supervisor(
            console,
            env,
            Path(settings.state_dir) / "run",
            names,
            running,
            settings.partitions,
            policy or RestartPolicy(),
        )
        supervisor.start()
        console.print(
            f"{', '.join(names)} running under supervision (pids in {supervisor.run_dir / 'up.json'}); "
            "Ctrl-C or SIGTERM stops everything this command started"
        )
        while failure is None:
            time.sleep(0.5)
            failure = supervisor.tick(time.monotonic())
        console.print(f"[red]{failure}[/red]; stopping everything")
    except Stopped:
        console.print("stopping…")
    finally:
        for sig in previous:  # the stop runs to its end: a second Ctrl-C does not cut it short
            signal.signal(sig, signal.SIG_IGN)
        t0 = time.monotonic()

        def progress(m: str) -> None:
            console.print(f"[dim]{m}[/dim]")

        if supervisor is not None:
            supervisor.stop(progress)
        if running is not None:
            running.stop(progress)
        console.print(f"stopped in {time.monotonic() - t0:.1f} s")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure:
        raise launcher.StackError(failure)
