"""The HTTP intake: invoice jobs from backends in any language (FastAPI + uvicorn).

    tfq serve --host 0.0.0.0 --port 8080      # serve(host, port, settings)

- `POST /v1/invoices`: one envelope; 201 with the new job, 200 with the existing job of a
  repeated (cuit, external_reference). An `Idempotency-Key` header is the same key: it
  must equal the envelope's external_reference, or fills it in when the envelope has none.
- `POST /v1/batches`: `{"batch": NAME, "jobs": [envelope, ...]}`; the reply says, per
  index, accepted (job_id), duplicate (job_id) or refused (field paths and reasons).
- `GET /v1/invoices/{job_id}`, `GET /v1/batches/{name}`: a job's result, a batch's counts,
  progress and ETA.
- `GET /healthz` (Redis PING), `GET /metrics` (Prometheus), `GET /openapi.json`: no auth.

Every `/v1` request carries `Authorization: Bearer <token>`; the tenants file lists the
callers as `[[client]]` tables with the token's SHA-256 (never the token) and the CUITs
each may invoice for and read. Every error is `application/problem+json` (RFC 9457) with
the field path of each refusal in `errors`; no body ever holds a stack trace, and no log
line a body or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any

import redis
import uvicorn
from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.client import InvoiceQueue
from worker.errors import ConfigError, FieldError, InvalidJob, format_loc
from worker.invoice.envelope import JobEnvelope
from worker.logs import configure_logging
from worker.metrics import queue_registry
from worker.settings import Settings, get_settings
from worker.tenants import Tenants

log = logging.getLogger("tfq.intake")

PROBLEM_JSON = "application/problem+json"
PROBLEM = "urn:tfq:problem:"  # + a slug; plain HTTP errors use "about:blank" (RFC 9457)
BATCH_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$"
JOB_ID_RE = re.compile(r"^[0-9a-f]{1,64}$")
REF_PATH = "invoice.comprobante.external_reference"
REDIS_SOCKET_TIMEOUT_SECONDS = 30.0
RETRY_AFTER_SECONDS = "5"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


# --- problems (RFC 9457) ------------------------------------------------------------------


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
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
    }
    info = scope.get("tfq")
    if isinstance(info, _RequestInfo):
        body["request_id"] = info.request_id
    if problem is not None and problem.errors is not None:
        body["errors"] = [e.as_dict() for e in problem.errors]
    headers = dict(problem.headers or {}) if problem is not None else {}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _unauthorized(detail: str, invalid: bool) -> Problem:
    challenge = 'Bearer realm="tfq"' + (', error="invalid_token"' if invalid else "")
    return Problem(401, detail, slug="unauthorized", headers={"WWW-Authenticate": challenge})


# --- callers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """A `[[client]]` of the tenants file: who may send jobs for which CUITs."""

    name: str
    token_sha256: str
    cuits: frozenset[str]


def token_sha256(token: str) -> str:
    """What the tenants file stores for a bearer token (`printf %s TOKEN | sha256sum`)."""
    return hashlib.sha256(token.encode()).hexdigest()


def find_caller(callers: list[Caller], token: str) -> Caller | None:
    """The caller of this token, comparing digests in constant time with every client."""
    digest = token_sha256(token)
    found = None
    for caller in callers:
        if hmac.compare_digest(digest, caller.token_sha256):
            found = caller
    return found


def _cuit_of(envelope: Any) -> str | None:
    if not isinstance(envelope, dict):
        return None
    cuit = envelope.get("cuit")
    if isinstance(cuit, int) and not isinstance(cuit, bool):
        return str(cuit)
    return cuit if isinstance(cuit, str) else None


# --- the ASGI layer: request id, auth, body limit, logs, metrics, last-resort 500 ----------


@dataclass
class _RequestInfo:
    request_id: str
    caller: Caller | None = None


@dataclass
class _Intake:
    """What the middleware and the routes share."""

    settings: Settings
    queue: InvoiceQueue
    callers: list[Caller]
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    envelopes: Counter
    routes: list[Any] = field(default_factory=list)


class _BodyTooLarge(Problem):
    def __init__(self, limit: int):
        super().__init__(413, f"the body is larger than {limit} bytes", slug="body-too-large")


class IntakeMiddleware:
    """Outermost layer of the app (pure ASGI, cheap on the hot path)."""

    def __init__(self, app: ASGIApp, intake: _Intake):
        self.app = app
        self.intake = intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = _RequestInfo(secrets.token_hex(8))
        scope["tfq"] = info
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

    def _early_refusal(self, scope: Scope, info: _RequestInfo) -> Problem | None:
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
            return _unauthorized("a bearer token is required: Authorization: Bearer <token>", False)
        info.caller = find_caller(self.intake.callers, token)
        if info.caller is None:
            return _unauthorized("the bearer token is not valid", True)
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

    def _record(self, scope: Scope, info: _RequestInfo, status: int, seconds: float) -> None:
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


BEARER = HTTPBearer(
    auto_error=False,
    description="a token of a [[client]] in the tenants file (stored there as its SHA-256)",
)


def current_caller(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Caller:
    """The caller whose token the middleware checked before the body was read."""
    info = request.scope.get("tfq")
    if not isinstance(info, _RequestInfo) or info.caller is None:
        raise _unauthorized("a bearer token is required: Authorization: Bearer <token>", False)
    return info.caller


CallerDep = Annotated[Caller, Depends(current_caller)]


# --- documentation models (OpenAPI) ---------------------------------------------------------


class FieldProblem(BaseModel):
    path: str = Field(description="dotted path with indexes, e.g. invoice.comprobante.total")
    reason: str


class ProblemDetails(BaseModel):
    """application/problem+json (RFC 9457)."""

    type: str = Field(description="about:blank or urn:tfq:problem:<slug>")
    title: str
    status: int
    detail: str
    instance: str = Field(description="the request's path")
    request_id: str = Field(description="also in the X-Request-Id header and the log line")
    errors: list[FieldProblem] | None = Field(None, description="every refusal, by path")


class JobResult(BaseModel):
    """A job's result (the same as the Python API's `status`)."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    cuit: str
    external_reference: str
    batch: str | None = None
    status: str = Field(description="queued, sending, unknown, issued, rejected or paused")
    duplicate: bool | None = Field(
        None, description="POST only: true when the key already had this job (200)"
    )
    cae: str | None = None
    cae_vencimiento: str | None = None
    tipo: str | None = None
    punto_venta: int | None = None
    numero: int | None = None
    pdf_url: str | None = Field(None, description="valid only on the day it was returned")
    ticket_url: str | None = None
    afip_qr: str | None = None
    vencimiento_pago: str | None = None
    requiere_fec: bool | None = None
    micrositios: dict[str, str] = Field(
        default_factory=dict, description="the permanent micrositio links, when enabled"
    )
    unchecked_fields: list[str] = Field(
        default_factory=list,
        description="invoice fields tfq passed to the API unchanged, without checking them",
    )
    errors: list[dict[str, Any]] = Field(default_factory=list)
    attempts: int = 0
    test_mode: bool = False
    created_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    previous_job_id: str | None = None


