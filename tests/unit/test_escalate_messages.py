"""What the customer and the claims desk hear when water on the floor escalates a warning.

An escalated slow-leak or power-cut warning whose evidence says ``now: water_leak`` reads as a
water leak happening now (what, why, how long, what to do: shut the main valve), says which
warning it follows, in both locales; the notifier opens the first notice of loss of that leak,
at that moment, and the customer's escalation message is sent even after an earlier escalation
of the same warning. A replay opens nothing twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from test_agents import MemoryStore

from core.contract import WarningEvent
from notifiers.claims import READINGS_BEFORE_S, ClaimNotice
from notifiers.dispatch import Dispatcher
from notifiers.render import render_claim_notice, render_warning

OPENED = 1_763_700_000_000  # 2025-11-21 12:40 in Shanghai
WET = OPENED + 3 * 3_600_000
WID = "0b1e7d5e-8c1a-4e0f-9a53-2f6c1d0e7a11"


def event(risk: str, action: str, severity: str, at_ms: int, evidence: dict[str, Any], loss_ms: int | None) -> Any:
    return WarningEvent(
        warning_id=WID,
        tenant="acme",
        device="home-1",
        kind="home",
        risk=risk,
        action=action,  # type: ignore[arg-type]
        severity=severity,
        score=1.0,
        at_ms=at_ms,
        opened_at_ms=OPENED,
        predicted_loss_at_ms=loss_ms,
        evidence=evidence,
    )


WATER = {"now": "water_leak", "water_leak": True, "wet_for_s": 0.0, "duration_min": 0.0}


def escalated(risk: str) -> WarningEvent:
    return event(risk, "escalate", "critical", WET, dict(WATER), WET)


SAID = {
    "en": (
        "Critical: Water leak — happening now",
        {"slow_leak": "continuous slow leak", "power_cut": "power cut"},
        [
            "since our warning about {was}: it is now water leak.",
            "Why we think so: the leak sensor is wet.",
            "Water is on the floor now and can cause water damage to your property",
            "1. Turn off the main water valve now",
            "reference FNOL-20251121-ABCDEF",
        ],
    ),
    "zh-CN": (
        "【紧急】漏水 · 正在发生",
        {"slow_leak": "持续渗漏", "power_cut": "停电"},
        [
            "我们此前已就{was}向您发出预警，现在风险已升级为漏水",
            "依据：漏水传感器检测到积水。",
            "地面已有积水",
            "1. 立即关闭总水阀",
            "编号 FNOL-20251121-ABCDEF",
        ],
    ),
}
"""Per locale: the title, the name of the warning escalated, what the body says (what, after which
warning, why, how long, what to do, the claim's reference)."""


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("risk", ["slow_leak", "power_cut"])
def test_escalate_message_says_water_is_on_the_floor_and_what_to_do(risk: str, locale: str) -> None:
    msg = render_warning(escalated(risk), locale, "Ms Lin", claim_ref="FNOL-20251121-ABCDEF")
    title, names, lines = SAID[locale]
    assert msg.title == title
    assert [line for line in (x.format(was=names[risk]) for x in lines) if line not in msg.body] == []


def test_escalate_message_of_its_own_risk_reads_as_before() -> None:
    own = event("power_cut", "escalate", "critical", WET, {"mains_v": 0, "outage_for_s": 11_000, "hold_s": 14_400}, WET)
    msg = render_warning(own, "en", "Ms Lin")
    assert (
        msg.title.startswith("Critical: Power cut") and "It has become more serious since our last message." in msg.body
    )


def test_escalate_by_water_on_the_floor_opens_its_claim_and_its_message_after_an_earlier_escalation() -> None:
    phone = {"id": "c-lin", "name": "Ms Lin", "locale": "en", "notify_urls": ["json://phone"]}
    store = MemoryStore({("acme", "home-1"): phone})
    store.tenant_contacts[("acme", "claims")] = ["json://claims-desk"]
    store.readings[("acme", "home-1", "water_leak", WET)] = 1.0
    dispatcher = Dispatcher(store, claim_wait_s=0.0)
    outage = {"mains_v": 0, "outage_for_s": 600, "hold_s": 14_400}
    events = [
        event("power_cut", "open", "warning", OPENED, outage, OPENED + 4 * 3_600_000),
        event("power_cut", "escalate", "critical", OPENED + 3_600_000, outage, OPENED + 4 * 3_600_000),
        escalated("power_cut"),
        escalated("power_cut"),  # a replay
    ]

    async def handle_all() -> None:
        for e in events:
            await dispatcher.handle(e)

    asyncio.run(handle_all())
    assert [(row["action"], row["audience"], row["url"]) for row in store.outbox] == [
        ("open", "customer", "json://phone"),
        ("escalate:critical", "customer", "json://phone"),
        ("escalate:water_leak", "customer", "json://phone"),  # its own: not lost to the first escalation
        ("claim", "claims", "json://claims-desk"),
    ]
    [notice] = store.claim_notices.values()
    assert dispatcher.stats.claims == 1
    assert notice["risk"] == "water_leak" and notice["severity"] == "critical"
    assert notice["opened_at"] == datetime.fromtimestamp(WET / 1000, UTC), "the moment water reached the floor"
    assert notice["readings"]["to_ms"] == WET and notice["readings"]["from_ms"] == WET - READINGS_BEFORE_S * 1000
    assert notice["readings"]["series"] == {"water_leak": [[WET, 1.0]]} and notice["readings"]["complete"]
    assert notice["ref"].startswith("FNOL-20251121-")

    # the deliveries find the notice: the customer's message names it, the claims desk reads the leak
    row = {"warning_id": WID, "risk": "power_cut", "evidence": dict(WATER), "customer_name": "Ms Lin"}
    found = asyncio.run(dispatcher._claim_of({**row, "audience": "claims"}))
    assert isinstance(found, ClaimNotice) and found.ref == notice["ref"]
    assert asyncio.run(dispatcher._claim_of({**row, "audience": "customer"})) == found
    desk = render_claim_notice(found, "en")
    assert desk.title == f"First notice of loss {notice['ref']}: Water leak — Ms Lin"
    assert asyncio.run(dispatcher._claim_of({**row, "evidence": outage, "audience": "claims"})) is None


def test_a_warning_that_escalates_twice_reaches_the_customer_twice() -> None:
    """advisory → warning → critical: each level is a message of its own in the outbox (one per
    warning, action and channel), and a replay of either adds nothing."""
    phone = {"id": "c-lin", "name": "Ms Lin", "locale": "en", "notify_urls": ["json://phone"]}
    store = MemoryStore({("acme", "home-1"): phone})
    dispatcher = Dispatcher(store, claim_wait_s=0.0)
    damp = {"humidity_pct": 78.0}
    events = [
        event("mould_risk", "open", "advisory", OPENED, damp, None),
        event("mould_risk", "escalate", "warning", OPENED + 3_600_000, damp, None),
        event("mould_risk", "escalate", "critical", OPENED + 7_200_000, damp, None),
        event("mould_risk", "escalate", "critical", OPENED + 7_200_000, damp, None),  # a replay
    ]

    async def handle_all() -> None:
        for e in events:
            await dispatcher.handle(e)

    asyncio.run(handle_all())
    assert [row["action"] for row in store.outbox] == ["open", "escalate:warning", "escalate:critical"]
