"""Render warnings into messages: what is wrong, why we think so (the figures that fired the
detector), how long is left, and what to do — in the customer's locale and on their clock.

Four messages, one :class:`Message` type: :func:`render_warning` for the policyholder (a new
warning, an escalation, a reminder), :func:`render_staff_alert` for the insurer's risk-service
staff when a warning goes unacknowledged, :func:`render_digest` for several held warnings in
one message, :func:`render_claim_notice` for the insurer's claims desk when a loss is under
way (a first notice of loss, ``notifiers.claims``). Pure: events, the words of
:mod:`notifiers.catalog` and the templates in ``notifiers/templates/`` in, a message out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from core.contract import LOCALES, WarningEvent
from core.localtime import DEFAULT_TIMEZONE, check_zone, local_datetime
from core.risks import RISKS, risk_now
from notifiers.catalog import (
    CATALOG,
    DEVICE_LABELS,
    METRIC_LABELS,
    OUTLOOK,
    SEVERITY_NOUN,
    SEVERITY_TEXT,
    RiskText,
)
from notifiers.claims import ClaimNotice, summarise

log = logging.getLogger(__name__)

NOW_S = 60.0
"""A time to loss below this is now: the loss is under way or due."""

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "advisory": 2}


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    locale: str


# --------------------------------------------------------------------------- figures and times


def format_number(value: float, digits: int = 1) -> str:
    """A figure as a message shows it: at most ``digits`` decimals, trailing zeros dropped.

    >>> format_number(5.08), format_number(8.0), format_number(0.866, 2), format_number(-0.04)
    ('5.1', '8', '0.87', '0')
    """
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_duration(seconds: float, locale: str) -> str:
    """A span of time, as precise as it needs to be: minutes under 10 hours, then hours, then
    days from two days on.

    >>> format_duration(12_000, "en"), format_duration(46_324, "en"), format_duration(603_472, "zh-CN")
    ('3 h 20 min', '13 h', '7天')
    """
    zh = locale == "zh-CN"
    minutes = max(1, round(seconds / 60))
    if minutes >= 48 * 60:
        days = round(minutes / 1440)
        return f"{days}天" if zh else f"{days} days"
    if minutes >= 10 * 60:
        hours = round(minutes / 60)
        return f"{hours}小时" if zh else f"{hours} h"
    hours, mins = divmod(minutes, 60)
    if zh:
        return (f"{hours}小时" if hours else "") + (f"{mins}分钟" if mins or not hours else "")
    return " ".join(([f"{hours} h"] if hours else []) + ([f"{mins} min"] if mins or not hours else []))


def format_clock(ts_ms: int, zone: ZoneInfo, locale: str, relative_to_ms: int | None = None) -> str:
    """A moment on the customer's clock: "06:03 today" / "今天06:03" (yesterday, today and
    tomorrow relative to ``relative_to_ms``), else with the date.

    >>> from core.localtime import zone
    >>> format_clock(1_763_712_000_000, zone(None), "en", relative_to_ms=1_763_700_000_000)
    '16:00 today'
    >>> format_clock(1_763_712_000_000, zone(None), "zh-CN")
    '11月21日16:00'
    """
    when = local_datetime(ts_ms, zone)
    clock = when.strftime("%H:%M")
    if relative_to_ms is not None:
        days = (when.date() - local_datetime(relative_to_ms, zone).date()).days
        if -1 <= days <= 1:
            if locale == "zh-CN":
                return ("昨天", "今天", "明天")[days + 1] + clock
            return f"{clock} {('yesterday', 'today', 'tomorrow')[days + 1]}"
    if locale == "zh-CN":
        return f"{when.month}月{when.day}日{clock}"
    return f"{clock} on {when.day} {when:%b}"


def format_datetime(ts_ms: int, zone: ZoneInfo) -> str:
    """A moment for the insurer's staff: the full date and time, and the zone it is on."""
    return f"{local_datetime(ts_ms, zone):%Y-%m-%d %H:%M} ({zone.key})"


# --------------------------------------------------------------------------- words


def risk_text(risk: str, locale: str) -> RiskText:
    """The catalogue's words for ``risk`` (generic words for a risk it does not know)."""
    texts = CATALOG[locale]
    if risk in texts:
        return texts[risk]
    generic = "风险" if locale == "zh-CN" else "Risk"
    return RiskText(f"{generic}: {risk}", "损失" if locale == "zh-CN" else "a loss", ())


@jinja2.pass_context
def _duration_filter(context: jinja2.runtime.Context, seconds: float) -> str:
    return format_duration(seconds, context["locale"])


@lru_cache(maxsize=1)
def _phrase_env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    env.filters["num"] = format_number
    env.filters["duration"] = _duration_filter
    return env


