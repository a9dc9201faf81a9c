"""Reading an invoice request: the TusFacturas-side checks of a `nuevo` body or `lotes` items.

Nothing here looks at AFIP's state (numbering, dates against today): see `ops.sandbox.afip`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ops.sandbox.api import LOTES_MAX_REQUESTS, Rejection, bad
from ops.sandbox.dates import parse_date
from worker.tenants import Pdv

_TWO_PLACES = Decimal("0.01")
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_VAT_21 = Decimal("1.21")
_ALICUOTAS = frozenset(Decimal(a) for a in ("27", "21", "10.5", "5", "2.5", "0", "-1", "-2"))
_EXT_REF_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")

# AFIP CbteTipo codes (afip_rules.md §1.1): the tipos the API knows; the QR payload's tipoCmp.
TIPO_CODES: dict[str, int] = {
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
NOT_VALID_TIPOS = frozenset({"FACTURA NO VALIDA EN AFIP", "NOTA DE CREDITO NO VALIDA EN AFIP"})


def decimal_field(value: Any, path: str) -> Decimal:
    """A required finite number of a request, exactly (no float rounding)."""
    if isinstance(value, bool) or value is None:
        raise bad(f"El campo {path} es obligatorio y debe ser numerico.")
    try:
        number = Decimal(value) if isinstance(value, int | str) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise bad(f"El campo {path} debe ser numerico.") from None
    if not number.is_finite():
        raise bad(f"El campo {path} debe ser numerico.")
    return number


def int_field(value: Any, path: str, default: int | None = None) -> int:
    """An integer field of a request (digits in a string too); `default` when absent."""
    if (value is None or value == "") and default is not None:
        return default
    if isinstance(value, bool):
        raise bad(f"El campo {path} debe ser un numero entero.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise bad(f"El campo {path} debe ser un numero entero.")


def punto_venta_of(comp: dict[str, Any], pdv: Pdv, *, rule: str | None = None) -> int:
    """`comprobante.punto_venta`, refused (PDV) unless it is the credentials' own."""
    pv = int_field(comp.get("punto_venta"), "comprobante.punto_venta")
    if pv != pdv.punto_venta:
        raise Rejection(
            f"El punto de venta {pv} no corresponde a las credenciales enviadas "
            f"(punto de venta {pdv.punto_venta}).",
            "PDV",
            rule=rule,
        )
    return pv


def _date_field(comp: dict[str, Any], key: str, required: bool) -> date | None:
    raw = comp.get(key)
    if raw is None or raw == "":
        if required:
            raise bad(f"El campo comprobante.{key} es obligatorio (formato dd/mm/aaaa).")
        return None
    parsed = parse_date(raw)
    if parsed is None:
        raise bad(f"El campo comprobante.{key} debe tener el formato dd/mm/aaaa.")
    return parsed


