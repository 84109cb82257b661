"""``up --mqtt-auth``'s own files and its choice of port, without a broker or a database.

Ingest's password is made once and reused (a second run must not lock out the durable session
it has on the broker); the folder is private; a port where something answers is never taken
(the machine's own Mosquitto may listen there, and it is not ours); a broker left running by an
earlier ``up`` on the same files is refused, not joined by a second one.
"""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from forewarn import launcher
from forewarn.up import INGEST_PASSWORD_FILE, MQTT_AUTH_DIR, BrokerAuth, _auth_port


def test_the_ingest_password_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = BrokerAuth.prepare(tmp_path, "postgresql://unused", None)
    second = BrokerAuth.prepare(tmp_path, "postgresql://unused", None)
    folder = tmp_path / MQTT_AUTH_DIR
    assert first.ingest_password == second.ingest_password and len(first.ingest_password) >= 40
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / INGEST_PASSWORD_FILE).stat().st_mode) == 0o600
    first.port = 1884
    assert first.ingest_url == f"mqtt://forewarn-ingest:{first.ingest_password}@127.0.0.1:1884"


def test_a_port_that_answers_is_left_alone() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port, why = _auth_port(f"mqtt://127.0.0.1:{taken}")
    assert port != taken and "not ours" in why and "left alone" in why
    free = launcher.free_port()
    assert _auth_port(f"mqtt://user:pw@localhost:{free}")[0] == free, "nothing answers there: the settings' port"
    assert "not this machine" in _auth_port("mqtt://broker.example:1883")[1]


def test_a_broker_left_by_an_earlier_up_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / MQTT_AUTH_DIR
    folder.mkdir()
    # a process whose command line looks like a Mosquitto the launcher started ("mosquitto -c <its conf>")
    conf = "/tmp/forewarn-mosquitto-x/mosquitto.conf"
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "mosquitto", "-c", conf])
    try:
        (folder / "mosquitto.pid").write_text(f"{leftover.pid}\n")
        with pytest.raises(launcher.StackError, match=f"still runs \\(pid {leftover.pid}\\)"):
            BrokerAuth.prepare(tmp_path, "postgresql://unused", None)
    finally:
        leftover.kill()
        leftover.wait()
    BrokerAuth.prepare(tmp_path, "postgresql://unused", None)  # gone: a stale pid file is no obstacle
