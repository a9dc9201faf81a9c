"""The web console: `/console` on the intake, for the people who run tfq.

Server-rendered pages (Jinja2) that work without JavaScript; htmx, shipped with tfq,
refreshes what changes. Operators are the tenants file's `[[operator]]`s: a scrypt
password hash and the CUITs each may see and steer ("*": all). Login makes a signed
session cookie (HttpOnly, SameSite=Strict, Secure when TFQ_PUBLIC_URL is https); every
action carries a CSRF token and is written to the console's audit log (Redis, and the
`tfq.console.audit` logger). No page ever shows a credential or a secret.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from producers.cli.render import eta_text
from producers.client import InvoiceQueue
from producers.console.passwords import check_password, hash_password
from producers.console.security import SecurityHeaders, csrf_ok, csrf_token
from worker.errors import ConfigError
from worker.invoice.cuit import valid_cuit
from worker.settings import Settings
from worker.store import admin
from worker.store.queries import lanes_doc
from worker.tenants import Operator
from worker.tenants_live import LiveTenants

log = logging.getLogger("tfq.console")
audit_log = logging.getLogger("tfq.console.audit")

HERE = Path(__file__).parent
BATCHES_SHOWN = 50
LANES_SHOWN = 500
REASON_MAX = 200
ALL_CUITS = "*"
MIN_SECRET_LENGTH = 32  # the session cookie's signing key


class LoginRequired(Exception):
    """No operator is logged in: the page answers with the login page's address."""


@dataclass(frozen=True)
class Who:
    """The operator of a request, and the CUITs they may see (None: all)."""

    name: str
    cuits: frozenset[str] | None

    def may_see(self, cuit: str) -> bool:
        return self.cuits is None or cuit in self.cuits


def _who(operator: Operator) -> Who:
    return Who(operator.name, None if ALL_CUITS in operator.cuits else frozenset(operator.cuits))


def _operators(live: LiveTenants) -> dict[str, Operator]:
    """The tenants file's operators now (a reloaded file takes over at once)."""
    return {o.name: o for o in live.current.operators}


def current_operator(request: Request) -> Who:
    """The logged-in operator (a dependency); `LoginRequired` when there is none, or when
    they are no longer in the tenants file."""
    name = request.session.get("operator")
    operator = _operators(request.app.state.live).get(name) if isinstance(name, str) else None
    if operator is None:
        raise LoginRequired
    return _who(operator)


WhoDep = Annotated[Who, Depends(current_operator)]


