"""The insurer's desk without a database: API keys (format, hash, roles), the CSV imports checked
row by row, the values the API refuses before they reach PostgreSQL, and rejected telemetry
read back from its Kafka record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from core import apikeys
from core.contract import decode_reject_record, reject_origin, reject_record
from forewarn import schemas

NOTIFY = "json://127.0.0.1:9/phone"

# ------------------------------------------------------------------ API keys


def test_a_new_key_has_the_documented_format_and_only_its_hash_matches() -> None:
    key = apikeys.issue()
    assert key.text.startswith(f"fw_{key.prefix}_") and len(key.text) == 55
    assert apikeys.parse(key.text).prefix == key.prefix
    assert apikeys.matches(key.text, key.sha256) and len(key.sha256) == 64
    assert key.secret not in key.sha256
    other = apikeys.issue()
    assert other.prefix != key.prefix or other.secret != key.secret
    assert not apikeys.matches(other.text, key.sha256)
    assert not apikeys.matches(key.text[:-1] + ("A" if key.text[-1] != "A" else "B"), key.sha256)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "fw_",
        "fw_0badcafe_short",
        "fw_0BADCAFE_" + "s" * 43,  # the prefix is lower-case hex
        "sk_0badcafe_" + "s" * 43,
        "fw_0badcafe_" + "s" * 42 + "!",
        "fw_0badcafe_" + "s" * 44,
        "x" * 10_000,
    ],
)
def test_a_text_that_cannot_be_a_key_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(apikeys.BadKey, match="key"):
        apikeys.parse(text)


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer fw_k", None, "fw_k"),
        ("bearer   fw_k ", None, "fw_k"),
        (None, " fw_k", "fw_k"),
        ("Bearer fw_a", "fw_b", "fw_b"),  # X-API-Key wins when both are sent
        ("Basic dXNlcjpwdw==", None, apikeys.BadKey),
        ("Bearer", None, apikeys.BadKey),
        (None, None, apikeys.BadKey),
    ],
)
def test_the_key_is_read_from_either_header(authorization: str | None, x_api_key: str | None, expected: object) -> None:
    if isinstance(expected, str):
        assert apikeys.from_headers(authorization, x_api_key) == expected
    else:
        with pytest.raises(apikeys.BadKey):
            apikeys.from_headers(authorization, x_api_key)


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("read_only", "read_only", True),
        ("read_only", "staff", False),
        ("staff", "staff", True),
        ("staff", "admin", False),
        ("admin", "staff", True),
        ("admin", "read_only", True),
    ],
)
def test_each_role_may_do_what_the_ones_below_it_may(role: str, needed: str, allowed: bool) -> None:
    assert apikeys.allows(role, needed) is allowed


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="read_only, staff, admin"):
        apikeys.check_role("root")


# ------------------------------------------------------------------ CSV imports, row by row

CUSTOMERS = (
    "id,name,notify,locale,timezone,quiet_hours,daily_budget\n"
    f"wang,王女士,{NOTIFY} mailto://wang:pw@example.com,zh-CN,Asia/Shanghai,22:00-07:00 12:00-13:00,3\n"
    f"Li Lei,Li,{NOTIFY},en,,,\n"
    f"zhou,Zhou,{NOTIFY},fr,,,\n"
    "chen,Chen,,en,,,\n"
    f"sun,Sun,{NOTIFY},en,Mars/Olympus,,\n"
    f"qian,Qian,{NOTIFY},en,,22:00-07:00 06:00-08:00,\n"
    f"ma,Ma,{NOTIFY},en,,,-1\n"
    f"wang,Again,{NOTIFY},en,,,\n"
    "\n"
    f"he,He,{NOTIFY}\n"
    f"lu,Lu,{NOTIFY},,,,\n"
)


def test_a_customers_csv_keeps_the_good_rows_and_gives_each_bad_one_its_row_and_reason() -> None:
    parsed = schemas.customers_csv(CUSTOMERS.encode())
    assert [(row, customer_id) for row, (customer_id, _) in parsed.rows] == [(2, "wang"), (12, "lu")]
    wang = parsed.rows[0][1][1]
    assert wang == {
        "name": "王女士",
        "notify_urls": [NOTIFY, "mailto://wang:pw@example.com"],
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
        "quiet_hours": ["22:00-07:00", "12:00-13:00"],
        "daily_budget": 3,
    }
    assert parsed.rows[1][1][1] == {"name": "Lu", "notify_urls": [NOTIFY]}, "empty cells leave stored values alone"
    errors = {e.row: (e.id, e.error) for e in parsed.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 11]
    assert errors[3][0] == "Li Lei" and errors[3][1].startswith("id:")
    assert errors[4][1].startswith("locale:")
    assert errors[5][1].startswith("notify:")
    assert "unknown time zone" in errors[6][1]
    assert "overlap" in errors[7][1]
    assert errors[8][1].startswith("daily_budget:")
    assert errors[9][1] == "the same id as row 2"
    assert errors[11][1] == "3 cells, the header has 7"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "no header row"),
        (b"id,nom,notify\n", "unknown: nom; missing: name"),
        (b"id,name,notify,id\n", "named twice"),
        ("id,name,notify\nü,x,y\n".encode("latin-1"), "not UTF-8"),
        (b"id,name,notify\nx\x00,y,z\n", "NUL"),
        (b"id,name,notify\n" + b"a,b,c\n" * (schemas.MAX_CSV_ROWS + 1), "at most"),
    ],
)
def test_a_file_that_cannot_be_imported_at_all_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(schemas.CsvError, match=reason):
        schemas.customers_csv(body)


def test_a_devices_csv_checks_ids_and_kinds_and_reads_a_bom_and_windows_line_ends() -> None:
    body = "\ufeffID,Customer,Kind\r\nhome-1,wang,home\r\ncar 2,wang,vehicle\r\nbox-3,wang,fridge\r\n".encode()
    parsed = schemas.devices_csv(body)
    assert [(row, d.id, d.customer, d.kind) for row, d in parsed.rows] == [(2, "home-1", "wang", "home")]
    assert [(e.row, e.id) for e in parsed.errors] == [(3, "car 2"), (4, "box-3")]
    assert parsed.errors[1].error.startswith("kind:")


# ------------------------------------------------------------------ what the API refuses before the database


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"id": "ok", "name": "x\x00y", "notify": [NOTIFY]}, "control characters"),
        ({"id": "ok", "name": " ", "notify": [NOTIFY]}, "at least 1 character"),
        ({"id": "ok", "name": "N", "notify": ["json://a\x00b"]}, "control characters"),
        ({"id": "ok", "name": "N", "notify": [NOTIFY], "timezone": "x" * 300}, "at most 64"),
        ({"id": "ok", "name": "N", "notify": [NOTIFY], "daily_budget": 2**40}, "less than or equal"),
        ({"id": "ok", "name": "N", "notify": [NOTIFY], "quiet_hours": ["10:00-10:00"]}, "same time"),
        ({"id": "OK", "name": "N", "notify": [NOTIFY]}, "pattern"),
        ({"id": "ok", "name": "N", "notify": [NOTIFY], "extra": 1}, "Extra inputs"),
    ],
)
def test_a_customer_body_the_database_could_not_take_is_refused_first(body: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        schemas.CustomerIn.model_validate(body)
    assert problem in schemas.explain(caught.value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-11-22T01:00:00+08:00", True),
        ("2026-11-22T01:00:00", True),  # no zone: UTC
        ("1969-12-31T23:59:59Z", False),
        ("0001-01-01T00:00:00+05:00", False),
        ("2200-01-01T00:00:00Z", False),
        ("tomorrow", False),
    ],
)
def test_times_carry_a_zone_and_stay_within_1970_and_2200(value: str, ok: bool) -> None:
    if ok:
        moment = schemas.OutcomeIn.model_validate({"outcome": "loss_avoided", "loss_at": value}).loss_at
        assert moment is not None and moment.tzinfo is not None and moment.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    else:
        with pytest.raises(ValidationError):
            schemas.OutcomeIn.model_validate({"outcome": "loss_avoided", "loss_at": value})


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), -1.0, 1e13])
def test_amounts_are_finite_and_plausible(amount: float) -> None:
    with pytest.raises(ValidationError):
        schemas.OutcomeIn.model_validate({"outcome": "loss_occurred", "cost_cny": amount})


def test_a_patch_cannot_clear_a_customers_name_or_channels() -> None:
    with pytest.raises(ValueError, match="name cannot be cleared"):
        schemas.CustomerPatch.model_validate({"name": None}).fields()
    assert schemas.CustomerPatch.model_validate({"timezone": None, "quiet_hours": None}).fields() == {
        "timezone": None,
        "quiet_hours": [],
    }


# ------------------------------------------------------------------ rejected telemetry, kept for the API


def test_a_reject_record_names_its_tenant_and_device_from_the_topic_and_keeps_a_printable_copy() -> None:
    now = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp() * 1000)
    raw = reject_record("bad_value", "x is bad", "forewarn/v1/acme/home-1/telemetry", b'{"x\x00": ' + b"9" * 5000, now)
    kept = decode_reject_record(raw)
    assert (kept.tenant, kept.device, kept.reason, kept.received_at) == ("acme", "home-1", "bad_value", now)
    assert "\x00" not in kept.payload and len(kept.payload) == 1024
    assert reject_origin("forewarn/v1/acme/Not A Device/telemetry") == ("acme", "")
    assert reject_origin("forewarn/v2/acme/home-1/telemetry") == ("", "")
    assert reject_origin("garbage") == ("", "")
