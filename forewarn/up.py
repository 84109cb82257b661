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
- ``--mqtt-auth`` (opt-in): instead of the settings' MQTT broker, ``up`` runs a Mosquitto of its
  own that refuses anonymous clients and lets each device (username ``tenant/device``) publish
  on its own topics only, its files kept in step with the database (:class:`BrokerAuth`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from rich.console import Console

from core import db
from core.bus import ensure_topics
from core.contract import TOPIC_PREFIX
from core.mqttauth import INGEST_USER, CredentialError, new_password
from core.outage import Outage
from core.settings import Settings, hide_password, host_port, kafka_bootstrap
from forewarn import launcher
from forewarn.children import Child, settings_env, spawn
from forewarn.mqttauth_cli import PID_FILE, atomic_write, reload_broker, write_files
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


MQTT_AUTH_DIR = "mqtt-auth"
"""In ``state_dir`` (0700): ingest's MQTT password, Mosquitto's passwd and acl, the broker's pid."""
MQTT_DATA_DIR = "mqtt-data"
"""In ``state_dir``: the ``--mqtt-auth`` broker's persisted sessions and queued messages."""
INGEST_PASSWORD_FILE = "ingest-password"
CREDENTIALS_CHECK_S = 5.0
"""How often ``up --mqtt-auth`` compares the database's device credentials with the broker's files."""
AUTH_BROKER = "mqtt (mosquitto, device credentials)"

log = logging.getLogger(__name__)


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: stop everything in order."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stopped


def _leftover_broker(folder: Path) -> int | None:
    """The pid of a broker an earlier ``up --mqtt-auth`` started on these files that still runs
    (``up`` was killed outright): two brokers on one data folder would overwrite each other's state."""
    try:
        pid = int((folder / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"mosquitto" in cmdline and b"forewarn-mosquitto-" in cmdline else None


@dataclass
class BrokerAuth:
    """``up --mqtt-auth``: a Mosquitto of ``up``'s own that refuses anonymous clients and lets
    each device publish on its own topics only, with its files kept in step with the database.

    ``state_dir``/mqtt-auth (0700) holds ingest's MQTT password (made on the first run, 0600,
    and reused, so nothing has to be passed around between runs), Mosquitto's ``passwd`` and
    ``acl`` (written by :func:`forewarn.mqttauth_cli.write_files`) and the broker's pid.
    While ``up`` runs, a thread of its own (a slow database never holds up the supervision)
    reads the device credentials every :data:`CREDENTIALS_CHECK_S`; when they differ from what
    the files hold it rewrites the files and SIGHUPs the broker, so a credential issued or
    revoked with ``forewarn device credentials`` takes effect within seconds, no manual step.
    The database's rows are compared, not the files' text: each write salts ingest's hash anew.
    """

    folder: Path
    data_dir: Path
    database_url: str
    ingest_password: str
    health_password: str | None = None
    port: int = 0
    written: list[tuple[str, str, str]] | None = None
    """The (tenant, device, hash) rows the files were last written from."""
    db_outage: Outage = field(
        default_factory=lambda: Outage("PostgreSQL (device credentials)", log, "FOREWARN_DATABASE_URL")
    )
    files_outage: Outage = field(
        default_factory=lambda: Outage("the --mqtt-auth broker's files or reload", log, "the broker and its folder")
    )
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def prepare(cls, state_dir: Path, database_url: str, health_password: str | None) -> BrokerAuth:
        """The folder (0700) and ingest's password, made on the first run and kept."""
        folder = state_dir / MQTT_AUTH_DIR
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        secret = folder / INGEST_PASSWORD_FILE
        if not secret.exists():
            atomic_write(secret, new_password() + "\n")
        password = secret.read_text().strip()
        if not password:
            raise launcher.StackError(f"{secret} is empty: delete it and 'forewarn up --mqtt-auth' makes a new one")
        leftover = _leftover_broker(folder)
        if leftover is not None:
            raise launcher.StackError(
                f"a Mosquitto started by an earlier 'forewarn up --mqtt-auth' on {folder} still runs (pid {leftover}):"
                f" stop it (kill {leftover}), then run up again"
            )
        return cls(folder, state_dir / MQTT_DATA_DIR, database_url, password, health_password)

    @property
    def ingest_url(self) -> str:
        """``FOREWARN_MQTT_URL`` for ``up``'s children: ingest's own login on the broker."""
        return f"mqtt://{INGEST_USER}:{self.ingest_password}@127.0.0.1:{self.port}"

    def write(self) -> tuple[list[tuple[str, str, str]], int]:
        """Write ``passwd`` and ``acl`` from the database; returns the rows read first (a change
        made while the files are written is seen on the next check) and how many devices the files list."""
        rows = db.device_credentials(self.database_url)
        written = write_files(
            self.folder,
            self.database_url,
            ingest=(INGEST_USER, self.ingest_password),
            health_password=self.health_password,
        )
        return rows, written.devices

    def start_broker(self, port: int, log_dir: Path) -> launcher.Service:
        """The broker on ``port``, with a restart on the same port, files and data folder."""

        def start() -> launcher.Service:
            svc = launcher.start_mosquitto(port, log_dir, auth=self.folder, data_dir=self.data_dir)
            svc.name = AUTH_BROKER
            return svc

        svc = start()
        svc.restart = start
        self.port = port
        return svc

    def sync(self) -> str | None:
        """Rewrite the files and reload the broker when the database's credentials changed;
        returns what to tell the operator, or ``None``. Never raises: a failure is an outage,
        told once, and the next call tries again."""
        try:
            rows = db.device_credentials(self.database_url)
        except Exception as exc:  # noqa: BLE001 - any failure is an outage; the thread must not die of it
            self.db_outage.failed(exc, "reading the device credentials")
            return None
        self.db_outage.recovered()
        if rows == self.written:
            return None
        before = {(t, d): h for t, d, h in self.written or []}
        try:
            rows, devices = self.write()
            pid = reload_broker(self.folder)
        except Exception as exc:  # noqa: BLE001 - as above; written again and reloaded on the next check
            self.files_outage.failed(exc, "rewriting the credentials and reloading the broker")
            return None
        self.files_outage.recovered()
        self.written = rows
        after = {(t, d): h for t, d, h in rows}
        issued = sorted(f"{t}/{d}" for (t, d), h in after.items() if before.get((t, d)) != h)
        revoked = sorted(f"{t}/{d}" for (t, d) in before if (t, d) not in after)
        changes = "; ".join(
            f"{what} {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"
            for what, names in (("issued", issued), ("revoked", revoked))
            if names
        )
        return (
            f"MQTT credentials changed ({changes}): broker files rewritten ({devices} device(s)),"
            f" Mosquitto (pid {pid}) reloaded"
        )

    def start_sync(self, say: Callable[[str], None]) -> None:
        def run() -> None:
            while not self._stopping.wait(CREDENTIALS_CHECK_S):
                message = self.sync()
                if message:
                    say(message)

        self._thread = threading.Thread(target=run, name="mqtt-credentials", daemon=True)
        self._thread.start()

    def stop_sync(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(20)


def _auth_port(mqtt_url: str) -> tuple[int, str]:
    """Where the ``--mqtt-auth`` broker listens: FOREWARN_MQTT_URL's port when it is on this
    machine and nothing answers there; else a free port (a broker already there is not ours: it
    is left alone). Returns the port and why it was chosen."""
    host, port = host_port(mqtt_url, 1883)
    if host not in launcher.LOOPBACK:
        return launcher.free_port(), f"FOREWARN_MQTT_URL names {host}, not this machine: ours listens on a free port"
    if launcher.reachable(host, port):
        return launcher.free_port(), (
            f"something already answers at {host}:{port} (FOREWARN_MQTT_URL) and is not ours: it is left alone,"
            " and ours listens on a free port instead"
        )
    return port, f"nothing answered at FOREWARN_MQTT_URL's port {port}: ours listens there"


def start_auth_broker(settings: Settings, running: launcher.LocalStack, console: Console) -> BrokerAuth:
    """``up --mqtt-auth``: write the files, start the broker as one of ``running``'s services
    (stopped and restarted like the others) and point ``running.mqtt_url`` at it with ingest's
    login; then tell the operator where devices connect and how they log in."""
    auth = BrokerAuth.prepare(Path(settings.state_dir), running.database_url, settings.mqtt_health_password or None)
    try:
        auth.written, devices = auth.write()
    except CredentialError as exc:
        raise launcher.StackError(f"the device credentials cannot become Mosquitto's files: {exc}") from None
    port, why = _auth_port(settings.mqtt_url)
    console.print(f"[dim]--mqtt-auth: starting Mosquitto with device credentials ({why})[/dim]")
    log_dir = Path(settings.state_dir) / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    svc = auth.start_broker(port, log_dir)
    running.services.append(svc)
    running.mqtt_url = auth.ingest_url
    telemetry = f"{TOPIC_PREFIX}/TENANT/DEVICE/telemetry"
    console.print(
        f"  {svc.name:<30} {svc.url:<55} started\n"
        f"[bold]MQTT broker for devices: 127.0.0.1:{port}[/bold] (--mqtt-auth): anonymous clients are refused.\n"
        "  a device logs in with username TENANT/DEVICE and the password that "
        "'forewarn device credentials TENANT DEVICE' prints (once; stored hashed);\n"
        f"  it may publish on {telemetry} and …/status only.\n"
        f"  {devices} device(s) have credentials now; credentials issued or revoked while up runs take effect"
        f" within about {CREDENTIALS_CHECK_S:g} s (files in {auth.folder})"
    )
    return auth


def start_stack(
    settings: Settings, console: Console, *, start_services: bool, mqtt_auth: bool = False
) -> launcher.LocalStack:
    """Reuse the services at the configured URLs (start the missing ones when ``start_services``),
    migrate the schema and create the topics. ``mqtt_auth``: leave the settings' MQTT broker out
    (:func:`start_auth_broker` starts ``up``'s own once the database is migrated)."""
    running = launcher.bring_up(
        settings.mqtt_url,
        settings.kafka_url,
        settings.database_url,
        progress=lambda m: console.print(f"[dim]{m}[/dim]"),
        pg_data_dir=Path(settings.state_dir) / "postgres",
        database_named="FOREWARN_DATABASE_URL" in os.environ,
        start_missing=start_services,
        with_mqtt=not mqtt_auth,
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
    mqtt_auth: BrokerAuth | None = None
    """``--mqtt-auth``: the broker's files, kept in step with the database while the children run."""

    def _say(self, message: str) -> None:
        self.console.print(message)

    def _watch(self, name: str) -> _Watched:
        return self.watched.setdefault(name, _Watched(name, Restarts(name, self.policy)))

    def start(self) -> None:
        for name in self.names:
            self._spawn(name)
        self.write_pids()
        if self.mqtt_auth is not None:
            self.mqtt_auth.start_sync(self._say)

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
        if self.mqtt_auth is not None:
            self.mqtt_auth.stop_sync()
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
            "urls": {s.name: hide_password(s.url) for s in self.stack.services},
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
    mqtt_auth: bool = False,
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
        running = start_stack(settings, console, start_services=start_services, mqtt_auth=mqtt_auth)
        auth = start_auth_broker(settings, running, console) if mqtt_auth else None
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
            mqtt_auth=auth,
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
