"""The endpoints that issue nothing: numeracion, consulta, consulta_avanzada,
estado_servicios, and regenerar_pdf (new links to an issued invoice's PDF)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from ops.sandbox.afip import Afip
from ops.sandbox.api import (
    CONSULTA,
    CONSULTA_AVANZADA,
    CONSULTA_AVANZADA_MAX_LIMIT,
    NUMERACION,
    REGENERAR_PDF,
    Reply,
    bad,
)
from ops.sandbox.dates import parse_date
from ops.sandbox.dialect import Dialect
from ops.sandbox.invoice import NOT_VALID_TIPOS, TIPO_CODES, int_field, punto_venta_of
from ops.sandbox.texts import afip_down_text
from worker.tenants import Pdv


@dataclass(slots=True)
class Stored:
    """One issued comprobante, as consulta and consulta_avanzada answer it."""

    cliente: dict[str, Any]
    comprobante: dict[str, Any]
    fecha: date
    index: int  # its place in the ledger: the order of issue
    external_reference: str
    tipo: str
    numero: int


class Archive:
    """Every comprobante issued, by its number and by (CUIT, punto de venta)."""

    def __init__(self) -> None:
        self._by_number: dict[tuple[str, int, str, int], Stored] = {}
        self._by_pdv: dict[tuple[str, int], list[Stored]] = {}

    def add(self, cuit: str, punto_venta: int, stored: Stored) -> None:
        self._by_number[(cuit, punto_venta, stored.tipo, stored.numero)] = stored
        self._by_pdv.setdefault((cuit, punto_venta), []).append(stored)

    def find(self, cuit: str, punto_venta: int, tipo: str, numero: int) -> Stored | None:
        return self._by_number.get((cuit, punto_venta, tipo, numero))

    def of_pdv(self, cuit: str, punto_venta: int) -> list[Stored]:
        return self._by_pdv.get((cuit, punto_venta), [])


def answer_query(
    endpoint: str,
    body: dict[str, Any],
    cuit: str,
    pdv: Pdv,
    *,
    afip: Afip,
    archive: Archive,
    dialect: Dialect,
    afip_down: bool,
    links: Callable[[str, int], tuple[str, str]],
) -> Reply:
    """The reply of a query endpoint to an authenticated body; raises Rejection.
    `links(tipo, numero)` gives an issued invoice fresh PDF and ticket links."""
    if endpoint == NUMERACION:
        return _numeracion(body, cuit, pdv, afip, dialect)
    if endpoint == CONSULTA:
        return _consulta(body, cuit, pdv, archive, dialect)
    if endpoint == CONSULTA_AVANZADA:
        return _consulta_avanzada(body, cuit, pdv, archive, dialect)
    if endpoint == REGENERAR_PDF:
        return _regenerar_pdf(body, cuit, pdv, archive, links)
    return _alertas(afip_down)


def _query_comp(body: dict[str, Any], pdv: Pdv, need_pv: bool = True) -> dict[str, Any]:
    comp = body.get("comprobante")
    if not isinstance(comp, dict):
        raise bad("Debe enviar el bloque comprobante.")
    if need_pv or comp.get("punto_venta") not in (None, ""):
        punto_venta_of(comp, pdv)
    return comp


def _tipo(comp: dict[str, Any]) -> str:
    tipo = comp.get("tipo")
    if not isinstance(tipo, str) or (
        tipo.strip() not in TIPO_CODES and tipo.strip() not in NOT_VALID_TIPOS
    ):
        raise bad(f"El tipo de comprobante {tipo} no es valido.")
    return tipo.strip()


def _numeracion(body: dict[str, Any], cuit: str, pdv: Pdv, afip: Afip, dialect: Dialect) -> Reply:
    comp = _query_comp(body, pdv)
    tipo = _tipo(comp)
    last, _ = afip.last_issued(cuit, pdv.punto_venta, tipo)
    # The newest page: "el último número de comprobante emitido" (0: none yet).
    nxt = last if dialect.numeracion == "last" else last + 1
    return Reply(
        200,
        {
            "error": "N",
            "errores": [""],
            "rta": "OK",
            "comprobante": {
                "tipo": tipo,
                "operacion": "V",
                "punto_venta": pdv.punto_venta,
                "numero": nxt,
            },
        },
    )


def _consulta(
    body: dict[str, Any], cuit: str, pdv: Pdv, archive: Archive, dialect: Dialect
) -> Reply:
    comp = _query_comp(body, pdv)
    tipo = _tipo(comp)
    numero = int_field(comp.get("numero"), "comprobante.numero")
    stored = archive.find(cuit, pdv.punto_venta, tipo, numero)
    if stored is None:
        raise bad(
            dialect.not_found_text
            or f"El comprobante {tipo} {pdv.punto_venta:05d}-{numero:08d} no existe.",
            "TFC-8404",
        )
    return Reply(
        200,
        {
            "error": "N",
            "errores": [""],
            "rta": "OK",
            "cliente": stored.cliente,
            "comprobante": stored.comprobante,
        },
    )


def _consulta_avanzada(
    body: dict[str, Any], cuit: str, pdv: Pdv, archive: Archive, dialect: Dialect
) -> Reply:
    kind = body.get("busqueda_tipo")
    if kind not in ("F", "TN", "EXT_REF"):
        raise bad("El campo busqueda_tipo debe ser F, TN o EXT_REF.")
    pagina = int_field(body.get("pagina"), "pagina", default=0)
    limite = int_field(body.get("limite"), "limite", default=CONSULTA_AVANZADA_MAX_LIMIT)
    if pagina < 0 or not 1 <= limite <= CONSULTA_AVANZADA_MAX_LIMIT:
        raise bad(
            f"El campo limite debe estar entre 1 y {CONSULTA_AVANZADA_MAX_LIMIT} y pagina "
            "debe ser mayor o igual a 0."
        )
    comp = _query_comp(body, pdv, need_pv=False)
    rows = archive.of_pdv(cuit, pdv.punto_venta)
    if kind == "F":
        fecha = parse_date(comp.get("fecha"))
        if fecha is None:
            raise bad("El campo comprobante.fecha debe tener el formato dd/mm/aaaa.")
        found = [s for s in rows if s.fecha == fecha]
    elif kind == "TN":
        tipo = _tipo(comp)
        desde = int_field(comp.get("numero_desde"), "comprobante.numero_desde", default=1)
        hasta = int_field(comp.get("numero_hasta"), "comprobante.numero_hasta", default=99_999_999)
        found = [s for s in rows if s.tipo == tipo and desde <= s.numero <= hasta]
    else:
        ref = comp.get("external_reference")
        if not isinstance(ref, str) or not ref:
            raise bad("El campo comprobante.external_reference es obligatorio.")
        found = [s for s in rows if s.external_reference == ref]
    found.sort(key=lambda s: (s.fecha, s.index), reverse=True)
    if not found and dialect.not_found_text:
        raise bad(dialect.not_found_text, "TFC-8404")
    page = found[pagina * limite : (pagina + 1) * limite]
    return Reply(
        200,
        {
            "rta": "OK",
            "error": "N",
            "total": len(found),
            "errores": [],
            "comprobantes": [{"cliente": s.cliente, "comprobante": s.comprobante} for s in page],
        },
    )


def _regenerar_pdf(
    body: dict[str, Any],
    cuit: str,
    pdv: Pdv,
    archive: Archive,
    links: Callable[[str, int], tuple[str, str]],
) -> Reply:
    comp = _query_comp(body, pdv)
    tipo = _tipo(comp)
    numero = int_field(comp.get("numero"), "comprobante.numero")
    if archive.find(cuit, pdv.punto_venta, tipo, numero) is None:
        raise bad(
            f"El comprobante {tipo} {pdv.punto_venta:05d}-{numero:08d} no existe.", "TFC-8404"
        )
    pdf, ticket = links(tipo, numero)
    return Reply(200, {"error": "N", "comprobante_pdf_url": pdf, "comprobante_ticket_url": ticket})


def _alertas(afip_down: bool) -> Reply:
    if afip_down:
        return Reply(
            200,
            {
                "error": "S",
                "errores": [],
                "facturacion": afip_down_text(),
                "novedades": "",
                "rta": "ERROR",
                "prox_mantenimientos_programados": [],
            },
        )
    return Reply(
        200,
        {
            "error": "N",
            "errores": [""],
            "rta": "OK",
            "facturacion": "OK",
            "novedades": "",
            "prox_mantenimientos_programados": [],
        },
    )
