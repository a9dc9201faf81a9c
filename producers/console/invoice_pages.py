"""The console's invoice pages: a search of the archive's issued invoices and notes (by
CUIT, external_reference, number and date, a page at a time), an invoice (its amounts by
VAT rate, its result, its PDFs, its credit notes) and the void that queues its credit note.

Scope is part of every query: an operator's search reads only their CUITs' rows, and an
invoice of another CUIT is "not found", as if it did not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from producers.console.kit import Console, ConsoleDep, Who, WhoDep, base, checked_cuit
from worker.accounting.credit_notes import (
    REASON_MAX,
    CannotVoid,
    Original,
    credits_of,
    find_original,
    note_tipo,
)
from worker.accounting.export import sale_row
from worker.accounting.sales import BadCursor, Period, Sale, SalesPage, sale_of, search_page
from worker.archive import db
from worker.archive.pdfs import PdfKind
from worker.archive.results import ArchiveUnavailable
from worker.archive.schema import ArchivedJob
from worker.errors import ConfigError, InvalidJob
from worker.store.jobs import JobStatus

router = APIRouter()

PAGE_SIZE = 50
JOB_ID_RE = re.compile(r"^[0-9a-f]{1,64}$")  # as the HTTP API's routes check them
EARLIEST, LATEST = date(2000, 1, 1), date(9999, 12, 31)
KINDS = {"a4": PdfKind.A4, "pdf": PdfKind.A4, "ticket": PdfKind.TICKET}
# sale_row's amount columns, in the order the invoice page lists them.
AMOUNT_LABELS = {
    "neto_gravado_0": "Neto gravado 0 %",
    "neto_gravado_10_5": "Neto gravado 10,5 %",
    "iva_10_5": "IVA 10,5 %",
    "neto_gravado_21": "Neto gravado 21 %",
    "iva_21": "IVA 21 %",
    "neto_gravado_27": "Neto gravado 27 %",
    "iva_27": "IVA 27 %",
    "no_gravado": "No gravado",
    "exento": "Exento",
    "sin_iva_discriminado": "Sin IVA discriminado",
    "tributos": "Tributos",
    "total": "Total",
}
T = TypeVar("T")


def _read(console: Console, read: Callable[[], T]) -> T:
    """A read of the archive; `ArchiveUnavailable` when it cannot be read now (a SQLite
    file is brought up to date first, as `ArchivedResults` does)."""
    engine = console.queue.archive.engine
    try:
        db.ensure_schema(engine)
        return read()
    except ConfigError as exc:
        raise ArchiveUnavailable(str(exc)) from None
    except SQLAlchemyError as exc:
        raise ArchiveUnavailable(f"the archive: {type(exc).__name__}") from None


def _unavailable(request: Request, who: Who, console: Console, exc: Exception) -> HTMLResponse:
    return console.refuse(request, who, f"The archive cannot be read now: {exc}", status=503)


def _day(text: str, what: str, errors: list[str]) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        errors.append(f"{what}: a date as YYYY-MM-DD, not {text!r}")
        return None


@router.get("/invoices", response_class=HTMLResponse)
def invoices(
    request: Request,
    who: WhoDep,
    console: ConsoleDep,
    cuit: str = "",
    ref: str = "",
    numero: str = "",
    from_: Annotated[str, Query(alias="from")] = "",
    to: str = "",
    test: str = "",
    cursor: str = "",
) -> HTMLResponse:
    form = {"cuit": cuit.strip(), "ref": ref.strip()[:255], "numero": numero.strip(),
            "from": from_.strip(), "to": to.strip(), "test": "1" if test else ""}  # fmt: skip
    errors: list[str] = []
    cuits = who.cuits
    if form["cuit"]:
        checked = checked_cuit(form["cuit"])
        if checked is None:
            errors.append(f"CUIT: not a valid CUIT: {form['cuit']!r}")
        else:
            # Another operator's CUIT reads as one without invoices: the query finds none.
            cuits = frozenset({checked} if who.may_see(checked) else set())
    number: int | None = None
    if form["numero"]:
        if form["numero"].isdigit() and len(form["numero"]) <= 9:
            number = int(form["numero"])
        else:
            errors.append(f"Number: a whole number, not {form['numero']!r}")
    start = _day(form["from"], "From", errors) or EARLIEST
    end = _day(form["to"], "To", errors) or LATEST
    status, sales, next_url = 200, [], None
    if not errors:
        period = Period(start, end, cuits=cuits, include_test=bool(form["test"]))
        try:
            page = _read(console, lambda: _search(console, period, form["ref"], number, cursor))
        except BadCursor as exc:
            errors.append(str(exc))
        except ArchiveUnavailable as exc:
            return _unavailable(request, who, console, exc)
        else:
            sales = [_listed(s) for s in page.sales]
            if page.next_cursor:
                query = {k: v for k, v in form.items() if v} | {"cursor": page.next_cursor}
                next_url = f"{base(request)}/invoices?{urlencode(query)}"
    if errors:
        status = 422
    response = console.page(
        request, "invoices.html", who, form=form, errors=errors, sales=sales,
        next_url=next_url, searched=bool(request.query_params), paged=bool(cursor),
    )  # fmt: skip
    response.status_code = status
    return response


def _search(
    console: Console, period: Period, ref: str, number: int | None, cursor: str
) -> SalesPage:
    engine = console.queue.archive.engine
    return search_page(engine, period, reference_prefix=ref or None, numero=number,
                       cursor=cursor or None, limit=PAGE_SIZE)  # fmt: skip


def _listed(sale: Sale) -> dict[str, Any]:
    return {
        "job_id": sale.job_id,
        "fecha": sale.fecha.isoformat(),
        "tipo": sale.tipo,
        "number": f"{sale.punto_venta:05d}-{sale.numero:08d}",
        "receptor": sale.razon_social,
        "documento": f"{sale.documento_tipo} {sale.documento_nro}",
        "total": f"{sale.total:.2f}",
        "moneda": sale.moneda,
        "cae": sale.cae,
        "external_reference": sale.external_reference,
        "cuit": sale.cuit,
    }


def _visible_original(console: Console, who: Who, job_id: str) -> Original | None:
    """The job as tfq keeps it (Redis, else the archive), when this operator may see it."""
    if not JOB_ID_RE.match(job_id):
        return None
    original = find_original(console.store, console.queue.archived, job_id)
    if original is None or not who.may_see(original.cuit):
        return None
    return original


def _invoice_context(console: Console, original: Original) -> dict[str, Any]:
    """What the invoice page shows of a job: its amounts by VAT rate (once it reads as an
    invoice), its result, its notes and whether it may be voided."""
    job_id = original.job_id
    result = console.queue.result(job_id)
    row = console.queue.archived.row(job_id)
    if row is None:  # still in Redis only: the same reading, from what Redis holds
        row = ArchivedJob(
            job_id=job_id, cuit=original.cuit, request=original.invoice,
            punto_venta=original.punto_venta, numero=original.numero or 0,
            cae=result.cae if result else None,
            cae_vencimiento=result.cae_vencimiento if result else None,
            external_reference=original.external_reference,
        )  # fmt: skip
    try:
        fields = sale_row(sale_of(row))
    except ValueError:  # (UnreadableSale; never expected: it was validated when queued)
        fields = None
    try:
        note_tipo(original.tipo)
        creditable = original.status == JobStatus.ISSUED
    except CannotVoid:
        creditable = False
    notes = credits_of(console.store, console.queue.archived, original)
    voids = (original.metadata or {}).get("voids_job_id")
    amounts = [
        (label, fields[k])
        for k, label in AMOUNT_LABELS.items()
        if fields and (fields[k] or k == "total")
    ]
    return {
        "job_id": job_id,
        "original": original,
        "number": f"{original.punto_venta:05d}-{original.numero or 0:08d}",
        "fields": fields,
        "amounts": amounts,
        "result": result,
        "notes": notes,
        "voids": voids if isinstance(voids, str) and JOB_ID_RE.match(voids) else None,
        "creditable": creditable,
        "reason_max": REASON_MAX,
    }


def _invoice_page(
    request: Request,
    who: Who,
    console: Console,
    job_id: str,
    *,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    try:
        original = _visible_original(console, who, job_id)
        if original is None:
            return console.missing(request, who, f"invoice {job_id}")
        context = _invoice_context(console, original)
    except ArchiveUnavailable as exc:
        return _unavailable(request, who, console, exc)
    response = console.page(request, "invoice.html", who, **context, **extra)
    response.status_code = status
    return response


@router.get("/invoices/{job_id}", response_class=HTMLResponse)
def invoice(
    request: Request, job_id: str, who: WhoDep, console: ConsoleDep, duplicate: str = ""
) -> HTMLResponse:
    return _invoice_page(request, who, console, job_id, duplicate=bool(duplicate))


@router.get("/invoices/{job_id}/pdf", response_model=None)
def invoice_pdf(
    request: Request, job_id: str, who: WhoDep, console: ConsoleDep, kind: str = "a4"
) -> Response:
    pdf_kind = KINDS.get(kind)
    if pdf_kind is None:
        return console.refuse(request, who, "kind: a4 or ticket", status=422)
    try:
        found = console.queue.pdf(job_id, pdf_kind) if JOB_ID_RE.match(job_id) else None
    except ArchiveUnavailable as exc:
        return _unavailable(request, who, console, exc)
    if found is None or not who.may_see(found.cuit):  # whose it is stays unsaid
        return console.missing(request, who, f"invoice {job_id}")
    if found.data is None:
        what = "ticket" if pdf_kind is PdfKind.TICKET else "PDF"
        return console.missing(request, who, f"{what} of invoice {job_id}: {found.reason}")
    return Response(
        found.data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )


@router.post("/invoices/{job_id}/void", response_model=None)
def void(
    request: Request,
    job_id: str,
    who: WhoDep,
    console: ConsoleDep,
    csrf: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=REASON_MAX * 4)] = "",
    amount: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    if forged := console.forged(request, who, csrf):
        return forged
    if not reason.strip():
        return _invoice_page(request, who, console, job_id, status=422,
                             void_error="Reason: say why it is voided.", amount=amount)  # fmt: skip
    try:
        original = _visible_original(console, who, job_id)
        if original is None:
            return console.missing(request, who, f"invoice {job_id}")
        note = console.queue.void(job_id, reason=reason.strip() or None, amount=amount.strip())
    except CannotVoid as exc:
        return _invoice_page(request, who, console, job_id, status=exc.status,
                             void_error=exc.message, reason=reason, amount=amount)  # fmt: skip
    except InvalidJob as exc:
        return _invoice_page(request, who, console, job_id, status=422,
                             void_error=f"The credit note was refused: {exc}",
                             reason=reason, amount=amount)  # fmt: skip
    except ArchiveUnavailable as exc:
        return _unavailable(request, who, console, exc)
    console.act(who, "void", job_id, cuit=original.cuit, note=note.job_id, duplicate=note.duplicate,
                reason=reason.strip(), amount=amount.strip())  # fmt: skip
    again = "?duplicate=1" if note.duplicate else ""
    return RedirectResponse(f"{base(request)}/invoices/{note.job_id}{again}", status_code=303)
