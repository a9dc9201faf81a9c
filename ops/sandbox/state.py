"""The sandbox's in-memory state and rules: a fake TusFacturas API v2 without the HTTP.

Everything here is synchronous and pure Python; `ops.sandbox.app` only adds the transport
(reading bodies, sleeping for latency, dropping connections). Shapes and texts follow
`docs/reference/tusfacturas_api.md` (§1-§6.1) and `afip_rules.md` (§2, §3).

An invoicing call (`facturacion/nuevo`, `facturacion/lotes`) goes through two phases:

1. `Sandbox.admit` (at arrival, before any latency): maintenance, body, credentials,
   pre-commit faults (429, 5xx), AFIP down, quota, TusFacturas-side validation (blocks,
   punto de venta, tipo, lotes structure), then the per-CUIT gap / block rule. Refusals
   here never reach "AFIP" and do not count for the gap.
2. `Sandbox.commit` (after the latency; the app shields it from client disconnects):
   the AFIP-side checks (total re-check, numbering 10016, date window, 10036, 10032,
   `reject_ref_pattern`), then the invoice(s) are issued and the post-commit fault, if
   any, is chosen.

`error_details[].code` values used by the sandbox (the real catalogue is not public):
`TFC-8001` malformed or missing data, `TFC-8002` bad external_reference, `TFC-8003` type
not supported by this method, `TFC-8005` total mismatch, `TFC-8010` lotes structure,
`AUTH` bad credentials (HTTP 401), `PDV` punto de venta not of these credentials, `CUPO`
quota used up, `AFIP-CAIDO` AFIP down, `AFIP-BLOQUEO` CUIT blocked by AFIP, `RATE-LIMIT`
HTTP 429, `AFIP-<code>` errors relayed from AFIP (10016, 10036, 10032, 10015, 0).
"""

from __future__ import annotations

import base64
import copy
import json
import math
import random
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ops.sandbox.dialect import Dialect, dialect_from_json
from worker.tenants import Pdv, Tenants, UnknownPdv

AR_TZ = timezone(timedelta(hours=-3), "ART")
"""Argentina time (UTC-3, no DST): AFIP's "N" and every date the API shows."""

NUEVO = "facturacion/nuevo"
LOTES = "facturacion/lotes"
NUMERACION = "facturacion/numeracion"
CONSULTA = "facturacion/consulta"
CONSULTA_AVANZADA = "facturacion/consulta_avanzada"
ALERTAS = "estado_servicios/alertas"
INVOICING_ENDPOINTS: tuple[str, ...] = (NUEVO, LOTES)
QUERY_ENDPOINTS: tuple[str, ...] = (NUMERACION, CONSULTA, CONSULTA_AVANZADA, ALERTAS)
API_ENDPOINTS: tuple[str, ...] = INVOICING_ENDPOINTS + QUERY_ENDPOINTS

LOTES_MAX_REQUESTS = 20
CONSULTA_AVANZADA_MAX_LIMIT = 1000
CAE_BASE = 75_000_000_000_000  # 14 digits; CAEs are CAE_BASE + a process-wide counter
AFIP_DOWN_WINDOW_MINUTES = 12

DEFAULT_TENANTS_FILE = Path(__file__).resolve().parent.parent / "examples" / "tenants.toml"

_TWO_PLACES = Decimal("0.01")
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_VAT_21 = Decimal("1.21")
_TOTAL_TOLERANCE = Decimal("0.01")
_ALICUOTAS = frozenset(Decimal(a) for a in ("27", "21", "10.5", "5", "2.5", "0", "-1", "-2"))
_EXT_REF_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")

