"""First notice of loss: what the insurer's claims desk gets when a loss is under way. Pure.

A warning that reports a loss happening now — a risk the catalogue marks ``loss_under_way``,
critical, time to loss 0 (``core.risks.opens_claim``: a wet leak sensor, a burst pipe, smoke,
a vehicle's crash) — opens a :class:`ClaimNotice`: its reference, who and what, when, where,
the evidence and the device's readings of the :data:`READINGS_BEFORE_S` before. The notifier
(``notifiers.dispatch``) stores it (``claim_notices``), sends it to the tenant's claims
contacts, and gives its reference in the customer's message.

The reference is derived from the warning id (and the local date it opened), so a replayed
warning finds the same notice: ``FNOL-20261130-4F2A9C``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.localtime import local_datetime

READINGS_BEFORE_S = 600.0
"""A notice carries the device's readings from this long before the warning opened."""
CLAIM_ACTION = "claim"
"""The ``deliveries.action`` of a claim notice's messages to the claims desk."""
REF_DIGITS = (6, 8, 10, 12)
"""Hex digits of the warning id's hash in a reference: the first a reference not yet taken."""

Series = Mapping[str, Sequence[Sequence[float]]]
"""Metric → ``[[ts_ms, value], …]`` in time order."""


def claim_refs(warning_id: str, opened_at_ms: int, zone: ZoneInfo) -> list[str]:
    """The references a notice of ``warning_id`` may take, the shortest first: ``FNOL-``, the
    local date the warning opened, and the first hex digits of a hash of the warning id (more
    digits only should a shorter reference be taken already by another warning).

    >>> from core.localtime import zone
    >>> claim_refs("6f1c1c1e-57a1-4b0b-9d1e-0f0e0a0c0d0e", 1_764_460_800_000, zone("Asia/Shanghai"))[0]
    'FNOL-20251130-60CAD4'
    """
    digest = hashlib.sha256(warning_id.encode()).hexdigest().upper()
    day = local_datetime(opened_at_ms, zone).strftime("%Y%m%d")
    return [f"FNOL-{day}-{digest[:n]}" for n in REF_DIGITS]


def series_of(rows: Iterable[tuple[str, datetime, float]]) -> dict[str, list[list[float]]]:
    """Stored readings ``(metric, ts, value)`` as a series per metric, in time order.

    >>> from datetime import UTC, datetime
    >>> series_of([("speed_kmh", datetime(2025, 11, 30, tzinfo=UTC), 72.0)])
    {'speed_kmh': [[1764460800000, 72.0]]}
    """
    out: dict[str, list[list[float]]] = {}
    for metric, ts, value in sorted(rows, key=lambda r: (r[1], r[0])):
        out.setdefault(metric, []).append([int(ts.timestamp() * 1000), float(value)])
    return out


def place(evidence: Mapping[str, Any], series: Series) -> tuple[float | None, float | None]:
    """Where: the evidence's ``lat``/``lon`` (the detector's last known position), else the
    last position among the readings; ``(None, None)`` when the device reports none."""
    lat, lon = evidence.get("lat"), evidence.get("lon")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and not isinstance(lat, bool):
        return float(lat), float(lon)
    lats, lons = series.get("lat") or [], series.get("lon") or []
    if lats and lons:
        return float(lats[-1][1]), float(lons[-1][1])
    return None, None


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """One metric's readings in a notice, in a line: how many, first and last, lowest and highest."""

    metric: str
    readings: int
    first: float
    last: float
    low: float
    high: float


def summarise(series: Series) -> list[SeriesSummary]:
    """Each metric's readings summarised, by metric name.

    >>> summarise({"speed_kmh": [[0, 80.0], [1000, 64.0], [2000, 0.0]]})
    [SeriesSummary(metric='speed_kmh', readings=3, first=80.0, last=0.0, low=0.0, high=80.0)]
    """
    out = []
    for metric in sorted(series):
        values = [float(v) for _, v in series[metric]]
        if values:
            out.append(SeriesSummary(metric, len(values), values[0], values[-1], min(values), max(values)))
    return out


@dataclass(frozen=True, slots=True)
class ClaimNotice:
    """A first notice of loss, as stored (``claim_notices``) and as the claims desk reads it."""

    ref: str
    tenant: str
    device: str
    kind: str
    risk: str
    severity: str
    warning_id: str
    opened_at_ms: int
    customer_id: str | None = None
    customer_name: str = ""
    lat: float | None = None
    lon: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    readings: Series = field(default_factory=dict)
    readings_from_ms: int | None = None
    """The start of the readings' window (they end when the warning opened)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any], customer_name: str = "") -> ClaimNotice:
        """A notice from its ``claim_notices`` row (``readings``: ``{"from_ms", "to_ms", "series"}``)."""
        readings = row.get("readings") or {}
        opened = row["opened_at"]
        return cls(
            ref=str(row["ref"]),
            tenant=str(row["tenant"]),
            device=str(row["device"]),
            kind=str(row.get("kind") or ""),
            risk=str(row["risk"]),
            severity=str(row["severity"]),
            warning_id=str(row["warning_id"]),
            opened_at_ms=opened if isinstance(opened, int) else int(opened.timestamp() * 1000),
            customer_id=row.get("customer_id"),
            customer_name=customer_name,
            lat=row.get("lat"),
            lon=row.get("lon"),
            evidence=dict(row.get("evidence") or {}),
            readings=dict(readings.get("series") or {}),
            readings_from_ms=readings.get("from_ms"),
        )
