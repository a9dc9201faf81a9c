"""`tfq audit`: a real worker issues invoices at the sandbox, the archive keeps them, and
the audit walks the sandbox's consulta_avanzada over HTTP and compares; plus the pure
comparison, the plan's bounds and the metrics it leaves."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from producers.cli import app
from producers.client import InvoiceQueue
from tests.conftest import RI_CUIT, TENANTS_FILE
from worker.accounting.audit import (
    MAX_DAYS,
    AuditError,
    AuditPlan,
    Record,
    Walk,
    check_plan,
    compare,
)
from worker.archive import db
from worker.archive.repository import Archive
from worker.archive.schema import ArchivedJob
from worker.metrics import QueueCollector
from worker.settings import Settings, get_settings
from worker.store.audits import AuditSummary, FindingKind, audit_totals, record_audit
from worker.store.keys import Keys
from worker.store.lanes import LaneStore
from worker.tenants import Tenants
from worker.tusfacturas.client import CONSULTA_AVANZADA, TusFacturasClient

B = "FACTURA B"


def rec(numero: int, ref: str = "", *, pv: int = 3, job: str | None = None, **kw: Any) -> Record:
    fields: dict[str, Any] = {
        "total": Decimal("121.00"),
        "cae": f"7{numero:013d}",
        "documento_nro": "20111111112",
    }
    fields.update(kw)
    return Record(pv, B, numero, external_reference=ref or f"R-{numero}", job_id=job, **fields)


# --- the comparison, pure -------------------------------------------------------------------


def test_compare_same_invoices_is_clean() -> None:
    theirs = [rec(1), rec(2), rec(3)]
    ours = [rec(1, job="j1"), rec(2, job="j2"), rec(3, job="j3", documento_nro="20-11111111-2")]
    assert compare(theirs, ours) == []


def test_compare_finds_the_holes_in_the_numbering_of_both() -> None:
    theirs = [rec(10), rec(14)]  # 14 issued outside tfq
    ours = [rec(10, job="j10"), rec(11, job="j11")]
    found = compare(theirs, ours)
    gaps = [f for f in found if f.kind is FindingKind.NUMBERING_GAP]
    assert [(g.numero, g.numero_hasta) for g in gaps] == [(12, 13)]
    assert "2 numbers between 11 and 14" in gaps[0].detail
    assert {f.kind for f in found} == {
        FindingKind.NUMBERING_GAP, FindingKind.MISSING_IN_TFQ, FindingKind.MISSING_IN_TUSFACTURAS
    }  # fmt: skip
    # Per (PDV, tipo): another tipo's numbers are another sequence.
    other = Record(3, "FACTURA A", 50, Decimal(1), "", "", "A-50")
    assert not [f for f in compare([*theirs, other], [*ours, other]) if f.numero == 50]


def test_compare_finds_a_reference_issued_twice_in_either_source() -> None:
    # tfq issued the same sale twice (two jobs, two numbers).
    ours = [rec(1, "ORDER-7", job="j1"), rec(2, "ORDER-7", job="j2")]
    found = compare(list(ours), ours)
    (dup,) = found
    assert (dup.kind, dup.numero, dup.job_id) == (FindingKind.DUPLICATE_REFERENCE, 2, "j2")
    assert "FACTURA B 00003-00000001 (job j1)" in dup.detail
    assert "tfq void" in dup.action
    # Once through tfq, once outside it (only TusFacturas holds the second).
    found = compare([rec(1, "ORDER-8"), rec(2, "ORDER-8")], [rec(1, "ORDER-8", job="j1")])
    kinds = sorted(str(f.kind) for f in found)
    assert kinds == ["duplicate_reference", "missing_in_tfq"]
    assert all(f.numero == 2 for f in found)


def test_compare_names_the_mismatched_field_and_both_values() -> None:
    theirs = [rec(5, total=Decimal("121.00"), cae="70000000000005")]
    ours = [rec(5, job="j5", total=Decimal("99.9"), cae="70000000000005")]
    (f,) = compare(theirs, ours)
    assert (f.kind, f.field, f.tfq, f.tusfacturas, f.job_id) == (
        FindingKind.MISMATCH, "total", "99.90", "121.00", "j5"
    )  # fmt: skip
    (f,) = compare([rec(5, documento_nro="30712345678")], [rec(5, job="j5")])
    assert (f.field, f.tfq, f.tusfacturas) == ("documento_nro", "20111111112", "30712345678")


def test_the_plan_states_its_cost_and_refuses_too_long_a_period(tenants: Tenants) -> None:
    pdvs = [tenants.pdv(RI_CUIT, 3)]
    plan = AuditPlan(RI_CUIT, date(2026, 1, 1), date(2026, 1, 31), pdvs, None)
    check_plan(plan)
    assert (plan.calls, plan.billed_calls) == (31, 0)
    assert "31 calls" in plan.describe()
    assert "0 billed" in plan.describe()
    long = AuditPlan(RI_CUIT, date(2025, 1, 1), date(2026, 1, 2), pdvs, None)
    with pytest.raises(ValueError, match=f"at most {MAX_DAYS}"):
        check_plan(long)
    with pytest.raises(ValueError, match="before"):
        check_plan(AuditPlan(RI_CUIT, date(2026, 1, 2), date(2026, 1, 1), pdvs, None))
    with pytest.raises(ValueError, match="--max-calls"):
        check_plan(AuditPlan(RI_CUIT, date(2026, 1, 1), date(2026, 1, 31), pdvs, None, 30))


# --- the metrics ----------------------------------------------------------------------------


def test_the_gauges_add_up_each_cuits_last_audit(store: LaneStore) -> None:
    def samples() -> dict[tuple[str, str], float]:
        out = {}
        for family in QueueCollector(store).collect():
            for s in family.samples:
                if s.name.startswith("tfq_audit"):
                    out[(s.name, s.labels.get("kind", ""))] = s.value
        return out

    before = samples()  # no audit yet: every kind at 0, no run
    assert before[("tfq_audit_findings", "missing_in_tfq")] == 0
    assert before[("tfq_audit_last_run_timestamp_seconds", "")] == 0
    assert len([k for k in before if k[0] == "tfq_audit_findings"]) == len(FindingKind)
    record_audit(store, AuditSummary("20111111112", 100.0, "2026-01-01", "2026-01-31",
                                     {"missing_in_tfq": 2, "mismatch": 1}))  # fmt: skip
    record_audit(store, AuditSummary("20267565393", 200.0, "2026-01-01", "2026-01-31",
                                     {"missing_in_tfq": 1}))  # fmt: skip
    now = samples()
    assert now[("tfq_audit_findings", "missing_in_tfq")] == 3
    assert now[("tfq_audit_findings", "mismatch")] == 1
    assert now[("tfq_audit_last_run_timestamp_seconds", "")] == 200.0
    # A clean run of a CUIT replaces its earlier findings.
    record_audit(store, AuditSummary("20111111112", 300.0, "2026-01-01", "2026-01-31", {}))
    assert samples()[("tfq_audit_findings", "missing_in_tfq")] == 1
    assert audit_totals({"x": "not json"}).last_run is None


# --- the command, end to end ----------------------------------------------------------------


@pytest.fixture
def queue_settings(redis_url: str, archive_url: str, tmp_path: Path) -> Iterator[Settings]:
    prefix = unique_prefix("audit")
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        archive_url=archive_url,
        pdf_dir=str(tmp_path / "pdfs"),
        tenants_file=str(TENANTS_FILE),
    )
    yield settings
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.unlink(*keys)


def run_audit_cli(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "producers.cli", "audit", "--cuit", RI_CUIT, *args, "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_audit_of_what_a_real_worker_issued(
    sandbox: SandboxProcess, queue_settings: Settings, tmp_path: Path
) -> None:
    s = queue_settings
    db.migrate(db.engine_for(s.archive_database_url))
    env = worker_env(
        s.redis_url, sandbox.api_url, TENANTS_FILE, prefix=s.key_prefix,
        archive_url=s.archive_database_url, pdf_dir=s.pdf_store_url,
    )  # fmt: skip
    queue = InvoiceQueue(settings=s)
    jobs = factura_b_jobs(RI_CUIT, 3, pdv=3, tag="AUD")  # a real PDV: CAEs
    day = datetime.strptime(jobs[0]["invoice"]["comprobante"]["fecha"], "%d/%m/%Y").date()
    report = queue.submit_many(jobs, batch="audited")
    assert not report.refused, report.refused
    ids = [job_id for _, job_id in report.accepted]
    archive = Archive(db.engine_for(s.archive_database_url))
    with WorkerProcess(env, log_path=tmp_path / "worker.log"):
        assert wait_until(lambda: all(archive.get(i) is not None for i in ids), 60, 0.2), (
            tmp_path / "worker.log"
        ).read_text()[-3000:]
    period = ["--from", day.isoformat(), "--to", day.isoformat(), "--yes"]

    # Clean: the three invoices on both sides; one call (one day, one non-test PDV), free.
    before = len(sandbox.ledger()["calls"])  # the worker is stopped: the audit's alone
    code, doc = run_audit_cli(env, *period)
    assert [c["endpoint"] for c in sandbox.ledger()["calls"][before:]] == [CONSULTA_AVANZADA]
    assert code == 0, doc
    assert doc["clean"]
    assert doc["findings"] == []
    assert (doc["held_by_tusfacturas"], doc["held_by_tfq"]) == (3, 3)
    assert (doc["calls"], doc["billed_calls"], doc["plan"]["puntos_de_venta"]) == (1, 0, [3])

    # An invoice issued outside tfq, at the same PDV: TusFacturas holds it, tfq does not.
    outside = copy.deepcopy(jobs[0]["invoice"])
    outside["comprobante"]["external_reference"] = "OUTSIDE-1"
    issued = TusFacturasClient(sandbox.api_url).nuevo(
        Tenants.load(TENANTS_FILE).pdv(RI_CUIT, 3), outside
    )
    code, doc = run_audit_cli(env, "--pdv", "3", "--tipo", B, *period)
    assert code == 1, doc
    (found,) = doc["findings"]
    assert (found["kind"], found["numero"], found["job_id"]) == (
        "missing_in_tfq",
        issued.numero,
        None,
    )
    assert found["external_reference"] == "OUTSIDE-1"
    assert found["action"]
    assert doc["counts"]["missing_in_tfq"] == 1

    # A tampered archive row: its total is not what was issued.
    tampered = ids[1]
    with Session(db.engine_for(s.archive_database_url)) as session:
        row = session.get(ArchivedJob, tampered)
        assert row is not None
        request = copy.deepcopy(row.request)
        request["comprobante"]["total"] = str(Decimal(str(request["comprobante"]["total"])) + 1)
        row.request = request
        session.commit()
    code, doc = run_audit_cli(env, *period)
    assert code == 1
    kinds = {(f["kind"], f["job_id"]) for f in doc["findings"]}
    assert kinds == {("missing_in_tfq", None), ("mismatch", tampered)}
    (mismatch,) = [f for f in doc["findings"] if f["kind"] == "mismatch"]
    assert mismatch["field"] == "total"
    assert Decimal(mismatch["tfq"]) - Decimal(mismatch["tusfacturas"]) == 1

    # The last audit's findings are what the intake's collector serves.
    store = LaneStore(redis.Redis.from_url(s.redis_url), Keys(s.key_prefix))
    gauges = {
        (smp.name, smp.labels.get("kind")): smp.value
        for family in QueueCollector(store).collect()
        for smp in family.samples
        if smp.name.startswith("tfq_audit")
    }
    assert gauges[("tfq_audit_findings", "missing_in_tfq")] == 1
    assert gauges[("tfq_audit_findings", "mismatch")] == 1
    assert gauges[("tfq_audit_last_run_timestamp_seconds", None)] > 0


def test_audit_asks_first_and_refuses_bad_periods(
    sandbox: SandboxProcess, queue_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in worker_env(
        queue_settings.redis_url, sandbox.api_url, TENANTS_FILE, prefix=queue_settings.key_prefix,
        archive_url=queue_settings.archive_database_url,
    ).items():  # fmt: skip
        if name.startswith("TFQ_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()  # settings are read once per process
    runner = CliRunner()
    base = ["audit", "--cuit", RI_CUIT, "--from", "2026-01-01", "--to", "2026-01-31"]
    # Unattended without --yes: the plan, and nothing sent.
    got = runner.invoke(app, [*base, "--json"])
    assert got.exit_code == 2, got.output
    doc = json.loads(got.stdout)
    assert (doc["plan"]["calls"], doc["plan"]["billed_calls"]) == (31, 0)
    assert "--yes" in doc["error"]
    assert not [c for c in sandbox.ledger()["calls"] if c["endpoint"] == CONSULTA_AVANZADA]
    # Usage errors: exit 2.
    long = ["audit", "--cuit", RI_CUIT, "--from", "2025-01-01", "--to", "2026-06-01", "--yes"]
    assert runner.invoke(app, long).exit_code == 2
    assert runner.invoke(app, [*base[:5], "01/01/2026", *base[6:], "--yes"]).exit_code == 2
    assert runner.invoke(app, [*base, "--pdv", "77", "--yes"]).exit_code == 2
    assert runner.invoke(app, [*base, "--tipo", "FACTURA Z", "--yes"]).exit_code == 2
    other = ["audit", "--cuit", "20222222223", *base[3:], "--yes"]
    assert runner.invoke(app, other).exit_code == 2
    get_settings.cache_clear()


# --- the walk, over HTTP ----------------------------------------------------------------------


def test_the_walk_reads_each_day_paced_and_stops_at_its_bound(
    sandbox: SandboxProcess, store: LaneStore, tenants: Tenants
) -> None:
    # A dialect whose consulta_avanzada says "nothing" with an error, not an empty list.
    sandbox.set_config(dialect="newest")
    pdv = tenants.pdv(RI_CUIT, 3)
    client = TusFacturasClient(sandbox.api_url)
    (job,) = factura_b_jobs(RI_CUIT, 1, pdv=3, tag="WALK")
    issued = client.nuevo(pdv, job["invoice"])
    day = datetime.strptime(job["invoice"]["comprobante"]["fecha"], "%d/%m/%Y").date()
    days = (day - timedelta(days=1), day + timedelta(days=1))
    plan = AuditPlan(RI_CUIT, *days, [pdv], None)
    walk = Walk(client, store, lambda p: tenants.pacing(RI_CUIT, p.punto_venta), 10.0)
    (found,) = walk.records(plan)
    assert (found.numero, found.external_reference, found.cae) == (
        issued.numero, "WALK-1112-3-000", issued.cae
    )  # fmt: skip
    assert walk.calls == 3  # one a day, the empty days included
    # Every call took its account's pacing slot, as the workers' calls do.
    assert store.r.hget(store.keys.stats, f"calls:{CONSULTA_AVANZADA}") == b"3"
    # The bound stops the walk, saying where.
    bounded = Walk(client, store, lambda p: tenants.pacing(RI_CUIT, p.punto_venta), 10.0)
    with pytest.raises(AuditError, match=r"stopped at PDV 3, .*: 2 calls made"):
        bounded.records(AuditPlan(RI_CUIT, *days, [pdv], "FACTURA B", max_calls=2))