# AFIP CbteTipo codes (afip_rules.md §1.1), used for the QR payload only.
_TIPO_CODES: dict[str, int] = {
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
_NOT_VALID_TIPOS = frozenset({"FACTURA NO VALIDA EN AFIP", "NOTA DE CREDITO NO VALIDA EN AFIP"})
_DOC_CODES = {"CUIT": 80, "CUIL": 86, "CDI": 87, "PASAPORTE": 94, "DNI": 96, "OTRO": 99}

# --- texts (reference §4.2, §4.3, §6.1) ---------------------------------------------------

MSG_10016 = (
    "AFIP Factura electronica, informa el siguiente error: Cod. Error: #6661145.10016 - "
    "El numero o fecha del comprobante no se corresponde con el proximo a autorizar. "
    "Consultar metodo FECompUltimoAutorizado."
)
# The catalogue's wording of 10016 (errores-comunes-de-arca-en-tusfacturasapp.md).
MSG_10016_CATALOGUE = (
    "El número o fecha del comprobante no se corresponde con el último a autorizar "
    "(FECompUltimoAutorizado)"
)
# AFIP's and TusFacturas' data refusals as the catalogue and the endpoint pages word them,
# for "AFIP rejects this invoice" under the catalogue dialect (chosen by the reference).
MSGS_REJECTED_CATALOGUE = (
    "Debe enviar el bloque rg_especiales con los datos que requiere el regimen informado.",
    "El campo Condición IVA receptor no es válido para la clase de comprobante informado",
    "Error ARCA 10041 - No existe el comprobante asociado",
    " AFIP Factura electronica, rechazo el comprobante - ERROR: AFIP rechazo la generacion del "
    "comprobante Cod: 0 |  AFIP Factura electronica, rechazo el comprobante - ERROR: El campo "
    "FchServDesde no puede ser posterior al campo FchServHasta. Cod: 10032",
    "Error al crear al cliente . No se podra generar el comprobante. Revise los datos enviados.",
    # AFIP's generic refusal alone: no reason given, so tfq reconciles before rejecting.
    " AFIP Factura electronica, informa el siguiente error: Cod. Error: #6661145.0 - AFIP "
    "rechazo la generacion del comprobante",
)
# An error text no page catalogues: tfq must reconcile it, never guess.
MSG_UNKNOWN = "Se produjo un inconveniente inesperado al procesar su solicitud (ref. 7731)."
MSG_10036 = (
    "AFIP Factura electronica, informa el siguiente error: Cod. Error: #6661145.10036 - "
    "El campo FchVtoPago no puede ser anterior a la fecha del comprobante."
)
MSG_10032 = (
    "AFIP Factura electronica, rechazo el comprobante - ERROR: El campo FchServDesde no puede "
    "ser posterior al campo FchServHasta. Cod: 10032"
)
MSG_WINDOW_GOODS = (
    "AFIP Factura electronica, rechazo el comprobante - ERROR: Campo CbteFch debe estar "
    "comprendido en el rango N-5 y N+5 siendo N la fecha de envio del pedido de autorizacion "
    "para 1 - Productos"
)
MSG_WINDOW_GOODS_MONTH = (
    "AFIP Factura electronica, rechazo el comprobante - ERROR: Campo CbteFch debe estar "
    "comprendido en el rango N-5 y N+5 siendo N la fecha de envio del pedido de autorizacion "
    "para 1 - Productos. La fecha no podra exceder el mes de presentacion. Cod: 10152"
)
MSG_WINDOW_SERVICES = (
    "AFIP Factura electronica, rechazo el comprobante - ERROR: Campo CbteFch debe estar "
    "comprendido en el rango N-10 y N+10 siendo N la fecha de envio del pedido de autorizacion "
    "para 2 - Servicios"
)
MSG_10015 = (
    "AFIP Factura electronica, rechazo el comprobante - ERROR: El campo DocNro no se encuentra "
    "registrado en los padrones de AFIP o no se encuentra activo. Cod: 10015"
)
MSG_NO_PROCESADO = (
    "AFIP Factura electronica, rechazo el comprobante - ERROR: AFIP rechazo la generacion del "
    "comprobante Cod: 0. Comprobante no procesado: un comprobante anterior del lote fue rechazado."
)
MSG_CREDENTIALS = (
    "Acceso denegado: las credenciales enviadas (apikey, apitoken, usertoken) no son validas."
)
MSG_QUOTA = (
    "Has alcanzado el cupo de comprobantes de tu plan. Para seguir facturando, contrata un plan "
    "superior o espera a que se renueve tu cupo mensual."
)
MSG_AFIP_DOWN = (
    "{stamp} hs.  Los servicios de facturacion de AFIP estan presentando errores. Entendemos tu "
    "malestar y lo hemos reportado a la mesa de ayuda de AFIP con alta prioridad, pero no tenemos "
    "confirmacion de cuanto va a demorar. Para evitar inconsistencias, impediremos que factures "
    "por un lapso de 12 minutos. Si el problema continua, este lapso sera renovado de manera "
    "automatica. | "
)
MSG_RATE_LIMIT = "Has superado el limite de solicitudes permitido por segundo. Reintenta luego."

HTML_5XX = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
HTML_524 = (
    '<!DOCTYPE html>\n<html lang="en-US"><head><title>www.tusfacturas.app | 524: A timeout '
    'occurred</title></head><body><div id="cf-wrapper"><h1><span>A timeout occurred</span>'
    "<span>Error code 524</span></h1><p>The origin web server timed out responding to this "
    "request.</p><p>Cloudflare Ray ID: 8f0c2a1b3d4e5f60</p></div></body></html>\n"
)

HTML_GARBAGE = (
    "<!DOCTYPE html><html><head><title>TusFacturasAPP - Iniciar sesion</title></head>"
    '<body><form action="/app/login"><input name="usuario"></form></body></html>\n'
)


def block_text(cuit: str, seconds: float) -> str:
    return (
        f"AFIP bloqueó temporalmente la emisión de comprobantes para el CUIT {cuit}. "
        f"Reintente en {max(1, math.ceil(seconds))} segundos."
    )


# --- dates ----------------------------------------------------------------------------------


def ar_now() -> datetime:
    return datetime.now(AR_TZ)


def ar_today() -> date:
    return datetime.now(AR_TZ).date()


def parse_date(value: Any) -> date | None:
    """`dd/mm/aaaa` -> date, or None when it is not such a date."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split("/")
    if len(parts) != 3 or len(parts[2]) != 4:
        return None
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        return None


def fmt_date(d: date) -> str:
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def parse_when(value: Any) -> datetime | None:
    """An ISO 8601 string (naive = Argentina time) or None -> aware datetime or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value)
    else:
        raise ValueError(f"expected an ISO 8601 datetime or null, got {value!r}")
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=AR_TZ)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(AR_TZ).isoformat()


# --- faults and config ----------------------------------------------------------------------


@dataclass
class FaultSpec:
    """A probabilistic or counted fault.

    rate: probability per eligible call (0..1).
    next: the next N eligible calls get the fault for sure (decremented as they fire).
    endpoints: endpoint paths (e.g. "facturacion/consulta") it applies to; None means the
        invoice-generating endpoints ("facturacion/nuevo", "facturacion/lotes").
    """

    rate: float = 0.0
    next: int = 0
    endpoints: list[str] | None = None

    def applies_to(self, endpoint: str) -> bool:
        return endpoint in (INVOICING_ENDPOINTS if self.endpoints is None else self.endpoints)

    def fires(self, endpoint: str, rng: random.Random) -> bool:
        if self.next <= 0 and self.rate <= 0:
            return False
        if not self.applies_to(endpoint):
            return False
        if self.next > 0:
            self.next -= 1
            return True
        return rng.random() < self.rate

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "next": self.next, "endpoints": self.endpoints}

    def merge(self, value: Any, name: str) -> None:
        """Merge a JSON value: a number (the rate) or {rate?, next?, endpoints?}."""
        if isinstance(value, bool):
            raise ValueError(f"{name}: expected a rate or an object")
        if isinstance(value, int | float):
            value = {"rate": value}
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a rate or an object with rate/next/endpoints")
        unknown = set(value) - {"rate", "next", "endpoints"}
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
        if "rate" in value:
            rate = float(value["rate"])
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}.rate must be between 0 and 1")
            self.rate = rate
        if "next" in value:
            nxt = int(value["next"])
            if nxt < 0:
                raise ValueError(f"{name}.next must be >= 0")
            self.next = nxt
        if "endpoints" in value:
            eps = value["endpoints"]
            if eps is not None:
                if not isinstance(eps, list) or not all(e in API_ENDPOINTS for e in eps):
                    raise ValueError(f"{name}.endpoints must be null or a list of {API_ENDPOINTS}")
                eps = list(eps)
            self.endpoints = eps


def _lotes_only() -> FaultSpec:
    return FaultSpec(endpoints=[LOTES])


_SPEC_FIELDS = (
    "error_5xx",
    "rate_429",
    "drop_after_commit",
    "lotes_524",
    "garbage_after_commit",
    "unknown_error_after_commit",
    "sequence_error",
)
_FLOAT_FIELDS = ("latency_ms", "latency_jitter_ms", "hang_after_commit_ms")


