"""Devices' MQTT credentials and Mosquitto's files on the command line.

``forewarn device credentials TENANT DEVICE`` (or ``device add … --credentials``) issues a
device's MQTT password: printed once, kept only as Mosquitto's own hash (core.mqttauth). A new
one replaces the old; ``--revoke`` removes it. ``forewarn mqtt files FOLDER`` writes Mosquitto's
``passwd`` and ``acl`` there from the database (every device with credentials) plus ingest's
own user (from ``FOREWARN_MQTT_URL``) and the health-check user (``FOREWARN_MQTT_HEALTH_PASSWORD``),
each file replaced atomically; ``--reload`` then tells the running broker (SIGHUP) to read them.
Until the files are written and the broker reloaded, a new password is not accepted.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core import db
from core.mqttauth import (
    HEALTH_USER,
    CredentialError,
    Login,
    acl_text,
    device_topics,
    device_username,
    hash_password,
    new_password,
    passwd_text,
)
from core.settings import Settings, get_settings

console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

mqtt_app = typer.Typer(no_args_is_help=True, help="Mosquitto's passwd and acl files, written from the database.")

PID_FILE = "mosquitto.pid"
"""In the files' folder: the pid of the broker that reads them (the local launcher writes it)."""


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def atomic_write(path: Path, text: str, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``text`` in one step: a reader (Mosquitto on SIGHUP) sees the old
    file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class FilesWritten:
    folder: Path
    devices: int
    users: tuple[str, ...]
    """The service users listed besides the devices (ingest's, the health check's)."""


def write_files(
    folder: Path,
    database_url: str,
    *,
    ingest: tuple[str, str] | None,
    health_password: str | None = None,
    owner: tuple[int, int] | None = None,
) -> FilesWritten:
    """Write ``passwd`` and ``acl`` in ``folder`` from the database's device credentials and the
    service users given (``ingest``: its user and password)."""
    rows = db.device_credentials(database_url)
    logins = [Login(device_username(tenant, device), mqtt_hash) for tenant, device, mqtt_hash in rows]
    users: list[str] = []
    if ingest is not None:
        logins.append(Login(ingest[0], hash_password(ingest[1])))
        users.append(ingest[0])
    if health_password:
        logins.append(Login(HEALTH_USER, hash_password(health_password)))
        users.append(HEALTH_USER)
    acl = acl_text(
        ((tenant, device) for tenant, device, _ in rows),
        ingest_user=ingest[0] if ingest else None,
        health_user=HEALTH_USER if health_password else None,
    )
    passwd = passwd_text(logins)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "acl", acl, owner=owner)
    atomic_write(folder / "passwd", passwd, owner=owner)
    return FilesWritten(folder, len(rows), tuple(users))


def ingest_login(settings: Settings) -> tuple[str, str] | None:
    """Ingest's MQTT user and password, from ``FOREWARN_MQTT_URL`` (None when it has none)."""
    user, password = settings.mqtt_credentials
    return (user, password) if user and password else None


def reload_broker(folder: Path) -> int:
    """SIGHUP the broker whose pid is in ``folder``/mosquitto.pid; returns the pid."""
    try:
        pid = int((folder / PID_FILE).read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise OSError(
            f"cannot tell the broker to reload ({exc}): no running Mosquitto recorded in {folder / PID_FILE}; "
            "restart it, or send it SIGHUP yourself (docker compose kill -s HUP mosquitto)"
        ) from None
    return pid


def _owner(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    uid, _, gid = value.partition(":")
    try:
        return int(uid), int(gid or uid)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give numeric UID[:GID], e.g. 1883:1883") from None


@mqtt_app.command("files")
def mqtt_files(
    folder: Annotated[Path, typer.Argument(help="Where Mosquitto reads passwd and acl.")],
    reload: Annotated[bool, typer.Option(help=f"Then SIGHUP the broker whose pid is in FOLDER/{PID_FILE}.")] = False,
    owner: Annotated[
        str | None, typer.Option(help="UID[:GID] to own the files (as root: e.g. 1883 for the Mosquitto image).")
    ] = None,
) -> None:
    """Write Mosquitto's passwd and acl from the database: each device with credentials may
    publish on its own topics only; ingest reads them all; the health check reads $SYS."""
    settings = get_settings()
    ingest = ingest_login(settings)
    try:
        written = write_files(
            folder,
            settings.database_url,
            ingest=ingest,
            health_password=settings.mqtt_health_password or None,
            owner=_owner(owner),
        )
        pid = reload_broker(folder) if reload else None
    except (db.DatabaseError, CredentialError, OSError) as exc:
        _fail(str(exc))
        return
    if ingest is None:
        err.print(
            "[yellow]warning:[/yellow] FOREWARN_MQTT_URL has no user and password: ingest's user is not listed, "
            "so ingest cannot log in (mqtt://forewarn-ingest:PASSWORD@host:1883)"
        )
    users = ", ".join(written.users) or "no service user"
    console.print(f"wrote {folder}/passwd and acl: {written.devices} device(s), {users}")
    if pid is not None:
        console.print(f"Mosquitto (pid {pid}) told to reload them")


def device_credentials(
    tenant: Annotated[str, typer.Argument(help="The device's tenant.")],
    device: Annotated[str, typer.Argument(help="The device id (unique within the tenant).")],
    revoke: Annotated[bool, typer.Option(help="Remove the device's credentials instead.")] = False,
) -> None:
    """Issue (or replace) a device's MQTT password, printed once; the broker accepts it once
    'forewarn mqtt files' has written its files and the broker has reloaded them."""
    url = get_settings().database_url
    try:
        if revoke:
            gone = db.set_device_credential(url, tenant, device, None)
            console.print(
                f"device {tenant}/{device}: credentials revoked" if gone else f"device {tenant}/{device} had none"
            )
            console.print(f"now rewrite the broker's files: forewarn mqtt files FOLDER --reload{BY_ITSELF}")
            return
        issue_credentials(url, tenant, device)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))


BY_ITSELF = " (under 'forewarn up --mqtt-auth' this happens by itself within ~5 s)"


def issue_credentials(url: str, tenant: str, device: str) -> str:
    """Store a new password's hash for the device and print the password, once."""
    username = device_username(tenant, device)
    password = new_password()
    db.set_device_credential(url, tenant, device, hash_password(password))
    telemetry, status = device_topics(tenant, device)
    console.print(f"MQTT credentials of device {tenant}/{device} (shown once, stored hashed):")
    console.print(f"  username  {username}")
    console.print(f"  password  {password}", soft_wrap=True)
    console.print(f"  publishes {telemetry} and {status} only")
    console.print(f"the broker accepts them after: forewarn mqtt files FOLDER --reload{BY_ITSELF}")
    return password
