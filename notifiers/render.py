"""Render a warning into a message in the customer's locale: what, why, time to loss, what to do.

Pure: the template, the event and the time zone in, a :class:`Message` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from core.contract import LOCALES, WarningEvent
from notifiers.catalog import CATALOG, EVIDENCE_LABELS, SEVERITY_TEXT, RiskText

DEVICE_LABELS = {
    "zh-CN": {"home": "家庭传感器", "vehicle": "车辆", "equipment": "设备", "coldchain": "冷链设备"},
    "en": {"home": "home sensors", "vehicle": "vehicle", "equipment": "equipment", "coldchain": "cold-chain unit"},
}


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    locale: str


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("notifiers", "templates"),
        autoescape=False,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )


def format_duration(seconds: float, locale: str) -> str:
    minutes = max(1, round(seconds / 60))
    hours, mins = divmod(minutes, 60)
    if locale == "zh-CN":
        return (f"{hours}小时" if hours else "") + (f"{mins}分钟" if mins or not hours else "")
    parts = ([f"{hours} h"] if hours else []) + ([f"{mins} min"] if mins or not hours else [])
    return " ".join(parts)


def format_evidence(evidence: dict[str, Any], locale: str) -> str:
    labels = EVIDENCE_LABELS[locale]
    items = []
    for key, value in evidence.items():
        if key not in labels or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        label, unit = labels[key]
        number = f"{value:.1f}" if isinstance(value, float) else str(value)
        items.append(f"{label} {number}{(' ' + unit) if unit and locale == 'en' else unit}")
    return ("，" if locale == "zh-CN" else ", ").join(items)


def risk_text(risk: str, locale: str) -> RiskText:
    texts = CATALOG[locale]
    if risk in texts:
        return texts[risk]
    generic = "风险" if locale == "zh-CN" else "Risk"
    return RiskText(f"{generic}: {risk}", "损失" if locale == "zh-CN" else "a loss", ())


def render_warning(event: WarningEvent, locale: str, customer_name: str, tz: str = "Asia/Shanghai") -> Message:
    """The customer's message for a warning event (``open`` or ``escalate``)."""
    if locale not in LOCALES:
        raise ValueError(f"locale {locale!r} must be one of {', '.join(LOCALES)}")
    risk = risk_text(event.risk, locale)
    severity = SEVERITY_TEXT[locale].get(event.severity, event.severity)
    ttl = event.time_to_loss_s
    predicted_at = ""
    if event.predicted_loss_at_ms is not None:
        when = datetime.fromtimestamp(event.predicted_loss_at_ms / 1000, tz=UTC).astimezone(ZoneInfo(tz))
        predicted_at = when.strftime("%m-%d %H:%M")
    body = (
        _env()
        .get_template(f"{locale}.j2")
        .render(
            customer_name=customer_name,
            device_label=DEVICE_LABELS[locale].get(event.kind, event.kind),
            risk=risk,
            severity=severity,
            time_to_loss_text=format_duration(ttl, locale) if ttl else "",
            happening_now=ttl is not None and ttl < 60,  # a leak, smoke: the loss is under way
            predicted_at=predicted_at,
            evidence=format_evidence(event.evidence, locale),
        )
    )
    if locale == "zh-CN":
        when_text = (
            " · 正在发生" if ttl is not None and ttl < 60 else (f" · 约{format_duration(ttl, locale)}后" if ttl else "")
        )
        title = f"【{severity}】{risk.name}{when_text}"
    else:
        when_text = (
            " — now" if ttl is not None and ttl < 60 else (f" in about {format_duration(ttl, locale)}" if ttl else "")
        )
        title = f"{severity}: {risk.name}{when_text}"
    return Message(title=title, body=body.strip(), locale=locale)