def expected_total(comp: dict[str, Any], letter: str) -> Decimal:
    """An independent total from the items (A/B/M: net + VAT; C: final prices).

    Net per item = cantidad x precio_unitario_sin_iva x (1 - bonificacion_porcentaje/100);
    VAT by alicuota (-1, -2, 0: none); minus comprobante.bonificacion (x 1.21 when there are
    21 % items); plus tributos[].total and impuestos_internos; round half even to 2 places.
    """
    detalle = comp.get("detalle")
    if not isinstance(detalle, list) or not detalle:
        raise bad("El campo comprobante.detalle es obligatorio y debe tener al menos un item.")
    with_vat = letter != "C"
    net = Decimal(0)
    vat = Decimal(0)
    has_21 = False
    for i, item in enumerate(detalle):
        if not isinstance(item, dict) or not isinstance(item.get("producto"), dict):
            raise bad(f"El item {i} de comprobante.detalle debe tener un bloque producto.")
        prod = item["producto"]
        qty = decimal_field(item.get("cantidad"), f"detalle[{i}].cantidad")
        price = decimal_field(
            prod.get("precio_unitario_sin_iva"), f"detalle[{i}].producto.precio_unitario_sin_iva"
        )
        if qty <= 0 or price < 0:
            raise bad(f"El item {i} de comprobante.detalle tiene cantidad o precio invalidos.")
        line = qty * price
        discount = item.get("bonificacion_porcentaje")
        if discount not in (None, "", 0):
            pct = decimal_field(discount, f"detalle[{i}].bonificacion_porcentaje")
            line = line * (_ONE - pct / _HUNDRED)
        net += line
        if with_vat:
            rate = decimal_field(prod.get("alicuota"), f"detalle[{i}].producto.alicuota")
            if rate not in _ALICUOTAS:
                raise bad(f"La alicuota {rate} del item {i} no es valida.")
            if rate > 0:
                vat += line * rate / _HUNDRED
                if rate == 21:
                    has_21 = True
    total = net + vat
    bonificacion = comp.get("bonificacion")
    if bonificacion not in (None, "", 0):
        amount = decimal_field(bonificacion, "comprobante.bonificacion")
        total -= amount * _VAT_21 if has_21 else amount
    tributos = comp.get("tributos")
    if tributos:
        if not isinstance(tributos, list):
            raise bad("El campo comprobante.tributos debe ser una lista.")
        for i, trib in enumerate(tributos):
            if not isinstance(trib, dict):
                raise bad(f"El tributo {i} debe ser un objeto.")
            total += decimal_field(trib.get("total"), f"tributos[{i}].total")
    internos = comp.get("impuestos_internos")
    if internos not in (None, "", 0):
        total += decimal_field(internos, "comprobante.impuestos_internos")
    return total.quantize(_TWO_PLACES, rounding=ROUND_HALF_EVEN)


@dataclass(slots=True)
class Invoice:
    """One parsed invoice request (a `nuevo` body or one `lotes` item)."""

    cliente: dict[str, Any]
    comp: dict[str, Any]
    tipo: str
    letter: str
    punto_venta: int
    numero: int  # 0 = "the next one"
    fecha: date
    vencimiento: date | None
    desde: date | None
    hasta: date | None
    total: Decimal
    expected: Decimal
    external_reference: str
    documento_tipo: str
    documento_nro: str

    @property
    def services(self) -> bool:
        return self.desde is not None


