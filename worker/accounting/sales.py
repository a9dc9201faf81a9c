"""The period's sales as the accountant's books see them: one `Sale` per issued invoice
or note in the archive, its amounts broken down by VAT rate the way AFIP books them.

Exports (`tfq invoices export`, `GET /v1/invoices`), Libro IVA Digital and the audit all
read the archive through here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select, tuple_
from sqlalchemy.orm import Session

from worker.archive.schema import ArchivedJob
from worker.errors import TfqError
from worker.invoice.rules import Subtotals, booked_subtotals
from worker.invoice.schema import Invoice
from worker.invoice.tables import AFIP_TIPO_CODES, TIPOS
from worker.store.jobs import JobStatus

# The VAT rates AFIP books, in the order an export lists them.
VAT_RATES = (Decimal(0), Decimal("10.5"), Decimal(21), Decimal(27))
PAGE_MAX = 1000


class UnreadableSale(TfqError, ValueError):
    """An archived invoice whose request cannot be read back (it names the job)."""


@dataclass(frozen=True)
class Sale:
    """One issued invoice or note. Amounts are as issued (never negative); `sign` is -1
    for credit notes, which an accountant books as negative sales."""

    job_id: str
    cuit: str
    fecha: date
    tipo: str
    tipo_code: int  # AFIP's CbteTipo (0 for documents that are not AFIP's)
    punto_venta: int
    numero: int
    documento_tipo: str
    documento_nro: str
    razon_social: str
    condicion_iva: str
    subtotals: Subtotals
    total: Decimal
    moneda: str
    cotizacion: Decimal
    cae: str
    cae_vencimiento: str
    external_reference: str
    tributos_by_tipo: dict[int, Decimal]  # tributos[].total by their `tipo` (6, 7, 1)
    impuestos_internos: Decimal
    associated: list[dict[str, Any]]  # comprobantes_asociados, as sent

    @property
    def sign(self) -> int:
        return -1 if TIPOS[self.tipo].kind == "nota_credito" else 1

    @property
    def letter(self) -> str:
        return TIPOS[self.tipo].letter


def sale_of(row: ArchivedJob) -> Sale:
    """The sale an issued archive row records; `UnreadableSale` when its request is not
    an invoice any more (never expected: it was validated when enqueued)."""
    try:
        invoice = Invoice.model_validate(row.request)
    except ValueError as exc:
        raise UnreadableSale(
            f"job {row.job_id}: its archived request does not read back: {exc}"
        ) from None
    c, cliente = invoice.comprobante, invoice.cliente
    tributos: dict[int, Decimal] = {}
    for t in c.tributos:
        tributos[t.tipo] = tributos.get(t.tipo, Decimal(0)) + t.total
    return Sale(
        job_id=row.job_id,
        cuit=row.cuit,
        fecha=c.fecha,
        tipo=c.tipo,
        tipo_code=AFIP_TIPO_CODES.get(c.tipo, 0),
        punto_venta=row.punto_venta,
        numero=row.numero or c.numero,
        documento_tipo=cliente.documento_tipo,
        documento_nro=cliente.documento_nro,
        razon_social=cliente.razon_social,
        condicion_iva=cliente.condicion_iva,
        subtotals=booked_subtotals(c),
        total=c.total,
        moneda=c.moneda,
        cotizacion=Decimal(1) if c.moneda == "PES" else c.cotizacion,
        cae=row.cae or "",
        cae_vencimiento=row.cae_vencimiento or "",
        external_reference=row.external_reference,
        tributos_by_tipo=tributos,
        impuestos_internos=c.impuestos_internos or Decimal(0),
        associated=[a.model_dump(mode="json") for a in c.comprobantes_asociados or []],
    )


@dataclass(frozen=True)
class Period:
    """Which sales to read: issued from `start` to `end` (both included), of one CUIT or
    of those in `cuits` (None: any), with test-mode invoices only when asked."""

    start: date
    end: date
    cuits: frozenset[str] | None = None
    punto_venta: int | None = None
    tipo: str | None = None
    include_test: bool = False


def _order() -> tuple[Any, ...]:
    return (
        ArchivedJob.fecha,
        ArchivedJob.cuit,
        ArchivedJob.punto_venta,
        ArchivedJob.tipo,
        ArchivedJob.numero,
        ArchivedJob.job_id,
    )


def _key(row: ArchivedJob) -> list[Any]:
    return [row.fecha.isoformat() if row.fecha else None, row.cuit, row.punto_venta,
            row.tipo, row.numero, row.job_id]  # fmt: skip


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


class BadCursor(TfqError, ValueError):
    """A paging cursor this module did not write."""


def decode_cursor(cursor: str) -> list[Any]:
    """The key a cursor carries; `BadCursor` when it is not one this module wrote."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(key, list) and len(key) == 6 and isinstance(key[0], str)):
            raise ValueError
        key[0] = date.fromisoformat(key[0])
    except ValueError:  # (UnicodeDecodeError and JSON's errors are ValueErrors)
        raise BadCursor("not a cursor from a previous page") from None
    return key


