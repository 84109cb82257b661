"""Secrets at rest: channel URLs (they carry API keys and phone numbers) sealed with Fernet. The only
``cryptography`` module.

A sealed value is one text, so it fits where a plain URL was (``customers.notify_urls`` elements,
``tenant_contacts.url``) with no second column to keep in step::

    sealed:v1:<Fernet token>:<the URL masked, for listings>

The masked form travels in the clear beside the ciphertext, so listings, the API and the delivery
rows show a channel without the key; only the dispatcher (at send time) and the admin's
``forewarn db encrypt-channels`` open it. A value without the prefix is a plain URL from an earlier
version: it is read as it is, and ``forewarn db migrate`` (or ``db encrypt-channels``) seals it.

Keys: ``FOREWARN_SECRET_KEY``, one or more Fernet keys separated by commas: the first seals, every
one opens (:class:`cryptography.fernet.MultiFernet`), so a key is rotated by putting the new one
first, running ``forewarn db encrypt-channels`` (which re-seals every value with it), then dropping
the old one. When the setting is empty a key is kept in ``state_dir``/secret-key (created once,
readable by its owner only), like the acknowledgement secret: fine on one machine, while processes
on several machines (compose) must share ``FOREWARN_SECRET_KEY``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.settings import Settings

PREFIX = "sealed:v1:"
KEY_FILE = "secret-key"
MAKE_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class SecretKeyError(ValueError):
    """No key, a malformed key, or not the key a value was sealed with; the message names
    FOREWARN_SECRET_KEY and what to do."""


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def label(value: str) -> str | None:
    """The masked URL a sealed value carries (readable without the key); ``None`` for a plain URL."""
    if not is_sealed(value):
        return None
    _, _, shown = value[len(PREFIX) :].partition(":")
    return shown or "(sealed channel)"


def new_key() -> str:
    """A fresh Fernet key (32 random bytes, URL-safe base64) for FOREWARN_SECRET_KEY."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals and opens channel URLs with one or more keys (the first seals)."""

    def __init__(self, keys: Sequence[str], source: str = "FOREWARN_SECRET_KEY") -> None:
        self.source = source
        """Where the keys came from, for error messages."""
        if not keys:
            raise SecretKeyError(f"no secret key: set FOREWARN_SECRET_KEY (make one with: {MAKE_KEY})")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"key {number} of {source} is not a Fernet key (32 bytes in URL-safe base64, 44 characters);"
                    f" make one with: {MAKE_KEY}"
                ) from None
        self._fernet = MultiFernet(fernets)

    def seal(self, secret: str, shown: str) -> str:
        """``secret`` encrypted with the first key, ``shown`` (its masked form) beside it."""
        token = self._fernet.encrypt(secret.encode()).decode()
        return f"{PREFIX}{token}:{shown.replace(chr(10), ' ')}"

    def open(self, value: str) -> str:
        """The URL a stored value holds: a sealed one decrypted, a plain one (an earlier version's) as it is."""
        if not is_sealed(value):
            return value
        token, _, _ = value[len(PREFIX) :].partition(":")
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"cannot decrypt the channel {label(value)}: it was sealed with a key that {self.source} does not"
                " hold. Set FOREWARN_SECRET_KEY to that key (several keys may be given, comma-separated: the"
                " first seals, all open) and restart"
            ) from None

    def reseal(self, value: str) -> str:
        """A sealed value sealed again with the first key (rotation); its label is kept."""
        token, _, shown = value[len(PREFIX) :].partition(":")
        try:
            return f"{PREFIX}{self._fernet.rotate(token.encode()).decode()}:{shown}"
        except InvalidToken:
            raise SecretKeyError(
                f"cannot re-seal the channel {label(value)}: none of the keys in {self.source} opens it"
            ) from None


def secret_box(settings: Settings, *, create: bool = True) -> SecretBox:
    """The box of these settings: ``FOREWARN_SECRET_KEY``, else the key kept in ``state_dir``/secret-key.

    ``create``: make that key file when there is none (writers); a reader (the dispatcher) passes
    False, since a key made now would open nothing sealed before.
    """
    if settings.secret_key.strip():
        return SecretBox([k for k in settings.secret_key.split(",") if k.strip()])
    path = Path(settings.state_dir) / KEY_FILE
    source = f"the key file {path} (FOREWARN_SECRET_KEY is empty)"
    if not path.exists():
        if not create:
            raise SecretKeyError(
                f"no secret key: FOREWARN_SECRET_KEY is empty and there is no {path}; set FOREWARN_SECRET_KEY"
                " to the key the channels were sealed with (the one the API and the CLI use)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_key() + "\n")
        try:
            os.link(draft, path)  # whole or not at all; a process that raced us keeps its key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    keys = [k for k in path.read_text().replace("\n", ",").split(",") if k.strip()]
    return SecretBox(keys, source)
