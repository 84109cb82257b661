"""Warning decisions: from a device's findings to warning events. Pure.

A :class:`DeviceMonitor` holds one device's detectors and open warnings; ``forewarn eval``
runs the very same class in-process. The worker keeps each device's monitor as plain data,
:meth:`DeviceMonitor.to_state` (versioned JSON in a changelogged table), and rebuilds it with
:meth:`DeviceMonitor.from_state` from detectors built with the configuration in force then:

- the device's identity, open warnings, cool-downs, last time and sequence number and its
  counters come back as they were;
- each detector's state is saved under its stable name (the risk type; ``sensor_stuck:temp_c``
  for a stuck-sensor check) without its parameters, and loaded into the freshly built detector
  of that name when it fits (``detectors.state``). A detector whose saved state is missing or
  does not fit (its code changed, a name nobody knows any more) starts afresh, and a saved
  detector the device no longer runs is dropped. A changed parameter keeps the state and takes
  effect from the next reading.

Rules, per device and risk type:
- a finding whose score reaches ``open_score`` opens a warning, unless one is already open
  (one open warning per device and risk type, no repeat while it stays open) or the risk is
  in its cool-down after the last one resolved — except a loss under way (water on the floor,
  smoke: a risk the catalogue marks ``loss_under_way`` whose finding says it is happening now),
  which reopens at once: a second leak is never swallowed by the first one's cool-down;
- one warning per device covers a family of related risks (:data:`RELATED`: the water
  escaping in a home — leak sensor, burst, slow leak; a trip's driving — harsh braking,
  speeding; a home's power — the cut and the battery draining while it lasts): a finding of a
  related risk while one of the family is open joins that warning (keeps it open, counted in
  ``joined``, logged) instead of opening a second — unless it says more than the open one: a
  higher severity, or a loss under way now while the open one only forecasts one. Then it
  **escalates** the open warning (one incident, one warning thread the customer sees grow
  worse): an ``escalate`` event of the open warning with the new severity, the finding's own
  evidence and ``evidence["now"]`` naming the risk now happening (``core.risks.risk_now``:
  water on the floor after a slow-leak warning), from which the customer's message takes its
  words and the notifier opens the first notice of loss. A loss under way also escalates the
  open warning of a risk that foresaw it outside its family (:data:`FORESEEN`: water on the
  floor while a home's power is cut, its sump pump stopped). It is said once: a second such
  finding at the same level joins; and once said, the warning covers that loss's family (the
  burst-pipe finding of the power cut's flood joins it too);
- a higher severity on an open warning escalates it once per level;
- the warning resolves when the score stays below ``clear_score`` for ``clear_after_s``
  (hysteresis: a noisy score around the threshold does not flap; ``clear_after_s_by_risk``
  gives a trip's driving an hour, so one risky trip is one warning);
- a warning that is not confirmed again within ``expire_after_s`` expires.

Silence (``streams.silence``) is decided on the caller's clock, not from a reading: the caller
says when readings arrived (:meth:`DeviceMonitor.heard`), what the device said on its status
topic (:meth:`DeviceMonitor.status`), and asks at the time :meth:`DeviceMonitor.silence_due_ms`
names (:meth:`DeviceMonitor.tick`). A protective device (one that watches a risk whose loss is
under way when it fires: a leak or smoke sensor) that goes silent opens a ``device_silent``
warning — critical while another of its warnings is open (a leak sensor gone quiet during a
freeze forecast) — which resolves when its readings come back. A device that goes silent while
one of its warnings is critical already opens nothing new: the customer has been told the
worst (smoke, a battery empty), the silence is that loss's consequence, and the critical
warning's follow-ups go on; it is logged and counted (``joined``). Another device's silence is
counted (``silences`` in its state) and logged, never sent to the customer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.contract import Reading, WarningEvent, warning_id
from core.lifecycle import Action
from core.risks import RISKS, SILENT, protective
from detectors.base import SEVERITIES, Finding, RiskDetector, Severity
from detectors.profiles import Overrides, build_detectors
from detectors.silent import DeviceSilent
from detectors.state import capture, restore
from streams.silence import SilenceWatch

log = logging.getLogger(__name__)

STATE_VERSION = 1
"""The version of :meth:`DeviceMonitor.to_state`'s layout (``"v"``)."""


def loss_under_way(risk: str, finding: Finding) -> bool:
    """The finding says a loss of a kind that is happening now is happening now (leak, smoke)."""
    known = RISKS.get(risk)
    return bool(known and known.loss_under_way and finding.time_to_loss_s is not None and finding.time_to_loss_s < 60)


