"""Feeding a detector as the stream worker does, for the physics tests (not a test module)."""

from __future__ import annotations

from collections.abc import Iterable

from detectors.base import Finding, RiskDetector

T0 = 1_763_654_400.0  # 2025-11-21 00:00 in China (UTC+8)
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
FIRES = 0.5  # the score at which streams.decisions opens a warning

Reading = dict[str, float]


def run(detector: RiskDetector, readings: Iterable[Reading]) -> list[tuple[Reading, Finding]]:
    """Feed readings in order, assessing each before learning it, as the stream worker does."""
    out = []
    for x in readings:
        if detector.wants(x):
            finding = detector.assess_one(x)
            assert finding.risk == detector.risk and 0.0 <= finding.score <= 1.0
            assert finding.time_to_loss_s is None or finding.time_to_loss_s >= 0
            out.append((x, finding))
            detector.learn_one(x)
    return out


def firing(results: list[tuple[Reading, Finding]]) -> list[tuple[Reading, Finding]]:
    """The readings whose finding would open a warning."""
    return [(x, f) for x, f in results if f.score >= FIRES]
