"""``forewarn api``: the HTTP service of the project (FastAPI on uvicorn; the only module that imports them).

Today it serves the acknowledgement links every message carries: ``GET /a/{token}`` shows the
warning and a button, ``POST /a/{token}`` acknowledges it (two steps, so a link preview that
fetches the page acknowledges nothing). A forged, expired or replayed token gets a clear
refusal and changes nothing. ``GET /healthz`` answers when the database does.
"""

from __future__ import annotations

import html
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from core import acktokens, db
from core.settings import Settings, ack_secret, get_settings
from notifiers.render import risk_text

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    secret = ack_secret(settings)
    api = FastAPI(title="forewarn", version="1", summary="IoT risk warnings that people act on")

    def _verified(token: str) -> acktokens.AckToken | HTMLResponse:
        try:
            return acktokens.verify(secret, token, time.time())
        except acktokens.TokenError as exc:
            return _refusal(str(exc), _REFUSAL_STATUS.get(exc.reason, 400))

    def _warning(warning_id: str) -> dict[str, Any]:
        return db.warning_detail(settings.database_url, warning_id)["warning"]

    def _locale(warning: dict[str, Any]) -> str:
        rows = db.query(settings.database_url, "SELECT locale FROM customers WHERE id = %s", (warning["customer_id"],))
        return str(rows[0]["locale"]) if rows else "zh-CN"

    @api.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            db.query(settings.database_url, "SELECT 1 AS ok")
        except db.DatabaseError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)
        return JSONResponse({"ok": True})

    @api.get("/a/{token}", response_class=HTMLResponse)
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

    @api.post("/a/{token}", response_class=HTMLResponse)
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
