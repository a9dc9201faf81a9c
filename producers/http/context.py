"""What the intake's layers share: per request (`RequestInfo`) and per app (`Intake`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import Scope

from producers.client import InvoiceQueue
from worker.settings import Settings

if TYPE_CHECKING:  # auth imports this module; Caller is only needed for annotations
    from producers.http.auth import Caller

# The ASGI scope key under which the middleware leaves a request's RequestInfo.
SCOPE_KEY = "tfq"


@dataclass
class RequestInfo:
    """What the middleware learned of a request: its id and, once checked, its caller."""

    request_id: str
    caller: Caller | None = None


def request_info(scope: Scope) -> RequestInfo | None:
    """The RequestInfo the middleware left in this ASGI scope, if any."""
    info = scope.get(SCOPE_KEY)
    return info if isinstance(info, RequestInfo) else None


@dataclass
class Intake:
    """What the middleware and the routes share."""

    settings: Settings
    queue: InvoiceQueue
    callers: list[Caller]
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    envelopes: Counter
    routes: list[Any] = field(default_factory=list)
