"""API replies turned into normalized records (tusfacturas_api.md §4).

The API pads `cae`, `afip_qr` and `requiere_fec` with trailing spaces, writes dates as
dd/mm/aaaa, sends numbers as strings or numbers, and shows `comprobante_nro` in several
shapes. Everything downstream sees clean types.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_NRO_WITH_PDV = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,8})\s*$")
_NRO_ONLY = re.compile(r"^\s*(\d{1,8})\s*$")
_NRO_IN_TEXT = re.compile(r"\b(\d{4,5})-(\d{8})\b")


def clean_str(value: Any) -> str:
    """A trimmed string; None and non-strings become "" or their text."""
    if value is None:
        return ""
    return str(value).strip()


def parse_api_date(value: Any) -> date | None:
    """dd/mm/aaaa (optionally with a time) or yyyymmdd; None when empty or unreadable."""
    text = clean_str(value)
    if not text:
        return None
    for fmt in ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_int(value: Any) -> int | None:
    text = clean_str(value)
    if not text:
        return None
    try:
        return int(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def parse_decimal(value: Any) -> Decimal | None:
    text = clean_str(value)
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_comprobante_nro(value: Any, rta: Any = None) -> tuple[int | None, int | None]:
    """(punto_venta, numero) from "00003-00000074", "0000123" or, failing that, the `rta` text."""
    text = clean_str(value)
    m = _NRO_WITH_PDV.match(text)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = _NRO_ONLY.match(text)
    if m:
        return None, int(m.group(1))
    m = _NRO_IN_TEXT.search(clean_str(rta))
    if m:
        return int(m.group(1)), int(m.group(2))
    return None, None


def messages(value: Any) -> list[str]:
    """The API's `errores`: a list of strings, often padded with "" entries."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return [clean_str(value)]
    return [clean_str(v) for v in value if clean_str(v)]


def error_codes(body: dict[str, Any]) -> list[str]:
    """TusFacturas codes from `error_details[].code` and `error_cod`."""
    codes: list[str] = []
    details = body.get("error_details")
    if isinstance(details, list):
        codes += [clean_str(d.get("code")) for d in details if isinstance(d, dict)]
    cod = body.get("error_cod")
    if isinstance(cod, list):
        codes += [clean_str(c) for c in cod]
    return [c for c in codes if c]


@dataclass(frozen=True)
class IssuedInvoice:
    """An invoice the API confirmed as issued (or accepted, on a test PDV)."""

    cae: str
    cae_vencimiento: date | None
    tipo: str | None
    punto_venta: int | None
    numero: int | None
    pdf_url: str
    ticket_url: str
    afip_qr: str
    observaciones: str
    external_reference: str
    requiere_fec: bool | None
    test_mode: bool = False
    fecha: date | None = None
    total: Decimal | None = None
    documento_nro: str | None = None
    vencimiento_pago: date | None = None
    # The micrositio links ("cliente", "descarga"): unlike the PDF link, they do not change
    # (referencia-api-afip-arca.md), when the account has micrositios enabled.
    micrositios: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("cae_vencimiento", "fecha", "vencimiento_pago"):
            out[key] = out[key].isoformat() if out[key] else None
        out["total"] = str(self.total) if self.total is not None else None
        return out


def issued_from_reply(body: dict[str, Any], *, test_mode: bool = False) -> IssuedInvoice:
    """The normalized record of a `nuevo` reply or one `lotes` item."""
    pv, numero = parse_comprobante_nro(body.get("comprobante_nro"), body.get("rta"))
    fec = clean_str(body.get("requiere_fec")).upper()
    return IssuedInvoice(
        cae=clean_str(body.get("cae")),
        cae_vencimiento=parse_api_date(body.get("vencimiento_cae") or body.get("cae_vencimiento")),
        tipo=clean_str(body.get("comprobante_tipo")) or None,
        punto_venta=pv,
        numero=numero,
        pdf_url=clean_str(body.get("comprobante_pdf_url")),
        ticket_url=clean_str(body.get("comprobante_ticket_url")),
        afip_qr=clean_str(body.get("afip_qr")),
        observaciones=_observaciones(body.get("observaciones")),
        external_reference=clean_str(body.get("external_reference")),
        requiere_fec={"SI": True, "NO": False}.get(fec),
        test_mode=test_mode,
        vencimiento_pago=parse_api_date(body.get("vencimiento_pago")),
        micrositios=_links(body.get("micrositios")),
    )


def issued_from_consulta(body: dict[str, Any], *, test_mode: bool = False) -> IssuedInvoice:
    """The normalized record of a `consulta` reply (`comprobante` block with numbers)."""
    comp = body.get("comprobante") if isinstance(body.get("comprobante"), dict) else {}
    assert isinstance(comp, dict)
    cliente = body.get("cliente") if isinstance(body.get("cliente"), dict) else {}
    assert isinstance(cliente, dict)
    return IssuedInvoice(
        cae=clean_str(comp.get("cae")),
        cae_vencimiento=parse_api_date(comp.get("vencimiento_cae")),
        tipo=clean_str(comp.get("tipo")) or None,
        punto_venta=parse_int(comp.get("punto_venta")),
        numero=parse_int(comp.get("numero")),
        pdf_url=clean_str(comp.get("comprobante_pdf_url")),
        ticket_url=clean_str(comp.get("comprobante_ticket_url")),
        afip_qr=clean_str(comp.get("afip_qr")),
        observaciones=_observaciones(comp.get("observaciones"))
        or clean_str(comp.get("afip_observaciones")),
        external_reference=clean_str(comp.get("external_reference")),
        requiere_fec=None,
        test_mode=test_mode,
        fecha=parse_api_date(comp.get("fecha")),
        total=parse_decimal(comp.get("total")),
        documento_nro=clean_str(cliente.get("documento_nro")) or None,
        vencimiento_pago=parse_api_date(comp.get("vencimiento_pago")),
        micrositios=_links(comp.get("micrositios")),
        extra={"status": clean_str(comp.get("status"))},
    )


def _links(value: Any) -> dict[str, str]:
    """Non-empty http(s) links of a `micrositios` block ("url-del-micrositio" in the docs'
    examples is a placeholder, not a link)."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for key, link in value.items():
        text = clean_str(link)
        if text.startswith(("https://", "http://")):
            out[str(key)] = text
    return out


def _observaciones(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(clean_str(v) for v in value if clean_str(v))
    return clean_str(value)
