"""AFIP's side of the sandbox: what it remembers per CUIT and the rules it applies with it.

The per-CUIT gap and block (afip_rules.md §2), the numbering and the date windows (§3),
the total re-check, and the CAE's QR link. The sandbox keeps its own copy of these rules
on purpose: it is the oracle tfq is tested against, so it never imports them from `worker`.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ops.sandbox.api import Rejection
from ops.sandbox.dates import AR_TZ, fmt_date
from ops.sandbox.dialect import Dialect
from ops.sandbox.faults import Faults
from ops.sandbox.invoice import TIPO_CODES, Invoice
from ops.sandbox.texts import (
    MSG_10032,
    MSG_10036,
    MSG_WINDOW_GOODS,
    MSG_WINDOW_GOODS_MONTH,
    MSG_WINDOW_SERVICES,
    block_text,
    msg_10016,
    msg_rejected,
)

CAE_BASE = 75_000_000_000_000  # 14 digits; CAEs are CAE_BASE + a process-wide counter
_TOTAL_TOLERANCE = Decimal("0.01")
_ONE = Decimal(1)
_DOC_CODES = {"CUIT": 80, "CUIL": 86, "CDI": 87, "PASAPORTE": 94, "DNI": 96, "OTRO": 99}


class Afip:
    """Per-CUIT memory: the numbering of each (CUIT, punto de venta, tipo), the last call."""

    def __init__(self) -> None:
        # (cuit, punto_venta, tipo) -> (last numero issued, latest fecha issued)
        self._numbering: dict[tuple[str, int, str], tuple[int, date]] = {}
        self._last_invoicing: dict[str, float] = {}

    def last_issued(self, cuit: str, punto_venta: int, tipo: str) -> tuple[int, date | None]:
        """The last numero issued (0: none yet) and the latest fecha issued (None: none)."""
        return self._numbering.get((cuit, punto_venta, tipo), (0, None))

    def next_numero(self, cuit: str, punto_venta: int, tipo: str, fecha: date) -> int:
        """Consume the next numero for an invoice of that fecha."""
        key = (cuit, punto_venta, tipo)
        last, latest = self._numbering.get(key, (0, fecha))
        self._numbering[key] = (last + 1, max(latest, fecha))
        return last + 1

    def gap(
        self,
        cuit: str,
        arrival: float,
        *,
        gap_seconds: float,
        block_seconds: float,
        blocked_cuits: dict[str, datetime],
    ) -> Rejection | None:
        """The per-CUIT gap and AFIP block; a call that passes is the new reference.

        `blocked_cuits` (the faults' own, so a block can also be set by hand) gains the
        CUIT when it breaks the gap and loses it once the block is over.
        """
        blocked = blocked_cuits.get(cuit)
        if blocked is not None:
            until = blocked.timestamp()
            if arrival < until:
                return Rejection(
                    block_text(cuit, until - arrival),
                    "AFIP-BLOQUEO",
                    rule="blocked",
                    detail=f"invoicing call while blocked ({until - arrival:.3f}s left)",
                    outcome="blocked",
                )
            del blocked_cuits[cuit]
        gap = gap_seconds
        last = self._last_invoicing.get(cuit)
        if gap > 0 and last is not None and arrival - last < gap:
            block = block_seconds
            if block > 0:
                blocked_cuits[cuit] = datetime.fromtimestamp(arrival + block, AR_TZ)
            return Rejection(
                block_text(cuit, block),
                "AFIP-BLOQUEO",
                rule="gap",
                detail=(
                    f"invoicing call {arrival - last:.3f}s after the previous one "
                    f"(gap {gap:g}s); CUIT blocked for {block:g}s"
                ),
                outcome="blocked",
            )
        self._last_invoicing[cuit] = arrival
        return None

    def check(
        self, inv: Invoice, cuit: str, today: date, *, dialect: Dialect, faults: Faults
    ) -> Rejection | None:
        """Rules 3-5 and the reject pattern against the current numbering."""
        if abs(inv.expected - inv.total) > _TOTAL_TOLERANCE:
            return Rejection(
                f"El total enviado ({inv.total}) no coincide con el total calculado a partir de "
                f"los items ({inv.expected}). El comprobante no fue generado.",
                "TFC-8005",
                rule="total",
                detail=f"sent total {inv.total}, computed {inv.expected}",
            )
        last_numero, last_fecha = self.last_issued(cuit, inv.punto_venta, inv.tipo)
        if inv.numero and inv.numero != last_numero + 1:
            return Rejection(
                msg_10016(dialect),
                "AFIP-10016",
                rule="numbering",
                detail=(
                    f"{inv.tipo} {inv.punto_venta:05d}: numero {inv.numero} sent, "
                    f"next is {last_numero + 1}"
                ),
            )
        if last_fecha is not None and inv.fecha < last_fecha:
            return Rejection(
                msg_10016(dialect),
                "AFIP-10016",
                rule="numbering",
                detail=(
                    f"{inv.tipo} {inv.punto_venta:05d}: fecha {fmt_date(inv.fecha)} before "
                    "the last issued "
                    f"{fmt_date(last_fecha)}"
                ),
            )
        offset = (inv.fecha - today).days
        if inv.services:
            if not -10 <= offset <= 10:
                return Rejection(
                    MSG_WINDOW_SERVICES,
                    "AFIP-10016",
                    rule="date",
                    detail=(
                        f"services fecha {fmt_date(inv.fecha)} outside N-10..N+10 "
                        f"(N={fmt_date(today)})"
                    ),
                )
        elif not -5 <= offset <= 5:
            return Rejection(
                MSG_WINDOW_GOODS,
                "AFIP-10016",
                rule="date",
                detail=f"goods fecha {fmt_date(inv.fecha)} outside N-5..N+5 (N={fmt_date(today)})",
            )
        elif offset > 0 and (inv.fecha.year, inv.fecha.month) != (today.year, today.month):
            return Rejection(
                MSG_WINDOW_GOODS_MONTH,
                "AFIP-10152",
                rule="date",
                detail=(
                    f"goods fecha {fmt_date(inv.fecha)} in the future, not in the month of "
                    f"N={fmt_date(today)}"
                ),
            )
        if inv.vencimiento is not None and inv.vencimiento < inv.fecha:
            return Rejection(
                MSG_10036,
                "AFIP-10036",
                rule="date",
                detail=(
                    f"vencimiento {fmt_date(inv.vencimiento)} before fecha {fmt_date(inv.fecha)}"
                ),
            )
        if inv.desde is not None and inv.hasta is not None and inv.desde > inv.hasta:
            return Rejection(
                MSG_10032,
                "AFIP-10032",
                rule="date",
                detail=f"periodo desde {fmt_date(inv.desde)} after hasta {fmt_date(inv.hasta)}",
            )
        pattern = faults.reject_ref_pattern
        if pattern is not None and re.search(pattern, inv.external_reference):
            return Rejection(
                faults.reject_ref_text or msg_rejected(dialect, inv.external_reference),
                "AFIP-10015",
            )
        return None


def qr_url(cuit: str, pv: int, inv: Invoice, numero: int, cae: str) -> str:
    """AFIP's QR URL: https://www.afip.gob.ar/fe/qr/?p=<base64 JSON> (RG 4291)."""
    doc = inv.documento_nro
    payload = {
        "ver": 1,
        "fecha": inv.fecha.isoformat(),
        "cuit": int(cuit),
        "ptoVta": pv,
        "tipoCmp": TIPO_CODES.get(inv.tipo, 0),
        "nroCmp": numero,
        "importe": float(inv.total),
        "moneda": str(inv.comp.get("moneda") or "PES"),
        "ctz": float(_safe_decimal(inv.comp.get("cotizacion"), _ONE)),
        "tipoDocRec": _DOC_CODES.get(inv.documento_tipo, 99),
        "nroDocRec": int(doc) if doc.isdigit() else 0,
        "tipoCodAut": "E",
        "codAut": int(cae),
    }
    encoded = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return "https://www.afip.gob.ar/fe/qr/?p=" + encoded


def _safe_decimal(value: Any, default: Decimal) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else default
    except InvalidOperation:
        return default
