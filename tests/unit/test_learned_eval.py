"""``forewarn eval``'s learned group (``evaluation.learned``): the faults no rule names, scored
beside the standard library only, by the same matching rule as every incident."""

from __future__ import annotations

from evaluation.learned import evaluate_learned, learned_group, summary_line, table_rows
from simulator.fleet import build_fleet


def test_only_a_standard_library_gets_the_learned_group() -> None:
    small = build_fleet(7, devices=2, quiet_ratio=1.0, start_ms=1_763_654_400_000, duration_s=3600)
    assert learned_group(small) is None


def test_the_learned_detector_warns_of_most_faults_days_ahead_and_of_nothing_else() -> None:
    report = evaluate_learned(7, replicas=1)
    assert report.overall.incidents == 4 and report.devices == 4
    assert report.overall.warned >= 2, table_rows(report)
    assert report.overall.lead_time_median_h is not None and report.overall.lead_time_median_h >= 6
    assert report.false_warnings == 0, summary_line(report)
    assert {f.fault for f in report.faults} == {
        "sensor_drift",
        "compressor_short_cycling",
        "rising_current",
        "intermittent_connection",
    }
    rows = table_rows(report)
    assert rows[-1][0] == "overall" and len(rows) == 5
    assert report.to_json()["overall"]["incidents"] == 4
