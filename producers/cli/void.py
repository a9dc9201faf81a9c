"""`tfq void`: queue the credit note that cancels an issued invoice."""

from __future__ import annotations

from typing import Annotated

import typer

from producers.cli.common import JsonOption, fail, open_queue, print_report, store_errors


def void(
    job: Annotated[str, typer.Argument(help="The issued invoice's job id.")],
    reason: Annotated[
        str | None,
        typer.Option(
            help="Why: printed on the note (leyenda_gral, comentario) and kept in its metadata."
        ),
    ] = None,
    amount: Annotated[
        str | None,
        typer.Option(
            help="Credit only this much: the total, VAT included, in the invoice's "
            "currency (e.g. 1500.50); at most what is left to credit."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Queue the credit note (NOTA DE CREDITO) that cancels an issued invoice, in full or
    --amount of it, as a job of its own with the invoice's callback URL.

    Asking again returns the same note (duplicate); exit 1, saying why, for what cannot be
    credited: no such job, a job not issued, a credit note, an invoice already credited in
    full, an amount above what is left.
    """
    from worker.accounting.credit_notes import CannotVoid
    from worker.errors import InvalidJob
    from worker.store.durability import NotOnDisk

    queue = open_queue()
    with store_errors(as_json):
        try:
            submitted = queue.void(job, reason=reason, amount=amount)
        except CannotVoid as exc:
            fail(str(exc.errors[0]) if exc.errors[0].path != "job_id" else exc.message, as_json)
        except InvalidJob as exc:
            errors = "; ".join(str(e) for e in exc.errors)
            fail(f"the credit note was refused: {errors}", as_json)
        except NotOnDisk as exc:
            fail(f"not acknowledged: {exc} (the note is queued: run the same void again)", as_json)
        doc = queue.status(submitted.job_id) or {"job_id": submitted.job_id}
    doc["duplicate"] = submitted.duplicate
    what = "already queued as" if submitted.duplicate else "queued as"
    lines = [
        f"credit note for {job} {what} job {submitted.job_id} "
        f"({doc.get('tipo', '?')}, {doc.get('external_reference', '?')}, "
        f"status {doc.get('status') or '?'})"
    ]
    print_report(doc, as_json, None, lines)
