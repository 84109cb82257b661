"""Mosquitto's files: its password-file hash, the passwd and ACL texts, the broker's config. Pure.

A device is the pair (tenant, device): device ids are unique only within a tenant, so its MQTT
username is ``tenant/device`` (:func:`device_username`; neither part can hold ``/``). Its
password is random (:func:`new_password`, 256 bits), shown once and kept only as Mosquitto's
own hash, so the broker checks it from the ``passwd`` file we write: PBKDF2-HMAC-SHA512,
written ``$7$<iterations>$<base64 salt>$<base64 hash>`` exactly as ``mosquitto_passwd`` 2.0
writes it (12-byte salt, 101 iterations). The low count is Mosquitto's default and enough here:
nobody can guess a 256-bit random secret, and a higher count would cost the broker CPU on
every device connection.

The ACL (:func:`acl_text`) lists each device as its own ``user`` block allowing writes on its
two topics only (``forewarn/v1/<tenant>/<device>/telemetry`` and ``…/status``); no ``pattern``
line, so the result does not depend on how a Mosquitto version substitutes ``%u`` for a
username holding ``/``. Ingest's user reads every device's topics; the health-check user reads
``$SYS``. Anonymous clients get nothing.

>>> line = ("alice:$7$101$PVMoh8pdlYGxgdz3$9MrlMUgmw5Wdr2gk4ZREpREfyySUvrXQCROwAdwZGaYSrVPzKC+UW9GH5zqQPgJcxFX"
...         "iZlsEYFjtx6/lGCnacw==")
>>> verify("secret", line.split(":", 1)[1])  # written by mosquitto_passwd 2.0.11
True
>>> encoded = hash_password("pw", salt=b"0123456789ab")
>>> encoded.startswith("$7$101$MDEyMzQ1Njc4OWFi$"), verify("pw", encoded), verify("pW", encoded)
(True, True, False)
>>> device_username("acme", "d00"), parse_device_username("acme/d00")
('acme/d00', ('acme', 'd00'))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from core.contract import MAX_PAYLOAD_BYTES, SEGMENT_RE, SHARED_GROUP, STATUS_FILTER, TELEMETRY_FILTER, TOPIC_PREFIX

HASH_ID = "7"
"""Mosquitto's id for PBKDF2-SHA512 in its password file (``$6$`` is the older salted SHA-512)."""
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
INGEST_USER = "forewarn-ingest"
HEALTH_USER = "healthcheck"


class CredentialError(ValueError):
    """A username or hash Mosquitto could not use; the message says which and why."""


def new_password() -> str:
    """A random password for one device (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``password`` in Mosquitto's password-file form ``$7$<iterations>$<salt>$<hash>``."""
    if not password:
        raise CredentialError("an empty password cannot be hashed: Mosquitto would refuse every login")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"${HASH_ID}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (as Mosquitto checks it), in constant time."""
    try:
        _, hash_id, iterations, salt, digest = encoded.split("$")
        if hash_id != HASH_ID:
            return False
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt, validate=True), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def device_username(tenant: str, device: str) -> str:
    """The MQTT username of a device: ``tenant/device`` (the pair is the identity)."""
    for what, value in (("tenant", tenant), ("device id", device)):
        if not SEGMENT_RE.fullmatch(value):
            raise CredentialError(f"{what} {value!r} must match {SEGMENT_RE.pattern}")
    return f"{tenant}/{device}"


def parse_device_username(username: str) -> tuple[str, str]:
    """``tenant/device`` → (tenant, device); :class:`CredentialError` for anything else."""
    tenant, _, device = username.partition("/")
    if not (SEGMENT_RE.fullmatch(tenant) and SEGMENT_RE.fullmatch(device)):
        raise CredentialError(f"{username!r} is not a device username (tenant/device)")
    return tenant, device


def device_topics(tenant: str, device: str) -> tuple[str, str]:
    """The only topics a device may publish on: its telemetry and its status (its last will)."""
    base = f"{TOPIC_PREFIX}/{tenant}/{device}"
    return f"{base}/telemetry", f"{base}/status"


