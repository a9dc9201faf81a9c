"""Libro IVA Digital, ventas: the period's sales as the two fixed-width TXT files AFIP
imports (comprobantes and alícuotas).

Layout: AFIP's "diseño de registro" of the Régimen de Información de Compras y Ventas
(RG 3685, Anexo II), which Libro IVA Digital (RG 4597) imports unchanged:
REGINFO_CV_VENTAS_CBTE, 22 fields, 266 characters, and REGINFO_CV_VENTAS_ALICUOTAS,
6 fields, 62 characters. Field order and widths as pyafipws lists them (reingart/pyafipws,
`rg3685.py`: REGINFO_CV_VENTAS_CBTE and REGINFO_CV_VENTAS_CBTE_ALICUOTA), which agree with
the "Desde/Hasta" table of AFIP's design (amounts 13 integers + 2 decimals, tipo de cambio
4 integers + 6 decimals, dates AAAAMMDD). The field notes quoted below are AFIP's (campos
9 to 22 of the comprobantes record); where AFIP leaves a choice, the choice of Odoo's
l10n_ar VAT book (the `account.vat.ledger` TXT export) is followed and said so.

Choices, field by field:

- Campo 6, código de documento: AFIP's table (80 CUIT, 86 CUIL, 87 CDI, 96 DNI,
  94 Pasaporte, 99 sin identificar); the number zero-padded (it is digits only here).
- Campo 8, apellido y nombre: transliterated to ASCII (accents dropped, Ñ → N) and cut
  to 30 characters. Implementations write these files in ISO-8859-1; plain ASCII reads
  the same in ISO-8859-1, UTF-8 and the importer's own code page, so no name can arrive
  garbled; the name is informative (the CUIT identifies the buyer).
- Campos 9 to 16 and 21, importes: in the comprobante's currency, with its tipo de cambio
  in campo 18 ("deberá completarse aún cuando el campo Código de Moneda sea igual a
  'PES'"). Odoo exported pesos until 2021 and changed to the original amounts because
  "AFIP requires to keep the original amounts in the txt files" (odoo/odoo#67927,
  ingadhoc/odoo-argentina#462).
- Tributos: tipo 6 (percepción IVA) and 1 (impuestos nacionales) go to campo 13,
  "percepciones o pagos a cuenta de impuestos nacionales" (the ventas record has no
  field of its own for IVA perceptions; Odoo does the same); tipo 7 (percepción IIBB) to
  campo 14; any other to campo 21, otros tributos. Impuestos internos to campo 16.
- Campo 10 (no gravado) and 12 (exento): the items at alícuota -2 and -1. A factura E
  books everything as exento with código de operación 'X' (exportación al exterior).
- Campo 17, moneda: TusFacturas' codes are AFIP's own (PES, DOL, 060 …), written as sent.
- Campo 19, cantidad de alícuotas, and the alícuotas records: letters that add VAT (A, B,
  M) inform one record per VAT rate present; with none (only exento / no gravado items)
  one record at alícuota 3 (0 %) with zero amounts, as AFIP asks for '1' "en caso
  contrario". Letters without VAT (C) and exports (E) inform no record and 0.
- Campo 20, código de operación: 'X' for letter E; otherwise 'E' when there is an exento
  amount, 'N' when there is a no gravado one, else blank (Odoo's rule).
- Campo 22, fecha de vencimiento de pago: "sólo se informará cuando la prestación se
  corresponda con un servicio público" (obligatory only for tipos 17 and 18, which tfq
  does not issue): zeros.

Credit notes are told apart by their tipo de comprobante; amounts are never negative.
Lines end in CRLF. A value that does not fit its field raises `LibroIvaError` naming the
invoice and the field: the file is then not written at all.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Literal

from worker.accounting.sales import VAT_RATES, Sale
from worker.errors import TfqError
from worker.invoice.tables import LETTERS_WITH_VAT

EOL = "\r\n"
ENCODING = "latin-1"  # every character written is ASCII (see campo 8 above)

Kind = Literal["date", "int", "text", "amount", "rate"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    width: int
    kind: Kind  # int, amount, rate: right-aligned, zero-padded; text: left, space-padded


# REGINFO_CV_VENTAS_CBTE (RG 3685 Anexo II; pyafipws rg3685.py), in order.
CBTE_LAYOUT: tuple[FieldSpec, ...] = (
    FieldSpec("fecha", 8, "date"),  # 1 AAAAMMDD
    FieldSpec("tipo_comprobante", 3, "int"),  # 2 AFIP's CbteTipo
    FieldSpec("punto_venta", 5, "int"),  # 3
    FieldSpec("numero_desde", 20, "int"),  # 4
    FieldSpec("numero_hasta", 20, "int"),  # 5 the same number (one comprobante per line)
    FieldSpec("codigo_documento", 2, "int"),  # 6 AFIP's document table
    FieldSpec("numero_documento", 20, "int"),  # 7
    FieldSpec("denominacion", 30, "text"),  # 8 apellido y nombre / razón social
    FieldSpec("importe_total", 15, "amount"),  # 9
    FieldSpec("no_gravado", 15, "amount"),  # 10 conceptos que no integran el neto gravado
    FieldSpec("percepcion_no_categorizados", 15, "amount"),  # 11
    FieldSpec("exento", 15, "amount"),  # 12 operaciones exentas
    FieldSpec("percepciones_nacionales", 15, "amount"),  # 13
    FieldSpec("percepciones_iibb", 15, "amount"),  # 14
    FieldSpec("percepciones_municipales", 15, "amount"),  # 15
    FieldSpec("impuestos_internos", 15, "amount"),  # 16
    FieldSpec("moneda", 3, "text"),  # 17
    FieldSpec("tipo_cambio", 10, "rate"),  # 18 4 integers, 6 decimals
    FieldSpec("cantidad_alicuotas", 1, "int"),  # 19
    FieldSpec("codigo_operacion", 1, "text"),  # 20
    FieldSpec("otros_tributos", 15, "amount"),  # 21
    FieldSpec("fecha_vencimiento_pago", 8, "date"),  # 22 zeros: not a servicio público
)
CBTE_LENGTH = 266

# REGINFO_CV_VENTAS_ALICUOTAS (RG 3685 Anexo II; pyafipws rg3685.py), in order.
ALICUOTA_LAYOUT: tuple[FieldSpec, ...] = (
    FieldSpec("tipo_comprobante", 3, "int"),  # 1
    FieldSpec("punto_venta", 5, "int"),  # 2
    FieldSpec("numero", 20, "int"),  # 3
    FieldSpec("neto_gravado", 15, "amount"),  # 4
    FieldSpec("alicuota", 4, "int"),  # 5 AFIP's alícuota code
    FieldSpec("impuesto_liquidado", 15, "amount"),  # 6
)
ALICUOTA_LENGTH = 62

# AFIP's codes: document types (tabla Documentos) and VAT rates (tabla Alícuotas).
DOCUMENT_CODES = {"CUIT": 80, "CUIL": 86, "CDI": 87, "PASAPORTE": 94, "DNI": 96, "OTRO": 99}
ALICUOTA_CODES = {
    Decimal(0): 3,
    Decimal("10.5"): 4,
    Decimal(21): 5,
    Decimal(27): 6,
    Decimal(5): 8,
    Decimal("2.5"): 9,
}
# Tributo `tipo` → the comprobantes field it is booked in (others: otros_tributos).
TRIBUTO_FIELDS = {
    6: "percepciones_nacionales",
    1: "percepciones_nacionales",
    7: "percepciones_iibb",
}

_CENT = Decimal("0.01")
_RATE_UNIT = Decimal("0.000001")


class LibroIvaError(TfqError, ValueError):
    """A sale that cannot be written in AFIP's layout (names the invoice and the field)."""


