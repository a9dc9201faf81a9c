"""What an API call's failure means for the caller: one of the design's failure classes.

Each class answers "what may I do next?":

- `TransientError`: nothing was done; retry after a backoff, keep the job at the head.
- `AmbiguousError`: it may have been done; reconcile with `facturacion/consulta` first.
  `SequenceError` (AFIP 10016) is one: the number may be our own earlier success.
- `RejectedError`: the API refused the data; the job is rejected with its messages.
- `TenantBlockedError`: this CUIT/PDV cannot send (credentials, quota, PDV, AFIP block);
  pause its lane, until `until` when the block has an end.
- `ServiceDownError`: nobody can send (maintenance, AFIP down) until `until`.

The API's texts are matched here and nowhere else.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from worker.replies import clean_str, error_codes, messages
from worker.tables import ARGENTINA_TZ

AFIP_DOWN_WINDOW = timedelta(minutes=12)  # TusFacturas blocks invoicing in 12-minute windows
DEFAULT_CUIT_BLOCK = timedelta(
    minutes=5
)  # the seed: "no podrás emitir comprobantes por unos minutos"


class OutcomeKind(StrEnum):
    ISSUED = "issued"
    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"
    REJECTED = "rejected"
    TENANT_BLOCKED = "tenant_blocked"
    SERVICE_DOWN = "service_down"


class TusFacturasError(Exception):
    """A failed API call. `messages` are the API's texts, `codes` its TFC/AFIP codes."""

    kind: OutcomeKind = OutcomeKind.TRANSIENT

    def __init__(
        self,
        detail: str,
        *,
        messages: list[str] | None = None,
        codes: list[str] | None = None,
        http_status: int | None = None,
        until: datetime | None = None,
        retry_after_seconds: float | None = None,
    ):
        self.detail = detail
        self.messages = messages or []
        self.codes = codes or []
        self.http_status = http_status
        self.until = until
        self.retry_after_seconds = retry_after_seconds
        super().__init__(detail)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "error": type(self).__name__,
            "detail": self.detail,
            "messages": self.messages,
            "codes": self.codes,
            "http_status": self.http_status,
            "until": self.until.isoformat() if self.until else None,
        }


class TransientError(TusFacturasError):
    kind = OutcomeKind.TRANSIENT


class RateLimitedError(TransientError):
    """HTTP 429: the whole account should slow down."""


class AmbiguousError(TusFacturasError):
    kind = OutcomeKind.AMBIGUOUS


class SequenceError(AmbiguousError):
    """AFIP 10016: the number or date is not the next to authorize. May be our own success."""


class RejectedError(TusFacturasError):
    kind = OutcomeKind.REJECTED


class TenantBlockedError(TusFacturasError):
    kind = OutcomeKind.TENANT_BLOCKED


class ServiceDownError(TusFacturasError):
    kind = OutcomeKind.SERVICE_DOWN


# --- texts ----------------------------------------------------------------------------

_SEQUENCE = re.compile(r"\b10016\b|no se corresponde con el pr[oó]ximo a autorizar", re.I)
_AFIP_DOWN = re.compile(
    r"impediremos que factures|no se puede establecer la comunicaci[oó]n con (afip|arca)"
    r"|(afip|arca)\b.{0,60}\b"
    r"(ca[ií]d[oa]|fuera de servicio|no (est[aá] )?disponible|con problemas)",
    re.I,
)
_CUIT_BLOCK = re.compile(r"bloque", re.I)
_QUOTA = re.compile(
    r"\bcupo\b|l[ií]mite de comprobantes|suscripci[oó]n|plan (vencido|inactivo|suspendido)"
    r"|abonos? pendientes",
    re.I,
)
_CONFIG = re.compile(
    r"credencial|apikey|apitoken|usertoken|acceso denegado|no autorizad[oa]"
    r"|punto de venta no se encuentra habilitado|tipo RECE|Computador no autorizado"
    r"|ValidacionDeToken|lista de relaciones|certificado|solo (podr[aá]s|puede) .{0,40}cola",
    re.I,
)
# AFIP's own transient faults: the request reached AFIP, the outcome is unknown.
_AFIP_TRANSIENT = re.compile(
    r"EJBTransactionRolledbackException|Error interno de (base de datos|aplicaci[oó]n)"
    r"|Transacci[oó]n Activa|No devolvi[oó] el CAE|Cod(\.|igo)? ?:? ?0\b",
    re.I,
)
# An AFIP validation code (10000-10299) other than 10016: a data rejection.
_AFIP_DATA_CODE = re.compile(r"\b10(?!016\b)[0-2]\d\d\b")
_SECONDS = re.compile(r"(\d+)\s*segundos", re.I)
_MINUTES = re.compile(r"(\d+)\s*minutos", re.I)


def _block_until(text: str, now: datetime, default: timedelta) -> datetime:
    m = _SECONDS.search(text)
    if m:
        return now + timedelta(seconds=int(m.group(1)))
    m = _MINUTES.search(text)
    if m:
        return now + timedelta(minutes=int(m.group(1)))
    return now + default


def parse_maintenance_until(value: Any, now: datetime) -> datetime:
    """`mantenimiento_hasta` ("26/07/2026 05:25", Argentina time) as an aware datetime."""
    text = clean_str(value)
    for fmt in ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=ARGENTINA_TZ)
        except ValueError:
            continue
    return now + AFIP_DOWN_WINDOW


def classify_error_body(
    body: dict[str, Any], *, invoicing: bool, now: datetime | None = None
) -> TusFacturasError:
    """The failure class of a JSON reply with `"error": "S"` (HTTP 200 business errors).

    `invoicing` says whether the call could have issued an invoice: AFIP's own transient
    faults are then ambiguous (reconcile first), otherwise plainly transient.
    """
    now = now or datetime.now(UTC)
    msgs = messages(body.get("errores"))
    codes = error_codes(body)
    text = " | ".join(msgs)
    common: dict[str, Any] = {"messages": msgs, "codes": codes}

    if clean_str(body.get("mantenimiento")) == "1":
        until = parse_maintenance_until(body.get("mantenimiento_hasta"), now)
        return ServiceDownError("TusFacturas maintenance", until=until, **common)
    if _AFIP_DOWN.search(text):
        return ServiceDownError("AFIP/ARCA is down", until=now + AFIP_DOWN_WINDOW, **common)
    if _SEQUENCE.search(text):
        return SequenceError("AFIP 10016: number or date is not the next to authorize", **common)
    if _QUOTA.search(text):
        return TenantBlockedError("plan quota used up or subscription inactive", **common)
    if _CUIT_BLOCK.search(text):
        until = _block_until(text, now, DEFAULT_CUIT_BLOCK)
        return TenantBlockedError("AFIP blocked this CUIT for a while", until=until, **common)
    if _CONFIG.search(text):
        return TenantBlockedError("credentials, PDV or AFIP link problem", **common)
    if _AFIP_TRANSIENT.search(text) and not _AFIP_DATA_CODE.search(text):
        cls = AmbiguousError if invoicing else TransientError
        return cls("AFIP answered with an internal fault", **common)
    if not msgs and not codes:
        cls = AmbiguousError if invoicing else TransientError
        return cls("error reply without messages", **common)
    return RejectedError("the API refused the request", **common)
