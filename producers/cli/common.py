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
    """A dd/mm/aaaa option as a date."""
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%d/%m/%Y").date()
    except ValueError:
        raise typer.BadParameter("expected dd/mm/aaaa") from None


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
    likewise an archive that cannot be read."""
    from producers.cli.render import redis_where
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


def open_queue() -> InvoiceQueue:
    from producers.client import InvoiceQueue

    return InvoiceQueue()
