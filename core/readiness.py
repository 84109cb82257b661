"""Readiness and status files: how a long-running process tells its launcher it is ready.

A process started with ``FOREWARN_STATUS_FILE`` set writes there, atomically, a small JSON
document: its pid, whether it is ready, when it last reported and its counters. The launcher,
the demo, the tests and the benchmarks read that file instead of scraping log lines, and a
health check can read its age. Without the variable, nothing is written.
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
