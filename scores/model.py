"""The scores themselves: measured figures weighed into 0–100 points and a grade A–E (pure).

Higher is riskier. Each factor has a weight (the most points it can give), a *good* value
(no points at or below it) and a *bad* value (all its points at or above it), linear in
between; the score is the sum of the factors' points, so every point is explained by a row
of the factor table. The weights of each kind sum to 100. The weight tables, the grade
bands and the feature definitions (:mod:`scores.features`) are the model: the same inputs
give the same score under the same :data:`SCORE_VERSION`, and changing any of them means a
new version (a test pins them).

>>> from scores.features import DriverFeatures
>>> score = driver_score(DriverFeatures(distance_km=400.0, driving_h=8.0, harsh_brakes=12, limit_known_h=8.0,
...                                     speeding_h=2.0))
>>> score.value, score.grade, [(f.name, f.points) for f in score.factors if f.points]
(36.36, 'D', [('harsh_braking', 11.36), ('speeding', 25.0)])
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from scores import features as F
from scores.features import DriverFeatures, PropertyFeatures

SCORE_VERSION = "1"
"""The model's version: stored with every score; bump it when a weight, a threshold, a grade
band or a feature's definition changes (``tests/unit/test_scores.py`` pins them)."""


@dataclass(frozen=True, slots=True)
class FactorSpec:
    """One row of a weight table."""

    name: str
    description: str
    unit: str
    weight: float
    """Points the factor gives at ``bad`` and beyond."""
    good: float
    """No points at or below this value."""
    bad: float
    """All ``weight`` points at or above this value."""

    def __post_init__(self) -> None:
        if not (self.weight > 0 and self.bad > self.good):
            raise ValueError(f"factor {self.name}: need weight > 0 and bad > good")


DRIVER_FACTORS: tuple[FactorSpec, ...] = (
    FactorSpec("harsh_braking", "harsh brakes (≤ −0.4 g) per 100 km", "/100 km", 25, 0.5, 6.0),
    FactorSpec("harsh_acceleration", "harsh accelerations (≥ 0.35 g) per 100 km", "/100 km", 10, 0.5, 6.0),
    FactorSpec("speeding", "share of driving time more than 10 % over the limit", "share", 25, 0.02, 0.25),
    FactorSpec("night_driving", "share of driving time 22:00–05:00 local time", "share", 10, 0.05, 0.5),
    FactorSpec("fatigue", "stints over 4 h without a 20-min break, per 100 h driven", "/100 h", 30, 0.0, 10.0),
)
"""The driver score's weight table."""

PROPERTY_FACTORS: tuple[FactorSpec, ...] = (
    FactorSpec("open_warnings", "warnings open at the end of the day (severity points)", "points", 30, 0, 6),
    FactorSpec("past_warnings", "warnings opened and closed in the window (severity points)", "points", 25, 1, 12),
    FactorSpec("freeze_exposure", "freeze forecasts in the window", "forecasts", 20, 0, 4),
    FactorSpec("sensor_health", "silent, stuck or draining sensors in the window", "warnings", 25, 0, 4),
)
"""The property score's weight table. Severity points: advisory 1, warning 2, critical 4."""

GRADES: tuple[tuple[str, float], ...] = (("A", 10), ("B", 20), ("C", 35), ("D", 55), ("E", float("inf")))
"""Grade bands: a score below the bound gets the grade (A < 10 ≤ B < 20 ≤ C < 35 ≤ D < 55 ≤ E)."""
NO_GRADE = "-"
"""The grade of a score with too little data behind it (its points are still shown)."""

WINDOW_DAYS = 28
"""How many local days a day's score looks back over (the day itself included): four whole
weeks, so every weekday counts alike, and inside the readings' default retention (30 days)
with two days to spare, so a day's scores can still be recomputed from all their readings
the day after (``scores.daily``)."""

MIN_DRIVING_H = 1.0
MIN_DISTANCE_KM = 20.0
"""A driver score needs at least this much driving in the window to be graded."""
RATE_FLOOR_KM = 50.0
RATE_FLOOR_H = 10.0
"""Rates are taken over at least this much driving: two harsh brakes in 5 km are not 40 per
100 km, they are judged as if the vehicle had driven 50 km."""

for _table in (DRIVER_FACTORS, PROPERTY_FACTORS):
    assert sum(spec.weight for spec in _table) == 100, "a kind's weights sum to 100"