class BatchIn(BaseModel):
    """Many envelopes under one batch name."""

    model_config = ConfigDict(extra="forbid")

    batch: str = Field(pattern=BATCH_NAME_PATTERN, description="letters, digits, . _ : @ -")
    jobs: list[Any] = Field(min_length=1, description="job envelopes (see JobEnvelope)")


class BatchItem(BaseModel):
    index: int
    status: str = Field(description="accepted, duplicate or refused")
    job_id: str | None = None
    errors: list[FieldProblem] | None = None


class BatchReply(BaseModel):
    """What POST /v1/batches did with each envelope, by index."""

    batch: str
    received: int
    accepted: int
    duplicates: int
    refused: int
    results: list[BatchItem]


class BatchStatus(BaseModel):
    """A batch: counts by status, progress and an ETA."""

    model_config = ConfigDict(extra="allow")

    batch: str
    total: int
    counts: dict[str, int]
    done: int
    progress: float
    paused_lanes: int
    cuits: int
    created_at: str
    eta_seconds: float


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": ProblemDetails, "content": {PROBLEM_JSON: {}}, "description": _title(code)}
        for code in codes
    }


# --- the app --------------------------------------------------------------------------------


def create_app(
    settings: Settings | None = None,
    *,
    queue: InvoiceQueue | None = None,
    tenants: Tenants | None = None,
) -> FastAPI:
    """The intake over `queue` (default: from the settings) for the `tenants`' clients."""
    settings = settings or get_settings()
    if queue is None:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=5,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            health_check_interval=30,
        )
        queue = InvoiceQueue(settings=settings, client=client)
    if tenants is None:
        if settings.tenants_file is None:
            raise ConfigError(
                "TFQ_TENANTS_FILE is not set: the intake needs the tenants file's [[client]]s"
            )
        tenants = Tenants.load(settings.tenants_file)
    callers = [Caller(c.name, c.token_sha256, frozenset(c.cuits)) for c in tenants.intake_callers]
    if not callers:
        log.warning("the tenants file has no [[client]]: every /v1 request will get 401")

    # What /metrics serves: the queue's state from Redis, and the intake's own counters.
    # Under several uvicorn workers (PROMETHEUS_MULTIPROC_DIR, set by `serve`) every
    # process writes its counters to files there and a scrape sums them all.
    registry = queue_registry(queue.store)
    own = registry
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        own = CollectorRegistry()  # the values live in the shared files, not here
    intake = _Intake(
        settings=settings,
        queue=queue,
        callers=callers,
        registry=registry,
        requests=Counter(
            "tfq_intake_requests",
            "HTTP intake requests by method, route and status",
            ["method", "route", "status"],
            registry=own,
        ),
        latency=Histogram(
            "tfq_intake_request_seconds",
            "HTTP intake request latency (seconds)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        ),
        envelopes=Counter(
            "tfq_intake_envelopes",
            "Envelopes received over HTTP by outcome (accepted, duplicate, refused)",
            ["outcome"],
            registry=own,
        ),
    )

    app = FastAPI(
        title="tfq intake",
        version="1",
        summary="AFIP/ARCA invoice jobs through TusFacturas, exactly once.",
        description=(
            "Queue invoice jobs (the TusFacturas `facturacion/nuevo` body, without "
            "credentials, in a job envelope). `(cuit, external_reference)` is the "
            "idempotency key. Errors are application/problem+json (RFC 9457)."
        ),
        redoc_url=None,
    )
    _install_error_handlers(app)
    app.add_middleware(IntakeMiddleware, intake=intake)
    _install_routes(app, intake)
    intake.routes = list(app.router.routes)
    app.openapi = _openapi_with_envelope(app)  # type: ignore[method-assign]
    return app


def _install_error_handlers(app: FastAPI) -> None:
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

    async def on_redis_error(request: Request, exc: Exception) -> Response:
        log.warning("Redis unavailable: %s", type(exc).__name__)
        problem = Problem(
            503,
            "the queue's Redis is not answering; nothing was queued by this request: retry",
            slug="queue-unavailable",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
        return problem_response(request.scope, 503, problem.detail, problem)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(redis.RedisError, on_redis_error)


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


def _install_routes(app: FastAPI, intake: _Intake) -> None:
    queue = intake.queue
    settings = intake.settings

    def forbidden() -> Problem:
        # The value is not echoed: any string can arrive as a CUIT.
        return Problem(
            403,
            "this client may not invoice for the job's CUIT",
            slug="forbidden-cuit",
            errors=[FieldError("cuit", "not one of this client's CUITs")],
        )

    @app.post(
        "/v1/invoices",
        status_code=201,
        response_model=None,
        tags=["invoices"],
        summary="Queue one invoice job",
        responses={
            201: {"model": JobResult, "description": "queued: a new job"},
            200: {
                "model": JobResult,
                "description": "this (cuit, external_reference) already has a job",
            },
            **_problems(400, 401, 403, 413, 422, 503),
        },
    )
    def post_invoice(
        request: Request,
        envelope: Annotated[dict[str, Any], Body(description="a job envelope")],
        who: CallerDep,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=255,
                description="the envelope's external_reference (filled in when it has none)",
            ),
        ] = None,
    ) -> Response:
        if idempotency_key is not None:
            _apply_idempotency_key(envelope, idempotency_key)
        cuit = _cuit_of(envelope)
        if cuit is not None and cuit not in who.cuits:
            raise forbidden()
        try:
            submitted = queue.submit(envelope)
        except InvalidJob as exc:
            intake.envelopes.labels("refused").inc()
            raise Problem(
                422,
                f"the job was refused: {len(exc.errors)} problem(s), each named by its path",
                slug="invalid-job",
                errors=exc.errors,
            ) from None
        intake.envelopes.labels("duplicate" if submitted.duplicate else "accepted").inc()
        job = queue.status(submitted.job_id)
        if job is None:  # an issued job's record past its retention: the key stays taken
            job = {"job_id": submitted.job_id, "cuit": cuit, "status": None}
        job["duplicate"] = submitted.duplicate
        return JSONResponse(
            job,
            status_code=200 if submitted.duplicate else 201,
            headers={"Location": f"/v1/invoices/{submitted.job_id}"},
        )

    @app.post(
        "/v1/batches",
        response_model=None,
        tags=["batches"],
        summary="Queue many invoice jobs under a batch name",
        responses={
            200: {"model": BatchReply, "description": "what happened to each envelope"},
            **_problems(400, 401, 403, 413, 422, 503),
        },
    )
    def post_batch(request: Request, body: BatchIn, who: CallerDep) -> Response:
        jobs = body.jobs
        if len(jobs) > settings.intake_max_batch:
            raise Problem(
                413,
                f"{len(jobs)} jobs in one request; at most {settings.intake_max_batch}",
                slug="batch-too-large",
                errors=[FieldError("jobs", f"at most {settings.intake_max_batch} jobs")],
            )
        refused = [
            FieldError(f"jobs[{i}].cuit", "not one of this client's CUITs")
            for i, cuit in enumerate(_cuit_of(env) for env in jobs)
            if cuit is not None and cuit not in who.cuits
        ]
        if refused:
            raise Problem(
                403,
                f"{len(refused)} job(s) are for CUITs this client may not invoice for; "
                "nothing was queued",
                slug="forbidden-cuit",
                errors=refused,
            )
        existing = {_text(c) for c in queue.redis.smembers(queue.keys.batch_cuits(body.batch))}
        if not existing <= who.cuits:
            raise Problem(
                403,
                f"batch {body.batch} holds jobs of CUITs this client may not see: "
                "use another batch name",
                slug="forbidden-batch",
                errors=[FieldError("batch", "in use by another client")],
            )
        report = queue.submit_many(jobs, batch=body.batch)
        results: list[dict[str, Any]] = [{} for _ in jobs]
        for index, job_id in report.accepted:
            results[index] = {"index": index, "status": "accepted", "job_id": job_id}
        for index, job_id in report.duplicates:
            results[index] = {"index": index, "status": "duplicate", "job_id": job_id}
        for index, errors in report.refused:
            results[index] = {
                "index": index,
                "status": "refused",
                "errors": [e.as_dict() for e in errors],
            }
        for outcome, count in (
            ("accepted", len(report.accepted)),
            ("duplicate", len(report.duplicates)),
            ("refused", len(report.refused)),
        ):
            if count:
                intake.envelopes.labels(outcome).inc(count)
        return JSONResponse(
            {
                "batch": body.batch,
                "received": len(jobs),
                "accepted": len(report.accepted),
                "duplicates": len(report.duplicates),
                "refused": len(report.refused),
                "results": results,
            }
        )

    @app.get(
        "/v1/invoices/{job_id}",
        response_model=None,
        tags=["invoices"],
        summary="A job's result so far",
        responses={200: {"model": JobResult}, **_problems(401, 403, 404, 422, 503)},
    )
    def get_invoice(job_id: str, who: CallerDep) -> Response:
        job = queue.status(job_id) if JOB_ID_RE.match(job_id) else None
        if job is None:
            raise Problem(404, f"no job {job_id}", slug="no-such-job")
        if job.get("cuit") not in who.cuits:  # whose it is stays unsaid
            raise Problem(403, "this job's CUIT is not one of this client's", slug="forbidden-cuit")
        return JSONResponse(job)

    @app.get(
        "/v1/batches/{name}",
        response_model=None,
        tags=["batches"],
        summary="A batch's counts by status, progress and ETA",
        responses={200: {"model": BatchStatus}, **_problems(401, 403, 404, 422, 503)},
    )
    def get_batch(name: str, who: CallerDep) -> Response:
        summary = queue.batch(name)
        if summary is None:
            raise Problem(404, f"no batch {name}", slug="no-such-batch")
        cuits = {_text(c) for c in queue.redis.smembers(queue.keys.batch_cuits(name))}
        if not cuits <= who.cuits:
            raise Problem(
                403,
                f"batch {name} holds jobs of CUITs this client may not see",
                slug="forbidden-batch",
            )
        return JSONResponse(summary)

    @app.get(
        "/healthz",
        response_model=None,
        tags=["operations"],
        summary="Liveness: Redis answers PING",
        responses={200: {"description": '{"status": "ok"}'}, **_problems(503)},
    )
    def healthz() -> Response:
        try:
            queue.redis.ping()
        except redis.RedisError as exc:
            raise Problem(
                503,
                f"Redis does not answer PING ({type(exc).__name__})",
                slug="redis-down",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            ) from None
        return JSONResponse({"status": "ok", "redis": "ok"})

    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)

    @app.get(
        "/metrics",
        response_model=None,
        tags=["operations"],
        summary="Prometheus metrics: the queue's state and the intake's requests",
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **_problems(503)},
    )
    def metrics() -> Response:
        return Response(generate_latest(intake.registry), media_type=CONTENT_TYPE_LATEST)