def parse_invoice(item: Any, pdv: Pdv, *, batch: bool = False) -> Invoice:
    """TusFacturas-side checks of one invoice request; raises Rejection."""
    if not isinstance(item, dict):
        raise bad("El comprobante enviado debe ser un objeto JSON.")
    cliente = item.get("cliente")
    comp = item.get("comprobante")
    if not isinstance(cliente, dict):
        raise bad("Debe enviar el bloque cliente.")
    if not isinstance(comp, dict):
        raise bad("Debe enviar el bloque comprobante.")
    ext = comp.get("external_reference")
    ext = "" if ext is None else str(ext)
    if ext and not _EXT_REF_RE.fullmatch(ext):
        raise Rejection(
            "La referencia externa (external_reference) posee caracteres no validos: solo se "
            "permiten letras, numeros, guion medio y guion bajo, hasta 255 caracteres.",
            "TFC-8002",
        )
    tipo = comp.get("tipo")
    if not isinstance(tipo, str) or not tipo.strip():
        raise bad("El campo comprobante.tipo es obligatorio.")
    tipo = tipo.strip()
    if tipo in NOT_VALID_TIPOS:
        raise Rejection(f"El sandbox no emite comprobantes de tipo {tipo}.", "TFC-8003")
    if tipo not in TIPO_CODES:
        raise bad(f"El tipo de comprobante {tipo} no es valido.")
    letter = tipo[-1]
    if letter == "E":
        raise Rejection(
            f"El sandbox no emite comprobantes de tipo E ({tipo}): no estan soportados.",
            "TFC-8003",
        )
    if batch and "(FCE)" in tipo:
        raise Rejection(
            "No se pueden enviar comprobantes de tipo E ni de Factura de credito electronica "
            "(FCE) en la facturacion por lotes.",
            "TFC-8003",
        )
    operacion = comp.get("operacion", "V")
    if operacion != "V":
        raise bad("El sandbox solo emite comprobantes de venta (operacion V).")
    # Invoicing with another punto de venta's credentials breaks a rule; querying does not.
    pv = punto_venta_of(comp, pdv, rule="credentials")
    numero = int_field(comp.get("numero"), "comprobante.numero", default=0)
    if numero < 0 or numero > 99_999_999:
        raise bad("El campo comprobante.numero debe tener hasta 8 digitos.")
    fecha = _date_field(comp, "fecha", required=True)
    assert fecha is not None
    vencimiento = _date_field(comp, "vencimiento", required=False)
    desde = _date_field(comp, "periodo_facturado_desde", required=False)
    hasta = _date_field(comp, "periodo_facturado_hasta", required=False)
    if (desde is None) != (hasta is None):
        raise bad(
            "Los campos periodo_facturado_desde y periodo_facturado_hasta deben enviarse juntos."
        )
    total = decimal_field(comp.get("total"), "comprobante.total")
    if total <= 0:
        raise bad("El campo comprobante.total debe ser positivo.")
    expected = expected_total(comp, letter)
    doc_nro = cliente.get("documento_nro")
    return Invoice(
        cliente=cliente,
        comp=comp,
        tipo=tipo,
        letter=letter,
        punto_venta=pv,
        numero=numero,
        fecha=fecha,
        vencimiento=vencimiento,
        desde=desde,
        hasta=hasta,
        total=total,
        expected=expected,
        external_reference=ext,
        documento_tipo=str(cliente.get("documento_tipo") or ""),
        documento_nro="" if doc_nro is None else str(doc_nro).strip(),
    )


def parse_lotes(body: dict[str, Any], pdv: Pdv) -> list[Invoice]:
    """TusFacturas-side checks of a `lotes` body: its structure, then each item."""
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise Rejection(
            "El lote no contiene requests. El lote no se procesara.", "TFC-8010", rule="lotes"
        )
    if len(requests) > LOTES_MAX_REQUESTS:
        raise Rejection(
            f"Esta enviando {len(requests)} requests, cuando el limite permitido es "
            f"{LOTES_MAX_REQUESTS}. El lote no se procesara.",
            "TFC-8010",
            rule="lotes",
        )
    creds = pdv.credentials()
    invoices: list[Invoice] = []
    for row, item in enumerate(requests):
        where = f"El comprobante enviado en la fila {row} (comenzando en 0)"
        if isinstance(item, dict):
            for key in ("apikey", "apitoken", "usertoken"):
                if key in item and str(item[key]) != creds[key]:
                    raise Rejection(
                        f"{where} tiene credenciales distintas a las del lote. "
                        "El lote no se procesara.",
                        "AUTH",
                        rule="credentials",
                    )
        try:
            inv = parse_invoice(item, pdv, batch=True)
        except Rejection as rej:
            rule = rej.rule or "lotes"
            raise Rejection(
                f"{where}: {rej.text} El lote no se procesara.", rej.code, rule=rule
            ) from None
        if invoices and inv.tipo != invoices[0].tipo:
            raise Rejection(
                f"{where} tiene un tipo de comprobante diferente.", "TFC-8010", rule="lotes"
            )
        if inv.numero <= 0:
            raise Rejection(
                f"{where} debe tener el numero de comprobante informado.",
                "TFC-8010",
                rule="lotes",
            )
        if invoices:
            prev = invoices[-1]
            if inv.fecha < prev.fecha or inv.numero != prev.numero + 1:
                raise Rejection(
                    f"{where} no respeta el orden: los comprobantes deben enviarse ordenados "
                    "por fecha y por numero ascendente y consecutivo. El lote no se procesara.",
                    "TFC-8010",
                    rule="lotes",
                )
        invoices.append(inv)
    return invoices
