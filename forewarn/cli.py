"""The ``forewarn`` command line (typer). Every command reads the ``FOREWARN_*`` settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.settings import get_settings, hide_password
from forewarn import desk, keys, mqttauth_cli, scores_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, help="forewarn: warn the policyholder before the loss.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
customer_app = typer.Typer(no_args_is_help=True, help="Policyholders and their notification channels.")
device_app = typer.Typer(no_args_is_help=True, help="Devices and the customer they belong to.")
detectors_app = typer.Typer(
    no_args_is_help=True, help="Detector parameters for a tenant's devices of a kind, or for one device."
)
eval_app = typer.Typer(help="Measure how early and how well forewarn warns.", invoke_without_command=True)
app.add_typer(db_app, name="db")
app.add_typer(customer_app, name="customer")
app.add_typer(device_app, name="device")
app.add_typer(detectors_app, name="detectors")
app.add_typer(eval_app, name="eval")
app.add_typer(desk.warning_app, name="warning")
app.add_typer(desk.tenant_app, name="tenant")
app.add_typer(desk.claims_app, name="claims")
app.add_typer(scores_cli.scores_app, name="scores")
customer_app.command("prefs")(desk.customer_prefs)
app.add_typer(keys.key_app, name="key")
app.add_typer(mqttauth_cli.mqtt_app, name="mqtt")
device_app.command("credentials")(mqttauth_cli.device_credentials)
desk.tenant_app.command("add")(keys.tenant_add)
desk.tenant_app.command("list")(keys.tenant_list)

# wide tables when the output is a file or a CI log (rich assumes 80 columns there)
console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 150)


def _logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or get_settings().log_level).upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


@contextlib.contextmanager
def _service_errors() -> Iterator[None]:
    """A service that cannot be reached or started ends the command with its reason, not a traceback."""
    from core.bus import BusError
    from core.db import DatabaseError
    from core.mqtt import MqttError
    from forewarn.launcher import StackError

    try:
        yield
    except (StackError, DatabaseError, BusError, MqttError, OSError) as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or update the schema (idempotent); makes readings a hypertable when TimescaleDB is there."""
    from core import db

    settings = get_settings()
    try:
        report = db.migrate(settings.database_url, progress=lambda m: console.print(f"  {m}"))
    except db.DatabaseError as exc:
        _fail(str(exc))
    flavour = (
        f"TimescaleDB ({report.timescale_licence or 'unknown'} licence)" if report.timescale else "plain PostgreSQL"
    )
    console.print(
        f"schema up to date on {hide_password(settings.database_url)} ({flavour}); "
        f"{len(report.applied)} migration(s) applied"
    )
    _seal_channels(rotate=False)


@db_app.command("encrypt-channels")
def db_encrypt_channels() -> None:
    """Seal every stored channel URL with the first key of FOREWARN_SECRET_KEY: plain ones from earlier
    versions, and ones sealed with an older key (rotation: put the new key first, run this, then drop the old)."""
    _seal_channels(rotate=True)


@db_app.command("dead-letters")
def db_dead_letters(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 20,
    topic: Annotated[str | None, typer.Option(help="Only those of this Kafka topic.")] = None,
) -> None:
    """Kafka records the worker set aside because the database refused them, with the reason and where
    they were on Kafka (kept FOREWARN_RETENTION_DAYS)."""
    from core.db import Store
    from core.deadletters import dead_letters

    async def read() -> list[dict[str, Any]]:
        store = Store(get_settings().database_url, max_size=1)
        await store.open()
        try:
            return await dead_letters(store, limit, topic)
        finally:
            await store.close()

    try:
        rows = asyncio.run(read())
    except Exception as exc:  # noqa: BLE001 - the database, stated plainly
        _fail(f"cannot read dead letters: {exc}")
    if not rows:
        console.print("no dead letters")
        return
    table = Table("id", "at", "topic", "partition/offset", "key", "reason", "record")
    for row in rows:
        key = (row["key"] or b"").decode("utf-8", errors="replace")
        record = bytes(row["record"])[:120].decode("utf-8", errors="replace")
        where = f"{row['partition']}/{row['offset']}" if row["partition"] is not None else "-"
        table.add_row(str(row["id"]), f"{row['at']:%Y-%m-%d %H:%M:%S}", row["topic"], where, key, row["reason"], record)
    console.print(table)


