"""The console's guards: security headers on every reply, a CSRF token on every action,
and who is logged in.

- Headers: a strict Content-Security-Policy (scripts, styles and images only from the
  console itself: nothing loads from a CDN), no framing, no sniffing, no referrer across
  sites, and no caching of pages that show a queue's state.
- CSRF: a random token kept in the (signed, HttpOnly, SameSite=Strict) session cookie and
  sent back in every form; an action whose token does not match is refused, and so is one
  whose Origin is another site's.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on every reply (no-store but for /static)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{scope.get('root_path', '')}/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if not static:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: str | None) -> bool:
    """Whether an action carries the session's token and, when the browser says where it
    comes from, comes from this site."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not sent:
        return False
    origin = request.headers.get("origin") or "null"
    host = request.headers.get("host", "")
    if origin != "null" and urlsplit(origin).netloc != host:
        return False
    return hmac.compare_digest(expected, sent)
