"""The console's pages for jobs that need a person: "Needs attention" (unknown jobs being
reconciled, jobs of paused lanes), "Failed" (rejected jobs, filtered by CUIT, batch and
day), a job's page, and the correction of a rejected job.

A correction is what the Python API does with a rejected key: the same (cuit,
external_reference) submitted again (`InvoiceQueue.submit`) makes a new job linked to the
rejected one (`previous_job_id`, `next_job_id`). The envelope shown for editing is what
tfq stored of it: the invoice, callback URL and metadata, never credentials.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from producers.console.kit import Console, ConsoleDep, Who, WhoDep, base, is_fragment, when
from worker.errors import FieldError, InvalidJob
from worker.store.jobs import FINAL, JobResult, JobStatus, unpack_envelope
from worker.store.keys import JobField
from worker.store.queries import attention_records, lane_jobs, lanes_doc

router = APIRouter()

LANES_READ = 5000  # lanes read to find the paused ones
JOBS_PER_PAUSED_LANE = 50
ATTENTION_READ = 2000  # newest entries of the attention index read per page
FAILED_SHOWN = 200
ENVELOPE_MAX = 256 * 1024  # characters of a corrected envelope


def _attempts(result: JobResult) -> list[dict[str, str]]:
    """The record's attempt log, newest first: when, outcome, message."""
    rows = []
    for entry in reversed(result.attempt_log):
        if not isinstance(entry, dict):
            rows.append({"when": "-", "outcome": "", "message": str(entry)})
            continue
        message = entry.get("error") or entry.get("message") or ""
        if entry.get("messages"):
            message = "; ".join(str(m) for m in entry["messages"])
        status = entry.get("http_status")
        detail = " ".join(str(p) for p in (entry.get("endpoint"), status and f"HTTP {status}") if p)
        rows.append({
            "when": when(entry.get("at")),
            "outcome": str(entry.get("outcome") or ""),
            "message": f"{message} ({detail})" if detail and message else message or detail,
        })  # fmt: skip
    return rows


def _row(result: JobResult, reason: str, at: float | None = None) -> dict[str, Any]:
    return {
        "job_id": result.job_id,
        "cuit": result.cuit,
        "batch": result.batch,
        "external_reference": result.external_reference,
        "status": str(result.status or "-"),
        "reason": reason,
        "messages": result.errors or result.last_messages,
        "last_error": result.last_error,
        "attempts": _attempts(result),
        "when": when(at) if at is not None else result.updated_at or result.created_at or "-",
    }


def _attention(console: Console, who: Who) -> dict[str, Any]:
    unknown = []
    for at, rec in attention_records(console.store, limit=ATTENTION_READ):
        result = JobResult.from_record(rec)
        if result.status == JobStatus.UNKNOWN and who.may_see(result.cuit or ""):
            why = "the outcome of a call is not known yet: being reconciled"
            unknown.append(_row(result, why, at))
    lanes = []
    for lane in lanes_doc(console.store, limit=LANES_READ)["rows"]:
        if not lane["paused_reason"] or not who.may_see(lane["cuit"]):
            continue
        jobs = [
            _row(JobResult.from_record(rec), lane["paused_reason"])
            for rec in lane_jobs(console.store, lane["cuit"], limit=JOBS_PER_PAUSED_LANE)
        ]
        lanes.append(lane | {"jobs": jobs})
    return {"unknown": unknown, "lanes": lanes}


