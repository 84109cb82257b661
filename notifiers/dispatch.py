"""From warning events to messages that people act on: the worker's notifier.

:meth:`Dispatcher.handle` records a warning event (every transition, with its cause) and puts
the customer's message in the outbox (``deliveries``): now, or held until the customer's quiet
hours end or their daily budget resets (``notifiers.quiet``); never dropped. :meth:`Dispatcher.flush`
claims what is due and sends it, concurrently and each attempt bounded by a timeout, so a slow
channel does not hold up anyone else's message; a failure is retried with backoff and then
handed to the customer's next channel (``notifiers.delivery``); every attempt is a row.
:meth:`Dispatcher.fire_followups` sends the reminders and the escalations to the insurer's
staff and last step that a warning nobody acknowledged has come due for (``notifiers.followup``).

A loss under way — a warning opened or escalated that is critical and happening now for a risk
the catalogue marks ``loss_under_way`` (``core.risks.opens_claim``: a wet leak sensor, a burst
pipe, smoke, a vehicle's crash) — first opens a first notice of loss (``notifiers.claims``):
stored once per warning (``claim_notices``, its reference derived from the warning id) with
the device's readings of the 10 minutes before, and sent to each of the tenant's ``claims``
contacts; the customer's messages about that warning (reminders too) give its reference. The
claim notice of a delivery is looked up by warning id when it is rendered. An escalation whose
evidence says such a loss is happening now (``core.risks.risk_now``: water on the floor after a
slow-leak or power-cut warning) opens one too, of that risk and with the readings before that
moment; its message to the customer is an outbox entry of its own (``escalate:water_leak``),
so it is sent even when the warning had escalated once already.

Channel URLs arrive sealed (``core.secretbox``: encrypted at rest, their masked form beside them);
the outbox and every log line carry the masked form, and the URL is opened only in :meth:`Dispatcher._send`,
at send time. A channel the key cannot open is a failed attempt whose reason names
``FOREWARN_SECRET_KEY``: retried, then the next channel, never an exception that stops the worker.

Exactly once in effect: a (warning, action, channel) is enqueued once, claimed under a lease,
and a follow-up step is claimed once, so replays and restarts send nothing twice; a replayed
warning finds its claim notice and opens no second one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.contract import WarningEvent
from core.db import Store
from core.lifecycle import NOTIFY_ACTIONS
from core.localtime import DEFAULT_TIMEZONE, zone
from core.risks import RISKS, opens_claim, risk_now
from core.secretbox import SecretBox, SecretKeyError, is_sealed, secret_box
from core.settings import get_settings
from notifiers import channels
from notifiers.claims import CLAIM_ACTION, READINGS_BEFORE_S, ClaimNotice, claim_refs, place, series_of
from notifiers.delivery import (
    LEASE_S,
    RETRY_DELAYS_S,
    SEND_TIMEOUT_S,
    after_failure,
    first_channels,
    reminder_channel,
)
from notifiers.followup import DEFAULT_POLICIES, FollowUpPolicy, Step
from notifiers.quiet import QuietHours, decide
from notifiers.render import Message, render_claim_notice, render_digest, render_staff_alert, render_warning

log = logging.getLogger(__name__)

AckLink = Callable[[str], str | None]
"""warning id → the acknowledgement link to put in the customer's message (or ``None``)."""


@dataclass
class DispatchStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    held: int = 0
    skipped_duplicates: int = 0
    no_customer: int = 0
    followups: int = 0
    claims: int = 0
    last_messages: list[Message] = field(default_factory=list)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _event_of(row: dict[str, Any], now_ms: int) -> WarningEvent:
    """The warning as an event again, as of now (so "in about 3 hours" is true when it is sent)."""
    return WarningEvent(
        warning_id=row["warning_id"],
        tenant=row["tenant"],
        device=row["device"],
        kind=row["kind"] or "",
        risk=row["risk"],
        action="escalate" if _base_action(str(row["action"])) == "escalate" else "open",
        severity=row["severity"],
        score=float(row["score"]),
        at_ms=now_ms,
        opened_at_ms=_ms(row["opened_at"]) or now_ms,
        predicted_loss_at_ms=_ms(row["predicted_loss_at"]),
        evidence=dict(row["evidence"] or {}),
    )


