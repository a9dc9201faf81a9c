"""Keeping PDFs: the store, and the keeper against the sandbox's expiring links."""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import load_example
from worker.archive import db
from worker.archive.documents import Documents
from worker.archive.keeper import PdfKeeper, PdfOutcome
from worker.archive.pdfs import PdfKind, PdfStore, pdf_path
from worker.archive.repository import Archive
from worker.archive.results import ArchivedResults
from worker.invoice.envelope import validate_envelope
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.store.lanes import LaneStore
from worker.tenants import Pdv, Tenants
from worker.tusfacturas.client import TusFacturasClient


def test_store_writes_whole_files_under_readable_names(tmp_path: Path) -> None:
    store = PdfStore(str(tmp_path / "pdfs"))
    path = pdf_path("20111111112", 3, "FACTURA B", 7, PdfKind.A4)
    assert path == "20111111112/00003/factura-b/00000007.pdf"
    stored = store.put(path, b"%PDF-1.4 one")
    assert stored.sha256 == hashlib.sha256(b"%PDF-1.4 one").hexdigest()
    assert stored.size == 12
    assert store.get(path) == b"%PDF-1.4 one"
    assert (tmp_path / "pdfs" / path).read_bytes() == b"%PDF-1.4 one"
    assert not list((tmp_path / "pdfs").rglob("*.partial"))
    ticket = pdf_path("20111111112", 3, "NOTA DE CREDITO B", 7, PdfKind.TICKET)
    assert ticket == "20111111112/00003/nota-de-credito-b/00000007-ticket.pdf"


def test_store_takes_any_fsspec_url() -> None:
    store = PdfStore(f"memory://tfq-{secrets.token_hex(4)}")
    store.put("a/b.pdf", b"%PDF-x")
    assert store.exists("a/b.pdf")
    assert store.get("a/b.pdf") == b"%PDF-x"


def issued_record(sandbox: SandboxProcess, pdv: Pdv, cuit: str) -> dict[str, Any]:
    """Issue a FACTURA B at the sandbox; the job record the worker would keep of it."""
    body = validate_envelope(load_example("factura_b", argentina_today())).invoice_body()
    body["comprobante"]["punto_venta"] = pdv.punto_venta
    body["comprobante"]["numero"] = 0
    issued = TusFacturasClient(sandbox.api_url, timeout_seconds=10).nuevo(pdv, body)
    return {
        "id": secrets.token_hex(8), "cuit": cuit, "ref": "ORD-1002", "pv": str(pdv.punto_venta),
        "tipo": "FACTURA B", "status": "issued", "numero": str(issued.numero),
        "pdf_url": issued.pdf_url, "ticket_url": issued.ticket_url, "updated": "1",
    }  # fmt: skip


def keeper(store: LaneStore, tmp_path: Path, sandbox: SandboxProcess, tenants: Tenants,
           **settings: Any) -> PdfKeeper:  # fmt: skip
    s = Settings(api_max_rps=1000, **settings)
    client = TusFacturasClient(sandbox.api_url, timeout_seconds=10)
    return PdfKeeper(store, PdfStore(str(tmp_path / "pdfs")), client, tenants, s)


def due(store: LaneStore, rec: dict[str, Any]) -> None:
    store.r.hset(store.keys.job(rec["id"]), mapping=rec)
    store.r.zadd(store.keys.pdfs, {rec["id"]: 0})


def regenerations(sandbox: SandboxProcess) -> int:
    calls = sandbox.ledger()["calls"]
    return sum(c["endpoint"] == "facturacion/regenerar_pdf" for c in calls)


def test_keeper_stores_the_pdf_and_the_ticket(
    sandbox: SandboxProcess, real_pdv: Pdv, tenants: Tenants, store: LaneStore, tmp_path: Path
) -> None:
    rec = issued_record(sandbox, real_pdv, "20111111112")
    due(store, rec)
    k = keeper(store, tmp_path, sandbox, tenants)
    assert k.run_due() == {PdfOutcome.KEPT: 1}
    kept = {
        key.decode(): v.decode() for key, v in store.r.hgetall(store.keys.job(rec["id"])).items()
    }
    data = k.pdfs.get(kept["pdf_path"])
    assert data.startswith(b"%PDF")
    assert kept["pdf_sha256"] == hashlib.sha256(data).hexdigest()
    assert int(kept["pdf_size"]) == len(data)
    assert k.pdfs.get(kept["ticket_path"]).startswith(b"%PDF")
    assert store.r.zscore(store.keys.archive, rec["id"]) is not None  # archived again
    assert store.r.zcard(store.keys.pdfs) == 0
    assert regenerations(sandbox) == 0
    assert k.run_due() == {}


