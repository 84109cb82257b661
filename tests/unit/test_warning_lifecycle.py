"""The pure rules of warnings people act on: lifecycle transitions, acknowledgement tokens,
follow-up policies, quiet hours and budgets, retries and fallback. Tables of (input, expected)."""

from __future__ import annotations

from datetime import time

import pytest

from core import acktokens, lifecycle
from core.localtime import zone
from notifiers.delivery import after_failure, first_channels, reminder_channel
from notifiers.followup import DEFAULT_POLICIES, FollowUpPolicy, Step, due_steps, parse_duration, parse_steps
from notifiers.quiet import QuietHours, check_windows, decide

WID = "6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e"
SECRET = b"s" * 32
MIDNIGHT_SHANGHAI = 1_763_654_400_000  # 2025-11-21 00:00 in Shanghai
HOUR = 3_600_000


@pytest.mark.parametrize(
    ("status", "event", "expected"),
    [
        (None, "open", "open"),
        (None, "notified", None),
        ("open", "notified", "notified"),
        ("notified", "notified", None),  # a second receipt changes nothing
        ("notified", "escalate", "escalated"),
        ("escalated", "escalate", "escalated"),
        ("acknowledged", "escalate", "escalated"),  # a worse finding reopens the chase
        ("notified", "acknowledge", "acknowledged"),
        ("escalated", "acknowledge", "acknowledged"),
        ("acknowledged", "acknowledge", None),
        ("acknowledged", "resolve", "resolved"),
        ("notified", "expire", "expired"),
        ("resolved", "notified", None),  # a late receipt for a closed warning
        ("resolved", "acknowledge", None),
        ("expired", "escalate", None),
    ],
)
def test_one_table_says_where_each_event_takes_a_warning(status, event, expected) -> None:  # type: ignore[no-untyped-def]
    assert lifecycle.next_status(status, event) == expected


def test_no_event_leaves_a_final_status_and_every_event_is_known() -> None:
    for event in lifecycle.EVENTS:
        assert not set(lifecycle.sources(event)) & lifecycle.FINAL
    with pytest.raises(ValueError, match="unknown lifecycle event"):
        lifecycle.next_status("open", "snooze")  # type: ignore[arg-type]


def test_a_token_acknowledges_its_warning_until_it_expires() -> None:
    token = acktokens.issue(SECRET, WID, now_s=1_000, ttl_s=3600)
    assert acktokens.verify(SECRET, token, 1_000 + 3500).warning_id == WID
    with pytest.raises(acktokens.TokenError) as expired:
        acktokens.verify(SECRET, token, 1_000 + 3700)
    assert expired.value.reason == "expired"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        # the signature (not the last character: two of its bits are base64 padding)
        (lambda t: t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:], "forged"),
        (lambda t: ("B" if t[0] != "B" else "C") + t[1:], "forged"),  # the warning id
        (lambda t: t[:20], "malformed"),
        (lambda t: t + "!!", "malformed"),
    ],
)
def test_a_tampered_token_is_refused(tamper, reason) -> None:  # type: ignore[no-untyped-def]
    token = acktokens.issue(SECRET, WID, now_s=0, ttl_s=3600)
    with pytest.raises(acktokens.TokenError) as refused:
        acktokens.verify(SECRET, tamper(token), 10)
    assert refused.value.reason == reason


def test_a_token_signed_with_another_key_is_forged_and_each_token_has_its_own_nonce() -> None:
    token = acktokens.issue(b"other" * 8, WID, now_s=0)
    with pytest.raises(acktokens.TokenError, match="not genuine"):
        acktokens.verify(SECRET, token, 10)
    a, b = (acktokens.verify(SECRET, acktokens.issue(SECRET, WID, 0), 1) for _ in range(2))
    assert a.warning_id == b.warning_id and a.nonce != b.nonce


