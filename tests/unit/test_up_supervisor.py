"""``up``'s supervisor on real (tiny) processes: a dying child is reported with its exit code and
restarted; a crash loop ends supervision with the reason."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from forewarn import up
from forewarn.children import Child
from forewarn.launcher import LocalStack
from forewarn.supervise import RestartPolicy


def _supervisor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: str) -> tuple[up.Supervisor, io.StringIO]:
    def spawn(name: str, args: list[str], env: dict[str, str], log: Path | None, **kw: object) -> Child:
        proc = subprocess.Popen([sys.executable, "-c", code])
        return Child(name, proc, None, tmp_path / f"{name}.status.json")

    monkeypatch.setattr(up, "spawn", spawn)
    out = io.StringIO()
    policy = RestartPolicy(first_delay_s=0.1, max_delay_s=0.4, max_deaths=3, window_s=60)
    sup = up.Supervisor(Console(file=out, width=200), {}, tmp_path, ("ingest",), LocalStack("", "", ""), 1, policy)
    return sup, out


def _run(sup: up.Supervisor, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        failure = sup.tick(time.monotonic())
        if failure:
            return failure
        time.sleep(0.05)
    return None


def test_a_crash_loop_is_restarted_with_backoff_then_given_up_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sup, out = _supervisor(monkeypatch, tmp_path, "import sys; sys.exit(3)")
    sup.start()
    failure = _run(sup, 30)
    said = out.getvalue()
    assert said.count("ingest died (exit code 3)") == 2 and said.count("ingest restarted") == 2, said
    assert failure is not None and "ingest died (exit code 3)" in failure and "crash loop" in failure
    assert (tmp_path / "up.json").exists()


def test_a_child_that_keeps_running_is_left_alone_and_stopped_on_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sup, out = _supervisor(monkeypatch, tmp_path, "import time; time.sleep(60)")
    sup.start()
    assert _run(sup, 1.0) is None
    child = sup.children["ingest"]
    sup.stop(progress=lambda m: out.write(m + "\n"))
    assert not child.alive() and "ingest stopped (killed by SIGTERM)" in out.getvalue()
