"""The sandbox's PDFs: real one-page files at links that expire, and regenerar_pdf."""

from __future__ import annotations

import pytest
import requests

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import load_example
from worker.invoice.envelope import validate_envelope
from worker.invoice.rules import argentina_today
from worker.tenants import Pdv
from worker.tusfacturas.client import TusFacturasClient
from worker.tusfacturas.errors import TusFacturasError


def issue(sandbox: SandboxProcess, pdv: Pdv) -> tuple[TusFacturasClient, int, str]:
    body = validate_envelope(load_example("factura_b", argentina_today())).invoice_body()
    body["comprobante"]["punto_venta"] = pdv.punto_venta
    body["comprobante"]["numero"] = 0
    client = TusFacturasClient(sandbox.api_url, timeout_seconds=10)
    issued = client.nuevo(pdv, body)
    assert issued.numero is not None
    return client, issued.numero, issued.pdf_url


def test_links_serve_a_real_pdf_until_they_expire(sandbox: SandboxProcess, real_pdv: Pdv) -> None:
    client, numero, pdf_url = issue(sandbox, real_pdv)
    got = requests.get(pdf_url, timeout=5)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"
    assert got.content.startswith(b"%PDF-1.4")
    assert got.content.rstrip().endswith(b"%%EOF")
    assert f"{numero:08d}".encode() in got.content
    sandbox.set_config(pdf_link_seconds=0)
    gone = requests.get(pdf_url, timeout=5)
    assert gone.status_code == 404
    assert not gone.content.startswith(b"%PDF")
    fresh = client.regenerar_pdf(real_pdv, "FACTURA B", numero)
    assert fresh.pdf_url != pdf_url
    assert fresh.ticket_url
    sandbox.set_config(pdf_link_seconds=60)
    again = requests.get(fresh.pdf_url, timeout=5)
    assert again.status_code == 200
    assert again.content == got.content  # the same invoice, the same file
    calls = [c["endpoint"] for c in sandbox.ledger()["calls"]]
    assert calls.count("facturacion/regenerar_pdf") == 1


def test_regenerar_pdf_of_an_unknown_invoice_is_refused(
    sandbox: SandboxProcess, real_pdv: Pdv
) -> None:
    client = TusFacturasClient(sandbox.api_url, timeout_seconds=10)
    with pytest.raises(TusFacturasError) as refused:
        client.regenerar_pdf(real_pdv, "FACTURA B", 999)
    assert any("no existe" in m for m in refused.value.messages)
