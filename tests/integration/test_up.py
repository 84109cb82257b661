"""``forewarn up`` as an operator runs it: a real process, real children, real signals.

- a child killed with SIGKILL is restarted, and ``up`` says which one died and how;
- SIGTERM stops everything it started, in order (ingest, the worker, then the brokers), and
  leaves no process behind; the exit code is 0;
- without ``--start-services`` a service that does not answer is an error naming its setting
  and the flag, and nothing is started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forewarn import launcher

pytestmark = pytest.mark.integration


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait(what: str, probe, timeout: float, log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}; up's output:\n{log.read_text(errors='replace')[-4000:]}")


def _pids(run_dir: Path) -> dict:  # type: ignore[type-arg]
    try:
        return json.loads((run_dir / "up.json").read_text())
    except (OSError, ValueError):
        return {}


def _up(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "forewarn.cli", "up", *args],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_up_restarts_a_killed_child_and_sigterm_stops_everything_in_order(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mqtt_port, kafka_port = launcher.free_port(), launcher.free_port()
    env = {
        **services.env,
        "FOREWARN_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",  # nothing there: up starts Mosquitto
        "FOREWARN_KAFKA_URL": f"kafka://127.0.0.1:{kafka_port}",  # nothing there: up starts Tansu
        "FOREWARN_STATE_DIR": str(tmp_path / "state"),
    }
    run_dir = tmp_path / "state" / "run"
    log = tmp_path / "up.log"
    up = _up(["--start-services"], env, log)
    seen: set[int] = set()
    try:
        first = _wait("up to start its children", lambda: _pids(run_dir).get("children", {}).get("ingest"), 180, log)
        pids = _pids(run_dir)
        assert set(pids["children"]) == {"ingest", "worker"}
        assert {"mqtt (mosquitto)", "kafka (tansu)"} <= set(pids["services"]), pids
        seen |= set(pids["children"].values()) | {p for p in pids["services"].values() if p}
        assert launcher.reachable("127.0.0.1", mqtt_port) and launcher.reachable("127.0.0.1", kafka_port)
        text = log.read_text()
        assert "--start-services" in text and "for demos and tests" in text, "up says what it started and why"

        os.kill(first, signal.SIGKILL)
        second = _wait(
            "the killed ingest to be restarted",
            lambda: (p := _pids(run_dir).get("children", {}).get("ingest")) != first and p,
            60,
            log,
        )
        assert _running(second)
        seen.add(second)
        text = log.read_text()
        assert "ingest died (killed by SIGKILL)" in text and "ingest restarted" in text
        assert up.poll() is None, "a child's death does not take up down"
        # both at work before the stop, so the stop is their own orderly one, not a start-up cut short
        _wait("the restarted ingest to be ready", lambda: f"ingest ready (pid {second}" in log.read_text(), 120, log)
        _wait("the worker to be ready", lambda: "worker ready" in log.read_text(), 180, log)

        t0 = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = up.wait(120)
        stop_s = time.monotonic() - t0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    text = log.read_text(errors="replace")
    print(f"up stopped in {stop_s:.1f} s (exit code {code})\n{text[-3000:]}")
    assert code == 0, text[-3000:]
    left = [pid for pid in seen if _running(pid)]
    assert not left, f"still running after up stopped: {left}"
    assert not launcher.reachable("127.0.0.1", mqtt_port) and not launcher.reachable("127.0.0.1", kafka_port)
    order = [text.index(f"stopping {name}") for name in ("ingest", "worker", "mqtt (mosquitto)", "kafka (tansu)")]
    assert order == sorted(order), "ingest first, then the worker, then the brokers"


@pytest.mark.parametrize(
    ("setting", "scheme"),
    [("FOREWARN_KAFKA_URL", "kafka"), ("FOREWARN_MQTT_URL", "mqtt"), ("FOREWARN_DATABASE_URL", "postgresql")],
)
def test_up_refuses_a_service_that_does_not_answer_unless_asked_to_start_one(  # type: ignore[no-untyped-def]
    services, tmp_path: Path, setting: str, scheme: str
) -> None:
    port = launcher.free_port()  # nothing listens there
    url = f"{scheme}://127.0.0.1:{port}" + ("/forewarn" if scheme == "postgresql" else "")
    env = {**services.env, setting: url, "FOREWARN_STATE_DIR": str(tmp_path / "state")}
    log = tmp_path / "up.log"
    up = _up([], env, log)
    try:
        code = up.wait(120)
    finally:
        if up.poll() is None:
            up.kill()
    text = " ".join(log.read_text(errors="replace").split())
    assert code == 2, text
    assert setting in text and "--start-services" in text, text
    assert not launcher.reachable("127.0.0.1", port), "nothing was started in its place"
    assert not (tmp_path / "state" / "run" / "up.json").exists(), "no child was started"
