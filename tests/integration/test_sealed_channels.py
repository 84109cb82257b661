"""Channel URLs at rest on the real PostgreSQL and the real worker: what the CLI and the API store is
sealed (the raw column holds no part of the URL), every listing and delivery row shows it masked,
and the worker still delivers to it. Plain URLs of an earlier version are delivered too and sealed
by ``forewarn db encrypt-channels``; a wrong key there changes nothing and says which setting.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core import db
from core.bus import Producer
from core.contract import TOPIC_WARNINGS, WarningEvent, warning_id
from core.secretbox import new_key
from forewarn.api import create_app
from forewarn.cli import app as cli
from forewarn.sink import HttpSink

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PHONE = "13800138000"


def poll(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(0.5)
        value = probe()
    assert value, f"timed out waiting for {what}"
    return value


REGISTRY_MISS_S = 2.5
"""The worker re-reads the device registry for an unknown device at most every 2 s
(streams.app.REGISTRY_MISS_REFRESH_S): a device added just now is waited for that long."""


def warn(services: Any, tenant: str, device: str) -> WarningEvent:
    """A freeze warning for the device, put on the warnings topic the worker's notifier reads."""
    time.sleep(REGISTRY_MISS_S)
    now = int(time.time() * 1000)
    event = WarningEvent(
        warning_id=warning_id(tenant, device, "freeze_risk", now),
        tenant=tenant,
        device=device,
        kind="home",
        risk="freeze_risk",
        action="open",
        severity="warning",
        score=0.95,
        at_ms=now,
        opened_at_ms=now,
        predicted_loss_at_ms=now + 3 * 3600_000,
        evidence={"pipe_temp_c": 1.2, "pipe_trend_c_per_h": -0.8},
    )

    async def send() -> None:
        producer = Producer(services.settings.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC_WARNINGS, event.key, orjson.dumps(event.to_json()))
        finally:
            await producer.stop()

    asyncio.run(send())
    return event


@pytest.fixture
def run(services, monkeypatch):  # type: ignore[no-untyped-def]
    """The CLI, pointed at the test services (and their FOREWARN_SECRET_KEY)."""
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: services.settings)
    monkeypatch.setattr("forewarn.desk.get_settings", lambda: services.settings)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def channel_of(sink: HttpSink, tag: str, secret: str) -> str:
    """A sink URL whose path has a phone number and whose query a token apprise puts in the JSON body."""
    return f"{sink.url(f'{tag}/{PHONE}')}?:token={secret}"


def raw(services: Any, statement: str, *params: Any) -> list[dict[str, Any]]:
    return db.query(services.database_url, statement, params)


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} is readable in {text!r}"


def test_a_customer_added_on_the_cli_is_stored_sealed_listed_masked_and_still_delivered_to(
    services, sink, worker_process, run
) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    tenant, customer, device, secret = f"seal-{tag}", f"lin-{tag}", f"home-{tag}", f"s3cret-{tag}"
    url = channel_of(sink, tag, secret)

    added = run("customer", "add", customer, "--tenant", tenant, "--name", "Lin", "--locale", "en", "--notify", url)
    assert added.exit_code == 0, added.output
    assert_hidden(added.output, PHONE, secret)
    (stored,) = raw(services, "SELECT notify_urls FROM customers WHERE tenant = %s AND id = %s", tenant, customer)
    (value,) = stored["notify_urls"]
    assert value.startswith("sealed:v1:"), value
    assert_hidden(value, PHONE, secret, url)  # the masked form beside the ciphertext keeps the path only

    db.add_device(services.database_url, device, tenant, customer, "home")
    event = warn(services, tenant, device)
    poll("the message on the customer's phone", lambda: [d for d in sink.received if d.path == f"/{tag}/{PHONE}"], 60)
    (got,) = [d for d in sink.received if d.path == f"/{tag}/{PHONE}"]
    assert got.body.get("token") == secret, "the worker opened the real URL, query and all"

    (row,) = raw(
        services, "SELECT channel, channel_key, status FROM deliveries WHERE warning_id = %s", event.warning_id
    )
    assert row["status"] == "sent"
    assert_hidden(row["channel"], PHONE, secret)
    assert row["channel_key"] != hashlib.sha256(url.encode()).hexdigest(), "no hash of the URL to guess against"
    shown = run("warning", "show", event.warning_id)
    assert shown.exit_code == 0, shown.output
    assert "sent" in shown.output
    assert_hidden(shown.output, PHONE, secret)

    contacts = run("tenant", "contacts", tenant, "--role", "staff", "--notify", url)
    assert contacts.exit_code == 0, contacts.output
    assert_hidden(contacts.output, PHONE, secret)
    assert "json://" in contacts.output
    (contact,) = raw(services, "SELECT url FROM tenant_contacts WHERE tenant = %s", tenant)
    assert contact["url"].startswith("sealed:v1:")
    assert_hidden(contact["url"], PHONE, secret, url)


