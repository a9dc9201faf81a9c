"""What an API call's failure means for the caller: one of the design's failure classes.

Each class answers "what may I do next?":

- `TransientError`: nothing was done; retry after a backoff, keep the job at the head.
- `AmbiguousError`: it may have been done; reconcile with `facturacion/consulta` first.
  `SequenceError` (AFIP 10016) is one: the number may be our own earlier success.
- `RejectedError`: the API refused the data; the job is rejected with its messages.
- `TenantBlockedError`: this CUIT/PDV cannot send (credentials, quota, PDV, AFIP block);
  pause its lane, until `until` when the block has an end.
- `ServiceDownError`: nobody can send (maintenance, AFIP down) until `until`.
- `UnclassifiedError`: an error text nobody catalogued: reconciled, then rejected unless
  found issued; never sent again.

The API's texts are matched here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from worker.errors import TfqError
from worker.invoice.tables import ARGENTINA_TZ
from worker.tusfacturas.replies import clean_str, error_codes, messages

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


class TusFacturasError(TfqError):
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
        replied: bool = False,
    ):
        self.detail = detail
        # The API answered this call (a reply was read): the call is not in flight.
        self.replied = replied
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
    """Nobody may be able to send. `scope` says whose word it is:

    - "global": a signal about everyone (maintenance, `estado_servicios/alertas`): every
      lane waits;
    - "tenant": one CUIT's call said so ("AFIP is down"). That may be this CUIT's own
      certificate or account, so its lane waits, and every lane waits only once several
      CUITs have seen it (`Settings.outage_quorum`).
    """

    kind = OutcomeKind.SERVICE_DOWN

    def __init__(self, detail: str, *, scope: str = "global", **kw: Any):
        super().__init__(detail, **kw)
        self.scope = scope


class UnclassifiedError(AmbiguousError):
    """An error text the catalogue does not know, on an invoicing call.

    Not a rejection yet: the newest pages warn that a call reported as failed may have
    issued the invoice. The job is reconciled first (a free query): found, it is issued;
    not found, it is rejected with the API's messages. It is never sent again, so an
    unknown text can cost no more calls, and it pauses no lane.
    """


# --- texts ----------------------------------------------------------------------------
#
# Every rule names the vendor page it comes from (`vousys/tusfacturas-api`), and
# `tests/vendor/error_catalogue.json` holds each documented text with its expected class.
# One text gets the class of the first rule it matches; a reply with several texts gets
# the most telling of their classes (`_PRECEDENCE`).

_VENTAS = "api-factura-electronica-afip-facturacion-ventas/"
CATALOGUE = _VENTAS + "errores-comunes-de-arca-en-tusfacturasapp.md"
REFERENCE_PAGE = _VENTAS + "referencia-api-afip-arca.md"
ESTADO_PAGE = (
    "web-services-afip-api-arca/" + "api-factura-electronica-afip-estado-de-los-servicios-afip.md"
)


class TextClass(StrEnum):
    MAINTENANCE = "maintenance"
    AFIP_DOWN = "afip_down"
    SEQUENCE = "sequence"
    QUOTA = "quota"
    CUIT_BLOCKED = "cuit_blocked"
    TENANT_CONFIG = "tenant_config"
    AFIP_TRANSIENT = "afip_transient"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class TextRule:
    cls: TextClass
    pattern: re.Pattern[str]
    source: str


def _rule(cls: TextClass, pattern: str, source: str) -> TextRule:
    return TextRule(cls, re.compile(pattern, re.I), source)


TEXT_RULES: tuple[TextRule, ...] = (
    # TusFacturas' maintenance, for everyone (also flagged by `mantenimiento: 1`).
    _rule(TextClass.MAINTENANCE, r"tareas de mantenimiento", REFERENCE_PAGE),
    # TusFacturas closes invoicing while AFIP fails ("impediremos que factures por un lapso
    # de 12 minutos"); it reaches us on one CUIT's call, so it is a sighting (scope tenant).
    _rule(
        TextClass.AFIP_DOWN,
        r"impediremos que factures"
        r"|servicios de facturaci[oó]n de (afip|arca) est[aá]n presentando errores"
        r"|(afip|arca)\b.{0,60}\b(ca[ií]d[oa]s?|fuera de servicio|no (est[aá]n? )?disponibles?)",
        ESTADO_PAGE,
    ),
    # 10016: number or date not the next to authorize. Both wordings: "próximo" (AFIP's
    # own) and "último a autorizar" (the catalogue's).
    _rule(
        TextClass.SEQUENCE,
        r"#\d+\.10016\b|\bCod(\.|igo)?:? ?10016\b|\b10016 -"
        r"|no se corresponde con el (pr[oó]ximo|[uú]ltimo) a autorizar"
        r"|error de numeraci[oó]n",
        CATALOGUE,
    ),
    _rule(
        TextClass.QUOTA,
        r"\bcupo\b|l[ií]mite de comprobantes|suscripci[oó]n (vencida|inactiva|suspendida)"
        r"|plan (vencido|inactivo|suspendido)|abonos? pendientes",
        REFERENCE_PAGE,
    ),
    # AFIP's temporary block of a CUIT (the seed: calls closer than a minute). Never the
    # bare word "bloque": data errors name JSON blocks ("Debe enviar el bloque cliente").
    _rule(
        TextClass.CUIT_BLOCKED,
        r"\bbloque(o|ó|ad[oa]s?)\b|\bbloqueo\b",
        REFERENCE_PAGE,
    ),
    # This tenant's own setup: credentials, PDV, certificate, delegation in ARCA. The
    # catalogue lists "No se puede establecer la comunicación con ARCA" and
    # "Java.null.pointer" under an expired or incompatible certificate.
    _rule(
        TextClass.TENANT_CONFIG,
        r"credencial|\b(apikey|apitoken|usertoken)\b|acceso denegado"
        r"|no se puede establecer la comunicaci[oó]n con (afip|arca)"
        r"|java\.?null\.?pointer|nullpointer"
        r"|computador no autorizado|validaciondetoken|lista de relaciones|certificado"
        r"|punto de venta no se encuentra habilitado|punto de venta no existe en web ?services"
        r"|tipo RECE|no se encuentra autorizad[oa] a emitir"
        r"|solo (podr[aá]s|puede) .{0,40}cola",
        CATALOGUE,
    ),
    # AFIP's own faults: the request reached AFIP, the outcome is unknown.
    _rule(
        TextClass.AFIP_TRANSIENT,
        r"EJBTransactionRolledbackException|Error interno de (base de datos|aplicaci[oó]n)"
        r"|Transacci[oó]n Activa|No devolvi[oó] el CAE"
        r"|existe en (afip|arca) pero no en tusfacturas",
        CATALOGUE,
    ),
    # Data errors of this one invoice: AFIP validation codes (10000-10299 other than
    # 10016), TusFacturas' own field checks, lotes structure.
    _rule(
        TextClass.REJECTED,
        r"#\d+\.10(?!016\b)[0-2]\d\d\b|\bCod(\.|igo)?:? ?10(?!016\b)[0-2]\d\d\b"
        r"|\b(error|arca|afip) 10(?!016\b)[0-2]\d\d\b"
        r"|rechaz[oó] el comprobante - ERROR: (?!AFIP rechaz[oó] la generaci[oó]n)"
        r"|\bel campo\b|\bcampo \w+ (debe|no puede|con tipo)|debe enviar|es obligatori"
        r"|\bno\b.{0,30}\bv[aá]lid[oa]s?\b|inv[aá]lid[oa]s?\b|no se permite|no se pueden? enviar"
        r"|no puede ser (anterior|posterior)|\bfila \d+|\bel lote\b|\ben el orden \d+"
        r"|no existe el comprobante asociado|error al crear al cliente|referencia externa"
        r"|external_reference|condici[oó]n (de )?iva|\bno corresponde\b|validaci[oó]n de cuit",
        CATALOGUE,
    ),
)

# "Not found" on a query. The only wording the docs use is the first; the others are
# AFIP's and older TusFacturas ones. Structure decides first (`consulta_avanzada`'s
# `total` and `comprobantes`); these texts only read an error reply.
NOT_FOUND_RULE = _rule(
    TextClass.NOT_FOUND,
    r"no se (han )?encontra(do|ron) comprobantes|no (existe|se encontr)|no hay comprobantes"
    r"|inexistente|no existen (datos|comprobantes)|sin resultados|not found",
    "web-services-afip-api-arca/eliminar-comprobantes-encolados.md",
)

_TFC_DATA_CODE = re.compile(r"^TFC-8\d{3}$")
_SECONDS = re.compile(r"(\d+)\s*segundos", re.I)
_MINUTES = re.compile(r"(\d+)\s*minutos", re.I)
_SPACES = re.compile(r"\s+")


def text_class(text: str) -> TextClass | None:
    """The class of one API error text by the rules above, or None when none matches."""
    folded = _SPACES.sub(" ", text).strip()
    for rule in TEXT_RULES:
        if rule.pattern.search(folded):
            return rule.cls
    if NOT_FOUND_RULE.pattern.search(folded):
        return TextClass.NOT_FOUND
    return None


def says_not_found(texts: list[str]) -> bool:
    """Does an error reply of a query say that nothing was found (and nothing else)?"""
    return bool(texts) and all(NOT_FOUND_RULE.pattern.search(_SPACES.sub(" ", t)) for t in texts)


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


# The class of a reply with several texts: the most telling one wins. A batch's generic
# "AFIP rechazó la generación del comprobante Cod: 0" comes beside the specific reason.
_PRECEDENCE = (
    TextClass.MAINTENANCE,
    TextClass.AFIP_DOWN,
    TextClass.SEQUENCE,
    TextClass.QUOTA,
    TextClass.CUIT_BLOCKED,
    TextClass.TENANT_CONFIG,
    TextClass.REJECTED,
    TextClass.AFIP_TRANSIENT,
)


def classify_error_body(
    body: dict[str, Any], *, invoicing: bool, now: datetime | None = None
) -> TusFacturasError:
    """The failure class of a JSON reply with `"error": "S"` (HTTP 200 business errors).

    `invoicing` says whether the call could have issued an invoice: AFIP's own transient
    faults and unknown texts are then ambiguous (reconcile first); on a query they are
    plainly transient, and a query's error never rejects a job.
    """
    now = now or datetime.now(UTC)
    msgs = messages(body.get("errores"))
    codes = error_codes(body)
    text = " | ".join(msgs)
    common: dict[str, Any] = {"messages": msgs, "codes": codes, "replied": True}

    if clean_str(body.get("mantenimiento")) == "1":
        until = parse_maintenance_until(body.get("mantenimiento_hasta"), now)
        return ServiceDownError("TusFacturas maintenance", until=until, **common)
    found = {c for c in (text_class(m) for m in msgs) if c is not None}
    if any(_TFC_DATA_CODE.match(c) for c in codes):
        found.add(TextClass.REJECTED)
    cls = next((c for c in _PRECEDENCE if c in found), None)
    if cls is TextClass.MAINTENANCE:
        return ServiceDownError("TusFacturas maintenance", until=now + AFIP_DOWN_WINDOW, **common)
    if cls is TextClass.AFIP_DOWN:
        return ServiceDownError(
            "AFIP/ARCA reported down on this CUIT's call",
            scope="tenant",
            until=now + AFIP_DOWN_WINDOW,
            **common,
        )
    if cls is TextClass.SEQUENCE:
        if not invoicing:
            return TransientError("the query was answered with a numbering error", **common)
        return SequenceError("AFIP 10016: number or date is not the next to authorize", **common)
    if cls is TextClass.QUOTA:
        return TenantBlockedError("plan quota used up or subscription inactive", **common)
    if cls is TextClass.CUIT_BLOCKED:
        until = _block_until(text, now, DEFAULT_CUIT_BLOCK)
        return TenantBlockedError("AFIP blocked this CUIT for a while", until=until, **common)
    if cls is TextClass.TENANT_CONFIG:
        return TenantBlockedError(
            "this tenant's credentials, PDV, certificate or ARCA setup", **common
        )
    if cls is TextClass.REJECTED:
        if invoicing:
            return RejectedError("the API refused the invoice", **common)
        return TransientError("the query was refused", **common)
    if cls is TextClass.AFIP_TRANSIENT:
        unknown = AmbiguousError if invoicing else TransientError
        return unknown("AFIP answered with an internal fault", **common)
    if not msgs and not codes:
        unknown = AmbiguousError if invoicing else TransientError
        return unknown("error reply without messages", **common)
    if invoicing:
        return UnclassifiedError("an error text tfq does not know", **common)
    return TransientError("the query failed with an error text tfq does not know", **common)
