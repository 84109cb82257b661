"""Delivery through apprise: a channel is an apprise URL. The only apprise module.

One :class:`apprise.Apprise` per URL, so each channel's outcome is known (apprise's
``notify`` returns one bool for a whole fan-out). Sending never raises: it returns a result.

Channel URLs carry API keys, passwords and phone numbers. They are stored sealed (:func:`seal`,
``core.secretbox``) with their masked form beside them; :func:`masked` is what every log line,
listing, API answer and delivery row shows. It starts from apprise's own privacy URL and then
hides what apprise leaves in view: the query (apprise's defaults, and where a header such as
``+X-Api-Key=…`` or a form field sits), phone numbers and other long digit runs (all but the
last 3 digits), and token-like path segments. Apprise's own log lines are scrubbed the same way,
and of every part of the URLs being sent.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from core import secretbox
from core.secretbox import SecretBox


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    error: str | None = None


class ChannelError(ValueError):
    """The URL is not a channel apprise understands (the message masks secrets)."""


_DIGITS = re.compile(r"\d{6,}")
"""A phone number, an account or chat id: masked to its last 3 digits (ports have at most 5)."""
_TOKENISH = re.compile(r"^(?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9_\-.~]{12,}$")
"""A path segment that looks like a key (letters and digits, 12 or more): first and last character only."""


def _hide_digits(text: str) -> str:
    return _DIGITS.sub(lambda m: "…" + m[0][-3:], text)


def masked(url: str) -> str:
    """The URL with secrets hidden, for logs, listings and the delivery record. A sealed value
    shows the masked form it carries (no key needed)."""
    shown = secretbox.label(url)
    if shown is not None:
        return shown
    try:
        with _hiding(url):
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # noqa: BLE001 - anything odd: fall back to the schema only
        plugin = None
    if not plugin:
        return url.split("://", 1)[0] + "://…" if "://" in url else "(not a URL: it needs a scheme such as json://)"
    scheme, _, rest = str(plugin.url(privacy=True)).partition("://")
    segments = unquote(rest.split("?", 1)[0]).split("/")
    segments = [f"{s[0]}...{s[-1]}" if _TOKENISH.match(s) else s for s in segments]
    return f"{scheme}://{_hide_digits('/'.join(segments)).rstrip('/')}" + ("?…" if "?" in url else "")


def seal(url: str, box: SecretBox) -> str:
    """What is stored for a channel: the URL encrypted, its masked form beside it."""
    return box.seal(url, masked(url))


def seal_all(urls: list[str], box: SecretBox) -> list[str]:
    return [seal(url, box) for url in urls]


def protect(value: str, box: SecretBox) -> str:
    """A stored value sealed with the box's first key: a plain URL (an earlier version's) sealed, a
    sealed one opened and sealed again (key rotation; its masked form made by today's rules)."""
    return seal(box.open(value), box)


def check_url(url: str) -> None:
    """Fail at configuration time, not when a warning is due."""
    with _hiding(url):
        valid = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if not valid:
        raise ChannelError(f"not a valid apprise notification URL: {masked(url)}")


# ------------------------------------------------------------------ apprise's log lines

_sending: dict[object, list[str]] = {}
"""The secret parts of each URL apprise is handling now, which its log lines must not show."""
_sending_lock = threading.Lock()


@contextlib.contextmanager
def _hiding(url: str) -> Iterator[None]:
    """While apprise parses or sends ``url`` (on this thread or its own), its log lines hide the URL's parts."""
    ticket = object()
    with _sending_lock:
        _sending[ticket] = _parts(url)
    try:
        yield
    finally:
        with _sending_lock:
            _sending.pop(ticket, None)


def _parts(url: str) -> list[str]:
    """Every part of a URL that may be a secret (user, password, path segments, query keys and
    values, a host that is not a name), longest first, as written and percent-decoded."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        found = [parts.username or "", parts.password or "", *parts.path.split("/")]
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            found += [key, value]
        if not re.fullmatch(r"[A-Za-z0-9.\-]+", host):  # a phone number as the host (twilio://…@+1555…)
            found.append(host)
    except ValueError:  # not even a URL: hide all of it
        found = [url.split("://", 1)[-1]]
    found += [unquote(p) for p in found]
    return sorted({p for p in found if len(p) >= 4}, key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` without any part of a URL being sent and without long digit runs."""
    with _sending_lock:
        secrets = [p for parts in _sending.values() for p in parts]
    for part in secrets:
        text = text.replace(part, "…")
    return _hide_digits(text)


class _Scrubbed(logging.Filter):
    """Apprise logs targets (phone numbers) at INFO and request URLs (tokens) at DEBUG: scrub them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


apprise.logger.addFilter(_Scrubbed())  # apprise logs through this one logger


def send(url: str, title: str, body: str) -> SendResult:
    """Send one message to one channel (a plain URL: the caller opened it); blocking (run it in a
    thread from async code)."""
    sink = apprise.Apprise()
    with _hiding(url):
        if not sink.add(url):
            return SendResult(False, f"invalid channel URL {masked(url)}")
        try:
            ok = bool(sink.notify(title=title, body=body))
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not crash the worker
            return SendResult(False, scrub(f"{type(exc).__name__}: {exc}"))
    return SendResult(ok, None if ok else f"{masked(url)} refused or did not answer")
