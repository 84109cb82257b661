"""Real services for the integration and end-to-end tests, started once per test session.

- Mosquitto: a private broker on a free port (so no durable session from another run takes a
  share of our messages); the machine's broker is reused only if no mosquitto binary exists.
- Kafka: a private Tansu on a free port (memory storage: every session starts empty).
- PostgreSQL: the configured server when it answers, else a private cluster; either way a
  fresh database of our own, dropped at the end.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core import bus, db
from core.secretbox import new_key
from core.settings import Settings, host_port
from forewarn import launcher
from forewarn.children import Child, spawn
from forewarn.sink import HttpSink
from forewarn.supervise import Restarts

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Services:
    mqtt_url: str
    kafka_url: str
    database_url: str
    settings: Settings
    env: dict[str, str]


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    logs = tmp_path_factory.mktemp("service-logs")
    started: list[launcher.Service] = []
    try:
        if launcher._find("mosquitto", "/usr/sbin", "/usr/local/sbin"):
            svc = launcher.start_mosquitto(log_dir=logs)
            started.append(svc)
            mqtt_url = svc.url
        else:
            mqtt_url = Settings().mqtt_url
            host, port = host_port(mqtt_url, 1883)
            assert launcher.reachable(host, port), f"no mosquitto binary and no MQTT broker at {mqtt_url}"
        tansu = launcher.start_tansu(log_dir=logs)
        started.append(tansu)
        base_db = Settings().database_url
        host, port = host_port(base_db, 5432)
        # the suite runs on TimescaleDB when the machine has it; a server that does not preload
        # it is not ours to restart, so a cluster of our own is started with it preloaded
        preload = launcher.timescale_installed()
        if not launcher.reachable(host, port) or (preload and db.timescale_status(base_db) != "preloaded"):
            pg = launcher.start_postgres(preload_timescale=preload)
            started.append(pg)
            base_db = pg.url
        name = f"forewarn_test_{uuid.uuid4().hex[:8]}"
        database_url = base_db.rsplit("/", 1)[0] + "/" + name
        report = db.migrate(database_url, progress=lambda m: None)
        assert report.timescale or not preload, "TimescaleDB is installed, yet the test database does not use it"
        env = {
            "FOREWARN_MQTT_URL": mqtt_url,
            "FOREWARN_KAFKA_URL": tansu.url,
            "FOREWARN_DATABASE_URL": database_url,
            "FOREWARN_PARTITIONS": "2",
            "FOREWARN_INGEST_CLIENT_ID": f"forewarn-ingest-test-{uuid.uuid4().hex[:6]}",
            "FOREWARN_WORKER_ID": f"forewarn-test-{uuid.uuid4().hex[:6]}",
            "FOREWARN_ACK_SECRET": uuid.uuid4().hex,
            "FOREWARN_SECRET_KEY": new_key(),  # seals channel URLs: the worker, the API and the CLI share it
            "FOREWARN_PUBLIC_URL": "http://forewarn.test",
            "FOREWARN_DELIVERY_RETRY_S": "0.5,0.5",  # two quick retries, then the next channel
        }
        settings = Settings(**{k.removeprefix("FOREWARN_").lower(): v for k, v in env.items()})
        # the topics as ingest makes them (a worker or producer started first would have the
        # broker create them with its default partition count, and the worker's tables refuse that)
        asyncio.run(bus.ensure_topics(settings.kafka_bootstrap, settings.partitions))
        yield Services(mqtt_url, tansu.url, database_url, settings, env)
        with psycopg.connect(base_db.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        for svc in reversed(started):
            holder = launcher.LocalStack("", "", "", [svc])
            holder.stop()


@pytest.fixture(scope="session")
def sink() -> Iterator[HttpSink]:
    s = HttpSink(fail_paths=("/broken",)).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def ingest_process(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """ingest as a real process, once per session."""
    ingest = spawn("ingest", ["ingest"], services.env, tmp_path_factory.mktemp("ingest") / "ingest.log")
    try:
        yield ingest.ready(60)
    finally:
        ingest.stop()


class Supervised:
    """A child run as ``forewarn up`` runs it: started again, after ``forewarn.supervise``'s
    backoff, when it dies (the worker's watchdog exits with ``EXIT_STUCK`` for exactly this).
    Reads as the current :class:`Child` (``proc``, ``status()`` …); ``exits`` lists how each
    earlier one ended, ``text()`` is every run's log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], folder: Path) -> None:
        self._start = lambda run: spawn(name, args, env, folder / f"{name}{f'-{run}' if run else ''}.log", folder)
        self.child = self._start(0)
        self.logs = [self.child.log]
        self.exits: list[int | None] = []
        self._restarts = Restarts(name)
        self._supervising = True
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name=f"supervise-{name}", daemon=True).start()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.child, attr)

    def text(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs if log is not None and log.exists())

    def _watch(self) -> None:
        while self._supervising:
            code = self.child.proc.poll()
            if code is None:
                time.sleep(0.2)
                continue
            with self._lock:
                if not self._supervising:
                    return
                self.exits.append(code)
                verdict = self._restarts.died(time.monotonic(), self.child.started_at)
            print(f"\n[supervisor] {self.child.name} exited with {code}: {verdict.reason}")
            if verdict.restart_in_s is None:
                return
            time.sleep(verdict.restart_in_s)
            with self._lock:
                if self._supervising:
                    self.child = self._start(len(self.exits))
                    self.logs.append(self.child.log)

    def unsupervised(self) -> Child:
        """Stop restarting it (a test that kills it on purpose and starts its own)."""
        with self._lock:
            self._supervising = False
        return self.child

    def stop(self, grace_s: float = 20.0) -> None:
        self.unsupervised().stop(grace_s)


@pytest.fixture(scope="session")
def worker_process(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    """The Faust worker as a real process, once per session (it takes a few seconds to join its
    group), supervised like ``forewarn up`` does it."""
    worker = Supervised("worker", ["worker"], services.env, tmp_path_factory.mktemp("worker"))
    try:
        worker.child.ready(150)
        yield worker
    finally:
        worker.stop()
