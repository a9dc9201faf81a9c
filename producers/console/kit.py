"""What every console page shares: who is logged in, the page renderer, the audit of
actions, and small readers. Pages are FastAPI routers (`router = APIRouter()`) whose
handlers take `who: WhoDep` and `console: ConsoleDep`; `create_console` includes them."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from producers.client import InvoiceQueue
from producers.console.security import csrf_ok, csrf_token
from worker.invoice.cuit import valid_cuit
from worker.settings import Settings
from worker.store import admin
from worker.store.lanes import LaneStore
from worker.tenants import Operator
from worker.tenants_live import LiveTenants

audit_log = logging.getLogger("tfq.console.audit")
ALL_CUITS = "*"


class LoginRequired(Exception):
    """No operator is logged in: the page answers with the login page's address."""


@dataclass(frozen=True)
class Who:
    """The operator of a request, and the CUITs they may see (None: all)."""

    name: str
    cuits: frozenset[str] | None

    def may_see(self, cuit: str) -> bool:
        return self.cuits is None or cuit in self.cuits


def who_of(operator: Operator) -> Who:
    return Who(operator.name, None if ALL_CUITS in operator.cuits else frozenset(operator.cuits))


def operators_of(live: LiveTenants) -> dict[str, Operator]:
    """The tenants file's operators now (a reloaded file takes over at once)."""
    return {o.name: o for o in live.current.operators}


def current_operator(request: Request) -> Who:
    """The logged-in operator (a dependency); `LoginRequired` when there is none, when
    they are no longer in the tenants file, or when their password has changed since."""
    name = request.session.get("operator")
    live = console_of(request).live
    operator = operators_of(live).get(name) if isinstance(name, str) else None
    if operator is None or request.session.get("key") != session_key(operator):
        raise LoginRequired
    return who_of(operator)


def session_key(operator: Operator) -> str:
    """What a session keeps of the password it was opened with: a new password (a new
    hash in the tenants file) ends every session opened with the old one."""
    return hashlib.sha256(operator.password_hash.encode()).hexdigest()[:32]


WhoDep = Annotated[Who, Depends(current_operator)]


@dataclass
class Console:
    """The console's parts, for its pages: `request.app.state.console`."""

    settings: Settings
    queue: InvoiceQueue
    live: LiveTenants
    templates: Jinja2Templates

    @property
    def store(self) -> LaneStore:
        return self.queue.store

    def page(self, request: Request, name: str, who: Who | None, **context: Any) -> HTMLResponse:
        """Template `name` with the operator, the CSRF token and the console's base path."""
        context |= {"who": who, "csrf": csrf_token(request.session), "base": base(request)}
        return self.templates.TemplateResponse(request, name, context)

    def act(self, who: Who, action: str, target: str, **detail: Any) -> None:
        """Write an operator's action to the audit log (Redis and the logger)."""
        entry = {"at": time.time(), "operator": who.name, "action": action,
                 "target": target, **detail}  # fmt: skip
        admin.log_console_action(self.store, entry)
        audit_log.info("console action", extra={"console": entry})

    def refuse(self, request: Request, who: Who, why: str, status: int = 403) -> HTMLResponse:
        response = self.page(request, "refused.html", who, why=why)
        response.status_code = status
        return response

    def missing(self, request: Request, who: Who, what: str) -> HTMLResponse:
        response = self.page(request, "missing.html", who, what=what)
        response.status_code = 404
        return response

    def forged(self, request: Request, who: Who, sent: str) -> HTMLResponse | None:
        """The refusal of an action without the session's CSRF token (None: it has it)."""
        if csrf_ok(request, sent):
            return None
        return self.refuse(request, who, "The form expired or came from another site: reload.")


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(console_of)]


def is_fragment(request: Request) -> bool:
    """An htmx refresh: answer the page's live part only."""
    return request.headers.get("hx-request") == "true"


def base(request: Request) -> str:
    """Where the console is mounted (`/console`)."""
    return str(request.scope.get("root_path", ""))


def safe_next(target: str) -> str:
    """A page of the console to go to after login; anything else (another site, a
    scheme, a path outside the console) becomes the batches page."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/batches"
    return target


def checked_cuit(cuit: str) -> str | None:
    try:
        return valid_cuit(cuit)
    except ValueError:
        return None


def when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return "-"