def create_console(settings: Settings, queue: InvoiceQueue, live: LiveTenants) -> FastAPI:
    """The console as an app of its own, mounted by the intake at `/console`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["eta"] = eta_text
    store = queue.store
    secret = settings.console_secret.get_secret_value() if settings.console_secret else ""
    if not secret:
        log.warning(
            "TFQ_CONSOLE_SECRET is not set: console logins last until this process restarts "
            "and hold in one intake worker only"
        )
        secret = secrets.token_urlsafe(32)
    elif len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"TFQ_CONSOLE_SECRET: at least {MIN_SECRET_LENGTH} characters")
    secure = bool(settings.public_url and settings.public_url.startswith("https://"))
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="tfq_console",
        max_age=round(settings.console_session_hours * 3600),
        same_site="strict",
        https_only=secure,
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    app.state.live = live

    def operators() -> dict[str, Operator]:
        return _operators(live)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        back = request.url.path.removeprefix(request.scope.get("root_path", ""))
        return RedirectResponse(f"{_base(request)}/login?next={quote(back)}", status_code=303)

    def page(request: Request, name: str, who: Who | None, **context: Any) -> HTMLResponse:
        context |= {"who": who, "csrf": csrf_token(request.session), "base": _base(request)}
        return templates.TemplateResponse(request, name, context)

    def act(request: Request, who: Who, action: str, target: str, **detail: Any) -> None:
        entry = {"at": time.time(), "operator": who.name, "action": action,
                 "target": target, **detail}  # fmt: skip
        admin.log_console_action(store, entry)
        audit_log.info("console action", extra={"console": entry})

    def refuse(request: Request, who: Who, why: str) -> HTMLResponse:
        response = page(request, "refused.html", who, why=why)
        response.status_code = 403
        return response

    # --- login ------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/batches") -> HTMLResponse:
        return page(request, "login.html", None, next=_safe_next(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        name: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        csrf: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/batches",
    ) -> Response:
        if not csrf_ok(request, csrf):
            return page(request, "login.html", None, next=_safe_next(next),
                        error="The form expired: try again.")  # fmt: skip
        operator = operators().get(name)
        # A check against a throwaway hash when the name is unknown: both cost the same.
        stored = operator.password_hash if operator else _decoy_hash()
        if not check_password(password, stored) or operator is None:
            audit_log.warning("console login refused", extra={"console": {"operator": name}})
            response = page(request, "login.html", None, next=_safe_next(next),
                            error="Wrong name or password.")  # fmt: skip
            response.status_code = 401
            return response
        request.session.clear()  # a new session: nothing carried over from before login
        request.session["operator"] = operator.name
        csrf_token(request.session)
        act(request, _who(operator), "login", operator.name)
        return RedirectResponse(f"{_base(request)}{_safe_next(next)}", status_code=303)

    @app.post("/logout")
    def logout(request: Request, who: WhoDep, csrf: Annotated[str, Form()] = "") -> Response:
        if csrf_ok(request, csrf):
            act(request, who, "logout", who.name)
            request.session.clear()
        return RedirectResponse(f"{_base(request)}/login", status_code=303)

    # --- pages ------------------------------------------------------------------------------

    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse(f"{_base(request)}/batches", status_code=303)

    @app.get("/batches", response_class=HTMLResponse)
    def batches(request: Request, who: WhoDep) -> HTMLResponse:
        rows = []
        for name, created in admin.recent_batches(store, BATCHES_SHOWN * 4):
            if who.cuits is not None and not set(store.batch_cuits(name)) <= who.cuits:
                continue
            doc = queue.batch(name)
            if doc is not None:
                rows.append(doc | {"created": _when(created)})
            if len(rows) >= BATCHES_SHOWN:
                break
        return page(request, "batches.html", who, batches=rows)

    @app.get("/batches/{name}", response_class=HTMLResponse)
    def batch(request: Request, name: str, who: WhoDep) -> HTMLResponse:
        cuits = store.batch_cuits(name)
        doc = queue.batch(name) if all(who.may_see(c) for c in cuits) else None
        if doc is None:
            response = page(request, "missing.html", who, what=f"batch {name}")
            response.status_code = 404
            return response
        lanes = [row for row in lanes_doc(store, limit=LANES_SHOWN)["rows"] if row["cuit"] in cuits]
        fragment = request.headers.get("hx-request") == "true"
        return page(request, "batch_live.html" if fragment else "batch.html", who,
                    batch=doc, lanes=lanes)  # fmt: skip

    @app.get("/lanes", response_class=HTMLResponse)
    def lanes(request: Request, who: WhoDep) -> HTMLResponse:
        doc = lanes_doc(store, limit=LANES_SHOWN)
        rows = [row for row in doc["rows"] if who.may_see(row["cuit"])]
        fragment = request.headers.get("hx-request") == "true"
        return page(request, "lanes_live.html" if fragment else "lanes.html", who,
                    doc=doc, rows=rows)  # fmt: skip

    @app.post("/lanes/{cuit}/pause")
    def pause(
        request: Request,
        cuit: str,
        who: WhoDep,
        csrf: Annotated[str, Form()] = "",
        reason: Annotated[str, Form(max_length=REASON_MAX)] = "",
    ) -> Response:
        checked = _checked_cuit(cuit)
        if not csrf_ok(request, csrf):
            return refuse(request, who, "The form expired or came from another site: reload.")
        if checked is None or not who.may_see(checked):
            return refuse(request, who, f"You may not steer CUIT {cuit}.")
        why = reason.strip() or f"paused by {who.name} in the console"
        store.pause(checked, why)
        act(request, who, "pause", checked, reason=why)
        return RedirectResponse(f"{_base(request)}/lanes", status_code=303)

    @app.post("/lanes/{cuit}/resume")
    def resume(
        request: Request, cuit: str, who: WhoDep, csrf: Annotated[str, Form()] = ""
    ) -> Response:
        checked = _checked_cuit(cuit)
        if not csrf_ok(request, csrf):
            return refuse(request, who, "The form expired or came from another site: reload.")
        if checked is None or not who.may_see(checked):
            return refuse(request, who, f"You may not steer CUIT {cuit}.")
        resumed = store.resume(checked)
        act(request, who, "resume", checked, was_paused=resumed)
        return RedirectResponse(f"{_base(request)}/lanes", status_code=303)

    @app.get("/log", response_class=HTMLResponse)
    def action_log(request: Request, who: WhoDep) -> HTMLResponse:
        entries = [e for e in admin.console_actions(store, 200) if who.cuits is None
                   or e.get("target") in who.cuits or e.get("operator") == who.name]  # fmt: skip
        for entry in entries:
            entry["when"] = _when(entry.get("at"))
        return page(request, "log.html", who, entries=entries)

    return app


@cache
def _decoy_hash() -> str:
    """A hash of a random password at the default cost, checked when a login names no
    operator, so an unknown name takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def _base(request: Request) -> str:
    """Where the console is mounted (`/console`)."""
    return str(request.scope.get("root_path", ""))


def _safe_next(target: str) -> str:
    """A page of the console to go to after login; anything else (another site, a
    scheme, a path outside the console) becomes the batches page."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/batches"
    return target


def _checked_cuit(cuit: str) -> str | None:
    try:
        return valid_cuit(cuit)
    except ValueError:
        return None


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return "-"