@lru_cache(maxsize=512)
def _phrase(source: str) -> jinja2.Template:
    return _phrase_env().from_string(source)


def _say(source: str, variables: Mapping[str, Any]) -> str | None:
    """A catalogue phrase with ``variables``; ``None`` when it needs a figure they lack."""
    try:
        text = _phrase(source).render(variables)
    except (jinja2.UndefinedError, TypeError, ValueError) as exc:
        log.debug("phrase %r not said: %s", source[:40], exc)
        return None
    return " ".join(text.split()) or None


def _variables(event: WarningEvent, locale: str) -> dict[str, Any]:
    """What a phrase sees: the evidence's figures, the stuck metric's label and value, and the
    names of the other warnings open on a silent device."""
    variables: dict[str, Any] = {k: v for k, v in event.evidence.items() if k != "triggers" and k.isidentifier()}
    metric, value = event.evidence.get("metric"), event.evidence.get("value")
    if isinstance(metric, str):
        label, unit = METRIC_LABELS[locale].get(metric, (metric, ""))
        variables["metric_name"] = label
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            space = " " if locale == "en" and unit and unit != "%" else ""
            variables["metric_value"] = f"{format_number(value, 2)}{space}{unit}"
    unusual = event.evidence.get("unusual_metrics")
    if isinstance(unusual, list) and unusual:
        labels = [METRIC_LABELS[locale].get(str(m), (str(m), ""))[0] for m in unusual]
        variables["unusual_names"] = "、".join(labels) if locale == "zh-CN" else ", ".join(labels)
    open_risks = event.evidence.get("open_risks")
    if isinstance(open_risks, str) and open_risks:
        names = [risk_text(r, locale).name for r in open_risks.split(",")]
        variables["open_risk_names"] = "、".join(names) if locale == "zh-CN" else ", ".join(n.lower() for n in names)
    variables["locale"] = locale
    return variables


def explain(event: WarningEvent, locale: str) -> list[str]:
    """Why: one phrase per judgement that fired (the evidence's ``triggers``, or the risk's
    only judgement), each stating the figures that fired it, in the words of the risk now
    happening (:func:`core.risks.risk_now`). Empty without evidence."""
    text = risk_text(risk_now(event.risk, event.evidence), locale)
    triggers = event.evidence.get("triggers")
    names = [t for t in triggers if isinstance(t, str)] if isinstance(triggers, list) else list(text.why)
    variables = _variables(event, locale)
    phrases = []
    for name in names:
        source = text.why.get(name)
        if source is None:
            log.warning("no words for %s's trigger %r in %s", risk_now(event.risk, event.evidence), name, locale)
            continue
        phrase = _say(source, variables)
        if phrase:
            phrases.append(phrase)
    return phrases


def outlook(event: WarningEvent, locale: str, zone: ZoneInfo, absolute: bool = False) -> str:
    """How long: the time to loss and what happens then, that the loss is under way, or (no
    forecast) how soon to act. ``absolute`` gives the time of loss with its date."""
    text = risk_text(risk_now(event.risk, event.evidence), locale)
    ttl = event.time_to_loss_s
    key = "standing" if ttl is None else ("now" if ttl < NOW_S else "forecast")
    variables = _variables(event, locale) | {"loss": text.loss}
    if ttl is not None and event.predicted_loss_at_ms is not None:
        variables["time_left"] = format_duration(ttl, locale)
        variables["time_at"] = format_clock(event.predicted_loss_at_ms, zone, locale, None if absolute else event.at_ms)
    own = getattr(text, key)
    said = _say(own, variables) if own else None
    return said or _say(OUTLOOK[locale][key], variables) or ""


@dataclass(frozen=True, slots=True)
class _Words:
    """One warning in words: what the templates put together."""

    risk: RiskText
    severity: str
    severity_noun: str
    device_label: str
    reasons: list[str]
    outlook: str
    urgency: str
    """The title's how long: "" (no forecast), act now / happening now, or act within …"""
    was: str = ""
    """The name of the warning's own risk when a related risk now happening escalated it (the
    words above are that risk's: water on the floor after a slow-leak warning), else ""."""


def _words(event: WarningEvent, locale: str, zone: ZoneInfo, absolute: bool = False) -> _Words:
    now = risk_now(event.risk, event.evidence)
    text = risk_text(now, locale)
    ttl = event.time_to_loss_s
    zh = locale == "zh-CN"
    if ttl is None:
        urgency = ""
    elif ttl < NOW_S:
        under_way = now in RISKS and RISKS[now].loss_under_way
        urgency = ("正在发生" if under_way else "请立即处理") if zh else ("happening now" if under_way else "act now")
    else:
        time_left = format_duration(ttl, locale)
        urgency = f"请在约{time_left}内处理" if zh else f"act within about {time_left}"
    return _Words(
        risk=text,
        severity=SEVERITY_TEXT[locale].get(event.severity, event.severity),
        severity_noun=SEVERITY_NOUN[locale].get(event.severity, event.severity),
        device_label=DEVICE_LABELS[locale].get(event.kind, event.kind),
        reasons=explain(event, locale),
        outlook=outlook(event, locale, zone, absolute),
        urgency=urgency,
        was=risk_text(event.risk, locale).name if now != event.risk else "",
    )


