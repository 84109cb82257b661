"""Risk scores on the command line: ``forewarn scores compute`` and ``forewarn scores show``.

``compute`` recomputes a day's scores from the stored data (``scores.daily``, idempotent);
``show`` prints a tenant's scores, or one device's factor table: every point of a score
comes from a row of it.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core import db
from core.settings import get_settings
from forewarn.progress import device_progress
from scores import daily
from scores.model import GRADES, SCORE_VERSION

console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

scores_app = typer.Typer(
    no_args_is_help=True, help="Risk scores: a driver score per vehicle, a property score per home or site."
)

_Day = Annotated[str | None, typer.Option(help="The local day, YYYY-MM-DD (default: the last complete day).")]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"--day {value!r} must be a date such as 2026-01-15")
    return None  # pragma: no cover - _fail raises


@scores_app.command("compute")
def scores_compute(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's devices (default: every tenant).")] = None,
    day: _Day = None,
    missing_only: Annotated[bool, typer.Option(help="Only the devices not yet scored for the day.")] = False,
) -> None:
    """Recompute a day's risk scores from the stored data (idempotent: a score changes only when its data did)."""
    settings = get_settings()
    progress, advance = device_progress("scoring", err)

    try:
        with progress:
            report = daily.recompute(
                settings.database_url,
                _day(day),
                tenant=tenant,
                only_missing=missing_only,
                timezone=settings.timezone,
                retention_days=settings.retention_days,
                progress=advance,
            )
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    if report.busy:
        _fail(f"another recompute of the risk scores is running; try again when it is done (day {report.day})")
    grades = ", ".join(f"{g} {report.grades[g]}" for g in [*(g for g, _ in GRADES), "-"] if g in report.grades)
    console.print(
        f"risk scores for {report.day} (model {report.version}): {report.devices} devices scored,"
        f" {report.written} new or changed, {report.unchanged} unchanged"
        + (f"; grades {grades}" if grades else "")
        + f" ({report.seconds:.1f} s)"
    )
    if report.kept_stored:
        console.print(
            f"the window of {report.day} reaches back beyond the readings' retention"
            f" ({settings.retention_days} days): the scores stored for it were kept, only missing ones computed"
        )
    for key, why in report.failed:
        err.print(f"[red]failed:[/red] {key}: {why}")
    if report.failed:
        raise typer.Exit(1)


def _main_factors(factors: list[dict[str, Any]], n: int = 2) -> str:
    top = sorted((f for f in factors if f["points"] > 0), key=lambda f: -f["points"])[:n]
    return ", ".join(f"{f['name']} {f['points']:.1f}" for f in top) or "—"


def _value(f: dict[str, Any]) -> str:
    return f"{f['value']:.1%}" if f["unit"] == "share" else f"{f['value']:g} {f['unit']}"


def _basis(basis: dict[str, Any]) -> str:
    """The measured figures behind the factors, in a line (the window's bounds are in the header)."""
    shown = [
        f"{k.replace('_', ' ')} {round(v, 1) if isinstance(v, float) else v}"
        for k, v in sorted(basis.items())
        if not k.endswith(("_ts", "_ms")) and v not in (None, {}, 0, 0.0)
    ]
    return ", ".join(shown) or "nothing in the window"


@scores_app.command("show")
def scores_show(
    tenant: Annotated[str, typer.Option(help="Tenant (topic segment).")],
    device: Annotated[str | None, typer.Option(help="One device: its factor table.")] = None,
    day: Annotated[str | None, typer.Option(help="The local day, YYYY-MM-DD (default: the newest scored).")] = None,
    days: Annotated[int, typer.Option(min=1, help="How many days back (a device's trend).")] = 1,
) -> None:
    """A tenant's scores of the newest day scored (or --day), or one device's factor table."""
    try:
        rows = daily.stored_scores(get_settings().database_url, tenant, device, _day(day), days)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    if not rows:
        what = f"device {tenant}/{device}" if device else f"tenant {tenant}"
        _fail(f"no risk scores for {what}" + (f" on {day}" if day else "") + ": run 'forewarn scores compute'")
    if device is None:
        table = Table(
            title=f"risk scores, {tenant}, {rows[0]['day']}" + (f" (and {days - 1} days before)" if days > 1 else "")
        )
        for col in ("day", "device", "kind", "score", "grade", "main factors"):
            table.add_column(col, justify="right" if col == "score" else "left")
        for r in rows:
            table.add_row(
                str(r["day"]), r["device"], r["kind"], f"{r['score']:.1f}", r["grade"], _main_factors(r["factors"])
            )
        console.print(table)
        return
    newest = rows[0]
    start: datetime = newest["window_start"]
    end: datetime = newest["window_end"]
    console.print(
        f"[bold]{tenant}/{device}[/bold] · {newest['kind']} score [bold]{newest['score']:.1f}[/bold]"
        f" · grade [bold]{newest['grade']}[/bold] · {newest['day']} (window {start:%Y-%m-%d %H:%M} –"
        f" {end:%Y-%m-%d %H:%M} UTC) · model {newest['version']}"
        + ("" if newest["version"] == SCORE_VERSION else f" (current model: {SCORE_VERSION})")
    )
    table = Table(title="factors (points = weight × level; level 0 at good, 1 at bad)")
    for col in ("factor", "value", "good", "bad", "weight", "level", "points", "what it measures"):
        table.add_column(col, justify="left" if col in ("factor", "what it measures") else "right")
    for f in newest["factors"]:
        table.add_row(
            f["name"],
            _value(f),
            f"{f['good']:g}",
            f"{f['bad']:g}",
            f"{f['weight']:g}",
            f"{f['level']:.2f}",
            f"{f['points']:.2f}",
            f["description"],
        )
    table.add_row("total", "", "", "", "100", "", f"{newest['score']:.2f}", "")
    console.print(table)
    console.print(f"measured: {_basis(newest['basis'])}")
    if len(rows) > 1:
        console.print("trend: " + "  ".join(f"{r['day']:%m-%d} {r['score']:.0f} {r['grade']}" for r in rows))
