"""Credit notes that cancel issued invoices: the note builder (pure), its refusals, `tfq
void` and `POST /v1/invoices/{id}/credit-note`, and one void through the sandbox with a
real worker."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import factura_b_jobs, load_examples
from ops.testkit.harness import WorkerProcess, serving, unique_prefix, worker_env
from producers.client import InvoiceQueue
from producers.http.app import create_app
from producers.http.auth import token_sha256
from tests.conftest import MONO_CUIT, RI_CUIT, TENANTS_FILE
from worker.accounting.credit_notes import (
    CannotVoid,
    Original,
    build_credit_note,
    note_reference,
    note_tipo,
    parse_amount,
)
from worker.archive import db
from worker.archive.repository import Archive, row_from_record
from worker.errors import InvalidJob
from worker.invoice.envelope import validate_envelope
from worker.invoice.rules import FCE_ANULACION_ID, argentina_today, expected_totals
from worker.settings import Settings
from worker.store.jobs import JobStatus, pack_envelope, unpack_envelope
from worker.store.keys import JobField
from worker.tenants import Tenants

TODAY = argentina_today()
EXAMPLES = load_examples(TODAY)
JOB = "0190a1b2c3d4e5f6a7b8c9"
TOKEN = "void-test-token-0123"
OTHER_TOKEN = "void-other-token-0123"


def original(
    name: str = "factura_b", *, status: str = JobStatus.ISSUED, numero: int | None = 17
) -> Original:
    env = copy.deepcopy(EXAMPLES[name])
    return Original(
        job_id=JOB,
        cuit=env["cuit"],
        status=status,
        invoice=env["invoice"],
        numero=numero,
        callback_url=env.get("callback_url"),
        metadata=env.get("metadata", {}),
        external_reference=env["invoice"]["comprobante"]["external_reference"],
    )


def fce_original() -> Original:
    """A FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) A, from the Factura A example."""
    inv = copy.deepcopy(EXAMPLES["factura_a"])
    comp = inv["invoice"]["comprobante"]
    comp["tipo"] = "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) A"
    comp["rg_especiales"] = {
        "regimen": "Factura de Crédito Electrónica MiPyMEs (FCE)",
        "datos": [{"id": 2101, "valor": "0" * 22}, {"id": 27, "valor": "SCA"}],
    }
    comp["vencimiento"] = f"{TODAY + timedelta(days=30):%d/%m/%Y}"
    validate_envelope(inv)  # a valid FCE invoice to start from
    return Original(JOB, inv["cuit"], JobStatus.ISSUED, inv["invoice"], 5)


def totals_of(note: dict[str, Any]) -> tuple[Decimal, list[Decimal]]:
    env = validate_envelope(note)  # the normal door: raises InvalidJob with field paths
    c = env.invoice.comprobante
    return c.total, expected_totals(c)


# --- the builder (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tipo", "expected"),
    [
        ("FACTURA A", "NOTA DE CREDITO A"),
        ("FACTURA B", "NOTA DE CREDITO B"),
        ("FACTURA C", "NOTA DE CREDITO C"),
        ("FACTURA M", "NOTA DE CREDITO M"),
        ("NOTA DE DEBITO B", "NOTA DE CREDITO B"),
        (
            "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) B",
            "NOTA DE CREDITO ELECTRONICA MiPyME (FCE) B",
        ),
        (
            "NOTA DE DEBITO ELECTRONICA MiPyME (FCE) C",
            "NOTA DE CREDITO ELECTRONICA MiPyME (FCE) C",
        ),
    ],
)
def test_note_tipo_matches_the_letter(tipo: str, expected: str) -> None:
    assert note_tipo(tipo) == expected


@pytest.mark.parametrize(
    "tipo", ["NOTA DE CREDITO B", "FACTURA E", "RECIBO C", "REMITO", "FACTURA NO VALIDA EN AFIP"]
)
def test_note_tipo_refuses_what_has_no_credit_note(tipo: str) -> None:
    with pytest.raises(CannotVoid) as caught:
        note_tipo(tipo)
    assert caught.value.status == 422
    assert caught.value.errors[0].path == "tipo"


@pytest.mark.parametrize("name", ["factura_a", "factura_b", "factura_c", "factura_dolares"])
def test_full_void_copies_the_invoice_and_validates(name: str) -> None:
    orig = original(name)
    note = build_credit_note(orig, today=TODAY, reason="devolución total")
    comp, src = note["invoice"]["comprobante"], orig.comprobante
    assert comp["tipo"] == note_tipo(src["tipo"])
    assert comp["punto_venta"] == src["punto_venta"]
    assert (comp["moneda"], comp["cotizacion"]) == (src["moneda"], src["cotizacion"])
    assert note["cuit"] == orig.cuit
    assert note["invoice"]["cliente"] == orig.invoice["cliente"]
    assert comp["comprobantes_asociados"] == [
        {
            "tipo_comprobante": src["tipo"],
            "punto_venta": src["punto_venta"],
            "numero": 17,
            "comprobante_fecha": src["fecha"],
            "cuit": orig.cuit,
        }
    ]
    assert comp["detalle"] == src["detalle"]
    assert comp["tributos"] == src.get("tributos", [])
    assert comp["external_reference"] == f"NC-{JOB}"
    assert "devolución total" in comp["leyenda_gral"]
    assert comp["comentario"] == "devolución total"
    assert note["metadata"]["voids_job_id"] == JOB
    assert note["metadata"]["reason"] == "devolución total"
    assert note.get("callback_url") == orig.callback_url
    total, expected = totals_of(note)
    assert total == orig.total
    assert total in expected


def test_note_is_dated_today_and_never_before_the_invoice() -> None:
    orig = original("factura_b")
    orig.comprobante["fecha"] = f"{TODAY - timedelta(days=3):%d/%m/%Y}"
    note = build_credit_note(orig, today=TODAY)
    assert note["invoice"]["comprobante"]["fecha"] == f"{TODAY:%d/%m/%Y}"
    later = original("factura_b")
    later.comprobante["fecha"] = f"{TODAY + timedelta(days=1):%d/%m/%Y}"
    note = build_credit_note(later, today=TODAY)
    assert note["invoice"]["comprobante"]["fecha"] == later.comprobante["fecha"]


@pytest.mark.parametrize(
    ("name", "amount"),
    [
        ("factura_a", "1000.00"),  # two VAT rates, a per-item discount, an IIBB perception
        ("factura_a", "0.01"),
        ("factura_a", "66983.69"),
        ("factura_b", "1234.57"),
        ("factura_c", "99.99"),
        ("factura_dolares", "10.01"),
    ],
)
def test_partial_credit_totals_the_amount_and_validates(name: str, amount: str) -> None:
    orig = original(name)
    note = build_credit_note(orig, today=TODAY, amount=Decimal(amount), reason="ajuste")
    comp = note["invoice"]["comprobante"]
    assert comp["external_reference"] == f"NC-{JOB}-{int(Decimal(amount) * 100)}"
    assert note["metadata"]["amount"] == amount
    total, expected = totals_of(note)
    assert total == Decimal(amount)
    assert any(abs(t - total) <= Decimal("0.01") for t in expected)


def test_partial_credit_is_exact_for_every_cent_the_vat_allows() -> None:
    """Across many amounts the note's items add up to the amount, or one cent off where
    net + 21 % VAT skips the amount: never more."""
    orig = original("factura_b")  # one rate, 21 %
    exact = 0
    for cents in range(1, 3600000, 9173):
        amount = Decimal(cents) / 100
        note = build_credit_note(orig, today=TODAY, amount=amount)
        total, expected = totals_of(note)
        assert min(abs(t - total) for t in expected) <= Decimal("0.01")
        exact += total in expected
    assert exact > 0


def test_fce_notes_carry_the_anulacion_dato() -> None:
    orig = fce_original()
    full = build_credit_note(orig, today=TODAY)
    comp = full["invoice"]["comprobante"]
    assert comp["tipo"] == "NOTA DE CREDITO ELECTRONICA MiPyME (FCE) A"
    assert comp["rg_especiales"]["datos"] == [{"id": FCE_ANULACION_ID, "valor": "S"}]
    assert comp["comprobantes_asociados"][0]["tipo_comprobante"] == orig.tipo
    assert totals_of(full)[0] == orig.total
    part = build_credit_note(orig, today=TODAY, amount=Decimal("500"))
    comp = part["invoice"]["comprobante"]
    assert comp["rg_especiales"]["datos"] == [{"id": FCE_ANULACION_ID, "valor": "N"}]
    assert "vencimiento" not in comp  # FCE notes carry FchVtoPago only when they annul
    assert totals_of(part)[0] == Decimal(500)


def test_fce_invoice_dated_ahead_is_refused_until_its_day() -> None:
    orig = fce_original()
    orig.comprobante["fecha"] = f"{TODAY + timedelta(days=1):%d/%m/%Y}"
    with pytest.raises(CannotVoid) as caught:
        build_credit_note(orig, today=TODAY)
    assert caught.value.slug == "too-early"


@pytest.mark.parametrize(
    ("value", "why"),
    [("0", "greater than 0"), ("-5", "greater than 0"), ("1.234", "2 decimals"),
     ("abc", "not a number"), ("NaN", "not a number"), ("Infinity", "not a number")],
)  # fmt: skip
def test_bad_amounts_are_refused(value: str, why: str) -> None:
    with pytest.raises(CannotVoid) as caught:
        parse_amount(value)
    assert caught.value.status == 422
    assert caught.value.errors[0].path == "amount"
    assert why in caught.value.errors[0].reason


def test_references_are_deterministic_and_valid() -> None:
    assert note_reference(JOB) == f"NC-{JOB}"
    assert note_reference(JOB, Decimal("1500.50")) == f"NC-{JOB}-150050"


# --- plan and refusals, against Redis and the archive --------------------------------------


@pytest.fixture
def queue(redis_url: str, tmp_path: Path) -> Iterator[InvoiceQueue]:
    prefix = unique_prefix("void")
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        archive_url=f"sqlite:///{tmp_path / 'archive.sqlite3'}",
        callbacks_allow_private=True,
        ack_durability="off",
    )
    q = InvoiceQueue(settings=settings)
    db.migrate(q.archive.engine)
    yield q
    keys = list(q.redis.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        q.redis.unlink(*keys)


def put_job(
    q: InvoiceQueue,
    env: dict[str, Any],
    *,
    status: str = JobStatus.ISSUED,
    numero: int = 42,
    job_id: str | None = None,
) -> str:
    """A job record as the worker leaves it (issued with `numero`, or another status)."""
    job = q.submit(env)
    job_id = job.job_id
    fields = {JobField.STATUS: status}
    if status == JobStatus.ISSUED:
        fields |= {JobField.NUMERO: numero, JobField.CAE: "71234567890123"}
    q.redis.hset(q.keys.job(job_id), mapping=fields)  # type: ignore[arg-type]
    return job_id


def example(name: str, ref: str) -> dict[str, Any]:
    env = copy.deepcopy(EXAMPLES[name])
    env["invoice"]["comprobante"]["external_reference"] = ref
    env["callback_url"] = "https://shop.example/hooks/invoices"
    return env


def test_void_queues_the_note_once(queue: InvoiceQueue) -> None:
    job = put_job(queue, example("factura_a", "VOID-1"))
    first = queue.void(job, reason="cliente devolvió todo")
    assert not first.duplicate
    again = queue.void(job, reason="cliente devolvió todo")
    assert (again.job_id, again.duplicate) == (first.job_id, True)
    note = queue.status(first.job_id)
    assert note is not None
    assert note["tipo"] == "NOTA DE CREDITO A"
    assert note["external_reference"] == f"NC-{job}"
    assert note["metadata"]["voids_job_id"] == job
    assert note["callback_url"] == "https://shop.example/hooks/invoices"
    # Queued counts as credited: nothing more can be credited.
    with pytest.raises(CannotVoid) as caught:
        queue.void(job, amount="10")
    assert (caught.value.status, caught.value.slug) == (409, "already-credited")


def test_partial_credits_add_up_to_the_total(queue: InvoiceQueue) -> None:
    job = put_job(queue, example("factura_b", "VOID-2"))  # total 36000
    a = queue.void(job, amount="10000")
    assert queue.void(job, amount="10000.00").job_id == a.job_id  # the same amount: the same note
    with pytest.raises(CannotVoid) as caught:
        queue.void(job, amount="26000.01")
    assert caught.value.slug == "amount-too-large"
    assert "26000.00" in caught.value.message
    with pytest.raises(CannotVoid) as caught:
        queue.void(job)  # a full void of a partly credited invoice
    assert caught.value.slug == "partly-credited"
    b = queue.void(job, amount="26000")
    assert not b.duplicate
    with pytest.raises(CannotVoid) as caught:
        queue.void(job, amount="1")
    assert caught.value.slug == "already-credited"


def test_a_rejected_note_does_not_count(queue: InvoiceQueue) -> None:
    job = put_job(queue, example("factura_b", "VOID-3"))
    first = queue.void(job)
    queue.redis.hset(queue.keys.job(first.job_id), JobField.STATUS, JobStatus.REJECTED)
    second = queue.void(job)
    assert not second.duplicate
    assert second.previous_job_id == first.job_id


@pytest.mark.parametrize("status", [JobStatus.REJECTED, JobStatus.QUEUED, JobStatus.UNKNOWN])
def test_a_job_not_issued_is_refused_with_its_status(queue: InvoiceQueue, status: str) -> None:
    job = put_job(queue, example("factura_b", f"VOID-S-{status}"), status=status)
    with pytest.raises(CannotVoid) as caught:
        queue.void(job)
    assert (caught.value.status, caught.value.slug) == (409, "not-issued")
    assert status in caught.value.message


def test_a_credit_note_and_a_missing_job_are_refused(queue: InvoiceQueue) -> None:
    job = put_job(queue, example("factura_b", "VOID-4"))
    note = queue.void(job)
    queue.redis.hset(queue.keys.job(note.job_id), mapping={JobField.STATUS: JobStatus.ISSUED,
                                                           JobField.NUMERO: 3})  # fmt: skip
    with pytest.raises(CannotVoid) as caught:
        queue.void(note.job_id)
    assert (caught.value.status, caught.value.slug) == (422, "not-creditable")
    assert "credit note" in caught.value.message
    with pytest.raises(CannotVoid) as caught:
        queue.void("00ff00ff")
    assert (caught.value.status, caught.value.slug) == (404, "no-such-job")


def test_the_archive_answers_once_redis_let_go(queue: InvoiceQueue) -> None:
    job = put_job(queue, example("factura_b", "VOID-5"))
    note = queue.void(job, amount="36000")  # the whole total: a full void
    assert queue.status(note.job_id)["external_reference"] == f"NC-{job}"  # type: ignore[index]
    queue.redis.hset(queue.keys.job(note.job_id), mapping={JobField.STATUS: JobStatus.ISSUED,
                                                           JobField.NUMERO: 8})  # fmt: skip
    archive = Archive(queue.archive.engine)
    for job_id in (job, note.job_id):
        rec = queue.store.job(job_id)
        assert rec is not None
        archive.upsert([row_from_record(rec)])
        queue.redis.delete(queue.keys.job(job_id))
    # Redis' idempotency index still names the note: the same job, as submit says.
    again = queue.void(job)
    assert (again.job_id, again.duplicate) == (note.job_id, True)
    # Without it, the archive still knows the invoice is credited in full.
    queue.redis.delete(queue.keys.idem(RI_CUIT))
    assert queue.void(job).job_id == note.job_id
    with pytest.raises(CannotVoid) as caught:
        queue.void(job, amount="5")
    assert caught.value.slug == "already-credited"


def test_a_note_the_validation_refuses_names_its_fields(queue: InvoiceQueue) -> None:
    env = example("factura_b", "VOID-6")
    job = put_job(queue, env)
    # The invoice as stored was valid then (dated 20 days ahead, say the rules allowed it);
    # its note, dated as it, is not now.
    stored = validate_envelope(env)
    stored.invoice.comprobante.fecha = TODAY + timedelta(days=20)
    queue.redis.hset(queue.keys.job(job), JobField.ENVELOPE, pack_envelope(stored))
    with pytest.raises(InvalidJob) as caught:
        queue.void(job)
    assert any(e.path == "invoice.comprobante.fecha" for e in caught.value.errors)


def test_cli_void(queue: InvoiceQueue, redis_url: str) -> None:
    job = put_job(queue, example("factura_b", "VOID-CLI"))
    s = queue.settings
    env = {"TFQ_REDIS_URL": redis_url, "TFQ_KEY_PREFIX": s.key_prefix,
           "TFQ_ARCHIVE_URL": s.archive_database_url, "TFQ_CALLBACKS_ALLOW_PRIVATE": "1",
           "TFQ_ACK_DURABILITY": "off", "PATH": "/usr/bin:/bin"}  # fmt: skip

    def tfq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "producers.cli", "void", *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    done = tfq(job, "--amount", "100", "--reason", "rotura", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["external_reference"], doc["duplicate"]) == (f"NC-{job}-10000", False)
    assert doc["metadata"] == {
        "voids_job_id": job,
        "reason": "rotura",
        "voids_external_reference": "VOID-CLI",
        "amount": "100.00",
    }
    too_much = tfq(job, "--amount", "40000")
    assert too_much.returncode == 1
    assert "amount: 40000.00 is more than the invoice's total" in too_much.stderr
    bad = tfq(job, "--amount", "x", "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout) == {"error": "amount: not a number"}
    missing = tfq("00ff")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no job 00ff")


# --- HTTP ---------------------------------------------------------------------------------


def test_http_credit_note(queue: InvoiceQueue) -> None:
    job = put_job(queue, example("factura_b", "VOID-HTTP"))
    tenants = Tenants.from_dict(
        {
            "client": [
                {"name": "shop", "token_sha256": token_sha256(TOKEN), "cuits": [RI_CUIT]},
                {"name": "other", "token_sha256": token_sha256(OTHER_TOKEN), "cuits": [MONO_CUIT]},
            ]
        }
    )
    app = create_app(queue.settings, queue=queue, tenants=tenants)
    with serving(app) as url, requests.Session() as http:

        def post(path: str, body: Any = None, token: str = TOKEN) -> requests.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return http.post(url + path, json=body, headers=headers, timeout=30)

        def problem(resp: requests.Response, status: int, slug: str) -> dict[str, Any]:
            assert resp.status_code == status, resp.text
            assert resp.headers["content-type"] == "application/problem+json"
            body: dict[str, Any] = resp.json()
            assert body["type"] == f"urn:tfq:problem:{slug}"
            return body

        path = f"/v1/invoices/{job}/credit-note"
        problem(post(path, token=OTHER_TOKEN), 403, "forbidden-cuit")
        problem(post("/v1/invoices/00ff/credit-note"), 404, "no-such-job")
        problem(post("/v1/invoices/NOT-AN-ID/credit-note"), 404, "no-such-job")
        bad = problem(post(path, {"amount": "-1"}), 422, "invalid-amount")
        assert bad["errors"] == [{"path": "amount", "reason": "must be greater than 0"}]
        problem(post(path, {"amount": 1, "surprise": 1}), 422, "invalid-request")

        made = post(path, {"reason": "devolución", "amount": 1500.5})
        assert made.status_code == 201, made.text
        note = made.json()
        assert note["duplicate"] is False
        assert note["tipo"] == "NOTA DE CREDITO B"
        assert note["external_reference"] == f"NC-{job}-150050"
        assert made.headers["location"] == f"/v1/invoices/{note['job_id']}"
        same = post(path, {"reason": "devolución", "amount": "1500.50"})
        assert same.status_code == 200, same.text
        assert (same.json()["job_id"], same.json()["duplicate"]) == (note["job_id"], True)
        over = problem(post(path, {"amount": 36000}), 409, "amount-too-large")
        assert over["errors"][0]["path"] == "amount"
        problem(post(path), 409, "partly-credited")
        rest = post(path, {"amount": "34499.50"})
        assert rest.status_code == 201, rest.text
        problem(post(path, {"amount": 1}), 409, "already-credited")
        problem(post(f"/v1/invoices/{note['job_id']}/credit-note"), 422, "not-creditable")


# --- end to end: a real worker against the sandbox -----------------------------------------


def test_void_through_the_sandbox(
    sandbox: SandboxProcess, redis_url: str, archive_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix("void-e2e")
    s = Settings(
        redis_url=redis_url, key_prefix=prefix, archive_url=archive_url,
        pdf_dir=str(tmp_path / "pdfs"), callbacks_allow_private=True,
    )  # fmt: skip
    db.migrate(db.engine_for(s.archive_database_url))
    env = worker_env(
        s.redis_url, sandbox.api_url, TENANTS_FILE, prefix=prefix,
        archive_url=s.archive_database_url, pdf_dir=s.pdf_store_url, callbacks_allow_private=1,
    )  # fmt: skip
    queue = InvoiceQueue(settings=s)
    try:
        (invoice_env,) = factura_b_jobs(RI_CUIT, 1, pdv=3, tag="VOID")  # a real PDV: CAEs
        with WorkerProcess(env, log_path=tmp_path / "worker.log"):
            invoice = queue.submit(invoice_env)
            issued = queue.wait(invoice.job_id, timeout=60)
            assert issued["status"] == "issued", issued
            note = queue.void(invoice.job_id, reason="anulación de prueba")
            assert not note.duplicate
            done = queue.wait(note.job_id, timeout=60)
            assert done["status"] == "issued", (tmp_path / "worker.log").read_text()[-3000:]
            again = queue.void(invoice.job_id, reason="anulación de prueba")
            assert (again.job_id, again.duplicate) == (note.job_id, True)
            with pytest.raises(CannotVoid) as caught:
                queue.void(invoice.job_id, amount="1")
            assert caught.value.slug == "already-credited"
        assert done["tipo"] == "NOTA DE CREDITO B"
        assert done["punto_venta"] == 3
        assert done["cae"]
        assert done["metadata"]["voids_job_id"] == invoice.job_id
        ledger = {i["external_reference"]: i for i in sandbox.ledger()["issued"]}
        sent = ledger[f"NC-{invoice.job_id}"]
        assert sent["numero"] == done["numero"]
        rec = queue.store.job(note.job_id)
        assert rec is not None
        comp = unpack_envelope(rec[JobField.ENVELOPE])["invoice"]["comprobante"]
        assert comp["comprobantes_asociados"] == [
            {
                "tipo_comprobante": "FACTURA B",
                "punto_venta": 3,
                "numero": issued["numero"],
                "comprobante_fecha": invoice_env["invoice"]["comprobante"]["fecha"],
                "cuit": RI_CUIT,
            }
        ]
        assert Decimal(str(comp["total"])) == Decimal(
            str(invoice_env["invoice"]["comprobante"]["total"])
        )
    finally:
        keys = list(queue.redis.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            queue.redis.unlink(*keys)


def test_earlier_notes_are_found_by_a_literal_prefix(store: Any) -> None:
    idem = store.keys.idem(RI_CUIT)
    store.r.hset(idem, mapping={"NC-a*b": "j1", "NC-a*b-100": "j2", "NC-axb": "j3", "X": "j4"})
    assert sorted(store.references_starting(RI_CUIT, "NC-a*b")) == [
        ("NC-a*b", "j1"),
        ("NC-a*b-100", "j2"),
    ]
    assert store.references_starting(MONO_CUIT, "NC-") == []
