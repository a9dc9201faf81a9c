"""The API's enumerations (tusfacturas_api.md §3.9) and AFIP letter rules (afip_rules.md §1, §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone
from decimal import Decimal

# AFIP's clock: every date the API shows and every date rule ("N") is Argentina time.
ARGENTINA_TZ = timezone(timedelta(hours=-3))  # no DST since 2009


@dataclass(frozen=True, slots=True)
class TipoInfo:
    """What a `comprobante.tipo` string means."""

    letter: str  # A, B, C, M, E, or "" for types not valid at AFIP
    kind: str  # factura, nota_debito, nota_credito, recibo, no_valida
    fce: bool = False

    @property
    def is_note(self) -> bool:
        return self.kind in ("nota_debito", "nota_credito")

    @property
    def batchable(self) -> bool:
        """`facturacion/lotes` takes neither type E nor FCE (tusfacturas_api.md §6.1)."""
        return self.letter != "E" and not self.fce and self.kind not in ("no_valida", "liquidacion")


def _build_tipos() -> dict[str, TipoInfo]:
    tipos: dict[str, TipoInfo] = {}
    for letter in "ABCME":
        tipos[f"FACTURA {letter}"] = TipoInfo(letter, "factura")
        tipos[f"NOTA DE DEBITO {letter}"] = TipoInfo(letter, "nota_debito")
        tipos[f"NOTA DE CREDITO {letter}"] = TipoInfo(letter, "nota_credito")
    tipos["RECIBO C"] = TipoInfo("C", "recibo")
    # Liquidaciones A (63) and B (64): `api-factura-electronica-arca-liquidaciones-a-63.md`.
    tipos["LIQUIDACIONES A"] = TipoInfo("A", "liquidacion")
    tipos["LIQUIDACIONES B"] = TipoInfo("B", "liquidacion")
    tipos["FACTURA NO VALIDA EN AFIP"] = TipoInfo("", "no_valida")
    tipos["NOTA DE CREDITO NO VALIDA EN AFIP"] = TipoInfo("", "no_valida")
    # Not AFIP documents, sent to facturacion/nuevo all the same ("solo instantánea").
    tipos["REMITO"] = TipoInfo("", "no_valida")
    tipos["PRESUPUESTO"] = TipoInfo("", "no_valida")
    for letter in "ABC":
        tipos[f"FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) {letter}"] = TipoInfo(
            letter, "factura", fce=True
        )
        tipos[f"NOTA DE DEBITO ELECTRONICA MiPyME (FCE) {letter}"] = TipoInfo(
            letter, "nota_debito", fce=True
        )
        tipos[f"NOTA DE CREDITO ELECTRONICA MiPyME (FCE) {letter}"] = TipoInfo(
            letter, "nota_credito", fce=True
        )
    return tipos


TIPOS: dict[str, TipoInfo] = _build_tipos()

# AFIP CbteTipo codes (afip_rules.md §1.1): the tipos the API knows; the QR payload's tipoCmp.
AFIP_TIPO_CODES: dict[str, int] = {
    "FACTURA A": 1,
    "NOTA DE DEBITO A": 2,
    "NOTA DE CREDITO A": 3,
    "FACTURA B": 6,
    "NOTA DE DEBITO B": 7,
    "NOTA DE CREDITO B": 8,
    "FACTURA C": 11,
    "NOTA DE DEBITO C": 12,
    "NOTA DE CREDITO C": 13,
    "RECIBO C": 15,
    "FACTURA M": 51,
    "NOTA DE DEBITO M": 52,
    "NOTA DE CREDITO M": 53,
    "FACTURA E": 19,
    "NOTA DE DEBITO E": 20,
    "NOTA DE CREDITO E": 21,
    "LIQUIDACIONES A": 63,
    "LIQUIDACIONES B": 64,
    "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) A": 201,
    "NOTA DE DEBITO ELECTRONICA MiPyME (FCE) A": 202,
    "NOTA DE CREDITO ELECTRONICA MiPyME (FCE) A": 203,
    "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) B": 206,
    "NOTA DE DEBITO ELECTRONICA MiPyME (FCE) B": 207,
    "NOTA DE CREDITO ELECTRONICA MiPyME (FCE) B": 208,
    "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) C": 211,
    "NOTA DE DEBITO ELECTRONICA MiPyME (FCE) C": 212,
    "NOTA DE CREDITO ELECTRONICA MiPyME (FCE) C": 213,
}

DOCUMENTO_TIPOS = frozenset({"CUIT", "CUIL", "CDI", "DNI", "PASAPORTE", "OTRO"})

CONDICIONES_IVA = {
    "CF": "consumidor final",
    "RI": "responsable inscripto",
    "M": "monotributo",
    "E": "exento",
    "CDEX": "cliente del exterior",
    "IVNA": "IVA no alcanzado",
}

# Receptor conditions each letter may be issued to (RG 5616 table, afip_rules.md §6;
# TusFacturas TFC-8004). A and "A con leyenda" (M) go to RI and monotributistas only;
# B never goes to them; C goes to anyone; E is export, to foreign customers.
LETTER_RECEPTORS: dict[str, frozenset[str]] = {
    "A": frozenset({"RI", "M"}),
    "M": frozenset({"RI", "M"}),
    "B": frozenset({"CF", "E", "CDEX", "IVNA"}),
    "C": frozenset(CONDICIONES_IVA),
    "E": frozenset({"CDEX"}),
    "": frozenset(CONDICIONES_IVA),
}

# Condiciones de venta 201 to 217 (216 MercadoPago, 217 Payway: the newest table,
# `parametros/tablas-de-referencia.md`).
CONDICIONES_PAGO = frozenset(range(201, 218))
CONDICION_PAGO_OTRA = 214
PROVINCIAS = frozenset(range(1, 27))

# The docs' table of monedas (`parametros/tablas-de-referencia.md`), and nothing else.
MONEDAS = {
    "PES": "Peso argentino",
    "DOL": "Dólar estadounidense",
    "060": "Euro",
    "012": "Real",
    "011": "Peso uruguayo",
    "033": "Peso chileno",
    "032": "Peso colombiano",
    "031": "Peso boliviano",
    "035": "Sol peruano",
    "010": "Peso mexicano",
    "023": "Bolívar venezolano",
    "036": "Sucre ecuatoriano",
    "004": "Lira italiana",
    "003": "Franco francés",
}

# Item `alicuota`: VAT percent, or -1 exento, -2 no gravado (tusfacturas_api.md §3.3).
ALICUOTAS = frozenset(Decimal(x) for x in ("27", "21", "10.5", "0", "-1", "-2"))

# Tributo `tipo` and the `regimen` values each takes (`parametros/tablas-de-referencia.md`,
# "Tipos de percepción a aplicar" and "Régimen de percepción"): 6 percepciones IVA,
# 7 percepciones IIBB (one regimen per province), 1 percepciones de impuestos nacionales.
TRIBUTO_REGIMENES: dict[int, frozenset[int]] = {
    6: frozenset({1, 2, 3}),
    7: frozenset(range(4, 29)),
    1: frozenset({31, 32, 33, 34}),
}
TRIBUTO_TIPOS = frozenset(TRIBUTO_REGIMENES)

# Letters whose prices are sent without VAT and get VAT added from `alicuota`.
LETTERS_WITH_VAT = frozenset({"A", "B", "M"})