def _outbox_action(event: WarningEvent) -> str:
    """The outbox's action for the customer's message of ``event``: one message per (warning,
    action, channel), so each escalation is keyed by what it says — the loss now happening
    (``escalate:water_leak``) or the level reached (``escalate:critical``) — and a warning that
    escalates twice reaches the customer twice.

    >>> from core.contract import WarningEvent
    >>> e = WarningEvent("w", "t", "d", "home", "slow_leak", "escalate", "critical", 0.9, 0, 0, None)
    >>> _outbox_action(e), _outbox_action(replace(e, evidence={"now": "water_leak"}))
    ('escalate:critical', 'escalate:water_leak')
    >>> _outbox_action(replace(e, action="open"))
    'open'
    """
    if event.action != "escalate":
        return event.action
    now = risk_now(event.risk, event.evidence)
    return f"escalate:{now if now != event.risk else event.severity}"


def _base_action(action: str) -> str:
    """``escalate`` of ``escalate:critical``: the lifecycle action an outbox action stands for."""
    return action.partition(":")[0]


class Dispatcher:
    def __init__(
        self,
        store: Store,
        timezone: str = DEFAULT_TIMEZONE,
        ack_link: AckLink | None = None,
        concurrency: int = 16,
        now: Callable[[], float] = time.time,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
        claim_wait_s: float = 2.0,
        keys: Callable[[], SecretBox] | None = None,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.on_outbox = on_outbox or (lambda: None)
        """Called when a customer's message of a warning is in the outbox: have a sender send it."""
        self.keys = keys or (lambda: secret_box(get_settings(), create=False))
        """Where the key that opens sealed channel URLs comes from; asked when the first one is sent."""
        self._box: SecretBox | None = None
        self.retry_delays_s = retry_delays_s
        self.claim_wait_s = claim_wait_s
        """How long a fresh claim notice waits for the readings of its warning's moment to be stored."""
        self.store = store
        self.timezone = timezone
        self.ack_link = ack_link or (lambda _: None)
        self.stats = DispatchStats()
        self.now = now
        self._slots = asyncio.Semaphore(concurrency)
        self._flushing = asyncio.Lock()
        self._again = False

    # ------------------------------------------------------------------ events

    async def handle(self, event: WarningEvent) -> None:
        """Record the event; for an open or escalate, put the customer's message in the outbox."""
        customer = await self.store.customer_of(event.tenant, event.device)
        changed = await self.store.record_warning(event, customer["id"] if customer else None)
        if event.action not in NOTIFY_ACTIONS:
            return
        now = risk_now(event.risk, event.evidence)
        claim = opens_claim(now, event.severity, event.time_to_loss_s)
        # a loss under way: its first notice of loss is opened at once (the customer's message
        # names its reference) with the readings stored so far, and completed after the message left;
        # an escalation by water on the floor (evidence "now") notifies that loss, at that moment
        lost = event if now == event.risk else replace(event, risk=now, opened_at_ms=event.at_ms)
        notice = await self._open_claim(lost, customer) if claim else None
        if customer is None:
            self.stats.no_customer += 1
            log.warning("warning %s for %s has no customer to notify", event.warning_id, event.key)
        else:
            await self._tell_customer(event, customer, changed)
            self.on_outbox()  # the customer's message leaves now, not after the claim notice is complete
        if notice is not None:
            await self._complete_claim(lost, notice)

    async def _tell_customer(self, event: WarningEvent, customer: dict[str, Any], changed: bool) -> None:
        """The customer's messages of ``event`` in the outbox (held by quiet hours or the budget)."""
        if not changed:
            self.stats.skipped_duplicates += 1  # a replayed record: its messages are in the outbox already
        urls: list[str] = list(customer["notify_urls"] or [])
        tz = zone(customer.get("timezone"), self.timezone)
        windows = [QuietHours.parse(w) for w in customer.get("quiet_hours") or []]
        now_s = self.now()
        sent_today = 0
        if customer.get("daily_budget") is not None and event.severity != "critical":
            midnight = datetime.fromtimestamp(now_s, tz=tz).replace(hour=0, minute=0, second=0, microsecond=0)
            sent_today = await self.store.sent_today(customer["id"], midnight, event.tenant)
        verdict, release_ms = decide(
            event.severity, int(now_s * 1000), tz, windows, sent_today, customer.get("daily_budget")
        )
        held = None if verdict == "send" else verdict.removeprefix("hold_")
        due = None if release_ms is None else datetime.fromtimestamp(release_ms / 1000, tz=UTC)
        action = _outbox_action(event)
        for index in first_channels(event.severity, len(urls)):
            added = await self.store.enqueue(
                event.warning_id,
                action,
                "customer",
                index,
                urls[index],
                channels.masked(urls[index]),
                due_at=due,
                held_reason=held,
            )
            if added and held:
                self.stats.held += 1
                log.info("warning %s held for %s until %s (%s)", event.warning_id, customer["id"], due, held)

    async def _open_claim(self, event: WarningEvent, customer: dict[str, Any] | None) -> dict[str, Any]:
        """The warning's first notice of loss, opened once (a replay finds it) with the device's
        readings stored so far: its ``claim_notices`` row (``ref``, ``readings``)."""
        found = await self.store.claim_notice(event.warning_id)
        if found is not None:
            return found
        start_ms = event.opened_at_ms - int(READINGS_BEFORE_S * 1000)
        rows = await self._readings_until(event, start_ms, wait_s=0.0)
        readings = self._claim_readings(event, start_ms, rows)
        lat, lon = place(event.evidence, readings["series"])
        ref, opened = await self.store.open_claim_notice(
            claim_refs(event.warning_id, event.opened_at_ms, zone(self.timezone)),
            {
                "tenant": event.tenant,
                "device": event.device,
                "kind": event.kind,
                "customer_id": customer["id"] if customer else None,
                "warning_id": event.warning_id,
                "risk": event.risk,
                "severity": event.severity,
                "opened_at": _at(event.opened_at_ms),
                "lat": lat,
                "lon": lon,
                "evidence": event.evidence,
                "readings": readings,
            },
        )
        if opened:
            self.stats.claims += 1
            log.info("claim notice %s opened: %s on %s (warning %s)", ref, event.risk, event.key, event.warning_id)
        return {"ref": ref, "readings": readings}

    def _claim_readings(
        self, event: WarningEvent, start_ms: int, rows: list[tuple[str, datetime, float]]
    ) -> dict[str, Any]:
        end = _at(event.opened_at_ms)
        complete = any(ts >= end for _, ts, _ in rows)
        return {"from_ms": start_ms, "to_ms": event.opened_at_ms, "series": series_of(rows), "complete": complete}

    async def _complete_claim(self, event: WarningEvent, notice: dict[str, Any]) -> str:
        """The notice's readings up to the warning's moment (waiting for the worker to store them,
        see :meth:`_readings_until`), and its messages to the tenant's claims contacts in the
        outbox; its reference."""
        ref = str(notice["ref"])
        kept = dict(notice.get("readings") or {})
        if kept.get("complete") is False:
            start_ms = int(kept.get("from_ms") or event.opened_at_ms - int(READINGS_BEFORE_S * 1000))
            readings = self._claim_readings(event, start_ms, await self._readings_until(event, start_ms))
            lat, lon = place(event.evidence, readings["series"])
            await self.store.complete_claim_notice(event.warning_id, lat, lon, readings)
        contacts = await self.store.contacts(event.tenant, "claims")
        if not contacts:
            log.warning(
                "claim notice %s: tenant %s has no claims contact to send it to"
                " (forewarn tenant contacts %s --role claims --notify URL)",
                ref,
                event.tenant,
                event.tenant,
            )
        for position, url in contacts:
            await self.store.enqueue(event.warning_id, CLAIM_ACTION, "claims", position, url, channels.masked(url))
        return ref

    async def _readings_until(
        self, event: WarningEvent, start_ms: int, wait_s: float | None = None
    ) -> list[tuple[str, datetime, float]]:
        """The device's stored readings from ``start_ms`` to the warning's opening. The worker stores
        readings and scores them side by side: a warning only just decided may come before its own
        readings are in the database, so for up to ``wait_s`` (``claim_wait_s``) the read is
        repeated until the reading of the warning's moment is there."""
        end = _at(event.opened_at_ms)
        wait_s = self.claim_wait_s if wait_s is None else wait_s
        waited = 0.0
        while True:
            rows = await self.store.readings_between(event.tenant, event.device, _at(start_ms), end)
            if waited >= wait_s or any(ts >= end for _, ts, _ in rows):
                return rows
            await asyncio.sleep(0.25)
            waited += 0.25

    # ------------------------------------------------------------------ sending

    async def flush(self) -> int:
        """Send everything due now; returns how many deliveries were handled. Safe to call often:
        a call while a flush runs makes that flush go round once more."""
        if self._flushing.locked():
            self._again = True
            return 0
        handled = 0
        async with self._flushing:
            while True:
                self._again = False
                rows = await self.store.claim_due(limit=64, lease_s=LEASE_S)
                if rows:
                    handled += len(rows)
                    await self._send_all(rows)
                if not rows and not self._again:
                    return handled

    async def _send_all(self, rows: list[dict[str, Any]]) -> None:
        digests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        single: list[dict[str, Any]] = []
        for row in rows:
            if row["held_reason"] == "budget" and row["audience"] == "customer":
                digests[str(row["customer_id"])].append(row)
            else:
                single.append(row)
        jobs = [self._deliver(row) for row in single]
        for group in digests.values():
            jobs.append(self._deliver(group[0]) if len(group) == 1 else self._deliver_digest(group))
        await asyncio.gather(*jobs)

    def _render(self, row: dict[str, Any], claim: ClaimNotice | None = None) -> Message:
        now_ms = int(self.now() * 1000)
        event = _event_of(row, now_ms)
        tz_name = str(zone(row.get("timezone"), self.timezone))
        locale = row.get("locale") or "zh-CN"
        name = row.get("customer_name") or ""
        if row["audience"] == "claims":
            if claim is None:
                raise ValueError(f"warning {event.warning_id} has no claim notice")
            return render_claim_notice(claim, locale, tz_name)
        if row["audience"] == "customer":
            return render_warning(
                event,
                locale,
                name,
                tz_name,
                ack_url=self.ack_link(event.warning_id),
                claim_ref=claim.ref if claim else None,
                reminder=int(row["reminder"]),
            )
        notified = _ms(row.get("notified_at")) or event.opened_at_ms
        minutes = max(0, (now_ms - notified) // 60_000)
        return render_staff_alert(event, name, str(row.get("customer_id") or ""), int(minutes), locale, tz_name)

    async def _deliver(self, row: dict[str, Any]) -> None:
        url = row.get("url")
        if not url:  # the customer or contact was removed since: nothing to send to
            await self.store.record_attempt(row["id"], False, "the channel no longer exists", 0.0)
            self.stats.failed += 1
            return
        try:
            message = self._render(row, await self._claim_of(row))
        except Exception as exc:  # noqa: BLE001 - a broken row must not stop the others
            log.exception("cannot render delivery %s", row["id"])
            await self.store.record_attempt(row["id"], False, f"cannot render: {exc}", 0.0)
            self.stats.failed += 1
            return
        ok, error, seconds = await self._send(url, message)
        await self._after_attempt(row, ok, error, seconds)
        if ok:
            self.stats.last_messages = [*self.stats.last_messages[-19:], message]

    async def _claim_of(self, row: dict[str, Any]) -> ClaimNotice | None:
        """The claim notice of a delivery's warning (only a loss under way, or a warning escalated by
        one, may have one)."""
        risk = RISKS.get(risk_now(str(row["risk"]), row.get("evidence") or {}))
        if risk is None or not risk.loss_under_way or row["audience"] not in ("customer", "claims"):
            return None
        found = await self.store.claim_notice(str(row["warning_id"]))
        return None if found is None else ClaimNotice.from_row(found, str(row.get("customer_name") or ""))

    async def _deliver_digest(self, group: list[dict[str, Any]]) -> None:
        first = group[0]
        now_ms = int(self.now() * 1000)
        events = [_event_of(row, now_ms) for row in group]
        tz_name = str(zone(first.get("timezone"), self.timezone))
        message = render_digest(events, first.get("locale") or "zh-CN", first.get("customer_name") or "", tz_name)
        ok, error, seconds = await self._send(str(first.get("url") or ""), message)
        await self._after_attempt(first, ok, error, seconds)
        if ok:
            await self.store.settle_held([row["id"] for row in group[1:]], f"in the digest of delivery {first['id']}")
            for row in group:
                if _base_action(row["action"]) in NOTIFY_ACTIONS:
                    await self._notified(row)

    def _open(self, stored: str) -> str:
        """The channel URL a stored value holds: the one place a sealed URL is decrypted, at send time."""
        if not is_sealed(stored):
            return stored  # an earlier version's plain URL (``forewarn db migrate`` seals it)
        if self._box is None:
            self._box = self.keys()
        return self._box.open(stored)

    async def _send(self, stored: str, message: Message) -> tuple[bool, str | None, float]:
        try:
            url = self._open(stored)
        except SecretKeyError as exc:  # recorded as a failed attempt with the reason; the worker goes on
            return False, str(exc), 0.0
        async with self._slots:
            t0 = time.monotonic()
            try:
                result = await asyncio.wait_for(
                    asyncio.to_thread(channels.send, url, message.title, message.body), SEND_TIMEOUT_S
                )
            except TimeoutError:
                return False, f"no answer within {SEND_TIMEOUT_S:.0f} s", time.monotonic() - t0
            return result.ok, result.error, time.monotonic() - t0

    async def _after_attempt(self, row: dict[str, Any], ok: bool, error: str | None, seconds: float) -> None:
        shown = row["channel"]
        if ok:
            await self.store.record_attempt(row["id"], True, None, seconds)
            self.stats.sent += 1
            log.info("warning %s (%s, %s) sent to %s", row["warning_id"], row["action"], row["audience"], shown)
            if row["audience"] == "customer" and _base_action(row["action"]) in NOTIFY_ACTIONS:
                await self._notified(row)
            return
        attempts = int(row["attempts"]) + 1
        customer_channels = int(row["channels"]) if row["audience"] == "customer" else 0
        fanned_out = row["audience"] != "customer" or row["severity"] == "critical"
        then = after_failure(attempts, int(row["channel_index"]), customer_channels, fanned_out, self.retry_delays_s)
        if then.then == "retry":
            self.stats.retried += 1
            await self.store.record_attempt(row["id"], False, error, seconds, retry_in_s=then.delay_s)
            log.warning("warning %s to %s failed (%s); retry in %.0f s", row["warning_id"], shown, error, then.delay_s)
            return
        await self.store.record_attempt(row["id"], False, error, seconds)
        self.stats.failed += 1
        if then.then == "next_channel" and then.channel is not None:
            customer = await self.store.customer_of(row["tenant"], row["device"])
            urls = list(customer["notify_urls"] or []) if customer else []
            if then.channel < len(urls):
                log.warning(
                    "warning %s: %s gave up after %d attempts; trying the next channel",
                    row["warning_id"],
                    shown,
                    attempts,
                )
                await self.store.enqueue(
                    row["warning_id"],
                    row["action"],
                    "customer",
                    then.channel,
                    urls[then.channel],
                    channels.masked(urls[then.channel]),
                    reminder=int(row["reminder"]),
                )
                return
        log.error("warning %s to %s failed for good after %d attempts: %s", row["warning_id"], shown, attempts, error)

    async def _notified(self, row: dict[str, Any]) -> None:
        """The customer has the message: the warning is notified, and its follow-ups are set."""
        status = await self.store.advance(row["warning_id"], "notified", f"delivery:{row['id']}")
        if status is None or row["action"] != "open":
            return
        policy = await self._policy(row["tenant"], row["severity"])
        sent_at = datetime.fromtimestamp(self.now(), tz=UTC)
        await self.store.schedule_followups(
            row["warning_id"],
            [(s.action, s.kind, s.next_channel, sent_at + timedelta(seconds=s.after_s)) for s in policy.steps],
        )

    async def _policy(self, tenant: str, severity: str) -> FollowUpPolicy:
        own = await self.store.followup_steps(tenant, severity)
        if own is None:
            return DEFAULT_POLICIES.get(severity, FollowUpPolicy(severity, ()))
        return FollowUpPolicy(
            severity, tuple(Step(float(s["after_s"]), s["kind"], bool(s.get("next_channel"))) for s in own)
        )

    # ------------------------------------------------------------------ follow-ups

    async def fire_followups(self) -> int:
        """Claim the follow-up steps due now (each once) and put their messages in the outbox."""
        fired = await self.store.claim_followups()
        for step in fired:
            wid, action = step["warning_id"], step["action"]
            if step["warning_status"] not in ("notified", "escalated", "open"):
                await self.store.followup_outcome(wid, action, f"skipped: {step['warning_status']}")
                continue
            self.stats.followups += 1
            if step["kind"] == "remind":
                urls = list(step["notify_urls"] or [])
                if not urls:
                    await self.store.followup_outcome(wid, action, "skipped: no customer channel")
                    continue
                used = int(step["channel_used"] or 0)
                index = reminder_channel(used, len(urls), bool(step["next_channel"]))
                await self.store.enqueue(
                    wid, action, "customer", index, urls[index], channels.masked(urls[index]), reminder=1
                )
                await self.store.followup_outcome(wid, action, "reminder queued")
                continue
            contacts = await self.store.contacts(step["tenant"], step["kind"])
            if not contacts:
                log.warning("warning %s: tenant %s has no %s contact for %s", wid, step["tenant"], step["kind"], action)
                await self.store.followup_outcome(wid, action, f"skipped: no {step['kind']} contact")
                continue
            for position, url in contacts:
                await self.store.enqueue(wid, action, step["kind"], position, url, channels.masked(url))
            if step["kind"] == "staff":
                await self.store.advance(wid, "escalate", f"followup:{action}", "not acknowledged: staff notified")
            await self.store.followup_outcome(wid, action, f"{len(contacts)} {step['kind']} message(s) queued")
        return len(fired)