RELATED: dict[str, str] = {
    "water_leak": "water",
    "burst_pipe": "water",
    "slow_leak": "water",
    "harsh_braking": "driving",
    "speeding": "driving",
    "power_cut": "power",
    "battery_drain": "power",
}
"""Risk type → its family: one open warning of a family covers its related risks on a device."""

FORESEEN: dict[str, tuple[str, ...]] = {"power_cut": ("water_leak",)}
"""An open warning's risk type → the losses under way outside its family that it forewarns of:
a power cut stops a home's sump pump, so water on the floor during it escalates its warning."""


def related(open_risk: str, risk: str) -> bool:
    """Whether a finding of ``risk`` concerns an open warning of ``open_risk`` (another risk):
    the same family (:data:`RELATED`), or a loss the open one foresaw (:data:`FORESEEN`).

    >>> related("slow_leak", "water_leak"), related("power_cut", "water_leak"), related("power_cut", "slow_leak")
    (True, True, False)
    """
    if open_risk == risk:
        return False
    family = RELATED.get(risk)
    return (family is not None and RELATED.get(open_risk) == family) or risk in FORESEEN.get(open_risk, ())


@dataclass(frozen=True, slots=True)
class WarningPolicy:
    open_score: float = 0.5
    clear_score: float = 0.2
    clear_after_s: float = 900.0
    cooldown_s: float = 1800.0
    expire_after_s: float = 6 * 3600.0
    clear_after_s_by_risk: tuple[tuple[str, float], ...] = (("harsh_braking", 3600.0), ("speeding", 3600.0))
    """Risk types that clear after a calm of their own length (a trip's driving: an hour)."""

    def __post_init__(self) -> None:
        if not 0 < self.clear_score <= self.open_score <= 1:
            raise ValueError("need 0 < clear_score <= open_score <= 1")
        for name in ("clear_after_s", "cooldown_s", "expire_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if any(seconds < 0 for _, seconds in self.clear_after_s_by_risk):
            raise ValueError("clear_after_s_by_risk must be >= 0")

    def clear_after(self, risk: str) -> float:
        """How long ``risk``'s score must stay below ``clear_score`` for its warning to resolve."""
        for name, seconds in self.clear_after_s_by_risk:
            if name == risk:
                return seconds
        return self.clear_after_s


@dataclass(slots=True)
class _Open:
    warning_id: str
    opened_at_ms: int
    severity: str
    last_hot_ms: int
    predicted_loss_at_ms: int | None
    calm_since_ms: int | None = None
    now: str | None = None
    """The related risk whose loss under way escalated this warning (said once)."""


def detectors_for(kind: str, overrides: Overrides | None, where: str = "") -> list[RiskDetector]:
    """The detectors of a device of ``kind`` with its configured ``overrides``; the overrides
    of a risk type that do not build (configuration written for older code) are left out
    with an error in the log, and that detector runs with its profile's parameters."""
    try:
        return build_detectors(kind, overrides)
    except ValueError:
        pass
    usable: dict[str, Mapping[str, Any] | None] = {}
    for risk, params in (overrides or {}).items():
        try:
            build_detectors(kind, {risk: params})
        except ValueError as exc:
            log.error("%signoring the configured parameters of %s: %s", f"{where}: " if where else "", risk, exc)
        else:
            usable[risk] = params
    return build_detectors(kind, usable)


_Step = tuple[
    Callable[[Mapping[str, float]], bool] | None,
    Callable[[Mapping[str, float]], Finding],
    Callable[[Mapping[str, float]], Finding] | None,
    Callable[[Mapping[str, float]], None],
    str,
]
"""One detector's part in :meth:`DeviceMonitor.observe`: its ``wants`` (``None``: need not be
asked), ``assess_one``, ``assess_bare`` (``None``: it has none), ``learn_one`` and its risk."""


def _bare_of(detector: RiskDetector) -> Callable[[Mapping[str, float]], Finding] | None:
    """The detector's ``assess_bare`` (``detectors.physical.TwoWayAssess``), if it has one
    that goes with its ``assess_one``: not when a subclass or the instance itself replaced
    ``assess_one`` and left ``assess_bare`` as it was."""
    cls = type(detector)
    if getattr(cls, "assess_bare", None) is None:
        return None
    # Not vars(detector): on Python 3.11 that gives the instance a dict of its own, and every
    # attribute a detector reads then costs more.
    if getattr(detector.assess_one, "__func__", None) is not getattr(cls, "assess_one", None):
        return None  # replaced on the instance
    defines = [c for c in cls.__mro__ if "assess_one" in vars(c) or "assess_bare" in vars(c)]
    if "assess_one" not in vars(defines[0]) or "assess_bare" not in vars(defines[0]):
        return None
    return detector.assess_bare  # type: ignore[attr-defined, no-any-return]


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
        self.joined: dict[str, int] = {}
        """Findings that joined an open warning instead of opening one, per risk type (and
        ``device_silent`` for a silence during a critical warning)."""
        self.silence = SilenceWatch()
        rules = [d for d in self.detectors if isinstance(d, DeviceSilent)]
        self.silence_rule: DeviceSilent | None = rules[0] if rules else None
        """The silence rule's parameters (``None``: configured away, the device is not watched)."""
        self.protective = protective(d.risk for d in self.detectors)
        """A leak or smoke sensor: its silence is a warning."""
        self._plans: dict[tuple[str, ...], list[_Step]] = {}
        self._plans_of: list[RiskDetector] = self.detectors

    def _plan(self, x: Mapping[str, float], metrics: tuple[str, ...]) -> list[_Step]:
        """The detectors that may want a reading carrying ``metrics`` (and ``"ts"``), each as
        its ``wants`` if that must still be asked (a detector that overrides it may look at the
        values; the base class looks only at which metrics are there, else ``None``), its
        ``assess_one``, its ``assess_bare`` if it has one, its ``learn_one`` (bound once: not
        looked up for every reading) and its risk. A device sends the same few sets of metrics
        over and over: this is worked out once per set, not per reading."""
        if self._plans_of is not self.detectors or len(self._plans) >= 64:
            self._plans, self._plans_of = {}, self.detectors
        plan: list[_Step] = [
            (
                detector.wants if type(detector).wants is not RiskDetector.wants else None,
                detector.assess_one,
                _bare_of(detector),
                detector.learn_one,
                detector.risk,
            )
            for detector in self.detectors
            if type(detector).wants is not RiskDetector.wants or detector.wants(x)
        ]
        self._plans[metrics] = plan
        return plan

    def _named_detectors(self) -> list[tuple[str, RiskDetector]]:
        """Each detector with its stable name (``#2`` … added should two share one)."""
        named: list[tuple[str, RiskDetector]] = []
        seen: set[str] = set()
        for detector in self.detectors:
            name = base = detector.instance_name
            n = 1
            while name in seen:
                n += 1
                name = f"{base}#{n}"
            seen.add(name)
            named.append((name, detector))
        return named

    def to_state(self) -> dict[str, Any]:
        """Everything this monitor has learnt, as plain JSON-able data with a version ``"v"``:
        no class paths, no parameters (those come from the configuration on restore)."""
        return {
            "v": STATE_VERSION,
            "tenant": self.tenant,
            "device": self.device,
            "kind": self.kind,
            "open": {
                risk: {
                    "warning_id": w.warning_id,
                    "opened_at_ms": w.opened_at_ms,
                    "severity": w.severity,
                    "last_hot_ms": w.last_hot_ms,
                    "predicted_loss_at_ms": w.predicted_loss_at_ms,
                    "calm_since_ms": w.calm_since_ms,
                    **({"now": w.now} if w.now else {}),
                }
                for risk, w in self.open.items()
            },
            "cooldown_until_ms": dict(self.cooldown_until_ms),
            "last_ts_ms": self.last_ts_ms,
            "last_seq": self.last_seq,
            "readings_seen": self.readings_seen,
            "duplicates": self.duplicates,
            "joined": dict(self.joined),
            "detectors": {name: capture(detector) for name, detector in self._named_detectors()},
            "silence": self.silence.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        detectors: Iterable[RiskDetector] | None = None,
        policy: WarningPolicy | None = None,
    ) -> DeviceMonitor:
        """The monitor :meth:`to_state` saved, with ``detectors`` (freshly built from the
        configuration in force now; default: the kind's profile) taking their saved state where
        it fits. :class:`ValueError` for state of another version or shape."""
        if not isinstance(state, Mapping) or state.get("v") != STATE_VERSION:
            version = state.get("v") if isinstance(state, Mapping) else None
            raise ValueError(f"device state of version {version!r}; this code reads version {STATE_VERSION}")
        try:
            monitor = cls(str(state["tenant"]), str(state["device"]), str(state["kind"]), detectors, policy)
            monitor.open = {str(risk): _Open(**fields) for risk, fields in state["open"].items()}
            monitor.cooldown_until_ms = {str(risk): int(ms) for risk, ms in state["cooldown_until_ms"].items()}
            monitor.last_ts_ms = state["last_ts_ms"]
            monitor.last_seq = state["last_seq"]
            monitor.readings_seen = int(state["readings_seen"])
            monitor.duplicates = int(state["duplicates"])
            monitor.joined = {str(risk): int(n) for risk, n in state.get("joined", {}).items()}
            saved = dict(state["detectors"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"device state without the shape of version {STATE_VERSION}: {exc!r}") from None
        try:  # absent from state saved before devices were watched for silence: a fresh watch
            monitor.silence = SilenceWatch.from_state(state.get("silence"))
        except ValueError as exc:
            log.warning("%s/%s: %s; watching for silence afresh", monitor.tenant, monitor.device, exc)
        fresh = [name for name, detector in monitor._named_detectors() if not restore(detector, saved.get(name))]
        if fresh:
            log.info("%s/%s: no saved state fits %s; starting afresh", monitor.tenant, monitor.device, ", ".join(fresh))
        return monitor

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
        metrics = tuple(reading.metrics)
        plan = self._plans.get(metrics) if self._plans_of is self.detectors else None
        if plan is None:
            plan = self._plan(x, metrics)
        # A finding below open_score of a risk with no open warning is dropped at once (below):
        # such a detector is asked with its assess_bare, which may leave out the evidence of a
        # finding scoring 0; a risk with an open warning gets assess_one's (a resolve quotes it).
        open_score, open_now = self.policy.open_score, self.open
        made: list[Finding] = []
        hot = False
        for wants, assess, bare, learn, risk in plan:
            if wants is not None and not wants(x):
                continue
            finding = assess(x) if bare is None or risk in open_now else bare(x)
            learn(x)
            made.append(finding)
            if finding.score >= open_score:
                hot = True
        if not (hot or open_now):
            return []  # nothing open and nothing to open: what the rest would say, cheaply
        findings: dict[str, Finding] = {}
        for finding in made:
            risk = finding.risk
            best = findings.get(risk)
            if best is None or finding.score > best.score:
                findings[risk] = finding
        events: list[WarningEvent] = []
        for risk, finding in findings.items():
            if finding.score < open_score and risk not in open_now:
                continue  # nothing open and nothing to open: what _decide would say, cheaply
            events.extend(self._decide(risk, finding, reading.ts))
        if open_now:
            events.extend(self._expire(reading.ts, set(findings)))
        return events

    def consider(self, finding: Finding, at_ms: int) -> list[WarningEvent]:
        """Decide a finding made outside the device's own detectors (the fleet model scores many
        devices at once, ``streams.fleet``) as a detector's finding at ``at_ms`` would be."""
        if finding.score < self.policy.open_score and finding.risk not in self.open:
            return []
        return self._decide(finding.risk, finding, at_ms)

    # ------------------------------------------------------------------ silence

    def heard(self, at_ms: int) -> list[WarningEvent]:
        """Readings of this device arrived at ``at_ms`` (call before :meth:`observe` -ing them):
        the ``device_silent`` warning resolves if the device was silent."""
        if not self.silence.heard(at_ms):
            return []
        current = self.open.pop(SILENT, None)
        if current is None:
            log.info("%s/%s is heard from again", self.tenant, self.device)
            return []
        silent_min = (at_ms - current.opened_at_ms) / 60_000
        finding = Finding(SILENT, 0.0, current.severity, None, {"duration_min": round(silent_min, 1)})  # type: ignore[arg-type]
        return [self._event(current.warning_id, SILENT, "resolve", finding, at_ms, current.opened_at_ms, None)]

    def status(self, state: str, at_ms: int, retained: bool = False) -> list[WarningEvent]:
        """The device said ``online`` or ``offline`` (arriving at ``at_ms``; ``retained``: the
        broker's replay on subscribing). Decides at once (a grace of zero)."""
        self.silence.status(state, at_ms, retained)
        return self.tick(at_ms)

    def silence_due_ms(self) -> int | None:
        """When to :meth:`tick` next: the device turns silent then if nothing arrives."""
        return None if self.silence_rule is None else self.silence.due_ms(self.silence_rule)

    def tick(self, now_ms: int) -> list[WarningEvent]:
        """The clock says ``now_ms``: is the device silent? A protective device's silence opens
        a ``device_silent`` warning (critical while another of its warnings is open)."""
        rule = self.silence_rule
        if rule is None or not self.silence.check(now_ms, rule):
            return []
        quiet_since = self.silence.quiet_since_ms()
        if not self.protective:
            log.info(
                "%s/%s (%s) is silent (%s); not a protective device",
                self.tenant,
                self.device,
                self.kind,
                self.silence.reason,
            )
            return []
        if SILENT in self.open:
            return []
        others = sorted(risk for risk in self.open if risk != SILENT)
        told = [risk for risk in others if self.open[risk].severity == "critical"]
        if told:
            self.joined[SILENT] = self.joined.get(SILENT, 0) + 1
            log.info(
                "%s/%s is silent (%s) while its %s warning is critical: no new warning",
                self.tenant,
                self.device,
                self.silence.reason,
                told[0],
            )
            return []
        severity: Severity = "critical" if others else "warning"
        evidence: dict[str, Any] = {
            "reason": self.silence.reason,
            "threshold_s": round(rule.threshold_s(self.silence.usual_interval_s), 1),
        }
        if quiet_since is not None:
            evidence["duration_min"] = round((now_ms - quiet_since) / 60_000, 1)
            evidence["quiet_since_ms"] = quiet_since
        if self.silence.usual_interval_s is not None:
            evidence["usual_interval_s"] = round(self.silence.usual_interval_s, 1)
        if others:
            evidence["open_risks"] = ",".join(others)
        wid = warning_id(self.tenant, self.device, SILENT, now_ms)
        self.open[SILENT] = _Open(wid, now_ms, severity, now_ms, None)
        return [self._event(wid, SILENT, "open", Finding(SILENT, 1.0, severity, None, evidence), now_ms, now_ms, None)]

    # ------------------------------------------------------------------ findings

    def _decide(self, risk: str, finding: Finding, now_ms: int) -> list[WarningEvent]:
        policy = self.policy
        current = self.open.get(risk)
        predicted = None if finding.time_to_loss_s is None else now_ms + int(finding.time_to_loss_s * 1000)
        if current is None:
            if finding.score < policy.open_score:
                return []
            if now_ms < self.cooldown_until_ms.get(risk, 0) and not loss_under_way(risk, finding):
                return []
            joined = self._joins_related(risk, finding, now_ms)
            if joined is not None:
                return joined
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
        if now_ms - current.calm_since_ms >= policy.clear_after(risk) * 1000:
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

    def _joins_related(self, risk: str, finding: Finding, now_ms: int) -> list[WarningEvent] | None:
        """What ``finding`` (of a risk with no open warning) does to the open warning of a
        related risk (:func:`related`; one of its family first): ``None`` when there is none
        (it opens its own); else it keeps that warning hot and joins it (``[]``), or, when it says
        more — a higher severity, or a loss under way now that the open one only forecast and has
        not yet been told — escalates it (``[escalate]``, ``evidence["now"]`` naming ``risk``)."""
        family = RELATED.get(risk)
        candidates = [other for other in self.open if related(other, risk) or self._told_of(other, family)]
        if not candidates:
            return None
        other = min(candidates, key=lambda o: RELATED.get(o) != family)
        current = self.open[other]
        current.last_hot_ms = now_ms
        current.calm_since_ms = None
        higher = SEVERITIES.index(finding.severity) > SEVERITIES.index(current.severity)  # type: ignore[arg-type]
        under_way = loss_under_way(risk, finding) and not RISKS[other].loss_under_way and current.now is None
        if not (higher or under_way):
            if risk not in self.joined:
                log.info("%s/%s: %s joins the open %s warning", self.tenant, self.device, risk, other)
            self.joined[risk] = self.joined.get(risk, 0) + 1
            return []
        severity: Severity = finding.severity if higher else current.severity  # type: ignore[assignment]
        current.severity = severity
        if loss_under_way(risk, finding):
            current.now = risk
        if finding.time_to_loss_s is not None:
            current.predicted_loss_at_ms = now_ms + int(finding.time_to_loss_s * 1000)
        log.info("%s/%s: %s escalates the open %s warning", self.tenant, self.device, risk, other)
        told = Finding(other, finding.score, severity, finding.time_to_loss_s, {"now": risk, **finding.evidence})
        return [
            self._event(
                current.warning_id, other, "escalate", told, now_ms, current.opened_at_ms, current.predicted_loss_at_ms
            )
        ]

    def _told_of(self, other: str, family: str | None) -> bool:
        """Whether the open warning of ``other`` has told of a loss under way of ``family``
        (escalated with ``now`` of that family): it then covers that family as its own. A power
        cut's warning that said water is on the floor (the sump pump stopped) covers the flood's
        burst-pipe finding (the flow and the wet sensor of the same water), which would
        otherwise open a second warning of the one incident."""
        now = self.open[other].now
        return family is not None and now is not None and RELATED.get(now) == family

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