def _seal_channels(rotate: bool) -> None:
    """Channel URLs at rest: seal the plain ones; with ``rotate``, open and re-seal the sealed ones too."""
    from core import db
    from core.secretbox import SecretKeyError, is_sealed, secret_box
    from notifiers.channels import protect

    settings = get_settings()
    try:
        box = secret_box(settings)
        seen, changed = db.reseal_channels(
            settings.database_url, lambda v: protect(v, box) if rotate or not is_sealed(v) else v
        )
    except (SecretKeyError, db.DatabaseError) as exc:
        _fail(str(exc))
    console.print(f"channel URLs: {changed} of {seen} (re)sealed with the first key of {box.source}")


@customer_app.command("add")
def customer_add(
    customer_id: Annotated[str, typer.Argument(metavar="ID")],
    tenant: Annotated[str, typer.Option(help="The insurer (tenant) whose customer it is.")],
    name: Annotated[str, typer.Option(help="How warnings address the customer.")],
    locale: Annotated[str, typer.Option(help="zh-CN or en.")] = "zh-CN",
    notify: Annotated[list[str] | None, typer.Option(help="An apprise URL; repeat for several channels.")] = None,
) -> None:
    """Add or update one of a tenant's customers with one or more apprise notification URLs."""
    from core import db
    from core.secretbox import secret_box
    from notifiers.channels import ChannelError, check_url, seal_all
    from notifiers.channels import masked as mask_channel

    urls = notify or []
    if not urls:
        _fail("give at least one --notify APPRISE_URL (e.g. --notify 'json://127.0.0.1:8080/alerts')")
    try:
        for url in urls:
            check_url(url)
        sealed = seal_all(urls, secret_box(get_settings()))
        db.add_customer(get_settings().database_url, customer_id, name, locale, sealed, tenant=tenant)
    except (ValueError, ChannelError, db.DatabaseError) as exc:
        _fail(str(exc))
    console.print(f"customer {tenant}/{customer_id} ({locale}) → " + ", ".join(mask_channel(u) for u in urls))


@device_app.command("add")
def device_add(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    tenant: Annotated[str, typer.Option(help="Tenant (topic segment).")],
    customer: Annotated[str, typer.Option(help="Customer id the device belongs to.")],
    kind: Annotated[str, typer.Option(help="vehicle, home, equipment or coldchain.")],
    credentials: Annotated[
        bool, typer.Option(help="Also issue its MQTT password (shown once; see 'device credentials').")
    ] = False,
) -> None:
    """Register a device so ingest accepts its telemetry."""
    from core import db

    try:
        db.add_device(get_settings().database_url, device_id, tenant, customer, kind)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    console.print(f"device {tenant}/{device_id} ({kind}) → customer {customer}")
    if credentials:
        mqttauth_cli.device_credentials(tenant, device_id)


# ------------------------------------------------------------------ detectors: configuration

_Tenant = Annotated[str, typer.Option(help="Tenant (topic segment).")]
_Kind = Annotated[str, typer.Option(help="Device kind: vehicle, home, equipment or coldchain.")]
_Device = Annotated[
    str | None, typer.Option(help="One device of the tenant (default: the tenant's devices of the kind).")
]


def _parse_parameters(items: list[str]) -> dict[str, Any]:
    """``name=value`` pairs; a value is read as JSON (``10800``, ``0.5``, ``[0.0]``, ``null``),
    else taken as a word (``metric=temp_c``)."""
    import json

    def no_constant(name: str) -> None:
        raise ValueError(name)

    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            _fail(f"{item!r} must be name=value, e.g. horizon_s=10800")
        try:
            params[name.strip()] = json.loads(text, parse_constant=no_constant)
        except ValueError:
            params[name.strip()] = text.strip()
    return params


def _scope(tenant: str, kind: str, device: str | None) -> str:
    return f"device {tenant}/{device}" if device else f"{tenant}'s {kind} devices"