def _check_layout(layout: tuple[FieldSpec, ...], length: int) -> None:
    total = sum(f.width for f in layout)
    if total != length:
        raise LibroIvaError(f"layout widths add up to {total}, not {length}")


_check_layout(CBTE_LAYOUT, CBTE_LENGTH)
_check_layout(ALICUOTA_LAYOUT, ALICUOTA_LENGTH)


def _label(sale: Sale) -> str:
    return f"{sale.tipo} {sale.punto_venta:05d}-{sale.numero:08d} (job {sale.job_id})"


def ascii_text(text: str) -> str:
    """`text` in printable ASCII: accents dropped (Pérez → Perez, Ñ → N), anything else
    that is not ASCII as '?'; whitespace runs as one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    out = "".join(c if " " <= c <= "~" else ("?" if not c.isspace() else " ") for c in plain)
    return " ".join(out.split())


def _format(spec: FieldSpec, value: Any, label: str) -> str:
    def too_long(shown: object) -> LibroIvaError:
        return LibroIvaError(f"{label}: {spec.name} {shown} does not fit in {spec.width} digits")

    if spec.kind == "text":
        text = ascii_text(str(value))[: spec.width]
        return text.ljust(spec.width)
    if spec.kind == "date":
        text = "0" * spec.width if value is None else value.strftime("%Y%m%d")
    elif spec.kind == "int":
        if int(value) < 0:
            raise LibroIvaError(f"{label}: {spec.name} is negative ({value})")
        text = str(int(value)).rjust(spec.width, "0")
    else:
        unit = _CENT if spec.kind == "amount" else _RATE_UNIT
        amount = Decimal(value).quantize(unit, rounding=ROUND_HALF_EVEN)
        if amount < 0:
            raise LibroIvaError(f"{label}: {spec.name} is negative ({value})")
        text = str(int(amount / unit)).rjust(spec.width, "0")
    if len(text) != spec.width:
        raise too_long(value)
    return text


def _record(layout: tuple[FieldSpec, ...], length: int, values: dict[str, Any], label: str) -> str:
    if set(values) != {f.name for f in layout}:
        raise LibroIvaError(f"{label}: fields {sorted(values)} are not the layout's")
    line = "".join(_format(spec, values[spec.name], label) for spec in layout)
    if len(line) != length:  # (each field is checked; this guards the table itself)
        raise LibroIvaError(f"{label}: record of {len(line)} characters, not {length}")
    return line


def _vat_rates(sale: Sale) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(rate, net, vat) of each VAT rate a letter with VAT informs, in AFIP's order."""
    if sale.letter not in LETTERS_WITH_VAT:
        return []
    s = sale.subtotals
    rates = [r for r in VAT_RATES if r in s.net] + sorted(set(s.net) - set(VAT_RATES))
    found = [(r, s.net[r], s.vat.get(r, Decimal(0))) for r in rates]
    return found or [(Decimal(0), Decimal(0), Decimal(0))]  # "en caso contrario '1'"