@router.get("/attention", response_class=HTMLResponse)
def attention(request: Request, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    template = "attention_live.html" if is_fragment(request) else "attention.html"
    return console.page(request, template, who, **_attention(console, who))


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/failed", response_class=HTMLResponse)
def failed(
    request: Request,
    who: WhoDep,
    console: ConsoleDep,
    cuit: str = "",
    batch: str = "",
    since: str = "",
) -> HTMLResponse:
    cuit, batch, since = cuit.strip(), batch.strip(), since.strip()
    day = _day(since)
    problems = [] if day or not since else ["since: a day as YYYY-MM-DD"]
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() if day else None
    rows = []
    for at, rec in attention_records(console.store, since=start, limit=ATTENTION_READ):
        result = JobResult.from_record(rec)
        if result.status != JobStatus.REJECTED or not who.may_see(result.cuit or ""):
            continue
        if (cuit and result.cuit != cuit) or (batch and result.batch != batch):
            continue
        rows.append(_row(result, "", at))
        if len(rows) >= FAILED_SHOWN:
            break
    filters = {"cuit": cuit, "batch": batch, "since": since}
    return console.page(request, "failed.html", who, rows=rows, filters=filters,
                        problems=problems, shown=FAILED_SHOWN)  # fmt: skip


def _envelope_text(rec: dict[str, Any]) -> str:
    """The job's envelope as it can be submitted again (credentials are never in it)."""
    stored = unpack_envelope(rec[JobField.ENVELOPE]) if rec.get(JobField.ENVELOPE) else {}
    envelope: dict[str, Any] = {"cuit": rec.get(JobField.CUIT), "invoice": stored.get("invoice")}
    if stored.get("callback_url"):
        envelope["callback_url"] = stored["callback_url"]
    if stored.get("metadata"):
        envelope["metadata"] = stored["metadata"]
    return json.dumps(envelope, indent=2, ensure_ascii=False)


def _job_page(
    request: Request,
    who: Who,
    console: Console,
    job_id: str,
    *,
    draft: str | None = None,
    errors: list[FieldError] | None = None,
) -> HTMLResponse:
    rec = console.store.job(job_id)
    result = console.queue.result(job_id) if rec is not None else None
    if rec is None or result is None or not who.may_see(result.cuit or ""):
        return console.missing(request, who, f"job {job_id}")
    doc = result.model_dump(mode="json")
    envelope = _envelope_text(rec)
    invoice = json.dumps(json.loads(envelope)["invoice"], indent=2, ensure_ascii=False)
    correctable = result.status == JobStatus.REJECTED and not result.next_job_id
    response = console.page(
        request, "job.html", who,
        job=doc, attempts=_attempts(result), invoice=invoice, final=result.status in FINAL,
        correctable=correctable, draft=envelope if draft is None else draft,
        errors=errors or [],
    )  # fmt: skip
    if errors:
        response.status_code = 422
    return response


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job(request: Request, job_id: str, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    return _job_page(request, who, console, job_id)


@router.post("/jobs/{job_id}/correct")
def correct(
    request: Request,
    job_id: str,
    who: WhoDep,
    console: ConsoleDep,
    csrf: Annotated[str, Form()] = "",
    envelope: Annotated[str, Form(max_length=ENVELOPE_MAX)] = "",
) -> Response:
    if forged := console.forged(request, who, csrf):
        return forged
    rec = console.store.job(job_id)
    if rec is None or not who.may_see(rec.get(JobField.CUIT, "")):
        return console.missing(request, who, f"job {job_id}")
    if rec.get(JobField.STATUS) != JobStatus.REJECTED or rec.get(JobField.NEXT):
        return console.refuse(
            request, who, f"Job {job_id} is not a rejected job without a correction.", 409
        )

    def refused(*errors: FieldError) -> HTMLResponse:
        return _job_page(request, who, console, job_id, draft=envelope, errors=list(errors))

    try:
        body = json.loads(envelope)
    except ValueError as exc:
        return refused(FieldError("", f"not JSON: {exc}"))
    if not isinstance(body, dict):
        return refused(FieldError("", "a JSON object: the envelope"))
    try:
        env = console.queue.validate(body)
    except InvalidJob as exc:
        return refused(*exc.errors)
    key = (rec.get(JobField.CUIT), rec.get(JobField.EXTERNAL_REFERENCE))
    if env.cuit != key[0]:
        return refused(FieldError("cuit", f"the rejected job's CUIT: {key[0]}"))
    if env.external_reference != key[1]:
        return refused(FieldError("invoice.comprobante.external_reference",
                                  f"the rejected job's: {key[1]}"))  # fmt: skip
    try:
        submitted = console.queue.submit(env)
    except InvalidJob as exc:
        return refused(*exc.errors)
    # A duplicate: corrected meanwhile (by someone else), nothing new was queued; the
    # key's job is the one to look at either way.
    if not submitted.duplicate:
        console.act(who, "correct", env.cuit, job=submitted.previous_job_id or job_id,
                    corrected_by=submitted.job_id,
                    external_reference=env.external_reference)  # fmt: skip
    return RedirectResponse(f"{base(request)}/jobs/{submitted.job_id}", status_code=303)
