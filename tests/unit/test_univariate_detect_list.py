"""`forewarn detect --list`: the detector names, one a line, the best general-purpose first."""

from __future__ import annotations

from typer.testing import CliRunner

from detectors.univariate import UNIVARIATE
from forewarn.cli import app

runner = CliRunner()


def test_detect_list_prints_every_detector_once_best_first() -> None:
    result = runner.invoke(app, ["detect", "--list"])
    assert result.exit_code == 0, result.output
    names = result.output.splitlines()
    assert names == list(UNIVARIATE)
    assert sorted(names) == sorted(set(UNIVARIATE))
    # The NAB dev subset ranking (benchmarks/nab_dev.py): the resonance ensemble, then its
    # single member, then the statistical baselines.
    assert names[:2] == ["resonance_ensemble", "adaptive_resonance"]
    assert names.index("ewma_zscore") < names.index("windowed_gaussian")


def test_detect_without_a_file_says_what_it_needs() -> None:
    result = runner.invoke(app, ["detect", "--detector", "ewma_zscore"])
    assert result.exit_code == 2
    assert "--list" in result.output
