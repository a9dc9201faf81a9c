"""The intake's request and response models, as its OpenAPI document shows them.

The routes answer plain JSON (the queue's own dicts); these models document those
bodies. `problem_responses` lists the problem replies of a route for the document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from producers.http.problems import PROBLEM_JSON, status_title
from worker.store.jobs import BATCH_NAME_PATTERN, BATCH_NAME_RULE


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


class BatchIn(BaseModel):
    """Many envelopes under one batch name."""

    model_config = ConfigDict(extra="forbid")

    batch: str = Field(pattern=BATCH_NAME_PATTERN, description=BATCH_NAME_RULE)
    jobs: list[Any] = Field(min_length=1, description="job envelopes (see JobEnvelope)")


class CreditNoteIn(BaseModel):
    """What to credit of an issued invoice (POST /v1/invoices/{id}/credit-note)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        None, max_length=255, description="why: printed on the note and kept in its metadata"
    )
    amount: str | float | None = Field(
        None,
        description="credit only this much (total, VAT included, in the invoice's currency, "
        "at most 2 decimals, at most what is left to credit); absent: the whole invoice",
    )


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


class InvoicesPage(BaseModel):
    """A page of the period's sales: rows as `tfq invoices export` writes them (amounts
    as exact decimal strings, credit notes negative); `totals` on the last page only."""

    invoices: list[dict[str, Any]]
    next_cursor: str | None
    totals: dict[str, Any] | None


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


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """A route's problem replies for the OpenAPI document (application/problem+json)."""
    return {
        code: {
            "model": ProblemDetails,
            "content": {PROBLEM_JSON: {}},
            "description": status_title(code),
        }
        for code in codes
    }
