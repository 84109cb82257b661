"""Pure validation of one MQTT message into a device's readings and its rejects.

No I/O and no clock: the caller passes the device registry and ``now``. Total: whatever the
topic and payload, the answer is a :class:`Verdict` whose refusals carry a reason of
``core.contract.REJECT_REASONS``; nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.contract import (
    MAX_PAYLOAD_BYTES,
    MAX_STATUS_BYTES,
    ContractError,
    DeviceStatus,
    Reading,
    Rejected,
    parse_payload,
    parse_status,
    parse_status_topic,
    parse_telemetry_topic,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What came of one message: accepted readings (possibly none) and refused parts."""

    tenant: str | None
    device: str | None
    kind: str | None
    readings: tuple[Reading, ...] = ()
    refusals: tuple[Rejected, ...] = field(default_factory=tuple)
    status: DeviceStatus | None = None
    """An accepted status (a message on the device's status topic)."""

    @property
    def key(self) -> str | None:
        return None if self.tenant is None else f"{self.tenant}/{self.device}"


def validate_message(
    topic: str,
    payload: bytes,
    registry: Mapping[str, str],
    now_ms: int,
    retention_days: int = 30,
    size: int | None = None,
) -> Verdict:
    """Validate topic, device and payload; a bad reading in a batch is refused alone.
    ``size``: the payload's size on the wire when ``payload`` is only its start (an oversized
    message the subscriber did not keep whole)."""
    try:
        where = parse_telemetry_topic(topic)
    except ContractError as exc:
        return Verdict(None, None, None, refusals=(Rejected(exc.reason, exc.detail, None),))
    kind = registry.get(where.key)
    if kind is None:
        refusal = Rejected("unknown_device", f"device {where.key} is not registered ('forewarn device add')", None)
        return Verdict(where.tenant, where.device, None, refusals=(refusal,))
    if size is not None and size > MAX_PAYLOAD_BYTES:
        refusal = Rejected("too_large", f"payload is {size} bytes, limit {MAX_PAYLOAD_BYTES}", None)
        return Verdict(where.tenant, where.device, kind, refusals=(refusal,))
    try:
        parsed = parse_payload(payload, now_ms, retention_days)
    except ContractError as exc:
        return Verdict(where.tenant, where.device, kind, refusals=(Rejected(exc.reason, exc.detail, None),))
    refusals = tuple(parsed.rejected)
    return Verdict(where.tenant, where.device, kind, tuple(parsed.readings), refusals)


def validate_status(
    topic: str, payload: bytes, registry: Mapping[str, str], now_ms: int, size: int | None = None
) -> Verdict:
    """Validate a message on a status topic: a registered device saying ``online`` or
    ``offline`` (``core.contract.parse_status``); refused whole otherwise, with the reason."""
    try:
        where = parse_status_topic(topic)
    except ContractError as exc:
        return Verdict(None, None, None, refusals=(Rejected(exc.reason, exc.detail, None),))
    kind = registry.get(where.key)
    if kind is None:
        refusal = Rejected("unknown_device", f"device {where.key} is not registered ('forewarn device add')", None)
        return Verdict(where.tenant, where.device, None, refusals=(refusal,))
    if size is not None and size > MAX_STATUS_BYTES:
        refusal = Rejected("too_large", f"status is {size} bytes, limit {MAX_STATUS_BYTES}", None)
        return Verdict(where.tenant, where.device, kind, refusals=(refusal,))
    try:
        status = parse_status(payload, now_ms)
    except ContractError as exc:
        return Verdict(where.tenant, where.device, kind, refusals=(Rejected(exc.reason, exc.detail, None),))
    return Verdict(where.tenant, where.device, kind, status=status)
