"""End to end: real Redis, real Celery worker processes, the sandbox over HTTP.

Every test judges the run from the sandbox's ledger (ops.testkit.ledger.audit): each job issued
exactly once, per CUIT + PDV + tipo numbers in enqueue order with no gaps, and no two
invoicing calls of a CUIT closer than the gap.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from ops.testkit.ledger import audit
from ops.testkit.tenantgen import REAL_PDV, TEST_PDV, make_cuits, write_tenants
from ops.testkit.webhook_receiver import running_receiver
from producers.client import InvoiceQueue
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.tenants import Tenants
from worker.tusfacturas.client import TusFacturasClient

GAP = 0.25
CUITS = make_cuits(4)


@pytest.fixture(scope="module")
def tenants_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tenants(tmp_path_factory.mktemp("tenants") / "tenants.toml", CUITS)


@pytest.fixture(scope="module")
def afip(tenants_path: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess(tenants_path, gap_seconds=GAP, block_seconds=30) as sb:
        yield sb


@dataclass
class Run:
    sandbox: SandboxProcess
    queue: InvoiceQueue
    env: dict[str, str]
    submitted: list[tuple[str, str]]
    log_dir: Path

    def worker(self, **kw: Any) -> WorkerProcess:
        return WorkerProcess(self.env, log_path=self.log_dir / "worker.log", **kw)

    def submit(self, envelopes: list[dict[str, Any]], batch: str = "") -> Any:
        report = self.queue.submit_many(envelopes, batch=batch)
        assert not report.refused, report.refused
        for index, _ in report.accepted:
            env = envelopes[index]
            self.submitted.append(
                (env["cuit"], env["invoice"]["comprobante"]["external_reference"])
            )
        return report

    def results(self) -> list[dict[str, Any]]:
        out = []
        for cuit, ref in self.submitted:
            job_id = self.queue.job_id(cuit, ref)
            assert job_id
            status = self.queue.status(job_id)
            assert status
            out.append(status)
        return out

    def wait_final(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        done = wait_until(
            lambda: all(r["status"] in ("issued", "rejected") for r in self.results()),
            timeout,
            interval=0.2,
        )
        results = self.results()
        assert done, [(r["external_reference"], r["status"]) for r in results]
        return results

    def audit(self, excused: list[tuple[str, str]] = ()) -> Any:  # type: ignore[assignment]
        result = audit(self.sandbox.ledger(), self.submitted, gap_seconds=GAP, excused=excused)
        assert result.clean, result
        return result


@pytest.fixture
def run(afip: SandboxProcess, tenants_path: Path, redis_url: str, tmp_path: Path) -> Iterator[Run]:
    afip.reset()
    afip.set_config(gap_seconds=GAP, block_seconds=30)
    prefix = unique_prefix("q")
    env = worker_env(
        redis_url, afip.api_url, tenants_path, prefix=prefix, gap_seconds=GAP, batch_max=1
    )
    # Callbacks go to a receiver on 127.0.0.1 (test_callbacks_end_to_end).
    settings = Settings(callbacks_allow_private=True)
    queue = InvoiceQueue(redis_url, key_prefix=prefix, settings=settings)
    yield Run(afip, queue, env, [], tmp_path)
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.unlink(key)
    client.delete(f"{prefix}send")


def jobs(cuit: str, count: int, *, pdv: int = TEST_PDV, tag: str = "J") -> list[dict[str, Any]]:
    return factura_b_jobs(cuit, count, pdv=pdv, tag=tag)


def interleave(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in zip(*groups, strict=True):
        out.extend(row)
    return out


def test_every_job_issued_once_in_order_and_paced(run: Run) -> None:
    envelopes = interleave(
        *(jobs(c, 5) for c in CUITS), *(jobs(c, 5, pdv=REAL_PDV) for c in CUITS[:2])
    )
    with run.worker():
        run.submit(envelopes, batch="plain")
        results = run.wait_final()
    assert {r["status"] for r in results} == {"issued"}
    real = [r for r in results if r["punto_venta"] == REAL_PDV]
    assert all(r["cae"] and len(r["cae"]) == 14 for r in real)
    assert all(r["test_mode"] and not r["cae"] for r in results if r["punto_venta"] == TEST_PDV)
    assert run.audit().issued == len(envelopes)
    batch = run.queue.batch("plain")
    assert batch is not None
    assert batch["counts"]["issued"] == len(envelopes)
    assert batch["progress"] == 1.0


def test_faults_never_duplicate_nor_lose(run: Run) -> None:
    run.sandbox.set_faults(
        error_5xx={"rate": 0.15},
        rate_429={"rate": 0.1},
        # High enough that some reply is dropped in every run (the test checks it was).
        drop_after_commit={"rate": 0.3},
    )
    envelopes = interleave(*(jobs(c, 8, pdv=REAL_PDV, tag="F") for c in CUITS[:3]))
    with run.worker():
        run.submit(envelopes)
        results = run.wait_final(timeout=120)
    assert {r["status"] for r in results} == {"issued"}
    calls = run.sandbox.ledger()["calls"]
    assert any(c["outcome"].startswith("fault:drop") for c in calls)
    assert run.audit().issued == len(envelopes)


def test_timeouts_after_commit_are_reconciled(run: Run) -> None:
    run.env["TFQ_API_TIMEOUT_SECONDS"] = "0.5"
    run.sandbox.set_faults(hang_after_commit_ms=1200)
    envelopes = jobs(CUITS[0], 3, pdv=REAL_PDV, tag="T")
    with run.worker():
        run.submit(envelopes)
        wait_until(lambda: len(run.sandbox.ledger()["issued"]) >= 1, 15)
        run.sandbox.set_faults(hang_after_commit_ms=0)
        results = run.wait_final()
    assert {r["status"] for r in results} == {"issued"}
    first = results[0]
    assert first["attempts"] >= 1
    assert run.audit().issued == 3


def test_worker_killed_mid_send(run: Run) -> None:
    run.sandbox.set_faults(latency_ms=1500)
    envelopes = jobs(CUITS[1], 3, pdv=REAL_PDV, tag="K")
    first = run.worker()
    first.start()
    try:
        run.submit(envelopes)
        assert wait_until(lambda: run.results()[0]["status"] == "sending", 15)
        time.sleep(0.3)  # the call is on the wire, the sandbox will commit it
        first.kill()
    finally:
        first.stop()
    run.sandbox.set_faults(latency_ms=0)
    with run.worker():
        results = run.wait_final(timeout=60)
    assert {r["status"] for r in results} == {"issued"}
    assert run.audit().issued == 3


def test_lotes_partial_failure(run: Run) -> None:
    run.env["TFQ_BATCH_MAX"] = "20"
    run.sandbox.set_faults(reject_ref_pattern=r"-003$")
    envelopes = jobs(CUITS[2], 8, tag="L")
    with run.worker():
        run.submit(envelopes)
        results = run.wait_final()
    by_ref = {r["external_reference"]: r for r in results}
    bad = by_ref[envelopes[3]["invoice"]["comprobante"]["external_reference"]]
    assert bad["status"] == "rejected"
    assert bad["errors"]
    issued = [r for r in results if r["status"] == "issued"]
    assert [r["numero"] for r in issued] == list(range(1, 8))
    lotes = [c for c in run.sandbox.ledger()["calls"] if c["endpoint"] == "facturacion/lotes"]
    # One call for all 8: AFIP issued the prefix before the rejection, the rest came back.
    assert (lotes[0]["outcome"], lotes[0]["invoices"]) == ("partial", 3)
    run.audit(excused=[(CUITS[2], bad["external_reference"])])


def test_quota_pauses_only_its_lane(run: Run) -> None:
    blocked, free = CUITS[0], CUITS[3]
    run.sandbox.set_faults(quota={blocked: 0})
    envelopes = interleave(jobs(blocked, 3, tag="Q"), jobs(free, 3, tag="Q"))
    with run.worker():
        run.submit(envelopes)
        assert wait_until(
            lambda: all(r["status"] == "issued" for r in run.results() if r["cuit"] == free), 30
        )
        stuck = [r for r in run.results() if r["cuit"] == blocked]
        assert {r["status"] for r in stuck} == {"paused"}
        assert "cupo" in stuck[0]["paused_reason"] or "quota" in stuck[0]["paused_reason"]
        assert run.queue.store.depth(blocked) == 3  # nothing dropped
        run.sandbox.set_faults(quota={blocked: None})
        run.queue.store.resume(blocked)
        results = run.wait_final()
    assert {r["status"] for r in results} == {"issued"}
    run.audit()


def test_maintenance_window_pauses_every_lane(run: Run) -> None:
    until = datetime.now(UTC) + timedelta(seconds=3)
    run.sandbox.set_faults(maintenance_until=until.isoformat())
    envelopes = interleave(*(jobs(c, 2, tag="M") for c in CUITS))
    with run.worker():
        run.submit(envelopes)
        assert wait_until(run.queue.store.down, 10)
        assert not run.sandbox.ledger()["issued"]
        results = run.wait_final(timeout=60)
    assert {r["status"] for r in results} == {"issued"}
    ledger = run.sandbox.ledger()
    first_issue = min(i["arrival"] for i in ledger["issued"])
    assert first_issue >= until.timestamp() - 0.05
    refused = [
        c for c in ledger["calls"] if c["outcome"] != "ok" and c["arrival"] < until.timestamp()
    ]
    # Lanes discover the window, then everyone waits and probes back off (free queries).
    assert len(refused) <= 3 * len(CUITS)
    run.audit()


def test_resubmitting_the_same_file_twice_makes_no_new_invoices(run: Run) -> None:
    envelopes = interleave(*(jobs(c, 4, tag="R") for c in CUITS[:2]))
    with run.worker():
        run.submit(envelopes)
        again = run.queue.submit_many(envelopes)  # while the first run is in flight
        assert len(again.duplicates) == len(envelopes)
        run.wait_final()
        again = run.queue.submit_many(envelopes)  # and after it finished
        assert len(again.duplicates) == len(envelopes)
        time.sleep(1)
    assert run.audit().issued == len(envelopes)


def test_another_system_took_our_number(run: Run, tenants_path: Path) -> None:
    """Someone else issued on our PDV: 10016, consulta finds a different invoice, renumber."""
    cuit = CUITS[3]
    first, second = jobs(cuit, 2, pdv=REAL_PDV, tag="X")
    with run.worker():
        run.submit([first])
        run.wait_final()
        # Another program issues number 2 on the same PDV and tipo, behind our back.
        outsider = copy.deepcopy(second["invoice"])
        outsider["comprobante"]["external_reference"] = "OUTSIDER-1"
        outsider["comprobante"]["total"] = 36000.00
        pdv = Tenants.load(tenants_path).pdv(cuit, REAL_PDV)
        time.sleep(GAP * 2)  # the outsider also keeps AFIP's gap
        TusFacturasClient(run.sandbox.api_url).nuevo(pdv, outsider)
        run.submit([second])
        results = run.wait_final()
    assert [r["numero"] for r in results] == [1, 3]
    ledger = run.sandbox.ledger()
    ledger["issued"] = [i for i in ledger["issued"] if i["external_reference"] != "OUTSIDER-1"]
    ours = audit(ledger, run.submitted, gap_seconds=GAP)
    assert not ours.duplicates
    assert not ours.missing


def test_date_earlier_than_the_last_invoice_is_rejected(run: Run) -> None:
    """10016 for a number nobody used: the date is the problem, not the count."""
    today, earlier = jobs(CUITS[0], 2, pdv=REAL_PDV, tag="D")
    earlier["invoice"]["comprobante"]["fecha"] = (argentina_today() - timedelta(days=2)).strftime(
        "%d/%m/%Y"
    )
    with run.worker():
        run.submit([today])
        run.wait_final()
        run.submit([earlier])
        results = run.wait_final()
    assert results[1]["status"] == "rejected"
    assert any("earlier than the last invoice" in e for e in results[1]["errors"])
    run.audit(excused=[(CUITS[0], earlier["invoice"]["comprobante"]["external_reference"])])


def test_callbacks_end_to_end(run: Run, tenants_path: Path) -> None:
    """Every final job and the batch's completion reach the receiver, signed and verified."""
    run.env["TFQ_CALLBACKS_ALLOW_PRIVATE"] = "1"
    with running_receiver(Tenants.load(tenants_path)) as receiver:
        receiver.script = [(500, {}, 0.0)]  # the first delivery fails once and is retried
        envelopes = interleave(jobs(CUITS[0], 3, tag="C"), jobs(CUITS[1], 3, tag="C"))
        for env in envelopes:
            env["callback_url"] = receiver.url
        with run.worker():
            run.submit(envelopes, batch="cb-batch")
            results = run.wait_final()
            wait_until(
                lambda: len({r["headers"]["webhook-id"] for r in receiver.received}) >= 7, 30
            )
        events = [r["body"]["type"] for r in receiver.received]
    assert all(r["verified"] for r in receiver.received)
    assert events.count("batch.completed") == 1
    delivered = {r["headers"]["webhook-id"]: r["body"] for r in receiver.received}
    issued = [b for b in delivered.values() if b["type"] == "invoice.issued"]
    assert sorted(b["data"]["external_reference"] for b in issued) == sorted(
        ref for _, ref in run.submitted
    )
    for body in delivered.values():
        text = json.dumps(body)
        assert "apitoken" not in text
        assert "usertoken" not in text
    # Each job's result is in Celery's backend as Celery itself reads it.
    celery = Celery("reader", backend=run.env["TFQ_REDIS_URL"])
    for result in results:
        stored = celery.AsyncResult(result["job_id"]).get(timeout=5)
        assert (stored["status"], stored["cae"]) == ("issued", result["cae"])
    run.audit()
