"""The intake's app factory: `create_app` wires the queue, the callers, the metrics, the
middleware, the routes and the OpenAPI document into one FastAPI app.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import redis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from producers.client import InvoiceQueue
from producers.console.app import create_console
from producers.http.auth import callers_of
from producers.http.context import Intake
from producers.http.middleware import IntakeMiddleware
from producers.http.problems import PROBLEM_JSON, install_error_handlers
from producers.http.routes import install_routes
from worker.errors import ConfigError
from worker.invoice.envelope import JobEnvelope
from worker.metrics import TENANTS_METRICS, queue_registry
from worker.settings import Settings, get_settings
from worker.tenants import Tenants
from worker.tenants_live import LiveTenants

log = logging.getLogger("tfq.intake")

REDIS_SOCKET_TIMEOUT_SECONDS = 30.0
# Set (by `serve`) when several uvicorn workers share their counters through files there.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def create_app(
    settings: Settings | None = None,
    *,
    queue: InvoiceQueue | None = None,
    tenants: Tenants | LiveTenants | None = None,
) -> FastAPI:
    """The intake over `queue` (default: from the settings) for the `tenants`' clients;
    with `LiveTenants`, a reloaded file's `[[client]]`s take over at once."""
    settings = settings or get_settings()
    if queue is None:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=5,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            health_check_interval=30,
        )
        queue = InvoiceQueue(settings=settings, client=client)
    queue.durability_warnings()  # logged at start: what could lose acknowledged jobs
    if tenants is None:
        if settings.tenants_file is None:
            raise ConfigError(
                "TFQ_TENANTS_FILE is not set: the intake needs the tenants file's [[client]]s"
            )
        tenants = LiveTenants(settings.tenants_file)
    live = tenants if isinstance(tenants, LiveTenants) else LiveTenants.fixed(tenants)

    # What /metrics serves: the queue's state from Redis, and the intake's own counters.
    # Under several uvicorn workers (PROMETHEUS_MULTIPROC_DIR, set by `serve`) every
    # process writes its counters to files there and a scrape sums them all.
    registry = queue_registry(queue.store)
    own = registry
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        own = CollectorRegistry()  # the values live in the shared files, not here
    for metric in TENANTS_METRICS:
        own.register(metric)
    intake = Intake(
        settings=settings,
        queue=queue,
        callers=callers_of(live.current),
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

    def take_callers(tenants: Tenants) -> None:
        intake.callers = callers_of(tenants)  # one assignment: a request sees old or new

    live.subscribe(take_callers)
    install_error_handlers(app)
    app.add_middleware(IntakeMiddleware, intake=intake)
    install_routes(app, intake)
    intake.routes = list(app.router.routes)
    app.mount("/console", create_console(settings, queue, live))
    app.openapi = _openapi_with_envelope(app)  # type: ignore[method-assign]
    return app


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
