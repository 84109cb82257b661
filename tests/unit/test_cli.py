"""The command line as a user types it (no services needed for these commands)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from evaluation.nab import default_nab_dir
from forewarn.cli import app

runner = CliRunner()


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