# --------------------------------------------------------------------------- messages


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("notifiers", "templates"),
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=False,
        undefined=jinja2.StrictUndefined,
    )


def _check_locale(locale: str) -> None:
    if locale not in LOCALES:
        raise ValueError(f"locale {locale!r} must be one of {', '.join(LOCALES)}")


def _tidy(body: str) -> str:
    return "\n".join(line.rstrip() for line in body.strip().splitlines())


def render_warning(
    event: WarningEvent,
    locale: str,
    customer_name: str,
    tz: str = DEFAULT_TIMEZONE,
    *,
    ack_url: str | None = None,
    claim_ref: str | None = None,
    reminder: int = 0,
) -> Message:
    """The customer's message for a warning (``open`` or ``escalate``): what, why, how long,
    what to do — of the risk now happening when a related one escalated the warning (water on
    the floor after a slow-leak warning), saying which warning it follows. ``tz`` is the
    customer's zone (``core.localtime``); ``ack_url`` ends the message with a link to acknowledge
    it (without one, nothing asks the customer to confirm); ``claim_ref`` says a first notice of
    loss was opened; ``reminder`` > 0 marks a reminder.
    """
    _check_locale(locale)
    zone = check_zone(tz)
    words = _words(event, locale, zone)
    zh = locale == "zh-CN"
    if zh:
        title = f"{'【再次提醒】' if reminder > 0 else ''}【{words.severity}】{words.risk.name}"
        title += f" · {words.urgency}" if words.urgency else ""
    else:
        title = (
            f"Reminder: {words.risk.name} ({words.severity.lower()})"
            if reminder > 0
            else f"{words.severity}: {words.risk.name}"
        )
        title += f" — {words.urgency}" if words.urgency else ""
    body = (
        _env()
        .get_template(f"warning.{locale}.j2")
        .render(
            customer_name=customer_name.strip(),
            w=words,
            escalated=event.action == "escalate",
            reminder=reminder > 0,
            opened_at=format_clock(event.opened_at_ms, zone, locale, event.at_ms),
            claim_ref=claim_ref,
            ack_url=ack_url,
        )
    )
    return Message(title=title, body=_tidy(body), locale=locale)


def render_staff_alert(
    event: WarningEvent,
    customer_name: str,
    customer_phone_or_id: str,
    minutes_unacknowledged: int,
    locale: str,
    tz: str = DEFAULT_TIMEZONE,
) -> Message:
    """The insurer's risk-service staff's message about a warning the customer has not
    acknowledged for ``minutes_unacknowledged``: who, which device, what risk, since when, the
    evidence, when the loss is predicted, what the customer was advised — please call them."""
    _check_locale(locale)
    zone = check_zone(tz)
    words = _words(event, locale, zone, absolute=True)
    zh = locale == "zh-CN"
    minutes = max(0, int(minutes_unacknowledged))
    waited = format_duration(minutes * 60, locale) if minutes >= 1 else ("不到1分钟" if zh else "under a minute")
    who = customer_name.strip() or customer_phone_or_id
    if zh:
        title = f"【请致电客户】{who} · {words.risk.name}（{words.severity}）· {waited}未确认"
    else:
        title = f"Call the customer: {who} — {words.risk.name} ({words.severity.lower()}), unacknowledged for {waited}"
    ttl = event.time_to_loss_s
    open_s = max(0, event.at_ms - event.opened_at_ms) / 1000
    body = (
        _env()
        .get_template(f"staff.{locale}.j2")
        .render(
            event=event,
            w=words,
            customer_name=customer_name.strip(),
            contact=customer_phone_or_id,
            waited=waited,
            since=format_datetime(event.opened_at_ms, zone),
            open_for=format_duration(open_s, locale) if open_s >= NOW_S else "",
            loss_at=(
                format_datetime(event.predicted_loss_at_ms, zone)
                if event.predicted_loss_at_ms is not None and ttl is not None and ttl >= NOW_S
                else ""
            ),
            time_left=format_duration(ttl, locale) if ttl is not None else "",
            happening_now=ttl is not None and ttl < NOW_S,
        )
    )
    return Message(title=title, body=_tidy(body), locale=locale)


