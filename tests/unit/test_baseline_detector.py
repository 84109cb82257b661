"""The learned detector (``detectors.baseline.UnusualReading``): silent while it learns and while
a device does what it usually does at that hour, speaking when it stops; its state plain data
that restores exactly and stays small."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from detectors.baseline import UnusualReading, channel_names
from detectors.profiles import build_detectors
from detectors.state import capture, restore

T0 = 1_763_654_400.0  # 2025-11-21 00:00 in Shanghai (a Friday)


def pump(days: float, creep_from_day: float | None = None, seed: int = 3) -> list[dict[str, float]]:
    """A pump every 5 min: busier by day, a little noise; from ``creep_from_day`` its current
    rises 3 A a day."""
    rng = random.Random(seed)
    out = []
    for i in range(int(days * 288)):
        day = i / 288
        creep = 3.0 * max(0.0, day - creep_from_day) if creep_from_day is not None else 0.0
        amps = 40.0 + 4.0 * math.sin(2 * math.pi * day) + rng.gauss(0, 0.4) + creep
        out.append({"ts": T0 + 300 * i, "current_a": round(amps, 1)})
    return out


def run(detector: UnusualReading, readings: list[dict[str, float]]) -> list[tuple[float, float]]:
    scores = []
    for x in readings:
        scores.append((x["ts"], detector.assess_one(x).score))
        detector.learn_one(x)
    return scores


def test_a_device_doing_what_it_usually_does_at_each_hour_stays_quiet_for_two_weeks() -> None:
    scores = run(UnusualReading(metrics=("current_a",)), pump(14))
    assert max(s for _, s in scores) == 0.0


def test_silent_during_the_warm_up_however_odd_the_readings() -> None:
    readings = pump(2.9)
    for x in readings[len(readings) // 2 :]:
        x["current_a"] += 30.0  # a jump on day 1.5: nothing is known yet to compare it with
    assert max(s for _, s in run(UnusualReading(metrics=("current_a",)), readings)) == 0.0


def test_a_creeping_current_is_found_within_two_days_and_said_in_the_detectors_figures() -> None:
    detector = UnusualReading(metrics=("current_a",))
    scores = run(detector, pump(12, creep_from_day=7))
    first = next(ts for ts, s in scores if s >= 0.5)
    assert T0 + 7 * 86400 < first < T0 + 9 * 86400
    finding = detector.assess_one({"ts": scores[-1][0]})
    ev = finding.evidence
    assert ev["metric"] == "current_a" and ev["above"] is True and ev["value"] > ev["usual"]
    assert finding.severity == "advisory" and finding.time_to_loss_s is None  # no rule fired, no forecast


def test_two_channels_unusual_together_make_a_warning() -> None:
    readings = pump(8, creep_from_day=5)
    for x in readings:
        if x["ts"] > T0 + 5 * 86400:
            x["temp_c"] = 30.0 + 8.0 * (x["ts"] - T0 - 5 * 86400) / 86400
        else:
            x["temp_c"] = 30.0 + 0.2 * math.sin(x["ts"] / 977)
    detector = UnusualReading(metrics=("current_a", "temp_c"))
    run(detector, readings)
    finding = detector.assess_one({"ts": readings[-1]["ts"]})
    assert finding.severity == "warning" and finding.evidence["others_unusual"] == 1


def test_a_compressor_switching_far_more_often_than_usual_is_unusual() -> None:
    detector = UnusualReading(metrics=("compressor_on",), arrivals=False)
    scores = []
    for i in range(9 * 1440):  # a reading a minute; a 30-min cycle, then a 4-min cycle from day 6
        period = 30 if i < 6 * 1440 else 4
        x = {"ts": T0 + 60 * i, "compressor_on": 1.0 if (i % period) < period / 2 else 0.0}
        scores.append(detector.assess_one(x).score)
        detector.learn_one(x)
    assert max(scores[: 6 * 1440]) == 0.0 and max(scores[6 * 1440 :]) >= 0.5
    assert detector.assess_one({"ts": T0}).evidence["metric"] == "compressor_on_switches_per_h"


def test_the_state_is_plain_data_that_restores_exactly() -> None:
    readings = pump(10, creep_from_day=7)
    live = UnusualReading(metrics=("current_a",))
    run(live, readings[:2000])
    saved = orjson.loads(orjson.dumps(capture(live)))
    restored = UnusualReading(metrics=("current_a",))
    assert restore(restored, saved)
    assert run(restored, readings[2000:]) == run(live, readings[2000:])
    assert capture(restored) == capture(live)


def test_a_changed_list_of_metrics_starts_the_baselines_afresh() -> None:
    live = UnusualReading(metrics=("current_a",))
    run(live, pump(4))
    other = UnusualReading(metrics=("current_a", "pressure_kpa"))
    assert restore(other, orjson.loads(orjson.dumps(capture(live))))
    anchors = other._unpack().anchors
    assert all(math.isnan(a) for a in anchors)  # the saved blob fits no longer: fresh


@pytest.mark.parametrize("kind", ["vehicle", "home", "equipment", "coldchain"])
def test_every_kind_runs_it_and_its_state_is_about_33_bytes_an_opening_channel_10_a_watched_one(kind: str) -> None:
    detector = next(d for d in build_detectors(kind) if d.risk == "unusual_reading")
    assert isinstance(detector, UnusualReading)
    metrics = (*detector.metrics, *detector.watched)
    run(detector, [{"ts": T0 + 600 * i, **{m: 1.0 for m in metrics}} for i in range(300)])
    packed = capture(detector)["state"]["_m"]
    opening = len(channel_names(detector.metrics, detector.arrivals))
    assert len(packed) <= 15 + 33 * opening + 10 * len(detector.watched)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        UnusualReading(metrics=("temperature",))
    with pytest.raises(ValueError, match="slack"):
        UnusualReading(slack=6.0, z_clip=5.0)
    with pytest.raises(ValueError, match="active_metric"):
        UnusualReading(active_metric="amps")