@dataclass(frozen=True, slots=True)
class Factor:
    """One row of a score's explanation: the measured value and the points it gave."""

    name: str
    description: str
    value: float
    unit: str
    weight: float
    good: float
    bad: float
    level: float
    """0 at ``good``, 1 at ``bad``, linear in between."""
    points: float
    """``weight × level``, rounded to 0.01: what the factor adds to the score."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "value": self.value,
            "unit": self.unit,
            "weight": self.weight,
            "good": self.good,
            "bad": self.bad,
            "level": self.level,
            "points": self.points,
        }


@dataclass(frozen=True, slots=True)
class Score:
    """A device's risk score: 0–100 points (higher is riskier), a grade, the factor table
    that adds up to it, what it was measured on, and the model's version."""

    kind: str
    """``driver`` or ``property``."""
    value: float
    grade: str
    factors: tuple[Factor, ...]
    version: str = SCORE_VERSION
    basis: dict[str, Any] = field(default_factory=dict)
    """The measured figures behind the factors (distance, hours, counts …)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "grade": self.grade,
            "version": self.version,
            "factors": [f.to_json() for f in self.factors],
            "basis": self.basis,
        }


def grade_of(value: float) -> str:
    """The grade of a score's points.

    >>> grade_of(0.0), grade_of(10.0), grade_of(34.99), grade_of(55.0), grade_of(100.0)
    ('A', 'B', 'C', 'E', 'E')
    """
    return next(grade for grade, bound in GRADES if value < bound)


def _factor(spec: FactorSpec, value: float) -> Factor:
    value = round(float(value), 4)
    level = round(min(max((value - spec.good) / (spec.bad - spec.good), 0.0), 1.0), 4)
    return Factor(
        spec.name, spec.description, value, spec.unit, spec.weight, spec.good, spec.bad, level,
        round(spec.weight * level, 2),
    )  # fmt: skip


def _score(
    kind: str, specs: tuple[FactorSpec, ...], values: dict[str, float], graded: bool, basis: dict[str, Any]
) -> Score:
    factors = tuple(_factor(spec, values[spec.name]) for spec in specs)
    value = round(sum(f.points for f in factors), 2)
    return Score(kind, value, grade_of(value) if graded else NO_GRADE, factors, SCORE_VERSION, basis)


def driver_score(features: DriverFeatures) -> Score:
    """A vehicle's driver score from its measured driving (:func:`scores.features.driver_features`)."""
    per_100km = 100.0 / max(features.distance_km, RATE_FLOOR_KM)
    values = {
        "harsh_braking": features.harsh_brakes * per_100km,
        "harsh_acceleration": features.harsh_accelerations * per_100km,
        "speeding": features.speeding_share,
        "night_driving": features.night_share,
        "fatigue": features.fatigue_episodes * 100.0 / max(features.driving_h, RATE_FLOOR_H),
    }
    graded = features.driving_h >= MIN_DRIVING_H and features.distance_km >= MIN_DISTANCE_KM
    basis = {k: round(v, 4) if isinstance(v, float) else v for k, v in features.to_json().items()}
    return _score("driver", DRIVER_FACTORS, values, graded, basis)


def property_score(features: PropertyFeatures, reported: bool = True) -> Score:
    """A home's or a site's property score from its warnings (:func:`scores.features.property_features`);
    ``reported`` False (the device stored nothing in the window: no warning means nothing
    then) leaves it ungraded."""
    values = {
        "open_warnings": float(features.open_points),
        "past_warnings": float(features.past_points),
        "freeze_exposure": float(features.freeze_forecasts),
        "sensor_health": float(features.sensor_issues),
    }
    return _score("property", PROPERTY_FACTORS, values, reported, features.to_json())


def score_json(score: Score) -> str:
    """A score as canonical JSON (sorted keys): byte-identical for identical inputs."""
    return json.dumps(score.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def model_fingerprint() -> str:
    """A digest of everything that decides a score: the weight tables, the grade bands, the
    rate floors, the window and the feature definitions. A changed model under an unchanged
    :data:`SCORE_VERSION` shows up as a changed fingerprint (the test pins it)."""
    model = {
        "driver": [_spec_json(s) for s in DRIVER_FACTORS],
        "property": [_spec_json(s) for s in PROPERTY_FACTORS],
        "grades": [[g, b if b != float("inf") else None] for g, b in GRADES],
        "floors": [MIN_DRIVING_H, MIN_DISTANCE_KM, RATE_FLOOR_KM, RATE_FLOOR_H],
        "window_days": WINDOW_DAYS,
        "features": {
            name: getattr(F, name)
            for name in (
                "HARSH_BRAKE_G",
                "HARSH_ACCEL_G",
                "REFRACTORY_S",
                "SPEEDING_MARGIN",
                "LIMIT_STALE_S",
                "MOVING_KMH",
                "MAX_STEP_S",
                "NIGHT_FROM_H",
                "NIGHT_UNTIL_H",
                "FATIGUE_STINT_S",
                "FATIGUE_BREAK_S",
                "SENSOR_HEALTH_RISKS",
                "FREEZE_RISK",
                "SEVERITY_POINTS",
            )
        },
    }
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]


def _spec_json(spec: FactorSpec) -> dict[str, Any]:
    return {"name": spec.name, "weight": spec.weight, "good": spec.good, "bad": spec.bad}
