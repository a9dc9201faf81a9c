"""The words of the fake API: its error texts, HTML error pages and AFIP's messages.

Texts follow `docs/reference/tusfacturas_api.md` (§4.2, §4.3, §6.1) and, under the
"catalogue" dialect, the vendor's error catalogue and endpoint pages.
"""

from __future__ import annotations

import math

from ops.sandbox.dates import ar_now, fmt_date
from ops.sandbox.dialect import Dialect

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
    """AFIP's temporary block of a CUIT, with the seconds left."""
    return (
        f"AFIP bloqueó temporalmente la emisión de comprobantes para el CUIT {cuit}. "
        f"Reintente en {max(1, math.ceil(seconds))} segundos."
    )


def msg_10016(dialect: Dialect) -> str:
    """AFIP's numbering refusal in the dialect's wording."""
    return MSG_10016_CATALOGUE if dialect.texts == "catalogue" else MSG_10016


def msg_rejected(dialect: Dialect, external_reference: str) -> str:
    """AFIP rejecting an invoice's data; under the catalogue dialect, one of its wordings."""
    if dialect.texts != "catalogue":
        return MSG_10015
    return MSGS_REJECTED_CATALOGUE[sum(map(ord, external_reference)) % len(MSGS_REJECTED_CATALOGUE)]


def afip_down_text() -> str:
    """The AFIP-down notice, stamped with the current Argentina time."""
    now = ar_now()
    return MSG_AFIP_DOWN.format(stamp=f"{fmt_date(now.date())} {now.hour:02d}:{now.minute:02d}")
