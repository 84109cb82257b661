"""The progress bar of the commands that go through many devices (``forewarn train``,
``forewarn scores compute``): rich's, on standard error, gone when the work is done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def device_progress(title: str, console: Any) -> tuple[Progress, Callable[[int, int, str], None]]:
    """A bar titled ``title`` and its ``advance(done, total, key)``: how many devices of how many,
    the one at hand, the time taken."""
    bar = Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("", total=None)

    def advance(done: int, total: int, key: str) -> None:
        bar.update(task, completed=done, total=total, description=key)

    return bar, advance
