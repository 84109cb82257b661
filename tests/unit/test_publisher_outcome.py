"""A device's publisher tells a PUBACK that took the message from one that did not (paho's own
message info and reason codes, no broker)."""

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from core.mqtt import Publisher


def answered(publisher: Publisher, mid: int, code: int) -> paho.MQTTMessageInfo:
    info = paho.MQTTMessageInfo(mid)
    publisher._on_publish(publisher._client, None, mid, ReasonCode(PacketTypes.PUBACK, identifier=code), None)
    info._set_as_published()
    return info


@pytest.mark.parametrize(
    ("code", "taken"),
    [(0x00, True), (0x10, False), (0x87, False), (0x97, False), (0x80, False)],
    ids=["success", "no-matching-subscribers", "not-authorized", "quota-exceeded", "unspecified"],
)
def test_a_puback_counts_only_when_the_broker_took_the_message(code: int, taken: bool) -> None:
    publisher = Publisher("127.0.0.1", 1, "outcome-test")
    assert publisher.delivered(answered(publisher, 7, code)) is taken


def test_no_answer_yet_is_none_and_a_reused_message_id_is_judged_by_its_latest_answer() -> None:
    publisher = Publisher("127.0.0.1", 1, "outcome-test")
    assert publisher.delivered(paho.MQTTMessageInfo(3)) is None
    assert publisher.delivered(answered(publisher, 3, 0x10)) is False
    assert publisher.delivered(answered(publisher, 3, 0x00)) is True
