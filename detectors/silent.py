"""The configuration of the silence rule: when a device that has gone quiet counts as silent.

Silence is the absence of readings, so no reading can reveal it: the rule runs on the stream's
clock in ``streams.silence`` (the worker's timer, ``forewarn eval``'s simulated clock). This
detector is its place among a device's detectors, so that the rule is configured like any
other (``forewarn detectors set --risk device_silent floor_s=1800``, per tenant, kind or
device; ``None`` leaves a device unwatched) and named in every kind's profile. Given a reading,
it says what a reading means for silence: the device is speaking (score 0). It holds no state:
the device's contact times are the stream's to keep (``streams.silence``, saved with the
device's monitor).

A device is silent when nothing has arrived from it for ``max(multiple × usual interval,
floor_s)`` (the usual interval: the median of its recent gaps; until a second arrival shows
it, ``multiple × floor_s``, so that a device reporting less often than the floor is not called
silent before its second report), or ``offline_grace_s`` after it said ``offline`` without
coming back. The floor is an hour: the simulator's radio
drop-outs (ten minutes on average, exponential; the longest in the standard library lasts 45
minutes) must not become warnings.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.contract import METRICS
from core.risks import SILENT, check_risk
from detectors.base import Finding, RiskDetector
from detectors.checks import non_negative, positive


class DeviceSilent(RiskDetector):
    """The silence rule's parameters (see the module): ``multiple`` (5) missed reports,
    never less than ``floor_s`` (1 h); ``offline_grace_s`` (1 h) after an offline status for
    the device to come back.

    >>> rule = DeviceSilent()
    >>> rule.assess_one({"ts": 0.0, "temp_c": 20.0}).score  # a reading: the device speaks
    0.0
    >>> rule.threshold_s(60.0), rule.threshold_s(3 * 3600.0), rule.threshold_s(None)
    (3600.0, 54000.0, 18000.0)
    >>> DeviceSilent(floor_s=900.0).threshold_s(60.0)  # a tenant that wants to know sooner
    900.0
    """

    risk = check_risk(SILENT)
    metrics = tuple(METRICS)  # any reading is the device speaking

    def __init__(self, multiple: float = 5.0, floor_s: float = 3600.0, offline_grace_s: float = 3600.0) -> None:
        self.multiple = positive("multiple", multiple)
        if self.multiple < 1:
            raise ValueError(f"multiple must be >= 1, got {multiple!r}")
        self.floor_s = positive("floor_s", floor_s)
        self.offline_grace_s = non_negative("offline_grace_s", offline_grace_s)

    def threshold_s(self, usual_interval_s: float | None) -> float:
        """How long a device whose usual interval is ``usual_interval_s`` (``None``: not known
        yet) may stay quiet before it counts as silent."""
        if usual_interval_s is None:
            return float(self.multiple * self.floor_s)
        return float(max(self.multiple * usual_interval_s, self.floor_s))

    def wants(self, x: Mapping[str, float]) -> bool:
        return True

    def learn_one(self, x: Mapping[str, float]) -> None:
        return None

    def score_one(self, x: Mapping[str, float]) -> float:
        return 0.0

    def assess_one(self, x: Mapping[str, float]) -> Finding:
        return Finding(self.risk, 0.0)
