"""The period's sales for the accountant: one row per issued invoice and note, with
totals per currency at the end (`tfq invoices export`, `GET /v1/invoices`).

Credit notes are signed the way an accountant books them: their amounts are negative.
Amounts are written as exact decimal strings, never floats.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from worker.accounting.sales import VAT_RATES, Sale
from worker.invoice.fieldtypes import round_half_even


def _rate_label(rate: Decimal) -> str:
    return f"{rate.normalize():f}".replace(".", "_")


NET_COLUMNS = {rate: f"neto_gravado_{_rate_label(rate)}" for rate in VAT_RATES}
VAT_COLUMNS = {rate: f"iva_{_rate_label(rate)}" for rate in VAT_RATES if rate > 0}
# The amount columns, in the order they are written and summed.
AMOUNT_COLUMNS = [
    *NET_COLUMNS.values(),
    *VAT_COLUMNS.values(),
    "no_gravado",
    "exento",
    "sin_iva_discriminado",  # what letters without VAT (C) carry: their final prices
    "tributos",
    "total",
]
COLUMNS = [
    "fecha",
    "cuit",
    "tipo",
    "tipo_codigo",
    "punto_venta",
    "numero",
    "documento_tipo",
    "documento_nro",
    "razon_social",
    "condicion_iva",
    *AMOUNT_COLUMNS,
    "moneda",
    "cotizacion",
    "cae",
    "cae_vencimiento",
    "external_reference",
    "job_id",
]


def sale_row(sale: Sale) -> dict[str, Any]:
    """A sale as one export row (text and Decimal values), notes signed negative."""
    s, sign = sale.subtotals, sale.sign
    amounts: dict[str, Decimal] = {}
    for rate, column in NET_COLUMNS.items():
        amounts[column] = s.net.get(rate, Decimal(0))
    for rate, column in VAT_COLUMNS.items():
        amounts[column] = s.vat.get(rate, Decimal(0))
    amounts |= {
        "no_gravado": s.no_gravado,
        "exento": s.exento,
        "sin_iva_discriminado": s.final,
        "tributos": s.tributos,
        "total": sale.total,
    }
    return {
        "fecha": sale.fecha.isoformat(),
        "cuit": sale.cuit,
        "tipo": sale.tipo,
        "tipo_codigo": sale.tipo_code,
        "punto_venta": sale.punto_venta,
        "numero": sale.numero,
        "documento_tipo": sale.documento_tipo,
        "documento_nro": sale.documento_nro,
        "razon_social": sale.razon_social,
        "condicion_iva": sale.condicion_iva,
        **{k: _money(v * sign) for k, v in amounts.items()},
        "moneda": sale.moneda,
        "cotizacion": sale.cotizacion,
        "cae": sale.cae,
        "cae_vencimiento": sale.cae_vencimiento,
        "external_reference": sale.external_reference,
        "job_id": sale.job_id,
    }


def _money(value: Decimal) -> Decimal:
    return round_half_even(value) + Decimal("0.00")  # -0.00 as 0.00


@dataclass
class Totals:
    """Sums of the amount columns per currency, and in pesos at each sale's cotización."""

    count: int = 0
    by_moneda: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    in_pesos: dict[str, Decimal] = field(
        default_factory=lambda: dict.fromkeys(AMOUNT_COLUMNS, Decimal(0))
    )

    def add(self, row: dict[str, Any]) -> None:
        self.count += 1
        sums = self.by_moneda.setdefault(row["moneda"], dict.fromkeys(AMOUNT_COLUMNS, Decimal(0)))
        for column in AMOUNT_COLUMNS:
            sums[column] += row[column]
            self.in_pesos[column] += row[column] * row["cotizacion"]

    def rows(self) -> list[dict[str, Any]]:
        """One total per currency (`label` "TOTAL DOL" …); with more than one currency, a
        last one in pesos at each sale's cotización (`label` "TOTAL EN PESOS")."""
        found = [
            {"label": f"TOTAL {moneda}", "moneda": moneda, **sums}
            for moneda, sums in sorted(self.by_moneda.items())
        ]
        if len(self.by_moneda) > 1:
            pesos = {k: _money(v) for k, v in self.in_pesos.items()}
            found.append({"label": "TOTAL EN PESOS", "moneda": "PES", **pesos})
        return found

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "totals": [_plain(r) for r in self.rows()]}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: Decimals as exact strings."""
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def sale_json(sale: Sale) -> dict[str, Any]:
    return _plain(sale_row(sale))


def write_csv(sales: Iterable[Sale], out: IO[str]) -> Totals:
    """The rows, then the TOTAL rows (`Totals.rows`; `tipo` says which), in `COLUMNS` order."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    totals = Totals()
    for sale in sales:
        row = sale_row(sale)
        totals.add(row)
        writer.writerow(row)
    for total in totals.rows():
        label = total.pop("label")
        writer.writerow({"fecha": "TOTAL", "tipo": label, **total})
    return totals


def write_jsonl(sales: Iterable[Sale], out: IO[str]) -> Totals:
    """One `{"record": "invoice", ...}` line per sale, then one `{"record": "totals"}`."""
    totals = Totals()
    for sale in sales:
        row = sale_row(sale)
        totals.add(row)
        out.write(json.dumps({"record": "invoice", **_plain(row)}, ensure_ascii=False) + "\n")
    out.write(json.dumps({"record": "totals", **totals.as_json()}, ensure_ascii=False) + "\n")
    return totals


def totals_of(sales: Iterator[Sale]) -> Totals:
    totals = Totals()
    for sale in sales:
        totals.add(sale_row(sale))
    return totals
