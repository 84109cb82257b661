"""ingest's validation: one message in, accepted readings and refusals out."""

from __future__ import annotations

from ingest.validate import validate_message

NOW = 1_763_700_000_000
REGISTRY = {"acme/home-1": "home"}


def test_a_registered_device_gets_its_readings_through() -> None:
    verdict = validate_message(
        "forewarn/v1/acme/home-1/telemetry", b'{"ts": 1763700000000, "metrics": {"temp_c": 20}}', REGISTRY, NOW
    )
    assert verdict.key == "acme/home-1" and verdict.kind == "home"
    assert len(verdict.readings) == 1 and verdict.refusals == ()


def test_an_unknown_device_is_refused_with_how_to_fix_it() -> None:
    verdict = validate_message("forewarn/v1/acme/ghost/telemetry", b"{}", REGISTRY, NOW)
    assert [r.reason for r in verdict.refusals] == ["unknown_device"]
    assert "forewarn device add" in verdict.refusals[0].detail
    assert verdict.readings == ()


def test_a_bad_topic_and_bad_json_are_refused() -> None:
    assert validate_message("x/y", b"{}", REGISTRY, NOW).refusals[0].reason == "bad_topic"
    verdict = validate_message("forewarn/v1/acme/home-1/telemetry", b"{oops", REGISTRY, NOW)
    assert verdict.refusals[0].reason == "malformed_json"