def _apply_idempotency_key(envelope: dict[str, Any], key: str) -> None:
    """The header is the envelope's external_reference: fill it in, or insist they match."""
    invoice = envelope.get("invoice")
    comp = invoice.get("comprobante") if isinstance(invoice, dict) else None
    if not isinstance(comp, dict):
        return  # validation names what is missing
    ref = comp.get("external_reference")
    if ref is None:
        comp["external_reference"] = key
    elif ref != key:
        raise Problem(
            422,
            "the Idempotency-Key header and the envelope's external_reference differ",
            slug="idempotency-key-mismatch",
            errors=[FieldError(REF_PATH, "does not match the Idempotency-Key header")],
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _openapi_with_envelope(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's document, with the job envelope's JSON schema where envelopes go."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = FastAPI.openapi(app)
        envelope = JobEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in envelope.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas["JobEnvelope"] = envelope
        ref = {"$ref": "#/components/schemas/JobEnvelope"}
        body = doc["paths"]["/v1/invoices"]["post"]["requestBody"]
        body["content"]["application/json"]["schema"] = ref
        schemas["BatchIn"]["properties"]["jobs"]["items"] = ref
        for operations in doc["paths"].values():  # problems are application/problem+json
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_JSON in content and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        app.openapi_schema = doc
        return doc

    return openapi


# --- serving --------------------------------------------------------------------------------


def settings_environment(settings: Settings) -> dict[str, str]:
    """`settings` as TFQ_* variables, for worker processes that build their own app."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"TFQ_{name.upper()}"] = text
    return env


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker process (`factory=True`): TFQ_* settings."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)


def serve(host: str, port: int, settings: Settings | None = None, *, workers: int = 1) -> None:
    """Run the intake with uvicorn until interrupted; `workers` > 1 forks that many."""
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,  # our own line per request: no query strings, no tokens
        "server_header": False,
    }
    if workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Each worker process builds its own app from TFQ_* and counts into shared files.
    os.environ.update(settings_environment(settings))
    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="tfq-intake-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    try:
        uvicorn.run("producers.http:app_from_environment", factory=True, workers=workers, **options)
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def _main(argv: list[str]) -> int:
    """`python -m producers.http new-token NAME CUIT...`: a fresh token and its [[client]]."""
    if len(argv) < 3 or argv[0] != "new-token":
        print("usage: python -m producers.http new-token NAME CUIT [CUIT...]", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(32)
    cuits = ", ".join(json.dumps(c) for c in argv[2:])
    print(f"# give the caller this token (it is not stored anywhere): {token}")
    print("[[client]]")
    print(f"name = {json.dumps(argv[1])}")
    print(f'token_sha256 = "{token_sha256(token)}"')
    print(f"cuits = [{cuits}]")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
