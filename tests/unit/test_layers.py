"""The house has floors: no folder imports a folder above it (read with ``ast``, not a regex).

From the floor up: ``core`` (contract, settings, risk catalogue, lifecycle, the client
adapters) imports nothing of ours; ``detectors`` and ``simulator`` (pure) stand on it; then
``notifiers``, ``ingest`` and ``scores``; ``streams`` (the worker, with the decisions); ``evaluation``;
the roof ``forewarn`` (CLI, launcher, demo); ``benchmarks`` and ``tests`` above everything.
Folders on the same floor do not import each other either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FLOORS: dict[str, int] = {
    "core": 0,
    "detectors": 1,
    "simulator": 1,
    "notifiers": 2,
    "ingest": 2,
    "scores": 2,
    "streams": 3,
    "evaluation": 4,
    "forewarn": 5,
    "benchmarks": 6,
    "tests": 7,
}


def imported_folders(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import of one of our folders in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top in FLOORS:
                found.add((top, node.lineno))
    return found


def upward_imports(root: Path) -> list[str]:
    problems = []
    for folder, floor in FLOORS.items():
        for path in sorted((root / folder).rglob("*.py")):
            for target, line in sorted(imported_folders(path)):
                if target != folder and FLOORS[target] >= floor:
                    where = path.relative_to(root)
                    problems.append(f"{where}:{line} imports {target} (floor {FLOORS[target]}) from floor {floor}")
    return problems


def test_no_folder_imports_a_folder_above_it() -> None:
    assert upward_imports(ROOT) == []


def test_every_python_folder_has_a_floor() -> None:
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")} | {"tests", "benchmarks"}
    assert folders <= set(FLOORS), f"give {sorted(folders - set(FLOORS))} a floor in FLOORS and the README"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from forewarn.cli import app\n", 1),  # the roof, from below
        ("import streams.app\n", 1),
        ("def f():\n    from evaluation import harness\n", 1),  # a lazy import counts too
        ("from core.contract import Reading\n", 0),  # the floor is fine
        ("from . import sibling\n", 0),  # relative: inside the folder
    ],
)
def test_the_check_sees_upward_imports_in_every_form(tmp_path: Path, source: str, expected: int) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "x.py").write_text(source)
    for folder in FLOORS:
        (tmp_path / folder).mkdir(exist_ok=True)
    assert len(upward_imports(tmp_path)) == expected
