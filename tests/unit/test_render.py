"""A warning as the policyholder reads it: what, why, how long, what to do — in zh-CN and en;
the insurer's staff alert for an ignored warning; one digest for several held warnings."""

from __future__ import annotations

import dataclasses

import pytest

from core.contract import WarningEvent
from detectors.profiles import REGISTRY
from notifiers.catalog import CATALOG
from notifiers.render import format_duration, render_digest, render_staff_alert, render_warning

NOW = 1_763_700_000_000  # 2025-11-21 04:40 UTC = 12:40 Beijing time
ACK = "https://forewarn.example/ack/eyJ3IjoidzEifQ"


def freeze(**kw: object) -> WarningEvent:
    base = dict(
        warning_id="w1",
        tenant="acme",
        device="home-1",
        kind="home",
        risk="freeze_risk",
        action="open",
        severity="warning",
        score=0.8,
        at_ms=NOW,
        opened_at_ms=NOW,
        predicted_loss_at_ms=NOW + (3 * 60 + 20) * 60_000,
        evidence={"pipe_temp_c": 2.4, "trend_c_per_h": -0.8, "freeze_c": 0.0},
    )
    base.update(kw)
    return WarningEvent(**base)  # type: ignore[arg-type]


def test_zh_cn_freeze_warning_says_what_why_when_and_what_to_do() -> None:
    msg = render_warning(freeze(), "zh-CN", "王女士")
    assert msg.title == "【预警】水管冻裂风险 · 请在约3小时20分钟内处理"
    assert msg.body.splitlines()[:3] == [
        "王女士您好，您的家庭传感器发出风险预警：水管冻裂风险。",
        "依据：水管温度2.4°C，每小时下降0.8°C（冰点0°C）。",
        "如不处理，预计约3小时20分钟后（今天16:00前后）可能发生水管冻裂及随之而来的水浸损失。",
    ]
    assert "建议您：\n1. 保持室内供暖" in msg.body


def test_en_freeze_warning_on_the_customers_clock() -> None:
    msg = render_warning(freeze(), "en", "Mr Smith", tz="Europe/London")
    assert msg.title == "Warning: Frozen pipe risk — act within about 3 h 20 min"
    assert msg.body.splitlines()[:3] == [
        "Dear Mr Smith, a warning from your home sensors: frozen pipe risk.",
        "Why we think so: the pipe is at 2.4 °C and cooling 0.8 °C an hour (water freezes at 0 °C).",
        "If nothing is done, a burst pipe and the water damage it brings may follow in about 3 h 20 min "
        "(around 08:00 today).",
    ]
    assert "What to do now:\n1. Keep the heating on" in msg.body


def test_a_loss_after_midnight_says_tomorrow() -> None:
    late = freeze(predicted_loss_at_ms=NOW + 13 * 3_600_000)  # 01:40 the next day in Beijing
    assert "（明天01:40前后）" in render_warning(late, "zh-CN", "王女士").body
    assert "(around 01:40 tomorrow)" in render_warning(late, "en", "A").body


def test_a_warning_without_forecast_says_how_soon_to_act_instead() -> None:
    msg = render_warning(
        freeze(risk="water_leak", severity="critical", predicted_loss_at_ms=None, evidence={}), "en", "A"
    )
    assert msg.title == "Critical: Water leak"
    assert "Left alone, it can lead to water damage to your property: please act soon." in msg.body
    assert "Why we think so" not in msg.body  # no evidence, no made-up reason


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_risk_a_detector_can_raise_has_words_actions_and_a_reason(locale: str) -> None:
    missing = [r for r in REGISTRY if r not in CATALOG[locale] or not CATALOG[locale][r].actions]
    assert missing == []
    assert [r for r in REGISTRY if not CATALOG[locale][r].why] == []
    assert {r: set(t.why) for r, t in CATALOG[locale].items()} == {r: set(t.why) for r, t in CATALOG["en"].items()}


def test_a_loss_under_way_says_so() -> None:
    leak = freeze(
        risk="water_leak",
        severity="critical",
        predicted_loss_at_ms=NOW,
        evidence={"water_leak": True, "wet_for_s": 120},
    )
    zh = render_warning(leak, "zh-CN", "王女士")
    assert zh.title == "【紧急】漏水 · 正在发生"
    assert "依据：漏水传感器检测到积水，已持续2分钟。" in zh.body and "风险正在发生" in zh.body
    assert render_warning(leak, "en", "A").title == "Critical: Water leak — happening now"


