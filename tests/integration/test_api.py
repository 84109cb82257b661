"""The insurer's desk over HTTP (``forewarn api``, ``/v1``) on the real PostgreSQL: two insurers
side by side, keys and roles, CSV imports, warnings and the staff's actions, a device's
readings, the portfolio, rejected telemetry, and no 500 for anything a caller can send.

Each test makes tenants of its own (a random tag), so the tests share the session's database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core import db
from core.bus import Producer
from core.contract import TOPIC_REJECTS, Reading, ReadingsBatch, RejectRecord, reject_record
from forewarn.api import create_app
from forewarn.cli import app as cli

pytestmark = pytest.mark.integration

NOTIFY = "json://127.0.0.1:9/phone"


@pytest.fixture(scope="module")
def api(services) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(create_app(services.settings)) as client:  # raises on a 500: a bug, never an answer
        yield client


class Desk:
    """One insurer: its tenant and a key of each role, and the calls a desk makes."""

    def __init__(self, services: Any, api: TestClient, prefix: str = "ins") -> None:
        self.url = services.database_url
        self.api = api
        self.tenant = f"{prefix}-{uuid.uuid4().hex[:8]}"
        db.add_tenant(self.url, self.tenant, f"Insurer {self.tenant}")
        self.keys = {role: db.create_api_key(self.url, self.tenant, role, f"{role} desk")[1] for role in db_roles()}

    def call(self, method: str, path: str, role: str = "admin", **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}", **kwargs.pop("headers", {})}
        return self.api.request(method, path, headers=headers, **kwargs)

    def customer(self, customer_id: str, name: str = "王女士") -> dict[str, Any]:
        answer = self.call("POST", "/v1/customers", json={"id": customer_id, "name": name, "notify": [NOTIFY]})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def device(self, device_id: str, customer_id: str, kind: str = "home") -> dict[str, Any]:
        answer = self.call("POST", "/v1/devices", json={"id": device_id, "customer": customer_id, "kind": kind})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def warning(self, device: str, customer: str, **fields: Any) -> str:
        """A warning as the worker stores it (written here, so each test picks its times)."""
        row = {
            "id": str(uuid.uuid4()),
            "tenant": self.tenant,
            "device": device,
            "customer_id": customer,
            "kind": "home",
            "risk": "freeze_risk",
            "severity": "warning",
            "status": "open",
            "score": 0.9,
            "opened_at": datetime.now(UTC) - timedelta(hours=1),
            "predicted_loss_at": None,
            "notified_at": None,
            "acknowledged_at": None,
            "evidence": orjson.dumps({"pipe_temp_c": 1.2}).decode(),
            **fields,
        }
        columns = ", ".join(row)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO warnings ({columns}) VALUES ({', '.join(['%s'] * len(row))})",  # noqa: S608
                list(row.values()),
            )
            conn.execute(
                "INSERT INTO warning_transitions (warning_id, event, from_status, to_status, actor, at)"
                " VALUES (%s, 'open', NULL, 'open', 'worker', %s)",
                (row["id"], row["opened_at"]),
            )
        return str(row["id"])


def db_roles() -> tuple[str, ...]:
    return ("read_only", "staff", "admin")


def error_of(answer: Any) -> str:
    doc = answer.json()
    assert set(doc) == {"error", "detail"}, doc
    return str(doc["error"])


def store(url: str, batches: list[ReadingsBatch]) -> int:
    async def write() -> int:
        s = db.Store(url)
        await s.open()
        try:
            return await s.store_readings(batches)
        finally:
            await s.close()

    return asyncio.run(write())


def keep_rejects(url: str, records: list[RejectRecord]) -> int:
    async def write() -> int:
        s = db.Store(url)
        await s.open()
        try:
            return await db.store_rejects(s, records)
        finally:
            await s.close()

    return asyncio.run(write())


# ------------------------------------------------------------------ tenants, keys, roles


def test_two_insurers_both_with_a_customer_wang_each_see_only_their_own(services, api) -> None:  # type: ignore[no-untyped-def]
    ping, an = Desk(services, api, "ping"), Desk(services, api, "an")
    ping.customer("wang", "王女士 (Ping)")
    an.customer("wang", "王先生 (An)")
    ping.device("home-1", "wang")

    assert [c["name"] for c in ping.call("GET", "/v1/customers", "read_only").json()["items"]] == ["王女士 (Ping)"]
    assert [c["name"] for c in an.call("GET", "/v1/customers", "read_only").json()["items"]] == ["王先生 (An)"]
    assert an.call("GET", "/v1/customers/wang", "read_only").json()["devices"] == 0
    assert ping.call("GET", "/v1/customers/wang", "read_only").json()["devices"] == 1

    for path in ("/v1/devices/home-1", "/v1/devices/home-1/readings"):
        answer = an.call("GET", path, "read_only")
        assert answer.status_code == 404 and "home-1" in error_of(answer)
    assert an.call("GET", "/v1/devices", "read_only").json()["items"] == []
    moved = an.call("PATCH", "/v1/devices/home-1", json={"customer": "wang"})
    assert moved.status_code == 404, "an insurer cannot reach another's device, even with a customer of the same id"
    assert ping.call("GET", "/v1/devices/home-1", "read_only").json()["customer_id"] == "wang"
    # the worker's side of the same scoping: the device's customer is Ping's wang
    rows = db.query(
        services.database_url,
        "SELECT c.name FROM devices d JOIN customers c ON c.tenant = d.tenant AND c.id = d.customer_id"
        " WHERE d.tenant = %s AND d.id = 'home-1'",
        (ping.tenant,),
    )
    assert [r["name"] for r in rows] == ["王女士 (Ping)"]


def test_another_insurers_warning_answers_404_and_never_its_data(services, api) -> None:  # type: ignore[no-untyped-def]
    ping, an = Desk(services, api, "ping"), Desk(services, api, "an")
    ping.customer("li")
    ping.device("secret-boiler-room", "li")
    wid = ping.warning("secret-boiler-room", "li")

    for method, path in [
        ("GET", f"/v1/warnings/{wid}"),
        ("POST", f"/v1/warnings/{wid}/acknowledge"),
        ("POST", f"/v1/warnings/{wid}/escalate"),
    ]:
        answer = an.call(method, path)
        assert answer.status_code == 404, (path, answer.text)
        assert "secret-boiler-room" not in answer.text and "li" not in answer.json()["error"].split()
    assert an.call("POST", f"/v1/warnings/{wid}/outcome", json={"outcome": "false_alarm"}).status_code == 404
    assert an.call("GET", "/v1/warnings", "read_only").json()["items"] == []
    assert ping.call("GET", f"/v1/warnings/{wid}", "read_only").json()["device"] == "secret-boiler-room"
    assert db.query(services.database_url, "SELECT status FROM warnings WHERE id = %s", (wid,))[0]["status"] == "open"


def test_a_read_only_key_reads_but_cannot_act_and_staff_actions_are_audited(services, api) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    desk.customer("zhao")
    desk.device("home-z", "zhao")
    wid = desk.warning("home-z", "zhao", status="notified", notified_at=datetime.now(UTC) - timedelta(minutes=30))

    assert desk.call("GET", f"/v1/warnings/{wid}", "read_only").status_code == 200
    refused = desk.call("POST", f"/v1/warnings/{wid}/acknowledge", "read_only")
    assert refused.status_code == 403 and "read_only" in error_of(refused)
    assert (
        desk.call("POST", "/v1/customers", "staff", json={"id": "x", "name": "X", "notify": [NOTIFY]}).status_code
        == 403
    )
    assert desk.call("GET", "/v1/audit", "staff").status_code == 403

    done = desk.call("POST", f"/v1/warnings/{wid}/acknowledge", "staff", json={"note": "called her"})
    assert done.status_code == 200, done.text
    detail = done.json()
    assert detail["status"] == "acknowledged"
    assert detail["acknowledged_by"] == f"staff:staff desk (key {key_id(desk, 'staff')})"
    assert [t["event"] for t in detail["transitions"]] == ["open", "acknowledge"]
    assert detail["transitions"][-1]["actor"].startswith("staff:staff desk")

    audit = desk.call("GET", "/v1/audit").json()["items"]
    ack = next(a for a in audit if a["action"] == "warning.acknowledge")
    assert ack["target"] == wid and ack["actor"].startswith("staff:staff desk") and ack["detail"]["role"] == "staff"
    assert abs(datetime.fromisoformat(ack["at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert {a["action"] for a in audit} >= {"customer.create", "device.create", "warning.acknowledge"}


def key_id(desk: Desk, role: str) -> int:
    return int(desk.call("GET", "/v1/me", role).json()["key"]["id"])


def test_keys_from_the_cli_shown_once_and_a_revoked_key_is_refused(services, api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("forewarn.keys.get_settings", lambda: services.settings)
    runner = CliRunner()
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    assert runner.invoke(cli, ["tenant", "add", tenant, "--name", "CLI Insurance"]).exit_code == 0
    made = runner.invoke(cli, ["key", "create", "--tenant", tenant, "--role", "staff", "--name", "desk PC"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("fw_") and len(key) == 55

    listed = runner.invoke(cli, ["key", "list", "--tenant", tenant])
    assert listed.exit_code == 0 and "desk PC" in listed.output and key[12:] not in listed.output, "shown once only"
    stored = db.query(services.database_url, "SELECT secret_sha256 FROM api_keys WHERE tenant = %s", (tenant,))
    assert stored and key not in str(stored), "only a hash is stored"

    me = api.get("/v1/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json()["tenant"] == tenant and me.json()["role"] == "staff"
    assert api.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    key_id = me.json()["key"]["id"]
    assert runner.invoke(cli, ["key", "revoke", str(key_id)]).exit_code == 0
    refused = api.get("/v1/me", headers={"X-API-Key": key})
    assert refused.status_code == 401 and "revoked" in error_of(refused)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"X-API-Key": "fw_00000000_" + "x" * 43},
        {"X-API-Key": "nope"},
    ):
        assert api.get("/v1/warnings", headers=headers).status_code == 401, headers
    assert (
        runner.invoke(cli, ["key", "create", "--tenant", "nobody-here", "--role", "staff", "--name", "x"]).exit_code
        == 2
    )
    assert runner.invoke(cli, ["key", "create", "--tenant", tenant, "--role", "root", "--name", "x"]).exit_code == 2


# ------------------------------------------------------------------ customers and devices


def test_a_csv_import_keeps_the_good_rows_and_names_the_bad_ones(services, api) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    customers = (
        "id,name,notify,locale,timezone,quiet_hours,daily_budget\n"
        f"wang,王女士,{NOTIFY},zh-CN,Asia/Shanghai,22:00-07:00,3\n"
        f"Li Lei,Li Lei,{NOTIFY},en,,,\n"  # row 3: an id with a space and a capital
        f"zhou,Zhou,{NOTIFY},fr,,,\n"  # row 4: no such locale
        "chen,Chen,not-a-channel,en,,,\n"  # row 5: not an apprise URL
        f"sun,Sun,{NOTIFY} mailto://sun:pw@example.com,en,Mars/Olympus,,\n"  # row 6: no such zone
        f"qian,Qian,{NOTIFY},en,,,\n"
    )
    answer = desk.call("POST", "/v1/customers/import", content=customers.encode(), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["created"], result["updated"]) == (2, 0)
    errors = {e["row"]: e for e in result["errors"]}
    assert sorted(errors) == [3, 4, 5, 6]
    assert errors[3]["id"] == "Li Lei" and errors[3]["error"].startswith("id:")
    assert "locale" in errors[4]["error"] and "apprise" in errors[5]["error"] and "time zone" in errors[6]["error"]
    wang = desk.call("GET", "/v1/customers/wang", "read_only").json()
    assert (wang["timezone"], wang["quiet_hours"], wang["daily_budget"]) == ("Asia/Shanghai", ["22:00-07:00"], 3)

    devices = "id,customer,kind\nhome-1,wang,home\ncar-1,nobody,vehicle\nbox-1,qian,spaceship\ncar-2,qian,vehicle\n"
    answer = desk.call("POST", "/v1/devices/import", content=devices.encode(), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["created"], result["updated"]) == (2, 0)
    assert [(e["row"], e["id"]) for e in result["errors"]] == [(3, "car-1"), (4, "box-1")]
    assert "nobody" in result["errors"][0]["error"] and "kind" in result["errors"][1]["error"]
    again = desk.call("POST", "/v1/devices/import", content=b"id,customer,kind\nhome-1,qian,home\n")
    assert (again.json()["created"], again.json()["updated"]) == (0, 1)
    assert desk.call("GET", "/v1/devices/home-1", "read_only").json()["customer_id"] == "qian"

    page = desk.call("GET", "/v1/customers", "read_only", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_offset"] == 1
    found = desk.call("GET", "/v1/customers", "read_only", params={"search": "女"}).json()["items"]
    assert [c["id"] for c in found] == ["wang"]
    assert [d["id"] for d in desk.call("GET", "/v1/devices", params={"kind": "vehicle"}).json()["items"]] == ["car-2"]

    whole_file = desk.call("POST", "/v1/customers/import", content=b"id,nom\nx,y\n")
    assert whole_file.status_code == 400 and "missing: name, notify" in error_of(whole_file)
    not_utf8 = desk.call("POST", "/v1/devices/import", content="id,customer,kind\nh,ü,home\n".encode("latin-1"))
    assert not_utf8.status_code == 400 and "UTF-8" in error_of(not_utf8)


def test_customers_change_with_patch_and_a_taken_id_is_a_conflict(services, api) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    desk.customer("ma")
    again = desk.call("POST", "/v1/customers", json={"id": "ma", "name": "Ma", "notify": [NOTIFY]})
    assert again.status_code == 409 and "exists" in error_of(again)
    changed = desk.call(
        "PATCH", "/v1/customers/ma", json={"locale": "en", "daily_budget": 5, "timezone": "Europe/Berlin"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["locale"], changed.json()["daily_budget"]) == ("en", 5)
    cleared = desk.call("PATCH", "/v1/customers/ma", json={"daily_budget": None, "timezone": None})
    assert (cleared.json()["daily_budget"], cleared.json()["timezone"], cleared.json()["locale"]) == (None, None, "en")
    assert desk.call("PATCH", "/v1/customers/ma", json={"name": None}).status_code == 400
    assert desk.call("PATCH", "/v1/customers/nobody", json={"locale": "en"}).status_code == 404
    assert desk.call("POST", "/v1/devices", json={"id": "d-9", "customer": "nobody", "kind": "home"}).status_code == 400


# ------------------------------------------------------------------ warnings


def test_the_warnings_list_filters_by_status_risk_severity_time_device_and_customer(services, api) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    desk.customer("wu")
    desk.customer("xu")
    desk.device("home-a", "wu")
    desk.device("car-b", "xu", "vehicle")
    now = datetime.now(UTC)
    leak = desk.warning("home-a", "wu", risk="water_leak", severity="critical", opened_at=now - timedelta(hours=1))
    frost = desk.warning("home-a", "wu", status="acknowledged", opened_at=now - timedelta(hours=5))
    tired = desk.warning(
        "car-b",
        "xu",
        risk="driver_fatigue",
        severity="advisory",
        kind="vehicle",
        status="resolved",
        opened_at=now - timedelta(days=2),
    )

    def ids(role: str = "read_only", **params: Any) -> list[str]:
        answer = desk.call("GET", "/v1/warnings", role, params=params)
        assert answer.status_code == 200, answer.text
        return [w["id"] for w in answer.json()["items"]]

    assert ids() == [leak, frost, tired], "newest first"
    assert ids(status="open,acknowledged") == [leak, frost]
    assert ids(status=["resolved"]) == [tired]
    assert ids(risk="water_leak") == [leak]
    assert ids(severity="warning") == [frost]
    assert ids(since=(now - timedelta(hours=6)).isoformat()) == [leak, frost]
    assert ids(until=(now - timedelta(hours=2)).isoformat()) == [frost, tired]
    assert ids(device="car-b") == [tired]
    assert ids(customer="wu") == [leak, frost]
    assert ids(customer="wu", limit=1, offset=1) == [frost]
    item = desk.call("GET", "/v1/warnings", params={"device": "car-b"}).json()["items"][0]
    assert (item["customer_id"], item["customer_name"], item["risk"]) == ("xu", "王女士", "driver_fatigue")
    unknown = desk.call("GET", "/v1/warnings", params={"status": "asleep"})
    assert unknown.status_code == 422 and "asleep" in error_of(unknown)


def test_staff_escalate_and_record_an_outcome_and_the_detail_tells_the_whole_story(services, api) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    desk.customer("he")
    desk.device("home-h", "he")
    opened = datetime.now(UTC) - timedelta(hours=2)
    wid = desk.warning("home-h", "he", predicted_loss_at=opened + timedelta(hours=3), opened_at=opened)
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        delivery = conn.execute(
            "INSERT INTO deliveries (warning_id, action, channel, channel_key, status, attempts)"
            " VALUES (%s, 'open', 'json://127.0.0.1:9/…', 'k', 'failed', 1) RETURNING id",
            (wid,),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO delivery_attempts (delivery_id, ok, error, seconds) VALUES (%s, false, 'refused', 0.2)",
            (delivery,),
        )

    up = desk.call("POST", f"/v1/warnings/{wid}/escalate", "staff", json={"note": "no answer on the phone"})
    assert up.status_code == 200, up.text
    assert up.json()["status"] == "escalated"
    step = up.json()["transitions"][-1]
    assert (step["event"], step["from_status"], step["to_status"], step["note"]) == (
        "escalate",
        "open",
        "escalated",
        "no answer on the phone",
    )
    assert step["actor"].startswith("staff:")

    loss_at = (opened + timedelta(hours=3)).isoformat()
    told = desk.call(
        "POST",
        f"/v1/warnings/{wid}/outcome",
        "staff",
        json={"outcome": "loss_avoided", "avoided_cny": 8000, "loss_at": loss_at},
    )
    assert told.status_code == 200, told.text
    detail = told.json()
    assert detail["outcome"] == "loss_avoided"
    assert detail["outcome_record"]["avoided_cny"] == 8000 and detail["outcome_record"]["recorded_by"].startswith(
        "staff:"
    )
    assert detail["evidence"] == {"pipe_temp_c": 1.2}
    assert detail["predicted_loss_at"] is not None
    assert detail["deliveries"][0]["attempt_log"][0]["error"] == "refused"

    wrong = desk.call("POST", f"/v1/warnings/{wid}/outcome", "staff", json={"outcome": "false_alarm", "cost_cny": 10})
    assert wrong.status_code == 400 and "loss_occurred" in error_of(wrong)
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute("UPDATE warnings SET status = 'resolved' WHERE id = %s", (wid,))
    closed = desk.call("POST", f"/v1/warnings/{wid}/escalate", "staff")
    assert closed.status_code == 409 and "resolved" in error_of(closed)


# ------------------------------------------------------------------ readings, portfolio, rejects


def test_a_devices_readings_at_a_chosen_resolution_with_its_warnings_marked(services, api) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    desk.customer("gao")
    desk.device("pipe-1", "gao")
    start = (datetime.now(UTC) - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    start_ms = int(start.timestamp() * 1000)
    readings = tuple(
        Reading(start_ms + m * 60_000, {"pipe_temp_c": float(m), "humidity_pct": 50.0}, m) for m in range(120)
    )
    assert store(services.database_url, [ReadingsBatch(desk.tenant, "pipe-1", "home", readings, start_ms)]) == 240
    frost = desk.warning("pipe-1", "gao", opened_at=start + timedelta(minutes=50))
    desk.warning("pipe-1", "gao", opened_at=start - timedelta(days=2), resolved_at=start - timedelta(days=1))

    params = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(), "metrics": "pipe_temp_c"}
    quarter = desk.call("GET", "/v1/devices/pipe-1/readings", "read_only", params={**params, "resolution": "15m"})
    assert quarter.status_code == 200, quarter.text
    doc = quarter.json()
    assert list(doc["series"]) == ["pipe_temp_c"]
    points = doc["series"]["pipe_temp_c"]
    assert len(points) == 8 and all(p["n"] == 15 for p in points)
    assert [p["avg"] for p in points[:2]] == [7.0, 22.0] and (points[0]["min"], points[0]["max"]) == (0.0, 14.0)
    assert datetime.fromisoformat(points[1]["ts"]) == start + timedelta(minutes=15)
    assert [w["id"] for w in doc["warnings"]] == [frost], "the warning open in the range, not the old resolved one"

    hourly = desk.call("GET", "/v1/devices/pipe-1/readings", params={**params, "resolution": "1h", "metrics": None})
    assert {m: [p["n"] for p in ps] for m, ps in hourly.json()["series"].items()} == {
        "humidity_pct": [60, 60],
        "pipe_temp_c": [60, 60],
    }
    bad = desk.call("GET", "/v1/devices/pipe-1/readings", params={**params, "resolution": "1 fortnight"})
    assert bad.status_code == 400 and "resolution" in error_of(bad)
    backwards = desk.call("GET", "/v1/devices/pipe-1/readings", params={"start": params["end"], "end": params["start"]})
    assert backwards.status_code == 400 and "before" in error_of(backwards)
    assert desk.call("GET", "/v1/devices/pipe-1/readings", params={"metrics": "flux_capacitor"}).status_code == 422


def test_the_portfolio_of_a_known_set_of_warnings(services, api) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    desk.customer("lin")
    desk.device("home-1", "lin")
    desk.device("home-2", "lin")
    since = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0)
    until = since + timedelta(days=10)
    with psycopg.connect(services.database_url, autocommit=True) as conn:  # both watched the whole period
        conn.execute("UPDATE devices SET created_at = %s WHERE tenant = %s", (since - timedelta(days=1), desk.tenant))

    def day(n: float) -> datetime:
        return since + timedelta(days=n)

    minute = timedelta(minutes=1)
    saved = desk.warning(
        "home-1", "lin", opened_at=day(1), notified_at=day(1) + minute, acknowledged_at=day(1) + 11 * minute
    )
    flooded = desk.warning(
        "home-2",
        "lin",
        risk="water_leak",
        severity="critical",
        opened_at=day(2),
        notified_at=day(2) + minute,
        acknowledged_at=day(2) + 31 * minute,
    )
    false = desk.warning("home-1", "lin", opened_at=day(3), notified_at=day(3) + minute)
    desk.warning("home-2", "lin", severity="advisory", opened_at=day(4), predicted_loss_at=day(4) + timedelta(hours=6))
    desk.warning("home-2", "lin", opened_at=since - timedelta(days=5))  # before the period
    for wid, body in [
        (saved, {"outcome": "loss_avoided", "avoided_cny": 5000, "loss_at": (day(1) + timedelta(hours=3)).isoformat()}),
        (
            flooded,
            {"outcome": "loss_occurred", "cost_cny": 12000, "loss_at": (day(2) + timedelta(hours=1)).isoformat()},
        ),
        (false, {"outcome": "false_alarm"}),
    ]:
        assert desk.call("POST", f"/v1/warnings/{wid}/outcome", "staff", json=body).status_code == 200

    answer = desk.call(
        "GET", "/v1/portfolio", "read_only", params={"since": since.isoformat(), "until": until.isoformat()}
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    totals = doc["totals"]
    assert (totals["warnings"], totals["notified"], totals["acknowledged"]) == (4, 3, 2)
    assert totals["acknowledgement_rate"] == 0.5
    assert totals["median_time_to_acknowledge_s"] == pytest.approx(1200)  # median of 10 and 30 minutes
    assert (totals["false_alarms"], totals["losses_avoided"], totals["losses_occurred"], totals["no_outcome"]) == (
        1,
        1,
        1,
        1,
    )
    assert (totals["loss_avoided_cny"], totals["loss_occurred_cny"]) == (5000, 12000)
    assert totals["median_lead_time_s"] == pytest.approx(7200)  # median of 3 h and 1 h
    assert (totals["devices"], totals["device_days"]) == (2, pytest.approx(20))
    assert totals["false_alarms_per_device_day"] == pytest.approx(0.05)
    assert doc["lead_time"]["n"] == 2 and doc["promised_lead_time"] == {"n": 1, "p10_h": 6, "median_h": 6, "p90_h": 6}
    assert {(r["risk"], r["severity"]): r["warnings"] for r in doc["by_risk"]} == {
        ("freeze_risk", "advisory"): 1,
        ("freeze_risk", "warning"): 2,
        ("water_leak", "critical"): 1,
    }
    assert [b["count"] for b in doc["lead_time_histogram"]] == [0, 0, 1, 1, 0, 0]
    assert doc["loss_avoided_by_month"] == [
        {"month": day(1).strftime("%Y-%m"), "risk": "freeze_risk", "losses_avoided": 1, "loss_avoided_cny": 5000}
    ]
    backwards = desk.call("GET", "/v1/portfolio", params={"since": until.isoformat(), "until": since.isoformat()})
    assert backwards.status_code == 400


def test_rejected_telemetry_is_counted_per_reason_and_the_last_ones_kept_per_device(services, api) -> None:  # type: ignore[no-untyped-def]
    desk, other = Desk(services, api), Desk(services, api, "other")
    now_ms = int(time.time() * 1000)

    def reject(tenant: str, device: str, reason: str, n: int) -> RejectRecord:
        return RejectRecord(
            tenant, device, reason, f"{reason} #{n}", f"forewarn/v1/{tenant}/{device}/telemetry", now_ms + n, "{}"
        )

    records = [reject(desk.tenant, "meter-1", "unknown_metric", n) for n in range(60)]
    records += [reject(desk.tenant, "ghost", "unknown_device", 100), reject(other.tenant, "meter-9", "bad_value", 1)]
    assert keep_rejects(services.database_url, records) == 62
    kept = db.query(
        services.database_url,
        "SELECT count(*) AS n FROM rejects WHERE tenant = %s AND device = 'meter-1'",
        (desk.tenant,),
    )
    assert kept[0]["n"] == db.REJECTS_KEPT_PER_DEVICE, "the last ones per device, counts for all"

    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = desk.call("GET", "/v1/rejects", "read_only", params={"last": 3, "until": until})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["counts"] == {"unknown_metric": 60, "unknown_device": 1}
    meter = next(d for d in doc["devices"] if d["device"] == "meter-1")
    assert meter["counts"] == {"unknown_metric": 60}
    assert [r["detail"] for r in meter["latest"]] == ["unknown_metric #59", "unknown_metric #58", "unknown_metric #57"]
    assert "meter-9" not in answer.text, "another insurer's rejects stay its own"
    one = desk.call("GET", "/v1/rejects", params={"device": "ghost", "until": until}).json()
    assert [d["device"] for d in one["devices"]] == ["ghost"]


@pytest.mark.e2e
def test_the_worker_keeps_what_ingest_refused_for_the_api(services, api, worker_process) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(services, api)
    topic = f"forewarn/v1/{desk.tenant}/meter-7/telemetry"
    now_ms = int(time.time() * 1000)

    async def send() -> None:
        producer = Producer(services.settings.kafka_bootstrap)
        await producer.start()
        try:
            for reason in ("unknown_metric", "out_of_range", "out_of_range"):
                record = reject_record(reason, f"{reason} here", topic, b'{"metrics": {"x\x00": 1}}', now_ms)
                await producer.send_and_wait(TOPIC_REJECTS, f"{desk.tenant}/meter-7", record)
        finally:
            await producer.stop()

    asyncio.run(send())
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    deadline = time.monotonic() + 60
    counts: dict[str, int] = {}
    while time.monotonic() < deadline and sum(counts.values()) < 3:
        time.sleep(0.5)
        counts = desk.call("GET", "/v1/rejects", params={"until": until}).json()["counts"]
    assert counts == {"out_of_range": 2, "unknown_metric": 1}


# ------------------------------------------------------------------ bad input never reaches a 500

BAD_REQUESTS: list[tuple[str, str, dict[str, Any], set[int]]] = [
    ("GET", "/v1/warnings", {"params": {"limit": "many"}}, {422}),
    ("GET", "/v1/warnings", {"params": {"limit": 10**30}}, {422}),
    ("GET", "/v1/warnings", {"params": {"offset": -1}}, {422}),
    ("GET", "/v1/warnings", {"params": {"offset": 10**12}}, {422}),
    ("GET", "/v1/warnings", {"params": {"since": "yesterday"}}, {422}),
    ("GET", "/v1/warnings", {"params": {"since": "0001-01-01T00:00:00+05:00"}}, {422}),
    ("GET", "/v1/warnings", {"params": {"until": "9999-12-31T23:59:59-14:00"}}, {422}),
    ("GET", "/v1/warnings", {"params": {"risk": "x" * 5000}}, {422}),
    ("GET", "/v1/warnings", {"params": {"device": "a\x00b"}}, {422}),
    ("GET", "/v1/warnings", {"params": {"device": "d" * 500}}, {422}),
    ("GET", "/v1/warnings", {"params": {"customer": "'; DROP TABLE warnings; --"}}, {422}),
    ("GET", "/v1/devices", {"params": {"search": "%_\\x"}}, {200}),
    ("GET", "/v1/customers", {"params": {"search": "a\x00"}}, {422}),
    ("GET", "/v1/warnings/not-a-uuid", {}, {404}),
    ("GET", "/v1/warnings/00000000-0000-0000-0000-000000000000", {}, {404}),
    ("GET", "/v1/warnings/" + "9" * 60, {}, {404}),
    ("POST", "/v1/warnings/00000000-0000-0000-0000-000000000000/acknowledge", {"content": b"{not json"}, {422}),
    ("POST", "/v1/warnings/00000000-0000-0000-0000-000000000000/outcome", {"json": {"outcome": "won"}}, {422}),
    ("POST", "/v1/warnings/00000000-0000-0000-0000-000000000000/outcome", {"json": []}, {422}),
    (
        "POST",
        "/v1/warnings/00000000-0000-0000-0000-000000000000/outcome",
        {"content": b'{"outcome": "loss_occurred", "cost_cny": NaN}', "headers": {"Content-Type": "application/json"}},
        {422},
    ),
    (
        "POST",
        "/v1/warnings/00000000-0000-0000-0000-000000000000/outcome",
        {"json": {"outcome": "loss_occurred", "cost_cny": 1e300}},
        {422},
    ),
    ("POST", "/v1/warnings/00000000-0000-0000-0000-000000000000/escalate", {"json": {"note": "a\x00b"}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "x\x00y", "notify": [NOTIFY]}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "N", "notify": []}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "N", "notify": ["json://a\x00b"]}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "N", "notify": [NOTIFY], "timezone": "x" * 300}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "N", "notify": [NOTIFY], "daily_budget": 2**40}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "N", "notify": [NOTIFY], "quiet_hours": ["9-5"]}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "N", "notify": [NOTIFY], "colour": "blue"}}, {422}),
    ("POST", "/v1/customers", {"json": {"id": "ok", "name": "N", "notify": [NOTIFY], "locale": "tlh"}}, {422}),
    (
        "POST",
        "/v1/customers",
        {"content": "ü".encode("latin-1"), "headers": {"Content-Type": "application/json"}},
        {400, 422},
    ),
    ("PATCH", "/v1/customers/%00", {"json": {"locale": "en"}}, {422}),
    ("GET", "/v1/devices/%00/readings", {}, {422}),
    ("PATCH", "/v1/customers/" + "c" * 100, {"json": {"locale": "en"}}, {422}),
    ("POST", "/v1/devices", {"json": {"id": "ok", "customer": "nobody", "kind": "toaster"}}, {422}),
    ("POST", "/v1/customers/import", {"content": b"\x00\x01\x02"}, {400}),
    ("POST", "/v1/customers/import", {"content": b""}, {400}),
    ("POST", "/v1/customers/import", {"content": b'id,name,notify\n"unterminated,x,y\n'}, {200, 400}),
    ("POST", "/v1/devices/import", {"content": b"id,customer,kind\n" + b"a,b\n" * 3}, {200}),
    ("GET", "/v1/devices/x/readings", {"params": {"resolution": "0s"}}, {400, 404}),
    ("GET", "/v1/devices/x/readings", {"params": {"resolution": "1s", "start": "2000-01-01T00:00:00Z"}}, {400, 404}),
    ("GET", "/v1/portfolio", {"params": {"since": "2100-01-01T00:00:00Z"}}, {400}),
    ("GET", "/v1/rejects", {"params": {"last": 10**6}}, {422}),
    ("POST", "/v1/keys/0/revoke", {}, {422}),
    ("POST", "/v1/keys/99999999999/revoke", {}, {404}),
    ("POST", "/v1/keys/" + "9" * 40 + "/revoke", {}, {422}),
    ("DELETE", "/v1/warnings", {}, {405}),
    ("GET", "/v1/nothing-here", {}, {404}),
]


@pytest.mark.parametrize(("method", "path", "request_args", "expected"), BAD_REQUESTS)
def test_bad_input_gets_a_4xx_in_json_never_a_500(services, api, method, path, request_args, expected) -> None:  # type: ignore[no-untyped-def]
    desk = bad_input_desk(services, api)
    answer = desk.call(method, path, **request_args)  # the TestClient raises if the request reached a 500
    assert answer.status_code in expected, (answer.status_code, answer.text)
    if answer.status_code >= 400:
        assert error_of(answer), "a JSON error that says what is wrong"


_BAD_INPUT_DESK: list[Desk] = []


def bad_input_desk(services: Any, api: TestClient) -> Desk:
    if not _BAD_INPUT_DESK:
        _BAD_INPUT_DESK.append(Desk(services, api, "bad"))
    return _BAD_INPUT_DESK[0]


def test_the_openapi_schema_is_served_with_every_route_and_both_key_headers(api) -> None:  # type: ignore[no-untyped-def]
    schema = api.get("/openapi.json").json()
    assert {
        "/v1/customers",
        "/v1/customers/import",
        "/v1/devices/{device_id}/readings",
        "/v1/warnings",
        "/v1/warnings/{warning_id}/acknowledge",
        "/v1/warnings/{warning_id}/escalate",
        "/v1/warnings/{warning_id}/outcome",
        "/v1/portfolio",
        "/v1/rejects",
    } <= set(schema["paths"])
    assert set(schema["components"]["securitySchemes"]) == {"Bearer", "X-API-Key"}
    assert "text/csv" in schema["paths"]["/v1/customers/import"]["post"]["requestBody"]["content"]
    assert api.get("/docs").status_code == 200


# ------------------------------------------------------------------ the migration of existing customers


def test_the_migration_gives_each_existing_customer_the_tenant_of_its_devices(services) -> None:  # type: ignore[no-untyped-def]
    server = services.database_url.rsplit("/", 1)[0]
    name = f"forewarn_premig_{uuid.uuid4().hex[:6]}"
    url = f"{server}/{name}"
    files = db._migration_files
    try:
        db._migration_files = lambda: [f for f in files() if f[0] < "0006"]  # type: ignore[assignment]
        db.migrate(url, progress=lambda m: None)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO customers (id, name) VALUES ('wang', 'W'), ('li', 'L'), ('lonely', 'X')")
            conn.execute(
                "INSERT INTO devices (tenant, id, customer_id, kind) VALUES ('ping', 'h1', 'wang', 'home'),"
                " ('an', 'h2', 'wang', 'home'), ('ping', 'h3', 'li', 'home')"
            )
    finally:
        db._migration_files = files  # type: ignore[method-assign]
    try:
        db.migrate(url, progress=lambda m: None)
        rows = db.query(url, "SELECT tenant, id, name FROM customers ORDER BY tenant, id")
        assert [(r["tenant"], r["id"], r["name"]) for r in rows] == [
            ("an", "wang", "W"),  # used by two tenants: copied to each
            ("default", "lonely", "X"),  # used by none
            ("ping", "li", "L"),
            ("ping", "wang", "W"),
        ]
        assert {r["id"] for r in db.query(url, "SELECT id FROM tenants")} == {"an", "default", "ping"}
        with pytest.raises(ValueError, match="does not exist"):
            db.add_device(url, "h4", "an", "li", "home")  # li is ping's only
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_false_alarm_recorded_by_staff_makes_that_devices_detector_less_eager(services, api) -> None:  # type: ignore[no-untyped-def]
    """Outcomes feed back: staff record a freeze warning as a false alarm; the device's detector
    configuration counts it (the worker reloads it within half a minute and widens the detector,
    ``detectors.feedback``); recorded as something else after all, the count goes again."""
    desk = Desk(services, api, "feedback")
    desk.customer("c-fb")
    desk.device("pipe-fb", "c-fb")
    wid = desk.warning("pipe-fb", "c-fb")

    def false_alarms() -> list[tuple[str | None, str, Any]]:
        rows = db.detector_config(services.database_url, desk.tenant, "home")
        return [(r.device, r.risk, r.params.get("false_alarms")) for r in rows]

    assert false_alarms() == []
    told = desk.call("POST", f"/v1/warnings/{wid}/outcome", "staff", json={"outcome": "false_alarm"})
    assert told.status_code == 200, told.text
    assert false_alarms() == [("pipe-fb", "freeze_risk", 1)]

    again = desk.call("POST", f"/v1/warnings/{wid}/outcome", "staff", json={"outcome": "loss_avoided"})
    assert again.status_code == 200, again.text
    assert false_alarms() == [], "no false alarm on record: the detector is as configured"
