"""Invoice models: the examples, the API's own examples, and every refusal's field path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ops.testkit.examples import load_example, load_examples
from worker.errors import InvalidJob
from worker.invoice.envelope import JobEnvelope, validate_envelope
from worker.invoice.rules import argentina_today, expected_totals

TODAY = argentina_today()


def example(name: str = "factura_b") -> dict[str, Any]:
    return load_example(name, TODAY)


def d(days: int = 0) -> str:
    return (TODAY + timedelta(days=days)).strftime("%d/%m/%Y")


def refusal_paths(data: Any, **kw: Any) -> list[str]:
    with pytest.raises(InvalidJob) as info:
        validate_envelope(data, **kw)
    return [e.path for e in info.value.errors]


@pytest.mark.parametrize("name", sorted(load_examples()))
def test_every_example_validates(name: str) -> None:
    env = validate_envelope(example(name))
    assert env.key == (env.cuit, env.invoice.comprobante.external_reference)
    body = env.invoice_body()
    assert "apikey" not in body
    # What we send is JSON with numbers as numbers and dates as the API writes them.
    text = json.dumps(body)
    assert '"total": ' in text
    assert body["comprobante"]["fecha"] == TODAY.strftime("%d/%m/%Y")


def test_condicion_iva_operacion_filled_from_condicion_iva() -> None:
    data = example("factura_b")
    data["invoice"]["cliente"].pop("condicion_iva_operacion", None)
    env = validate_envelope(data)
    assert env.invoice.cliente.condicion_iva_operacion == "CF"
    assert env.invoice_body()["cliente"]["condicion_iva_operacion"] == "CF"


# The vendor's Factura B example (tusfacturas_api.md §3.7), credentials removed.
VENDOR_FACTURA_B = {
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
    "comprobante": {
        "tipo": "FACTURA B",
        "operacion": "V",
        "punto_venta": 3,
        "numero": 0,
        "fecha": "28/03/2025",
        "vencimiento": "28/03/2025",
        "moneda": "PES",
        "cotizacion": 1,
        "idioma": 1,
        "periodo_facturado_desde": "28/03/2025",
        "periodo_facturado_hasta": "28/03/2025",
        "rubro": "Servicios",
        "rubro_grupo_contable": "Servicios",
        "external_reference": "ORD-1001",
        "datos_informativos": {"paga_misma_moneda": "N"},
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
        "total": 139.00,
    },
}
VENDOR_DATE = date(2025, 3, 28)


def test_vendor_factura_b_example_validates_unchanged() -> None:
    env = validate_envelope(
        {"cuit": "20111111112", "invoice": copy.deepcopy(VENDOR_FACTURA_B)}, today=VENDOR_DATE
    )
    assert env.invoice.comprobante.total == Decimal("139.00")
    assert env.invoice.cliente.provincia == 2


def test_vendor_fragments_validate_unchanged() -> None:
    """The item (§3.3), tributos (§3.4), notes (§3.5) and rg_especiales (§3.6) examples."""
    inv = copy.deepcopy(VENDOR_FACTURA_B)
    c = inv["comprobante"]
    c["detalle"] = [
        {
            "cantidad": 1.5,
            "afecta_stock": "N",
            "bonificacion_porcentaje": 0,
            "leyenda": "",
            "producto": {
                "descripcion": "HUEVOS",
                "unidad_bulto": 30,
                "lista_precios": "MAPPLETS",
                "codigo": "MPH",
                "precio_unitario_sin_iva": 50,
                "alicuota": 10.5,
                "unidad_medida": 7,
                "impuestos_internos_alicuota": 0,
                "actualiza_precio": "N",
                "rg5329": "N",
            },
        }
    ]
    c["tributos"] = [{"tipo": 7, "regimen": 5, "base_imponible": 1000, "alicuota": 3, "total": 30}]
    # 75.00 net + 7.88 VAT + 30 tributo
    c["total"] = 112.88
    assert validate_envelope({"cuit": "20111111112", "invoice": inv}, today=VENDOR_DATE)

    note = copy.deepcopy(inv)
    nc = note["comprobante"]
    nc["tipo"] = "NOTA DE CREDITO B"
    nc["comprobantes_asociados"] = [
        {
            "tipo_comprobante": "FACTURA B",
            "punto_venta": 3,
            "numero": 123,
            "comprobante_fecha": "03/03/2021",
            "cuit": 30712293841,
        }
    ]
    assert validate_envelope({"cuit": "30712293841", "invoice": note}, today=VENDOR_DATE)
    nc.pop("comprobantes_asociados")
    nc["comprobantes_asociados_periodo"] = {
        "fecha_desde": "20/11/2020",
        "fecha_hasta": "25/11/2020",
    }
    assert validate_envelope({"cuit": "30712293841", "invoice": note}, today=VENDOR_DATE)

    fce = copy.deepcopy(load_example("factura_a", TODAY))
    fc = fce["invoice"]["comprobante"]
    fc["tipo"] = "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) A"
    fc["rg_especiales"] = {
        "regimen": "Factura de Crédito Electrónica MiPyMEs (FCE)",
        "datos": [{"id": 2101, "valor": "0140000000000000000001"}, {"id": 27, "valor": "SCA"}],
    }
    assert validate_envelope(fce)


def test_sdk_style_empty_period_block_is_absent() -> None:
    data = example("factura_b")
    data["invoice"]["comprobante"]["comprobantes_asociados_periodo"] = {
        "fecha_desde": "",
        "fecha_hasta": "",
    }
    assert validate_envelope(data).invoice.comprobante.comprobantes_asociados_periodo is None


Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()
C = "invoice.comprobante"
CL = "invoice.cliente"
P0 = f"{C}.detalle.0.producto"

INVALID: list[tuple[str, str, list[Mutation], str]] = [
    # (id, example, mutations, expected field path)
    ("issuer-cuit-check-digit", "factura_b", [_set("cuit", "20111111113")], "cuit"),
    ("issuer-cuit-format", "factura_b", [_set("cuit", "20-11111111-2")], "cuit"),
    (
        "receiver-cuit-check-digit",
        "factura_a",
        [_set(f"{CL}.documento_nro", "30712293842")],
        f"{CL}.documento_nro",
    ),
    (
        "receiver-is-issuer",
        "factura_a",
        [_set(f"{CL}.documento_nro", "20111111112")],
        f"{CL}.documento_nro",
    ),
    (
        "receiver-dni-length",
        "factura_b",
        [_set(f"{CL}.documento_nro", "123456789012")],
        f"{CL}.documento_nro",
    ),
    (
        "receiver-doc-dots",
        "factura_b",
        [_set(f"{CL}.documento_nro", "28.765.432")],
        f"{CL}.documento_nro",
    ),
    ("tipo-unknown", "factura_b", [_set(f"{C}.tipo", "FACTURA Z")], f"{C}.tipo"),
    ("letter-b-to-ri", "factura_a", [_set(f"{C}.tipo", "FACTURA B")], f"{CL}.condicion_iva"),
    ("letter-a-to-cf", "factura_b", [_set(f"{C}.tipo", "FACTURA A")], f"{CL}.condicion_iva"),
    (
        "letter-a-needs-cuit",
        "factura_a",
        [_set(f"{CL}.documento_tipo", "DNI"), _set(f"{CL}.documento_nro", "28765432")],
        f"{CL}.documento_tipo",
    ),
    (
        "operacion-condition",
        "factura_b",
        [_set(f"{CL}.condicion_iva_operacion", "RI")],
        f"{CL}.condicion_iva_operacion",
    ),
    ("date-format", "factura_b", [_set(f"{C}.fecha", "2026-11-20")], f"{C}.fecha"),
    (
        "date-goods-too-old",
        "factura_b",
        [_set(f"{C}.fecha", d(-6)), _set(f"{C}.vencimiento", d(0))],
        f"{C}.fecha",
    ),
    (
        "date-goods-too-far",
        "factura_b",
        [_set(f"{C}.fecha", d(6)), _set(f"{C}.vencimiento", d(30))],
        f"{C}.fecha",
    ),
    ("date-services-too-old", "servicios", [_set(f"{C}.fecha", d(-11))], f"{C}.fecha"),
    (
        "vencimiento-before-fecha",
        "factura_b",
        [_set(f"{C}.vencimiento", d(-1))],
        f"{C}.vencimiento",
    ),
    (
        "periodo-reversed",
        "servicios",
        [_set(f"{C}.periodo_facturado_desde", d(-1)), _set(f"{C}.periodo_facturado_hasta", d(-2))],
        f"{C}.periodo_facturado_desde",
    ),
    (
        "periodo-half",
        "servicios",
        [_set(f"{C}.periodo_facturado_hasta", _DELETE)],
        f"{C}.periodo_facturado_hasta",
    ),
    ("moneda-unknown", "factura_b", [_set(f"{C}.moneda", "USD")], f"{C}.moneda"),
    ("cotizacion-zero", "factura_dolares", [_set(f"{C}.cotizacion", 0)], f"{C}.cotizacion"),
    (
        "alicuota-unknown",
        "factura_b",
        [_set(f"{P0}.alicuota", 22)],
        f"{C}.detalle[0].producto.alicuota",
    ),
    ("total-mismatch", "factura_b", [_set(f"{C}.total", 36001.00)], f"{C}.total"),
    ("total-three-decimals", "factura_b", [_set(f"{C}.total", "36000.001")], f"{C}.total"),
    ("total-zero", "factura_b", [_set(f"{C}.total", 0)], f"{C}.total"),
    (
        "external-reference-missing",
        "factura_b",
        [_set(f"{C}.external_reference", _DELETE)],
        f"{C}.external_reference",
    ),
    (
        "external-reference-space",
        "factura_b",
        [_set(f"{C}.external_reference", "ORD 1")],
        f"{C}.external_reference",
    ),
    (
        "external-reference-long",
        "factura_b",
        [_set(f"{C}.external_reference", "X" * 256)],
        f"{C}.external_reference",
    ),
    (
        "too-many-items",
        "factura_b",
        [
            lambda e: e["invoice"]["comprobante"].update(
                detalle=e["invoice"]["comprobante"]["detalle"][:1] * 131
            )
        ],
        f"{C}.detalle",
    ),
    ("no-items", "factura_b", [_set(f"{C}.detalle", [])], f"{C}.detalle"),
    (
        "razon-social-long",
        "factura_b",
        [_set(f"{CL}.razon_social", "x" * 256)],
        f"{CL}.razon_social",
    ),
    (
        "descripcion-short",
        "factura_b",
        [_set(f"{P0}.descripcion", "")],
        f"{C}.detalle[0].producto.descripcion",
    ),
    (
        "cantidad-zero",
        "factura_b",
        [_set(f"{C}.detalle.0.cantidad", 0)],
        f"{C}.detalle[0].cantidad",
    ),
    (
        "price-negative",
        "factura_b",
        [_set(f"{P0}.precio_unitario_sin_iva", -1)],
        f"{C}.detalle[0].producto.precio_unitario_sin_iva",
    ),
    ("bonificacion-negative", "factura_b", [_set(f"{C}.bonificacion", -5)], f"{C}.bonificacion"),
    ("numero-9-digits", "factura_b", [_set(f"{C}.numero", 100_000_000)], f"{C}.numero"),
    ("operacion-compra", "factura_b", [_set(f"{C}.operacion", "C")], f"{C}.operacion"),
    ("unknown-field", "factura_b", [_set(f"{C}.totl", 1)], f"{C}.totl"),
    ("credentials-in-job", "factura_b", [_set("invoice.apitoken", "s3cr3t-token")], "invoice"),
    (
        "anonymous-cf-over-threshold",
        "factura_c",
        [_set(f"{C}.detalle.0.cantidad", 10000), _set(f"{C}.total", 12501100.00)],
        f"{CL}.documento_nro",
    ),
    (
        "note-without-associated",
        "nota_credito_b",
        [_set(f"{C}.comprobantes_asociados", _DELETE)],
        f"{C}.comprobantes_asociados",
    ),
    (
        "note-associated-letter",
        "nota_credito_b",
        [_set(f"{C}.comprobantes_asociados.0.tipo_comprobante", "FACTURA A")],
        f"{C}.comprobantes_asociados[0].tipo_comprobante",
    ),
    (
        "note-associated-other-cuit",
        "nota_credito_b",
        [_set(f"{C}.comprobantes_asociados.0.cuit", "30712293841")],
        f"{C}.comprobantes_asociados[0].cuit",
    ),
    (
        "invoice-with-associated",
        "factura_b",
        [_set(f"{C}.comprobantes_asociados_periodo", {"fecha_desde": d(-3), "fecha_hasta": d(-1)})],
        f"{C}.comprobantes_asociados",
    ),
    ("tributo-inconsistent", "factura_a", [_set(f"{C}.tributos.0.total", 999)], f"{C}.tributos[0]"),
    ("tributo-tipo", "factura_a", [_set(f"{C}.tributos.0.tipo", 42)], f"{C}.tributos[0].tipo"),
    (
        "mail-without-address",
        "factura_b",
        [_set(f"{CL}.envia_por_mail", "S"), _set(f"{CL}.email", _DELETE)],
        f"{CL}.email",
    ),
    ("bad-email", "factura_b", [_set(f"{CL}.email", "not-an-address")], f"{CL}.email"),
    (
        "condicion-pago-otra",
        "factura_b",
        [_set(f"{CL}.condicion_pago", 214)],
        f"{CL}.condicion_pago_otra",
    ),
    ("provincia", "factura_b", [_set(f"{CL}.provincia", 99)], f"{CL}.provincia"),
    ("callback-url", "factura_b", [_set("callback_url", "not a url")], "callback_url"),
    ("metadata-too-big", "factura_b", [_set("metadata", {"blob": "x" * 9000})], "metadata"),
    (
        "misma-moneda-pes",
        "factura_b",
        [_set(f"{C}.datos_informativos.paga_misma_moneda", "S")],
        f"{C}.datos_informativos.paga_misma_moneda",
    ),
    (
        "export-without-fex",
        "factura_b",
        [_set(f"{C}.tipo", "FACTURA E"), _set(f"{CL}.condicion_iva", "CDEX")],
        f"{C}.fex",
    ),
    (
        "fce-without-rg",
        "factura_a",
        [_set(f"{C}.tipo", "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) A")],
        f"{C}.rg_especiales",
    ),
    (
        "price-four-decimals",
        "factura_b",
        [_set(f"{P0}.precio_unitario_sin_iva", "1.2345")],
        f"{C}.detalle[0].producto.precio_unitario_sin_iva",
    ),
]


@pytest.mark.parametrize(
    ("name", "mutations", "path"),
    [(e, m, p) for _, e, m, p in INVALID],
    ids=[i for i, *_ in INVALID],
)
def test_invalid_job_refused_with_field_path(
    name: str, mutations: list[Mutation], path: str
) -> None:
    data = example(name)
    for mutate in mutations:
        mutate(data)
    paths = refusal_paths(data)
    assert path in paths, paths


def test_total_mismatch_message_shows_both_figures() -> None:
    data = example("factura_b")
    data["invoice"]["comprobante"]["total"] = 36001.00
    with pytest.raises(InvalidJob) as info:
        validate_envelope(data)
    (err,) = info.value.errors
    assert "36001" in err.reason
    assert "36000.00" in err.reason


def test_total_within_one_cent_is_accepted() -> None:
    data = example("factura_b")
    data["invoice"]["comprobante"]["total"] = 36000.01
    assert validate_envelope(data)


def test_services_window_is_wider_than_goods() -> None:
    data = example("servicios")
    c = data["invoice"]["comprobante"]
    c["fecha"], c["vencimiento"] = d(-8), d(0)
    assert validate_envelope(data)
    goods = example("factura_b")
    goods["invoice"]["comprobante"]["fecha"] = d(-8)
    assert f"{C}.fecha" in refusal_paths(goods)


def test_threshold_is_configurable_and_uses_cotizacion() -> None:
    data = example("factura_c")
    assert refusal_paths(data, cf_threshold=Decimal(4000)) == [f"{CL}.documento_nro"]
    assert validate_envelope(data, cf_threshold=Decimal(5000))


def test_refusals_never_echo_values() -> None:
    data = example("factura_b")
    data["invoice"]["apikey"] = "1134"
    data["invoice"]["usertoken"] = "super-secret-user-token"
    data["invoice"]["comprobante"]["moneda"] = "super-secret-moneda"
    with pytest.raises(InvalidJob) as info:
        validate_envelope(data)
    text = str(info.value) + repr(info.value.errors)
    assert "super-secret" not in text


def test_all_errors_of_a_stage_are_reported_together() -> None:
    data = example("factura_b")
    data["invoice"]["comprobante"]["moneda"] = "XXX"
    data["invoice"]["cliente"]["provincia"] = 0
    paths = refusal_paths(data)
    assert {f"{C}.moneda", f"{CL}.provincia"} <= set(paths)


def test_not_an_object() -> None:
    assert refusal_paths([1, 2]) == [""]


def test_expected_total_c_has_no_vat_and_bonificacion_on_21() -> None:
    env = JobEnvelope.model_validate(example("factura_c"))
    assert expected_totals(env.invoice.comprobante) == [Decimal("4850.00")]
    env = JobEnvelope.model_validate(example("servicios"))
    # (18500 + 4 × 9000) × 1.21 − 1500 × 1.21
    assert expected_totals(env.invoice.comprobante) == [Decimal("64130.00")]
