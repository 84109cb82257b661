"""API keys of the insurer's desk: their format, their hash, and what each role may do. Pure.

A key reads ``fw_<prefix>_<secret>``: ``fw_`` says what it is (so a secret scanner can find a
leaked one), the prefix (8 hex digits) names the key in lists and logs, the secret (43
base64url characters, 256 bits) is shown once when the key is created and never stored: the
database keeps its SHA-256 (:func:`key_hash`; a random 256-bit secret needs no slow hash).
A key is found by its prefix and its hash compared in constant time (:func:`matches`).

Roles, each allowing what the one before allows: ``read_only`` reads, ``staff`` also acts on
warnings (acknowledge, escalate, record an outcome), ``admin`` also manages customers,
devices and keys.

>>> issued = issue(prefix="0badcafe", secret="s" * 43)
>>> issued.text
'fw_0badcafe_sssssssssssssssssssssssssssssssssssssssssss'
>>> parse(issued.text).prefix, matches(issued.text, issued.sha256)
('0badcafe', True)
>>> allows("staff", "read_only"), allows("read_only", "staff")
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["read_only", "staff", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
"""From the least allowed to the most; each role may do what the ones before it may."""

_KEY_RE = re.compile(r"fw_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
MAX_KEY_CHARS = 200
"""Longer header values are refused before any parsing."""


class BadKey(ValueError):
    """A presented key that cannot be one of ours (missing, malformed); the message says why."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    prefix: str
    secret: str

    @property
    def text(self) -> str:
        """What the caller presents (shown once)."""
        return f"fw_{self.prefix}_{self.secret}"

    @property
    def sha256(self) -> str:
        return key_hash(self.text)


@dataclass(frozen=True, slots=True)
class PresentedKey:
    prefix: str
    text: str


def issue(prefix: str | None = None, secret: str | None = None) -> IssuedKey:
    """A new random key (``prefix`` and ``secret`` only for tests)."""
    issued = IssuedKey(prefix or secrets.token_hex(4), secret or secrets.token_urlsafe(32))
    parse(issued.text)  # the format holds for what we hand out
    return issued


def key_hash(text: str) -> str:
    """SHA-256 (hex) of the whole key: what the database keeps."""
    return hashlib.sha256(text.encode()).hexdigest()


def parse(text: str) -> PresentedKey:
    """A presented key → its prefix; :class:`BadKey` when it cannot be a key of ours."""
    if len(text) > MAX_KEY_CHARS:
        raise BadKey("the API key is too long to be a forewarn key")
    match = _KEY_RE.fullmatch(text.strip())
    if match is None:
        raise BadKey(
            "the API key must look like fw_<8 hex digits>_<43 characters>, as 'forewarn key create' printed it"
        )
    return PresentedKey(match[1], match[0])


def matches(text: str, stored_sha256: str) -> bool:
    """Whether a presented key is the one whose hash is stored (constant-time comparison)."""
    return hmac.compare_digest(key_hash(text.strip()), stored_sha256)


def from_headers(authorization: str | None, x_api_key: str | None) -> str:
    """The key a request presents: ``Authorization: Bearer fw_…`` or ``X-API-Key: fw_…``."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BadKey("the Authorization header must be 'Bearer fw_…'")
        return value.strip()
    raise BadKey("no API key: send 'Authorization: Bearer fw_…' or 'X-API-Key: fw_…'")


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def allows(role: str, needed: str) -> bool:
    """Whether a key of ``role`` may do what needs ``needed``."""
    return ROLES.index(check_role(role)) >= ROLES.index(check_role(needed))