def test_a_risk_due_now_that_is_not_a_loss_under_way_asks_to_act_now() -> None:
    flat = freeze(
        risk="battery_drain",
        severity="critical",
        predicted_loss_at_ms=NOW,
        evidence={"battery_pct": 5.0, "empty_pct": 5.0, "triggers": ["empty"]},
    )
    msg = render_warning(flat, "en", "A")
    assert msg.title == "Critical: Device battery running low — act now"
    assert "Why we think so: the battery is down to 5%." in msg.body


@pytest.mark.parametrize(
    ("locale", "last_line"),
    [("zh-CN", f"收到请点击确认：{ACK}"), ("en", f"Tap to confirm you have seen this: {ACK}")],
)
def test_an_acknowledgement_link_ends_the_message(locale: str, last_line: str) -> None:
    assert render_warning(freeze(), locale, "X", ack_url=ACK).body.splitlines()[-1] == last_line


@pytest.mark.parametrize(
    ("locale", "words"), [("zh-CN", ("确认", "点击", "已收到")), ("en", ("confirm", "tap to", "got it"))]
)
def test_without_a_link_nothing_asks_the_customer_to_confirm(locale: str, words: tuple[str, ...]) -> None:
    body = render_warning(freeze(), locale, "X").body.lower()
    assert [w for w in words if w in body] == []


@pytest.mark.parametrize(
    ("locale", "line"),
    [
        ("zh-CN", "已为您登记报案，编号 FNOL-2025-0042，理赔人员将主动联系您。"),
        ("en", "We have opened a claim notice for you, reference FNOL-2025-0042; a claims handler will contact you."),
    ],
)
def test_a_claim_notice_is_announced(locale: str, line: str) -> None:
    leak = freeze(risk="water_leak", severity="critical", predicted_loss_at_ms=NOW, evidence={"wet_for_s": 0.0})
    assert line in render_warning(leak, locale, "X", claim_ref="FNOL-2025-0042").body.splitlines()
    assert "FNOL" not in render_warning(leak, locale, "X").body


def test_a_reminder_says_so_in_its_title_and_body() -> None:
    later = freeze(at_ms=NOW + 3_600_000)  # an hour on, the warning still open
    zh = render_warning(later, "zh-CN", "王女士", reminder=1)
    assert zh.title == "【再次提醒】【预警】水管冻裂风险 · 请在约2小时20分钟内处理"
    assert "这是对今天12:40所发预警的再次提醒：风险尚未解除。" in zh.body
    en = render_warning(later, "en", "Mr Smith", reminder=2)
    assert en.title == "Reminder: Frozen pipe risk (warning) — act within about 2 h 20 min"
    assert "This is a reminder of our warning of 12:40 today: the risk has not gone away yet." in en.body
    assert "reminder" not in render_warning(later, "en", "Mr Smith").body.lower()


def test_an_escalation_says_the_risk_has_grown() -> None:
    worse = freeze(action="escalate", severity="critical")
    assert "风险已升级，请高度重视。" in render_warning(worse, "zh-CN", "王女士").body
    assert "It has become more serious since our last message." in render_warning(worse, "en", "A").body


def test_a_customer_without_a_name_is_greeted_all_the_same() -> None:
    assert render_warning(freeze(), "en", "").body.startswith("A warning from your home sensors: frozen pipe risk.")
    assert render_warning(freeze(), "zh-CN", " ").body.startswith("您好，您的家庭传感器发出风险预警")


def test_unknown_locale_or_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="locale"):
        render_warning(freeze(), "fr", "x")
    with pytest.raises(ValueError, match="time zone"):
        render_warning(freeze(), "en", "x", "Mars/Olympus")


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [
        (30, "1分钟", "1 min"),
        (3600, "1小时", "1 h"),
        (5400, "1小时30分钟", "1 h 30 min"),
        (46_324, "13小时", "13 h"),
        (603_472, "7天", "7 days"),
    ],
)
def test_durations(seconds: float, zh: str, en: str) -> None:
    assert format_duration(seconds, "zh-CN") == zh and format_duration(seconds, "en") == en


# --------------------------------------------------------------------------- staff and digests


