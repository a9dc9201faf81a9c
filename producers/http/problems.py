"""RFC 9457 problem details: the `Problem` error, its JSON body and the app's error handlers.

Every error the intake answers is `application/problem+json`; the `errors` member names
the field path of each refusal, and no body ever holds a stack trace or an input value.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from producers.http.context import request_info
from worker.archive.results import ArchiveUnavailable
from worker.errors import FieldError, format_loc
from worker.store.errors import StoreError

log = logging.getLogger("tfq.intake")

PROBLEM_JSON = "application/problem+json"
PROBLEM = "urn:tfq:problem:"  # + a slug; plain HTTP errors use "about:blank" (RFC 9457)
RETRY_AFTER_SECONDS = "5"


class Problem(StarletteHTTPException):
    """An error answered as application/problem+json; `errors` name field paths."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(status, detail, headers)
        self.type = PROBLEM + slug if slug else "about:blank"
        self.errors = errors


def problem_response(
    scope: Scope, status: int, detail: str, problem: Problem | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem.type if problem else "about:blank",
        "title": status_title(status),
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
    }
    info = request_info(scope)
    if info is not None:
        body["request_id"] = info.request_id
    if problem is not None and problem.errors is not None:
        body["errors"] = [e.as_dict() for e in problem.errors]
    headers = dict(problem.headers or {}) if problem is not None else {}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_error_handlers(app: FastAPI) -> None:
    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        problem = exc if isinstance(exc, Problem) else None
        if problem is None and exc.headers:
            problem = Problem(exc.status_code, str(exc.detail), headers=dict(exc.headers))
        detail = str(exc.detail)
        if exc.status_code == 404 and problem is None:
            detail = f"nothing at {request.url.path}"
        elif exc.status_code == 405 and not isinstance(exc, Problem):
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(request.scope, exc.status_code, detail, problem)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problem = _validation_problem(exc)
        return problem_response(request.scope, problem.status_code, problem.detail, problem)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(
        StoreError,
        _unavailable(
            "the queue's Redis is not answering; nothing was queued by this request: retry",
            "queue-unavailable",
        ),
    )
    app.add_exception_handler(
        ArchiveUnavailable,
        _unavailable(
            "the archive of finished jobs cannot be read now: retry", "archive-unavailable"
        ),
    )


def _unavailable(detail: str, slug: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A 503 with Retry-After for a service tfq needs that is not answering."""

    async def handler(request: Request, exc: Exception) -> Response:
        log.warning("%s: %s", slug, type(exc).__name__)
        problem = Problem(503, detail, slug=slug, headers={"Retry-After": RETRY_AFTER_SECONDS})
        return problem_response(request.scope, 503, problem.detail, problem)

    return handler


def _validation_problem(exc: RequestValidationError) -> Problem:
    """FastAPI's request validation as a problem: paths and reasons, never input values."""
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            pos = err["loc"][-1] if isinstance(err["loc"][-1], int) else 0
            doc = exc.body if isinstance(exc.body, str) else ""
            line = doc.count("\n", 0, pos) + 1
            column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
            why = (err.get("ctx") or {}).get("error", "invalid JSON")
            where = f"line {line} column {column} (char {pos})"
            return Problem(
                400,
                f"the body is not valid JSON: {why} at {where}",
                slug="malformed-json",
                errors=[FieldError("", f"{why} at {where}")],
            )
    found = []
    for err in errors:
        loc = tuple(err.get("loc") or ())
        path = format_loc(loc[1:]) if loc and loc[0] == "body" else format_loc(loc)
        found.append(FieldError(path, str(err.get("msg", "invalid"))))
    return Problem(
        422, "the request does not have the expected shape", slug="invalid-request", errors=found
    )
