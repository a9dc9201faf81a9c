"""The sandbox (ops/sandbox) over real HTTP: every rule, every fault, the ledger."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import random
import re
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web

from ops.sandbox.app import create_app
from ops.sandbox.config import SandboxConfig, build_parser, config_from_args
from ops.sandbox.dates import AR_TZ
from ops.sandbox.dialect import NOT_FOUND_WORDINGS, PRESETS, parse_dialect
from ops.sandbox.engine import Sandbox
from ops.sandbox.faults import Faults, LatencyDist, parse_latency_dist
from ops.sandbox.invoice import expected_total
from ops.sandbox.server import SandboxProcess
from ops.sandbox.texts import MSG_10016_CATALOGUE, MSGS_REJECTED_CATALOGUE

TENANTS = Path(__file__).resolve().parent.parent / "ops" / "testkit" / "examples" / "tenants.toml"
RI = "20111111112"
MONO = "20267565393"
RI_3 = {
    "apikey": "1135",
    "apitoken": "sandbox-ri-3-apitoken",
    "usertoken": "sandbox-ri-3-usertoken",
}
RI_679 = {
    "apikey": "1134",
    "apitoken": "sandbox-ri-679-apitoken",
    "usertoken": "sandbox-ri-679-usertoken",
}
MONO_2 = {
    "apikey": "1136",
    "apitoken": "sandbox-mono-2-apitoken",
    "usertoken": "sandbox-mono-2-usertoken",
}
PV = {id(RI_3): 3, id(RI_679): 679, id(MONO_2): 2}


def today() -> date:
    return datetime.now(AR_TZ).date()


def d(offset_days: int = 0) -> str:
    return (today() + timedelta(days=offset_days)).strftime("%d/%m/%Y")


def invoice(
    creds: dict[str, str] = RI_3,
    *,
    ref: str = "ORD-1",
    numero: int | str | None = 0,
    fecha: str | None = None,
    tipo: str = "FACTURA B",
    total: float | str = 139.00,
    services: bool = False,
    **comp_extra: Any,
) -> dict[str, Any]:
    """A valid invoice request (Factura B for 114.88 + 21 % VAT = 139.00)."""
    fecha = fecha or d()
    comp: dict[str, Any] = {
        "tipo": tipo,
        "operacion": "V",
        "punto_venta": PV[id(creds)],
        "fecha": fecha,
        "vencimiento": fecha,
        "moneda": "PES",
        "cotizacion": 1,
        "idioma": 1,
        "rubro": "Servicios",
        "rubro_grupo_contable": "Servicios",
        "external_reference": ref,
        "detalle": [
            {
                "cantidad": 1,
                "afecta_stock": "N",
                "bonificacion_porcentaje": 0,
                "producto": {
                    "descripcion": "Hosting web",
                    "codigo": "HOST",
                    "lista_precios": "standard",
                    "unidad_bulto": 1,
                    "alicuota": 21,
                    "unidad_medida": 7,
                    "actualiza_precio": "N",
                    "rg5329": "N",
                    "precio_unitario_sin_iva": 114.88,
                },
            }
        ],
        "tributos": [],
        "bonificacion": 0,
        "total": total,
    }
    if numero is not None:
        comp["numero"] = numero
    if services:
        comp["periodo_facturado_desde"] = fecha
        comp["periodo_facturado_hasta"] = fecha
    comp.update(comp_extra)
    return {
        **creds,
        "cliente": {
            "documento_tipo": "DNI",
            "documento_nro": "11111111",
            "razon_social": "Juan Perez",
            "email": "a@b.com",
            "domicilio": "Av X 123",
            "provincia": "2",
            "envia_por_mail": "N",
            "condicion_pago": "201",
            "condicion_iva": "CF",
            "condicion_iva_operacion": "CF",
            "reclama_deuda": "N",
            "rg5329": "N",
        },
        "comprobante": comp,
    }


def lote_item(numero: int, ref: str, **kw: Any) -> dict[str, Any]:
    item = invoice(ref=ref, numero=numero, **kw)
    for key in ("apikey", "apitoken", "usertoken"):
        item.pop(key)
    return item


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(TENANTS, gap_seconds=0, block_seconds=120) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _clean(sandbox: SandboxProcess) -> None:
    sandbox.reset()


class Api:
    def __init__(self, sb: SandboxProcess):
        self.sb = sb

    def post(self, endpoint: str, body: Any, timeout: float = 10.0) -> requests.Response:
        return requests.post(self.sb.api_url + endpoint, json=body, timeout=timeout)

    def nuevo(self, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        r = self.post("facturacion/nuevo", body, timeout)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def lotes(self, requests_: list[dict[str, Any]], creds: dict[str, str] = RI_3) -> Any:
        r = self.post("facturacion/lotes", {**creds, "requests": requests_})
        assert r.status_code == 200, r.text
        return r.json()

    def numeracion(self, creds: dict[str, str] = RI_3, tipo: str = "FACTURA B") -> int:
        body = {
            **creds,
            "comprobante": {"tipo": tipo, "operacion": "V", "punto_venta": PV[id(creds)]},
        }
        r = self.post("facturacion/numeracion", body)
        assert r.status_code == 200
        data = r.json()
        assert data["error"] == "N", data
        numero: int = data["comprobante"]["numero"]
        return numero


@pytest.fixture
def api(sandbox: SandboxProcess) -> Api:
    return Api(sandbox)


def violations(sb: SandboxProcess, rule: str | None = None) -> list[dict[str, Any]]:
    found = sb.ledger()["violations"]
    return [v for v in found if rule is None or v["rule"] == rule]


# --- nuevo: success shapes ------------------------------------------------------------------


def test_nuevo_success_has_the_reference_shape(api: Api, sandbox: SandboxProcess) -> None:
    before = time.time()
    res = api.nuevo(invoice(ref="ORD-1001"))
    assert res["error"] == "N"
    assert res["errores"] == [""]
    assert re.fullmatch(r"\d{14} ", res["cae"])
    fecha = today()
    assert res["vencimiento_cae"] == (fecha + timedelta(days=10)).strftime("%d/%m/%Y")
    assert res["vencimiento_pago"] == d()
    assert res["comprobante_nro"] == "00003-00000001"
    assert res["comprobante_tipo"] == "FACTURA B"
    assert res["afip_qr"].startswith("https://www.afip.gob.ar/fe/qr/?p=")
    assert res["afip_qr"].endswith(" ")
    assert res["comprobante_pdf_url"].startswith(sandbox.url)
    assert requests.get(res["comprobante_pdf_url"], timeout=5).content.startswith(b"%PDF")
    assert res["requiere_fec"] == "NO "
    assert res["observaciones"] == ""
    assert res["external_reference"] == "ORD-1001"
    assert "00003-00000001" in res["rta"]
    assert "guardado correctamente" in res["rta"]

    ledger = sandbox.ledger()
    [issued] = ledger["issued"]
    assert issued["cuit"] == RI
    assert issued["punto_venta"] == 3
    assert issued["tipo"] == "FACTURA B"
    assert issued["numero"] == 1
    assert issued["external_reference"] == "ORD-1001"
    assert issued["fecha"] == d()
    assert issued["total"] == 139.0
    assert issued["documento_nro"] == "11111111"
    assert issued["cae"] == res["cae"].strip()
    assert issued["test"] is False
    assert issued["endpoint"] == "facturacion/nuevo"
    assert before <= issued["arrival"] <= issued["issued_at"] <= time.time()
    assert ledger["violations"] == []
    assert ledger["calls"][-1]["outcome"] == "ok"
    assert ledger["calls"][-1]["invoices"] == 1
    assert ledger["calls"][-1]["cuit"] == RI


def test_cae_is_unique_per_invoice(api: Api) -> None:
    caes = {api.nuevo(invoice(ref=f"R{i}"))["cae"] for i in range(5)}
    assert len(caes) == 5


def test_test_pdv_returns_empty_cae_in_the_same_shape(api: Api, sandbox: SandboxProcess) -> None:
    res = api.nuevo(invoice(RI_679))
    assert res["error"] == "N"
    assert res["cae"] == ""
    assert res["vencimiento_cae"] == ""
    assert res["afip_qr"] == ""
    assert res["comprobante_nro"] == "00679-00000001"
    real = api.nuevo(invoice(RI_3))
    assert set(res) == set(real)
    [test_row, real_row] = sandbox.ledger()["issued"]
    assert test_row["test"] is True
    assert test_row["cae"] == ""
    assert real_row["test"] is False


def test_factura_c_prices_are_final(api: Api) -> None:
    body = invoice(MONO_2, tipo="FACTURA C", total=200)
    body["comprobante"]["detalle"][0]["cantidad"] = 2
    body["comprobante"]["detalle"][0]["producto"]["precio_unitario_sin_iva"] = 100
    body["comprobante"]["detalle"][0]["producto"]["alicuota"] = 0
    res = api.nuevo(body)
    assert res["error"] == "N", res
    assert res["comprobante_nro"] == "00002-00000001"


# --- credentials and punto de venta ---------------------------------------------------------


def test_unknown_credentials_get_401_in_the_error_shape(api: Api, sandbox: SandboxProcess) -> None:
    body = invoice()
    body["apitoken"] = "wrong"
    r = api.post("facturacion/nuevo", body)
    assert r.status_code == 401
    data = r.json()
    assert data["error"] == "S"
    assert data["errores"]
    assert data["error_details"][0]["code"] == "AUTH"
    r = api.post("facturacion/numeracion", {"comprobante": {"tipo": "FACTURA B"}})
    assert r.status_code == 401
    ledger = sandbox.ledger()
    assert ledger["issued"] == []
    assert [v["rule"] for v in ledger["violations"]] == ["credentials", "credentials"]
    assert {c["outcome"] for c in ledger["calls"]} == {"unauthorized"}


def test_punto_de_venta_must_be_the_credentials_pdv(api: Api, sandbox: SandboxProcess) -> None:
    body = invoice(RI_3)
    body["comprobante"]["punto_venta"] = 679  # same CUIT, other PDV
    res = api.nuevo(body)
    assert res["error"] == "S"
    assert "punto de venta 679" in res["errores"][0]
    assert violations(sandbox, "credentials")
    body["comprobante"]["punto_venta"] = "00003"  # zero-padded string is fine
    assert api.nuevo(body)["error"] == "N"


def test_malformed_bodies_get_the_error_shape(api: Api) -> None:
    r = requests.post(api.sb.api_url + "facturacion/nuevo", data=b"{not json", timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == "S"
    r = api.post("facturacion/nuevo", [1, 2])
    assert r.status_code == 400
    assert r.json()["error"] == "S"
    res = api.nuevo({**RI_3, "cliente": {}})
    assert res["error"] == "S"
    assert "comprobante" in res["errores"][0]
    body = invoice()
    body["comprobante"]["detalle"][0]["cantidad"] = "mucho"
    res = api.nuevo(body)
    assert res["error"] == "S"
    assert "cantidad" in res["errores"][0]
    body = invoice(fecha="2025-01-01")
    assert "dd/mm/aaaa" in api.nuevo(body)["errores"][0]
    assert api.nuevo(invoice(ref="bad ref!"))["error_details"][0]["code"] == "TFC-8002"
    r = api.post("facturacion/no_such_thing", {})
    assert r.status_code == 404
    assert r.json()["error"] == "S"


def test_type_e_and_no_valida_are_refused(api: Api) -> None:
    for tipo in ("FACTURA E", "FACTURA NO VALIDA EN AFIP"):
        res = api.nuevo(invoice(tipo=tipo))
        assert res["error"] == "S"
        assert "no emite" in res["errores"][0]


# --- numbering ------------------------------------------------------------------------------


def test_numbering_auto_explicit_and_10016(api: Api, sandbox: SandboxProcess) -> None:
    assert api.numeracion() == 1
    assert api.nuevo(invoice(numero=None))["comprobante_nro"] == "00003-00000001"
    assert api.nuevo(invoice(numero=0))["comprobante_nro"] == "00003-00000002"
    assert api.nuevo(invoice(numero=3))["comprobante_nro"] == "00003-00000003"
    assert api.nuevo(invoice(numero="00000004"))["comprobante_nro"] == "00003-00000004"
    skip = api.nuevo(invoice(numero=7, ref="SKIP"))
    assert skip["error"] == "S"
    assert "10016" in skip["errores"][0]
    assert (
        "El numero o fecha del comprobante no se corresponde con el proximo a autorizar"
        in (skip["errores"][0])
    )
    assert "FECompUltimoAutorizado" in skip["errores"][0]
    assert skip["external_reference"] == "SKIP"
    dup = api.nuevo(invoice(numero=4))  # a retry of an already issued number
    assert "10016" in dup["errores"][0]
    assert api.numeracion() == 5
    # each tipo has its own sequence
    res = api.nuevo(invoice(tipo="NOTA DE CREDITO B", numero=1))
    assert res["comprobante_nro"] == "00003-00000001"
    assert api.numeracion(tipo="NOTA DE CREDITO B") == 2
    assert len(violations(sandbox, "numbering")) == 2


def test_fecha_before_the_last_issued_is_10016(api: Api, sandbox: SandboxProcess) -> None:
    assert api.nuevo(invoice(fecha=d(0)))["error"] == "N"
    res = api.nuevo(invoice(fecha=d(-1)))
    assert res["error"] == "S"
    assert "10016" in res["errores"][0]
    assert api.numeracion() == 2  # not consumed
    assert violations(sandbox, "numbering")


# --- dates ----------------------------------------------------------------------------------


def test_goods_date_window(api: Api, sandbox: SandboxProcess) -> None:
    res = api.nuevo(invoice(fecha=d(-6)))
    assert res["error"] == "S"
    assert "Campo CbteFch debe estar comprendido en el rango N-5 y N+5" in res["errores"][0]
    res = api.nuevo(invoice(fecha=d(6)))
    assert "N-5 y N+5" in res["errores"][0]
    first_of_next_month = (today().replace(day=28) + timedelta(days=4)).replace(day=1)
    res = api.nuevo(invoice(fecha=first_of_next_month.strftime("%d/%m/%Y")))
    assert res["error"] == "S"  # in the future and not in this month
    assert "N-5 y N+5" in res["errores"][0]
    assert api.numeracion() == 1
    assert api.nuevo(invoice(fecha=d(-5)))["error"] == "N"
    assert api.nuevo(invoice(fecha=d(0)))["error"] == "N"
    assert len(violations(sandbox, "date")) == 3


def test_services_date_window(api: Api) -> None:
    res = api.nuevo(invoice(fecha=d(-11), services=True))
    assert "N-10 y N+10" in res["errores"][0]
    res = api.nuevo(invoice(fecha=d(11), services=True))
    assert "N-10 y N+10" in res["errores"][0]
    assert api.nuevo(invoice(fecha=d(-10), services=True))["error"] == "N"
    assert api.nuevo(invoice(fecha=d(-7), services=True))["error"] == "N"
    assert api.nuevo(invoice(fecha=d(10), services=True))["error"] == "N"


def test_vencimiento_before_fecha_is_10036(api: Api, sandbox: SandboxProcess) -> None:
    res = api.nuevo(invoice(vencimiento=d(-1)))
    assert res["error"] == "S"
    assert "10036" in res["errores"][0]
    assert "FchVtoPago" in res["errores"][0]
    assert api.numeracion() == 1
    assert violations(sandbox, "date")


def test_periodo_desde_after_hasta_is_10032(api: Api) -> None:
    body = invoice(services=True, periodo_facturado_desde=d(1), periodo_facturado_hasta=d(0))
    res = api.nuevo(body)
    assert res["error"] == "S"
    assert "10032" in res["errores"][0]
    assert "FchServDesde" in res["errores"][0]
    assert api.numeracion() == 1


# --- totals ---------------------------------------------------------------------------------


def test_total_mismatch_is_refused_with_both_figures(api: Api, sandbox: SandboxProcess) -> None:
    res = api.nuevo(invoice(total=140))
    assert res["error"] == "S"
    assert "140" in res["errores"][0]
    assert "139.00" in res["errores"][0]
    assert api.numeracion() == 1
    [v] = violations(sandbox, "total")
    assert v["cuit"] == RI
    assert api.nuevo(invoice(total=139.01))["error"] == "N"  # within 0.01


def test_total_with_discounts_vat_mix_and_tributos(api: Api) -> None:
    body = invoice(total=290.95)
    comp = body["comprobante"]
    base = comp["detalle"][0]
    comp["detalle"] = [copy.deepcopy(base), copy.deepcopy(base)]
    comp["detalle"][0].update(cantidad=2, bonificacion_porcentaje=10)
    comp["detalle"][0]["producto"].update(precio_unitario_sin_iva=100, alicuota=21)
    comp["detalle"][1]["producto"].update(precio_unitario_sin_iva=50, alicuota=10.5)
    comp["bonificacion"] = 10
    comp["tributos"] = [
        {"tipo": 7, "regimen": 5, "base_imponible": 1000, "alicuota": 3, "total": 30}
    ]
    # 180 + 37.80 + 50 + 5.25 - 10 x 1.21 + 30 = 290.95
    assert api.nuevo(body)["error"] == "N"


def test_expected_total_rounds_half_even() -> None:
    comp: dict[str, Any] = {
        "detalle": [
            {"cantidad": 1, "producto": {"precio_unitario_sin_iva": "0.125", "alicuota": 0}}
        ]
    }
    assert expected_total(comp, "B") == Decimal("0.12")
    comp["detalle"][0]["producto"]["alicuota"] = -1
    assert expected_total(comp, "A") == Decimal("0.12")
    comp["impuestos_internos"] = 1
    assert expected_total(comp, "C") == Decimal("1.12")


# --- gap and block --------------------------------------------------------------------------


def test_gap_violation_blocks_the_cuit(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_config(gap_seconds=0.6, block_seconds=2)
    assert api.nuevo(invoice())["error"] == "N"
    res = api.nuevo(invoice(ref="TOO-SOON"))
    assert res["error"] == "S"
    assert "bloque" in res["errores"][0]
    assert RI in res["errores"][0]
    assert "2 segundos" in res["errores"][0]
    # every invoicing call during the block, on any PDV of the CUIT, gets the same error
    res = api.nuevo(invoice(RI_679))
    assert "bloque" in res["errores"][0]
    time.sleep(0.7)
    res = api.lotes([lote_item(2, "L1")])
    assert "bloque" in res["errores"][0]
    # queries are free, another CUIT is not affected
    assert api.numeracion() == 2
    assert api.nuevo(invoice(MONO_2, tipo="FACTURA C", total=114.88))["error"] == "N"
    assert sandbox.faults()["blocked_cuits"].keys() == {RI}
    time.sleep(1.5)
    assert api.nuevo(invoice())["error"] == "N"
    ledger = sandbox.ledger()
    assert [v["rule"] for v in ledger["violations"]] == ["gap", "blocked", "blocked"]
    assert all(v["cuit"] == RI for v in ledger["violations"])
    assert [i["numero"] for i in ledger["issued"] if i["cuit"] == RI] == [1, 2]
    assert [c["outcome"] for c in ledger["calls"]].count("blocked") == 3


def test_calls_refused_before_afip_do_not_count_for_the_gap(
    api: Api, sandbox: SandboxProcess
) -> None:
    sandbox.set_config(gap_seconds=30, block_seconds=60)
    sandbox.set_faults(error_5xx={"next": 1}, rate_429={"next": 1})
    assert api.post("facturacion/nuevo", invoice()).status_code == 429
    assert api.post("facturacion/nuevo", invoice()).status_code in (502, 503)
    bad = invoice()
    bad["apikey"] = "0"
    assert api.post("facturacion/nuevo", bad).status_code == 401
    assert api.nuevo(invoice(total=1, detalle=[]))["error"] == "S"  # malformed: TusFacturas side
    assert api.nuevo(invoice())["error"] == "N"
    assert violations(sandbox, "gap") == []


def test_explicit_block_from_the_control_api(api: Api, sandbox: SandboxProcess) -> None:
    faults = sandbox.set_faults(block_cuit={"cuit": MONO, "seconds": 60})
    assert MONO in faults["blocked_cuits"]
    res = api.nuevo(invoice(MONO_2, tipo="FACTURA C", total=114.88))
    assert "bloque" in res["errores"][0]
    assert res["error_details"][0]["code"] == "AFIP-BLOQUEO"
    sandbox.set_faults(blocked_cuits={MONO: None})
    assert api.nuevo(invoice(MONO_2, tipo="FACTURA C", total=114.88))["error"] == "N"


# --- lotes ----------------------------------------------------------------------------------


def test_lotes_issues_in_order(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_config(gap_seconds=30)
    items = [lote_item(1, "L1"), lote_item(2, "L2"), lote_item(3, "L3")]
    items[2]["apikey"] = RI_3["apikey"]  # per-item credentials are fine when equal
    res = api.lotes(items)
    assert res["error"] == "N"
    assert [r["comprobante_nro"] for r in res["response"]] == [
        "00003-00000001",
        "00003-00000002",
        "00003-00000003",
    ]
    for r in res["response"]:
        assert r["error"] == "N"
        assert re.fullmatch(r"\d{14} ", r["cae"])
        assert r["vencimiento_cae"]
        assert r["comprobante_tipo"] == "FACTURA B"
        assert r["afip_qr"].endswith(" ")
        assert {"errores", "observaciones", "rta", "comprobante_pdf_url"} <= r.keys()
    assert [r["external_reference"] for r in res["response"]] == ["L1", "L2", "L3"]
    ledger = sandbox.ledger()
    assert [i["numero"] for i in ledger["issued"]] == [1, 2, 3]
    assert {i["endpoint"] for i in ledger["issued"]} == {"facturacion/lotes"}
    assert ledger["calls"][-1]["invoices"] == 3
    assert violations(sandbox) == []  # one lotes call is one invoicing call for the gap


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "too_many",
            "Esta enviando 21 requests, cuando el limite permitido es 20. El lote no se procesara.",
        ),
        ("empty", "El lote no se procesara"),
        ("mixed_tipo", "tipo de comprobante diferente"),
        ("unordered_numero", "orden"),
        ("unordered_fecha", "orden"),
        ("numero_missing", "numero de comprobante informado"),
        ("not_next", "10016"),
        ("fce", "(FCE)"),
        ("other_credentials", "credenciales"),
    ],
)
def test_lotes_refused_as_a_whole(
    api: Api, sandbox: SandboxProcess, case: str, expected: str
) -> None:
    items = [lote_item(1, "A"), lote_item(2, "B"), lote_item(3, "C")]
    if case == "too_many":
        items = [lote_item(n, f"R{n}") for n in range(1, 22)]
    elif case == "empty":
        items = []
    elif case == "mixed_tipo":
        items[1]["comprobante"]["tipo"] = "FACTURA A"
    elif case == "unordered_numero":
        items = [lote_item(2, "A"), lote_item(1, "B")]
    elif case == "unordered_fecha":
        items = [lote_item(1, "A", fecha=d(0)), lote_item(2, "B", fecha=d(-1))]
    elif case == "numero_missing":
        items[1]["comprobante"]["numero"] = 0
    elif case == "not_next":
        items = [lote_item(5, "A"), lote_item(6, "B")]
    elif case == "fce":
        for item in items:
            item["comprobante"]["tipo"] = "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) B"
    elif case == "other_credentials":
        items[1].update(RI_679)
    res = api.lotes(items)
    assert res["error"] == "S"
    assert expected in res["errores"][0], res
    assert sandbox.ledger()["issued"] == []
    assert api.numeracion() == 1
    assert violations(sandbox)


def test_lotes_partial_failure_issues_the_prefix(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(reject_ref_pattern="^BAD")
    items = [
        lote_item(1, "OK-1"),
        lote_item(2, "OK-2"),
        lote_item(3, "BAD-3"),
        lote_item(4, "OK-4"),
    ]
    res = api.lotes(items)
    assert res["error"] == "S"
    r = res["response"]
    assert [x["error"] for x in r] == ["N", "N", "S", "S"]
    assert "10015" in r[2]["errores"][0]
    assert "no procesado" in r[3]["errores"][0]
    assert r[2]["cae"] == r[3]["cae"] == ""
    assert r[3]["comprobante_nro"] == "00003-00000004"
    assert r[3]["external_reference"] == "OK-4"
    assert [i["external_reference"] for i in sandbox.ledger()["issued"]] == ["OK-1", "OK-2"]
    [call] = [c for c in sandbox.ledger()["calls"] if c["endpoint"] == "facturacion/lotes"]
    assert (call["outcome"], call["invoices"]) == ("partial", 2)
    assert api.numeracion() == 3


def test_lotes_item_with_bad_date_stops_the_rest(api: Api) -> None:
    items = [lote_item(1, "A"), lote_item(2, "B", vencimiento=d(-3)), lote_item(3, "C")]
    res = api.lotes(items)
    assert [x["error"] for x in res["response"]] == ["N", "S", "S"]
    assert "10036" in res["response"][1]["errores"][0]
    assert api.numeracion() == 2


def test_reject_ref_pattern_on_nuevo_does_not_consume_the_number(
    api: Api, sandbox: SandboxProcess
) -> None:
    sandbox.set_faults(reject_ref_pattern="REJECT")
    res = api.nuevo(invoice(ref="X-REJECT-1"))
    assert res["error"] == "S"
    assert "10015" in res["errores"][0]
    assert api.numeracion() == 1
    assert api.nuevo(invoice(ref="fine"))["comprobante_nro"] == "00003-00000001"


# --- queries --------------------------------------------------------------------------------


def test_consulta_returns_the_stored_invoice(api: Api) -> None:
    issued = api.nuevo(invoice(ref="Q-1"))
    body: dict[str, Any] = {
        **RI_3,
        "comprobante": {"tipo": "FACTURA B", "operacion": "V", "punto_venta": "0003", "numero": 1},
    }
    data = api.post("facturacion/consulta", body).json()
    assert data["error"] == "N"
    assert data["rta"] == "OK"
    assert data["cliente"]["documento_nro"] == "11111111"
    comp = data["comprobante"]
    assert comp["numero"] == 1
    assert comp["punto_venta"] == 3
    assert comp["fecha"] == d()
    assert comp["total"] == 139.0
    assert comp["cae"] == issued["cae"]
    assert comp["cae"].endswith(" ")
    assert comp["vencimiento_cae"] == issued["vencimiento_cae"]
    assert comp["external_reference"] == "Q-1"
    assert comp["status"] == "EMITIDO"
    assert comp["afip_qr"] == issued["afip_qr"]
    assert comp["comprobante_pdf_url"] == issued["comprobante_pdf_url"]
    body["comprobante"]["numero"] = 2
    missing = api.post("facturacion/consulta", body).json()
    assert missing["error"] == "S"
    assert "no existe" in missing["errores"][0]


def test_consulta_avanzada_searches_newest_first_within_the_pdv(api: Api) -> None:
    for i in range(1, 4):
        api.nuevo(invoice(ref=f"AV-{i}", fecha=d(-3 + i)))
    api.nuevo(invoice(ref="AV-2"))  # refs are not unique
    api.nuevo(invoice(RI_679, ref="AV-1"))  # other PDV of the same CUIT

    def search(kind: str, comp: dict[str, Any], **kw: Any) -> dict[str, Any]:
        body = {**RI_3, "busqueda_tipo": kind, "comprobante": {"operacion": "V", **comp}, **kw}
        result: dict[str, Any] = api.post("facturacion/consulta_avanzada", body).json()
        return result

    by_ref = search("EXT_REF", {"external_reference": "AV-2"})
    assert by_ref["error"] == "N"
    assert by_ref["rta"] == "OK"
    assert by_ref["total"] == 2
    assert [c["comprobante"]["numero"] for c in by_ref["comprobantes"]] == [4, 2]
    assert search("EXT_REF", {"external_reference": "AV-1"})["total"] == 1
    by_fecha = search("F", {"fecha": d(0)})
    assert [c["comprobante"]["numero"] for c in by_fecha["comprobantes"]] == [4, 3]
    tn = {
        "tipo": "FACTURA B",
        "punto_venta": "00003",
        "numero_desde": "00000002",
        "numero_hasta": 4,
    }
    by_number = search("TN", tn)
    assert [c["comprobante"]["numero"] for c in by_number["comprobantes"]] == [4, 3, 2]
    page = search("TN", tn, pagina=1, limite=2)
    assert page["total"] == 3
    assert [c["comprobante"]["numero"] for c in page["comprobantes"]] == [2]
    assert search("TN", tn, limite=1001)["error"] == "S"
    assert search("XX", {})["error"] == "S"


def test_numeracion_response_shape(api: Api) -> None:
    body: dict[str, Any] = {
        **RI_679,
        "comprobante": {"tipo": "NOTA DE DEBITO B", "operacion": "V", "punto_venta": "679"},
    }
    data = api.post("facturacion/numeracion", body).json()
    assert data == {
        "error": "N",
        "errores": [""],
        "rta": "OK",
        "comprobante": {
            "tipo": "NOTA DE DEBITO B",
            "operacion": "V",
            "punto_venta": 679,
            "numero": 1,
        },
    }
    body["comprobante"]["punto_venta"] = 3
    assert api.post("facturacion/numeracion", body).json()["error"] == "S"


# --- service state: maintenance, AFIP down, quota -------------------------------------------


def test_alertas_ok_shape(api: Api) -> None:
    data = api.post("estado_servicios/alertas", RI_3).json()
    assert data["error"] == "N"
    assert data["rta"] == "OK"
    assert data["facturacion"] == "OK"
    assert data["prox_mantenimientos_programados"] == []


def test_maintenance_answers_every_api_request(api: Api, sandbox: SandboxProcess) -> None:
    faults = sandbox.set_faults(maintenance_minutes=30)
    until = datetime.fromisoformat(faults["maintenance_until"]).astimezone(AR_TZ)
    hhmm = until.strftime("%H:%M")
    for endpoint, body in [
        ("facturacion/nuevo", invoice()),
        ("facturacion/lotes", {**RI_3, "requests": [lote_item(1, "A")]}),
        ("facturacion/consulta", {**RI_3, "comprobante": {}}),
        ("estado_servicios/alertas", {"apikey": "nobody"}),
    ]:
        r = api.post(endpoint, body)
        assert r.status_code == 200
        assert r.json() == {
            "error": "S",
            "mantenimiento": 1,
            "mantenimiento_hasta": until.strftime("%d/%m/%Y ") + hhmm,
            "errores": [f"Estaremos realizando tareas de mantenimiento hasta las {hhmm}"],
        }
    ledger = sandbox.ledger()
    assert ledger["issued"] == []
    assert {c["outcome"] for c in ledger["calls"]} == {"maintenance"}
    sandbox.set_faults(maintenance_minutes=0)
    assert api.nuevo(invoice())["error"] == "N"


def test_afip_down(api: Api, sandbox: SandboxProcess) -> None:
    api.nuevo(invoice())
    sandbox.set_faults(afip_down_minutes=12)
    res = api.nuevo(invoice())
    assert res["error"] == "S"
    assert "AFIP" in res["errores"][0]
    assert "12 minutos" in res["errores"][0]
    alert = api.post("estado_servicios/alertas", RI_3).json()
    assert alert["error"] == "S"
    assert alert["rta"] == "ERROR"
    assert "12 minutos" in alert["facturacion"]
    assert api.numeracion() == 2  # queries still answer
    assert len(sandbox.ledger()["issued"]) == 1


def test_quota(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(quota={RI: 2})
    assert api.nuevo(invoice())["error"] == "N"
    assert api.lotes([lote_item(2, "A"), lote_item(3, "B")])["error"] == "N"
    res = api.nuevo(invoice())
    assert res["error"] == "S"
    assert "cupo" in res["errores"][0]
    assert sandbox.faults()["quota"] == {RI: 0}
    assert api.nuevo(invoice(MONO_2, tipo="FACTURA C", total=114.88))["error"] == "N"
    assert api.numeracion() == 4  # queries do not count


# --- faults ---------------------------------------------------------------------------------


def test_5xx_before_commit(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(error_5xx={"next": 2})
    for _ in range(2):
        r = api.post("facturacion/nuevo", invoice())
        assert r.status_code in (502, 503)
        assert r.headers["Content-Type"].startswith("text/html")
        assert "<html>" in r.text
    assert sandbox.ledger()["issued"] == []
    assert api.nuevo(invoice())["comprobante_nro"] == "00003-00000001"
    assert [c["outcome"] for c in sandbox.ledger()["calls"]] == [
        "fault:error_5xx",
        "fault:error_5xx",
        "ok",
    ]


def test_429_before_commit(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(rate_429={"rate": 1.0})
    r = api.post("facturacion/lotes", {**RI_3, "requests": [lote_item(1, "A")]})
    assert r.status_code == 429
    assert r.json()["error"] == "S"
    assert api.numeracion() == 1  # queries are not eligible by default
    assert sandbox.ledger()["issued"] == []


def test_faults_can_target_query_endpoints(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(error_5xx={"rate": 1.0, "endpoints": ["facturacion/consulta"]})
    assert api.nuevo(invoice())["error"] == "N"
    body = {
        **RI_3,
        "comprobante": {"tipo": "FACTURA B", "operacion": "V", "punto_venta": 3, "numero": 1},
    }
    assert api.post("facturacion/consulta", body).status_code in (502, 503)


def test_drop_after_commit(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(drop_after_commit={"next": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post("facturacion/nuevo", invoice(ref="DROPPED"))
    ledger = sandbox.ledger()
    [issued] = ledger["issued"]
    assert issued["external_reference"] == "DROPPED"
    assert ledger["calls"][-1]["outcome"] == "fault:drop_after_commit"
    assert api.numeracion() == 2
    # a blind retry of the same number is refused: the invoice exists
    assert "10016" in api.nuevo(invoice(numero=1))["errores"][0]


def test_lotes_524_after_commit(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(lotes_524={"next": 1})
    r = api.post("facturacion/lotes", {**RI_3, "requests": [lote_item(1, "A"), lote_item(2, "B")]})
    assert r.status_code == 524
    assert "524" in r.text
    assert r.headers["Content-Type"].startswith("text/html")
    assert [i["numero"] for i in sandbox.ledger()["issued"]] == [1, 2]
    assert api.nuevo(invoice())["error"] == "N"  # nuevo is not eligible by default


def test_hang_after_commit(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(hang_after_commit_ms=1500)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("facturacion/nuevo", invoice(ref="HANG"), timeout=0.3)
    [issued] = sandbox.ledger()["issued"]
    assert issued["external_reference"] == "HANG"
    sandbox.set_faults(hang_after_commit_ms=300)
    assert api.nuevo(invoice(), timeout=5)["error"] == "N"  # a patient client gets the answer


def test_client_disconnect_during_latency_still_commits(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(latency_ms=700)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("facturacion/nuevo", invoice(ref="LATE"), timeout=0.2)
    assert sandbox.ledger()["issued"] == []  # not yet: still in the latency
    deadline = started + 5
    while not sandbox.ledger()["issued"] and time.monotonic() < deadline:
        time.sleep(0.05)
    [issued] = sandbox.ledger()["issued"]
    assert issued["external_reference"] == "LATE"
    assert issued["issued_at"] - issued["arrival"] >= 0.65
    assert sandbox.ledger()["calls"][-1]["outcome"] == "ok"


def test_commit_is_shielded_even_when_the_runner_cancels_handlers() -> None:
    """In-process, with aiohttp's handler_cancellation=True: asyncio.shield alone saves it."""

    async def scenario() -> list[dict[str, Any]]:
        sandbox = Sandbox(SandboxConfig(tenants_file=TENANTS, gap_seconds=0))
        sandbox.faults.latency_ms = 300
        runner = web.AppRunner(create_app(sandbox), handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/app/api/v2/facturacion/nuevo"
        timeout = aiohttp.ClientTimeout(total=0.1)

        async def post() -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, json=invoice(), timeout=timeout) as resp,
            ):
                await resp.read()

        try:
            with pytest.raises(TimeoutError):
                await post()
            await asyncio.sleep(0.5)
            return list(sandbox.issued)
        finally:
            await runner.cleanup()

    issued = asyncio.run(scenario())
    assert [i["numero"] for i in issued] == [1]