@dataclass
class Faults:
    """Injected faults. Durations in milliseconds say so in their names.

    latency_ms / latency_jitter_ms: added before processing an invoicing call (uniform in
        latency ± jitter); the commit happens after it even if the client gave up.
    error_5xx: HTTP 502/503 with an HTML body, before anything is committed.
    rate_429: HTTP 429, before anything is committed.
    drop_after_commit: commit, then abort the TCP connection with no response.
    lotes_524: commit, then HTTP 524 with a Cloudflare-like HTML body (lotes by default).
    garbage_after_commit: commit, then HTTP 200 with an HTML page instead of JSON (a proxy's
        or login page): an unreadable reply to a call that did issue.
    hang_after_commit_ms: commit, then wait this long before answering.
    unknown_error_after_commit: commit, then answer an error reply in words no page
        catalogues (the newest pages warn that a reported failure may have issued).
    sequence_error: "AFIP" answers 10016 without issuing, whatever the number (a numbering
        that cannot be made to agree: the spend guard's test).
    maintenance_until: every API request gets the maintenance shape until then.
    afip_down_until: invoicing calls get the AFIP-down error; alertas reports it.
    quota: cuit -> invoicing calls still allowed; missing = unlimited; 0 -> quota error.
    reject_ref_pattern: regex; an invoice whose external_reference matches (re.search) is
        rejected by "AFIP" (10015), its number not consumed.
    reject_ref_text: the text of that refusal (default: the dialect's).
    blocked_cuits: cuit -> until; set by the gap rule or explicitly.
    cuit_errors: cuit -> an error text every invoicing call of that CUIT gets, before
        anything is committed (one tenant's certificate, its own "AFIP is down", ...).
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_5xx: FaultSpec = field(default_factory=FaultSpec)
    rate_429: FaultSpec = field(default_factory=FaultSpec)
    drop_after_commit: FaultSpec = field(default_factory=FaultSpec)
    lotes_524: FaultSpec = field(default_factory=_lotes_only)
    garbage_after_commit: FaultSpec = field(default_factory=FaultSpec)
    unknown_error_after_commit: FaultSpec = field(default_factory=FaultSpec)
    sequence_error: FaultSpec = field(default_factory=FaultSpec)
    hang_after_commit_ms: float = 0.0
    maintenance_until: datetime | None = None
    afip_down_until: datetime | None = None
    quota: dict[str, int] = field(default_factory=dict)
    reject_ref_pattern: str | None = None
    reject_ref_text: str | None = None
    blocked_cuits: dict[str, datetime] = field(default_factory=dict)
    cuit_errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "latency_jitter_ms": self.latency_jitter_ms,
            "error_5xx": self.error_5xx.to_json(),
            "rate_429": self.rate_429.to_json(),
            "drop_after_commit": self.drop_after_commit.to_json(),
            "lotes_524": self.lotes_524.to_json(),
            "garbage_after_commit": self.garbage_after_commit.to_json(),
            "unknown_error_after_commit": self.unknown_error_after_commit.to_json(),
            "sequence_error": self.sequence_error.to_json(),
            "hang_after_commit_ms": self.hang_after_commit_ms,
            "maintenance_until": _iso(self.maintenance_until),
            "afip_down_until": _iso(self.afip_down_until),
            "quota": dict(self.quota),
            "reject_ref_pattern": self.reject_ref_pattern,
            "reject_ref_text": self.reject_ref_text,
            "blocked_cuits": {c: _iso(u) for c, u in self.blocked_cuits.items()},
            "cuit_errors": dict(self.cuit_errors),
        }

    def merge(self, data: dict[str, Any], now: datetime | None = None) -> None:
        """Merge a JSON object of fields into these faults; ValueError on bad input.

        Besides the fields: `maintenance_minutes` / `afip_down_minutes` (a window from now;
        0 or null ends it) and `block_cuit` ({cuit, seconds}). In `quota` and
        `blocked_cuits` a null value removes that CUIT. Nothing changes on error.
        """
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        now = now or ar_now()
        staged = copy.deepcopy(self)
        staged._merge_into(data, now)
        self.__dict__.update(staged.__dict__)

    def _merge_into(self, data: dict[str, Any], now: datetime) -> None:
        for key, value in data.items():
            if key in _FLOAT_FIELDS:
                number = float(value)
                if number < 0:
                    raise ValueError(f"{key} must be >= 0")
                setattr(self, key, number)
            elif key in _SPEC_FIELDS:
                spec: FaultSpec = getattr(self, key)
                spec.merge(value, key)
            elif key in ("maintenance_until", "afip_down_until"):
                setattr(self, key, parse_when(value))
            elif key in ("maintenance_minutes", "afip_down_minutes"):
                target = key.replace("_minutes", "_until")
                minutes = 0.0 if value is None else float(value)
                setattr(self, target, now + timedelta(minutes=minutes) if minutes > 0 else None)
            elif key == "quota":
                if not isinstance(value, dict):
                    raise ValueError("quota must be an object cuit -> calls")
                for cuit, n in value.items():
                    if n is None:
                        self.quota.pop(str(cuit), None)
                    elif int(n) < 0:
                        raise ValueError("quota values must be >= 0")
                    else:
                        self.quota[str(cuit)] = int(n)
            elif key == "reject_ref_pattern":
                pattern = None if value is None else str(value)
                if pattern is not None:
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise ValueError(f"reject_ref_pattern: {exc}") from None
                self.reject_ref_pattern = pattern
            elif key == "reject_ref_text":
                self.reject_ref_text = None if value is None else str(value)
            elif key == "blocked_cuits":
                if not isinstance(value, dict):
                    raise ValueError("blocked_cuits must be an object cuit -> until")
                for cuit, until in value.items():
                    when = parse_when(until)
                    if when is None:
                        self.blocked_cuits.pop(str(cuit), None)
                    else:
                        self.blocked_cuits[str(cuit)] = when
            elif key == "cuit_errors":
                if not isinstance(value, dict):
                    raise ValueError("cuit_errors must be an object cuit -> text")
                for cuit, text in value.items():
                    if text is None:
                        self.cuit_errors.pop(str(cuit), None)
                    else:
                        self.cuit_errors[str(cuit)] = str(text)
            elif key == "block_cuit":
                if not isinstance(value, dict) or "cuit" not in value:
                    raise ValueError("block_cuit must be {cuit, seconds}")
                seconds = float(value.get("seconds", 120))
                if seconds > 0:
                    self.blocked_cuits[str(value["cuit"])] = now + timedelta(seconds=seconds)
                else:
                    self.blocked_cuits.pop(str(value["cuit"]), None)
            else:
                raise ValueError(f"unknown fault field {key!r}")


@dataclass
class SandboxConfig:
    """How the sandbox runs. Durations in seconds."""

    host: str = "127.0.0.1"
    port: int = 8099
    tenants_file: Path = DEFAULT_TENANTS_FILE
    gap_seconds: float = 60.0
    block_seconds: float = 120.0
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    dialect: Dialect = field(default_factory=Dialect)


# --- replies and rejections -----------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    """What the app sends back. `body` is JSON (dict) or HTML (str).

    post: what the app does after the commit: None, "drop" (abort the connection) or
        "hang" (sleep `hang_seconds`, then answer).
    """

    status: int
    body: dict[str, Any] | str
    post: str | None = None
    hang_seconds: float = 0.0
    headers: dict[str, str] | None = None


class Rejection(Exception):
    """A refusal in the API's error shape. `rule` names the ledger violation, if any."""

    def __init__(
        self,
        text: str,
        code: str,
        *,
        rule: str | None = None,
        detail: str | None = None,
        status: int = 200,
        outcome: str = "error",
    ):
        super().__init__(text)
        self.text = text
        self.code = code
        self.rule = rule
        self.detail = detail or text
        self.status = status
        self.outcome = outcome


