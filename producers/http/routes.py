"""The intake's route handlers: invoices, batches, health and metrics.

`install_routes` adds them to the app; every `/v1` handler gets its caller through
`CallerDep` and keeps it to that caller's CUITs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from producers.client import Submitted
from producers.http.auth import CallerDep, cuit_of
from producers.http.context import Intake
from producers.http.problems import RETRY_AFTER_SECONDS, Problem
from producers.http.schemas import (
    BatchIn,
    BatchReply,
    BatchStatus,
    CreditNoteIn,
    InvoicesPage,
    problem_responses,
)
from worker.accounting.credit_notes import CannotVoid, find_original
from worker.accounting.export import sale_json, totals_of
from worker.accounting.sales import PAGE_MAX, BadCursor, Period, Sales
from worker.archive.pdfs import PdfKind
from worker.errors import FieldError, InvalidJob
from worker.store import admin
from worker.store.durability import NotOnDisk
from worker.store.errors import StoreError
from worker.store.jobs import JobResult

JOB_ID_RE = re.compile(r"^[0-9a-f]{1,64}$")
PDF_RETRY_AFTER_SECONDS = "60"  # a PDF not kept yet: the keeper tries within a minute
REF_PATH = "invoice.comprobante.external_reference"


def install_routes(app: FastAPI, intake: Intake) -> None:
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

    def queued(submit: Callable[[], Submitted], cuit: str | None, what: str) -> Response:
        """Queue a job (an invoice, a credit note) and answer as every queuing route does:
        201 with the new job, 200 with the job its key already has; a refusal is a 422
        naming each field, a job not yet on disk a 503."""
        try:
            submitted = submit()
        except NotOnDisk as exc:
            raise not_on_disk(exc) from None
        except InvalidJob as exc:
            intake.envelopes.labels("refused").inc()
            raise Problem(
                422,
                f"{what} was refused: {len(exc.errors)} problem(s), each named by its path",
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
            **problem_responses(400, 401, 403, 413, 422, 503),
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
        cuit = cuit_of(envelope)
        if cuit is not None and cuit not in who.cuits:
            raise forbidden()
        return queued(lambda: queue.submit(envelope), cuit, "the job")

    @app.post(
        "/v1/invoices/{job_id}/credit-note",
        status_code=201,
        response_model=None,
        tags=["invoices"],
        summary="Queue the credit note that cancels an issued invoice",
        description=(
            "The NOTA DE CREDITO of the invoice's letter, associated with it, for its whole "
            "total or `amount` of it, queued as a job of its own (with the invoice's "
            "callback URL). Its external_reference is derived from the invoice's job id: "
            "asking again answers the same job (200, duplicate). 409: not issued, already "
            "credited in full, or an amount above what is left; 422: a credit note, a type "
            "tfq cannot credit, a bad amount, or a note the validation refused."
        ),
        responses={
            201: {"model": JobResult, "description": "queued: a new credit note"},
            200: {"model": JobResult, "description": "this credit note was already queued"},
            **problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
        },
    )
    def post_credit_note(job_id: str, who: CallerDep, body: CreditNoteIn | None = None) -> Response:
        original = (
            find_original(queue.store, queue.archived, job_id) if JOB_ID_RE.match(job_id) else None
        )
        if original is None:
            raise Problem(404, f"no job {job_id}", slug="no-such-job")
        if original.cuit not in who.cuits:  # whose it is stays unsaid
            raise Problem(403, "this job's CUIT is not one of this client's", slug="forbidden-cuit")
        body = body or CreditNoteIn()
        try:
            return queued(
                lambda: queue.void(job_id, reason=body.reason, amount=body.amount),
                original.cuit,
                "the credit note",
            )
        except CannotVoid as exc:
            raise Problem(exc.status, exc.message, slug=exc.slug, errors=exc.errors) from None

    @app.post(
        "/v1/batches",
        response_model=None,
        tags=["batches"],
        summary="Queue many invoice jobs under a batch name",
        responses={
            200: {"model": BatchReply, "description": "what happened to each envelope"},
            **problem_responses(400, 401, 403, 413, 422, 503),
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
            for i, cuit in enumerate(cuit_of(env) for env in jobs)
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
        existing = set(queue.store.batch_cuits(body.batch))
        if not existing <= who.cuits:
            raise Problem(
                403,
                f"batch {body.batch} holds jobs of CUITs this client may not see: "
                "use another batch name",
                slug="forbidden-batch",
                errors=[FieldError("batch", "in use by another client")],
            )
        try:
            report = queue.submit_many(jobs, batch=body.batch)
        except NotOnDisk as exc:
            raise not_on_disk(exc) from None
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
        "/v1/invoices",
        response_model=None,
        tags=["invoices"],
        summary="The period's issued invoices and notes, for the accountant",
        description=(
            "What `tfq invoices export` writes, a page at a time, in the books' order (date, "
            "CUIT, punto de venta, tipo, number). Credit notes are negative. Follow "
            "`next_cursor` until it is null; the last page also carries the period's totals "
            "per currency."
        ),
        responses={200: {"model": InvoicesPage}, **problem_responses(401, 403, 422, 503)},
    )
    def list_invoices(
        who: CallerDep,
        start: Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")],
        end: Annotated[date, Query(alias="to", description="last day, included")],
        cuit: Annotated[str | None, Query(description="only this issuing CUIT")] = None,
        cursor: Annotated[str | None, Query(description="next_cursor of the page before")] = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    ) -> Response:
        if start > end:
            raise Problem(
                422, "from is after to", slug="invalid-period",
                errors=[FieldError("from", "must not be after to")],
            )  # fmt: skip
        if cuit is not None and cuit not in who.cuits:
            raise forbidden()
        period = Period(start, end, frozenset({cuit}) if cuit else frozenset(who.cuits))
        sales = Sales(queue.archive.engine)
        try:
            page = sales.page(period, cursor=cursor, limit=limit)
            totals = None if page.next_cursor else totals_of(sales.all(period)).as_json()
        except BadCursor as exc:
            raise Problem(
                422, str(exc), slug="invalid-cursor", errors=[FieldError("cursor", str(exc))]
            ) from None
        except SQLAlchemyError as exc:
            raise Problem(
                503, f"the archive cannot be read now: {type(exc).__name__}",
                slug="archive-unavailable", headers={"Retry-After": RETRY_AFTER_SECONDS},
            ) from None  # fmt: skip
        body = {
            "invoices": [sale_json(s) for s in page.sales],
            "next_cursor": page.next_cursor,
            "totals": totals,
        }
        return JSONResponse(body)

    @app.get(
        "/v1/invoices/{job_id}",
        response_model=None,
        tags=["invoices"],
        summary="A job's result so far",
        responses={200: {"model": JobResult}, **problem_responses(401, 403, 404, 422, 503)},
    )
    def get_invoice(job_id: str, who: CallerDep) -> Response:
        job = queue.status(job_id) if JOB_ID_RE.match(job_id) else None
        if job is None:
            raise Problem(404, f"no job {job_id}", slug="no-such-job")
        if job.get("cuit") not in who.cuits:  # whose it is stays unsaid
            raise Problem(403, "this job's CUIT is not one of this client's", slug="forbidden-cuit")
        return JSONResponse(job)

    @app.get(
        "/v1/invoices/{job_id}/pdf",
        response_model=None,
        tags=["invoices"],
        summary="The invoice's PDF (or its ticket), as tfq kept it",
        description=(
            "tfq downloads each issued invoice's PDF the day it is issued (TusFacturas' "
            "links die that day) and keeps it for good. A 404 with Retry-After: not kept yet."
        ),
        responses={
            200: {"content": {"application/pdf": {}}, "description": "the PDF"},
            **problem_responses(401, 403, 404, 422, 503),
        },
    )
    def get_invoice_pdf(job_id: str, who: CallerDep, kind: PdfKind = PdfKind.A4) -> Response:
        found = queue.pdf(job_id, kind) if JOB_ID_RE.match(job_id) else None
        if found is None:
            raise Problem(404, f"no job {job_id}", slug="no-such-job")
        if found.cuit not in who.cuits:  # whose it is stays unsaid
            raise Problem(403, "this job's CUIT is not one of this client's", slug="forbidden-cuit")
        if found.data is None:
            retry = {"Retry-After": PDF_RETRY_AFTER_SECONDS} if found.pending else None
            raise Problem(404, found.reason, slug="no-pdf", headers=retry)
        return Response(
            found.data,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{found.filename}"'},
        )

    @app.get(
        "/v1/batches/{name}",
        response_model=None,
        tags=["batches"],
        summary="A batch's counts by status, progress and ETA",
        responses={200: {"model": BatchStatus}, **problem_responses(401, 403, 404, 422, 503)},
    )
    def get_batch(name: str, who: CallerDep) -> Response:
        summary = queue.batch(name)
        if summary is None:
            raise Problem(404, f"no batch {name}", slug="no-such-batch")
        cuits = set(queue.store.batch_cuits(name))
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
        responses={200: {"description": '{"status": "ok"}'}, **problem_responses(503)},
    )
    def healthz() -> Response:
        try:
            admin.ping(queue.store)
        except StoreError as exc:
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
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **problem_responses(503)},
    )
    def metrics() -> Response:
        return Response(generate_latest(intake.registry), media_type=CONTENT_TYPE_LATEST)


def not_on_disk(exc: NotOnDisk) -> Problem:
    """Not acknowledged: the job is queued in Redis, but its fsync was not confirmed."""
    return Problem(
        503,
        f"not acknowledged: {exc}",
        slug="not-on-disk",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


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
