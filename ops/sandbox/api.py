"""The API surface the sandbox serves: endpoint paths, limits, and its reply and refusal shapes.

`error_details[].code` values used by the sandbox (the real catalogue is not public):
`TFC-8001` malformed or missing data, `TFC-8002` bad external_reference, `TFC-8003` type
not supported by this method, `TFC-8005` total mismatch, `TFC-8010` lotes structure,
`AUTH` bad credentials (HTTP 401), `PDV` punto de venta not of these credentials, `CUPO`
quota used up, `AFIP-CAIDO` AFIP down, `AFIP-BLOQUEO` CUIT blocked by AFIP, `RATE-LIMIT`
HTTP 429, `AFIP-<code>` errors relayed from AFIP (10016, 10036, 10032, 10015, 0).

The sandbox keeps its own copy of the endpoint names: it is the oracle tfq is tested
against, so it never imports them from `worker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NUEVO = "facturacion/nuevo"
LOTES = "facturacion/lotes"
NUMERACION = "facturacion/numeracion"
CONSULTA = "facturacion/consulta"
CONSULTA_AVANZADA = "facturacion/consulta_avanzada"
ALERTAS = "estado_servicios/alertas"
REGENERAR_PDF = "facturacion/regenerar_pdf"
INVOICING_ENDPOINTS: tuple[str, ...] = (NUEVO, LOTES)
# Not invoicing (no gap, no number): the reads, and regenerating an invoice's PDF links.
QUERY_ENDPOINTS: tuple[str, ...] = (
    NUMERACION,
    CONSULTA,
    CONSULTA_AVANZADA,
    ALERTAS,
    REGENERAR_PDF,
)
API_ENDPOINTS: tuple[str, ...] = INVOICING_ENDPOINTS + QUERY_ENDPOINTS

LOTES_MAX_REQUESTS = 20
CONSULTA_AVANZADA_MAX_LIMIT = 1000


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


def bad(text: str, code: str = "TFC-8001") -> Rejection:
    """A refusal of malformed or missing data (TFC-8001 unless told)."""
    return Rejection(text, code)