def error_body(texts: list[str], code: str, external_reference: str = "") -> dict[str, Any]:
    """The API's error shape (reference §4.2)."""
    return {
        "error": "S",
        "errores": texts,
        "external_reference": external_reference,
        "error_cod": [],
        "error_details": [{"code": code, "text": t} for t in texts],
    }


def _bad(text: str, code: str = "TFC-8001") -> Rejection:
    return Rejection(text, code)


# --- invoices -------------------------------------------------------------------------------


def _dec(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise _bad(f"El campo {path} es obligatorio y debe ser numerico.")
    try:
        number = Decimal(value) if isinstance(value, int | str) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise _bad(f"El campo {path} debe ser numerico.") from None
    if not number.is_finite():
        raise _bad(f"El campo {path} debe ser numerico.")
    return number


def _int(value: Any, path: str, default: int | None = None) -> int:
    if (value is None or value == "") and default is not None:
        return default
    if isinstance(value, bool):
        raise _bad(f"El campo {path} debe ser un numero entero.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _bad(f"El campo {path} debe ser un numero entero.")


def _date_field(comp: dict[str, Any], key: str, required: bool) -> date | None:
    raw = comp.get(key)
    if raw is None or raw == "":
        if required:
            raise _bad(f"El campo comprobante.{key} es obligatorio (formato dd/mm/aaaa).")
        return None
    parsed = parse_date(raw)
    if parsed is None:
        raise _bad(f"El campo comprobante.{key} debe tener el formato dd/mm/aaaa.")
    return parsed


def expected_total(comp: dict[str, Any], letter: str) -> Decimal:
    """An independent total from the items (A/B/M: net + VAT; C: final prices).

    Net per item = cantidad x precio_unitario_sin_iva x (1 - bonificacion_porcentaje/100);
    VAT by alicuota (-1, -2, 0: none); minus comprobante.bonificacion (x 1.21 when there are
    21 % items); plus tributos[].total and impuestos_internos; round half even to 2 places.
    """
    detalle = comp.get("detalle")
    if not isinstance(detalle, list) or not detalle:
        raise _bad("El campo comprobante.detalle es obligatorio y debe tener al menos un item.")
    with_vat = letter != "C"
    net = Decimal(0)
    vat = Decimal(0)
    has_21 = False
    for i, item in enumerate(detalle):
        if not isinstance(item, dict) or not isinstance(item.get("producto"), dict):
            raise _bad(f"El item {i} de comprobante.detalle debe tener un bloque producto.")
        prod = item["producto"]
        qty = _dec(item.get("cantidad"), f"detalle[{i}].cantidad")
        price = _dec(
            prod.get("precio_unitario_sin_iva"), f"detalle[{i}].producto.precio_unitario_sin_iva"
        )
        if qty <= 0 or price < 0:
            raise _bad(f"El item {i} de comprobante.detalle tiene cantidad o precio invalidos.")
        line = qty * price
        discount = item.get("bonificacion_porcentaje")
        if discount not in (None, "", 0):
            pct = _dec(discount, f"detalle[{i}].bonificacion_porcentaje")
            line = line * (_ONE - pct / _HUNDRED)
        net += line
        if with_vat:
            rate = _dec(prod.get("alicuota"), f"detalle[{i}].producto.alicuota")
            if rate not in _ALICUOTAS:
                raise _bad(f"La alicuota {rate} del item {i} no es valida.")
            if rate > 0:
                vat += line * rate / _HUNDRED
                if rate == 21:
                    has_21 = True
    total = net + vat
    bonificacion = comp.get("bonificacion")
    if bonificacion not in (None, "", 0):
        amount = _dec(bonificacion, "comprobante.bonificacion")
        total -= amount * _VAT_21 if has_21 else amount
    tributos = comp.get("tributos")
    if tributos:
        if not isinstance(tributos, list):
            raise _bad("El campo comprobante.tributos debe ser una lista.")
        for i, trib in enumerate(tributos):
            if not isinstance(trib, dict):
                raise _bad(f"El tributo {i} debe ser un objeto.")
            total += _dec(trib.get("total"), f"tributos[{i}].total")
    internos = comp.get("impuestos_internos")
    if internos not in (None, "", 0):
        total += _dec(internos, "comprobante.impuestos_internos")
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
        raise _bad("El comprobante enviado debe ser un objeto JSON.")
    cliente = item.get("cliente")
    comp = item.get("comprobante")
    if not isinstance(cliente, dict):
        raise _bad("Debe enviar el bloque cliente.")
    if not isinstance(comp, dict):
        raise _bad("Debe enviar el bloque comprobante.")
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
        raise _bad("El campo comprobante.tipo es obligatorio.")
    tipo = tipo.strip()
    if tipo in _NOT_VALID_TIPOS:
        raise Rejection(f"El sandbox no emite comprobantes de tipo {tipo}.", "TFC-8003")
    if tipo not in _TIPO_CODES:
        raise _bad(f"El tipo de comprobante {tipo} no es valido.")
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
        raise _bad("El sandbox solo emite comprobantes de venta (operacion V).")
    pv = _int(comp.get("punto_venta"), "comprobante.punto_venta")
    if pv != pdv.punto_venta:
        raise Rejection(
            f"El punto de venta {pv} no corresponde a las credenciales enviadas "
            f"(punto de venta {pdv.punto_venta}).",
            "PDV",
            rule="credentials",
        )
    numero = _int(comp.get("numero"), "comprobante.numero", default=0)
    if numero < 0 or numero > 99_999_999:
        raise _bad("El campo comprobante.numero debe tener hasta 8 digitos.")
    fecha = _date_field(comp, "fecha", required=True)
    assert fecha is not None
    vencimiento = _date_field(comp, "vencimiento", required=False)
    desde = _date_field(comp, "periodo_facturado_desde", required=False)
    hasta = _date_field(comp, "periodo_facturado_hasta", required=False)
    if (desde is None) != (hasta is None):
        raise _bad(
            "Los campos periodo_facturado_desde y periodo_facturado_hasta deben enviarse juntos."
        )
    total = _dec(comp.get("total"), "comprobante.total")
    if total <= 0:
        raise _bad("El campo comprobante.total debe ser positivo.")
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


# --- the sandbox ----------------------------------------------------------------------------


@dataclass(slots=True)
class Admission:
    """An invoicing call that passed phase 1 and will be committed after the latency."""

    endpoint: str
    cuit: str
    pdv: Pdv
    arrival: float
    invoices: list[Invoice]
    latency_seconds: float


@dataclass(slots=True)
class _Stored:
    cliente: dict[str, Any]
    comprobante: dict[str, Any]
    fecha: date
    index: int
    external_reference: str
    tipo: str
    numero: int


class Sandbox:
    """All sandbox state: sequences, issued invoices, ledger, faults, blocks."""

    def __init__(self, config: SandboxConfig, tenants: Tenants | None = None):
        self.config = config
        self.tenants = tenants if tenants is not None else Tenants.load(config.tenants_file)
        self._startup_gap = (config.gap_seconds, config.block_seconds)
        self._startup_dialect = config.dialect
        self._credentials: dict[tuple[str, str, str], tuple[str, Pdv] | None] = {}
        self._cae_counter = 0  # never reset: CAEs stay unique for the life of the process
        self.faults = copy.deepcopy(config.faults)
        self.rng = random.Random(config.seed)
        self.issued: list[dict[str, Any]] = []
        self.violations: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self._seqs: dict[tuple[str, int, str], list[Any]] = {}
        self._store: dict[tuple[str, int, str, int], _Stored] = {}
        self._by_pdv: dict[tuple[str, int], list[_Stored]] = {}
        self._last_invoicing: dict[str, float] = {}

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear ledger, numbering, blocks and faults; gap/block back to their startup values."""
        self.config.gap_seconds, self.config.block_seconds = self._startup_gap
        self.config.dialect = self._startup_dialect
        self.faults = Faults()
        self.rng = random.Random(self.config.seed)
        self.issued = []
        self.violations = []
        self.calls = []
        self._seqs = {}
        self._store = {}
        self._by_pdv = {}
        self._last_invoicing = {}

    def set_config(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = set(data) - {"gap_seconds", "block_seconds", "dialect"}
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        data = dict(data)
        if "dialect" in data:
            self.config.dialect = dialect_from_json(data.pop("dialect"))
        values = {k: float(v) for k, v in data.items()}
        if any(v < 0 for v in values.values()):
            raise ValueError("gap_seconds and block_seconds must be >= 0")
        for key, value in values.items():
            setattr(self.config, key, value)
        return self.config_json()

    def config_json(self) -> dict[str, Any]:
        return {
            "gap_seconds": self.config.gap_seconds,
            "block_seconds": self.config.block_seconds,
            "dialect": self.config.dialect.spec(),
        }

    @property
    def dialect(self) -> Dialect:
        return self.config.dialect

    def _msg_10016(self) -> str:
        return MSG_10016_CATALOGUE if self.dialect.texts == "catalogue" else MSG_10016

    def _msg_rejected(self, inv: Invoice) -> str:
        if self.dialect.texts != "catalogue":
            return MSG_10015
        return MSGS_REJECTED_CATALOGUE[
            sum(map(ord, inv.external_reference)) % len(MSGS_REJECTED_CATALOGUE)
        ]

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        return {"issued": self.issued, "violations": self.violations, "calls": self.calls}

    # -- bookkeeping -----------------------------------------------------------------------

    def _call(
        self, endpoint: str, cuit: str | None, arrival: float, outcome: str, n: int = 0
    ) -> None:
        self.calls.append(
            {
                "endpoint": endpoint,
                "cuit": cuit,
                "arrival": arrival,
                "outcome": outcome,
                "invoices": n,
            }
        )

    def _violation(self, rule: str, cuit: str | None, detail: str, arrival: float) -> None:
        self.violations.append({"rule": rule, "cuit": cuit, "detail": detail, "arrival": arrival})

    def _refuse(
        self, endpoint: str, cuit: str | None, arrival: float, rej: Rejection, ext: str = ""
    ) -> Reply:
        if rej.rule:
            self._violation(rej.rule, cuit, rej.detail, arrival)
        self._call(endpoint, cuit, arrival, rej.outcome)
        return Reply(rej.status, error_body([rej.text], rej.code, ext))

    # -- phase 1 helpers -------------------------------------------------------------------

    def authenticate(self, body: dict[str, Any]) -> tuple[str, Pdv]:
        key = (
            str(body.get("apikey", "")),
            str(body.get("apitoken", "")),
            str(body.get("usertoken", "")),
        )
        try:
            found = self._credentials[key]
        except KeyError:
            try:
                found = self.tenants.find_by_credentials(*key)
            except UnknownPdv:
                found = None
            if found is not None or len(self._credentials) < 10_000:  # bound junk keys
                self._credentials[key] = found
        if found is None:
            raise Rejection(
                MSG_CREDENTIALS,
                "AUTH",
                rule="credentials",
                detail="unknown credentials",
                status=401,
                outcome="unauthorized",
            )
        return found

    def _maintenance(self, now: float) -> Reply | None:
        until = self.faults.maintenance_until
        if until is None or until.timestamp() <= now:
            return None
        local = until.astimezone(AR_TZ)
        hhmm = f"{local.hour:02d}:{local.minute:02d}"
        return Reply(
            200,
            {
                "error": "S",
                "mantenimiento": 1,
                "mantenimiento_hasta": f"{fmt_date(local.date())} {hhmm}",
                "errores": [f"Estaremos realizando tareas de mantenimiento hasta las {hhmm}"],
            },
        )

    def _afip_down(self, now: float) -> bool:
        until = self.faults.afip_down_until
        return until is not None and until.timestamp() > now

    def _afip_down_text(self) -> str:
        now = ar_now()
        return MSG_AFIP_DOWN.format(stamp=f"{fmt_date(now.date())} {now.hour:02d}:{now.minute:02d}")

    def _pre_faults(self, endpoint: str) -> tuple[Reply, str] | None:
        """HTTP 429 and 5xx, before anything is committed: (reply, ledger outcome) or None."""
        if self.faults.rate_429.fires(endpoint, self.rng):
            body = error_body([MSG_RATE_LIMIT], "RATE-LIMIT")
            return Reply(429, body, headers={"Retry-After": "1"}), "fault:rate_429"
        if self.faults.error_5xx.fires(endpoint, self.rng):
            if self.rng.random() < 0.5:
                code, reason = 502, "Bad Gateway"
            else:
                code, reason = 503, "Service Temporarily Unavailable"
            return Reply(code, HTML_5XX.format(code=code, reason=reason)), "fault:error_5xx"
        return None

    def _front_door(
        self, endpoint: str, raw: bytes, arrival: float
    ) -> tuple[dict[str, Any], str, Pdv] | Reply:
        """Maintenance, body, credentials, 429/5xx: common to every API endpoint."""
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        cuit: str | None = None
        maintenance = self._maintenance(arrival)
        if maintenance is not None:
            if isinstance(body, dict):
                found = self._credentials.get(
                    (
                        str(body.get("apikey", "")),
                        str(body.get("apitoken", "")),
                        str(body.get("usertoken", "")),
                    )
                )
                cuit = found[0] if found else None
            self._call(endpoint, cuit, arrival, "maintenance")
            return maintenance
        if not isinstance(body, dict):
            self._call(endpoint, None, arrival, "bad_request")
            return Reply(
                400,
                error_body(
                    ["El cuerpo del request debe ser un objeto JSON valido (UTF-8)."], "TFC-8001"
                ),
            )
        try:
            cuit, pdv = self.authenticate(body)
        except Rejection as rej:
            return self._refuse(endpoint, None, arrival, rej)
        fault = self._pre_faults(endpoint)
        if fault is not None:
            self._call(endpoint, cuit, arrival, fault[1])
            return fault[0]
        return body, cuit, pdv

    # -- phase 1: admission of invoicing calls ---------------------------------------------

    def admit(self, endpoint: str, raw: bytes, arrival: float) -> Admission | Reply:
        """Everything before "AFIP": a Reply when refused, else an Admission to commit."""
        front = self._front_door(endpoint, raw, arrival)
        if isinstance(front, Reply):
            return front
        body, cuit, pdv = front
        ext = ""
        if endpoint == NUEVO:
            comp = body.get("comprobante")
            if isinstance(comp, dict) and comp.get("external_reference") is not None:
                ext = str(comp.get("external_reference"))
        if self._afip_down(arrival):
            self._call(endpoint, cuit, arrival, "afip_down")
            return Reply(200, error_body([self._afip_down_text()], "AFIP-CAIDO", ext))
        tenant_text = self.faults.cuit_errors.get(cuit)
        if tenant_text is not None:
            self._call(endpoint, cuit, arrival, "cuit_error")
            return Reply(200, error_body([tenant_text], "", ext))
        quota = self.faults.quota.get(cuit)
        if quota is not None and quota <= 0:
            self._call(endpoint, cuit, arrival, "quota")
            return Reply(200, error_body([MSG_QUOTA], "CUPO", ext))
        try:
            if endpoint == NUEVO:
                invoices = [parse_invoice(body, pdv)]
            else:
                invoices = self._parse_lotes(body, pdv)
        except Rejection as rej:
            return self._refuse(endpoint, cuit, arrival, rej, ext)
        gap_refusal = self._gap(cuit, arrival)
        if gap_refusal is not None:
            return self._refuse(endpoint, cuit, arrival, gap_refusal, ext)
        if quota is not None:
            self.faults.quota[cuit] = quota - 1
        latency = self.faults.latency_ms
        jitter = self.faults.latency_jitter_ms
        if jitter > 0:
            latency = max(0.0, latency + self.rng.uniform(-jitter, jitter))
        return Admission(endpoint, cuit, pdv, arrival, invoices, latency / 1000.0)

    def _parse_lotes(self, body: dict[str, Any], pdv: Pdv) -> list[Invoice]:
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

    def _gap(self, cuit: str, arrival: float) -> Rejection | None:
        """The per-CUIT gap and AFIP block; a call that passes is the new reference."""
        blocked = self.faults.blocked_cuits.get(cuit)
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
            del self.faults.blocked_cuits[cuit]
        gap = self.config.gap_seconds
        last = self._last_invoicing.get(cuit)
        if gap > 0 and last is not None and arrival - last < gap:
            block = self.config.block_seconds
            if block > 0:
                self.faults.blocked_cuits[cuit] = datetime.fromtimestamp(arrival + block, AR_TZ)
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

    # -- phase 2: AFIP checks and commit ---------------------------------------------------

    def _afip_check(self, inv: Invoice, cuit: str, today: date) -> Rejection | None:
        """Rules 3-5 and the reject pattern against the current sequence state."""
        if abs(inv.expected - inv.total) > _TOTAL_TOLERANCE:
            return Rejection(
                f"El total enviado ({inv.total}) no coincide con el total calculado a partir de "
                f"los items ({inv.expected}). El comprobante no fue generado.",
                "TFC-8005",
                rule="total",
                detail=f"sent total {inv.total}, computed {inv.expected}",
            )
        seq = self._seqs.get((cuit, inv.punto_venta, inv.tipo))
        last_numero, last_fecha = (seq[0], seq[1]) if seq else (0, None)
        if inv.numero and inv.numero != last_numero + 1:
            return Rejection(
                self._msg_10016(),
                "AFIP-10016",
                rule="numbering",
                detail=(
                    f"{inv.tipo} {inv.punto_venta:05d}: numero {inv.numero} sent, "
                    f"next is {last_numero + 1}"
                ),
            )
        if last_fecha is not None and inv.fecha < last_fecha:
            return Rejection(
                self._msg_10016(),
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
        pattern = self.faults.reject_ref_pattern
        if pattern is not None and re.search(pattern, inv.external_reference):
            return Rejection(self.faults.reject_ref_text or self._msg_rejected(inv), "AFIP-10015")
        return None

    def _issue(self, inv: Invoice, adm: Admission, base_url: str) -> dict[str, Any]:
        """Issue one invoice: advance the sequence, store it, ledger it; the success fields."""
        cuit, pdv = adm.cuit, adm.pdv
        pv = inv.punto_venta
        key = (cuit, pv, inv.tipo)
        seq = self._seqs.get(key)
        if seq is None:
            seq = self._seqs[key] = [0, inv.fecha]
        numero = seq[0] + 1
        seq[0] = numero
        seq[1] = max(seq[1], inv.fecha)
        self._cae_counter += 1
        nro = f"{pv:05d}-{numero:08d}"
        fecha_str = fmt_date(inv.fecha)
        if pdv.test:
            cae = cae_field = venc_cae = qr = ""
        else:
            cae = f"{CAE_BASE + self._cae_counter:014d}"
            cae_field = cae + " "
            venc_cae = fmt_date(inv.fecha + timedelta(days=10))
            qr = _qr_url(cuit, pv, inv, numero, cae) + " "
        slug = _TIPO_CODES.get(inv.tipo, 0)
        pdf = f"{base_url}/_sandbox/pdf/{cuit}-{slug:03d}-{nro}.pdf"
        ticket = f"{base_url}/_sandbox/pdf/{cuit}-{slug:03d}-{nro}-ticket.pdf"
        venc_pago = fmt_date(inv.vencimiento) if inv.vencimiento else fecha_str
        envia = inv.cliente.get("envia_por_mail") == "S"
        razon = str(inv.cliente.get("razon_social") or "")
        result = {
            "error": "N",
            "errores": [""],
            "rta": f"El comprobante {inv.tipo} {nro} ({razon}) se ha guardado correctamente ",
            "cae": cae_field,
            "vencimiento_cae": venc_cae,
            "vencimiento_pago": venc_pago,
            "requiere_fec": "NO ",
            "comprobante_nro": nro,
            "comprobante_tipo": inv.tipo,
            "comprobante_pdf_url": pdf,
            "comprobante_ticket_url": ticket,
            "afip_qr": qr,
            "envio_x_mail": "S" if envia else "N",
            "envio_x_mail_direcciones": str(inv.cliente.get("email") or "") if envia else "",
            "external_reference": inv.external_reference,
            "micrositios": {"cliente": "", "descarga": ""},
            "observaciones": "",
        }
        comprobante = dict(inv.comp)
        comprobante.update(
            tipo=inv.tipo,
            operacion="V",
            punto_venta=pv,
            numero=numero,
            fecha=fecha_str,
            total=float(inv.total),
            cae=cae_field,
            vencimiento_cae=venc_cae,
            vencimiento_pago=venc_pago,
            afip_qr=qr,
            afip_observaciones="",
            comprobante_pdf_url=pdf,
            comprobante_ticket_url=ticket,
            external_reference=inv.external_reference,
            micrositios={"cliente": "", "descarga": ""},
            status="EMITIDO",
            ctacte_status="IMPAGA",
        )
        stored = _Stored(
            inv.cliente,
            comprobante,
            inv.fecha,
            len(self.issued),
            inv.external_reference,
            inv.tipo,
            numero,
        )
        self._store[(cuit, pv, inv.tipo, numero)] = stored
        self._by_pdv.setdefault((cuit, pv), []).append(stored)
        self.issued.append(
            {
                "cuit": cuit,
                "punto_venta": pv,
                "tipo": inv.tipo,
                "numero": numero,
                "external_reference": inv.external_reference,
                "fecha": fecha_str,
                "total": float(inv.total),
                "documento_nro": inv.documento_nro,
                "cae": cae,
                "test": pdv.test,
                "endpoint": adm.endpoint,
                "arrival": adm.arrival,
                "issued_at": time.time(),
            }
        )
        return result

    def commit(self, adm: Admission, base_url: str) -> Reply:
        """Phase 2: AFIP checks, issue, choose the post-commit fault, ledger the call."""
        today = ar_today()
        if self.faults.sequence_error.fires(adm.endpoint, self.rng):
            self._call(adm.endpoint, adm.cuit, adm.arrival, "fault:sequence_error")
            ext = adm.invoices[0].external_reference if adm.endpoint == NUEVO else ""
            return Reply(200, error_body([self._msg_10016()], "AFIP-10016", ext))
        if adm.endpoint == NUEVO:
            reply, issued = self._commit_nuevo(adm, base_url, today)
        else:
            reply, issued = self._commit_lotes(adm, base_url, today)
        if isinstance(reply.body, dict) and reply.body.get("error") == "N":
            outcome = "ok"
        else:
            outcome = "partial" if issued else "error"
        faults = self.faults
        if faults.drop_after_commit.fires(adm.endpoint, self.rng):
            reply.post, outcome = "drop", "fault:drop_after_commit"
        elif faults.lotes_524.fires(adm.endpoint, self.rng):
            reply = Reply(524, HTML_524)
            outcome = "fault:lotes_524"
        elif faults.garbage_after_commit.fires(adm.endpoint, self.rng):
            reply, outcome = Reply(200, HTML_GARBAGE), "fault:garbage_after_commit"
        elif faults.unknown_error_after_commit.fires(adm.endpoint, self.rng):
            reply = Reply(200, error_body([MSG_UNKNOWN], ""))
            outcome = "fault:unknown_error_after_commit"
        elif faults.hang_after_commit_ms > 0:
            reply.post, reply.hang_seconds = "hang", faults.hang_after_commit_ms / 1000.0
            outcome = "fault:hang_after_commit"
        self._call(adm.endpoint, adm.cuit, adm.arrival, outcome, issued)
        return reply

    def _commit_nuevo(self, adm: Admission, base_url: str, today: date) -> tuple[Reply, int]:
        inv = adm.invoices[0]
        rej = self._afip_check(inv, adm.cuit, today)
        if rej is not None:
            if rej.rule:
                self._violation(rej.rule, adm.cuit, rej.detail, adm.arrival)
            return Reply(200, error_body([rej.text], rej.code, inv.external_reference)), 0
        return Reply(200, self._issue(inv, adm, base_url)), 1

    def _commit_lotes(self, adm: Admission, base_url: str, today: date) -> tuple[Reply, int]:
        first = adm.invoices[0]
        seq = self._seqs.get((adm.cuit, first.punto_venta, first.tipo))
        expected = (seq[0] if seq else 0) + 1
        if first.numero != expected:
            detail = f"lotes starts at numero {first.numero}, next is {expected}"
            self._violation("numbering", adm.cuit, detail, adm.arrival)
            text = (
                f"El comprobante enviado en la fila 0 (comenzando en 0) tiene el numero "
                f"{first.numero}, pero el proximo a autorizar es {expected}. {self._msg_10016()} "
                "El lote no se procesara."
            )
            return Reply(200, error_body([text], "AFIP-10016")), 0
        results: list[dict[str, Any]] = []
        issued = 0
        rejected = False
        for inv in adm.invoices:
            nro = f"{inv.punto_venta:05d}-{inv.numero:08d}"
            if rejected:
                results.append(_lotes_item_error(inv, nro, [MSG_NO_PROCESADO]))
                continue
            rej = self._afip_check(inv, adm.cuit, today)
            if rej is not None:
                if rej.rule:
                    self._violation(rej.rule, adm.cuit, rej.detail, adm.arrival)
                results.append(_lotes_item_error(inv, nro, [rej.text]))
                rejected = True
                continue
            item = self._issue(inv, adm, base_url)
            item["errores"] = []
            item["cae_vencimiento"] = item["vencimiento_cae"]
            results.append(item)
            issued += 1
        if not rejected and self.dialect.lotes == "nested":
            # The newest lotes page's success example: one level deeper.
            nested = [{"error": "N", "errores": [], "response": results}]
            return Reply(200, {"error": "N", "errores": [], "response": nested}), issued
        body = {"error": "S" if rejected else "N", "errores": [], "response": results}
        return Reply(200, body), issued

    # -- queries ---------------------------------------------------------------------------

    def query(self, endpoint: str, raw: bytes, arrival: float) -> Reply:
        front = self._front_door(endpoint, raw, arrival)
        if isinstance(front, Reply):
            return front
        body, cuit, pdv = front
        try:
            if endpoint == NUMERACION:
                reply = self._numeracion(body, cuit, pdv)
            elif endpoint == CONSULTA:
                reply = self._consulta(body, cuit, pdv)
            elif endpoint == CONSULTA_AVANZADA:
                reply = self._consulta_avanzada(body, cuit, pdv)
            else:
                reply = self._alertas(arrival)
        except Rejection as rej:
            return self._refuse(endpoint, cuit, arrival, rej)
        outcome = (
            "ok" if isinstance(reply.body, dict) and reply.body.get("error") == "N" else "error"
        )
        if self.faults.drop_after_commit.fires(endpoint, self.rng):
            reply.post, outcome = "drop", "fault:drop_after_commit"
        elif self.faults.lotes_524.fires(endpoint, self.rng):
            reply, outcome = Reply(524, HTML_524), "fault:lotes_524"
        elif self.faults.garbage_after_commit.fires(endpoint, self.rng):
            reply, outcome = Reply(200, HTML_GARBAGE), "fault:garbage_after_commit"
        self._call(endpoint, cuit, arrival, outcome)
        return reply

    def _query_comp(self, body: dict[str, Any], pdv: Pdv, need_pv: bool = True) -> dict[str, Any]:
        comp = body.get("comprobante")
        if not isinstance(comp, dict):
            raise _bad("Debe enviar el bloque comprobante.")
        if need_pv or comp.get("punto_venta") not in (None, ""):
            pv = _int(comp.get("punto_venta"), "comprobante.punto_venta")
            if pv != pdv.punto_venta:
                raise Rejection(
                    f"El punto de venta {pv} no corresponde a las credenciales enviadas "
                    f"(punto de venta {pdv.punto_venta}).",
                    "PDV",
                )
        return comp

    @staticmethod
    def _tipo(comp: dict[str, Any]) -> str:
        tipo = comp.get("tipo")
        if not isinstance(tipo, str) or (
            tipo.strip() not in _TIPO_CODES and tipo.strip() not in _NOT_VALID_TIPOS
        ):
            raise _bad(f"El tipo de comprobante {tipo} no es valido.")
        return tipo.strip()

    def _numeracion(self, body: dict[str, Any], cuit: str, pdv: Pdv) -> Reply:
        comp = self._query_comp(body, pdv)
        tipo = self._tipo(comp)
        seq = self._seqs.get((cuit, pdv.punto_venta, tipo))
        last = seq[0] if seq else 0
        # The newest page: "el último número de comprobante emitido" (0: none yet).
        nxt = last if self.dialect.numeracion == "last" else last + 1
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

    def _consulta(self, body: dict[str, Any], cuit: str, pdv: Pdv) -> Reply:
        comp = self._query_comp(body, pdv)
        tipo = self._tipo(comp)
        numero = _int(comp.get("numero"), "comprobante.numero")
        stored = self._store.get((cuit, pdv.punto_venta, tipo, numero))
        if stored is None:
            raise _bad(
                self.dialect.not_found_text
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

    def _consulta_avanzada(self, body: dict[str, Any], cuit: str, pdv: Pdv) -> Reply:
        kind = body.get("busqueda_tipo")
        if kind not in ("F", "TN", "EXT_REF"):
            raise _bad("El campo busqueda_tipo debe ser F, TN o EXT_REF.")
        pagina = _int(body.get("pagina"), "pagina", default=0)
        limite = _int(body.get("limite"), "limite", default=CONSULTA_AVANZADA_MAX_LIMIT)
        if pagina < 0 or not 1 <= limite <= CONSULTA_AVANZADA_MAX_LIMIT:
            raise _bad(
                f"El campo limite debe estar entre 1 y {CONSULTA_AVANZADA_MAX_LIMIT} y pagina "
                "debe ser mayor o igual a 0."
            )
        comp = self._query_comp(body, pdv, need_pv=False)
        rows = self._by_pdv.get((cuit, pdv.punto_venta), [])
        if kind == "F":
            fecha = parse_date(comp.get("fecha"))
            if fecha is None:
                raise _bad("El campo comprobante.fecha debe tener el formato dd/mm/aaaa.")
            found = [s for s in rows if s.fecha == fecha]
        elif kind == "TN":
            tipo = self._tipo(comp)
            desde = _int(comp.get("numero_desde"), "comprobante.numero_desde", default=1)
            hasta = _int(comp.get("numero_hasta"), "comprobante.numero_hasta", default=99_999_999)
            found = [s for s in rows if s.tipo == tipo and desde <= s.numero <= hasta]
        else:
            ref = comp.get("external_reference")
            if not isinstance(ref, str) or not ref:
                raise _bad("El campo comprobante.external_reference es obligatorio.")
            found = [s for s in rows if s.external_reference == ref]
        found.sort(key=lambda s: (s.fecha, s.index), reverse=True)
        if not found and self.dialect.not_found_text:
            raise _bad(self.dialect.not_found_text, "TFC-8404")
        page = found[pagina * limite : (pagina + 1) * limite]
        return Reply(
            200,
            {
                "rta": "OK",
                "error": "N",
                "total": len(found),
                "errores": [],
                "comprobantes": [
                    {"cliente": s.cliente, "comprobante": s.comprobante} for s in page
                ],
            },
        )

    def _alertas(self, now: float) -> Reply:
        if self._afip_down(now):
            return Reply(
                200,
                {
                    "error": "S",
                    "errores": [],
                    "facturacion": self._afip_down_text(),
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


def _lotes_item_error(inv: Invoice, nro: str, texts: list[str]) -> dict[str, Any]:
    return {
        "error": "S",
        "errores": texts,
        "cae": "",
        "vencimiento_cae": "",
        "cae_vencimiento": "",
        "comprobante_nro": nro,
        "comprobante_tipo": inv.tipo,
        "observaciones": "",
        "rta": "",
        "comprobante_pdf_url": "",
        "afip_qr": "",
        "external_reference": inv.external_reference,
        "envio_x_mail": "",
        "envio_x_mail_direcciones": "",
    }


def _qr_url(cuit: str, pv: int, inv: Invoice, numero: int, cae: str) -> str:
    """AFIP's QR URL: https://www.afip.gob.ar/fe/qr/?p=<base64 JSON> (RG 4291)."""
    doc = inv.documento_nro
    payload = {
        "ver": 1,
        "fecha": inv.fecha.isoformat(),
        "cuit": int(cuit),
        "ptoVta": pv,
        "tipoCmp": _TIPO_CODES.get(inv.tipo, 0),
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
