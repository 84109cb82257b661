"""The command line as a user types it (no services needed for these commands)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from evaluation.nab import default_nab_dir
from forewarn.cli import app

runner = CliRunner()
NO_DATABASE = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1


def test_eval_nab_reproduces_numentas_scores_optimised_and_with_given_thresholds(tmp_path: Path) -> None:
    nab = default_nab_dir()
    results = nab / "reference" / "numenta"
    out = tmp_path / "nab.json"
    optimised = runner.invoke(app, ["eval", "nab", str(results), "--json", str(out)])
    assert optimised.exit_code == 0, optimised.output
    scores = json.loads(out.read_text())["normalised_scores"]
    assert [round(scores[p], 2) for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")] == [
        61.30,
        54.31,
        66.20,
    ]
    given = runner.invoke(
        app,
        [
            "eval",
            "nab",
            str(results),
            "--thresholds",
            str(nab / "reference" / "numenta_expected.json"),
            "--json",
            str(out),
        ],
    )
    assert given.exit_code == 0, given.output
    scores = json.loads(out.read_text())["normalised_scores"]
    assert [round(scores[p], 2) for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")] == [
        58.13,
        52.99,
        64.09,
    ]


def test_eval_nab_on_a_folder_without_results_says_what_is_missing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "nab", str(tmp_path)])
    assert result.exit_code == 2
    assert "art_daily_no_noise" in result.output or "missing" in result.output.lower()


def test_detect_scores_a_csv_row_by_row(tmp_path: Path) -> None:
    src = tmp_path / "pipe.csv"
    rows = ["timestamp,value"] + [f"2026-01-01 00:{m:02d}:00,{5.0 + (m % 3) * 0.1}" for m in range(50)]
    rows.append("2026-01-01 00:50:00,40.0")
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "scored.csv"
    result = runner.invoke(
        app, ["detect", str(src), "--detector", "ewma_zscore", "--param", "grace_period=10", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score" and len(lines) == 52
    last = float(lines[-1].split(",")[2])
    assert 0.9 < last <= 1.0, "a jump from 5 °C to 40 °C must score near 1"


def test_detect_refuses_an_unknown_parameter(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("timestamp,value\n2026-01-01 00:00:00,1\n")
    result = runner.invoke(app, ["detect", str(src), "--detector", "ewma_zscore", "--param", "colour=red"])
    assert result.exit_code == 2 and "colour" in result.output


def test_simulate_writes_a_replay_file_with_its_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "fleet.jsonl"
    result = runner.invoke(app, ["simulate", "--fleet", "demo", "--hours", "12", "--out", str(out)])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "incidents.json").read_text())
    assert truth["incidents"] and out.stat().st_size > 100_000
    first = json.loads(out.read_text().splitlines()[0])
    assert first["topic"].startswith("forewarn/v1/demo/")


def test_simulate_refuses_an_unknown_fleet() -> None:
    result = runner.invoke(app, ["simulate", "--fleet", "galaxy", "--out", "/tmp/never.jsonl"])
    assert result.exit_code == 2 and "demo, standard or mixed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["freeze_risk", "horizon=3600"], "freeze_risk has no parameter 'horizon' (did you mean horizon_s?)"),
        (["freezing", "horizon_s=3600"], "unknown risk type 'freezing' (did you mean freeze_risk?)"),
        (["speeding", "margin=0.3"], "home devices are not watched for speeding"),
        (["freeze_risk", "horizon_s"], "'horizon_s' must be name=value"),
    ],
)
def test_detectors_set_refuses_what_no_detector_has_in_one_line_before_the_database(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: Settings(database_url=NO_DATABASE))
    result = runner.invoke(app, ["detectors", "set", "--tenant", "acme", "--kind", "home", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_detectors_show_without_a_database_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("forewarn.cli.get_settings", lambda: Settings(database_url=NO_DATABASE))
    result = runner.invoke(app, ["detectors", "show", "--tenant", "acme", "--kind", "home"])
    assert result.exit_code == 2
    assert "cannot reach PostgreSQL at 127.0.0.1:1/nowhere" in " ".join(result.output.split())
