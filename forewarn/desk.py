"""The insurer's desk on the command line: warnings, outcomes, contacts, follow-up policies, customers' hours.

``forewarn warning show|ack|outcome``, ``forewarn tenant contacts|policy``, ``forewarn customer
prefs``, ``forewarn claims list`` (first notices of loss). Each refusal is one clear line and
changes nothing.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core import db
from core.localtime import check_zone
from core.secretbox import secret_box
from core.settings import get_settings
from notifiers.channels import ChannelError, check_url, seal_all
from notifiers.channels import masked as mask_channel
from notifiers.followup import DEFAULT_POLICIES, SEVERITIES, FollowUpPolicy, parse_steps
from notifiers.quiet import QuietHours, check_windows

console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

warning_app = typer.Typer(no_args_is_help=True, help="One warning: its story, acknowledgement and outcome.")
tenant_app = typer.Typer(no_args_is_help=True, help="An insurer (tenant): who hears of ignored warnings, and when.")
claims_app = typer.Typer(no_args_is_help=True, help="First notices of loss: losses under way reported to claims.")

_By = Annotated[str, typer.Option("--by", help="Who is acting (recorded with the change), e.g. staff:li.wei")]
_Tenant = Annotated[str | None, typer.Option(help="Only this tenant's warning (another tenant's is 'not found').")]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _url() -> str:
    return get_settings().database_url


@warning_app.command("show")
def warning_show(warning_id: Annotated[str, typer.Argument(metavar="WARNING_ID")], tenant: _Tenant = None) -> None:
    """Every transition (when, what, who), every delivery and attempt, the follow-ups and the outcome."""
    try:
        detail = db.warning_detail(_url(), warning_id, tenant)
    except db.DatabaseError as exc:
        _fail(str(exc))
    w = detail["warning"]
    console.print(
        f"[bold]{w['risk']}[/bold] on {w['tenant']}/{w['device']} · {w['severity']} · [bold]{w['status']}[/bold]"
        f" · opened {w['opened_at']:%Y-%m-%d %H:%M:%S %Z}"
        + (f" · predicted loss {w['predicted_loss_at']:%Y-%m-%d %H:%M %Z}" if w["predicted_loss_at"] else "")
    )
    console.print(f"evidence: {dict(w['evidence'])}")
    try:
        claim = db.claim_notice_of(_url(), warning_id)
    except db.DatabaseError as exc:
        _fail(str(exc))
    if claim is not None:
        where = f", at {claim['lat']:.5f}, {claim['lon']:.5f}" if claim["lat"] is not None else ""
        console.print(
            f"claim notice: [bold]{claim['ref']}[/bold] (first notice of loss"
            f", opened {claim['created_at']:%Y-%m-%d %H:%M:%S %Z}{where})"
        )
    table = Table(title="transitions")
    for col in ("at", "event", "from", "to", "by", "note"):
        table.add_column(col)
    for t in detail["transitions"]:
        table.add_row(
            f"{t['at']:%m-%d %H:%M:%S}",
            t["event"],
            t["from_status"] or "—",
            t["to_status"],
            t["actor"],
            t["note"] or "",
        )
    console.print(table)
    table = Table(title="deliveries")
    for col in ("action", "to", "channel", "status", "attempts", "error"):
        table.add_column(col)
    for d in detail["deliveries"]:
        table.add_row(
            d["action"],
            d["audience"],
            d["channel"],
            d["status"] + (f" ({d['held_reason']})" if d["held_reason"] and d["status"] == "held" else ""),
            str(d["attempts"]),
            d["error"] or "",
        )
    console.print(table)
    for f in detail["followups"]:
        fired = f"fired {f['fired_at']:%m-%d %H:%M}" if f["fired_at"] else f"due {f['due_at']:%m-%d %H:%M}"
        console.print(f"follow-up {f['action']}: {fired}" + (f" — {f['outcome']}" if f["outcome"] else ""))
    if detail["outcome"]:
        o = detail["outcome"]
        console.print(
            f"outcome: {o['outcome']}"
            + (f", ¥{o['cost_cny']}" if o["cost_cny"] is not None else "")
            + f" (by {o['recorded_by']})"
        )


@warning_app.command("ack")
def warning_ack(
    warning_id: Annotated[str, typer.Argument(metavar="WARNING_ID")], by: _By, tenant: _Tenant = None
) -> None:
    """Acknowledge a warning for the customer (for example after a call): stops its reminders."""
    try:
        row = db.acknowledge(_url(), warning_id, by, tenant=tenant)
        db.audit(_url(), row["tenant"], by, "warning.acknowledge", warning_id, via="cli", status=row["status"])
    except db.DatabaseError as exc:
        _fail(str(exc))
    console.print(f"warning {warning_id} is {row['status']} (by {row.get('acknowledged_by') or by})")


@warning_app.command("outcome")
def warning_outcome(
    warning_id: Annotated[str, typer.Argument(metavar="WARNING_ID")],
    outcome: Annotated[str, typer.Argument(help="loss_avoided, loss_occurred or false_alarm")],
    by: _By,
    claim_cny: Annotated[float | None, typer.Option(help="The claim paid (loss_occurred only).")] = None,
    note: Annotated[str | None, typer.Option(help="What happened, in a sentence.")] = None,
    tenant: _Tenant = None,
) -> None:
    """Record what really happened after a warning: the feedback that measures prevention."""
    try:
        db.record_outcome(_url(), warning_id, outcome, by, tenant=tenant, cost_cny=claim_cny, note=note)
        owner = db.query(_url(), "SELECT tenant FROM warnings WHERE id = %s", (warning_id,))[0]["tenant"]
        db.audit(_url(), owner, by, "warning.outcome", warning_id, via="cli", outcome=outcome, cost_cny=claim_cny)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    console.print(f"warning {warning_id}: outcome {outcome}" + (f", claim ¥{claim_cny:,.0f}" if claim_cny else ""))


@tenant_app.command("contacts")
def tenant_contacts(
    tenant: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="staff (risk-service on call), final (call centre) or claims.")] = "staff",
    notify: Annotated[list[str] | None, typer.Option(help="An apprise URL; repeat; replaces the list.")] = None,
) -> None:
    """Show the tenant's contacts, or replace one role's list with --notify URLs."""
    try:
        if notify:
            for url in notify:
                check_url(url)
            db.set_contacts(_url(), tenant, role, seal_all(notify, secret_box(get_settings())))
        found = db.contacts(_url(), tenant)
    except (ValueError, ChannelError, db.DatabaseError) as exc:
        _fail(str(exc))
    for name, urls in found.items():
        console.print(f"{name:<7} " + (", ".join(mask_channel(u) for u in urls) or "—"))


@claims_app.command("list")
def claims_list(
    tenant: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, the newest first.")] = 20,
) -> None:
    """The tenant's recent first notices of loss: reference, when, who, what, where, the warning."""
    try:
        notices = db.claim_notices(_url(), tenant, limit)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    if not notices:
        console.print(f"no claim notices for tenant {tenant}")
        return
    zone = check_zone(get_settings().timezone)
    table = Table(title=f"first notices of loss of {tenant} ({zone.key}; 'forewarn warning show WARNING' for one)")
    for col in ("ref", "opened", "customer", "device", "risk", "where", "warning"):
        whole = col in ("ref", "opened", "warning")  # what is copied into other commands: never cut
        table.add_column(col, no_wrap=whole, overflow="fold")
    for n in notices:
        table.add_row(
            n["ref"],
            f"{n['opened_at'].astimezone(zone):%Y-%m-%d %H:%M}",
            n["customer_name"] or n["customer_id"] or "—",
            n["device"],
            n["risk"],
            f"{n['lat']:.4f}, {n['lon']:.4f}" if n["lat"] is not None and n["lon"] is not None else "—",
            n["warning_id"],
        )
    console.print(table)


