"""``forewarn demo``: the whole path on local services, with the customers' phones on screen.

``up`` plus a local HTTP sink standing for the customers' phones; publishes the demo fleet with
compressed time, shows each warning as it is delivered and ends with a summary: readings
stored, rejects, warnings, lead times against the simulator's ground truth.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from core import db
from core.localtime import zone
from core.secretbox import secret_box
from core.settings import Settings
from evaluation.matching import StoredWarning, match
from forewarn.children import settings_env, spawn
from forewarn.launcher import free_port, reachable
from forewarn.publish import PublishStats, publish_fleet, register_fleet
from forewarn.sink import HttpSink
from forewarn.up import start_stack
from simulator.fleet import demo_fleet

STAFF_PATH = "staff"


def demo_command(
    settings: Settings, console: Console, *, seed: int, wall_seconds: float, hours: float, serve: bool = False
) -> None:
    t0 = time.monotonic()
    console.rule("[bold]forewarn demo[/bold] — warn before the loss")
    running = start_stack(settings, console, start_services=True)  # the demo runs on local services
    sink = HttpSink().start()
    logs = Path(settings.state_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = settings_env(settings, running.mqtt_url, running.kafka_url, running.database_url)
    api_port = settings.api_port if not reachable("127.0.0.1", settings.api_port) else free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    # the messages' acknowledgement links and the console point at this run's API
    env = {**env, "FOREWARN_API_PORT": str(api_port), "FOREWARN_PUBLIC_URL": api_url}
    children = [
        spawn("worker", ["worker"], env, logs / "worker.log"),
        spawn("ingest", ["ingest"], env, logs / "ingest.log"),
        spawn("api", ["api"], env, logs / "api.log"),
    ]
    try:
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - int(hours * 3600_000)
        # a tenant of its own per run, so the summary counts this run only
        tenant = f"demo-{int(time.time()):x}"
        fleet = demo_fleet(seed, start_ms=start_ms, duration_s=hours * 3600, tenant=tenant)
        register_fleet(running.database_url, fleet, lambda c: [sink.url(c.id)], secret_box(settings))
        # nobody in the demo acknowledges: with a follow-up policy on the demo's wall clock, an
        # ignored critical warning reminds the customer after 10 s and reaches the insurer's
        # risk-service desk (the sink's /staff) after 20 s — live
        db.set_contacts(running.database_url, tenant, "staff", [sink.url(f"{STAFF_PATH}/{tenant}")])
        db.set_followup_policy(
            running.database_url,
            tenant,
            "critical",
            [{"after_s": 10, "kind": "remind", "next_channel": False}, {"after_s": 20, "kind": "staff"}],
        )
        console.print(
            f"fleet: {len(fleet.devices)} devices, {len(fleet.customers)} customers, "
            f"{len(fleet.incidents)} incidents hidden in {hours:g} simulated hours; logs in {logs}"
        )
        children[1].ready(60)
        shown = 0

        def show_deliveries(_: int) -> None:
            nonlocal shown
            for item in sink.received[shown:]:
                title = item.body.get("title", "")
                first = str(item.body.get("message", "")).splitlines()[:2]
                path = item.path.strip("/")
                if path.startswith(STAFF_PATH):
                    console.print(f"[bold magenta]☎ insurer's risk-service desk[/bold magenta] {title}")
                else:
                    console.print(f"[bold yellow]📣 {path}[/bold yellow] {title}")
                for line in first:
                    console.print(f"    {line}")
            shown = len(sink.received)

        compression = hours * 60 / wall_seconds
        stats = publish_fleet(
            running.mqtt_url, fleet, start_ms, hours, compression, 0.01, seed, on_tick=show_deliveries, console=console
        )
        if not children[0].wait_ready(max(5.0, 100 - (time.monotonic() - t0))):
            console.print("[red]the worker did not become ready in time[/red]; see the worker log")
        settle = time.monotonic() + 25  # long enough for an ignored critical warning to reach the desk
        while time.monotonic() < settle:
            show_deliveries(0)
            time.sleep(0.5)
        show_deliveries(0)
        rejects = children[1].status().get("rejects")
        _summary(console, running.database_url, fleet, stats, start_ms, sink, rejects, settings.timezone, t0)
        if children[2].wait_healthy(f"{api_url}/healthz", 30):
            db.add_tenant(running.database_url, tenant, "forewarn demo insurer")
            _, key = db.create_api_key(running.database_url, tenant, "staff", "demo desk")
            console.print(
                f"  console: {api_url}/console/ — sign in with the demo tenant's staff key [bold]{key}[/bold]"
            )
        else:
            console.print(f"[red]the API did not answer[/red]; see {logs / 'api.log'}")
        if serve:
            console.print("serving the console and the services until Ctrl-C …")
            while all(child.alive() for child in children):
                time.sleep(1)
    finally:
        for child in children:
            child.stop()
        sink.stop()
        running.stop()


def _summary(
    console: Console,
    url: str,
    fleet: Any,
    stats: PublishStats,
    start_ms: int,
    sink: HttpSink,
    rejects: dict[str, int] | None,
    timezone: str,
    t0: float,
) -> None:
    local = zone(timezone)
    tenant = fleet.devices[0].tenant
    summary = db.run_summary(url, tenant, datetime.fromtimestamp(start_ms / 1000, tz=UTC))
    opened = [
        StoredWarning(w["id"], w["device"], w["risk"], int(w["opened_at"].timestamp() * 1000)) for w in summary.warnings
    ]
    table = Table(title=f"warnings against the simulator's ground truth ({timezone})")
    for col in ("device", "incident", "loss at", "first warning", "risk", "lead time"):
        table.add_column(col)
    leads = []
    explained: set[str] = set()
    for incident in fleet.incidents:
        found = match(incident, opened)
        explained.update(w.warning_id for w in found.candidates)
        loss = datetime.fromtimestamp(incident.loss_at_ms / 1000, tz=UTC)
        lead_s = found.lead_time_s(incident.loss_at_ms)
        if found.first is not None and lead_s is not None:
            leads.append(lead_s / 3600)
            first_at = datetime.fromtimestamp(found.first.at_ms / 1000, tz=UTC).astimezone(local)
            first, risk, lead_text = f"{first_at:%H:%M}", found.first.risk, f"{lead_s / 3600:.1f} h"
        else:
            first, risk, lead_text = "—", "—", "missed"
        table.add_row(incident.device, incident.scenario, f"{loss.astimezone(local):%H:%M}", first, risk, lead_text)
    console.print(table)
    phones = [d for d in sink.received if not d.path.strip("/").startswith(STAFF_PATH)]
    desk = len(sink.received) - len(phones)
    escalated = sum(1 for w in summary.warnings if w["status"] == "escalated")
    refused = ", ".join(f"{k} {v}" for k, v in sorted((rejects or {}).items(), key=lambda kv: -kv[1])) or "none"
    console.print(f"[bold]summary[/bold] after {time.monotonic() - t0:.0f} s")
    console.print(
        f"  readings: {stats.readings} published, {summary.readings} stored "
        f"({summary.values} metric values; duplicates sent by the devices are stored once)"
    )
    console.print(
        f"  rejects: {stats.garbage} broken messages sent on purpose; ingest refused: "
        + (refused if rejects is not None else "not reported")
    )
    console.print(
        f"  warnings: {len(opened)} opened, {len(explained)} on a real incident, "
        f"{len(opened) - len(explained)} false; deliveries: {summary.deliveries.get('sent', 0)} sent, "
        f"{summary.deliveries.get('failed', 0)} failed; {len(phones)} messages on the customers' phones"
    )
    console.print(
        f"  follow-up: nobody acknowledged in the demo; {escalated} warning(s) escalated, "
        f"{desk} alert(s) on the insurer's risk-service desk"
    )
    if leads:
        console.print(
            f"  lead time: {len(leads)} of {len(fleet.incidents)} incidents warned before the loss, "
            f"median {statistics.median(leads):.1f} h, shortest {min(leads):.1f} h"
        )
    else:
        console.print("  lead time: no incident was warned before its loss")
