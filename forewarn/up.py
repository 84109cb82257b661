"""``forewarn up``: reuse or start the services, migrate, and run ingest and the worker.

Stops on Ctrl-C or SIGTERM, and stops only what it started; a child that dies takes the
command down with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from types import FrameType

from rich.console import Console

from core import db
from core.bus import ensure_topics
from core.settings import Settings, hide_password, kafka_bootstrap
from forewarn import launcher
from forewarn.children import settings_env, spawn


class Stopped(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stopped


def start_stack(settings: Settings, console: Console) -> launcher.LocalStack:
    running = launcher.bring_up(
        settings.mqtt_url,
        settings.kafka_url,
        settings.database_url,
        progress=lambda m: console.print(f"[dim]{m}[/dim]"),
        pg_data_dir=Path(settings.state_dir) / "postgres",
        database_named="FOREWARN_DATABASE_URL" in os.environ,
    )
    for name, url, how in running.describe():
        console.print(f"  {name:<30} {hide_password(url):<55} {how}")
    db.migrate(running.database_url, progress=lambda m: console.print(f"[dim]  {m}[/dim]"))
    asyncio.run(ensure_topics(kafka_bootstrap(running.kafka_url), settings.partitions))
    return running


def up_command(settings: Settings, console: Console) -> None:
    console.print("[bold]forewarn up[/bold]: reusing or starting the services")
    running = start_stack(settings, console)
    env = settings_env(settings, running.mqtt_url, running.kafka_url, running.database_url)
    run_dir = Path(settings.state_dir) / "run"
    children = [spawn(name, [name], env, None, status_dir=run_dir) for name in ("worker", "ingest")]
    console.print("ingest and worker running; Ctrl-C or SIGTERM stops everything this command started")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    failed = False
    try:
        for child in reversed(children):
            if child.wait_ready(180):
                console.print(f"{child.name} ready (status in {child.status_path})")
        while all(c.alive() for c in children):
            time.sleep(0.5)
        dead = [c.name for c in children if not c.alive()]
        console.print(f"[red]{', '.join(dead)} stopped unexpectedly[/red]; shutting down")
        failed = True
    except (KeyboardInterrupt, Stopped):
        console.print("stopping…")
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in children:
            child.stop()
        running.stop()
    if failed:
        raise launcher.StackError("a forewarn process stopped unexpectedly; see its output above")