def _check_detector_config(kind: str, rows: list[Any], device: str | None) -> None:
    """:class:`ValueError` unless the configuration ``rows`` builds working detectors for
    ``device``, or (``None``) for the tenant's devices of the kind and every one with its own."""
    from core import db
    from detectors.profiles import check_overrides

    scopes = [device] if device else [None, *sorted({r.device for r in rows if r.device})]
    for scope in scopes:
        try:
            check_overrides(kind, db.effective_overrides(rows, scope))
        except ValueError as exc:
            if scope is None or scope == device:
                raise
            raise ValueError(f"device {scope}, with its own parameters, would not work: {exc}") from None


@detectors_app.command("show")
def detectors_show(tenant: _Tenant, kind: _Kind, device: _Device = None) -> None:
    """The parameters each detector runs with, and which level set each.

    A level is the detector's default, the kind's profile, the tenant (for its devices of the
    kind) or the device."""
    from core import db
    from detectors.profiles import explain_parameters

    try:
        rows = db.detector_config(get_settings().database_url, tenant, kind)
        levels = [("tenant", {r.risk: r.params for r in rows if r.device is None})]
        if device:
            levels.append(("device", {r.risk: r.params for r in rows if r.device == device}))
        settings = explain_parameters(kind, levels)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    table = Table(title=f"detector parameters of {_scope(tenant, kind, device)}")
    for column in ("detector", "parameter", "value", "set by"):
        table.add_column(column)
    for s in settings:
        shown = f"[bold]{s.value!r}[/bold]" if s.set_by in ("tenant", "device") else repr(s.value)
        table.add_row(s.detector, s.parameter, shown, s.set_by)
    console.print(table)


@detectors_app.command("set")
def detectors_set(
    risk: Annotated[str, typer.Argument(metavar="RISK", help="Risk type, e.g. freeze_risk.")],
    parameters: Annotated[list[str], typer.Argument(metavar="NAME=VALUE...", help="Parameters to set.")],
    tenant: _Tenant,
    kind: _Kind,
    device: _Device = None,
) -> None:
    """Set parameters of one risk type's detector; running devices pick them up within half a minute."""
    from core import db
    from detectors.profiles import check_parameter_names

    params = _parse_parameters(parameters)
    url = get_settings().database_url
    try:
        check_parameter_names(kind, {risk: params})  # the values are checked with the other levels'
        rows = db.detector_config(url, tenant, kind)
        mine = next((r.params for r in rows if r.device == device and r.risk == risk), {})
        others = [r for r in rows if not (r.device == device and r.risk == risk)]
        _check_detector_config(
            kind, [*others, db.DetectorParams(tenant, kind, device, risk, {**mine, **params})], device
        )
        now = db.set_detector_params(url, tenant, kind, device, risk, params)
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    shown = ", ".join(f"{k}={v!r}" for k, v in now.items())
    console.print(f"{risk} of {_scope(tenant, kind, device)}: {shown}")


@detectors_app.command("clear")
def detectors_clear(
    tenant: _Tenant,
    kind: _Kind,
    risk: Annotated[str | None, typer.Argument(metavar="RISK", help="Only this risk type's parameters.")] = None,
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME...", help="Only these parameters.")] = None,
    device: _Device = None,
) -> None:
    """Remove parameters set at one level (the tenant's or a device's), so the next level's apply."""
    from core import db

    url = get_settings().database_url
    try:
        rows = db.detector_config(url, tenant, kind)
        left = []
        for r in rows:
            if r.device == device and (risk is None or r.risk == risk):
                r = db.DetectorParams(
                    r.tenant, r.kind, r.device, r.risk, {k: v for k, v in r.params.items() if names and k not in names}
                )
            left.append(r)
        _check_detector_config(kind, left, device)
        cleared = db.clear_detector_params(url, tenant, kind, device, risk, names or ())
    except (ValueError, db.DatabaseError) as exc:
        _fail(str(exc))
    if not cleared:
        console.print(f"nothing to clear for {_scope(tenant, kind, device)}")
        return
    shown = ", ".join(f"{r}.{name}" for r, name in cleared)
    console.print(f"cleared {shown} of {_scope(tenant, kind, device)}")


@app.command()
def ingest() -> None:
    """Run the MQTT → Kafka edge (long-running; Ctrl-C stops it cleanly)."""
    from core.runtime import tune_gc
    from ingest.service import run_ingest

    tune_gc()
    _logging()
    settings = get_settings()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_ingest(settings, stop)

    try:
        asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - a start-up problem, stated plainly
        _fail(f"ingest could not run: {exc}")