@dataclass(frozen=True, slots=True)
class Login:
    """One line of Mosquitto's ``passwd`` file."""

    username: str
    hash: str

    def __post_init__(self) -> None:
        bad = set(self.username) & set(":\n\r\0+#")
        if not self.username or bad:
            raise CredentialError(f"MQTT username {self.username!r} is empty or holds {sorted(bad)}")
        if not self.hash.startswith(f"${HASH_ID}$") or "\n" in self.hash or ":" in self.hash:
            raise CredentialError(f"the hash of {self.username!r} is not a Mosquitto $7$ hash")


def passwd_text(logins: Iterable[Login]) -> str:
    """Mosquitto's ``passwd`` file: ``username:hash`` lines, one per login (sorted: a diff shows changes)."""
    seen: dict[str, Login] = {}
    for login in logins:
        if login.username in seen:
            raise CredentialError(f"MQTT username {login.username!r} appears twice")
        seen[login.username] = login
    return "".join(f"{name}:{seen[name].hash}\n" for name in sorted(seen))


def acl_text(devices: Iterable[tuple[str, str]], *, ingest_user: str | None, health_user: str | None) -> str:
    """Mosquitto's ``acl`` file: each device writes its own two topics, ingest reads them all
    (plain and through its shared subscription), the health check reads ``$SYS``."""
    lines = [
        "# Written by 'forewarn mqtt files' from the database; edit the database, not this file.",
        "# No topic lines before the first user: anonymous clients may do nothing.",
    ]
    if ingest_user:
        lines += ["", f"user {ingest_user}"]
        for topic_filter in (TELEMETRY_FILTER, STATUS_FILTER):
            lines += [f"topic read {topic_filter}", f"topic read $share/{SHARED_GROUP}/{topic_filter}"]
    if health_user:
        lines += ["", f"user {health_user}", "topic read $SYS/#"]
    for tenant, device in sorted(set(devices)):
        lines += ["", f"user {device_username(tenant, device)}"]
        lines += [f"topic write {topic}" for topic in device_topics(tenant, device)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the broker's configuration

MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 4096
"""Mosquitto's ``max_packet_size``: the contract's largest payload plus room for the fixed
header, the topic (a device topic is at most 151 bytes) and MQTT 5 properties. A bigger packet
is never read into memory: Mosquitto disconnects its sender (an MQTT 5 client is told the limit
in CONNACK and does not send it). A payload in the margin reaches ingest, which refuses it as
``too_large`` with a reject record. Mosquitto's ``message_size_limit`` (payload only) is not
used: it is deprecated, and Mosquitto 2.0 answers it with PUBACK 0x95, a code MQTT 5 does not
allow in a PUBACK, which paho takes for a malformed packet: it drops the connection and sends
the message again on every reconnect."""
AUTOSAVE_INTERVAL_S = 1
"""With persistence, Mosquitto writes its in-memory state (sessions, queued and retained
messages) every this many seconds (``autosave_on_changes false``: a time, not a count): a
broker killed outright loses what was acknowledged since the last save."""


def broker_conf(
    port: int,
    *,
    bind: str = "127.0.0.1",
    auth_dir: str | None = None,
    data_dir: str | None = None,
    run_as_root: bool = False,
) -> str:
    """A Mosquitto 2.0 configuration: one listener, the contract's size limits, durable
    sessions. ``auth_dir`` (holding ``passwd`` and ``acl``) turns anonymous access off;
    ``data_dir`` keeps state across restarts (saved every :data:`AUTOSAVE_INTERVAL_S` s and on
    a clean stop). ``run_as_root``: stay root (started by root, Mosquitto would switch to its
    own user, who could not read our files)."""
    lines = [f"listener {port} {bind}"]
    if auth_dir is not None:
        lines += ["allow_anonymous false", f"password_file {auth_dir}/passwd", f"acl_file {auth_dir}/acl"]
    else:
        lines += ["allow_anonymous true"]
    if data_dir is not None:
        lines += [
            "persistence true",
            f"persistence_location {data_dir.rstrip('/')}/",
            f"autosave_interval {AUTOSAVE_INTERVAL_S}",
            "autosave_on_changes false",
        ]
    else:
        lines += ["persistence false"]
    lines += [
        f"max_packet_size {MAX_PACKET_BYTES}",
        "max_queued_messages 100000",
        "max_inflight_messages 100",
    ]
    if run_as_root:
        lines += ["user root"]
    return "\n".join(lines) + "\n"
