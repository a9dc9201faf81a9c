"""The intake's outermost ASGI layer: request id, auth, body limit, logs, metrics, last 500.

It runs before FastAPI: a token is checked and a declared body length refused before
the body is read, every response gets an `X-Request-Id`, every request one log line
(never a body or a token) and its count and latency, and an unhandled error becomes a
problem that names the request id instead of a stack trace.
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.http.auth import find_caller, unauthorized
from producers.http.context import SCOPE_KEY, Intake, RequestInfo
from producers.http.problems import Problem, problem_response

log = logging.getLogger("tfq.intake")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _BodyTooLarge(Problem):
    def __init__(self, limit: int):
        super().__init__(413, f"the body is larger than {limit} bytes", slug="body-too-large")


class IntakeMiddleware:
    """Outermost layer of the app (pure ASGI, cheap on the hot path)."""

    def __init__(self, app: ASGIApp, intake: Intake):
        self.app = app
        self.intake = intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = RequestInfo(secrets.token_hex(8))
        scope[SCOPE_KEY] = info
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", []).append(
                    (b"x-request-id", info.request_id.encode())
                )
            await send(message)

        try:
            early = self._early_refusal(scope, info)
            if early is not None:
                await problem_response(scope, early.status_code, early.detail, early)(
                    scope, receive, send_wrapper
                )
            else:
                await self.app(scope, self._limited(scope, receive), send_wrapper)
        except Exception as exc:
            if isinstance(exc, Problem):
                problem: Problem | None = exc
            else:
                problem = None
                log.error(
                    "unhandled error in %s %s",
                    scope["method"],
                    scope["path"],
                    exc_info=True,
                    extra={"request_id": info.request_id},
                )
            if not response_started:
                detail = (
                    problem.detail
                    if problem
                    else f"an unexpected error; it was logged as request {info.request_id}"
                )
                code = problem.status_code if problem else 500
                await problem_response(scope, code, detail, problem)(scope, receive, send_wrapper)
        finally:
            self._record(scope, info, status, time.perf_counter() - started)

    def _early_refusal(self, scope: Scope, info: RequestInfo) -> Problem | None:
        """Refuse before reading the body: a body too large by its length, no valid token."""
        headers = Headers(scope=scope)
        limit = self.intake.settings.intake_max_body_bytes
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return _BodyTooLarge(limit)
        if not scope["path"].startswith("/v1/"):
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return unauthorized("a bearer token is required: Authorization: Bearer <token>", False)
        info.caller = find_caller(self.intake.callers, token)
        if info.caller is None:
            return unauthorized("the bearer token is not valid", True)
        return None

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.intake.settings.intake_max_body_bytes
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        return receive_limited

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            for candidate in self.intake.routes:
                match, _ = candidate.matches(scope)
                if match is Match.FULL:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else "unmatched"

    def _record(self, scope: Scope, info: RequestInfo, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        route = self._route(scope)
        self.intake.requests.labels(method, route, str(status)).inc()
        self.intake.latency.labels(method, route).observe(seconds)
        log.info(
            "request",
            extra={
                "method": method,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": info.caller.name if info.caller else "-",
                "request_id": info.request_id,
            },
        )
