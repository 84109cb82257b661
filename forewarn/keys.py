"""Tenants and their API keys on the command line: ``forewarn tenant add|list``, ``forewarn key
create|list|revoke``.

A key's secret is printed once, when it is created (the database keeps only its hash); a lost
key is revoked and replaced. Each refusal is one clear line and changes nothing.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core import db
from core.settings import get_settings

console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

key_app = typer.Typer(no_args_is_help=True, help="API keys of a tenant: the desk's doors to 'forewarn api'.")


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _url() -> str:
    return get_settings().database_url


def tenant_add(
    tenant: Annotated[str, typer.Argument(metavar="ID", help="Its id, as in device topics.")],
    name: Annotated[str, typer.Option(help="The insurer's name.")],
) -> None:
    """Add an insurer (tenant), or rename one."""
    try:
        row = db.add_tenant(_url(), tenant, name)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    console.print(f"tenant {row['id']}: {row['name']}")


def tenant_list() -> None:
    """Every tenant with its customers, devices and live API keys."""
    try:
        rows = db.tenants(_url())
    except db.DatabaseError as exc:
        _fail(str(exc))
    table = Table(title="tenants")
    for column in ("id", "name", "customers", "devices", "API keys"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], r["name"], str(r["customers"]), str(r["devices"]), str(r["keys"]))
    console.print(table)


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to (it sees that tenant only).")],
    role: Annotated[str, typer.Option(help="read_only (reads), staff (also acts on warnings) or admin.")],
    name: Annotated[str, typer.Option(help="Where the key is used, e.g. 'desk PC' or 'claims system'.")],
) -> None:
    """Create an API key and print it — once: only its hash is kept."""
    try:
        key, text = db.create_api_key(_url(), tenant, role, name)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    err.print(f"API key {key.id} ({key.role}, '{key.name}') of tenant {key.tenant}; copy it now, it is shown once:")
    print(text)  # stdout: the key alone, so a script can capture it


@key_app.command("list")
def key_list(tenant: Annotated[str, typer.Option(help="The tenant whose keys to list.")]) -> None:
    """A tenant's keys: id, role, name, prefix (fw_<prefix>_…), created, revoked."""
    try:
        keys = db.api_keys(_url(), tenant)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    if not keys:
        console.print(f"tenant {tenant} has no API keys ('forewarn key create --tenant {tenant} …' makes one)")
        return
    table = Table(title=f"API keys of {tenant}")
    for column in ("id", "role", "name", "key", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            str(k.id),
            k.role,
            k.name,
            f"fw_{k.prefix}_…",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "—",
        )
    console.print(table)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[int, typer.Argument(metavar="KEY_ID", help="The id 'forewarn key list' shows.")],
) -> None:
    """Revoke a key: refused from the next request on."""
    try:
        key = db.revoke_api_key(_url(), key_id)
    except db.DatabaseError as exc:
        _fail(str(exc))
    console.print(f"API key {key.id} ({key.role}, '{key.name}') of tenant {key.tenant} revoked")