@app.command()
def health(
    status_file: Annotated[Path, typer.Argument(help="The process's status file (its FOREWARN_STATUS_FILE).")],
    stall_s: Annotated[float, typer.Option("--stall-s", help="Unhealthy: work held unmoved this long.")] = 60.0,
) -> None:
    """Health check of ingest or the worker: exit 0 when it reports and moves its work, else 1 with why."""
    from core.readiness import health as why_unhealthy
    from core.readiness import read_status

    why = why_unhealthy(read_status(status_file), time.time(), stall_s)
    if why is not None:
        console.print(f"unhealthy: {why}")
        raise typer.Exit(1)
    console.print("healthy")


@app.command()
def api() -> None:
    """Serve the HTTP API: acknowledgement links (FOREWARN_PUBLIC_URL/a/…), the REST API /v1 (docs at /docs), health."""
    from forewarn.api import run_api

    _logging()
    run_api(get_settings())


@app.command()
def worker() -> None:
    """Run the Faust stream worker: store, score, decide, notify (long-running)."""
    from streams.app import run_worker

    run_worker(get_settings().log_level.lower())


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="Fleet seed: the same seed gives the same fleet.")] = 7,
    fleet: Annotated[
        str, typer.Option(help="demo (small), standard (every scenario, several variants) or mixed.")
    ] = "demo",
    devices: Annotated[int | None, typer.Option(help="Fleet size (mixed fleet: scenarios cycled, half quiet).")] = None,
    hours: Annotated[float, typer.Option(help="Simulated hours (the standard fleet brings its own).")] = 12.0,
    compression: Annotated[float, typer.Option(help="Simulated hours per wall minute.")] = 12.0,
    rate: Annotated[
        float | None, typer.Option(help="Readings per second to publish (sets the compression instead).")
    ] = None,
    interval_s: Annotated[float | None, typer.Option(help="Sample interval of homes, equipment, cold chain.")] = None,
    notify: Annotated[
        str | None, typer.Option(help="apprise URL for the simulated customers; {customer} is replaced.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the messages to this JSONL file instead.")] = None,
    replay: Annotated[Path | None, typer.Option(help="Publish a file written by --out, as fast as possible.")] = None,
    garbage: Annotated[float, typer.Option(help="Fraction of deliberately broken messages.")] = 0.01,
) -> None:
    """Publish a seeded fleet over MQTT (registering its customers and devices first), write it
    to a file, or replay such a file. Timestamps are never in the future: the simulated clock
    starts in the past and catches up with the wall clock at the end."""
    from forewarn.publish import simulate_command

    _logging("WARNING")
    try:
        simulate_command(
            get_settings(),
            seed=seed,
            hours=hours,
            compression=compression,
            rate=rate,
            fleet_name=fleet,
            devices=devices,
            interval_s=interval_s,
            notify=notify,
            out=out,
            replay=replay,
            garbage=garbage,
            console=console,
        )
    except (ValueError, OSError, RuntimeError) as exc:  # bad options, files, or a service down
        _fail(str(exc))


@app.command()
def up(
    start_services: Annotated[
        bool,
        typer.Option(
            "--start-services",
            help="Start Mosquitto, Tansu (in-memory Kafka, for demos) or PostgreSQL where nothing answers at a"
            " loopback URL of FOREWARN_MQTT_URL / _KAFKA_URL / _DATABASE_URL. Without it, nothing is started.",
        ),
    ] = False,
    api: Annotated[bool, typer.Option("--api", help="Run the HTTP service too.")] = False,
    mqtt_auth: Annotated[
        bool,
        typer.Option(
            "--mqtt-auth",
            help="Run a Mosquitto of up's own that refuses anonymous clients and lets each device (user"
            " TENANT/DEVICE, password from 'forewarn device credentials') publish on its own topics only, in place"
            " of FOREWARN_MQTT_URL's broker (on its port if free); credentials issued or revoked apply within ~5 s.",
        ),
    ] = False,
) -> None:
    """Run ingest and the worker in the foreground, restarting them when they die; Ctrl-C or SIGTERM stops all."""
    from forewarn.up import up_command

    _logging("WARNING")
    with _service_errors():
        up_command(get_settings(), console, start_services=start_services, api=api, mqtt_auth=mqtt_auth)


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Fleet seed.")] = 7,
    wall_seconds: Annotated[float, typer.Option(help="How long the simulation publishes.")] = 60.0,
    hours: Annotated[float, typer.Option(help="Simulated hours covered.")] = 12.0,
    serve: Annotated[
        bool, typer.Option(help="Keep the console and services up after the summary, until Ctrl-C.")
    ] = False,
) -> None:
    """`up` plus the simulator: shows warnings live and ends with a summary and the console's address."""
    from forewarn.demo import demo_command

    _logging("WARNING")
    with _service_errors():
        demo_command(get_settings(), console, seed=seed, wall_seconds=wall_seconds, hours=hours, serve=serve)


