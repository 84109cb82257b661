"""Acknowledgement tokens: a short, signed, expiring token for one warning, carried in its link.

A token packs the warning's id (16 bytes), its expiry (epoch minutes), a random nonce that
names this token (so a used one can be refused when replayed) and a truncated HMAC-SHA256 over
all three, base64url without padding: 46 characters. Pure: the caller passes the secret and
the time. Refusals are :class:`TokenError` with a reason a person can read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import uuid
from dataclasses import dataclass

_LAYOUT = struct.Struct(">16sI4s")  # warning id, expiry (epoch minutes), nonce
_MAC_BYTES = 10
DEFAULT_TTL_S = 7 * 86400


class TokenError(ValueError):
    """A token that must not acknowledge anything; ``reason`` is forged, expired or malformed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AckToken:
    warning_id: str
    expires_at_s: int
    nonce: str
    """Hex; names this token, so a token used once is refused the second time."""


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, b"forewarn-ack-v1|" + body, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(
    secret: bytes, warning_id: str, now_s: float, ttl_s: float = DEFAULT_TTL_S, nonce: bytes | None = None
) -> str:
    """A token acknowledging ``warning_id`` until ``now_s + ttl_s``.

    >>> token = issue(b"k" * 32, "6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e", 0, 3600, nonce=b"\\0\\0\\0\\1")
    >>> len(token), verify(b"k" * 32, token, 60).warning_id
    (46, '6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e')
    """
    if not secret:
        raise ValueError("the acknowledgement secret is empty")
    body = _LAYOUT.pack(uuid.UUID(warning_id).bytes, int((now_s + ttl_s) // 60), nonce or secrets.token_bytes(4))
    return base64.urlsafe_b64encode(body + _mac(secret, body)).rstrip(b"=").decode()


def verify(secret: bytes, token: str, now_s: float) -> AckToken:
    """The warning a genuine, unexpired ``token`` acknowledges; :class:`TokenError` otherwise.

    >>> try:
    ...     verify(b"k" * 32, "x" * 46, 0)
    ... except TokenError as refused:
    ...     print(refused.reason)
    forged
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise TokenError("malformed", "this acknowledgement link is damaged: open the link from the message") from None
    if len(raw) != _LAYOUT.size + _MAC_BYTES:
        raise TokenError("malformed", "this acknowledgement link is damaged: open the link from the message")
    body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise TokenError("forged", "this acknowledgement link is not genuine")
    wid, expires_min, nonce = _LAYOUT.unpack(body)
    if expires_min * 60 <= now_s:
        raise TokenError("expired", "this acknowledgement link has expired: call the service line in the message")
    return AckToken(str(uuid.UUID(bytes=wid)), expires_min * 60, nonce.hex())
