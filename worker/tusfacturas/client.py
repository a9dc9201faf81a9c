"""The TusFacturas API v2 client: one pooled session, explicit timeouts, classified outcomes.

Every call either returns a normalized record or raises one `TusFacturasError` subclass
(`worker.tusfacturas.errors`). Invoice-generating calls are never retried here: whether a retry is
safe is the caller's decision, made after reconciliation. Credentials come from the
tenants file's `Pdv` at call time and are scrubbed from every message this module emits.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from worker.http_session import EnvironmentOnceSession
from worker.metrics import API_CALLS, API_SECONDS
from worker.settings import Settings
from worker.tenants import Pdv
from worker.tusfacturas.errors import (
    AmbiguousError,
    RateLimitedError,
    RejectedError,
    ServiceDownError,
    TenantBlockedError,
    TransientError,
    TusFacturasError,
    classify_error_body,
    says_not_found,
)
from worker.tusfacturas.replies import (
    IssuedInvoice,
    clean_str,
    issued_from_consulta,
    issued_from_reply,
    messages,
    parse_comprobante_nro,
    parse_int,
)

log = logging.getLogger("tfq.client")

NUEVO = "facturacion/nuevo"
LOTES = "facturacion/lotes"
NUMERACION = "facturacion/numeracion"
CONSULTA = "facturacion/consulta"
CONSULTA_AVANZADA = "facturacion/consulta_avanzada"
ALERTAS = "estado_servicios/alertas"
# Billed: the newest page counts every call as a request of the plan.
REGENERAR_PDF = "facturacion/regenerar_pdf"
INVOICING_ENDPOINTS = frozenset({NUEVO, LOTES})

# consulta_avanzada statuses of invoices that are not (yet) issued: queued ones, and
# queued ones that failed (referencia page; `nuevo_encola` and `lotes_encola`).
_NOT_ISSUED_STATUS = re.compile(r"\bCOLA\b|CON ERROR|PROCESAR", re.I)


def not_issued(status: str) -> bool:
    """Whether a consulta_avanzada row's `status` says it is not (yet) issued."""
    return bool(_NOT_ISSUED_STATUS.search(status))


@dataclass(frozen=True)
class BatchResult:
    """A `lotes` reply, item by item in the order sent: each issued or its failure.

    AFIP processes a batch in order and rejects everything after the first rejection;
    `first_failure` is that point, and what follows it was not processed.
    """

    items: list[IssuedInvoice | TusFacturasError]

    @property
    def first_failure(self) -> int | None:
        for i, item in enumerate(self.items):
            if isinstance(item, TusFacturasError):
                return i
        return None


@dataclass(frozen=True)
class PdfLinks:
    """Fresh links to an issued invoice's PDFs; like those `nuevo` returns, they work
    only on the day they are given."""

    pdf_url: str
    ticket_url: str | None


@dataclass(frozen=True)
class ServiceStatus:
    ok: bool
    facturacion: str
    maintenance: list[dict[str, Any]] = field(default_factory=list)


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the request provably never left: refused, unresolvable, unreachable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        arg = current.args[0] if current.args else None
        current = arg if isinstance(arg, BaseException) else current.__cause__
    return False


