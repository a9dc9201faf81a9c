"""The accountant's tools end to end, through the sandbox over HTTP and a real worker:
issue, export, write the Libro IVA and check it field by field, audit a clean period,
audit one with an invoice issued outside tfq, and void an invoice with a credit note."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import factura_b_jobs, load_example
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from producers.client import InvoiceQueue
from tests.conftest import RI_CUIT, TENANTS_FILE
from worker.accounting.libro_iva import ALICUOTA_LAYOUT, CBTE_LAYOUT, file_names
from worker.archive import db
from worker.archive.repository import Archive
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.tenants import Tenants
from worker.tusfacturas.client import TusFacturasClient

PDV = 3  # RI_CUIT's real PDV: CAEs, and what the audit walks


def tfq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producers.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def fields(line: str, layout: Any) -> dict[str, str]:
    out, at = {}, 0
    for spec in layout:
        out[spec.name] = line[at : at + spec.width]
        at += spec.width
    assert at == len(line)
    return out


def cents(value: Any, width: int = 15) -> str:
    """An amount as the Libro IVA writes it: zero-padded, two implied decimals."""
    return f"{round(Decimal(str(value)) * 100):0{width}d}"


def test_issue_export_books_audit_and_void(
    sandbox: SandboxProcess, redis_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix("books")
    archive_url = f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    s = Settings(
        redis_url=redis_url, key_prefix=prefix, archive_url=archive_url,
        pdf_dir=str(tmp_path / "pdfs"),
    )  # fmt: skip
    db.migrate(db.engine_for(archive_url))
    env = worker_env(
        redis_url, sandbox.api_url, TENANTS_FILE, prefix=prefix, archive_url=archive_url,
        pdf_dir=s.pdf_store_url,
    )  # fmt: skip
    queue = InvoiceQueue(settings=s)
    archive = Archive(db.engine_for(archive_url))
    today = argentina_today()
    day = today.isoformat()

    # 1. Issue: three Factura B and a Factura A with two VAT rates and an IIBB perception.
    factura_a = load_example("factura_a", today)
    factura_a.pop("callback_url")
    jobs = [*factura_b_jobs(RI_CUIT, 3, pdv=PDV, tag="BOOKS"), factura_a]
    report = queue.submit_many(jobs, batch="books")
    assert not report.refused, report.refused
    ids = [job_id for _, job_id in report.accepted]
    log = tmp_path / "worker.log"
    with WorkerProcess(env, log_path=log):
        assert wait_until(lambda: all(archive.get(i) for i in ids), 60, 0.2), log.read_text()[
            -3000:
        ]
    ledger = {i["external_reference"]: i for i in sandbox.ledger()["issued"]}
    assert len(ledger) == 4

    # 2. Export: one row per invoice, as the sandbox issued it, then the totals.
    done = tfq(env, "invoices", "export", "--from", day, "--to", day, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    *rows, totals = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["external_reference"] for r in rows} == set(ledger)
    for row in rows:
        sent = ledger[row["external_reference"]]
        assert (row["numero"], row["cae"]) == (sent["numero"], sent["cae"].strip())
        assert Decimal(row["total"]) == Decimal(str(sent["total"]))
    assert totals["record"] == "totals"
    (pesos,) = totals["totals"]
    assert Decimal(pesos["total"]) == sum(Decimal(str(i["total"])) for i in ledger.values())

    # 3. Libro IVA Digital: both files, checked field by field against what was issued.
    books = tmp_path / "libro"
    done = tfq(
        env, "invoices", "libro-iva", "--period", day[:7], "--cuit", RI_CUIT, "-o", str(books)
    )
    assert done.returncode == 0, done.stderr
    cbte_name, alicuotas_name = file_names(RI_CUIT, today.replace(day=1))
    cbte = (books / cbte_name).read_bytes().decode("latin-1").split("\r\n")
    alicuotas = (books / alicuotas_name).read_bytes().decode("latin-1").split("\r\n")
    assert cbte[-1] == ""
    assert alicuotas[-1] == ""
    by_number = {(i["tipo"], i["numero"]): i for i in ledger.values()}
    codes = {"FACTURA A": "001", "FACTURA B": "006"}
    for line in cbte[:-1]:
        f = fields(line, CBTE_LAYOUT)
        tipo = {v: k for k, v in codes.items()}[f["tipo_comprobante"]]
        sent = by_number[(tipo, int(f["numero_desde"]))]
        assert f["fecha"] == today.strftime("%Y%m%d")
        assert f["punto_venta"] == f"{PDV:05d}"
        assert f["numero_hasta"] == f["numero_desde"]
        assert f["codigo_documento"] == ("80" if tipo == "FACTURA A" else "96")
        assert int(f["numero_documento"]) == int(sent["documento_nro"])
        assert f["importe_total"] == cents(sent["total"])
        assert f["moneda"] == "PES"
        assert f["tipo_cambio"] == "0001000000"
        expected_rates = "2" if tipo == "FACTURA A" else "1"
        assert f["cantidad_alicuotas"] == expected_rates
        if tipo == "FACTURA A":  # the example's IIBB perception
            assert f["percepciones_iibb"] == cents("1626.18")
    rates = [fields(line, ALICUOTA_LAYOUT) for line in alicuotas[:-1]]
    assert len(rates) == 3 + 2
    a = factura_a["invoice"]["comprobante"]
    a_rates = {
        r["alicuota"]: r for r in rates if r["tipo_comprobante"] == "001"
    }  # 21 % and 10.5 %, net and VAT as the example's items add up
    assert (a_rates["0005"]["neto_gravado"], a_rates["0005"]["impuesto_liquidado"]) == (
        cents("52000.00"), cents("10920.00")
    )  # fmt: skip
    assert (a_rates["0004"]["neto_gravado"], a_rates["0004"]["impuesto_liquidado"]) == (
        cents("2205.90"), cents("231.62")
    )  # fmt: skip
    assert Decimal(str(a["total"])) == Decimal("66983.70")

    # 4. Audit a clean period: exit 0.
    audit = ["audit", "--cuit", RI_CUIT, "--pdv", str(PDV), "--from", day, "--to", day]
    done = tfq(env, *audit, "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["findings"] == []

    # 5. An invoice issued outside tfq, at the same PDV: reported, exit 1.
    outside = copy.deepcopy(jobs[0]["invoice"])
    outside["comprobante"]["external_reference"] = "OUTSIDE-1"
    issued = TusFacturasClient(sandbox.api_url).nuevo(
        Tenants.load(TENANTS_FILE).pdv(RI_CUIT, PDV), outside
    )
    done = tfq(env, *audit, "--yes", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    (finding,) = json.loads(done.stdout)["findings"]
    assert (finding["kind"], finding["numero"], finding["job_id"]) == (
        "missing_in_tfq", issued.numero, None
    )  # fmt: skip

    # 6. Void an invoice: the credit note is issued, associated with it, and exported negative.
    voided = ids[1]
    original = archive.get(voided)
    assert original is not None
    done = tfq(env, "void", voided, "--reason", "duplicate order", "--json")
    assert done.returncode == 0, done.stderr
    note_id = json.loads(done.stdout)["job_id"]
    with WorkerProcess(env, log_path=log):
        assert wait_until(lambda: archive.get(note_id) is not None, 60, 0.2), log.read_text()[
            -3000:
        ]
    note = archive.get(note_id)
    assert note is not None
    assert (note.status, note.tipo, note.punto_venta) == ("issued", "NOTA DE CREDITO B", PDV)
    assert note.cae
    assert note.request["comprobante"]["comprobantes_asociados"] == [
        {
            "tipo_comprobante": "FACTURA B",
            "punto_venta": PDV,
            "numero": original.numero,
            "comprobante_fecha": original.request["comprobante"]["fecha"],
            "cuit": RI_CUIT,
        }
    ]
    done = tfq(env, "void", voided, "--json")  # asked again: the same note
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["job_id"], json.loads(done.stdout)["duplicate"]) == (
        note_id, True
    )  # fmt: skip
    done = tfq(env, "invoices", "export", "--from", day, "--to", day, "--format", "jsonl")
    exported = {r.get("job_id"): r for r in map(json.loads, done.stdout.splitlines())}
    assert Decimal(exported[note_id]["total"]) == -Decimal(str(original.total))
