"""One list of risk types (``core.risks``) for everything that names one.

The detectors report them, the profiles run them per device kind, the message catalogue
words them in every locale, the simulator labels its incidents with them: a risk type known to
one but not the others is a warning that cannot be raised, cannot be worded, or an incident
that can never count as warned.
"""

from __future__ import annotations

import pytest

from core.contract import DEVICE_KINDS, LOCALES
from core.risks import RISK_TYPES, RISKS
from detectors.profiles import PROFILES, REGISTRY
from notifiers.catalog import CATALOG
from simulator.scenarios import SCENARIOS


def test_every_risk_type_has_exactly_one_detector_reporting_it() -> None:
    assert tuple(REGISTRY) == RISK_TYPES
    assert {cls.risk for cls in REGISTRY.values()} == set(RISK_TYPES)
    for risk, cls in REGISTRY.items():
        assert cls.risk == risk, f"{cls.__name__} reports {cls.risk!r}, registered as {risk!r}"


@pytest.mark.parametrize("kind", DEVICE_KINDS)
def test_a_kinds_profile_runs_a_detector_for_every_risk_the_catalogue_watches_it_for(kind: str) -> None:
    watched = {risk for risk, _ in PROFILES[kind]}
    assert watched == {risk for risk, entry in RISKS.items() if kind in entry.kinds}


@pytest.mark.parametrize("locale", LOCALES)
def test_the_message_catalogue_words_every_risk_type_and_no_other(locale: str) -> None:
    assert set(CATALOG[locale]) == set(RISK_TYPES)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_simulated_incident_is_labelled_with_risks_its_device_is_watched_for(scenario: str) -> None:
    spec = SCENARIOS[scenario]
    assert spec.risks and set(spec.risks) <= set(RISK_TYPES)
    unwatched = [risk for risk in spec.risks if spec.kind not in RISKS[risk].kinds]
    assert unwatched == [], f"a {spec.kind} is never watched for {unwatched}: the incident could never be warned"
