"""Delivery through apprise: a channel is an apprise URL. The only apprise module.

One :class:`apprise.Apprise` per URL, so each channel's outcome is known (apprise's
``notify`` returns one bool for a whole fan-out). Sending never raises: it returns a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import apprise


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    error: str | None = None


class ChannelError(ValueError):
    """The URL is not a channel apprise understands (the message masks secrets)."""


def masked(url: str) -> str:
    """The URL with secrets hidden, for logs and the delivery record."""
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # noqa: BLE001 - anything odd: fall back to the schema only
        plugin = None
    if not plugin:
        return url.split("://", 1)[0] + "://…" if "://" in url else "(not a URL: it needs a scheme such as json://)"
    return str(plugin.url(privacy=True))


def check_url(url: str) -> None:
    """Fail at configuration time, not when a warning is due."""
    if not apprise.Apprise.instantiate(url, suppress_exceptions=True):
        raise ChannelError(f"not a valid apprise notification URL: {masked(url)}")


def send(url: str, title: str, body: str) -> SendResult:
    """Send one message to one channel; blocking (run it in a thread from async code)."""
    sink = apprise.Apprise()
    if not sink.add(url):
        return SendResult(False, f"invalid channel URL {masked(url)}")
    try:
        ok = bool(sink.notify(title=title, body=body))
    except Exception as exc:  # noqa: BLE001 - a plugin bug must not crash the worker
        return SendResult(False, f"{type(exc).__name__}: {exc}")
    return SendResult(ok, None if ok else f"{masked(url)} refused or did not answer")
