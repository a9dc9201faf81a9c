"""Chaos run: prove nothing is lost, duplicated, reordered or sent too fast.

    python -m ops.chaos            # 200 CUITs × 10 jobs, about two minutes
    python -m ops.chaos --quick    # 40 CUITs × 10 jobs, for CI
    python -m ops.chaos --dialect newest   # the sandbox as the newest vendor pages read

It starts a private Redis (appendonly), the sandbox with faults on (5xx, drop after commit,
429, latency beyond the client timeout, maintenance, AFIP down, CUIT blocks), three workers,
a webhook receiver that verifies every signature and a private PostgreSQL for the archive;
every CUIT is on one TusFacturas account. It enqueues bulk jobs and single jobs trickling in
(a few rejected by "AFIP"), and meanwhile SIGKILLs a random worker every few seconds,
restarts Redis once, stops the database once, stalls the sandbox once (SIGSTOP) and lets PDF
links die within a second for a while (so the keeper regenerates them, a billed call). Then
it waits for every job to be issued, rejected or reported as needing attention, and for the
archive and PDF schedules to drain; audits the sandbox ledger against what was accepted and
the archive, row for row, against both; prints a table and one JSON line, and exits 1
unless duplicates, lost, order and gap violations are all 0, every callback was delivered
and verified, the archive holds one matching row per finished job and every issued
invoice's PDF is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from ops.sandbox.server import SandboxProcess
from ops.testkit import localpostgres
from ops.testkit.archive_audit import audit_archive
from ops.testkit.examples import load_example
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from ops.testkit.ledger import audit
from ops.testkit.localredis import free_port, start_private, stop_pid
from ops.testkit.tenantgen import REAL_PDV, TEST_PDV, make_cuits, write_tenants
from ops.testkit.webhook_receiver import Receiver, running_receiver
from producers.client import InvoiceQueue
from worker.archive import db
from worker.archive.pdfs import PdfStore
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.store.callbacks import Callbacks
from worker.tenants import Tenants
from worker.webhooks.publishing import delivery_id_for

GAP_SECONDS = 0.5
API_TIMEOUT_SECONDS = 2.0
BAD_SUFFIX = "-BAD"
DB_STOP_SECONDS = 4.0
PDF_LINK_SHORT_SECONDS = 1.0  # while links die fast, downloads need regenerar_pdf
PDF_LINK_SECONDS = 86_400.0  # the sandbox's default: links live a day


@dataclass
class Plan:
    cuits: int
    bulk_per_cuit: int
    singles_per_cuit: int
    chaos_seconds: float
    settle_timeout_seconds: float
    # Bounded: a PDF download that failed waits 30 s, then 120 s (worker/archive/keeper.py).
    archive_timeout_seconds: float = 240
    workers: int = 3
    seed: int = 7
    dialect: str = "classic"  # the sandbox's reading of the vendor's pages (ops/sandbox/dialect.py)


@dataclass
class Run:
    plan: Plan
    rng: random.Random
    redis_url: str
    redis_port: int
    redis_pid: int
    sandbox: SandboxProcess
    queue: InvoiceQueue
    workers: list[WorkerProcess]
    receiver: Receiver
    postgres: Path  # the archive database's data directory
    postgres_port: int
    archive_url: str
    pdf_dir: Path
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (cuit, ref) enqueue order
    blocked: list[str] = field(default_factory=list)  # CUITs "AFIP" blocked on its own
    events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)

    def log(self, what: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f}s] {what}"
        self.events.append(line)
        print(line, file=sys.stderr, flush=True)


def envelopes_for(
    cuit: str, count: int, tag: str, rng: random.Random, url: str
) -> list[dict[str, Any]]:
    base_b = load_example("factura_b", argentina_today())
    out = []
    for i in range(count):
        env = copy.deepcopy(base_b)
        env["cuit"] = cuit
        comp = env["invoice"]["comprobante"]
        # Bulk jobs share the test PDV (batchable into lotes); singles go to the real one.
        comp["punto_venta"] = TEST_PDV if tag == "B" else REAL_PDV
        ref = f"{tag}-{cuit}-{i:03d}"
        if rng.random() < 0.02:
            ref += BAD_SUFFIX
        comp["external_reference"] = ref
        env["callback_url"] = url
        out.append(env)
    return out


def submit(run: Run, envelopes: list[dict[str, Any]], batch: str) -> None:
    """Submit, retrying through a Redis restart: resubmission is idempotent by key."""
    while True:
        try:
            report = run.queue.submit_many(envelopes, batch=batch)
            break
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError):
            time.sleep(0.2)
    assert not report.refused, report.refused
    with run.lock:
        # A retry after a Redis restart may find its own lost-reply attempt's job queued.
        for index, _ in [*report.accepted, *report.duplicates]:
            env = envelopes[index]
            key = (env["cuit"], env["invoice"]["comprobante"]["external_reference"])
            if key not in run.accepted:
                run.accepted.append(key)


def trickle_singles(run: Run, cuits: list[str], stop: threading.Event) -> None:
    """Single jobs arriving one at a time over the first part of the run."""
    per_cuit = {
        c: envelopes_for(c, run.plan.singles_per_cuit, "S", run.rng, run.receiver.url)
        for c in cuits
    }
    pending = [per_cuit[c][i] for i in range(run.plan.singles_per_cuit) for c in cuits]
    spacing = (run.plan.chaos_seconds * 0.6) / max(1, len(pending))
    for env in pending:
        if stop.is_set():
            break
        submit(run, [env], batch="chaos-singles")
        time.sleep(spacing)
    run.log(f"singles submitted: {len(pending)}")


def chaos(run: Run, stop: threading.Event) -> None:
    """Faults on a timeline, and a random worker SIGKILLed every few seconds."""
    total = run.plan.chaos_seconds
    sb = run.sandbox
    sb.set_faults(
        error_5xx={"rate": 0.05}, rate_429={"rate": 0.03}, drop_after_commit={"rate": 0.05},
        garbage_after_commit={"rate": 0.03}, lotes_524={"rate": 0.05},
        unknown_error_after_commit={"rate": 0.02},
        reject_ref_pattern=f"{BAD_SUFFIX}$",
    )  # fmt: skip
    timeline: list[tuple[float, str, Callable[[], object]]] = [
        (0.15, "slow: latency beyond the client timeout", lambda: sb.set_faults(latency_ms=2500)),
        (0.22, "fast again", lambda: sb.set_faults(latency_ms=0)),
        (0.25, "restart Redis", lambda: restart_redis(run)),
        (0.30, "block 3 CUITs for 6 s", lambda: block_cuits(run, 3, 6)),
        (0.40, "stall the sandbox 3 s (SIGSTOP)", lambda: stall_sandbox(run, 3)),
        (0.45, f"stop the archive database {DB_STOP_SECONDS:g} s", lambda: stop_database(run)),
        (0.55, "PDF links die within 1 s for 6 s", lambda: short_pdf_links(sb, 6)),
        (0.50, "maintenance window 4 s", lambda: window(sb, "maintenance_until", 4)),
        (0.65, "AFIP down window 4 s", lambda: window(sb, "afip_down_until", 4)),
    ]
    next_kill = time.monotonic() + 3
    start = time.monotonic()
    while not stop.is_set() and time.monotonic() - start < total:
        elapsed = (time.monotonic() - start) / total
        while timeline and elapsed >= timeline[0][0]:
            _, what, action = timeline.pop(0)
            run.log(what)
            try:
                action()
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                run.log(f"  failed: {exc!r}")
        if time.monotonic() >= next_kill:
            victim = run.rng.randrange(len(run.workers))
            run.log(f"SIGKILL worker {victim}")
            run.workers[victim].kill()
            time.sleep(run.rng.uniform(0.3, 1.0))
            run.workers[victim].start()
            next_kill = time.monotonic() + run.rng.uniform(2.0, 5.0)
        time.sleep(0.1)
    sb.set_faults(
        error_5xx={"rate": 0}, rate_429={"rate": 0}, drop_after_commit={"rate": 0},
        garbage_after_commit={"rate": 0}, lotes_524={"rate": 0}, latency_ms=0,
        unknown_error_after_commit={"rate": 0},
    )  # fmt: skip
    run.log("chaos over: faults off, waiting for every job to settle")


def restart_redis(run: Run) -> None:
    stop_pid(run.redis_pid)
    time.sleep(1.0)
    _, run.redis_pid = start_private(run.redis_port, appendonly=True)


def stop_database(run: Run) -> None:
    """A crash of the archive's database (no checkpoint), back after a few seconds."""
    localpostgres.stop_server(run.postgres, mode="immediate")
    time.sleep(DB_STOP_SECONDS)
    localpostgres.start(run.postgres, run.postgres_port)