def render_digest(
    events: Sequence[WarningEvent],
    locale: str,
    customer_name: str,
    tz: str = DEFAULT_TIMEZONE,
    *,
    ack_url: str | None = None,
) -> Message:
    """One message for several held (non-critical) warnings: each with what, why, how long
    and what to do, the most severe first."""
    _check_locale(locale)
    if not events:
        raise ValueError("a digest needs at least one warning")
    zone = check_zone(tz)
    ordered = sorted(events, key=lambda e: (_SEVERITY_ORDER.get(e.severity, 3), e.opened_at_ms))
    items = [(_words(e, locale, zone), format_clock(e.opened_at_ms, zone, locale, e.at_ms)) for e in ordered]
    n = len(items)
    if locale == "zh-CN":
        title = f"【风险提醒汇总】{n}条风险提醒"
    else:
        title = f"Summary: {n} warning{'s' if n != 1 else ''} from your devices"
    body = (
        _env()
        .get_template(f"digest.{locale}.j2")
        .render(customer_name=customer_name.strip(), items=items, count=n, ack_url=ack_url)
    )
    return Message(title=title, body=_tidy(body), locale=locale)


def _figure(value: float, metric: str, locale: str) -> str:
    _, unit = METRIC_LABELS[locale].get(metric, (metric, ""))
    space = " " if locale == "en" and unit and unit != "%" else ""
    return f"{format_number(value, 2)}{space}{unit}"


def _readings_lines(notice: ClaimNotice, locale: str) -> list[str]:
    """One line per metric of the notice's readings: how many, first → last, lowest and highest."""
    zh = locale == "zh-CN"
    lines = []
    for s in summarise(notice.readings):
        label = METRIC_LABELS[locale].get(s.metric, (s.metric, ""))[0]
        if s.low == s.high:
            lines.append(
                f"{label}：{s.readings}次读数，均为{_figure(s.last, s.metric, locale)}"
                if zh
                else f"{label}: {s.readings} reading{'s' if s.readings != 1 else ''}, "
                f"{'all ' if s.readings != 1 else ''}{_figure(s.last, s.metric, locale)}"
            )
            continue
        first, last = _figure(s.first, s.metric, locale), _figure(s.last, s.metric, locale)
        low, high = _figure(s.low, s.metric, locale), _figure(s.high, s.metric, locale)
        lines.append(
            f"{label}：{s.readings}次读数，{first} → {last}（最低{low}，最高{high}）"
            if zh
            else f"{label}: {s.readings} readings, {first} → {last} (lowest {low}, highest {high})"
        )
    return lines


def render_claim_notice(notice: ClaimNotice, locale: str, tz: str = DEFAULT_TIMEZONE) -> Message:
    """The insurer's claims desk's first notice of loss: the reference, who (customer, device),
    what (the risk and the evidence that fired it), when, where (when the device reports a
    position), the evidence's figures and a summary of the device's readings before it — in
    ``locale``, times on ``tz``'s clock."""
    _check_locale(locale)
    zone = check_zone(tz)
    event = WarningEvent(
        warning_id=notice.warning_id,
        tenant=notice.tenant,
        device=notice.device,
        kind=notice.kind,
        risk=notice.risk,
        action="open",
        severity=notice.severity,
        score=1.0,
        at_ms=notice.opened_at_ms,
        opened_at_ms=notice.opened_at_ms,
        predicted_loss_at_ms=notice.opened_at_ms,
        evidence=dict(notice.evidence),
    )
    words = _words(event, locale, zone, absolute=True)
    zh = locale == "zh-CN"
    who = notice.customer_name.strip() or notice.customer_id or notice.device
    if zh:
        title = f"【报案】{notice.ref} · {words.risk.name} · {who}"
    else:
        title = f"First notice of loss {notice.ref}: {words.risk.name} — {who}"
    where = ""
    if notice.lat is not None and notice.lon is not None:
        where = f"{notice.lat:.5f}, {notice.lon:.5f}"
    evidence = [
        f"{k}={format_number(v, 3) if isinstance(v, float) else v}"
        for k, v in notice.evidence.items()
        if k not in ("triggers", "lat", "lon") and not k.endswith(("_at_s", "_ms"))  # positions and times: above
    ]
    body = (
        _env()
        .get_template(f"claim.{locale}.j2")
        .render(
            notice=notice,
            w=words,
            customer_name=notice.customer_name.strip(),
            when=format_datetime(notice.opened_at_ms, zone),
            where=where,
            evidence=", ".join(evidence),
            readings=_readings_lines(notice, locale),
            readings_from=format_datetime(notice.readings_from_ms, zone) if notice.readings_from_ms else "",
        )
    )
    return Message(title=title, body=_tidy(body), locale=locale)
