"""What the commands share: their options, JSON output, and errors without a traceback.

Read commands print one JSON document with --json; otherwise plain text on a pipe and
rich tables and progress bars on a terminal. Errors name what is wrong and never show a
traceback: exit 2 for a usage error, 1 for something invalid or failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from producers.cli.render import Table
    from producers.client import InvoiceQueue

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (for scripts), no markup.")
]
LimitOption = Annotated[int, typer.Option(min=1, help="Show at most this many rows.")]
FormatOption = Annotated[str, typer.Option("--format", help="auto (by extension), jsonl or csv.")]
FORMATS = ("auto", "jsonl", "csv")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise typer.BadParameter("must be auto, jsonl or csv", param_hint="--format")


def parse_day(value: str | None) -> date | None:
    """A date option, as YYYY-MM-DD or as the API writes dates (dd/mm/aaaa)."""
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    raise typer.BadParameter(f"{value!r}: expected YYYY-MM-DD or dd/mm/aaaa")


def parse_period(start: str, end: str) -> tuple[date, date]:
    """The --from and --to options as dates, the first not after the last."""
    first, last = parse_day(start) or date.min, parse_day(end) or date.max
    if first > last:
        raise typer.BadParameter(f"{start} is after --to {end}", param_hint="--from")
    return first, last


FromOption = Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD or dd/mm/aaaa).")]
ToOption = Annotated[str, typer.Option("--to", help="Last day, included.")]


def check_cuit(value: str | None) -> str | None:
    from worker.invoice.cuit import valid_cuit

    try:
        return None if value is None else valid_cuit(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


CuitArgument = Annotated[
    str, typer.Argument(help="The issuing CUIT (11 digits).", callback=check_cuit)
]


def console(as_json: bool) -> Console | None:
    """Rich output only on a terminal, never with --json."""
    if as_json or not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console()


def print_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, default=str))


def print_report(doc: Any, as_json: bool, table: Table | None, lines: list[str]) -> None:
    """With --json the document; otherwise the table (when given), then the lines."""
    if as_json:
        print_json(doc)
        return
    if table is not None:
        from producers.cli.render import show

        show(table, console(as_json), sys.stdout)
    for line in lines:
        typer.echo(line)


def fail(message: str, as_json: bool, code: int = 1) -> NoReturn:
    if as_json:
        print_json({"error": message})
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def store_errors(as_json: bool) -> Iterator[None]:
    """A Redis failure as one line naming the Redis (without its credentials), exit 1;
    likewise an archive that cannot be read (the driver's error class, never its text,
    which can quote the SQL and the URL)."""
    from sqlalchemy.exc import SQLAlchemyError

    from producers.cli.render import redis_where
    from worker.archive import db
    from worker.archive.results import ArchiveUnavailable
    from worker.settings import get_settings
    from worker.store.errors import StoreError

    try:
        yield
    except StoreError as exc:
        where = redis_where(get_settings().redis_url)
        fail(f"Redis at {where} (TFQ_REDIS_URL): {exc}", as_json)
    except ArchiveUnavailable as exc:
        fail(f"{exc} (TFQ_ARCHIVE_URL)", as_json)
    except SQLAlchemyError as exc:
        where = db.safe_url(get_settings().archive_database_url)
        fail(f"archive at {where} (TFQ_ARCHIVE_URL): {type(exc).__name__}", as_json)


def open_queue() -> InvoiceQueue:
    from producers.client import InvoiceQueue

    return InvoiceQueue()