def short_pdf_links(sb: SandboxProcess, seconds: float) -> None:
    sb.set_config(pdf_link_seconds=PDF_LINK_SHORT_SECONDS)
    timer = threading.Timer(seconds, lambda: sb.set_config(pdf_link_seconds=PDF_LINK_SECONDS))
    timer.daemon = True
    timer.start()


def block_cuits(run: Run, count: int, seconds: float) -> None:
    for cuit in run.rng.sample(sorted({c for c, _ in run.accepted}), count):
        run.blocked.append(cuit)
        run.sandbox.set_faults(block_cuit={"cuit": cuit, "seconds": seconds})


def stall_sandbox(run: Run, seconds: float) -> None:
    assert run.sandbox.proc is not None
    pid = run.sandbox.proc.pid
    os.kill(pid, signal.SIGSTOP)
    time.sleep(seconds)
    os.kill(pid, signal.SIGCONT)


def window(sb: SandboxProcess, field_name: str, seconds: float) -> None:
    sb.set_faults(**{field_name: (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()})


def needs_attention(status: dict[str, Any]) -> bool:
    """Waiting in a lane paused until a human resumes it (a timed AFIP block resumes alone)."""
    return bool(status.get("paused_reason")) and not status.get("paused_until")


def settled(run: Run) -> tuple[bool, dict[str, Any]]:
    """Every accepted job is issued, rejected, or waits in a lane reported as needing attention."""
    statuses: dict[str, int] = {}
    done = 0
    for cuit, ref in list(run.accepted):
        job_id = run.queue.job_id(cuit, ref)
        status = run.queue.status(job_id) if job_id else None
        state = status["status"] if status else "missing"
        statuses[state] = statuses.get(state, 0) + 1
        if state in ("issued", "rejected") or (status and needs_attention(status)):
            done += 1
    return done == len(run.accepted), statuses


@contextlib.contextmanager
def infrastructure(plan: Plan, workdir: Path) -> Iterator[Run]:
    cuits = make_cuits(plan.cuits, prefix="33")
    accounts = dict.fromkeys(cuits, "chaos")  # one account, 10 calls/s in all: a platform
    tenants_file = write_tenants(workdir / "tenants.toml", cuits, accounts=accounts)
    port = free_port()
    url, pid = start_private(port, appendonly=True)
    prefix = unique_prefix("chaos")
    sandbox = SandboxProcess(
        tenants_file, gap_seconds=GAP_SECONDS, block_seconds=10, dialect=plan.dialect
    )
    sandbox.start()
    receiver_cm = running_receiver(Tenants.load(tenants_file))
    receiver = receiver_cm.__enter__()
    postgres_port = free_port()
    archive_url, postgres = localpostgres.start_private(postgres_port)
    db.migrate(db.engine_for(archive_url))
    pdf_dir = workdir / "pdfs"
    env = worker_env(
        url, sandbox.api_url, tenants_file, prefix=prefix, gap_seconds=GAP_SECONDS,
        api_timeout_seconds=API_TIMEOUT_SECONDS, batch_max=5, lease_seconds=4,
        callbacks_allow_private=1, callback_retry_seconds="[0.5, 1, 2, 4, 8, 16, 30]",
        metrics_port=0, health_probe_seconds=3, callback_visibility_seconds=10,
        archive_url=archive_url, pdf_dir=str(pdf_dir), archive_visibility_seconds=10,
        pdf_visibility_seconds=15, pdf_download_timeout_seconds=5,
    )  # fmt: skip
    workers = [
        WorkerProcess(env, concurrency=16, log_path=workdir / f"worker-{i}.log")
        for i in range(plan.workers)
    ]
    run = Run(
        plan=plan,
        rng=random.Random(plan.seed),
        redis_url=url,
        redis_port=port,
        redis_pid=pid,
        sandbox=sandbox,
        queue=InvoiceQueue(url, key_prefix=prefix, settings=Settings(callbacks_allow_private=True)),
        workers=workers,
        receiver=receiver,
        postgres=postgres,
        postgres_port=postgres_port,
        archive_url=archive_url,
        pdf_dir=pdf_dir,
    )
    try:
        for w in workers:
            w.start()
        yield run
    finally:
        for w in workers:
            w.stop(timeout=10)
        receiver_cm.__exit__(None, None, None)
        sandbox.stop()
        stop_pid(run.redis_pid)
        db.engine_for(archive_url).dispose()
        localpostgres.stop_private(postgres)


def execute(plan: Plan, workdir: Path) -> dict[str, Any]:
    with infrastructure(plan, workdir) as run:
        cuits = make_cuits(plan.cuits, prefix="33")
        bulk = [
            env
            for c in cuits
            for env in envelopes_for(c, plan.bulk_per_cuit, "B", run.rng, run.receiver.url)
        ]
        run.log(f"bulk: {len(bulk)} jobs for {len(cuits)} CUITs")
        submit(run, bulk, batch="chaos-bulk")
        stop = threading.Event()
        threads = [
            threading.Thread(target=trickle_singles, args=(run, cuits, stop), daemon=True),
            threading.Thread(target=chaos, args=(run, stop), daemon=True),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = wait_until(lambda: settled(run)[0], plan.settle_timeout_seconds, interval=1.0)
        _, statuses = settled(run)
        run.log(f"settled={done} statuses={statuses}")
        # Let the last callbacks land.
        expected_ids = final_job_ids(run)
        wait_until(lambda: callbacks_seen(run, expected_ids)[0] >= len(expected_ids), 90, 0.5)
        drained = wait_until(lambda: archive_backlog(run) == 0, plan.archive_timeout_seconds, 1.0)
        run.log(f"archive and PDF schedules drained={drained}")
        return report(run, statuses)


def archive_backlog(run: Run) -> int:
    """Jobs waiting for their archive row or their PDFs."""
    g = run.queue.store.gauges()
    return g.archive_backlog + g.pdf_backlog


def final_job_ids(run: Run) -> dict[str, str]:
    """job id -> final status, for every accepted job that finished."""
    out: dict[str, str] = {}
    for cuit, ref in run.accepted:
        job_id = run.queue.job_id(cuit, ref)
        status = run.queue.status(job_id) if job_id else None
        if job_id and status and status["status"] in ("issued", "rejected"):
            out[job_id] = status["status"]
    return out


def callbacks_seen(run: Run, expected: dict[str, str]) -> tuple[int, int]:
    """(delivered, verified): final-status events received, deduplicated by job."""
    delivered, verified = callbacks_received(run, expected)
    return len(delivered), len(verified)


def callbacks_received(run: Run, expected: dict[str, str]) -> tuple[set[str], set[str]]:
    """The job ids whose final-status event was received, and those that verified."""
    delivered: set[str] = set()
    verified: set[str] = set()
    for got in list(run.receiver.received):
        body = got["body"]
        data = body.get("data", {})
        job_id = data.get("job_id")
        if job_id in expected and body.get("type") == f"invoice.{expected[job_id]}":
            delivered.add(job_id)
            if got["verified"]:
                verified.add(job_id)
    return delivered, verified


def missing_callbacks(run: Run, expected: dict[str, str]) -> list[dict[str, Any]]:
    """For each final job whose callback never arrived: where its event got stuck."""
    delivered, _ = callbacks_received(run, expected)
    callbacks = Callbacks(run.queue.store)
    out: list[dict[str, Any]] = []
    for job_id in sorted(set(expected) - delivered)[:10]:
        entry = f"invoice.{expected[job_id]}|{job_id}"
        record = callbacks.get(delivery_id_for(entry)) or {}
        out.append(
            {
                "job_id": job_id,
                "in_outbox": run.queue.store.r.zscore(callbacks.keys.outbox, entry) is not None,
                "delivery": {k: record.get(k) for k in ("status", "attempts", "last_error")},
            }
        )
    return out


def report(run: Run, statuses: dict[str, int]) -> dict[str, Any]:
    ledger = run.sandbox.ledger()
    finals = final_job_ids(run)
    rejected_keys = []
    attention_keys = []
    attention_reasons: dict[str, int] = {}
    for cuit, ref in run.accepted:
        job_id = run.queue.job_id(cuit, ref)
        status = run.queue.status(job_id) if job_id else None
        if status and status["status"] == "rejected":
            rejected_keys.append((cuit, ref))
        elif status and needs_attention(status):
            attention_keys.append((cuit, ref))
            reason = str(status.get("paused_reason"))[:160]
            attention_reasons[reason] = attention_reasons.get(reason, 0) + 1
    result = audit(
        ledger,
        run.accepted,
        gap_seconds=GAP_SECONDS,
        excused=rejected_keys + attention_keys,
        blocked_externally=run.blocked,
    )
    # Our records and the ledger must agree: a job we call issued is in the ledger once.
    ledger_keys = {(i["cuit"], i["external_reference"]) for i in ledger["issued"]}
    issued_not_in_ledger = [
        (c, r) for c, r in run.accepted
        if finals.get(run.queue.job_id(c, r) or "") == "issued" and (c, r) not in ledger_keys
    ]  # fmt: skip
    delivered, verified = callbacks_seen(run, finals)
    references = {run.queue.job_id(c, r) or "": (c, r) for c, r in run.accepted}
    archived = audit_archive(
        db.engine_for(run.archive_url),
        PdfStore(str(run.pdf_dir)),
        finals,
        references,
        ledger["issued"],
    )
    figures: dict[str, Any] = {
        "jobs": len(run.accepted),
        "issued": statuses.get("issued", 0),
        "rejected": statuses.get("rejected", 0),
        "attention": len(attention_keys),
        "duplicates": len(result.duplicates),
        "lost": len(result.missing) + len(issued_not_in_ledger),
        "order_violations": len(result.order_violations),
        "gap_violations": len(result.gap_violations),
        "callbacks_expected": len(finals),
        "callbacks_delivered": delivered,
        "callbacks_verified": verified,
        "seconds": round(time.monotonic() - run.started, 1),
        "worker_kills": sum(1 for e in run.events if "SIGKILL" in e),
        "api_calls": len(ledger["calls"]),
        "ledger_issued": len(ledger["issued"]),
        "dialect": run.plan.dialect,
        **archived.figures(),
        "archive_backlog": archive_backlog(run),
        "db_stops": sum(1 for e in run.events if "archive database" in e),
        "pdf_regenerations": sum(
            1 for c in ledger["calls"] if c["endpoint"] == "facturacion/regenerar_pdf"
        ),
    }
    figures["details"] = {
        "duplicates": result.duplicates[:10],
        "missing": result.missing[:10],
        "order": result.order_violations[:10],
        "gap": result.gap_violations[:10],
        "callbacks_missing": missing_callbacks(run, finals),
        "attention": attention_reasons,
        **archived.details(),
    }
    return figures


def ok(figures: dict[str, Any]) -> bool:
    return bool(
        figures["duplicates"] == 0
        and figures["lost"] == 0
        and figures["order_violations"] == 0
        and figures["gap_violations"] == 0
        and figures["callbacks_delivered"] == figures["callbacks_expected"]
        and figures["callbacks_verified"] == figures["callbacks_expected"]
        and figures["archive_rows"] == figures["callbacks_expected"]
        and figures["archive_missing"] == 0
        and figures["archive_extra"] == 0
        and figures["archive_mismatches"] == 0
        and figures["archive_backlog"] == 0
        and figures["pdfs_missing"] == 0
        and figures["pdfs_kept"] == figures["issued"]
        and figures["pdf_regenerations"] <= regenerations_bound(figures)
    )


def regenerations_bound(figures: dict[str, Any]) -> int:
    """The most `regenerar_pdf` calls the keeper may pay: TFQ_PDF_MAX_REGENERATIONS per
    issued invoice (the workers run with the default)."""
    per_invoice = Settings.model_fields["pdf_max_regenerations"].default
    return int(per_invoice) * int(figures["issued"])


def print_table(figures: dict[str, Any]) -> None:
    rows = [
        ("jobs accepted", "jobs", None),
        ("issued", "issued", None),
        ("rejected (by AFIP, on purpose)", "rejected", None),
        ("needing attention", "attention", None),
        ("duplicates", "duplicates", 0),
        ("lost", "lost", 0),
        ("order violations", "order_violations", 0),
        ("gap violations", "gap_violations", 0),
        ("callbacks expected", "callbacks_expected", None),
        ("callbacks delivered", "callbacks_delivered", "expected"),
        ("callbacks verified", "callbacks_verified", "expected"),
        ("archive rows", "archive_rows", "expected"),
        ("archive rows missing", "archive_missing", 0),
        ("archive rows extra", "archive_extra", 0),
        ("archive rows unlike the ledger", "archive_mismatches", 0),
        ("archive backlog left", "archive_backlog", 0),
        ("PDFs kept (sha256 as archived)", "pdfs_kept", "issued"),
        ("PDFs missing", "pdfs_missing", 0),
        ("regenerar_pdf calls (billed)", "pdf_regenerations", "bound"),
        ("workers SIGKILLed", "worker_kills", None),
        ("archive database stops", "db_stops", None),
        ("API calls seen by the sandbox", "api_calls", None),
        ("seconds", "seconds", None),
    ]
    targets = {
        "expected": "= callbacks expected",
        "issued": "= issued",
        "bound": f"<= {regenerations_bound(figures)}",
    }
    print(f"{'figure':34} {'value':>8}  target")
    for label, key, target in rows:
        shown = "" if target is None else targets.get(str(target), f"= {target}")
        print(f"{label:34} {figures[key]:>8}  {shown}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, for CI")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--dialect",
        default="classic",
        help="the sandbox's dialect: a preset (classic, newest, mixed, mixed2) or axis=value pairs",
    )
    args = parser.parse_args(argv)
    plan = (
        Plan(
            cuits=40,
            bulk_per_cuit=6,
            singles_per_cuit=4,
            chaos_seconds=30,
            settle_timeout_seconds=180,
        )
        if args.quick
        else Plan(
            cuits=200,
            bulk_per_cuit=6,
            singles_per_cuit=4,
            chaos_seconds=60,
            settle_timeout_seconds=600,
        )
    )
    plan.seed = args.seed
    plan.dialect = args.dialect
    workdir = Path(tempfile.mkdtemp(prefix="tfq-chaos-"))
    figures = execute(plan, workdir)
    details = figures.pop("details")
    print_table(figures)
    for reason, count in details["attention"].items():
        print(f"needing attention: {count} jobs in a lane paused with: {reason}")
    print(json.dumps(figures))
    good = ok(figures)
    if not good:
        print(json.dumps(details, default=str), file=sys.stderr)
        print(f"logs kept in {workdir}", file=sys.stderr)
    elif not args.keep:
        shutil.rmtree(workdir)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
