"""Who may call the intake: callers, their bearer tokens and the CUITs each may use.

The tenants file lists the callers as `[[client]]` tables with the SHA-256 of each token
(never the token). The middleware checks the token before the body is read; the routes
get the caller through `CallerDep` and keep each to its CUITs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from producers.http.context import request_info
from producers.http.problems import Problem
from worker.tenants import Tenants

log = logging.getLogger("tfq.intake")


@dataclass(frozen=True)
class Caller:
    """A `[[client]]` of the tenants file: who may send jobs for which CUITs."""

    name: str
    token_sha256: str
    cuits: frozenset[str]


def callers_of(tenants: Tenants) -> list[Caller]:
    """The `[[client]]`s of a tenants file as callers."""
    callers = [Caller(c.name, c.token_sha256, frozenset(c.cuits)) for c in tenants.intake_callers]
    if not callers:
        log.warning("the tenants file has no [[client]]: every /v1 request will get 401")
    return callers


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


def cuit_of(envelope: Any) -> str | None:
    """The envelope's CUIT as text, read before validation (None when it has no usable one)."""
    if not isinstance(envelope, dict):
        return None
    cuit = envelope.get("cuit")
    if isinstance(cuit, int) and not isinstance(cuit, bool):
        return str(cuit)
    return cuit if isinstance(cuit, str) else None


def unauthorized(detail: str, invalid: bool) -> Problem:
    challenge = 'Bearer realm="tfq"' + (', error="invalid_token"' if invalid else "")
    return Problem(401, detail, slug="unauthorized", headers={"WWW-Authenticate": challenge})


BEARER = HTTPBearer(
    auto_error=False,
    description="a token of a [[client]] in the tenants file (stored there as its SHA-256)",
)


def current_caller(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Caller:
    """The caller whose token the middleware checked before the body was read."""
    info = request_info(request.scope)
    if info is None or info.caller is None:
        raise unauthorized("a bearer token is required: Authorization: Bearer <token>", False)
    return info.caller


CallerDep = Annotated[Caller, Depends(current_caller)]
