"""The code stays as STYLE.md asks: ruff-clean and mypy-clean. Run here so CI holds the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "core",
    "forewarn",
    "ingest",
    "streams",
    "detectors",
    "notifiers",
    "simulator",
    "evaluation",
    "scores",
    "benchmarks",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_mypy_finds_nothing() -> None:
    result = run("mypy", *PACKAGES)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