@dataclass(frozen=True)
class SalesPage:
    sales: list[Sale]
    next_cursor: str | None  # None: this was the last page


class Sales:
    """Issued invoices and notes of the archive, by period, in the books' order: date,
    CUIT, punto de venta, tipo, number."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _query(self, period: Period) -> Any:
        query = select(ArchivedJob).where(
            ArchivedJob.status == JobStatus.ISSUED,
            ArchivedJob.fecha >= period.start,
            ArchivedJob.fecha <= period.end,
        )
        if period.cuits is not None:
            query = query.where(ArchivedJob.cuit.in_(sorted(period.cuits)))
        if period.punto_venta is not None:
            query = query.where(ArchivedJob.punto_venta == period.punto_venta)
        if period.tipo is not None:
            query = query.where(ArchivedJob.tipo == period.tipo)
        if not period.include_test:
            query = query.where(ArchivedJob.test_mode.is_(False))
        return query.order_by(*_order())

    def page(self, period: Period, *, cursor: str | None = None, limit: int = 100) -> SalesPage:
        """Up to `limit` sales after `cursor` (None: from the start); `BadCursor` for a
        cursor this module did not write."""
        limit = max(1, min(limit, PAGE_MAX))
        query = self._query(period)
        if cursor is not None:
            query = query.where(tuple_(*_order()) > tuple_(*decode_cursor(cursor)))
        with Session(self.engine) as session:
            rows = list(session.scalars(query.limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return SalesPage(
            [sale_of(r) for r in rows], encode_cursor(_key(rows[-1])) if more and rows else None
        )

    def all(self, period: Period) -> Iterator[Sale]:
        """Every sale of the period, read a page at a time."""
        cursor: str | None = None
        while True:
            page = self.page(period, cursor=cursor, limit=PAGE_MAX)
            yield from page.sales
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def search_page(
    engine: Engine,
    period: Period,
    *,
    reference_prefix: str | None = None,
    numero: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> SalesPage:
    """`Sales.page` narrowed to sales whose external_reference starts with
    `reference_prefix` (taken literally: LIKE's wildcards in it are escaped) and whose
    number is `numero`, in the same order and with the same cursors (the console's
    invoice search)."""
    limit = max(1, min(limit, PAGE_MAX))
    query = Sales(engine)._query(period)
    if reference_prefix:
        escaped = reference_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(ArchivedJob.external_reference.like(escaped + "%", escape="\\"))
    if numero is not None:
        query = query.where(ArchivedJob.numero == numero)
    if cursor is not None:
        query = query.where(tuple_(*_order()) > tuple_(*decode_cursor(cursor)))
    with Session(engine) as session:
        rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return SalesPage(
        [sale_of(r) for r in rows], encode_cursor(_key(rows[-1])) if more and rows else None
    )