def test_follow_ups_come_due_in_order_and_each_once() -> None:
    critical = DEFAULT_POLICIES["critical"]
    assert [(s.kind, s.after_s) for s in critical.steps] == [("remind", 600), ("staff", 1200), ("final", 2700)]
    assert due_steps(critical, 100, 100 + 599) == []
    assert [s.kind for s in due_steps(critical, 100, 100 + 1200)] == ["remind", "staff"]
    assert [s.kind for s in due_steps(critical, 100, 100 + 3000, ["remind@600", "staff@1200"])] == ["final"]
    assert due_steps(DEFAULT_POLICIES["advisory"], 0, 10**9) == []


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["remind:-5m"], "positive"),
        (["remind:10"], "needs a unit"),
        (["call:10m"], "unknown step"),
        (["remind:10m:later"], "KIND:DELAY"),
        (["remind:10m", "staff:10m"], "distinct times"),
    ],
)
def test_a_bad_policy_gets_one_clear_error(specs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        FollowUpPolicy("critical", parse_steps(specs))


def test_durations_and_steps_parse_as_written() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2h") == 7200 and parse_duration("1d") == 86400
    steps = parse_steps(["final:1h", "remind:15m:next"])
    assert steps == (Step(900, "remind", True), Step(3600, "final"))
    with pytest.raises(ValueError, match="severity"):
        FollowUpPolicy("urgent", steps)


def test_quiet_hours_wrap_midnight_and_overlaps_are_refused() -> None:
    night = QuietHours.parse("22:00-07:00")
    assert night.contains(time(23, 0)) and night.contains(time(6, 59)) and not night.contains(time(7, 0))
    assert not QuietHours.parse("13:00-14:00").contains(time(14, 0))
    with pytest.raises(ValueError, match="overlap"):
        check_windows([night, QuietHours.parse("06:00-08:00")])
    check_windows([night, QuietHours.parse("12:00-13:30")])
    for bad in ("22:00", "25:00-07:00", "7-8", "22:00-22:00"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad)


@pytest.mark.parametrize(
    ("severity", "local_hour", "sent_today", "budget", "expected", "release_hour"),
    [
        ("critical", 23, 99, 1, "send", None),  # critical always goes through
        ("warning", 23, 0, None, "hold_quiet", 7),  # held until quiet hours end, not dropped
        ("advisory", 3, 0, None, "hold_quiet", 7),
        ("warning", 12, 0, None, "send", None),
        ("warning", 12, 3, 3, "hold_budget", 7),  # over the budget: tomorrow, after quiet hours
        ("warning", 12, 2, 3, "send", None),
    ],
)
def test_quiet_hours_and_budget_decide_when_a_message_goes(
    severity, local_hour, sent_today, budget, expected, release_hour
) -> None:  # type: ignore[no-untyped-def]
    tz = zone(None)
    now = MIDNIGHT_SHANGHAI + local_hour * HOUR
    decision, release = decide(severity, now, tz, [QuietHours.parse("22:00-07:00")], sent_today, budget)
    assert decision == expected
    if release_hour is None:
        assert release is None
    else:
        assert release is not None and release > now
        assert ((release - MIDNIGHT_SHANGHAI) // HOUR) % 24 == release_hour


def test_quiet_hours_are_on_the_customers_own_clock() -> None:
    # 23:00 in Shanghai is 16:00 in Berlin: quiet for one, not for the other
    at = MIDNIGHT_SHANGHAI - HOUR
    window = [QuietHours.parse("22:00-07:00")]
    assert decide("warning", at, zone("Asia/Shanghai"), window, 0, None)[0] == "hold_quiet"
    assert decide("warning", at, zone("Europe/Berlin"), window, 0, None)[0] == "send"


def test_a_failing_channel_is_retried_then_replaced_by_the_next() -> None:
    delays = (5.0, 30.0)
    assert after_failure(1, 0, 2, False, delays).then == "retry"
    assert after_failure(2, 0, 2, False, delays).delay_s == 30.0
    assert after_failure(3, 0, 2, False, delays).channel == 1
    assert after_failure(3, 1, 2, False, delays).then == "give_up"
    assert after_failure(3, 0, 2, True, delays).then == "give_up", "a critical warning was on every channel already"
    assert first_channels("critical", 2) == [0, 1] and first_channels("advisory", 2) == [0]
    assert reminder_channel(0, 3, True) == 1 and reminder_channel(2, 3, True) == 2
