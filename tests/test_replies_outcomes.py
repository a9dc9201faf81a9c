"""Reply normalization and the error-text classification table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from worker.tusfacturas.errors import (
    AmbiguousError,
    RejectedError,
    SequenceError,
    ServiceDownError,
    TenantBlockedError,
    TransientError,
    TusFacturasError,
    classify_error_body,
)
from worker.tusfacturas.replies import issued_from_reply, parse_comprobante_nro


@pytest.mark.parametrize(
    ("nro", "rta", "expected"),
    [
        ("0000123", None, (None, 123)),
        ("00003-00000074", None, (3, 74)),
        ("00010-00000000", None, (10, 0)),
        (" 00003 - 00000074 ", None, (3, 74)),
        ("", "El comprobante FACTURA B 00003-00000123 (...) se ha guardado", (3, 123)),
        (None, None, (None, None)),
        ("garbage", None, (None, None)),
    ],
)
def test_comprobante_nro_formats(
    nro: Any, rta: Any, expected: tuple[int | None, int | None]
) -> None:
    assert parse_comprobante_nro(nro, rta) == expected


def test_success_reply_is_normalized() -> None:
    # The documented success shape (tusfacturas_api.md §4.1), trailing spaces included.
    reply = {
        "error": "N",
        "errores": [""],
        "rta": "ok",
        "cae": "65301278726386 ",
        "vencimiento_cae": "07/08/2025",
        "vencimiento_pago": "27/08/2025",
        "requiere_fec": "NO ",
        "comprobante_nro": "00003-00000123",
        "comprobante_tipo": "FACTURA B",
        "comprobante_pdf_url": "https://x/a.pdf",
        "afip_qr": "https://www.afip.gob.ar/fe/qr/?p=abc ",
        "external_reference": "ABC123",
        "observaciones": "",
    }
    issued = issued_from_reply(reply)
    assert issued.cae == "65301278726386"
    assert issued.afip_qr.endswith("p=abc")
    assert issued.cae_vencimiento == date(2025, 8, 7)
    assert issued.requiere_fec is False
    assert (issued.punto_venta, issued.numero, issued.tipo) == (3, 123, "FACTURA B")
    assert issued.as_dict()["cae_vencimiento"] == "2025-08-07"


NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def err(*texts: str, **extra: Any) -> dict[str, Any]:
    return {"error": "S", "errores": list(texts), **extra}


@pytest.mark.parametrize(
    ("body", "invoicing", "expected"),
    [
        (
            err(
                "Estaremos realizando tareas de mantenimiento hasta las 05:25",
                mantenimiento=1,
                mantenimiento_hasta="24/11/2026 05:25",
            ),
            True,
            ServiceDownError,
        ),
        (
            err(
                "Los servicios de AFIP se encuentran caídos; impediremos que factures por un lapso "
                "de 12 minutos."
            ),
            True,
            ServiceDownError,
        ),
        # The catalogue lists it under an expired or misconfigured certificate: this
        # tenant's configuration, not a global outage.
        (err("No se puede establecer la comunicación con ARCA"), True, TenantBlockedError),
        (
            err(
                "AFIP Factura electronica, informa el siguiente error: Cod. Error: "
                "#6661145.10016 - El numero o fecha del comprobante no se corresponde con el "
                "proximo a autorizar."
            ),
            True,
            SequenceError,
        ),
        (err("Has alcanzado el cupo de comprobantes de tu plan"), True, TenantBlockedError),
        (
            err("AFIP bloqueó temporalmente la emisión. Reintente en 120 segundos."),
            True,
            TenantBlockedError,
        ),
        (
            err("El punto de venta no se encuentra habilitado para el presente WS"),
            True,
            TenantBlockedError,
        ),
        (
            err("ValidacionDeToken: No apareció CUIT en lista de relaciones"),
            True,
            TenantBlockedError,
        ),
        (err("javax.ejb.EJBTransactionRolledbackException"), True, AmbiguousError),
        (err("javax.ejb.EJBTransactionRolledbackException"), False, TransientError),
        (
            err("AFIP No devolvio el CAE asociado. (Cod. Error #6661141.S1254)"),
            True,
            AmbiguousError,
        ),
        (
            err(
                "AFIP No devolvio el CAE asociado.",
                "#6661145.10036 - El campo FchVtoPago no "
                "puede ser anterior a la fecha del comprobante.",
            ),
            True,
            RejectedError,
        ),
        (
            err("El campo FchServDesde no puede ser posterior al campo FchServHasta. Cod: 10032"),
            True,
            RejectedError,
        ),
        (
            err(
                "El tipo de documento enviado no es valido",
                error_details=[{"code": "TFC-8004", "text": "x"}],
            ),
            True,
            RejectedError,
        ),
        (err(""), True, AmbiguousError),
    ],
)
def test_error_texts_are_classified(
    body: dict[str, Any], invoicing: bool, expected: type[TusFacturasError]
) -> None:
    got = classify_error_body(body, invoicing=invoicing, now=NOW)
    assert type(got) is expected, got.as_dict()


def test_maintenance_end_is_argentina_time() -> None:
    got = classify_error_body(
        err("x", mantenimiento=1, mantenimiento_hasta="24/11/2026 05:25"), invoicing=True, now=NOW
    )
    assert got.until == datetime(2026, 11, 24, 8, 25, tzinfo=UTC)


def test_block_duration_is_read_from_the_text() -> None:
    got = classify_error_body(err("CUIT bloqueado por 3 minutos"), invoicing=True, now=NOW)
    assert got.until == NOW + timedelta(minutes=3)
