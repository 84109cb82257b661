"""forewarn's own processes (ingest, worker) as children of the launcher, the demo, tests and benchmarks.

Each child gets its settings in its environment and a status file (``core.readiness``) it
writes when it is ready and as it works; :meth:`Child.ready` waits on that file, never on a
log line; the HTTP service is ready when its health endpoint answers (:meth:`Child.wait_healthy`).
Stopping sends SIGTERM and, after a grace period, SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.readiness import STATUS_FILE_ENV, read_status, wait_ready
from core.settings import Settings


class ChildError(RuntimeError):
    """A child process did not become ready; the message ends with its log."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path | None
    status_path: Path
    started_at: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        """The child's log so far (empty when it logs to the terminal)."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def status(self) -> dict[str, Any]:
        """What the child last reported about itself (``{}`` before its first report)."""
        doc = read_status(self.status_path)
        return doc if doc is not None and doc.get("pid") == self.proc.pid else {}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        return wait_ready(self.status_path, self.proc.pid, timeout, alive=self.alive) is not None

    def wait_healthy(self, url: str, timeout: float) -> bool:
        """For an HTTP service (``forewarn api``): wait until ``url`` answers 200 while the child lives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def ready(self, timeout: float) -> Child:
        """Wait until the child reports ready; raise with the end of its log otherwise."""
        if not self.wait_ready(timeout):
            why = f"exited with code {self.proc.returncode}" if not self.alive() else f"not ready in {timeout:.0f} s"
            raise ChildError(f"{self.name} {why}:\n{self.text()[-3000:]}")
        return self

    def stop(self, grace_s: float = 20.0) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """For a supervised child (Linux): SIGTERM when its parent dies, even by SIGKILL, so a killed
    ``forewarn up`` leaves no orphan. libc is loaded here, in the parent, not after the fork."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return arm


def spawn(
    name: str,
    args: list[str],
    env: dict[str, str],
    log: Path | None,
    status_dir: Path | None = None,
    *,
    supervised: bool = False,
) -> Child:
    """Run ``forewarn ARGS`` as a child process with the given settings in its environment.

    ``supervised`` (``forewarn up``): the child runs in a session of its own, so a Ctrl-C in the
    terminal reaches only the supervisor, which stops the children in order; and it gets SIGTERM
    if the supervisor dies."""
    folder = status_dir or (log.parent if log else Path(tempfile.mkdtemp(prefix="forewarn-status-")))
    folder.mkdir(parents=True, exist_ok=True)
    status_path = folder / f"{name}.status.json"
    status_path.unlink(missing_ok=True)
    out: Any = open(log, "wb") if log else None  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "forewarn.cli", *args],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1", STATUS_FILE_ENV: str(status_path)},
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
        start_new_session=supervised,
        preexec_fn=_die_with_parent() if supervised else None,  # noqa: PLW1509 - prctl only, no locks
    )
    if out is not None:
        out.close()  # the child has its own copy of the descriptor
    return Child(name, proc, log, status_path)


def settings_env(settings: Settings, mqtt_url: str, kafka_url: str, database_url: str) -> dict[str, str]:
    """The ``FOREWARN_*`` variables that point a child at the services in use."""
    return {
        "FOREWARN_MQTT_URL": mqtt_url,
        "FOREWARN_KAFKA_URL": kafka_url,
        "FOREWARN_DATABASE_URL": database_url,
        "FOREWARN_PARTITIONS": str(settings.partitions),
        "FOREWARN_TIMEZONE": settings.timezone,
    }