def _describe(policy: FollowUpPolicy) -> str:
    return (
        " → ".join(
            f"{s.kind} after {s.after_s / 60:g} min" + (" (next channel)" if s.next_channel else "")
            for s in policy.steps
        )
        or "no follow-up"
    )


@tenant_app.command("policy")
def tenant_policy(
    tenant: Annotated[str, typer.Argument()],
    severity: Annotated[str | None, typer.Option(help="advisory, warning or critical")] = None,
    step: Annotated[
        list[str] | None, typer.Option(help="KIND:DELAY[:next], e.g. remind:10m:next, staff:20m, final:45m; repeat.")
    ] = None,
) -> None:
    """Show the tenant's follow-up policy per severity, or set one severity's steps."""
    try:
        if step:
            if severity is None:
                _fail("give --severity with --step")
            policy = FollowUpPolicy(str(severity), parse_steps(step))
            db.set_followup_policy(
                _url(),
                tenant,
                policy.severity,
                [{"after_s": s.after_s, "kind": s.kind, "next_channel": s.next_channel} for s in policy.steps],
            )
        own = db.followup_policies(_url(), tenant)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    for name in SEVERITIES:
        if name in own:
            steps = parse_steps(
                f"{s['kind']}:{s['after_s']}s" + (":next" if s.get("next_channel") else "") for s in own[name]
            )
            console.print(f"{name:<9} {_describe(FollowUpPolicy(name, steps))}")
        else:
            console.print(f"{name:<9} {_describe(DEFAULT_POLICIES[name])} (default)")


def customer_prefs(
    customer_id: Annotated[str, typer.Argument(metavar="ID")],
    tenant: Annotated[str, typer.Option(help="The insurer (tenant) whose customer it is.")],
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. Asia/Shanghai.")] = None,
    quiet: Annotated[list[str] | None, typer.Option(help="Quiet hours HH:MM-HH:MM in their zone; repeat.")] = None,
    no_quiet: Annotated[bool, typer.Option(help="Remove all quiet hours.")] = False,
    budget: Annotated[int | None, typer.Option(help="Non-critical messages per day; beyond it one digest.")] = None,
    no_budget: Annotated[bool, typer.Option(help="Remove the daily budget.")] = False,
) -> None:
    """A customer's time zone, quiet hours (critical warnings still go through) and daily budget."""
    try:
        if timezone is not None:
            check_zone(timezone)
        windows = None
        if quiet:
            windows = [str(w) for w in check_windows([QuietHours.parse(q) for q in quiet])]
        elif no_quiet:
            windows = []
        row: dict[str, Any] = db.set_customer_preferences(
            _url(),
            customer_id,
            tenant=tenant,
            timezone=timezone,
            quiet_hours=windows,
            daily_budget=budget,
            clear_budget=no_budget,
        )
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    console.print(
        f"customer {row['tenant']}/{row['id']}: time zone {row['timezone'] or get_settings().timezone + ' (default)'}, "
        f"quiet hours {', '.join(row['quiet_hours']) or 'none'}, "
        f"daily budget {row['daily_budget'] if row['daily_budget'] is not None else 'none'}"
    )
