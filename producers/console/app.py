"""The web console: `/console` on the intake, for the people who run tfq.

Server-rendered pages (Jinja2) that work without JavaScript; htmx, shipped with tfq,
refreshes what changes. Operators are the tenants file's `[[operator]]`s: a scrypt
password hash and the CUITs each may see and steer ("*": all). Login makes a signed
session cookie (HttpOnly, SameSite=Strict, Secure when TFQ_PUBLIC_URL is https); every
action carries a CSRF token and is written to the console's audit log (Redis, and the
`tfq.console.audit` logger). No page ever shows a credential or a secret.

This module makes the app and its login; the pages are routers of their own modules
(`queue_pages`, `attention_pages`, `invoice_pages`, `ops_pages`), sharing `kit`.
"""

from __future__ import annotations

import logging
import secrets
from functools import cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from producers.cli.render import eta_text
from producers.client import InvoiceQueue
from producers.console import (
    attention_pages,
    charts_pages,
    invoice_pages,
    ops_pages,
    queue_pages,
)
from producers.console.kit import (
    Console,
    LoginRequired,
    WhoDep,
    audit_log,
    base,
    operators_of,
    safe_next,
    session_key,
    who_of,
)
from producers.console.passwords import check_password, hash_password
from producers.console.security import SecurityHeaders, csrf_ok, csrf_token
from worker.errors import ConfigError
from worker.settings import Settings
from worker.tenants_live import LiveTenants

log = logging.getLogger("tfq.console")

HERE = Path(__file__).parent
MIN_SECRET_LENGTH = 32  # the session cookie's signing key
PAGES = (
    queue_pages.router,
    attention_pages.router,
    invoice_pages.router,
    ops_pages.router,
    charts_pages.router,
)


def create_console(settings: Settings, queue: InvoiceQueue, live: LiveTenants) -> FastAPI:
    """The console as an app of its own, mounted by the intake at `/console`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["eta"] = eta_text
    console = Console(settings, queue, live, templates)
    app.state.console = console
    app.add_middleware(
        SessionMiddleware,
        secret_key=_session_key(settings),
        session_cookie="tfq_console",
        max_age=round(settings.console_session_hours * 3600),
        same_site="strict",
        https_only=bool(settings.public_url and settings.public_url.startswith("https://")),
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        back = request.url.path.removeprefix(request.scope.get("root_path", ""))
        return RedirectResponse(f"{base(request)}/login?next={quote(back)}", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/batches") -> HTMLResponse:
        return console.page(request, "login.html", None, next=safe_next(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        name: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        csrf: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/batches",
    ) -> Response:
        if not csrf_ok(request, csrf):
            return console.page(request, "login.html", None, next=safe_next(next),
                                error="The form expired: try again.")  # fmt: skip
        operator = operators_of(live).get(name)
        # A check against a throwaway hash when the name is unknown: both cost the same.
        stored = operator.password_hash if operator else _decoy_hash()
        if not check_password(password, stored) or operator is None:
            audit_log.warning("console login refused", extra={"console": {"operator": name}})
            response = console.page(request, "login.html", None, next=safe_next(next),
                                    error="Wrong name or password.")  # fmt: skip
            response.status_code = 401
            return response
        request.session.clear()  # a new session: nothing carried over from before login
        request.session["operator"] = operator.name
        request.session["key"] = session_key(operator)
        csrf_token(request.session)
        console.act(who_of(operator), "login", operator.name)
        return RedirectResponse(f"{base(request)}{safe_next(next)}", status_code=303)

    @app.post("/logout")
    def logout(request: Request, who: WhoDep, csrf: Annotated[str, Form()] = "") -> Response:
        if csrf_ok(request, csrf):
            console.act(who, "logout", who.name)
            request.session.clear()
        return RedirectResponse(f"{base(request)}/login", status_code=303)

    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse(f"{base(request)}/batches", status_code=303)

    for router in PAGES:
        app.include_router(router)
    return app


def _session_key(settings: Settings) -> str:
    secret = settings.console_secret.get_secret_value() if settings.console_secret else ""
    if not secret:
        log.warning(
            "TFQ_CONSOLE_SECRET is not set: console logins last until this process restarts "
            "and hold in one intake worker only"
        )
        return secrets.token_urlsafe(32)
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"TFQ_CONSOLE_SECRET: at least {MIN_SECRET_LENGTH} characters")
    return secret


@cache
def _decoy_hash() -> str:
    """A hash of a random password at the default cost, checked when a login names no
    operator, so an unknown name takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))
