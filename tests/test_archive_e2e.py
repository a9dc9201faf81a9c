"""The archive end to end: a real worker issues invoices at the sandbox; their rows and
PDFs are kept; once Redis lets a job go, the intake still serves it and its PDF."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import WorkerProcess, serving, unique_prefix, wait_until, worker_env
from ops.testkit.webhook_receiver import running_receiver
from producers.client import InvoiceQueue
from producers.http.app import create_app
from producers.http.auth import token_sha256
from tests.conftest import RI_CUIT, TENANTS_FILE
from worker.archive import db
from worker.archive.repository import Archive
from worker.settings import Settings
from worker.store.jobs import JobStatus
from worker.tenants import Tenants

TOKEN = "archive-e2e-token-0123"
PUBLIC_URL = "https://tfq.example.com"


@pytest.fixture
def queue_settings(redis_url: str, archive_url: str, tmp_path: Path) -> Iterator[Settings]:
    prefix = unique_prefix("arch")
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        archive_url=archive_url,
        pdf_dir=str(tmp_path / "pdfs"),
        public_url=PUBLIC_URL,
        callbacks_allow_private=True,
    )
    yield settings
    queue = InvoiceQueue(settings=settings)
    keys = list(queue.redis.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        queue.redis.unlink(*keys)


def test_issued_jobs_are_archived_with_their_pdfs_and_served_after_redis(
    sandbox: SandboxProcess, queue_settings: Settings, tmp_path: Path
) -> None:
    s = queue_settings
    db.migrate(db.engine_for(s.archive_database_url))  # what `tfq archive migrate` does
    env = worker_env(
        s.redis_url, sandbox.api_url, TENANTS_FILE, prefix=s.key_prefix,
        archive_url=s.archive_database_url, pdf_dir=s.pdf_store_url, public_url=PUBLIC_URL,
        callbacks_allow_private=1,
    )  # fmt: skip
    queue = InvoiceQueue(settings=s)
    jobs = factura_b_jobs(RI_CUIT, 3, pdv=3, tag="ARC")  # a real PDV: CAEs and PDFs
    with running_receiver(Tenants.load(TENANTS_FILE)) as receiver:
        for job in jobs:
            job["callback_url"] = receiver.url
        report = queue.submit_many(jobs, batch="archived")
        assert not report.refused, report.refused
        ids = [job_id for _, job_id in report.accepted]
        archive = Archive(db.engine_for(s.archive_database_url))
        with WorkerProcess(env, log_path=tmp_path / "worker.log"):
            assert wait_until(
                lambda: all((row := archive.get(i)) is not None and row.pdf_sha256 for i in ids),
                60,
                interval=0.2,
            ), (tmp_path / "worker.log").read_text()[-3000:]
            wait_until(lambda: len(receiver.received) >= 4, 20)
        issued_callbacks = [
            r["body"]["data"] for r in receiver.received if r["body"]["type"] == "invoice.issued"
        ]
    # Callbacks link tfq's own lasting PDF route, never the vendor's dying link.
    assert len(issued_callbacks) == 3
    for data in issued_callbacks:
        assert data["pdf_url"] == f"{PUBLIC_URL}/v1/invoices/{data['job_id']}/pdf"
        assert "/_sandbox/pdf/" not in json.dumps(data)

    ledger = {i["external_reference"]: i for i in sandbox.ledger()["issued"]}
    for job_id in ids:
        row = archive.get(job_id)
        assert row is not None
        assert row.status == JobStatus.ISSUED
        sent = ledger[row.external_reference]
        assert (row.numero, row.cae) == (sent["numero"], sent["cae"].strip())
        pdf = queue.pdf(job_id)
        assert pdf is not None
        assert pdf.data is not None
        assert pdf.data.startswith(b"%PDF")
        assert hashlib.sha256(pdf.data).hexdigest() == row.pdf_sha256

    # Redis lets the records go (retention): reads fall back to the archive.
    gone = ids[0]
    queue.redis.delete(queue.keys.job(gone))
    app = create_app(
        s,
        queue=queue,
        tenants=Tenants.from_dict(
            {"client": [{"name": "shop", "token_sha256": token_sha256(TOKEN), "cuits": [RI_CUIT]}]}
        ),
    )
    with serving(app) as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        got = requests.get(f"{url}/v1/invoices/{gone}", headers=auth, timeout=10)
        assert got.status_code == 200, got.text
        body = got.json()
        assert (body["status"], body["job_id"]) == ("issued", gone)
        assert body["pdf_url"] == f"{PUBLIC_URL}/v1/invoices/{gone}/pdf"
        pdf = requests.get(f"{url}/v1/invoices/{gone}/pdf", headers=auth, timeout=10)
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        assert hashlib.sha256(pdf.content).hexdigest() == body["pdf_sha256"]
        ticket = requests.get(f"{url}/v1/invoices/{gone}/pdf?kind=ticket", headers=auth, timeout=10)
        assert ticket.status_code == 200
        assert ticket.content.startswith(b"%PDF")
        missing = requests.get(f"{url}/v1/invoices/00ff/pdf", headers=auth, timeout=10)
        assert missing.status_code == 404
    assert queue.status(gone) == body

    # The command line reads the same way: `tfq status` and `tfq invoices pdf`.
    cli_env = {
        **env, "TFQ_ARCHIVE_URL": s.archive_database_url, "TFQ_PDF_DIR": s.pdf_store_url,
        "TFQ_PUBLIC_URL": PUBLIC_URL,
    }  # fmt: skip
    shown = subprocess.run(
        [sys.executable, "-m", "producers.cli", "status", gone, "--json"],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["cae"] == body["cae"]
    out = tmp_path / "invoice.pdf"
    wrote = subprocess.run(
        [sys.executable, "-m", "producers.cli", "invoices", "pdf", gone, "-o", str(out)],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == body["pdf_sha256"]
    nothing = subprocess.run(
        [sys.executable, "-m", "producers.cli", "invoices", "pdf", "00ff", "-o", str(out)],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert nothing.returncode == 1
    assert "no job 00ff" in nothing.stderr
