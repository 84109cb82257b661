"""Readiness and status files: how a long-running process tells its launcher it is ready.

A process started with ``FOREWARN_STATUS_FILE`` set writes there, atomically, a small JSON
document: its pid, whether it is ready, when it last reported and its counters. The launcher,
the demo, the tests and the benchmarks read that file instead of scraping log lines. Without
the variable, nothing is written.

Health means progress, not liveness: a process also reports how much work it holds
(``pending``: messages read and not yet in Kafka, records taken and not yet stored) and when
work last moved (``progress_at``). :func:`health` calls a process unhealthy when it stopped
reporting or holds work it has not moved for a stated time; ``forewarn health`` runs it for a
container's health check.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

STATUS_FILE_ENV = "FOREWARN_STATUS_FILE"


class StatusFile:
    """The status a process reports about itself, written to ``path`` (``None``: written nowhere)."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self.ready = False
        self.detail: dict[str, Any] = {}

    @classmethod
    def from_env(cls) -> StatusFile:
        return cls(os.environ.get(STATUS_FILE_ENV) or None)

    def mark_ready(self, **detail: Any) -> None:
        self.ready = True
        self.update(**detail)

    def update(self, **detail: Any) -> None:
        self.detail.update(detail)
        if self.path is None:
            return
        doc = {"pid": os.getpid(), "ready": self.ready, "at": time.time(), **self.detail}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, default=str))
        os.replace(tmp, self.path)  # readers never see half a document

    def work(self, pending: int, moved: int = 0, **detail: Any) -> None:
        """Report the work held (``pending``) and how much moved since the last report
        (``moved``); holding nothing counts as progress."""
        if moved > 0 or pending <= 0 or "progress_at" not in self.detail:
            self.detail["progress_at"] = time.time()
        self.update(pending=pending, **detail)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def read_status(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last status written at ``path``, or ``None`` when there is none (yet)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def health(doc: Mapping[str, Any] | None, now: float, stall_s: float) -> str | None:
    """Why the process that wrote ``doc`` is unhealthy at ``now``, or ``None`` when it is
    healthy: it reports at least every ``stall_s`` seconds and moves the work it holds within
    ``stall_s`` seconds."""
    if doc is None:
        return "no status reported (not started, or FOREWARN_STATUS_FILE differs)"
    if doc.get("stopped"):
        return "stopped"
    if not doc.get("ready"):
        return "not ready yet"
    silent = now - float(doc.get("at", 0))
    if silent > stall_s:
        return f"no report for {silent:.0f} s (hung?)"
    pending = int(doc.get("pending", 0) or 0)
    stalled = now - float(doc.get("progress_at", doc.get("at", 0)))
    if pending > 0 and stalled > stall_s:
        behind = int(doc.get("behind", 0) or 0)
        waiting = f", {behind} of them waiting on Kafka, not yet taken" if behind else ""
        return f"holds {pending} unmoved for {stalled:.0f} s{waiting} (a dependency is down or stuck)"
    return None


def wait_ready(
    path: str | os.PathLike[str],
    pid: int,
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
    poll_s: float = 0.1,
) -> Mapping[str, Any] | None:
    """Wait until the process ``pid`` reports ready at ``path``; its status, or ``None`` when it
    did not within ``timeout`` seconds or ``alive()`` turned false first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = read_status(path)
        if doc is not None and doc.get("pid") == pid and doc.get("ready"):
            return doc
        if not alive():
            return None
        time.sleep(poll_s)
    return None