def test_customers_written_through_the_api_are_sealed_and_answered_masked(services, sink, worker_process) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    tenant, secret = f"api-{tag}", f"s3cret-{tag}"
    url = channel_of(sink, tag, secret)
    db.add_tenant(services.database_url, tenant, f"Insurer {tenant}")
    key = db.create_api_key(services.database_url, tenant, "admin", "admin desk")[1]
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(services.settings)) as api:
        made = api.post("/v1/customers", headers=headers, json={"id": "wang", "name": "Wang", "notify": [url]})
        assert made.status_code == 201, made.text
        changed = api.patch("/v1/customers/wang", headers=headers, json={"notify": [url, url + "x"]})
        assert changed.status_code == 200, changed.text
        csv = f"id,name,notify\nzhou,Zhou,{url}\n".encode()
        imported = api.post("/v1/customers/import", headers=headers, content=csv)
        assert imported.status_code == 200 and imported.json()["created"] == 1, imported.text
        listed = api.get("/v1/customers", headers=headers)
        one = api.get("/v1/customers/wang", headers=headers)
        device = api.post("/v1/devices", headers=headers, json={"id": "home-1", "customer": "wang", "kind": "home"})
        assert device.status_code == 201, device.text
    for answer in (made, changed, imported, listed, one):
        assert_hidden(answer.text, PHONE, secret)
    assert [len(c["notify"]) for c in listed.json()["items"]] == [2, 1]
    assert "json://" in one.json()["notify"][0]

    rows = raw(services, "SELECT id, notify_urls FROM customers WHERE tenant = %s ORDER BY id", tenant)
    assert [len(r["notify_urls"]) for r in rows] == [2, 1]
    for r in rows:
        for value in r["notify_urls"]:
            assert value.startswith("sealed:v1:")
            assert_hidden(value, PHONE, secret, url)

    warn(services, tenant, "home-1")
    poll("the API-made customer's message", lambda: [d for d in sink.received if d.path == f"/{tag}/{PHONE}"], 60)


def test_plain_urls_of_an_earlier_version_are_delivered_then_sealed_by_encrypt_channels(
    services, sink, worker_process, run, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    tenant, customer, device, secret = f"old-{tag}", f"li-{tag}", f"home-{tag}", f"s3cret-{tag}"
    url = channel_of(sink, tag, secret)
    db.add_customer(services.database_url, customer, "Li", "en", [url], tenant=tenant)  # as an earlier version did
    db.set_contacts(services.database_url, tenant, "claims", [url])
    db.add_device(services.database_url, device, tenant, customer, "home")
    warn(services, tenant, device)
    poll("the message to the plain URL", lambda: [d for d in sink.received if d.path == f"/{tag}/{PHONE}"], 60)

    def stored() -> list[str]:
        rows = raw(services, "SELECT notify_urls FROM customers WHERE tenant = %s", tenant)
        contacts = raw(services, "SELECT url FROM tenant_contacts WHERE tenant = %s", tenant)
        return [*rows[0]["notify_urls"], *(c["url"] for c in contacts)]

    assert stored() == [url, url]

    # a key that is not the one the channels are sealed with: refused, nothing changed, the setting named
    sealed_elsewhere = run("db", "encrypt-channels")
    assert sealed_elsewhere.exit_code == 0, sealed_elsewhere.output
    assert all(v.startswith("sealed:v1:") for v in stored())
    before = stored()
    wrong = services.settings.model_copy(update={"secret_key": new_key()})
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: wrong)
    refused = CliRunner().invoke(cli, ["db", "encrypt-channels"])
    assert refused.exit_code == 2 and "FOREWARN_SECRET_KEY" in refused.output, refused.output
    assert stored() == before, "all or nothing"

    for value in stored():
        assert_hidden(value, PHONE, secret, url)
    sink.received.clear()
    warn(services, tenant, device)
    poll("the message to the now sealed URL", lambda: [d for d in sink.received if d.path == f"/{tag}/{PHONE}"], 60)