class TusFacturasClient:
    """One client per process; thread-safe for concurrent calls (requests' pooled session)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 100.0,
        connect_timeout_seconds: float = 10.0,
        pool_size: int = 64,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = (connect_timeout_seconds, timeout_seconds)
        self.session = EnvironmentOnceSession()
        # No automatic retries: a retried POST could issue a second invoice.
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=pool_size, max_retries=Retry(total=0, read=False)
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update(
            {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "tfq"}
        )
        # The HTTP Date of the last reply, for `tfq doctor`'s clock check (the last of any
        # thread's: a diagnostic, not a per-call value).
        self.last_reply_date: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TusFacturasClient:
        return cls(
            settings.api_url,
            timeout_seconds=settings.api_timeout_seconds,
            connect_timeout_seconds=settings.api_connect_timeout_seconds,
        )

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:
        return f"TusFacturasClient({self.base_url!r})"

    # --- invoicing --------------------------------------------------------------------

    def nuevo(self, pdv: Pdv, invoice: dict[str, Any]) -> IssuedInvoice:
        """Issue one invoice (`facturacion/nuevo`). `invoice` holds `cliente` and `comprobante`.

        A success that names another number or external_reference than the one sent is
        ambiguous (reconciled), never recorded as this invoice."""
        body = self._call(NUEVO, pdv, invoice)
        if clean_str(body.get("error")).upper() == "N" and (
            mismatch := _item_mismatch(body, invoice)
        ):
            raise AmbiguousError(f"{NUEVO}: {mismatch}", replied=True)
        return self._issued(body, pdv)

    def lotes(self, pdv: Pdv, invoices: list[dict[str, Any]]) -> BatchResult:
        """Issue up to 20 invoices of one tipo, in order (`facturacion/lotes`).

        Each item's reply is checked against what was sent: its number and its
        external_reference. A reply that names another invoice is ambiguous (reconciled),
        never recorded as issued for the wrong job.
        """
        requests_ = [{**pdv.credentials(), **inv} for inv in invoices]
        body = self._call(LOTES, pdv, {"requests": requests_}, raise_on_error=False)
        results = lotes_items(body)
        if results is None:
            if clean_str(body.get("error")).upper() == "S":
                raise self._scrub(classify_error_body(body, invoicing=True), pdv)
            raise AmbiguousError("lotes reply without a per-invoice response list")
        items: list[IssuedInvoice | TusFacturasError] = []
        for i, sent in enumerate(invoices):
            item = results[i] if i < len(results) else None
            if not isinstance(item, dict):
                items.append(AmbiguousError(f"no readable result for batch item {i}", replied=True))
                continue
            mismatch = _item_mismatch(item, sent)
            if mismatch:
                items.append(AmbiguousError(f"batch item {i}: {mismatch}", replied=True))
            elif clean_str(item.get("error")).upper() == "N":
                try:
                    items.append(self._issued(item, pdv))
                except TusFacturasError as exc:
                    items.append(exc)
            else:
                items.append(self._scrub(classify_error_body(item, invoicing=True), pdv))
        return BatchResult(items)

    def _issued(self, body: dict[str, Any], pdv: Pdv) -> IssuedInvoice:
        record = issued_from_reply(body, test_mode=pdv.test)
        if not record.cae and not pdv.test:
            # An empty CAE outside a test PDV is an anomaly, not a success: reconcile.
            raise AmbiguousError("the API reported success without a CAE")
        return record

    # --- queries (free of quota) ------------------------------------------------------

    def numeracion(self, pdv: Pdv, tipo: str) -> int:
        """What `facturacion/numeracion` answers for this PDV and tipo: a number >= 0.

        The pages disagree on its meaning: the next number to issue (older pages, the
        SDK) or the last one issued (the newest page, which also bills it). The caller
        finds out which with free queries; 0 can only mean "nothing issued yet". Never
        guesses on a bad reply.
        """
        body = self._call(
            NUMERACION,
            pdv,
            {"comprobante": {"tipo": tipo, "operacion": "V", "punto_venta": pdv.punto_venta}},
            raise_on_error=False,
        )
        if clean_str(body.get("error")).upper() == "S":
            if says_not_found(messages(body.get("errores"))):
                return 0  # nothing of this tipo issued at this PDV yet
            raise self._scrub(classify_error_body(body, invoicing=False), pdv)
        comp = body.get("comprobante")
        numero = parse_int(comp.get("numero")) if isinstance(comp, dict) else None
        if numero is None or numero < 0:
            raise TransientError("numeracion reply without a usable number")
        return numero

    def lookup(self, pdv: Pdv, tipo: str, numero: int) -> IssuedInvoice | None:
        """The issued invoice with this tipo and number at this PDV, or None.

        Decided from the reply's structure: `consulta_avanzada` by number range answers a
        list of `comprobantes` with their `total` count, so "none" needs no wording. An
        error reply is "none" only when its every text says not found; anything else
        raises (transient on a query: it never rejects a job).
        """
        found = self.consulta_avanzada(
            pdv,
            "TN",
            {
                "tipo": tipo,
                "punto_venta": pdv.punto_venta,
                "numero_desde": numero,
                "numero_hasta": numero,
            },
            limite=10,
        )
        for row in found:
            record = issued_from_consulta(row, test_mode=pdv.test)
            comp = row.get("comprobante") if isinstance(row.get("comprobante"), dict) else row
            status = clean_str(comp.get("status")) if isinstance(comp, dict) else ""
            if record.numero == numero and (record.tipo in (None, tipo)) and not not_issued(status):
                return record
        return None

    def consulta(self, pdv: Pdv, tipo: str, numero: int) -> IssuedInvoice | None:
        """`facturacion/consulta`: the invoice with this tipo and number, or None.

        The docs show no not-found reply for it, so None needs an error whose every text
        says so; `lookup` is the one reconciliation relies on.
        """
        body = self._call(CONSULTA, pdv, _one_invoice(pdv, tipo, numero), raise_on_error=False)
        if clean_str(body.get("error")).upper() == "S":
            if says_not_found(messages(body.get("errores"))):
                return None
            raise self._scrub(classify_error_body(body, invoicing=False), pdv)
        comp = body.get("comprobante")
        if not isinstance(comp, dict) or parse_int(comp.get("numero")) is None:
            raise TransientError("consulta reply without a comprobante")
        return issued_from_consulta(body, test_mode=pdv.test)

    def consulta_avanzada(
        self,
        pdv: Pdv,
        busqueda_tipo: str,
        comprobante: dict[str, Any],
        *,
        pagina: int = 0,
        limite: int = 100,
    ) -> list[dict[str, Any]]:
        """Search by date ("F"), number range ("TN") or external_reference ("EXT_REF")."""
        payload = {
            "busqueda_tipo": busqueda_tipo,
            "pagina": pagina,
            "limite": min(limite, 1000),
            "comprobante": {"operacion": "V", **comprobante},
        }
        body = self._call(CONSULTA_AVANZADA, pdv, payload, raise_on_error=False)
        if clean_str(body.get("error")).upper() == "S":
            if says_not_found(messages(body.get("errores"))):
                return []
            raise self._scrub(classify_error_body(body, invoicing=False), pdv)
        found = body.get("comprobantes")
        if isinstance(found, list):
            return [c for c in found if isinstance(c, dict)]
        if found is None and parse_int(body.get("total")) == 0:
            return []
        raise TransientError("consulta_avanzada reply without a list of comprobantes")

    def regenerar_pdf(self, pdv: Pdv, tipo: str, numero: int) -> PdfLinks:
        """New links to an issued invoice's PDF and ticket (`facturacion/regenerar_pdf`),
        for when the ones it was issued with have expired. Costs a request of the plan."""
        body = self._call(REGENERAR_PDF, pdv, _one_invoice(pdv, tipo, numero))
        pdf_url = clean_str(body.get("comprobante_pdf_url"))
        if not pdf_url:
            raise TransientError("regenerar_pdf reply without comprobante_pdf_url")
        return PdfLinks(pdf_url, clean_str(body.get("comprobante_ticket_url")) or None)

    def raw_query(self, pdv: Pdv, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A query's JSON reply as the API wrote it, error replies included (diagnostics:
        what an account's wordings are). Transport and HTTP failures still raise."""
        return self._call(endpoint, pdv, payload, raise_on_error=False)

    def estado_servicios(self, pdv: Pdv) -> ServiceStatus:
        """AFIP/ARCA and platform health (`estado_servicios/alertas`)."""
        body = self._call(ALERTAS, pdv, {}, raise_on_error=False)
        windows = body.get("prox_mantenimientos_programados")
        maintenance = (
            [w for w in windows if isinstance(w, dict)] if isinstance(windows, list) else []
        )
        if clean_str(body.get("mantenimiento")) == "1":
            raise self._scrub(classify_error_body(body, invoicing=False), pdv)
        facturacion = clean_str(body.get("facturacion"))
        ok = clean_str(body.get("error")).upper() != "S" and facturacion.upper() in ("OK", "")
        return ServiceStatus(ok=ok, facturacion=facturacion, maintenance=maintenance)

    # --- transport ----------------------------------------------------------------------

    def _call(
        self,
        endpoint: str,
        pdv: Pdv,
        payload: dict[str, Any],
        *,
        raise_on_error: bool = True,
    ) -> dict[str, Any]:
        """POST and return the JSON object; transport and HTTP failures are classified."""
        invoicing = endpoint in INVOICING_ENDPOINTS
        data = json.dumps({**pdv.credentials(), **payload}, ensure_ascii=False).encode("utf-8")
        started = time.perf_counter()
        try:
            body = self._post(endpoint, data, invoicing)
            if raise_on_error and clean_str(body.get("error")).upper() == "S":
                raise classify_error_body(body, invoicing=invoicing)
        except TusFacturasError as exc:
            self._scrub(exc, pdv)
            elapsed = time.perf_counter() - started
            API_CALLS.labels(endpoint, str(exc.kind)).inc()
            API_SECONDS.labels(endpoint).observe(elapsed)
            log.warning(
                "api call failed",
                extra={
                    "endpoint": endpoint,
                    "outcome": str(exc.kind),
                    "error": type(exc).__name__,
                    "http_status": exc.http_status,
                    "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            raise
        API_CALLS.labels(endpoint, "ok").inc()
        API_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        log.debug(
            "api call ok",
            extra={
                "endpoint": endpoint,
                "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return body

    def _post(self, endpoint: str, data: bytes, invoicing: bool) -> dict[str, Any]:
        unknown = AmbiguousError if invoicing else TransientError
        try:
            response = self.session.post(self.base_url + endpoint, data=data, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout:
            raise TransientError(f"{endpoint}: connect timeout") from None
        except requests.exceptions.ReadTimeout:
            raise unknown(f"{endpoint}: no reply within the read timeout") from None
        except requests.exceptions.SSLError:
            raise TransientError(f"{endpoint}: TLS handshake failed") from None
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise TransientError(f"{endpoint}: connection refused") from None
            raise unknown(f"{endpoint}: connection lost after sending") from None
        except requests.exceptions.RequestException as exc:
            raise unknown(f"{endpoint}: {type(exc).__name__} while reading the reply") from None

        status = response.status_code
        self.last_reply_date = response.headers.get("Date")
        body = _json_object(response)
        if status == 429:
            raise RateLimitedError(
                f"{endpoint}: HTTP 429, too many requests",
                http_status=429,
                retry_after_seconds=_retry_after_seconds(response),
            )
        if body is not None and clean_str(body.get("mantenimiento")) == "1":
            err = classify_error_body(body, invoicing=invoicing)
            err.http_status = status
            raise err
        if status in (401, 403):
            raise TenantBlockedError(
                f"{endpoint}: HTTP {status}, access denied (credentials or PDV)",
                messages=messages(body.get("errores")) if body else [],
                http_status=status,
            )
        if status in (404, 405):
            raise ServiceDownError(
                f"{endpoint}: HTTP {status}; check TFQ_API_URL", http_status=status
            )
        if status == 400:
            if body is not None and clean_str(body.get("error")).upper() == "S":
                err = classify_error_body(body, invoicing=invoicing)
                err.http_status = status
                raise err
            raise RejectedError(f"{endpoint}: HTTP 400, invalid input", http_status=status)
        if status not in (200, 201):
            # 5xx, 524 (origin timeout) and anything unexpected: the call may have landed.
            raise unknown(
                f"{endpoint}: HTTP {status}",
                http_status=status,
                retry_after_seconds=_retry_after_seconds(response),
            )
        if body is None:
            raise unknown(f"{endpoint}: HTTP {status} with an unreadable body", http_status=status)
        return body

    @staticmethod
    def _scrub(exc: TusFacturasError, pdv: Pdv) -> TusFacturasError:
        """Remove the credentials from anything the API echoed back."""
        secrets = [s for s in pdv.secrets() if s]
        if not secrets:
            return exc

        def clean(text: str) -> str:
            for secret in secrets:
                text = text.replace(secret, "[redacted]")
            return text

        exc.detail = clean(exc.detail)
        exc.messages = [clean(m) for m in exc.messages]
        exc.codes = [clean(c) for c in exc.codes]
        exc.args = (exc.detail,)
        return exc


def _one_invoice(pdv: Pdv, tipo: str, numero: int) -> dict[str, Any]:
    """The body that names one sales invoice of this PDV (consulta, regenerar_pdf)."""
    return {
        "comprobante": {
            "tipo": tipo,
            "operacion": "V",
            "punto_venta": pdv.punto_venta,
            "numero": numero,
        }
    }


def lotes_items(body: dict[str, Any]) -> list[Any] | None:
    """The per-invoice results of a `lotes` reply, in both documented shapes.

    Flat (`response: [item, ...]`, older pages and every error example) or nested one
    level deeper (`response: [{error, errores, response: [item, ...]}]`, the newest
    page's success example). None when there is no list at all.
    """
    results = body.get("response")
    if not isinstance(results, list):
        return None
    if (
        len(results) == 1
        and isinstance(results[0], dict)
        and isinstance(results[0].get("response"), list)
        and not any(k in results[0] for k in ("cae", "comprobante_nro", "comprobante_tipo"))
    ):
        return list(results[0]["response"])
    return results


def _item_mismatch(item: dict[str, Any], sent: dict[str, Any]) -> str:
    """Why a `lotes` item's reply is not about the invoice sent in its place, or ""."""
    comp = sent.get("comprobante") or {}
    pv, numero = parse_comprobante_nro(item.get("comprobante_nro"), item.get("rta"))
    sent_numero = parse_int(comp.get("numero"))
    if numero is not None and sent_numero and numero != sent_numero:  # 0: "the next one"
        return f"the reply names number {numero}, not {sent_numero}"
    sent_pv = parse_int(comp.get("punto_venta"))
    if pv is not None and sent_pv is not None and pv != sent_pv:
        return f"the reply names punto de venta {pv}, not {sent_pv}"
    ref = clean_str(item.get("external_reference"))
    if ref and comp.get("external_reference") and ref != comp["external_reference"]:
        return "the reply names another external_reference"
    return ""


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
