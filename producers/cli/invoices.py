"""`tfq invoices`: what tfq kept of issued invoices: their PDFs, the period's export and the
Libro IVA Digital."""

from __future__ import annotations

import calendar
import re
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from producers.cli.common import (
    FromOption,
    JsonOption,
    ToOption,
    check_cuit,
    fail,
    open_queue,
    parse_period,
    print_report,
    store_errors,
)

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


def export(
    start: FromOption,
    end: ToOption,
    cuit: Annotated[
        str | None, typer.Option(help="Only this issuing CUIT.", callback=check_cuit)
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: standard output).")
    ] = None,
    include_test: Annotated[
        bool, typer.Option(help="Also invoices of test PDVs (no CAE: not fiscal documents).")
    ] = False,
) -> None:
    """The period's issued invoices and notes from the archive, for the accountant: one
    row each (credit notes negative), then a TOTAL row per currency (and in pesos when
    there are several). Exit 1 when the archive cannot be read."""

    from worker.accounting.export import VAT_COLUMNS, write_csv, write_jsonl
    from worker.accounting.sales import Period, Sales
    from worker.archive import db
    from worker.settings import get_settings

    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("must be csv or jsonl", param_hint="--format")
    first, last = parse_period(start, end)
    url = get_settings().archive_database_url
    period = Period(
        first, last, None if cuit is None else frozenset({cuit}), include_test=include_test
    )
    write = write_csv if fmt == "csv" else write_jsonl
    with store_errors(False):
        sales = Sales(db.engine_for(url)).all(period)
        if output is None:
            write(sales, sys.stdout)
            return
        tmp = output.with_name(f".{output.name}.part")
        with tmp.open("w", encoding="utf-8", newline="") as out:
            totals = write(sales, out)
        tmp.replace(output)
    typer.echo(f"{output}: {totals.count} invoices and notes, {first} to {last}")
    for row in totals.rows():
        vat = sum(row[c] for c in VAT_COLUMNS.values())
        typer.echo(f"  {row['label']}: {row['total']} (IVA {vat})")


app.command("export")(export)


def _period(value: str) -> tuple[date, date] | None:
    """The first and last day of a YYYY-MM month; None when `value` is not one."""
    if not re.fullmatch(r"\d{4}-\d{2}", value):
        return None
    year, month = int(value[:4]), int(value[5:])
    if not 1 <= month <= 12 or year < 1:
        return None
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def libro_iva(
    period: Annotated[str, typer.Option("--period", help="The month, YYYY-MM.")],
    cuit: Annotated[
        str, typer.Option("--cuit", help="The issuing CUIT (11 digits).", callback=check_cuit)
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The directory to write to.")],
    as_json: JsonOption = False,
) -> None:
    """Write the month's Libro IVA Digital ventas files (comprobantes and alícuotas, AFIP's
    RG 3685 fixed-width layout) from the archive's issued invoices of one CUIT."""
    days = _period(period)
    if days is None:
        fail(f"--period must be a month as YYYY-MM, not {period!r}", as_json, code=2)

    from worker.accounting.libro_iva import LibroIvaError, write_libro_iva
    from worker.accounting.sales import Period, Sales, UnreadableSale
    from worker.archive import db
    from worker.settings import get_settings

    url = get_settings().archive_database_url
    sales = Sales(db.engine_for(url)).all(Period(days[0], days[1], cuits=frozenset({cuit})))
    try:
        with store_errors(as_json):
            result = write_libro_iva(sales, output, cuit, days[0])
    except (LibroIvaError, UnreadableSale) as exc:
        fail(str(exc), as_json)
    except OSError as exc:
        fail(f"{output}: {type(exc).__name__}: {exc.strerror or exc}", as_json)
    doc = {"period": period, "cuit": cuit, **result.as_dict()}
    lines = [
        f"{result.comprobantes_path}: {result.comprobantes} comprobantes",
        f"{result.alicuotas_path}: {result.alicuotas} alícuotas records",
    ]
    for moneda, by in result.totals.items():
        lines.append(
            f"total {moneda}: {by['facturas_y_debitos']} facturas y débitos, "
            f"{by['notas_de_credito']} notas de crédito"
        )
    print_report(doc, as_json, None, lines)


app.command("libro-iva")(libro_iva)
