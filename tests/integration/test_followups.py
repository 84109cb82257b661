"""Warnings people act on, on the real worker: the acknowledgement link, reminders and escalation to
the insurer's staff, quiet hours, retries with fallback to the next channel, outcomes.

Warning events are put on ``forewarn.warnings`` directly (the worker's notifier consumes them as
it does the decisions' events), so each scenario picks its severity and timing exactly.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core import db
from core.bus import Producer
from core.contract import TOPIC_WARNINGS, WarningEvent, warning_id
from core.localtime import zone
from forewarn.api import create_app
from forewarn.cli import app as cli

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LINK = re.compile(r"http://forewarn\.test/a/([A-Za-z0-9_-]{46})")


def poll(what: str, probe, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(0.5)
        value = probe()
    assert value, f"timed out waiting for {what}"
    return value


def publish(services, event: WarningEvent) -> None:  # type: ignore[no-untyped-def]
    async def send() -> None:
        producer = Producer(services.settings.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC_WARNINGS, event.key, orjson.dumps(event.to_json()))
        finally:
            await producer.stop()

    asyncio.run(send())


def a_warning(tenant: str, device: str, risk: str, severity: str, kind: str = "home") -> WarningEvent:
    now = int(time.time() * 1000)
    return WarningEvent(
        warning_id=warning_id(tenant, device, risk, now),
        tenant=tenant,
        device=device,
        kind=kind,
        risk=risk,
        action="open",
        severity=severity,
        score=0.95,
        at_ms=now,
        opened_at_ms=now,
        predicted_loss_at_ms=now + (0 if risk == "water_leak" else 3 * 3600_000),
        evidence={"water_leak": True} if risk == "water_leak" else {"pipe_temp_c": 1.2, "pipe_trend_c_per_h": -0.8},
    )


@pytest.fixture
def desk(services, monkeypatch):  # type: ignore[no-untyped-def]
    """The CLI, pointed at the test services."""
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: services.settings)
    monkeypatch.setattr("forewarn.desk.get_settings", lambda: services.settings)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def register(services, sink, tenant: str, customer: str, device: str, channels: list[str]) -> None:  # type: ignore[no-untyped-def]
    db.add_customer(services.database_url, customer, "王女士", "zh-CN", [sink.url(c) for c in channels], tenant=tenant)
    db.add_device(services.database_url, device, tenant, customer, "home")


def to(sink, path: str) -> list:  # type: ignore[no-untyped-def]
    return [d for d in sink.received if d.path.strip("/") == path]


def test_an_ignored_critical_warning_reaches_staff_and_the_customers_link_stops_it(
    services, sink, worker_process, desk
) -> None:  # type: ignore[no-untyped-def]
    url = services.database_url
    tag = uuid.uuid4().hex[:6]
    tenant, customer, device = f"desk-{tag}", f"wang-{tag}", f"home-{tag}"
    register(services, sink, tenant, customer, device, [f"{tag}/phone"])
    result = desk(
        "tenant",
        "policy",
        tenant,
        "--severity",
        "critical",
        "--step",
        "remind:2s",
        "--step",
        "staff:4s",
        "--step",
        "final:20s",
    )
    assert result.exit_code == 0, result.output
    assert "remind after" in result.output and "staff after" in result.output
    result = desk("tenant", "contacts", tenant, "--role", "staff", "--notify", sink.url(f"{tag}/staff"))
    assert result.exit_code == 0, result.output
    result = desk("tenant", "contacts", tenant, "--role", "final", "--notify", sink.url(f"{tag}/final"))
    assert result.exit_code == 0, result.output

    event = a_warning(tenant, device, "water_leak", "critical")
    publish(services, event)

    first = poll("the warning on the customer's phone", lambda: to(sink, f"{tag}/phone"), 30)[0]
    token = LINK.search(first.body["message"]).group(1)  # every message carries its acknowledgement link
    reminder = poll("a reminder", lambda: to(sink, f"{tag}/phone")[1:], 20)[0]
    assert reminder.body["title"] != first.body["title"], "a reminder says it is one"
    staff = poll("the insurer's staff alerted", lambda: to(sink, f"{tag}/staff"), 20)[0]
    assert device in staff.body["message"] or "王女士" in staff.body["message"]
    assert db.query(url, "SELECT status FROM warnings WHERE id = %s", (event.warning_id,))[0]["status"] == "escalated"

    api = TestClient(create_app(services.settings))
    page = api.get(f"/a/{token}")
    assert page.status_code == 200 and "<form" in page.text, "opening the link shows the warning and a button"
    assert db.query(url, "SELECT status FROM warnings WHERE id = %s", (event.warning_id,))[0]["status"] == "escalated"
    forged = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    assert api.post(f"/a/{forged}").status_code == 403
    done = api.post(f"/a/{token}")
    assert done.status_code == 200 and "已确认" in done.text
    replay = api.post(f"/a/{token}")
    assert replay.status_code == 409 and "used already" in replay.text

    row = db.query(url, "SELECT status, acknowledged_by FROM warnings WHERE id = %s", (event.warning_id,))[0]
    assert row == {"status": "acknowledged", "acknowledged_by": "customer:link"}
    time.sleep(22)  # the final step comes due: an acknowledged warning goes no further
    assert to(sink, f"{tag}/final") == []
    detail = db.warning_detail(url, event.warning_id)
    path = [(t["event"], t["to_status"], t["actor"].split(":")[0]) for t in detail["transitions"]]
    assert path == [
        ("open", "open", "worker"),
        ("notified", "notified", "delivery"),
        ("escalate", "escalated", "followup"),
        ("acknowledge", "acknowledged", "customer"),
    ]
    fired = {f["action"]: f["outcome"] for f in detail["followups"]}
    assert fired["final@20"] == "skipped: acknowledged"
    assert sum(1 for d in detail["deliveries"] if d["audience"] == "staff") == 1, "each step is sent once"

    result = desk("warning", "outcome", event.warning_id, "loss_avoided", "--by", "staff:li")
    assert result.exit_code == 0, result.output
    result = desk("warning", "outcome", str(uuid.uuid4()), "loss_avoided", "--by", "staff:li")
    assert result.exit_code == 2 and "no warning" in result.output
    result = desk("warning", "outcome", event.warning_id, "loss_avoided", "--by", "x", "--claim-cny", "5")
    assert result.exit_code == 2 and "loss_occurred only" in result.output
    assert db.warning_detail(url, event.warning_id)["outcome"]["outcome"] == "loss_avoided", "a refusal changes nothing"


def test_a_failing_channel_is_retried_then_the_next_channel_gets_the_message(services, sink, worker_process) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    tenant, customer, device = f"retry-{tag}", f"li-{tag}", f"home-{tag}"
    register(services, sink, tenant, customer, device, [f"broken/{tag}", f"{tag}/sms"])  # the sink fails /broken
    event = a_warning(tenant, device, "freeze_risk", "warning")
    publish(services, event)
    poll("the message on the second channel", lambda: to(sink, f"{tag}/sms"), 30)
    detail = db.warning_detail(services.database_url, event.warning_id)
    by_channel = {d["channel"].split("/")[-2]: d for d in detail["deliveries"]}
    assert by_channel["broken"]["status"] == "failed" and by_channel["broken"]["attempts"] == 3  # 1 + 2 retries
    assert sum(1 for a in detail["attempts"] if not a["ok"]) == 3 and sum(1 for a in detail["attempts"] if a["ok"]) == 1


def test_quiet_hours_hold_a_non_critical_warning_and_let_a_critical_one_through(
    services, sink, worker_process, desk
) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    tenant, customer, device = f"quiet-{tag}", f"zhao-{tag}", f"home-{tag}"
    register(services, sink, tenant, customer, device, [f"{tag}/phone"])
    now = datetime.now(zone("Asia/Shanghai"))
    window = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    result = desk("customer", "prefs", customer, "--tenant", tenant, "--quiet", window)
    assert result.exit_code == 0, result.output
    overlapping = desk(
        "customer", "prefs", customer, "--tenant", tenant, "--quiet", "22:00-07:00", "--quiet", "06:00-08:00"
    )
    assert overlapping.exit_code == 2 and "overlap" in overlapping.output

    calm = a_warning(tenant, device, "freeze_risk", "warning")
    publish(services, calm)
    held = poll(
        "the warning held for quiet hours",
        lambda: db.query(
            services.database_url,
            "SELECT status, held_reason, due_at FROM deliveries WHERE warning_id = %s",
            (calm.warning_id,),
        ),
        30,
    )[0]
    assert held["status"] == "held" and held["held_reason"] == "quiet"
    assert held["due_at"] > datetime.now(zone("UTC")) + timedelta(minutes=55), "it waits until quiet hours end"
    urgent = a_warning(tenant, device, "water_leak", "critical")
    publish(services, urgent)
    poll("the critical warning despite quiet hours", lambda: to(sink, f"{tag}/phone"), 30)
    assert len(to(sink, f"{tag}/phone")) == 1, "only the critical one went out"