def _codigo_operacion(sale: Sale) -> str:
    if sale.letter == "E":
        return "X"
    if sale.subtotals.exento:
        return "E"
    if sale.subtotals.no_gravado:
        return "N"
    return " "


def _tributos(sale: Sale) -> dict[str, Decimal]:
    out = {name: Decimal(0) for name in ("percepciones_nacionales", "percepciones_iibb",
                                          "otros_tributos")}  # fmt: skip
    for tipo, amount in sale.tributos_by_tipo.items():
        out[TRIBUTO_FIELDS.get(tipo, "otros_tributos")] += amount
    return out


def comprobante_record(sale: Sale) -> str:
    """The sale's REGINFO_CV_VENTAS_CBTE line (266 characters, no line end)."""
    label = _label(sale)
    if sale.documento_tipo not in DOCUMENT_CODES:
        raise LibroIvaError(f"{label}: documento_tipo {sale.documento_tipo!r} has no AFIP code")
    if not sale.tipo_code:
        raise LibroIvaError(f"{label}: tipo {sale.tipo!r} has no AFIP tipo de comprobante")
    s = sale.subtotals
    exento = s.exento + (s.final if sale.letter == "E" else Decimal(0))
    values: dict[str, Any] = {
        "fecha": sale.fecha,
        "tipo_comprobante": sale.tipo_code,
        "punto_venta": sale.punto_venta,
        "numero_desde": sale.numero,
        "numero_hasta": sale.numero,
        "codigo_documento": DOCUMENT_CODES[sale.documento_tipo],
        "numero_documento": int(sale.documento_nro or 0),
        "denominacion": sale.razon_social,
        "importe_total": sale.total,
        "no_gravado": s.no_gravado,
        "percepcion_no_categorizados": Decimal(0),
        "exento": exento,
        "percepciones_municipales": Decimal(0),
        "impuestos_internos": sale.impuestos_internos,
        "moneda": sale.moneda,
        "tipo_cambio": sale.cotizacion,
        "cantidad_alicuotas": len(_vat_rates(sale)),
        "codigo_operacion": _codigo_operacion(sale),
        "fecha_vencimiento_pago": None,
        **_tributos(sale),
    }
    if len(sale.moneda) != 3:
        raise LibroIvaError(f"{label}: moneda {sale.moneda!r} is not a 3-character code")
    return _record(CBTE_LAYOUT, CBTE_LENGTH, values, label)