def test_latency_jitter(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(latency_ms=200, latency_jitter_ms=100)
    started = time.monotonic()
    assert api.nuevo(invoice())["error"] == "N"
    assert 0.09 <= time.monotonic() - started < 2


# --- control API ----------------------------------------------------------------------------


def test_fault_control_merges_validates_and_resets(sandbox: SandboxProcess) -> None:
    faults = sandbox.set_faults(error_5xx={"rate": 0.25}, quota={RI: 5})
    assert faults["error_5xx"] == {"rate": 0.25, "next": 0, "endpoints": None}
    faults = sandbox.set_faults(error_5xx={"next": 3}, quota={MONO: 1})
    assert faults["error_5xx"] == {"rate": 0.25, "next": 3, "endpoints": None}
    assert faults["quota"] == {RI: 5, MONO: 1}
    assert faults["lotes_524"]["endpoints"] == ["facturacion/lotes"]
    until = datetime.now(AR_TZ) + timedelta(minutes=5)
    faults = sandbox.set_faults(afip_down_until=until)
    assert datetime.fromisoformat(faults["afip_down_until"]) == until
    r = requests.post(sandbox.url + "/_sandbox/faults", json={"no_such_fault": 1}, timeout=5)
    assert r.status_code == 400
    r = requests.post(sandbox.url + "/_sandbox/faults", json={"reject_ref_pattern": "("}, timeout=5)
    assert r.status_code == 400
    assert sandbox.faults()["reject_ref_pattern"] is None  # nothing applied on error
    r = requests.post(sandbox.url + "/_sandbox/config", json={"gap_seconds": -1}, timeout=5)
    assert r.status_code == 400
    sandbox.set_config(gap_seconds=5, block_seconds=7)
    sandbox.reset()
    assert sandbox.faults() == Faults().to_json()
    health = sandbox.health()
    assert health["status"] == "ok"
    assert (health["gap_seconds"], health["block_seconds"]) == (0, 120)


def test_cli_flags_build_the_config() -> None:
    ns = build_parser().parse_args(
        [
            "--port", "9001", "--gap", "1.5", "--block", "3", "--seed", "7",
            "--latency-ms", "10", "--latency-jitter-ms", "2", "--error-5xx-rate", "0.1",
            "--rate-429", "0.2", "--drop-after-commit-rate", "0.3", "--lotes-524-rate", "0.4",
            "--hang-after-commit-ms", "50", "--maintenance-minutes", "5",
            "--afip-down-minutes", "12", "--quota", f"{RI}=3", "--quota", f"{MONO}=0",
            "--reject-ref", "^X",
        ]
    )  # fmt: skip
    config = config_from_args(ns)
    assert (config.port, config.gap_seconds, config.block_seconds, config.seed) == (9001, 1.5, 3, 7)
    f = config.faults
    assert (f.latency_ms, f.latency_jitter_ms, f.hang_after_commit_ms) == (10, 2, 50)
    assert (f.error_5xx.rate, f.rate_429.rate) == (0.1, 0.2)
    assert (f.drop_after_commit.rate, f.lotes_524.rate) == (0.3, 0.4)
    assert f.quota == {RI: 3, MONO: 0}
    assert f.reject_ref_pattern == "^X"
    assert f.maintenance_until is not None
    assert f.afip_down_until is not None
    assert f.afip_down_until - datetime.now(AR_TZ) > timedelta(minutes=11)


def test_the_account_limit_flag() -> None:
    assert config_from_args(build_parser().parse_args([])).account_max_rps == 10
    ns = build_parser().parse_args(["--account-max-rps", "0"])
    assert config_from_args(ns).account_max_rps == 0


def test_an_account_over_its_limit_gets_429_before_anything(
    api: Api, sandbox: SandboxProcess
) -> None:
    """ "429: demasiadas solicitudes por segundo", per account, every endpoint counted."""
    assert sandbox.health()["account_max_rps"] == 0  # SandboxProcess: off unless asked
    sandbox.set_config(account_max_rps=2)
    body = {**RI_3, "comprobante": {"tipo": "FACTURA B", "operacion": "V", "punto_venta": 3}}
    assert api.post("facturacion/numeracion", body).status_code == 200
    assert api.nuevo(invoice())["error"] == "N"
    refused = api.post("facturacion/nuevo", invoice(ref="TOO-FAST"))
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
    assert refused.json()["error"] == "S"
    assert len(sandbox.ledger()["issued"]) == 1  # nothing done for the refused call
    assert api.numeracion(MONO_2) >= 1  # another account is not slowed
    (seen,) = violations(sandbox, "account_rate")
    assert (seen["cuit"], seen["account"]) == (RI, "u-" + sha256_hex("sandbox-ri-3-usertoken"))
    time.sleep(1.0)  # the second has passed; refused calls did not count
    assert api.nuevo(invoice(ref="TOO-FAST"))["error"] == "N"
    sandbox.reset()
    assert sandbox.health()["account_max_rps"] == 0


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_process_started_with_fault_flags() -> None:
    with SandboxProcess(
        TENANTS, gap_seconds=0, extra_args=["--quota", f"{RI}=0", "--seed", "1"]
    ) as sb:
        assert sb.faults()["quota"] == {RI: 0}
        res = requests.post(sb.api_url + "facturacion/nuevo", json=invoice(), timeout=5).json()
        assert "cupo" in res["errores"][0]
    assert "sandbox listening on http://127.0.0.1:" in sb.last_output


def test_latency_dist_parsing() -> None:
    assert parse_latency_dist("lognormal:250:2500:9000") == LatencyDist(250, 2500, 9000)
    for bad in ("lognormal:250:2500", "normal:1:2:3", "lognormal:a:2:3", "lognormal:300:200:900"):
        with pytest.raises(ValueError, match="lognormal"):
            parse_latency_dist(bad)
    ns = build_parser().parse_args(["--latency-dist", "lognormal:250:2500:9000"])
    assert config_from_args(ns).faults.latency_dist == LatencyDist(250, 2500, 9000)
    assert config_from_args(build_parser().parse_args([])).faults.latency_dist is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--latency-dist", "lognormal:0:1:2"])


def test_latency_dist_has_its_median_and_p99_and_cap() -> None:
    dist, rng = LatencyDist(250, 2500, 9000), random.Random(7)
    draws = sorted(dist.draw_ms(rng) for _ in range(40_000))
    assert draws[len(draws) // 2] == pytest.approx(250, rel=0.05)
    assert draws[int(len(draws) * 0.99)] == pytest.approx(2500, rel=0.12)
    assert max(draws) <= 9000
    capped = LatencyDist(250, 2500, 1000)
    assert max(capped.draw_ms(rng) for _ in range(5_000)) == 1000


def test_process_started_with_a_latency_dist() -> None:
    flags = ["--latency-dist", "lognormal:20:40:60", "--seed", "1"]
    with SandboxProcess(TENANTS, gap_seconds=0, extra_args=flags) as sb:
        assert sb.faults()["latency_dist"] == "lognormal:20:40:60"
        t0 = time.monotonic()
        res = requests.post(sb.api_url + "facturacion/nuevo", json=invoice(), timeout=5).json()
        assert res["error"] == "N"
        assert time.monotonic() - t0 >= 0.005


# --- dialects: the readings of the vendor's pages (ops/sandbox/dialect.py) -----------------


def test_dialect_parsing_presets_and_axes() -> None:
    assert parse_dialect("newest") == PRESETS["newest"]
    assert parse_dialect("newest,lotes=flat").lotes == "flat"
    assert parse_dialect("numeracion=last").numeracion == "last"
    with pytest.raises(ValueError, match="numeracion"):
        parse_dialect("numeracion=first")
    with pytest.raises(ValueError, match="presets"):
        parse_dialect("oldest")
    assert parse_dialect(PRESETS["mixed2"].spec()) == PRESETS["mixed2"]
    ns = build_parser().parse_args(["--dialect", "newest"])
    assert config_from_args(ns).dialect == PRESETS["newest"]


def test_numeracion_answers_next_or_last(api: Api, sandbox: SandboxProcess) -> None:
    # The newest page: "el último número de comprobante emitido"; older ones: the next.
    assert api.numeracion() == 1
    sandbox.set_config(dialect="numeracion=last")
    assert api.numeracion() == 0
    api.nuevo(invoice(ref="N1"))
    assert api.numeracion() == 1
    sandbox.set_config(dialect="classic")
    assert api.numeracion() == 2
    assert sandbox.set_config()["dialect"] == PRESETS["classic"].spec()


@pytest.mark.parametrize("wording", range(len(NOT_FOUND_WORDINGS)))
def test_not_found_in_each_wording(api: Api, sandbox: SandboxProcess, wording: int) -> None:
    sandbox.set_config(dialect=f"not_found={wording}")
    consulta = {**RI_3, "comprobante": {"tipo": "FACTURA B", "operacion": "V",
                                         "punto_venta": 3, "numero": 5}}  # fmt: skip
    data = api.post("facturacion/consulta", consulta).json()
    assert (data["error"], data["errores"]) == ("S", [NOT_FOUND_WORDINGS[wording]])
    avanzada = {**RI_3, "busqueda_tipo": "TN", "comprobante": {
        "tipo": "FACTURA B", "numero_desde": 5, "numero_hasta": 5}}  # fmt: skip
    data = api.post("facturacion/consulta_avanzada", avanzada).json()
    assert (data["error"], data["errores"]) == ("S", [NOT_FOUND_WORDINGS[wording]])
    sandbox.set_config(dialect="not_found=empty")
    data = api.post("facturacion/consulta_avanzada", avanzada).json()
    assert (data["error"], data["total"], data["comprobantes"]) == ("N", 0, [])


def test_lotes_success_nested_one_level_deeper(api: Api, sandbox: SandboxProcess) -> None:
    # The newest lotes page's success example: response: [{error, errores, response: [...]}].
    sandbox.set_config(dialect="lotes=nested")
    res = api.lotes([lote_item(1, "L1"), lote_item(2, "L2")])
    assert res["error"] == "N"
    (outer,) = res["response"]
    assert outer["error"] == "N"
    assert [r["comprobante_nro"] for r in outer["response"]] == ["00003-00000001", "00003-00000002"]
    # A partial failure keeps the flat shape of every error example.
    sandbox.set_faults(reject_ref_pattern="^L4$")
    res = api.lotes([lote_item(3, "L3"), lote_item(4, "L4")])
    assert [r["error"] for r in res["response"]] == ["N", "S"]


def test_catalogue_texts(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_config(dialect="texts=catalogue")
    api.nuevo(invoice(ref="C1"))
    data = api.nuevo(invoice(ref="C2", numero=5))
    assert data["errores"] == [MSG_10016_CATALOGUE]
    sandbox.set_faults(reject_ref_pattern="^C3$")
    data = api.nuevo(invoice(ref="C3"))
    assert data["errores"][0] in MSGS_REJECTED_CATALOGUE
    sandbox.set_faults(reject_ref_text="Debe enviar el bloque cliente completo.")
    assert api.nuevo(invoice(ref="C3"))["errores"] == ["Debe enviar el bloque cliente completo."]


def test_faults_of_the_dialect_tests(api: Api, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(unknown_error_after_commit={"next": 1})
    data = api.nuevo(invoice(ref="U1"))
    assert data["error"] == "S"
    assert [i["external_reference"] for i in sandbox.ledger()["issued"]] == ["U1"]  # issued
    sandbox.set_faults(sequence_error={"next": 1})
    data = api.nuevo(invoice(ref="U2"))
    assert "10016" in data["errores"][0]
    assert len(sandbox.ledger()["issued"]) == 1  # not issued
    sandbox.set_faults(cuit_errors={RI: "Java.null.pointer"})
    assert api.nuevo(invoice(ref="U3"))["errores"] == ["Java.null.pointer"]
    sandbox.set_faults(cuit_errors={RI: None})
    assert api.nuevo(invoice(ref="U3"))["error"] == "N"
