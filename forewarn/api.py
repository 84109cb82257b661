"""``forewarn api``: the HTTP service of the project (FastAPI on uvicorn; the only module that imports them).

Two doors:

- the acknowledgement links every message carries: ``GET /a/{token}`` shows the warning and a
  button, ``POST /a/{token}`` acknowledges it (two steps, so a link preview that fetches the
  page acknowledges nothing). A forged, expired or replayed token gets a clear refusal and
  changes nothing.
- the insurer's desk, ``/v1/…`` (its OpenAPI schema at ``/openapi.json``, pages at ``/docs``):
  customers and devices (lists, changes, CSV imports), warnings and the staff's actions on them,
  a device's readings with its warnings marked, the portfolio, rejected telemetry, the tenant's
  keys and audit log. A request presents one tenant's API key (``Authorization: Bearer fw_…``
  or ``X-API-Key: fw_…``, made by ``forewarn key create``) and sees that tenant only: another
  tenant's customer, device or warning is a 404, never its data. ``read_only`` keys read;
  ``staff`` keys also acknowledge, escalate and record outcomes; ``admin`` keys also manage
  customers, devices and keys. Each write leaves an audit row (who, what, on what, when) in
  the same transaction.

Every error of the desk is JSON ``{"error": "…", "detail": …}``: 422 when a value breaks the
schema (each problem in ``detail``), 400 for values that do not make sense together, 401 for
a missing, unknown or revoked key, 403 for a role that may not do it, 404, 409 for a change
that must not happen, 413 for a file too large, 503 while the database cannot be reached, and
500 only for a bug of ours (logged with its traceback). ``GET /healthz`` answers when the
database does.
"""

from __future__ import annotations

import contextlib
import html
import logging
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import acktokens, apikeys, db
from core.contract import DEVICE_KINDS, LOCALES, METRICS, SEGMENT_RE
from core.lifecycle import STATUSES
from core.risks import RISK_TYPES
from core.secretbox import SecretBox, secret_box
from core.settings import Settings, ack_secret, get_settings
from forewarn import schemas as s
from notifiers.catalog import DEVICE_LABELS, METRIC_LABELS, SEVERITY_TEXT
from notifiers.channels import seal_all
from notifiers.render import risk_text

log = logging.getLogger(__name__)

_TEXT = {
    "zh-CN": {
        "title": "风险预警确认",
        "ask": "请确认您已收到以下风险预警，并已采取或将采取处置措施：",
        "button": "确认收到",
        "done": "已确认，谢谢！我们已记录您的确认，风险处置人员不会再为此预警联系您。",
        "already": "此预警已于此前确认，无需再次操作。",
    },
    "en": {
        "title": "Confirm a risk warning",
        "ask": "Please confirm that you have seen this warning and are acting on it:",
        "button": "I have seen this",
        "done": "Thank you — your confirmation is recorded; our risk team will not chase you about this warning.",
        "already": "This warning was confirmed before; nothing more to do.",
    },
}
_REFUSAL_STATUS = {"malformed": 400, "forged": 403, "expired": 410}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:36em;margin:2em auto'>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status)


def _refusal(message: str, status: int) -> HTMLResponse:
    return _page("forewarn", f"<p role='alert'>{html.escape(message)}</p>", status)