def test_a_staff_alert_says_who_what_since_when_why_and_to_call() -> None:
    open_an_hour = freeze(at_ms=NOW + 3_600_000)
    zh = render_staff_alert(open_an_hour, "王女士", "13800001234", 45, "zh-CN", "Asia/Shanghai")
    assert zh.title == "【请致电客户】王女士 · 水管冻裂风险（预警）· 45分钟未确认"
    assert zh.body.splitlines()[:8] == [
        "风险服务岗：客户王女士已45分钟未确认以下预警，请立即致电客户，确认其已知晓风险并协助处置。",
        "客户：王女士（13800001234）",
        "设备：home-1（家庭传感器）",
        "风险：水管冻裂风险 · 预警",
        "开始时间：2025-11-21 12:40 (Asia/Shanghai)，已持续1小时",
        "依据：水管温度2.4°C，每小时下降0.8°C（冰点0°C）",
        "预计出险：2025-11-21 16:00 (Asia/Shanghai)，约2小时20分钟后",
        "已告知客户：如不处理，预计约2小时20分钟后（11月21日16:00前后）可能发生水管冻裂及随之而来的水浸损失。",
    ]
    assert zh.body.splitlines()[-1] == "预警编号：w1"
    en = render_staff_alert(open_an_hour, "Mr Smith", "cust-42", 90, "en", "Europe/London")
    assert en.title == "Call the customer: Mr Smith — Frozen pipe risk (warning), unacknowledged for 1 h 30 min"
    assert "Please call them now" in en.body
    assert "Customer: Mr Smith (cust-42)" in en.body
    assert "Since: 2025-11-21 04:40 (Europe/London), 1 h ago" in en.body
    assert "Predicted loss: 2025-11-21 08:00 (Europe/London), in about 2 h 20 min" in en.body


def test_a_staff_alert_for_a_loss_under_way() -> None:
    leak = freeze(risk="water_leak", severity="critical", predicted_loss_at_ms=NOW, evidence={"wet_for_s": 600.0})
    en = render_staff_alert(leak, "", "cust-42", 0, "en", "Asia/Shanghai")
    assert en.title == "Call the customer: cust-42 — Water leak (critical), unacknowledged for under a minute"
    assert "Predicted loss: under way now" in en.body
    assert "Evidence: the leak sensor is wet and has been for 10 min" in en.body


def test_a_digest_gathers_held_warnings_most_severe_first() -> None:
    mould = freeze(
        warning_id="w2",
        risk="mould_risk",
        severity="advisory",
        predicted_loss_at_ms=None,
        opened_at_ms=NOW - 3_600_000,
        evidence={"humidity_pct": 81.0, "threshold_pct": 70.0, "humid_for_s": 50 * 3600.0},
    )
    zh = render_digest([mould, freeze()], "zh-CN", "王女士", "Asia/Shanghai")
    assert zh.title == "【风险提醒汇总】2条风险提醒"
    lines = zh.body.splitlines()
    assert lines[0] == "王女士您好，为避免频繁打扰您，我们将以下风险提醒合并发送："
    assert "1. 【预警】水管冻裂风险（家庭传感器，今天12:40起） · 请在约3小时20分钟内处理" in lines
    assert "2. 【提示】潮湿发霉风险（家庭传感器，今天11:40起）" in lines
    assert "依据：室内湿度已连续2天高于70%，当前81%。" in lines
    assert "建议：开窗通风或开启除湿机；将湿度控制在60%以下；检查是否有隐蔽渗漏。" in lines
    en = render_digest([mould, freeze()], "en", "Mr Smith", "Asia/Shanghai", ack_url=ACK)
    assert en.title == "Summary: 2 warnings from your devices"
    assert en.body.index("1. Warning: Frozen pipe risk") < en.body.index("2. Advisory: Damp and mould risk")
    assert en.body.splitlines()[-1] == f"Tap to confirm you have seen this: {ACK}"
    one = render_digest([mould], "en", "Mr Smith")
    assert one.title == "Summary: 1 warning from your devices"
    with pytest.raises(ValueError, match="at least one"):
        render_digest([], "en", "Mr Smith")


def test_an_unknown_risk_still_renders_in_generic_words() -> None:
    odd = dataclasses.replace(freeze(), risk="meteor_strike", evidence={"size_m": 3.0})
    msg = render_warning(odd, "en", "A")
    assert msg.title.startswith("Warning: Risk: meteor_strike")
    assert "{" not in msg.body