def test_an_expired_link_is_regenerated_once(
    sandbox: SandboxProcess, real_pdv: Pdv, tenants: Tenants, store: LaneStore, tmp_path: Path
) -> None:
    sandbox.set_config(pdf_link_seconds=0.5)
    rec = issued_record(sandbox, real_pdv, "20111111112")
    time.sleep(0.6)  # the day is over: the link serves a 404 page now
    due(store, rec)
    k = keeper(store, tmp_path, sandbox, tenants)
    assert k.run_due() == {PdfOutcome.KEPT: 1}
    assert regenerations(sandbox) == 1
    assert store.r.hget(store.keys.job(rec["id"]), "pdf_regenerations") == b"1"


def test_regenerations_and_attempts_are_bounded(
    sandbox: SandboxProcess, real_pdv: Pdv, tenants: Tenants, store: LaneStore, tmp_path: Path
) -> None:
    sandbox.set_config(pdf_link_seconds=0)  # every link is dead on arrival
    rec = issued_record(sandbox, real_pdv, "20111111112")
    time.sleep(0.01)
    due(store, rec)
    k = keeper(store, tmp_path, sandbox, tenants, pdf_max_attempts=3, pdf_max_regenerations=1)
    outcomes = []
    for _ in range(5):
        outcomes += list(k.run_due().elements())
        store.r.zadd(store.keys.pdfs, {rec["id"]: 0}, xx=True)  # the retry is due at once
    assert outcomes == [PdfOutcome.RETRY, PdfOutcome.RETRY, PdfOutcome.GAVE_UP]
    assert regenerations(sandbox) == 1
    job = store.r.hgetall(store.keys.job(rec["id"]))
    assert job[b"pdf_error"] == b"PDF link answered HTTP 404"
    assert job[b"pdf_attempts"] == b"3"
    assert store.r.zcard(store.keys.pdfs) == 0


def test_a_pdf_lookup_says_why_there_is_none(store: LaneStore, tmp_path: Path) -> None:
    pdfs = PdfStore(str(tmp_path / "pdfs"))
    archive = Archive(db.engine_for(f"sqlite:///{tmp_path}/a.sqlite3"))  # not created yet
    docs = Documents(store, ArchivedResults(archive, None), pdfs)
    base = {"cuit": "20111111112", "pv": "3", "tipo": "FACTURA B", "numero": "7"}
    cases = {
        "rejected": {**base, "status": "rejected"},
        "waiting": {**base, "status": "issued", "pdf_url": "https://x.example/a.pdf"},
        "failing": {
            **base, "status": "issued", "pdf_url": "https://x.example/a.pdf",
            "pdf_error": "PDF link answered HTTP 503",
        },
        "no_link": {**base, "status": "issued"},
        "kept": {**base, "status": "issued", "pdf_url": "u", "pdf_path": "a/b.pdf"},
    }  # fmt: skip
    for job_id, rec in cases.items():
        store.r.hset(store.keys.job(job_id), mapping={"id": job_id, **rec})
    pdfs.put("a/b.pdf", b"%PDF-1.4 kept")
    found = {job_id: docs.pdf(job_id) for job_id in cases}
    assert {k: (v.pending if v else None) for k, v in found.items()} == {
        "rejected": False, "waiting": True, "failing": True, "no_link": False, "kept": False,
    }  # fmt: skip
    assert found["rejected"] is not None
    assert "only an issued invoice" in found["rejected"].reason
    assert found["failing"] is not None
    assert "HTTP 503" in found["failing"].reason
    assert found["kept"] is not None
    assert found["kept"].data == b"%PDF-1.4 kept"
    assert found["kept"].filename == "FACTURA-B-00003-00000007.pdf"
    assert docs.pdf("nothing-here") is None  # in neither Redis nor the archive