CONSOLE_DIR = pathlib.Path(__file__).with_name("console")
"""The desk's web console (static files, package data), served under ``/console/``."""
_CONSOLE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
    " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _ConsoleFiles(StaticFiles):
    """The console's files, each with headers that keep the page to its own scripts (no inline
    code, nothing from elsewhere) and revalidated on every load (a new version shows at once)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(_CONSOLE_HEADERS)
        return response


def _mount_console(api: FastAPI) -> None:
    api.mount("/console", _ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")

    @api.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/console/")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    secret = ack_secret(settings)
    box = secret_box(settings)  # a malformed FOREWARN_SECRET_KEY stops the API here, not at the first write
    desk = db.Desk(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # requests run in worker threads: no more of them than pooled connections, so the rest wait
        # their turn on the event loop instead of fighting over the GIL and the pool
        anyio.to_thread.current_default_thread_limiter().total_tokens = desk.max_size
        yield
        desk.close()  # (the pool opens on the first request: a TestClient without a lifespan works too)

    api = FastAPI(
        title="forewarn",
        version="1",
        summary="IoT risk warnings that people act on",
        description=(__doc__ or "").split("\n\n", 1)[1],
        lifespan=lifespan,
    )
    _answer_errors_in_json(api)
    api.state.desk = desk
    api.include_router(_desk_routes(box))
    _mount_console(api)

    def _verified(token: str) -> acktokens.AckToken | HTMLResponse:
        try:
            return acktokens.verify(secret, token, time.time())
        except acktokens.TokenError as exc:
            return _refusal(str(exc), _REFUSAL_STATUS.get(exc.reason, 400))

    def _warning(warning_id: str) -> dict[str, Any]:
        return db.warning_detail(settings.database_url, warning_id)["warning"]

    def _locale(warning: dict[str, Any]) -> str:
        rows = db.query(
            settings.database_url,
            "SELECT locale FROM customers WHERE tenant = %s AND id = %s",
            (warning["tenant"], warning["customer_id"]),
        )
        return str(rows[0]["locale"]) if rows else "zh-CN"

    @api.get("/healthz", tags=["service"])
    def healthz() -> JSONResponse:
        try:
            db.query(settings.database_url, "SELECT 1 AS ok")
        except db.DatabaseError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)
        return JSONResponse({"ok": True})

    @api.get("/a/{token}", response_class=HTMLResponse, tags=["acknowledgement links"])
    def show_acknowledgement(token: str) -> HTMLResponse:
        verified = _verified(token)
        if isinstance(verified, HTMLResponse):
            return verified
        try:
            warning = _warning(verified.warning_id)
        except db.NotFound:
            return _refusal("this warning no longer exists", 404)
        locale = _locale(warning)
        text = _TEXT[locale]
        risk = risk_text(str(warning["risk"]), locale)
        opened = warning["opened_at"].strftime("%Y-%m-%d %H:%M UTC")
        if warning["status"] == "acknowledged":
            return _page(text["title"], f"<p>{html.escape(text['already'])}</p>")
        body = (
            f"<p>{html.escape(text['ask'])}</p><p><strong>{html.escape(risk.name)}</strong> · "
            f"{html.escape(str(warning['device']))} · {html.escape(opened)}</p>"
            f"<form method='post'><button type='submit' style='font-size:1.3em'>{html.escape(text['button'])}"
            "</button></form>"
        )
        return _page(text["title"], body)

    @api.post("/a/{token}", response_class=HTMLResponse, tags=["acknowledgement links"])
    def acknowledge(token: str, request: Request) -> HTMLResponse:
        verified = _verified(token)
        if isinstance(verified, HTMLResponse):
            return verified
        try:
            warning = db.acknowledge(settings.database_url, verified.warning_id, "customer:link", nonce=verified.nonce)
        except db.NotFound:
            return _refusal("this warning no longer exists", 404)
        except db.Refused as exc:
            return _refusal(str(exc), 409)
        text = _TEXT[_locale(warning)]
        return _page(text["title"], f"<p role='status'>{html.escape(text['done'])}</p>")

    return api


def run_api(settings: Settings) -> None:
    """Serve the API in the foreground (``forewarn api``)."""
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")


# ------------------------------------------------------------------ errors: JSON, and 4xx for the caller's


class ApiProblem(Exception):
    """An answer other than success, said in a sentence."""

    def __init__(self, status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers


def _error(status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "detail": jsonable_encoder(detail)}, status_code=status, headers=headers)


def _problems(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each validation problem as where, what (``msg``) and its type; never the input itself."""
    out = []
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"loc": where, "msg": message, "type": str(error.get("type", ""))})
    return out


