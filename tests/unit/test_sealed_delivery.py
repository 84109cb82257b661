"""The dispatcher opens a sealed channel URL at send time and nowhere else: with the right key the
message arrives; with a wrong or missing key the delivery is recorded as failed with a reason that
names FOREWARN_SECRET_KEY, and the dispatcher goes on (no exception, no crash loop)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.contract import WarningEvent, warning_id
from core.db import Store
from core.secretbox import SecretBox, SecretKeyError, new_key, secret_box
from core.settings import Settings
from forewarn.sink import HttpSink
from notifiers import channels
from notifiers.dispatch import Dispatcher

NOW_MS = 1_763_700_000_000


class OutboxStore(Store):
    """The Store calls of one warning's delivery, in memory (its pool is never opened)."""

    def __init__(self, notify_urls: list[str]) -> None:
        super().__init__("postgresql://in-memory.invalid/unused")
        self.customer = {"id": "c-lin", "name": "Lin", "locale": "en", "notify_urls": notify_urls}
        self.rows: list[dict[str, Any]] = []
        self.attempts: list[tuple[int, bool, str | None]] = []
        self.event: WarningEvent | None = None

    async def customer_of(self, tenant: str, device: str) -> dict[str, Any] | None:
        return self.customer

    async def record_warning(self, event: Any, customer_id: str | None) -> bool:
        self.event = event
        return True

    async def enqueue(
        self,
        warning_id: str,
        action: str,
        audience: str,
        channel_index: int,
        url: str,
        masked_url: str,
        *,
        due_at: datetime | None = None,
        held_reason: str | None = None,
        reminder: int = 0,
    ) -> bool:
        self.rows.append(
            {
                "id": len(self.rows) + 1,
                "warning_id": warning_id,
                "action": action,
                "audience": audience,
                "channel_index": channel_index,
                "channel": masked_url,
                "url": url,
                "attempts": 0,
                "held_reason": held_reason,
                "reminder": reminder,
                "status": "pending",
            }
        )
        return True

    async def claim_due(self, limit: int = 50, lease_s: float = 120.0) -> list[dict[str, Any]]:
        assert self.event is not None
        due = [row for row in self.rows if row["status"] == "pending"]
        for row in due:
            row["status"] = "sending"
        e = self.event
        return [
            {
                **row,
                "tenant": e.tenant,
                "device": e.device,
                "kind": e.kind,
                "risk": e.risk,
                "severity": e.severity,
                "score": e.score,
                "evidence": e.evidence,
                "opened_at": datetime.fromtimestamp(e.opened_at_ms / 1000, UTC),
                "predicted_loss_at": None,
                "notified_at": None,
                "customer_id": self.customer["id"],
                "customer_name": self.customer["name"],
                "locale": "en",
                "timezone": None,
                "channels": len(self.customer["notify_urls"]),
            }
            for row in due
        ]

    async def record_attempt(
        self, delivery_id: int, ok: bool, error: str | None, seconds: float, retry_in_s: float | None = None
    ) -> None:
        row = self.rows[delivery_id - 1]
        row["attempts"] += 1
        row["status"] = "sent" if ok else ("pending" if retry_in_s is not None else "failed")
        row["error"] = error
        self.attempts.append((delivery_id, ok, error))

    async def advance(self, warning_id: str, event: Any, actor: str, note: str | None = None) -> str | None:
        return "notified"

    async def followup_steps(self, tenant: str, severity: str) -> list[dict[str, Any]] | None:
        return []

    async def schedule_followups(self, warning_id: str, steps: Iterable[tuple[str, str, bool, datetime]]) -> int:
        return 0


def freeze_warning() -> WarningEvent:
    return WarningEvent(
        warning_id=warning_id("acme", "lin-home", "freeze_risk", NOW_MS),
        tenant="acme",
        device="lin-home",
        kind="home",
        risk="freeze_risk",
        action="open",
        severity="warning",
        score=0.9,
        at_ms=NOW_MS,
        opened_at_ms=NOW_MS,
        predicted_loss_at_ms=None,
        evidence={"temp_c": 1.5},
    )


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    phone = HttpSink().start()
    yield phone
    phone.stop()


async def deliver(store: OutboxStore, keys: Any) -> Dispatcher:
    dispatcher = Dispatcher(store, retry_delays_s=(0.0, 0.0), keys=keys)
    await dispatcher.handle(freeze_warning())
    await dispatcher.flush()
    return dispatcher


async def test_a_sealed_channel_is_opened_at_send_time_and_the_message_arrives(sink: HttpSink) -> None:
    box = SecretBox([new_key()])
    url = sink.url("lin/13800138000") + "?:token=s3cretT0kenXYZ"  # a field apprise adds to the JSON body
    store = OutboxStore([channels.seal(url, box)])
    dispatcher = await deliver(store, lambda: box)
    assert [d.path for d in sink.received] == ["/lin/13800138000"]
    assert sink.received[0].body.get("token") == "s3cretT0kenXYZ", "the real URL (with its query) was used"
    assert dispatcher.stats.sent == 1
    (row,) = store.rows
    assert row["status"] == "sent"
    assert row["url"].startswith("sealed:v1:"), "the outbox holds the sealed value, not the URL"
    for secret in ("13800138000", "s3cretT0kenXYZ"):
        assert secret not in row["channel"] and secret not in row["url"]


async def test_a_wrong_key_records_the_delivery_as_failed_naming_the_setting(sink: HttpSink) -> None:
    store = OutboxStore([channels.seal(sink.url("lin"), SecretBox([new_key()]))])
    dispatcher = await deliver(store, lambda: SecretBox([new_key()]))
    assert sink.received == []
    (row,) = store.rows
    assert row["status"] == "failed" and row["attempts"] == 3, "tried, retried, then given up: not lost silently"
    assert "FOREWARN_SECRET_KEY" in row["error"]
    assert dispatcher.stats.failed == 1


async def test_no_key_at_all_records_the_delivery_as_failed_naming_the_setting(sink: HttpSink, tmp_path: Path) -> None:
    store = OutboxStore([channels.seal(sink.url("lin"), SecretBox([new_key()]))])
    settings = Settings(secret_key="", state_dir=str(tmp_path))
    await deliver(store, lambda: secret_box(settings, create=False))
    (row,) = store.rows
    assert row["status"] == "failed" and "FOREWARN_SECRET_KEY is empty" in row["error"]
    assert not (tmp_path / "secret-key").exists(), "the dispatcher makes no key that would open nothing"


async def test_a_plain_url_of_an_earlier_version_is_still_delivered_without_any_key(sink: HttpSink) -> None:
    def no_key() -> SecretBox:
        raise SecretKeyError("not needed for a plain URL")

    store = OutboxStore([sink.url("old")])
    await deliver(store, no_key)
    assert [d.path for d in sink.received] == ["/old"] and store.rows[0]["status"] == "sent"
