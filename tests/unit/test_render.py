"""A warning as the policyholder reads it: what, why, how long, what to do — in zh-CN and en."""

from __future__ import annotations

import pytest

from core.contract import WarningEvent
from detectors.profiles import REGISTRY
from notifiers.catalog import CATALOG
from notifiers.render import format_duration, render_warning

NOW = 1_763_700_000_000  # 2025-11-21 04:40 UTC = 12:40 Beijing time


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
        evidence={"pipe_temp_c": 2.4, "trend_c_per_h": -0.8},
    )
    base.update(kw)
    return WarningEvent(**base)  # type: ignore[arg-type]


def test_zh_cn_freeze_warning_says_what_why_when_and_what_to_do() -> None:
    msg = render_warning(freeze(), "zh-CN", "王女士")
    assert msg.title == "【预警】水管冻裂风险 · 约3小时20分钟后"
    assert "王女士您好" in msg.body
    assert "预计3小时20分钟后（约11-21 16:00）" in msg.body
    assert "水管温度 2.4°C" in msg.body
    assert "1. 保持室内供暖" in msg.body


def test_en_freeze_warning() -> None:
    msg = render_warning(freeze(), "en", "Mr Smith", tz="Europe/London")
    assert msg.title == "Warning: Frozen pipe risk in about 3 h 20 min"
    assert "around 11-21 08:00" in msg.body
    assert "pipe temperature 2.4 °C" in msg.body
    assert "What to do now:" in msg.body


def test_a_warning_without_forecast_names_the_loss_instead() -> None:
    msg = render_warning(
        freeze(risk="water_leak", severity="critical", predicted_loss_at_ms=None, evidence={}), "en", "A"
    )
    assert msg.title == "Critical: Water leak"
    assert "This can lead to water damage" in msg.body


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_risk_a_detector_can_raise_has_words_and_actions(locale: str) -> None:
    missing = [r for r in REGISTRY if r not in CATALOG[locale] or not CATALOG[locale][r].actions]
    assert missing == []


def test_a_loss_under_way_says_so() -> None:
    leak = freeze(risk="water_leak", severity="critical", predicted_loss_at_ms=NOW, evidence={"flow_lpm": 6.5})
    zh = render_warning(leak, "zh-CN", "王女士")
    assert zh.title == "【紧急】漏水 · 正在发生"
    assert "风险正在发生" in zh.body and "水流量 6.5升/分钟" in zh.body
    assert render_warning(leak, "en", "A").title == "Critical: Water leak — now"


def test_unknown_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="locale"):
        render_warning(freeze(), "fr", "x")


@pytest.mark.parametrize(
    ("seconds", "zh", "en"), [(30, "1分钟", "1 min"), (3600, "1小时", "1 h"), (5400, "1小时30分钟", "1 h 30 min")]
)
def test_durations(seconds: float, zh: str, en: str) -> None:
    assert format_duration(seconds, "zh-CN") == zh and format_duration(seconds, "en") == en
