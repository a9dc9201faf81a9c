"""tfq against the vendor's own documentation (`vousys/tusfacturas-api`), not our reading.

- Every request example of the newest pages (`tests/vendor/examples/`, each with its page
  and commit) validates, unless its page presents it as a fragment or a field catalogue.
- Every error text of the catalogue and the endpoint pages
  (`tests/vendor/error_catalogue.json`) gets its expected failure class.
- Each rule tfq adds or relaxes because of a page is tested here, quoting that page.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ops.sandbox.dialect import NOT_FOUND_WORDINGS
from ops.testkit.examples import load_example
from worker.errors import InvalidJob
from worker.invoice.cuit import check_digit, is_valid_cuit
from worker.invoice.envelope import validate_envelope
from worker.invoice.rules import argentina_today
from worker.tusfacturas.errors import (
    AmbiguousError,
    RejectedError,
    SequenceError,
    ServiceDownError,
    TenantBlockedError,
    TransientError,
    TusFacturasError,
    UnclassifiedError,
    classify_error_body,
    says_not_found,
)

VENDOR = Path(__file__).parent / "vendor"
EXAMPLES = sorted((VENDOR / "examples").glob("*.json"))
CATALOGUE = json.loads((VENDOR / "error_catalogue.json").read_text())
ISSUER = "20111111112"  # the example tenants' CUIT: the issuer is never in a request body
CREDENTIALS = ("apikey", "apitoken", "usertoken")

# Examples their pages do not present as invoices one could send, with what tfq refuses.
NOT_INVOICES: dict[str, tuple[str, set[str]]] = {
    # The page elides cliente and detalle with "....." around a comprobantes_asociados block.
    "factura-a-nd-a-nc-a-7.json": ("a fragment", {"invoice.cliente.documento_tipo"}),
    "factura-a-nd-a-nc-a-11.json": ("a fragment", {"invoice.cliente.documento_tipo"}),
    # "No todos los campos son obligatorios. Los datos requeridos varían según el tipo de
    # comprobante": every field at once (a list and a period of associations, FCE data on a
    # nota de débito B, a FACTURA C associated with it), not one invoice.
    "referencia-api-afip-arca.json": (
        "a field catalogue",
        {"invoice.comprobante.comprobantes_asociados_periodo", "invoice.comprobante.total"},
    ),
    "ventas-readme-json-generico.json": (
        "a field catalogue",
        {"invoice.comprobante.comprobantes_asociados_periodo", "invoice.comprobante.total"},
    ),
}


# Examples whose values break a rule their own pages state; tfq keeps the stated rule.
CONTRADICT_THEIR_PAGES: dict[str, set[str]] = {
    # notas-credito-debito.md: "La fecha del comprobante que asocies debe ser menor o igual a
    # la fecha del comprobante que estas queriendo emitir."
    **{
        name: {"invoice.comprobante.comprobantes_asociados[0].comprobante_fecha"}
        for name in (
            "factura-a-nd-a-nc-a-4.json",
            "factura-a-nd-a-nc-a-5.json",
            "factura-a-nd-a-nc-a-6.json",
            "factura-a-nd-a-nc-a-8-ej1.json",
            "factura-a-nd-a-nc-a-9-ej1.json",
            "fce-a-2.json",
            "nota-de-credito-a.json",
            "nota-de-credito-b.json",
            "nota-de-credito-c.json",
            "nota-de-credito-mipyme-a.json",
            "nota-de-debito-a-1.json",
            "nota-de-debito-b-1.json",
            "ventas-tipo-a-1.json",
            "ventas-tipo-b-2.json",
        )
    },
    # ...and AFIP refuses an association of another letter ("Campo CbtesAsoc con tipo
    # inválido", errores-comunes): these notes name an invoice of another letter.
    **{
        name: {
            "invoice.comprobante.comprobantes_asociados[0].comprobante_fecha",
            "invoice.comprobante.comprobantes_asociados[0].tipo_comprobante",
        }
        for name in ("factura-a-nd-a-nc-a-10-ej1.json", "nota-de-debito-c-1.json")
    },
}


def _valid_like(value: Any) -> str:
    """A valid CUIT standing in for a placeholder one (the docs' have bad check digits)."""
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    base = (digits + "0000000000")[:10]
    if base[:2] not in ("20", "23", "24", "27", "30", "33", "34"):
        base = "30" + base[2:]
    for last in range(10):
        candidate = base[:9] + str(last)
        digit = check_digit(candidate)
        if digit is not None:
            return candidate + str(digit)
    raise AssertionError(value)


def vendor_job(path: Path) -> tuple[dict[str, Any], date | None, list[str]]:
    """The example as a job: (envelope, the day it was written for, substitutions made).

    The only changes, each listed: credentials leave the body (the tenants file has them);
    CUITs that are placeholders with a bad check digit get a valid one (AFIP refuses such
    CUITs; the issuer's own CUIT is never in a request, so associations name ours); and an
    external_reference is added where the example has none (tfq's idempotency key, which
    the job envelope requires: design.md, "Job envelope").
    """
    doc = json.loads(path.read_text())
    request = copy.deepcopy(doc["request"])
    changes = [f"{k} removed" for k in CREDENTIALS if k in request]
    invoice = {k: v for k, v in request.items() if k not in CREDENTIALS}
    comp = invoice.get("comprobante") if isinstance(invoice.get("comprobante"), dict) else {}
    cliente = invoice.get("cliente") if isinstance(invoice.get("cliente"), dict) else {}
    if cliente.get("documento_tipo") in ("CUIT", "CUIL") and not is_valid_cuit(
        str(cliente.get("documento_nro"))
    ):
        cliente["documento_nro"] = _valid_like(cliente["documento_nro"])
        changes.append("cliente.documento_nro: placeholder CUIT")
    fex = comp.get("fex") if isinstance(comp.get("fex"), dict) else {}
    for where, listed in (
        ("", comp.get("comprobantes_asociados")),
        ("fex.", fex.get("comprobantes_asociados")),
    ):
        for assoc in listed if isinstance(listed, list) else []:
            if isinstance(assoc, dict) and "cuit" in assoc and str(assoc["cuit"]) != ISSUER:
                assoc["cuit"] = ISSUER
                changes.append(f"{where}comprobantes_asociados.cuit: the issuer's")
    if comp and not comp.get("external_reference"):
        comp["external_reference"] = f"DOC-{path.stem}"[:255]
        changes.append("external_reference added")
    try:
        today = datetime.strptime(str(comp.get("fecha")), "%d/%m/%Y").date()
    except ValueError:
        today = None
    return {"cuit": ISSUER, "invoice": invoice}, today, changes


INVOICING = [p for p in EXAMPLES if json.loads(p.read_text())["endpoint"] == "facturacion/nuevo"]


def test_the_corpus_is_there() -> None:
    assert len(INVOICING) >= 50, "tests/vendor/examples lost its files"
    for path in EXAMPLES:
        doc = json.loads(path.read_text())
        assert doc["source"], path.name
        assert len(doc["commit"]) == 40, path.name


@pytest.mark.parametrize(
    "path",
    [p for p in INVOICING if p.name not in NOT_INVOICES | CONTRADICT_THEIR_PAGES],
    ids=lambda p: p.stem,
)
def test_every_vendor_example_validates(path: Path) -> None:
    job, today, changes = vendor_job(path)
    assert not {c for c in changes if "removed" not in c and "placeholder" not in c
                and "issuer" not in c and "external_reference" not in c}  # fmt: skip
    env = validate_envelope(job, today=today)
    # What was sent is what the page shows: unknown fields pass through unchanged.
    sent = env.invoice_body()
    for path_ in env.unchecked_fields:
        node: Any = sent
        for part in path_.replace("]", "").replace("[", ".").split(".")[1:]:
            node = node[int(part)] if part.isdigit() else node[part]


@pytest.mark.parametrize("name", sorted(NOT_INVOICES))
def test_fragments_and_field_catalogues_are_refused_with_their_paths(name: str) -> None:
    job, today, _ = vendor_job(VENDOR / "examples" / name)
    with pytest.raises(InvalidJob) as info:
        validate_envelope(job, today=today)
    assert NOT_INVOICES[name][1] <= {e.path for e in info.value.errors}


@pytest.mark.parametrize("name", sorted(CONTRADICT_THEIR_PAGES))
def test_examples_that_break_their_own_pages_rules_are_refused_for_that_alone(name: str) -> None:
    job, today, _ = vendor_job(VENDOR / "examples" / name)
    with pytest.raises(InvalidJob) as info:
        validate_envelope(job, today=today)
    assert {e.path for e in info.value.errors} == CONTRADICT_THEIR_PAGES[name]


# --- the error catalogue ------------------------------------------------------------------

# The catalogue's class, as the failure class tfq gives an invoicing call's reply.
EXPECTED: dict[str, type[TusFacturasError]] = {
    "rejected": RejectedError,
    "sequence": SequenceError,
    "tenant_config": TenantBlockedError,
    "tenant_quota": TenantBlockedError,
    "cuit_blocked": TenantBlockedError,
    "service_down": ServiceDownError,
    "afip_transient": AmbiguousError,
}
# AFIP's generic refusal names no reason ("AFIP rechazo la generacion del comprobante Cod:
# 0"); the newest lotes page warns that an error may still have issued the invoice. tfq
# reconciles before it rejects (UnclassifiedError); it is never sent again.
GENERIC_REFUSAL = "rechazo la generacion del comprobante"


@pytest.mark.parametrize(
    "entry",
    [e for e in CATALOGUE if e["class"] != "not_found"],
    ids=lambda e: f"{e['class']}:{e['text'][:40]}",
)
def test_every_catalogued_error_text_is_classified(entry: dict[str, str]) -> None:
    got = classify_error_body({"error": "S", "errores": [entry["text"]]}, invoicing=True)
    if GENERIC_REFUSAL in entry["text"]:
        assert type(got) is UnclassifiedError, (entry["source"], got.as_dict())
        return
    expected = EXPECTED[entry["class"]]
    if entry["class"] == "afip_transient":
        assert isinstance(got, AmbiguousError)
        assert not isinstance(got, UnclassifiedError)
    else:
        assert type(got) is expected, (entry["source"], got.as_dict())
    if entry["class"] == "service_down" and "mantenimiento" not in entry["text"]:
        # "AFIP is down" on one tenant's call is a sighting, not a global signal.
        assert isinstance(got, ServiceDownError)
        assert got.scope == "tenant"


def test_a_query_error_never_rejects() -> None:
    """`consulta`'s errors are the job's business only through reconciliation."""
    for entry in CATALOGUE:
        got = classify_error_body({"error": "S", "errores": [entry["text"]]}, invoicing=False)
        assert not isinstance(got, RejectedError | AmbiguousError), entry["text"]


def test_not_found_wordings() -> None:
    # eliminar-comprobantes-encolados.md and its siblings: "No se han encontrado
    # comprobantes."; the others are the sandbox's further dialects.
    wordings = [e["text"] for e in CATALOGUE if e["class"] == "not_found"]
    assert "No se han encontrado comprobantes." in wordings
    for text in [*wordings, *NOT_FOUND_WORDINGS]:
        assert says_not_found([text]), text
    assert not says_not_found(["No se han encontrado comprobantes.", "Error interno"])
    assert not says_not_found([])


def test_a_data_error_naming_a_block_is_a_rejection_not_a_cuit_block() -> None:
    # The bare word "bloque" used to pause the CUIT's lane.
    for text in ("Debe enviar el bloque cliente.", "Debe enviar el bloque comprobante."):
        got = classify_error_body({"error": "S", "errores": [text]}, invoicing=True)
        assert type(got) is RejectedError, text
    blocked = classify_error_body(
        {
            "error": "S",
            "errores": ["AFIP bloqueó temporalmente la emisión. Reintente en 90 segundos."],
        },
        invoicing=True,
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert type(blocked) is TenantBlockedError
    assert blocked.until is not None


def test_the_last_to_authorize_wording_is_a_sequence_error() -> None:
    # errores-comunes: "no se corresponde con el último a autorizar (FECompUltimoAutorizado)".
    got = classify_error_body(
        {
            "error": "S",
            "errores": [
                "El número o fecha del comprobante no se corresponde con el último a autorizar"
            ],
        },
        invoicing=True,
    )
    assert type(got) is SequenceError


def test_certificate_and_null_pointer_texts_stop_only_their_tenant() -> None:
    # errores-comunes lists both under an expired, misconfigured or incompatible certificate.
    for text in ("No se puede establecer la comunicación con ARCA", "Java.null.pointer"):
        got = classify_error_body({"error": "S", "errores": [text]}, invoicing=True)
        assert type(got) is TenantBlockedError, text


def test_an_unknown_text_is_unclassified_on_invoicing_and_transient_on_queries() -> None:
    body = {"error": "S", "errores": ["Algo inesperado paso con su solicitud"]}
    assert type(classify_error_body(body, invoicing=True)) is UnclassifiedError
    assert type(classify_error_body(body, invoicing=False)) is TransientError


# --- rules from the pages -----------------------------------------------------------------


def job(name: str = "factura_b", **overrides: Any) -> dict[str, Any]:
    data = load_example(name, argentina_today())
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = value
    return data


def refused(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidJob) as info:
        validate_envelope(data)
    return {e.path: e.reason for e in info.value.errors}


def test_idioma_as_a_string() -> None:
    # referencia-api-afip-arca.md sends "idioma":"1"; the field table: 1 Español, 2 Inglés.
    env = validate_envelope(job(invoice__comprobante__idioma="2"))
    assert env.invoice.comprobante.idioma == 2
    assert "invoice.comprobante.idioma" in refused(job(invoice__comprobante__idioma="3"))


def test_unknown_fields_pass_through_and_are_listed() -> None:
    # referencia-api-afip-arca.md, bloque detalle: "incluir_lista_precios_venta".
    data = job()
    data["invoice"]["comprobante"]["detalle"][0]["incluir_lista_precios_venta"] = "N"
    data["invoice"]["comprobante"]["percepciones_iva"] = 0
    env = validate_envelope(data)
    body = env.invoice_body()
    assert body["comprobante"]["detalle"][0]["incluir_lista_precios_venta"] == "N"
    assert body["comprobante"]["percepciones_iva"] == 0
    assert env.unchecked_fields == [
        "invoice.comprobante.detalle[0].incluir_lista_precios_venta",
        "invoice.comprobante.percepciones_iva",
    ]


def test_a_misspelt_known_field_is_refused_with_a_hint() -> None:
    data = job()
    item = data["invoice"]["comprobante"]["detalle"][0]
    item["cantidadd"] = item.pop("cantidad")
    reasons = refused(data)
    assert reasons["invoice.comprobante.detalle[0].cantidadd"] == (
        "unknown field: did you mean 'cantidad'?"
    )


def test_credentials_are_refused_at_any_depth() -> None:
    data = job()
    data["invoice"]["comprobante"]["apitoken"] = "s3cr3t"
    reasons = refused(data)
    assert reasons["invoice.comprobante.apitoken"] == "credentials do not belong in a job"
    assert "s3cr3t" not in json.dumps(reasons)


def _one_item(
    alicuota: str, price: str, bonificacion: str, total: str, letter: str = "B"
) -> dict[str, Any]:
    data = job()
    comp = data["invoice"]["comprobante"]
    comp["detalle"] = [copy.deepcopy(comp["detalle"][0])]
    comp["detalle"][0]["cantidad"] = 1
    comp["detalle"][0]["producto"]["alicuota"] = alicuota
    comp["detalle"][0]["producto"]["precio_unitario_sin_iva"] = price
    comp["bonificacion"] = bonificacion
    comp["total"] = total
    return data


def test_bonificacion_is_taken_off_the_first_subtotal_at_its_own_rate() -> None:
    # referencia-api-afip-arca.md: "la bonificación se aplica sobre el primer subtotal SIN
    # IVA y se lo gravará con el importe de IVA que le corresponda": (100 - 10) × 1.105.
    validate_envelope(_one_item("10.5", "100", "10", "99.45"))
    assert "invoice.comprobante.total" in refused(_one_item("10.5", "100", "10", "100.50"))
    # ejemplo-de-factura-con-bonificaciones-descuentos.md: 100 - 20 = 80, × 1.21 = 96.80.
    validate_envelope(_one_item("21", "100", "20", "96.80"))


def test_bonificacion_on_mixed_rates_accepts_both_readings() -> None:
    # The first subtotal (the first item's rate) or "generalmente el del 21%" (d85e6d3).
    data = job()
    comp = data["invoice"]["comprobante"]
    first = copy.deepcopy(comp["detalle"][0])
    first.update(cantidad=1)
    first["producto"].update(alicuota="10.5", precio_unitario_sin_iva="100")
    second = copy.deepcopy(first)
    second["producto"].update(alicuota="21", precio_unitario_sin_iva="100")
    comp["detalle"] = [first, second]
    comp["bonificacion"] = "10"
    for total in ("220.45", "219.40"):  # 90 × 1.105 + 121; 110.5 + 90 × 1.21
        comp["total"] = total
        validate_envelope(copy.deepcopy(data))


def test_unit_prices_take_three_decimals() -> None:
    # redondeos.md: "precios unitarios ... con 3 decimales, ... totales ... con 2".
    validate_envelope(_one_item("21", "10.125", "0", "12.25"))
    assert "invoice.comprobante.detalle[0].producto.precio_unitario_sin_iva" in refused(
        _one_item("21", "10.1255", "0", "12.25")
    )


def _nota_e(tipo_exportacion: str, asociados: int) -> dict[str, Any]:
    path = VENDOR / "examples" / "nota-de-credito-e.json"
    data, today, _ = vendor_job(path)
    fex = data["invoice"]["comprobante"]["fex"]
    fex["tipo_exportacion"] = tipo_exportacion
    one = fex["comprobantes_asociados"][0]
    fex["comprobantes_asociados"] = [copy.deepcopy(one) for _ in range(asociados)]
    return data | {"_today": today}


def test_an_e_note_carries_its_associations_inside_fex() -> None:
    # factura-electronica-afip-exportacion.md: NC/ND E add "comprobantes_asociados" inside
    # "fex", "cuando el campo exportacion_tipo sea igual a "1"".
    data = _nota_e("1", 1)
    today = data.pop("_today")
    validate_envelope(data, today=today)
    data = _nota_e("2", 1)
    today = data.pop("_today")
    with pytest.raises(InvalidJob) as info:
        validate_envelope(data, today=today)
    assert "invoice.comprobante.fex.comprobantes_asociados" in {e.path for e in info.value.errors}


def test_at_most_ten_associated_invoices() -> None:
    # notas-credito-debito.md: "Solo podras enviar hasta 10 comprobantes asociados por NC/ND".
    data = job("nota_credito_b")
    listed = data["invoice"]["comprobante"]["comprobantes_asociados"]
    data["invoice"]["comprobante"]["comprobantes_asociados"] = listed * 11
    assert "invoice.comprobante.comprobantes_asociados" in refused(data)
    data["invoice"]["comprobante"]["comprobantes_asociados"] = listed * 10
    validate_envelope(data)


def test_an_fce_note_needs_dato_22() -> None:
    # factura-de-credito-electronica-mipyme-fce.md: "deben enviar dentro del bloque de
    # "rg_especiales", el dato id #22 con el valor S o N".
    data, today, _ = vendor_job(VENDOR / "examples" / "nota-de-credito-mipyme-a.json")
    comp = data["invoice"]["comprobante"]
    comp["comprobantes_asociados"][0]["comprobante_fecha"] = comp["fecha"]  # see above
    validate_envelope(copy.deepcopy(data), today=today)
    data["invoice"]["comprobante"]["rg_especiales"]["datos"] = [{"id": 23, "valor": "X"}]
    with pytest.raises(InvalidJob) as info:
        validate_envelope(data, today=today)
    assert "invoice.comprobante.rg_especiales" in {e.path for e in info.value.errors}


def _tributo(**fields: Any) -> dict[str, Any]:
    data = job()
    comp = data["invoice"]["comprobante"]
    tributo = {"tipo": 7, "regimen": 5, "base_imponible": 100, "alicuota": 3, "total": 3, **fields}
    tributo = {k: v for k, v in tributo.items() if v is not None}
    comp["tributos"] = [tributo]
    comp["total"] = str(Decimal(str(comp["total"])) + 3)
    return data


def test_tributos_follow_the_tables() -> None:
    # referencia-api-afip-arca.md: tributos.regimen is REQUERIDO; tablas-de-referencia:
    # tipos 6 (IVA), 7 (IIBB), 1 (nacionales), each with its régimenes.
    validate_envelope(_tributo())
    assert "invoice.comprobante.tributos[0].regimen" in refused(_tributo(regimen=None))
    assert "invoice.comprobante.tributos[0].tipo" in refused(_tributo(tipo=99))
    assert "invoice.comprobante.tributos[0]" in refused(_tributo(tipo=6, regimen=5))


def test_moneda_follows_the_table() -> None:
    # tablas-de-referencia: PES, DOL, 004, 003, 011, 012, 023, 033, 032, 031, 060, 036, 035, 010.
    assert "invoice.comprobante.moneda" in refused(
        job("factura_dolares", invoice__comprobante__moneda="021")
    )
    validate_envelope(job("factura_dolares", invoice__comprobante__moneda="004"))


def test_e_invoices_carry_no_bonificacion_impuestos_internos_or_tributos() -> None:
    # factura-electronica-afip-exportacion.md: "bonificación, no gravados, impuestos internos
    # ... en cero. El bloque tributos deberá ser enviado vacío."
    data, today, _ = vendor_job(VENDOR / "examples" / "factura-e.json")
    validate_envelope(copy.deepcopy(data), today=today)
    data["invoice"]["comprobante"]["bonificacion"] = 5
    data["invoice"]["comprobante"]["impuestos_internos"] = 1
    with pytest.raises(InvalidJob) as info:
        validate_envelope(data, today=today)
    paths = {e.path for e in info.value.errors}
    assert {"invoice.comprobante.bonificacion", "invoice.comprobante.impuestos_internos"} <= paths


def test_reclama_deuda_is_no_unless_the_job_says_so() -> None:
    # referencia-api-afip-arca.md: "envía siempre el campo "reclama_deuda": "N", ya que sino
    # nuestra plataforma le enviará un email a tu cliente recordandole todas las facturas
    # impagas."
    data = job()
    data["invoice"]["cliente"].pop("reclama_deuda", None)
    assert validate_envelope(data).invoice_body()["cliente"]["reclama_deuda"] == "N"
    data["invoice"]["cliente"]["reclama_deuda"] = "S"
    assert validate_envelope(data).invoice_body()["cliente"]["reclama_deuda"] == "S"


def test_a_requested_numero_is_accepted() -> None:
    # referencia: numero is OPCIONAL, "Si el nro de comprobante NO es enviado, traeremos la
    # próxima numeración". The worker sends it only when it is the next (test_dialects).
    env = validate_envelope(job(invoice__comprobante__numero="6"))
    assert env.invoice_body()["comprobante"]["numero"] == 6
