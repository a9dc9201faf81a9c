"""`tfq invoices`: what tfq kept of issued invoices (their PDFs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from producers.cli.common import JsonOption, fail, open_queue, print_report, store_errors

app = typer.Typer(help="Issued invoices as tfq kept them.", no_args_is_help=True)


def pdf(
    job: Annotated[str, typer.Argument(help="The job id.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write it; - for standard output.")
    ],
    ticket: Annotated[bool, typer.Option(help="The ticket instead of the A4 PDF.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write an invoice's PDF as tfq kept it (from the PDF store, also once Redis has let
    the job go); exit 1 when there is none (yet), saying why."""
    from worker.archive.pdfs import PdfKind

    kind = PdfKind.TICKET if ticket else PdfKind.A4
    with store_errors(as_json):
        found = open_queue().pdf(job, kind)
    if found is None:
        fail(f"no job {job}", as_json)
    if found.data is None:
        fail(found.reason + (" (try again later)" if found.pending else ""), as_json)
    if str(output) == "-":
        sys.stdout.buffer.write(found.data)
        return
    output.write_bytes(found.data)
    doc = {"job_id": job, "kind": str(kind), "path": str(output), "bytes": len(found.data)}
    print_report(doc, as_json, None, [f"{output}: {len(found.data)} bytes ({found.filename})"])


app.command("pdf")(pdf)
