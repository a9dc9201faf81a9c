"""The TusFacturas client against the sandbox over real HTTP: replies and fault classes."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import load_example
from tests.conftest import RI_CUIT
from worker.http_session import EnvironmentOnceSession
from worker.invoice.envelope import validate_envelope
from worker.invoice.rules import argentina_today
from worker.tenants import Pdv
from worker.tusfacturas.client import TusFacturasClient
from worker.tusfacturas.errors import (
    AmbiguousError,
    OutcomeKind,
    RateLimitedError,
    RejectedError,
    SequenceError,
    ServiceDownError,
    TenantBlockedError,
    TransientError,
    TusFacturasError,
)
from worker.tusfacturas.replies import IssuedInvoice

TODAY = argentina_today()


def invoice(name: str = "factura_a", ref: str | None = None, numero: int = 0) -> dict[str, Any]:
    body = validate_envelope(load_example(name, TODAY)).invoice_body()
    if ref:
        body["comprobante"]["external_reference"] = ref
    body["comprobante"]["numero"] = numero
    return body


def for_pdv(body: dict[str, Any], pdv: Pdv) -> dict[str, Any]:
    body["comprobante"]["punto_venta"] = pdv.punto_venta
    return body


@pytest.fixture
def client(sandbox: SandboxProcess) -> Iterator[TusFacturasClient]:
    c = TusFacturasClient(sandbox.api_url, timeout_seconds=5, connect_timeout_seconds=2)
    yield c
    c.close()


def issued_refs(sandbox: SandboxProcess) -> list[str]:
    return [i["external_reference"] for i in sandbox.ledger()["issued"]]


# --- successes ----------------------------------------------------------------------


def test_nuevo_on_a_real_pdv_returns_a_clean_cae(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    issued = client.nuevo(real_pdv, invoice("factura_a", "A-1"))
    assert issued.cae.isdigit()
    assert len(issued.cae) == 14
    assert issued.cae_vencimiento is not None
    assert issued.afip_qr
    assert issued.afip_qr == issued.afip_qr.strip()
    assert (issued.punto_venta, issued.numero) == (3, 1)
    assert issued.test_mode is False
    assert issued_refs(sandbox) == ["A-1"]


def test_nuevo_on_a_test_pdv_is_success_without_cae(
    client: TusFacturasClient, test_pdv: Pdv
) -> None:
    issued = client.nuevo(test_pdv, invoice("factura_b", "B-1"))
    assert issued.cae == ""
    assert issued.test_mode is True
    assert issued.numero == 1


def test_numeracion_consulta_and_explicit_numbers(client: TusFacturasClient, real_pdv: Pdv) -> None:
    assert client.numeracion(real_pdv, "FACTURA A") == 1
    client.nuevo(real_pdv, invoice("factura_a", "N-1", numero=1))
    assert client.numeracion(real_pdv, "FACTURA A") == 2
    assert client.numeracion(real_pdv, "FACTURA B") == 1
    found = client.consulta(real_pdv, "FACTURA A", 1)
    assert found is not None
    assert found.numero == 1
    assert found.external_reference == "N-1"
    assert str(found.total) == "66983.7"
    assert found.documento_nro == "30712293841"
    assert client.consulta(real_pdv, "FACTURA A", 2) is None
    rows = client.consulta_avanzada(real_pdv, "EXT_REF", {"external_reference": "N-1"})
    assert len(rows) == 1


def test_wrong_number_is_a_sequence_error(client: TusFacturasClient, real_pdv: Pdv) -> None:
    with pytest.raises(SequenceError) as info:
        client.nuevo(real_pdv, invoice("factura_a", "S-1", numero=7))
    assert info.value.kind is OutcomeKind.AMBIGUOUS
    assert any("10016" in m for m in info.value.messages)


def test_lotes_all_issued(client: TusFacturasClient, test_pdv: Pdv) -> None:
    batch = [invoice("factura_b", f"L-{i}", numero=i + 1) for i in range(3)]
    result = client.lotes(test_pdv, batch)
    assert result.first_failure is None
    assert [getattr(i, "numero", None) for i in result.items] == [1, 2, 3]


def test_lotes_partial_failure(
    client: TusFacturasClient, test_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(reject_ref_pattern="^BAD-")
    batch = [
        invoice("factura_b", "P-1", numero=1),
        invoice("factura_b", "BAD-2", numero=2),
        invoice("factura_b", "P-3", numero=3),
    ]
    result = client.lotes(test_pdv, batch)
    assert result.first_failure == 1
    assert result.items[0].numero == 1  # type: ignore[union-attr]
    assert isinstance(result.items[1], RejectedError)
    assert isinstance(result.items[2], TusFacturasError)
    assert issued_refs(sandbox) == ["P-1"]


def test_lotes_over_the_limit_is_rejected_whole(client: TusFacturasClient, test_pdv: Pdv) -> None:
    batch = [invoice("factura_b", f"X-{i}", numero=i + 1) for i in range(21)]
    with pytest.raises(RejectedError):
        client.lotes(test_pdv, batch)


# --- failure classes ------------------------------------------------------------------


def test_data_rejection(client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(reject_ref_pattern="^BAD")
    with pytest.raises(RejectedError) as info:
        client.nuevo(real_pdv, invoice("factura_a", "BAD-1"))
    assert info.value.kind is OutcomeKind.REJECTED
    assert info.value.messages
    assert issued_refs(sandbox) == []


def test_5xx_on_an_invoicing_call_is_ambiguous(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(error_5xx={"next": 1})
    with pytest.raises(AmbiguousError) as info:
        client.nuevo(real_pdv, invoice("factura_a", "F-1"))
    assert info.value.http_status in (500, 502, 503)


def test_5xx_on_a_query_is_transient(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(error_5xx={"next": 1, "endpoints": ["facturacion/numeracion"]})
    with pytest.raises(TransientError) as info:
        client.numeracion(real_pdv, "FACTURA A")
    assert not isinstance(info.value, AmbiguousError)
    assert client.numeracion(real_pdv, "FACTURA A") == 1


def test_429_is_rate_limited(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(rate_429={"next": 1})
    with pytest.raises(RateLimitedError) as info:
        client.nuevo(real_pdv, invoice("factura_a", "R-1"))
    assert info.value.kind is OutcomeKind.TRANSIENT
    assert issued_refs(sandbox) == []


def test_drop_after_commit_is_ambiguous_and_was_issued(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(drop_after_commit={"next": 1})
    with pytest.raises(AmbiguousError):
        client.nuevo(real_pdv, invoice("factura_a", "D-1"))
    assert issued_refs(sandbox) == ["D-1"]
    # Reconciliation finds it.
    found = client.consulta(real_pdv, "FACTURA A", 1)
    assert found is not None
    assert found.external_reference == "D-1"


def test_524_on_lotes_is_ambiguous(
    client: TusFacturasClient, test_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(lotes_524={"next": 1})
    with pytest.raises(AmbiguousError) as info:
        client.lotes(test_pdv, [invoice("factura_b", "T-1", numero=1)])
    assert info.value.http_status == 524
    assert issued_refs(sandbox) == ["T-1"]


def test_read_timeout_after_commit_is_ambiguous(real_pdv: Pdv, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(hang_after_commit_ms=1500)
    impatient = TusFacturasClient(sandbox.api_url, timeout_seconds=0.5)
    with pytest.raises(AmbiguousError):
        impatient.nuevo(real_pdv, invoice("factura_a", "H-1"))
    impatient.close()
    assert issued_refs(sandbox) == ["H-1"]


def test_connection_refused_is_transient(real_pdv: Pdv) -> None:
    dead = TusFacturasClient("http://127.0.0.1:9/app/api/v2/", timeout_seconds=1)
    with pytest.raises(TransientError) as info:
        dead.nuevo(real_pdv, invoice())
    assert not isinstance(info.value, AmbiguousError)


def test_maintenance_is_service_down_with_end_time(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(maintenance_minutes=10)
    with pytest.raises(ServiceDownError) as info:
        client.nuevo(real_pdv, invoice("factura_a", "M-1"))
    until = info.value.until
    assert until is not None
    minutes = (until - datetime.now(UTC)).total_seconds() / 60
    assert 8 <= minutes <= 11


def test_afip_down(client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(afip_down_minutes=12)
    with pytest.raises(ServiceDownError):
        client.nuevo(real_pdv, invoice("factura_a", "AD-1"))
    status = client.estado_servicios(real_pdv)
    assert status.ok is False
    sandbox.reset()
    assert client.estado_servicios(real_pdv).ok is True


def test_quota_used_up_blocks_the_tenant(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(quota={RI_CUIT: 0})
    with pytest.raises(TenantBlockedError) as info:
        client.nuevo(real_pdv, invoice("factura_a", "Q-1"))
    assert info.value.until is None


def test_gap_block_blocks_the_tenant_until_a_time(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_config(gap_seconds=30, block_seconds=60)
    client.nuevo(real_pdv, invoice("factura_a", "G-1"))
    with pytest.raises(TenantBlockedError) as info:
        client.nuevo(real_pdv, invoice("factura_a", "G-2"))
    assert info.value.until is not None
    seconds = (info.value.until - datetime.now(UTC)).total_seconds()
    assert 50 <= seconds <= 61
    assert [v["rule"] for v in sandbox.ledger()["violations"]] == ["gap"]


def test_bad_credentials_block_the_tenant(
    client: TusFacturasClient, sandbox: SandboxProcess
) -> None:
    wrong = Pdv(punto_venta=3, apikey="1", apitoken="wrong-token", usertoken="wrong-user")
    with pytest.raises(TenantBlockedError) as info:
        client.nuevo(wrong, invoice())
    assert info.value.http_status == 401
    assert "wrong-token" not in str(info.value.as_dict())


# --- replies the sandbox cannot produce: a misbehaving server over real HTTP ---------------


class _CannedHandler(BaseHTTPRequestHandler):
    replies: ClassVar[dict[str, tuple[int, str, str]]] = {}
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        _CannedHandler.bodies.append(json.loads(self.rfile.read(length)))
        endpoint = self.path.split("/app/api/v2/")[-1]
        status, ctype, text = self.replies[endpoint]
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[tuple[str, dict[str, tuple[int, str, str]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _CannedHandler.replies = {}
    yield f"http://127.0.0.1:{server.server_port}/app/api/v2/", _CannedHandler.replies
    server.shutdown()
    server.server_close()


HTML = "text/html"
JSON = "application/json"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ((200, HTML, "<html><body>Error</body></html>"), AmbiguousError),
        ((200, JSON, '{"error": "N", "cae": '), AmbiguousError),
        ((200, JSON, "[1, 2]"), AmbiguousError),
        ((502, HTML, "<html>Bad gateway</html>"), AmbiguousError),
        (
            (200, JSON, '{"error": "N", "errores": [""], "cae": "", "comprobante_nro": "1"}'),
            AmbiguousError,
        ),
        ((200, JSON, '{"error": "S", "errores": []}'), AmbiguousError),
        (
            (
                200,
                JSON,
                '{"error": "S", "errores": ["AFIP No devolvio el CAE asociado. '
                '(Cod. Error #6661141.S1254)"]}',
            ),
            AmbiguousError,
        ),
        (
            (
                200,
                JSON,
                '{"error": "S", "errores": ["El tipo de documento enviado no es valido"],'
                ' "error_details": [{"code": "TFC-8004", "text": "x"}]}',
            ),
            RejectedError,
        ),
        ((404, HTML, "not found"), ServiceDownError),
        ((400, JSON, '{"error": "S", "errores": ["Falta el campo cliente"]}'), RejectedError),
    ],
)
def test_malformed_or_odd_replies_are_classified(
    canned: tuple[str, dict[str, tuple[int, str, str]]],
    real_pdv: Pdv,
    reply: tuple[int, str, str],
    expected: type[TusFacturasError],
) -> None:
    url, replies = canned
    replies["facturacion/nuevo"] = reply
    client = TusFacturasClient(url, timeout_seconds=2)
    with pytest.raises(expected):
        client.nuevo(real_pdv, invoice())


def test_numeracion_never_guesses(
    canned: tuple[str, dict[str, tuple[int, str, str]]], real_pdv: Pdv
) -> None:
    url, replies = canned
    # The newest page's reading: the last number issued, 0 when there is none. The caller
    # finds out with free queries which number that means (tests/test_dialects.py).
    replies["facturacion/numeracion"] = (
        200,
        JSON,
        '{"error": "N", "errores": [""], "comprobante": {"numero": 0}}',
    )
    assert TusFacturasClient(url).numeracion(real_pdv, "FACTURA A") == 0
    replies["facturacion/numeracion"] = (
        200,
        JSON,
        '{"error": "N", "errores": [""], "comprobante": {"numero": -1}}',
    )
    with pytest.raises(TransientError):
        TusFacturasClient(url).numeracion(real_pdv, "FACTURA A")
    replies["facturacion/numeracion"] = (200, JSON, '{"error": "N", "errores": [""]}')
    with pytest.raises(TransientError):
        TusFacturasClient(url).numeracion(real_pdv, "FACTURA A")
    replies["facturacion/numeracion"] = (200, HTML, "<html>oops</html>")
    with pytest.raises(TransientError):
        TusFacturasClient(url).numeracion(real_pdv, "FACTURA A")


def test_echoed_credentials_are_scrubbed_from_errors_and_logs(
    canned: tuple[str, dict[str, tuple[int, str, str]]],
    real_pdv: Pdv,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, replies = canned
    token = real_pdv.apitoken.get_secret_value()
    replies["facturacion/nuevo"] = (
        200,
        JSON,
        json.dumps({"error": "S", "errores": [f"token {token} no es valido"]}),
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TusFacturasError) as info:
        TusFacturasClient(url).nuevo(real_pdv, invoice())
    assert token not in str(info.value.as_dict())
    assert token not in str(info.value)
    assert token not in caplog.text
    # The request did carry the credentials, at the top level of the body.
    assert _CannedHandler.bodies[-1]["apitoken"] == token
    assert f"{real_pdv!r}".count(token) == 0


def test_html_page_after_commit_is_ambiguous_and_was_issued(
    client: TusFacturasClient, real_pdv: Pdv, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(garbage_after_commit={"next": 1})
    with pytest.raises(AmbiguousError):
        client.nuevo(real_pdv, invoice("factura_a", "G-HTML"))
    assert issued_refs(sandbox) == ["G-HTML"]


# --- replies in every documented shape ---------------------------------------------------

# The newest lotes page's items (api-factura-electronica-api-facturacion-por-lotes.md @025a731).
_LOTE_ITEM = {
    "error": "N", "errores": [], "cae": "68466696512853 ", "cae_vencimiento": "26/11/2018",
    "vencimiento_cae": "26/11/2018", "vencimiento_pago": "16/11/2018",
    "comprobante_tipo": "FACTURA A", "comprobante_pdf_url": "https://www.dominio.com/074.pdf",
    "comprobante_ticket_url": "https://www.dominio.com/url",
    "micrositios": {"cliente": "https://m.example/c", "descarga": "url-del-micrositio"},
}  # fmt: skip


def _lote_items(first: int, refs: list[str]) -> list[dict[str, Any]]:
    return [
        {**_LOTE_ITEM, "comprobante_nro": f"00003-{first + i:08d}", "external_reference": ref}
        for i, ref in enumerate(refs)
    ]


def _sent(first: int, refs: list[str]) -> list[dict[str, Any]]:
    return [
        {"comprobante": {"punto_venta": 3, "numero": first + i, "external_reference": ref}}
        for i, ref in enumerate(refs)
    ]


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_lotes_successes_flat_and_nested(
    canned: tuple[str, dict[str, tuple[int, str, str]]], real_pdv: Pdv, shape: str
) -> None:
    url, replies = canned
    items = _lote_items(74, ["A", "B"])
    body: dict[str, Any] = {"error": "N", "errores": [], "response": items}
    if shape == "nested":  # the newest page's success example
        body["response"] = [{"error": "N", "errores": [], "response": items}]
    replies["facturacion/lotes"] = (200, JSON, json.dumps(body))
    result = TusFacturasClient(url).lotes(real_pdv, _sent(74, ["A", "B"]))
    assert result.first_failure is None
    first = result.items[0]
    assert isinstance(first, IssuedInvoice)
    assert (first.numero, first.cae, first.ticket_url) == (
        74,
        "68466696512853",
        "https://www.dominio.com/url",
    )
    assert first.vencimiento_pago == date(2018, 11, 16)
    # "url-del-micrositio" is the docs' placeholder, not a link.
    assert first.micrositios == {"cliente": "https://m.example/c"}


def test_a_lotes_item_about_another_invoice_is_ambiguous(
    canned: tuple[str, dict[str, tuple[int, str, str]]], real_pdv: Pdv
) -> None:
    url, replies = canned
    items = _lote_items(74, ["A", "X", "C"])  # the second names another external_reference
    items[2]["comprobante_nro"] = "00003-00000099"  # the third another number
    replies["facturacion/lotes"] = (
        200,
        JSON,
        json.dumps({"error": "N", "errores": [], "response": items}),
    )
    result = TusFacturasClient(url).lotes(real_pdv, _sent(74, ["A", "B", "C"]))
    assert isinstance(result.items[0], IssuedInvoice)
    assert isinstance(result.items[1], AmbiguousError)
    assert "external_reference" in result.items[1].detail
    assert isinstance(result.items[2], AmbiguousError)
    assert "number 99" in result.items[2].detail


def test_lookup_decides_not_found_from_structure(
    canned: tuple[str, dict[str, tuple[int, str, str]]], real_pdv: Pdv
) -> None:
    url, replies = canned
    client = TusFacturasClient(url)
    # consulta-avanzada.md: {"rta", "error", "total", "errores", "comprobantes"}
    replies["facturacion/consulta_avanzada"] = (
        200, JSON, '{"rta": "OK", "error": "N", "total": 0, "errores": [], "comprobantes": []}'
    )  # fmt: skip
    assert client.lookup(real_pdv, "FACTURA A", 5) is None
    replies["facturacion/consulta_avanzada"] = (
        200, JSON, '{"error": "S", "errores": ["No se han encontrado comprobantes."]}'
    )  # fmt: skip
    assert client.lookup(real_pdv, "FACTURA A", 5) is None
    # A queued or failed invoice of that number is not an issued one (status, consulta page).
    queued = {"cliente": {}, "comprobante": {"tipo": "FACTURA A", "numero": 5, "cae": " ",
              "status": "ENVIADO A PROCESAR - CON ERROR"}}  # fmt: skip
    replies["facturacion/consulta_avanzada"] = (
        200, JSON, json.dumps({"error": "N", "total": 1, "errores": [], "comprobantes": [queued]})
    )  # fmt: skip
    assert client.lookup(real_pdv, "FACTURA A", 5) is None
    issued = {"cliente": {"documento_nro": "1"}, "comprobante": {
        "tipo": "FACTURA A", "numero": 5, "cae": "65301278726386 ", "status": "EMITIDO",
        "total": 121, "fecha": "01/12/2026"}}  # fmt: skip
    replies["facturacion/consulta_avanzada"] = (
        200, JSON, json.dumps({"error": "N", "total": 1, "errores": [], "comprobantes": [issued]})
    )  # fmt: skip
    found = client.lookup(real_pdv, "FACTURA A", 5)
    assert found is not None
    assert found.cae == "65301278726386"
    # Any other error is the query's failure, never "not found" and never a rejection.
    replies["facturacion/consulta_avanzada"] = (
        200, JSON, '{"error": "S", "errores": ["Error interno, intente mas tarde"]}'
    )  # fmt: skip
    with pytest.raises(TransientError):
        client.lookup(real_pdv, "FACTURA A", 5)


def test_a_nuevo_success_about_another_invoice_is_ambiguous(
    canned: tuple[str, dict[str, tuple[int, str, str]]], real_pdv: Pdv
) -> None:
    url, replies = canned
    reply = {**_LOTE_ITEM, "comprobante_nro": "00003-00000075", "external_reference": "A"}
    replies["facturacion/nuevo"] = (200, JSON, json.dumps(reply))
    with pytest.raises(AmbiguousError, match="number 75"):
        TusFacturasClient(url).nuevo(real_pdv, _sent(74, ["A"])[0])
    replies["facturacion/nuevo"] = (
        200,
        JSON,
        json.dumps({**reply, "comprobante_nro": "00003-00000074"}),
    )
    assert TusFacturasClient(url).nuevo(real_pdv, _sent(74, ["A"])[0]).numero == 74


def test_the_environment_proxy_is_read_once_and_still_used(
    canned: tuple[str, dict[str, tuple[int, str, str]]],
    real_pdv: Pdv,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, replies = canned
    replies["facturacion/numeracion"] = (
        200,
        JSON,
        '{"error": "N", "errores": [""], "comprobante": {"numero": 7}}',
    )
    proxy = url.split("/app/")[0]  # the canned server answers as the proxy
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = TusFacturasClient("http://api.tusfacturas.invalid/app/api/v2/")
    assert client.numeracion(real_pdv, "FACTURA A") == 7
    # The environment is read at a host's first call, not on every call after it.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert client.numeracion(real_pdv, "FACTURA A") == 7


def test_environment_once_session_merges_as_requests_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/tfq/bundle.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    session = EnvironmentOnceSession()
    got = session.merge_environment_settings("https://api.invalid/x", {}, None, None, None)
    assert got["verify"] == "/etc/tfq/bundle.pem"
    assert got["proxies"]["https"] == "http://proxy.invalid:3128"
    # A request's own settings win over the environment's.
    got = session.merge_environment_settings(
        "https://api.invalid/x", {"https": "http://other.invalid:1"}, None, False, None
    )
    assert got["verify"] is False
    assert got["proxies"]["https"] == "http://other.invalid:1"
