"""Warning decisions: from a device's findings to warning events. Pure and picklable.

A :class:`DeviceMonitor` holds one device's detectors and open warnings. The worker keeps one
per device in a changelogged table; ``forewarn eval`` runs the very same class in-process.

Rules, per device and risk type:
- a finding whose score reaches ``open_score`` opens a warning, unless one is already open
  (one open warning per device and risk type, no repeat while it stays open) or the risk is
  in its cool-down after the last one resolved;
- a higher severity on an open warning escalates it once per level;
- the warning resolves when the score stays below ``clear_score`` for ``clear_after_s``
  (hysteresis: a noisy score around the threshold does not flap);
- a warning that is not confirmed again within ``expire_after_s`` expires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.contract import Reading, WarningEvent, warning_id
from core.lifecycle import Action
from detectors.base import SEVERITIES, Finding, RiskDetector
from detectors.profiles import build_detectors


@dataclass(frozen=True, slots=True)
class WarningPolicy:
    open_score: float = 0.5
    clear_score: float = 0.2
    clear_after_s: float = 900.0
    cooldown_s: float = 1800.0
    expire_after_s: float = 6 * 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.clear_score <= self.open_score <= 1:
            raise ValueError("need 0 < clear_score <= open_score <= 1")
        for name in ("clear_after_s", "cooldown_s", "expire_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(slots=True)
class _Open:
    warning_id: str
    opened_at_ms: int
    severity: str
    last_hot_ms: int
    predicted_loss_at_ms: int | None
    calm_since_ms: int | None = None


class DeviceMonitor:
    """One device's detectors and warning state; ``observe`` a reading, get warning events."""

    def __init__(
        self,
        tenant: str,
        device: str,
        kind: str,
        detectors: Iterable[RiskDetector] | None = None,
        policy: WarningPolicy | None = None,
    ) -> None:
        self.tenant = tenant
        self.device = device
        self.kind = kind
        self.detectors = list(detectors) if detectors is not None else build_detectors(kind)
        self.policy = policy or WarningPolicy()
        self.open: dict[str, _Open] = {}
        self.cooldown_until_ms: dict[str, int] = {}
        self.last_ts_ms: int | None = None
        self.last_seq: int | None = None
        self.readings_seen = 0
        self.duplicates = 0

    def observe(self, reading: Reading) -> list[WarningEvent]:
        """Score one reading with every detector that wants it, then decide."""
        if (
            reading.seq is not None
            and self.last_seq is not None
            and self.last_ts_ms is not None
            and reading.seq <= self.last_seq
            and reading.ts <= self.last_ts_ms
        ):  # a duplicate or a replayed record: seen already
            self.duplicates += 1
            return []
        if reading.seq is not None:
            self.last_seq = reading.seq
        self.last_ts_ms = reading.ts if self.last_ts_ms is None else max(self.last_ts_ms, reading.ts)
        self.readings_seen += 1
        x: dict[str, float] = {"ts": reading.ts / 1000, **reading.metrics}
        findings: dict[str, Finding] = {}
        for detector in self.detectors:
            if not detector.wants(x):
                continue
            finding = detector.assess_one(x)
            detector.learn_one(x)
            best = findings.get(finding.risk)
            if best is None or finding.score > best.score:
                findings[finding.risk] = finding
        events: list[WarningEvent] = []
        for risk, finding in findings.items():
            events.extend(self._decide(risk, finding, reading.ts))
        events.extend(self._expire(reading.ts, set(findings)))
        return events

    def _decide(self, risk: str, finding: Finding, now_ms: int) -> list[WarningEvent]:
        policy = self.policy
        current = self.open.get(risk)
        predicted = None if finding.time_to_loss_s is None else now_ms + int(finding.time_to_loss_s * 1000)
        if current is None:
            if finding.score < policy.open_score or now_ms < self.cooldown_until_ms.get(risk, 0):
                return []
            wid = warning_id(self.tenant, self.device, risk, now_ms)
            self.open[risk] = _Open(wid, now_ms, finding.severity, now_ms, predicted)
            return [self._event(wid, risk, "open", finding, now_ms, now_ms, predicted)]
        if finding.score >= policy.clear_score:
            current.calm_since_ms = None
            current.last_hot_ms = now_ms
            if predicted is not None:
                current.predicted_loss_at_ms = predicted
            if SEVERITIES.index(finding.severity) > SEVERITIES.index(current.severity):  # type: ignore[arg-type]
                current.severity = finding.severity
                return [
                    self._event(
                        current.warning_id,
                        risk,
                        "escalate",
                        finding,
                        now_ms,
                        current.opened_at_ms,
                        current.predicted_loss_at_ms,
                    )
                ]
            return []
        if current.calm_since_ms is None:
            current.calm_since_ms = now_ms
        if now_ms - current.calm_since_ms >= policy.clear_after_s * 1000:
            del self.open[risk]
            self.cooldown_until_ms[risk] = now_ms + int(policy.cooldown_s * 1000)
            return [
                self._event(
                    current.warning_id,
                    risk,
                    "resolve",
                    finding,
                    now_ms,
                    current.opened_at_ms,
                    current.predicted_loss_at_ms,
                )
            ]
        return []

    def _expire(self, now_ms: int, seen: set[str]) -> list[WarningEvent]:
        events = []
        for risk, current in list(self.open.items()):
            if risk in seen or now_ms - current.last_hot_ms < self.policy.expire_after_s * 1000:
                continue
            del self.open[risk]
            finding = Finding(risk, 0.0, current.severity)  # type: ignore[arg-type]
            events.append(
                self._event(
                    current.warning_id,
                    risk,
                    "expire",
                    finding,
                    now_ms,
                    current.opened_at_ms,
                    current.predicted_loss_at_ms,
                )
            )
        return events

    def _event(
        self,
        wid: str,
        risk: str,
        action: Action,
        finding: Finding,
        now_ms: int,
        opened_at_ms: int,
        predicted: int | None,
    ) -> WarningEvent:
        return WarningEvent(
            warning_id=wid,
            tenant=self.tenant,
            device=self.device,
            kind=self.kind,
            risk=risk,
            action=action,
            severity=finding.severity,
            score=round(finding.score, 4),
            at_ms=now_ms,
            opened_at_ms=opened_at_ms,
            predicted_loss_at_ms=predicted,
            evidence=dict(finding.evidence),
        )