@eval_app.callback()
def eval_scenarios(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Seed of the standard scenario library.")] = 7,
    out: Annotated[Path, typer.Option(help="Folder for eval.json and lead_times.png.")] = Path("out/eval"),
    min_lead_minutes: Annotated[float, typer.Option(help="Lead time a customer needs to act.")] = 30.0,
    people: Annotated[
        bool, typer.Option(help="Follow each warning with simulated customers and staff (reminders, escalation).")
    ] = True,
    mix: Annotated[
        str, typer.Option(help="Customers' behaviours, shares summing to 1.")
    ] = "prompt=0.4,late=0.3,never=0.2,night_only=0.1",
    quiet_share: Annotated[float, typer.Option(help="Share of customers with quiet hours 22:00-07:00.")] = 0.5,
    fleet_model: Annotated[
        bool,
        typer.Option(
            help="Train a fleet model per kind on a separate simulated fleet's healthy history and run it in the "
            "learned group (beside the baseline alone, and both together)."
        ),
    ] = True,
) -> None:
    """Run the scenario library through the worker's detectors and decisions; report recall,
    false warnings per device-day, lead times, detection delay and the loss avoidable; with
    people in the loop, the acknowledgements, reminders and escalations on the simulated clock,
    the incidents a person acted on in time, precision and the loss avoided with people."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.markup import escape

    from evaluation.harness import evaluate
    from evaluation.people import PeopleSettings
    from evaluation.report import print_eval, write_eval
    from simulator.fleet import standard_library
    from simulator.people import parse_mix

    try:
        settings = PeopleSettings(mix=parse_mix(mix), quiet_share=quiet_share) if people else None
    except ValueError as exc:
        _fail(str(exc))
    t0 = time.perf_counter()
    with console.status("building the standard scenario library…"):
        fleet = standard_library(seed)
    console.print(f"fleet: {len(fleet.devices)} devices, {len(fleet.incidents)} labelled incidents")
    report = evaluate(
        fleet,
        min_lead_s=min_lead_minutes * 60,
        progress=lambda m: console.print(f"[dim]{escape(m)}[/dim]"),
        people=settings,
        fleet_model=fleet_model,
    )
    print_eval(console, report)
    paths = write_eval(report, out)
    console.print(f"wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - t0:.1f} s")


@eval_app.command("nab")
def eval_nab(
    results: Annotated[Path, typer.Argument(metavar="DIR", help="Scored CSVs laid out like NAB's data folder.")],
    thresholds: Annotated[
        Path | None, typer.Option(help="JSON {profile: threshold} (or NAB's expected-results file).")
    ] = None,
    nab_dir: Annotated[Path | None, typer.Option(help="NAB data folder (default: shared/benchmarks/nab-dev).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report here.")] = None,
) -> None:
    """Score a detector's NAB results with NAB's method: windows, sigmoid reward, three profiles."""
    import json

    from evaluation.nab import NabDataError, score_corpus

    given = None
    if thresholds is not None:
        try:
            doc = json.loads(thresholds.read_text())
        except (OSError, ValueError) as exc:
            _fail(f"cannot read thresholds from {thresholds}: {exc}")
        given = doc.get("thresholds", doc)
    try:
        report = score_corpus(results, nab_dir, given, progress=lambda m: err.print(f"[dim]{m}[/dim]"))
    except (NabDataError, ValueError, OSError) as exc:
        _fail(str(exc))
    table = Table(title=f"NAB scores of {results}")
    for col in ("profile", "threshold", "normalised score"):
        table.add_column(col)
    for name, profile in report.profiles.items():
        table.add_row(
            name, f"{profile.threshold:.4f}" + ("" if thresholds else " (optimised)"), f"{profile.normalised:.2f}"
        )
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(report.to_json(), indent=2))


@app.command()
def train(
    kind: Annotated[
        list[str] | None, typer.Option(help="Device kind to model; repeat (default: every kind with readings).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the models (default FOREWARN_FLEET_MODEL_DIR, else STATE_DIR/fleet-models)."),
    ] = None,
    method: Annotated[str, typer.Option(help="pca (reconstruction error), iforest or zmax.")] = "pca",
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's devices.")] = None,
    holdout: Annotated[float, typer.Option(help="Share of the time range held out to validate.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the model's randomness.")] = 0,
) -> None:
    """Fit a fleet model per device kind on the stored readings; write it with a JSON manifest."""
    from core.contract import DEVICE_KINDS
    from forewarn.train import train_command

    settings = get_settings()
    folder = out or settings.fleet_models_path
    unknown = [k for k in kind or [] if k not in DEVICE_KINDS]
    if unknown:
        _fail(f"unknown kind {', '.join(unknown)} (known: {', '.join(DEVICE_KINDS)})")
    with _service_errors():
        try:
            train_command(
                settings.database_url,
                folder,
                kind or DEVICE_KINDS,
                console,
                err,
                method=method,
                tenant=tenant,
                holdout=holdout,
                seed=seed,
            )
        except ValueError as exc:
            _fail(str(exc))


def _detect_multivariate(csv_file: Path, detector: str, params: dict[str, str], out: Path | None) -> bool:
    """A file that is not ``timestamp,value``: a multi-column backtest (evaluation.multivariate); ``False``: not one."""
    from evaluation.multivariate import detect_multivariate, is_multivariate

    try:
        if not is_multivariate(csv_file):
            return False
        note = lambda message: err.print(f"[dim]{message}[/dim]")  # noqa: E731
        if out is None:
            rows = detect_multivariate(csv_file, sys.stdout, detector, params, note)
        else:
            with out.open("w", newline="") as handle:
                rows = detect_multivariate(csv_file, handle, detector, params, note)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    err.print(f"{rows} rows scored with {detector}")
    return True


@app.command()
def detect(
    csv_file: Annotated[
        Path | None, typer.Argument(metavar="FILE.csv", help="timestamp,value CSV (or - for stdin).")
    ] = None,
    detector: Annotated[str | None, typer.Option(help="Detector name (see --list), e.g. resonance_ensemble.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Detector parameter k=v; repeat.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write timestamp,value,anomaly_score here (default stdout).")] = None,
    list_detectors: Annotated[
        bool, typer.Option("--list", help="Print the detector names, one a line, the best general-purpose first.")
    ] = False,
) -> None:
    """Stream a CSV through a detector one row at a time: a backtest on historical sensor data.

    A file with several value columns (delimiter sniffed; label columns ignored) is scored with
    the fleet model (--detector fleet) or one univariate detector per column."""
    from evaluation.backtest import detect_csv

    if list_detectors:
        _print_detector_names()
        return
    if csv_file is None or detector is None:
        _fail("detect needs FILE.csv and --detector NAME (forewarn detect --list names the detectors)")
        return
    params: dict[str, str] = {}
    for item in param or []:
        if "=" not in item:
            _fail(f"--param {item!r} must be k=v")
        k, v = item.split("=", 1)
        params[k.strip()] = v.strip()
    if str(csv_file) != "-" and _detect_multivariate(csv_file, detector, params, out):
        return
    try:
        src = sys.stdin if str(csv_file) == "-" else csv_file
        if out is None:
            rows = detect_csv(src, sys.stdout, detector, params)
        else:
            with out.open("w", newline="") as handle:
                rows = detect_csv(src, handle, detector, params)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    err.print(f"{rows} rows scored with {detector}")


def _print_detector_names() -> None:
    from detectors.univariate import UNIVARIATE

    for name in UNIVARIATE:  # ranked: the registry lists the best general-purpose detector first
        typer.echo(name)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
