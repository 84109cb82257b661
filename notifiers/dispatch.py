"""Hand a warning event to the customer's channels and record every attempt.

Idempotent: a (warning, action, channel) already sent is not sent again, so a replayed
warning record reaches nobody twice. A failed channel is recorded as failed and the next one
is tried; nothing here raises for a channel's sake.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from core.contract import WarningEvent
from core.db import Store
from core.lifecycle import NOTIFY_ACTIONS
from notifiers import channels
from notifiers.render import Message, render_warning

log = logging.getLogger(__name__)


@dataclass
class DispatchStats:
    sent: int = 0
    failed: int = 0
    skipped_duplicates: int = 0
    no_customer: int = 0
    last_messages: list[Message] = field(default_factory=list)


class Dispatcher:
    def __init__(self, store: Store, timezone: str = "Asia/Shanghai") -> None:
        self.store = store
        self.timezone = timezone
        self.stats = DispatchStats()

    async def handle(self, event: WarningEvent) -> None:
        customer = await self.store.customer_of(event.tenant, event.device)
        await self.store.record_warning(event, customer["id"] if customer else None)
        if event.action not in NOTIFY_ACTIONS:
            return
        if customer is None:
            self.stats.no_customer += 1
            log.warning("warning %s for %s has no customer to notify", event.warning_id, event.key)
            return
        message = render_warning(event, customer["locale"], customer["name"], self.timezone)
        for url in customer["notify_urls"]:
            shown = channels.masked(url)
            if not await self.store.claim_delivery(event.warning_id, event.action, url, shown):
                self.stats.skipped_duplicates += 1
                continue
            result = await asyncio.to_thread(channels.send, url, message.title, message.body)
            await self.store.record_delivery(event.warning_id, event.action, url, result.ok, result.error)
            if result.ok:
                self.stats.sent += 1
                log.info("warning %s (%s) sent to %s", event.warning_id, event.risk, shown)
            else:
                self.stats.failed += 1
                log.warning("warning %s to %s failed: %s", event.warning_id, shown, result.error)