def _answer_errors_in_json(api: FastAPI) -> None:
    @api.exception_handler(ApiProblem)
    async def problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return _error(exc.status, exc.message, exc.detail, exc.headers)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return _error(exc.status_code, message, headers=getattr(exc, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = _problems(exc)
        said = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return _error(422, f"invalid request: {said}{more}", problems)

    @api.exception_handler(db.NotFound)
    async def not_found(request: Request, exc: db.NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @api.exception_handler(db.Refused)
    async def refused(request: Request, exc: db.Refused) -> JSONResponse:
        return _error(409, str(exc))

    @api.exception_handler(db.DatabaseError)
    async def unavailable(request: Request, exc: db.DatabaseError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return _error(503, f"the database cannot answer now: {exc}")

    @api.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, "internal error: the request failed on our side and is logged; nothing more to say here")


def _bad(exc: Exception) -> ApiProblem:
    return ApiProblem(400, str(exc))


# ------------------------------------------------------------------ the insurer's desk: /v1


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: one tenant's API key; ``desk`` lends a pooled connection per database call."""

    key: db.ApiKey
    desk: db.Desk

    @property
    def tenant(self) -> str:
        return self.key.tenant

    @property
    def actor(self) -> str:
        return self.key.actor

    def audited(self, action: str, target: str | None = None, **detail: Any) -> Any:
        """The request's write and its audit row, in one transaction (``with caller.audited(…) as entry``:
        write through ``entry.conn``)."""
        return db.audited(self.desk, self.tenant, self.actor, action, target, role=self.key.role, **detail)


_bearer = HTTPBearer(auto_error=False, scheme_name="Bearer", description="Authorization: Bearer fw_…")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="X-API-Key", description="X-API-Key: fw_…")
_UNAUTHORISED = {"WWW-Authenticate": 'Bearer realm="forewarn"'}


def _caller(
    request: Request,
    _bearer_key: Annotated[Any, Security(_bearer)] = None,
    _header_key: Annotated[Any, Security(_header)] = None,
) -> Caller:
    """Who is asking (one worker-thread hop, holding a pooled connection only for the key's check)."""
    desk: db.Desk = request.app.state.desk
    try:
        presented = apikeys.from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
        key = db.find_api_key(desk, presented)
    except apikeys.BadKey as exc:
        raise ApiProblem(401, str(exc), headers=_UNAUTHORISED) from None
    if key is None:
        raise ApiProblem(401, "unknown API key: check it, or ask for a new one", headers=_UNAUTHORISED)
    if key.revoked_at is not None:
        when = f"{key.revoked_at:%Y-%m-%d %H:%M} UTC"
        raise ApiProblem(401, f"this API key was revoked on {when}", headers=_UNAUTHORISED)
    return Caller(key, desk)


def _role(needed: str) -> Callable[[Caller], Awaitable[Caller]]:
    async def allowed(who: Annotated[Caller, Depends(_caller)]) -> Caller:
        if not apikeys.allows(who.key.role, needed):
            raise ApiProblem(403, f"a {who.key.role} key may not do this: it needs a {needed} key")
        return who

    return allowed


Reader = Annotated[Caller, Depends(_role("read_only"))]
Staff = Annotated[Caller, Depends(_role("staff"))]
Admin = Annotated[Caller, Depends(_role("admin"))]
Limit = Annotated[int, Query(ge=1, le=s.MAX_PAGE, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=s.MAX_OFFSET, description="items to skip")]
CustomerId = Annotated[str, Path(pattern=SEGMENT_RE.pattern, description="the customer's id")]
DeviceId = Annotated[str, Path(pattern=SEGMENT_RE.pattern, description="the device's id")]
IdFilter = Annotated[str | None, Query(pattern=SEGMENT_RE.pattern)]
WarningId = Annotated[str, Path(max_length=64, description="the warning's id (a UUID)")]


def _desk_routes(box: SecretBox) -> APIRouter:
    """Every ``/v1`` route (the app's ``state.desk`` holds the pooled connections; ``box`` seals channel URLs)."""
    v1 = APIRouter(prefix="/v1")

    def sealed(fields: dict[str, Any]) -> dict[str, Any]:
        """Channel URLs are stored sealed (core.secretbox) and answered masked: never kept in the clear."""
        if not fields.get("notify_urls"):
            return fields
        return {**fields, "notify_urls": seal_all(list(fields["notify_urls"]), box)}

    # -------------------------------------------------------------- who, and the words

    @v1.get("/me", tags=["keys"], summary="The key's tenant and role")
    def me(who: Reader) -> dict[str, Any]:
        return {
            "tenant": who.tenant,
            "role": who.key.role,
            "key": {"id": who.key.id, "name": who.key.name, "prefix": who.key.prefix},
        }

    @v1.get("/catalog", tags=["keys"], summary="Names of risks, severities, device kinds and metrics per locale")
    def catalog(who: Reader) -> dict[str, Any]:
        return {
            "risks": {
                r: {loc: {"name": risk_text(r, loc).name, "loss": risk_text(r, loc).loss} for loc in LOCALES}
                for r in RISK_TYPES
            },
            "severities": {sev: {loc: SEVERITY_TEXT[loc][sev] for loc in LOCALES} for sev in SEVERITY_TEXT["en"]},
            "kinds": {k: {loc: DEVICE_LABELS[loc][k] for loc in LOCALES} for k in DEVICE_KINDS},
            "metrics": {
                name: {loc: _metric_words(name, m.description, loc) for loc in LOCALES} for name, m in METRICS.items()
            },
            "statuses": list(STATUSES),
        }

    # -------------------------------------------------------------- customers

    @v1.get("/customers", tags=["customers"], summary="The tenant's customers, a page at a time")
    def list_customers(
        who: Reader,
        limit: Limit = 50,
        offset: Offset = 0,
        search: Annotated[str | None, Query(max_length=100, description="text in the id or name")] = None,
        locale: Annotated[s.Locale | None, Query()] = None,
    ) -> s.Page[s.Customer]:
        rows = db.list_customers(
            who.desk, who.tenant, search=_clean(search), locale=locale, limit=limit + 1, offset=offset
        )
        return _paged([s.Customer.of(r) for r in rows], limit, offset)

    @v1.get("/customers/{customer_id}", tags=["customers"], summary="One customer")
    def get_customer(who: Reader, customer_id: CustomerId) -> s.Customer:
        return s.Customer.of(db.get_customer(who.desk, who.tenant, customer_id))

    @v1.post("/customers", status_code=201, tags=["customers"], summary="A new customer")
    def create_customer(who: Admin, body: s.CustomerIn) -> s.Customer:
        fields = body.fields()
        with who.audited("customer.create", body.id, fields=sorted(fields)) as entry:
            row = db.create_customer(entry.conn, who.tenant, body.id, sealed(fields))
        return s.Customer.of(row)

    @v1.patch("/customers/{customer_id}", tags=["customers"], summary="Change some of a customer's fields")
    def update_customer(who: Admin, customer_id: CustomerId, body: s.CustomerPatch) -> s.Customer:
        try:
            changes = body.fields()
        except ValueError as exc:
            raise _bad(exc) from None
        with who.audited("customer.update", customer_id, fields=sorted(changes)) as entry:
            row = db.update_customer(entry.conn, who.tenant, customer_id, sealed(changes))
        return s.Customer.of(row)

    @v1.post(
        "/customers/import",
        tags=["customers"],
        summary="Create or update customers from a CSV file; bad rows are reported, good ones kept",
        openapi_extra=_csv_body(s.CUSTOMER_CSV, "wang,王女士,json://sms-gateway/wang mailto://wang@example.com,zh-CN"),
    )
    async def import_customers(request: Request, who: Admin) -> s.ImportResult:
        parsed = _parsed(await _csv(request), s.customers_csv)

        def write() -> s.ImportResult:
            rows = [(customer_id, sealed(fields)) for _, (customer_id, fields) in parsed.rows]
            with who.audited("customer.import", None, rows=len(rows), refused=len(parsed.errors)) as entry:
                created, updated = db.import_customers(entry.conn, who.tenant, rows)
                entry.detail.update(created=created, updated=updated)
            return s.ImportResult(created=created, updated=updated, errors=parsed.errors)

        return await run_in_threadpool(write)

    # -------------------------------------------------------------- devices

    @v1.get("/devices", tags=["devices"], summary="The tenant's devices, a page at a time")
    def list_devices(
        who: Reader,
        limit: Limit = 50,
        offset: Offset = 0,
        customer: IdFilter = None,
        kind: Annotated[s.Kind | None, Query()] = None,
        search: Annotated[str | None, Query(max_length=100, description="text in the id")] = None,
    ) -> s.Page[s.Device]:
        rows = db.list_devices(
            who.desk,
            who.tenant,
            customer=customer,
            kind=kind,
            search=_clean(search),
            limit=limit + 1,
            offset=offset,
        )
        return _paged([s.Device(**r) for r in rows], limit, offset)

    @v1.get("/devices/{device_id}", tags=["devices"], summary="One device")
    def get_device(who: Reader, device_id: DeviceId) -> s.Device:
        return s.Device(**db.get_device(who.desk, who.tenant, device_id))

    @v1.post("/devices", status_code=201, tags=["devices"], summary="A new device of one of the tenant's customers")
    def create_device(who: Admin, body: s.DeviceIn) -> s.Device:
        with who.audited("device.create", body.id, customer=body.customer, kind=body.kind) as entry:
            try:
                row = db.create_device(entry.conn, who.tenant, body.id, body.customer, body.kind)
            except ValueError as exc:
                raise _bad(exc) from None
        return s.Device(**row)

    @v1.patch("/devices/{device_id}", tags=["devices"], summary="Give a device another customer or kind")
    def update_device(who: Admin, device_id: DeviceId, body: s.DevicePatch) -> s.Device:
        changes = body.model_dump(exclude_none=True)
        with who.audited("device.update", device_id, **changes) as entry:
            try:
                row = db.update_device(entry.conn, who.tenant, device_id, customer_id=body.customer, kind=body.kind)
            except ValueError as exc:
                raise _bad(exc) from None
        return s.Device(**row)

    @v1.post(
        "/devices/import",
        tags=["devices"],
        summary="Create or update devices from a CSV file; bad rows are reported, good ones kept",
        openapi_extra=_csv_body(s.DEVICE_CSV, "home-1,wang,home"),
    )
    async def import_devices(request: Request, who: Admin) -> s.ImportResult:
        parsed = _parsed(await _csv(request), s.devices_csv)

        def write() -> s.ImportResult:
            rows = [(number, d.id, d.customer, d.kind) for number, d in parsed.rows]
            with who.audited("device.import", None, rows=len(rows)) as entry:
                created, updated, refused = db.import_devices(entry.conn, who.tenant, rows)
                entry.detail.update(created=created, updated=updated, refused=len(parsed.errors) + len(refused))
            by_row = {number: d.id for number, d in parsed.rows}
            errors = parsed.errors + [s.RowError(row=n, id=by_row.get(n), error=why) for n, why in refused]
            return s.ImportResult(created=created, updated=updated, errors=sorted(errors, key=lambda e: e.row))

        return await run_in_threadpool(write)

    @v1.get("/devices/{device_id}/readings", tags=["devices"], summary="A device's series, its warnings marked")
    def readings(
        who: Reader,
        device_id: DeviceId,
        start: Annotated[s.Moment | None, Query(description="default: 24 h before the end")] = None,
        end: Annotated[s.Moment | None, Query(description="default: now")] = None,
        resolution: Annotated[str, Query(max_length=12, description="bucket width: 30s, 1m, 15m, 1h, 1d…")] = "1h",
        metrics: Annotated[list[str] | None, Query(description="metric names, comma-separated or repeated")] = None,
    ) -> s.Readings:
        end = end or datetime.now(UTC)
        start = start or end - timedelta(hours=24)
        names = _listed(metrics, METRICS, "metric")
        try:
            series, marks = db.device_readings(who.desk, who.tenant, device_id, start, end, resolution, names or None)
        except ValueError as exc:
            raise _bad(exc) from None
        return s.Readings(
            device=device_id,
            start=start,
            end=end,
            resolution=resolution,
            series={
                metric: [s.Point(ts=p.bucket, avg=p.avg, min=p.min, max=p.max, n=p.n) for p in points]
                for metric, points in series.items()
            },
            warnings=[s.WarningMark(**w) for w in marks],
        )

    # -------------------------------------------------------------- warnings

    @v1.get("/warnings", tags=["warnings"], summary="The tenant's warnings, newest first, filtered")
    def list_warnings(
        who: Reader,
        limit: Limit = 50,
        offset: Offset = 0,
        status: Annotated[list[str] | None, Query(description=f"any of {', '.join(STATUSES)}")] = None,
        risk: Annotated[list[str] | None, Query(description="risk types, comma-separated or repeated")] = None,
        severity: Annotated[list[str] | None, Query(description="advisory, warning, critical")] = None,
        since: Annotated[s.Moment | None, Query(description="opened at or after")] = None,
        until: Annotated[s.Moment | None, Query(description="opened before")] = None,
        device: IdFilter = None,
        customer: IdFilter = None,
    ) -> s.Page[s.WarningItem]:
        rows = db.list_warnings(
            who.desk,
            who.tenant,
            statuses=_listed(status, STATUSES, "status"),
            risks=_listed(risk, RISK_TYPES, "risk"),
            severities=_listed(severity, SEVERITY_TEXT["en"], "severity"),
            since=since,
            until=until,
            device=device,
            customer=customer,
            limit=limit + 1,
            offset=offset,
        )
        return _paged([s.WarningItem(**r) for r in rows], limit, offset)

    def detail(desk: db.Desk, tenant: str, warning_id: str) -> s.WarningDetail:
        found = db.warning_detail(desk, warning_id, tenant)
        extra = db.warning_extras(desk, tenant, warning_id)
        w = found["warning"]
        attempts: dict[int, list[s.Attempt]] = {}
        for a in found["attempts"]:
            attempts.setdefault(a["delivery_id"], []).append(s.Attempt(**a))
        return s.WarningDetail(
            **{k: w.get(k) for k in s.WarningItem.model_fields if k in w},
            customer_name=extra["customer_name"],
            outcome=extra["outcome"]["outcome"] if extra["outcome"] else None,
            evidence=dict(w["evidence"] or {}),
            transitions=[s.Transition(**t) for t in found["transitions"]],
            deliveries=[s.Delivery(**d, attempt_log=attempts.get(d["id"], [])) for d in found["deliveries"]],
            followups=[s.FollowUp(**f) for f in found["followups"]],
            outcome_record=s.OutcomeRecord(**extra["outcome"]) if extra["outcome"] else None,
        )

    @v1.get(
        "/warnings/{warning_id}",
        tags=["warnings"],
        summary="A warning with its evidence, every transition, every delivery attempt, its outcome",
    )
    def get_warning(who: Reader, warning_id: WarningId) -> s.WarningDetail:
        return detail(who.desk, who.tenant, warning_id)

    @v1.post("/warnings/{warning_id}/acknowledge", tags=["warnings"], summary="Staff acknowledge a warning")
    def acknowledge_warning(who: Staff, warning_id: WarningId, body: s.ActionIn | None = None) -> s.WarningDetail:
        with who.audited("warning.acknowledge", warning_id) as entry:
            row = db.acknowledge(entry.conn, warning_id, who.actor, tenant=who.tenant)
            entry.detail["status"] = row["status"]
            if body is not None and body.note:
                entry.detail["note"] = body.note
        return detail(who.desk, who.tenant, warning_id)

    @v1.post("/warnings/{warning_id}/escalate", tags=["warnings"], summary="Staff escalate a warning")
    def escalate_warning(who: Staff, warning_id: WarningId, body: s.ActionIn | None = None) -> s.WarningDetail:
        note = body.note if body is not None else None
        with who.audited("warning.escalate", warning_id, note=note) as entry:
            row = db.escalate_warning(entry.conn, warning_id, who.actor, tenant=who.tenant, note=note)
            entry.detail["status"] = row["status"]
        return detail(who.desk, who.tenant, warning_id)

    @v1.post("/warnings/{warning_id}/outcome", tags=["warnings"], summary="Record what really happened")
    def record_outcome(who: Staff, warning_id: WarningId, body: s.OutcomeIn) -> s.WarningDetail:
        with who.audited("warning.outcome", warning_id, **body.model_dump(exclude_none=True)) as entry:
            try:
                db.record_outcome_and_loss(
                    entry.conn,
                    warning_id,
                    body.outcome,
                    who.actor,
                    tenant=who.tenant,
                    cost_cny=body.cost_cny,
                    avoided_cny=body.avoided_cny,
                    loss_at=body.loss_at,
                    note=body.note,
                )
            except ValueError as exc:
                raise _bad(exc) from None
        return detail(who.desk, who.tenant, warning_id)

    # -------------------------------------------------------------- portfolio, rejects

    @v1.get("/portfolio", tags=["portfolio"], summary="What the warnings of a period came to")
    def portfolio(
        who: Reader,
        since: Annotated[s.Moment | None, Query(description="default: 30 days before until")] = None,
        until: Annotated[s.Moment | None, Query(description="default: now")] = None,
    ) -> s.Portfolio:
        until = until or datetime.now(UTC)
        since = since or until - timedelta(days=30)
        try:
            found = db.portfolio(who.desk, who.tenant, since, until)
        except ValueError as exc:
            raise _bad(exc) from None
        return _portfolio(found, since, until)

    @v1.get("/rejects", tags=["rejects"], summary="Why the tenant's telemetry was refused, per reason and device")
    def rejects(
        who: Reader,
        since: Annotated[s.Moment | None, Query(description="default: 24 h before until")] = None,
        until: Annotated[s.Moment | None, Query(description="default: now")] = None,
        device: IdFilter = None,
        last: Annotated[int, Query(ge=0, le=db.REJECTS_KEPT_PER_DEVICE, description="latest rejects per device")] = 5,
        devices: Annotated[int, Query(ge=1, le=500, description="devices with the most rejects")] = 50,
    ) -> s.Rejects:
        until = until or datetime.now(UTC)
        since = since or until - timedelta(hours=24)
        try:
            found = db.rejects_summary(who.desk, who.tenant, since, until, device=device, last=last, devices=devices)
        except ValueError as exc:
            raise _bad(exc) from None
        return _rejects(found, since, until)

    # -------------------------------------------------------------- keys and the audit log

    @v1.get("/keys", tags=["keys"], summary="The tenant's API keys (never their secrets)")
    def list_keys(who: Admin) -> list[s.ApiKeyOut]:
        return [s.ApiKeyOut(**_key(k)) for k in db.api_keys(who.desk, who.tenant)]

    @v1.post("/keys/{key_id}/revoke", tags=["keys"], summary="Revoke one of the tenant's keys")
    def revoke_key(who: Admin, key_id: Annotated[int, Path(ge=1, le=2**62)]) -> s.ApiKeyOut:
        with who.audited("key.revoke", str(key_id)) as entry:
            key = db.revoke_api_key(entry.conn, key_id, who.tenant)
        return s.ApiKeyOut(**_key(key))

    @v1.get("/audit", tags=["keys"], summary="Who did what, newest first")
    def audit(who: Admin, limit: Limit = 50, offset: Offset = 0) -> s.Page[s.AuditRow]:
        rows = db.audit_log(who.desk, who.tenant, limit=limit + 1, offset=offset)
        return _paged([s.AuditRow(**r) for r in rows], limit, offset)

    return v1


# ------------------------------------------------------------------ helpers of the routes


def _paged(items: list[Any], limit: int, offset: int) -> Any:
    """A page of ``limit`` items out of ``limit + 1`` fetched: one more means a next page."""
    return s.Page[Any](
        items=items[:limit], limit=limit, offset=offset, next_offset=offset + limit if len(items) > limit else None
    )


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    if "\x00" in text:
        raise ApiProblem(422, "search text must not contain NUL characters")
    return text.strip() or None


def _listed(values: list[str] | None, allowed: Any, what: str) -> list[str]:
    """Query values given repeated or comma-separated, each one of ``allowed``."""
    out = [part.strip() for value in values or () for part in value.split(",") if part.strip()]
    unknown = [v for v in out if v not in allowed]
    if unknown:
        raise ApiProblem(
            422, f"unknown {what} {unknown[0][:64]!r}: give any of {', '.join(allowed)}", {"unknown": unknown[:10]}
        )
    return out


_UNITS = {"_c": "°C", "_kmh": "km/h", "_pct": "%", "_v": "V", "_g": "g", "_mm_s": "mm/s", "_ppm": "ppm", "_h": "h"}


def _unit(metric: str) -> str:
    return next((unit for suffix, unit in _UNITS.items() if metric.endswith(suffix)), "")


def _metric_words(metric: str, description: str | None, locale: str) -> dict[str, str]:
    """A metric's label and unit in ``locale``: the message catalogue's words, else the contract's."""
    label, unit = METRIC_LABELS[locale].get(metric, (description or metric, _unit(metric)))
    return {"label": label, "unit": unit}


def _key(key: db.ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "role": key.role,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def _csv_body(columns: tuple[str, ...], example_row: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": f"UTF-8 CSV with a header row naming its columns among {', '.join(columns)}",
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": ",".join(columns[:4]) + "\n" + example_row}
            },
        }
    }


async def _csv(request: Request) -> bytes:
    """The request's body, refused beyond :data:`schemas.MAX_CSV_BYTES` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > s.MAX_CSV_BYTES:
        raise ApiProblem(413, f"the file is larger than {s.MAX_CSV_BYTES // (1024 * 1024)} MiB: split it")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > s.MAX_CSV_BYTES:
            raise ApiProblem(413, f"the file is larger than {s.MAX_CSV_BYTES // (1024 * 1024)} MiB: split it")
    return bytes(body)


def _parsed(body: bytes, parse: Callable[[bytes], Any]) -> Any:
    try:
        return parse(body)
    except s.CsvError as exc:
        raise ApiProblem(400, str(exc)) from None


_LEAD_LABELS = ("after the loss", "< 30 min", "30 min – 2 h", "2 – 6 h", "6 – 24 h", "≥ 24 h")


def _quantiles(values: list[float] | None, n: int) -> s.Quantiles:
    q: list[float | None] = list(values) if values else [None, None, None]
    return s.Quantiles(n=n, p10_h=q[0], median_h=q[1], p90_h=q[2])


def _portfolio(found: dict[str, Any], since: datetime, until: datetime) -> s.Portfolio:
    rows = [
        s.RiskRow(**r, acknowledgement_rate=r["acknowledged"] / r["warnings"] if r["warnings"] else None)
        for r in found["by_risk"]
    ]
    t, exposure = found["totals"], found["exposure"]
    lead = _quantiles(t["lead_h"], int(t["lead_n"]))
    false_alarms = sum(r.false_alarms for r in rows)
    outcomes = sum(r.false_alarms + r.losses_avoided + r.losses_occurred for r in rows)
    bounds = (None, *db.LEAD_BUCKETS_H, None)
    totals = s.Totals(
        warnings=t["warnings"],
        notified=t["notified"],
        acknowledged=t["acknowledged"],
        acknowledgement_rate=t["acknowledged"] / t["warnings"] if t["warnings"] else None,
        median_time_to_acknowledge_s=t["ack_median_s"],
        false_alarms=false_alarms,
        losses_avoided=sum(r.losses_avoided for r in rows),
        losses_occurred=sum(r.losses_occurred for r in rows),
        no_outcome=t["warnings"] - outcomes,
        loss_avoided_cny=sum(r.loss_avoided_cny for r in rows),
        avoided_estimates=sum(r.avoided_estimates for r in rows),
        loss_occurred_cny=sum(r.loss_occurred_cny for r in rows),
        median_lead_time_s=lead.median_h * 3600 if lead.median_h is not None else None,
        devices=exposure["devices"],
        device_days=exposure["device_days"],
        false_alarms_per_device_day=false_alarms / exposure["device_days"] if exposure["device_days"] else None,
    )
    return s.Portfolio(
        since=since,
        until=until,
        totals=totals,
        by_risk=rows,
        lead_time=lead,
        promised_lead_time=_quantiles(t["promised_h"], int(t["promised_n"])),
        lead_time_histogram=[
            s.LeadBucket(label=label, from_h=bounds[i], to_h=bounds[i + 1], count=count)
            for i, (label, count) in enumerate(zip(_LEAD_LABELS, found["lead_histogram"], strict=True))
        ],
        loss_avoided_by_month=[s.MonthlyAvoided(**r) for r in found["avoided_by_month"]],
    )


def _rejects(found: dict[str, Any], since: datetime, until: datetime) -> s.Rejects:
    devices: dict[str, dict[str, Any]] = {}
    for r in found["devices"]:
        entry = devices.setdefault(r["device"], {"device": r["device"], "counts": {}, "last_at": r["last_at"]})
        entry["counts"][r["reason"]] = int(r["n"])
        entry["last_at"] = max(entry["last_at"], r["last_at"])
    latest: dict[str, list[s.RejectSample]] = {}
    for r in found["latest"]:
        latest.setdefault(r["device"], []).append(s.RejectSample(**{k: v for k, v in r.items() if k != "device"}))
    return s.Rejects(
        since=since,
        until=until,
        counts={r["reason"]: int(r["n"]) for r in found["reasons"]},
        devices=[s.DeviceRejects(**d, latest=latest.get(name, [])) for name, d in devices.items()],
    )
