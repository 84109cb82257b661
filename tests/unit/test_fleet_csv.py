"""Multi-column backtests: ``forewarn detect`` on a CSV with a timestamp and several value
columns, whatever its delimiter, its labels ignored; the univariate layout is left alone."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluation import multivariate
from evaluation.backtest import BacktestInputError
from evaluation.multivariate import detect_multivariate, is_multivariate, layout_of
from forewarn.cli import app

FAULT_AT = 300


def _write(path: Path, delimiter: str, label: str | None = "anomaly", n: int = 400) -> None:
    """Three coupled sensors (a pump: current, pressure, vibration); from FAULT_AT the vibration
    doubles while the current stays: a relation between the metrics breaks."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(["datetime", "current_a", "pressure_kpa", "vibration_mm_s", *([label] if label else [])])
        for i in range(n):
            load = 1.0 + 0.2 * math.sin(i / 15)
            wobble = 0.01 * math.sin(i * 1.7)
            vib = 2.0 * load * (1 + wobble) * (2.5 if i >= FAULT_AT else 1.0)
            ts = f"2026-01-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
            row = [ts, f"{60 * load:.3f}", f"{450 * load * (1 - wobble):.3f}", f"{vib:.4f}"]
            w.writerow(row + ([str(int(i >= FAULT_AT))] if label else []))


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed_and_the_label_column_ignored(tmp_path: Path, delimiter: str) -> None:
    src = tmp_path / "pump.csv"
    _write(src, delimiter)
    layout = layout_of(src.read_text())
    assert layout.delimiter == delimiter
    assert layout.header[layout.time_column] == "datetime"
    assert layout.value_names == ["current_a", "pressure_kpa", "vibration_mm_s"]
    assert layout.ignored == ("anomaly",)
    assert is_multivariate(src)


@pytest.mark.parametrize("label", ["label", "changepoint", "anomaly", "Anomaly"])
def test_every_usual_label_name_is_left_unread(tmp_path: Path, label: str) -> None:
    src = tmp_path / "pump.csv"
    _write(src, ";", label)
    notes: list[str] = []
    out = io.StringIO()
    detect_multivariate(src, out, "fleet", {}, notes.append)
    assert any("ignored" in n and label in n for n in notes)
    header = next(csv.reader(io.StringIO(out.getvalue())))
    assert header == ["timestamp", "current_a", "pressure_kpa", "vibration_mm_s", "anomaly_score", "unusual"]


def _scores(text: str) -> list[tuple[float, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return [(float(r["anomaly_score"]), r["unusual"]) for r in rows]


@pytest.mark.parametrize(("detector", "params"), [("fleet", {}), ("fleet", {"method": "iforest"}), ("ewma_zscore", {})])
def test_the_fault_scores_above_the_normal_rows_after_probation(tmp_path: Path, detector: str, params: dict) -> None:  # type: ignore[type-arg]
    src = tmp_path / "pump.tsv"
    _write(src, "\t")
    out = io.StringIO()
    assert detect_multivariate(src, out, detector, {"probation": "0.3", **params}) == 400
    scored = _scores(out.getvalue())
    assert all(s == 0.0 and u == "" for s, u in scored[:120])  # the probationary period
    normal = max(s for s, _ in scored[120:FAULT_AT])
    fault = max(s for s, _ in scored[FAULT_AT : FAULT_AT + 20])
    assert fault > normal
    top = max(scored[FAULT_AT : FAULT_AT + 20])
    assert top[1].split()[0] == "vibration_mm_s"


def test_the_univariate_layout_stays_on_its_own_path(tmp_path: Path) -> None:
    src = tmp_path / "series.csv"
    src.write_text("timestamp,value,label\n" + "".join(f"{1396310400 + 60 * i},{i % 7},0\n" for i in range(50)))
    assert not is_multivariate(src)
    result = CliRunner().invoke(app, ["detect", str(src), "--detector", "ewma_zscore"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "timestamp,value,anomaly_score"


def test_detect_takes_a_multi_column_file_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "pump.csv"
    _write(src, ";")
    out = tmp_path / "scored.csv"
    result = CliRunner().invoke(app, ["detect", str(src), "--detector", "fleet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ignored" in result.output and "400 rows scored with fleet" in result.output
    assert len(out.read_text().splitlines()) == 401
    bad = CliRunner().invoke(app, ["detect", str(src), "--detector", "fleet", "--param", "window=x"])
    assert bad.exit_code == 2 and "whole numbers" in bad.output


def test_bad_input_is_named(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("time;a;b\n2026-01-01 00:00:00;1;x\n")
    with pytest.raises(BacktestInputError, match="line 2: b 'x' is not a number"):
        detect_multivariate(src, io.StringIO(), "fleet", {})
    with pytest.raises(BacktestInputError, match="no value column"):
        layout_of("time;label\n1;0\n")


def test_doctests() -> None:
    import doctest

    assert doctest.testmod(multivariate).failed == 0