def alicuota_records(sale: Sale) -> list[str]:
    """The sale's REGINFO_CV_VENTAS_ALICUOTAS lines (62 characters each), one per VAT
    rate; none for letters without VAT (C) and exports (E)."""
    label = _label(sale)
    lines = []
    for rate, net, vat in _vat_rates(sale):
        if rate not in ALICUOTA_CODES:
            raise LibroIvaError(f"{label}: alicuota {rate}% has no AFIP code")
        values = {
            "tipo_comprobante": sale.tipo_code,
            "punto_venta": sale.punto_venta,
            "numero": sale.numero,
            "neto_gravado": net,
            "alicuota": ALICUOTA_CODES[rate],
            "impuesto_liquidado": vat,
        }
        lines.append(_record(ALICUOTA_LAYOUT, ALICUOTA_LENGTH, values, label))
    return lines


@dataclass(frozen=True)
class LibroIvaResult:
    """What `write_libro_iva` wrote; totals are per currency (amounts are as issued, in
    the comprobante's currency), credit notes counted apart."""

    comprobantes_path: Path
    alicuotas_path: Path
    comprobantes: int
    alicuotas: int
    totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "comprobantes_path": str(self.comprobantes_path),
            "alicuotas_path": str(self.alicuotas_path),
            "comprobantes": self.comprobantes,
            "alicuotas": self.alicuotas,
            "totals": {
                moneda: {k: str(v) for k, v in by.items()} for moneda, by in self.totals.items()
            },
        }


def file_names(cuit: str, period: date) -> tuple[str, str]:
    """`<CUIT>_<AAAAMM>_VENTAS_CBTE.txt` and `<CUIT>_<AAAAMM>_VENTAS_ALICUOTAS.txt`."""
    stem = f"{cuit}_{period:%Y%m}_VENTAS"
    return f"{stem}_CBTE.txt", f"{stem}_ALICUOTAS.txt"


def _write_atomically(path: Path, lines: list[str]) -> None:
    data = "".join(line + EOL for line in lines).encode(ENCODING)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_libro_iva(
    sales: Iterable[Sale], directory: Path, cuit: str, period: date
) -> LibroIvaResult:
    """Write the period's two files in `directory` (created if missing), each through a
    temporary file renamed into place. Every record is built before anything is written:
    a sale that does not fit raises `LibroIvaError` and leaves no file behind."""
    cbtes: list[str] = []
    alicuotas: list[str] = []
    totals: dict[str, dict[str, Decimal]] = {}
    for sale in sales:
        if sale.cuit != cuit:
            raise LibroIvaError(f"{_label(sale)}: issued by {sale.cuit}, not {cuit}")
        cbtes.append(comprobante_record(sale))
        alicuotas.extend(alicuota_records(sale))
        by = totals.setdefault(sale.moneda, {"facturas_y_debitos": _CENT * 0,
                                             "notas_de_credito": _CENT * 0})  # fmt: skip
        key = "notas_de_credito" if sale.sign < 0 else "facturas_y_debitos"
        by[key] = (by[key] + sale.total).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    directory.mkdir(parents=True, exist_ok=True)
    cbte_name, alicuota_name = file_names(cuit, period)
    cbte_path, alicuota_path = directory / cbte_name, directory / alicuota_name
    _write_atomically(cbte_path, cbtes)
    _write_atomically(alicuota_path, alicuotas)
    return LibroIvaResult(cbte_path, alicuota_path, len(cbtes), len(alicuotas), totals)
