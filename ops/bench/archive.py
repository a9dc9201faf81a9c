"""Benchmark the archive: how soon a finished job's row is committed, how fast rows are
written, and what an invoice costs on disk. Against a real PostgreSQL and SQLite.

    python -m ops.bench.archive [--quick] [--postgres URL] [--rows N] [--rate JOBS_PER_S]

PostgreSQL: `--postgres`, else TFQ_TEST_POSTGRES_URL or the local default when reachable,
else a private server started from the installed binaries (as the tests do) and removed
afterwards. The bench creates a database of its own there and drops it at the end. Redis:
TFQ_REDIS_URL or a private one; keys under a fresh prefix, removed afterwards.

Each row is a realistic issued invoice: the `factura_b` example as sent, its reply (CAE,
links, QR), a kept PDF and ticket, and an attempt log of three calls. Per database:

1. `insert`, the baseline: a plain multi-row INSERT of the same rows, prebuilt, 500 a
   transaction: rows/s.
2. `bulk`: the same jobs finished in Redis, written through `archive_due` (claim, read the
   records, upsert, settle; 500 a pass) until the schedule is empty: rows/s, and its ratio
   to the baseline. Then bytes per invoice: `pg_total_relation_size('archived_jobs')`
   (heap, TOAST and indexes) / rows; for SQLite the file's pages in use / rows.
3. `lag`: jobs finishing at a steady rate (`--rate`) while the real keeper loop
   (`worker.archive.loop.KeeperLoop`, the thread beside each dispatcher) runs: from the
   job's finish in Redis to its row's commit, p50 and p99 (ms). The loop looks for due work
   once a second when idle, which bounds the lag.

Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import copy
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import delete, insert, text
from sqlalchemy.engine import make_url

from ops.bench.kit import percentile, unlink_prefix
from ops.testkit import localpostgres, localredis
from ops.testkit.examples import load_example
from ops.testkit.tenantgen import TEST_PDV, make_cuits, write_tenants
from worker.archive import db
from worker.archive.archiver import archive_due
from worker.archive.loop import ARCHIVE_BATCH, KeeperLoop
from worker.archive.repository import Archive, row_from_record
from worker.archive.schema import ArchivedJob
from worker.invoice.envelope import validate_envelope
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store.jobs import pack_envelope
from worker.store.keys import JobField

TODAY = date(2026, 11, 20)


@dataclass(frozen=True)
class Sizes:
    rows: int  # jobs in the insert and bulk phases
    rate: float  # jobs finishing per second in the lag phase
    lag_seconds: float  # how long they finish at that rate


QUICK = Sizes(rows=2_000, rate=20, lag_seconds=10)
FULL = Sizes(rows=10_000, rate=50, lag_seconds=30)


class Invoices:
    """Finished-job records of realistic issued invoices, numbered from 1."""

    def __init__(self, cuit: str):
        example = load_example("factura_b", TODAY)
        example["cuit"] = cuit
        example["invoice"]["comprobante"]["punto_venta"] = TEST_PDV
        self.example = example
        self.cuit = cuit

    def record(self, numero: int, finished: float) -> dict[str, str | bytes]:
        ref = f"BENCH-{numero:08d}"
        example = copy.deepcopy(self.example)
        example["invoice"]["comprobante"]["external_reference"] = ref
        env = validate_envelope(example, today=TODAY)
        name = f"{self.cuit}-006-{TEST_PDV:05d}-{numero:08d}"
        links = f"https://www.tusfacturas.app/fe/pdf/{name}"
        attempts = [
            {"at": finished - 95.2, "endpoint": "facturacion/nuevo", "outcome": "transient",
             "http_status": 502, "elapsed_ms": 812.4, "error": "HTTP 502 Bad Gateway"},
            {"at": finished - 35.0, "endpoint": "facturacion/nuevo", "outcome": "ambiguous",
             "http_status": None, "elapsed_ms": 30001.0, "error": "ReadTimeout"},
            {"at": finished - 0.4, "endpoint": "facturacion/consulta", "outcome": "ok",
             "http_status": 200, "elapsed_ms": 388.9, "error": None},
        ]  # fmt: skip
        return {
            JobField.ID: f"bench{numero:027d}",
            JobField.CUIT: self.cuit,
            JobField.EXTERNAL_REFERENCE: ref,
            JobField.PUNTO_VENTA: str(TEST_PDV),
            JobField.TIPO: "FACTURA B",
            JobField.BATCH: "nightly-2026-11-20",
            JobField.ENVELOPE: pack_envelope(env),
            JobField.STATUS: "issued",
            JobField.CREATED: str(finished - 120.0),
            JobField.UPDATED: str(finished),
            JobField.FINISHED: str(finished),
            JobField.ISSUED_AT: str(finished),
            JobField.ATTEMPTS: "2",
            JobField.NUMERO: str(numero),
            JobField.CAE: f"{76_123_456_700_000 + numero:014d}",
            JobField.CAE_VENCIMIENTO: "30/11/2026",
            JobField.VENCIMIENTO_PAGO: "20/11/2026",
            JobField.PDF_URL: f"{links}.pdf?t={finished:.3f}",
            JobField.TICKET_URL: f"{links}-ticket.pdf?t={finished:.3f}",
            JobField.AFIP_QR: f"https://www.afip.gob.ar/fe/qr/?p={secrets.token_urlsafe(180)}",
            JobField.TEST_MODE: "1",
            JobField.ATTEMPT_LOG: json.dumps(attempts),
            JobField.PDF_PATH: f"{self.cuit}/{TEST_PDV:05d}/factura-b/{numero:08d}.pdf",
            JobField.PDF_SHA256: secrets.token_hex(32),
            JobField.PDF_SIZE: "1187",
            JobField.TICKET_PATH: f"{self.cuit}/{TEST_PDV:05d}/factura-b/{numero:08d}-ticket.pdf",
            JobField.TICKET_SHA256: secrets.token_hex(32),
            JobField.TICKET_SIZE: "1043",
        }


Record = dict[str, str | bytes]


def finish(client: redis.Redis, runtime: Runtime, records: Sequence[Record]) -> None:
    """What the status scripts leave: each final record, due in the `archive` schedule."""
    keys = runtime.keys
    pipe = client.pipeline(transaction=False)
    for rec in records:
        job_id = str(rec[JobField.ID])
        pipe.hset(keys.job(job_id), items=[x for pair in rec.items() for x in pair])
        pipe.zadd(keys.archive, {job_id: float(rec[JobField.UPDATED])})
    pipe.execute()


def plain_insert(archive: Archive, rows: list[dict[str, Any]]) -> float:
    """The baseline: rows/s of a multi-row INSERT (the upsert's statement without its
    conflict clause), 500 a transaction."""
    started = time.perf_counter()
    for i in range(0, len(rows), ARCHIVE_BATCH):
        with archive.engine.begin() as conn:
            conn.execute(insert(ArchivedJob).values(rows[i : i + ARCHIVE_BATCH]))
    return len(rows) / (time.perf_counter() - started)


def bulk(client: redis.Redis, runtime: Runtime, archive: Archive, n: int) -> float:
    """rows/s through `archive_due`, from finished jobs in Redis to settled rows."""
    invoices = Invoices(make_cuits(1, prefix="30")[0])
    now = time.time()
    for i in range(0, n, 1000):
        finish(client, runtime, [invoices.record(j + 1, now) for j in range(i, min(n, i + 1000))])
    started = time.perf_counter()
    written = 0
    while (done := archive_due(runtime.store, archive, max_items=ARCHIVE_BATCH)).claimed:
        written += done.written
    elapsed = time.perf_counter() - started
    assert written == n, f"archive_due wrote {written} of {n}"
    return n / elapsed


def bytes_per_invoice(archive: Archive) -> float:
    with archive.engine.connect() as conn:
        if archive.engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE archived_jobs"))
            size = conn.execute(text("SELECT pg_total_relation_size('archived_jobs')")).scalar()
        else:
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
            free = conn.execute(text("PRAGMA freelist_count")).scalar_one()
            size = (pages - free) * conn.execute(text("PRAGMA page_size")).scalar_one()
    return float(size or 0) / max(1, archive.count())


class TimedArchive(Archive):
    """The archive, noting when each row's transaction committed."""

    def __init__(self, archive: Archive):
        super().__init__(archive.engine)
        self.committed: dict[str, float] = {}

    def upsert(self, rows: Sequence[dict[str, Any]]) -> int:
        written = super().upsert(rows)
        now = time.time()
        self.committed.update((row["job_id"], now) for row in rows)
        return written


def lag(
    client: redis.Redis, runtime: Runtime, archive: Archive, sizes: Sizes
) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, jobs): finish to commit, jobs finishing at a steady rate while the
    keeper loop runs."""
    timed = TimedArchive(archive)
    keeper = runtime.pdf_keeper()
    loop = KeeperLoop(runtime.store, timed, lambda: keeper, runtime.settings)
    thread, stop = loop.start_thread()
    invoices = Invoices(make_cuits(2, prefix="30")[1])
    finished: dict[str, float] = {}
    total = int(sizes.rate * sizes.lag_seconds)
    started = time.monotonic()
    for i in range(total):
        time.sleep(max(0.0, started + i / sizes.rate - time.monotonic()))
        rec = invoices.record(i + 1, time.time())
        finish(client, runtime, [rec])
        finished[str(rec[JobField.ID])] = float(rec[JobField.UPDATED])
    deadline = time.monotonic() + 30
    while len(set(finished) - set(timed.committed)) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    lags = [(timed.committed[j] - t) * 1000 for j, t in finished.items() if j in timed.committed]
    assert len(lags) == total, f"only {len(lags)} of {total} jobs archived"
    return percentile(lags, 50), percentile(lags, 99), total


@contextmanager
def postgres_database(given: str | None) -> Iterator[str]:
    """A fresh database on a reachable or private server, dropped afterwards."""
    data = None
    server = given or localpostgres.DEFAULT_URL
    if not given and not localpostgres.reachable(server):
        server, data = localpostgres.start_private()
    name = f"tfq_bench_{secrets.token_hex(4)}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        if data is not None:
            localpostgres.stop_private(data)


def measure(backend: str, url: str, redis_url: str, sizes: Sizes, work: Path) -> dict[str, Any]:
    engine = db.engine_for(url)
    db.migrate(engine)
    archive = Archive(engine)
    prefix = f"tfq-bench-archive-{secrets.token_hex(4)}:"
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        archive_url=url,
        pdf_dir=str(work / "pdfs"),
        tenants_file=write_tenants(work / "tenants.toml", make_cuits(2, prefix="30")),
    )
    runtime = Runtime(settings)
    client = runtime.redis
    try:
        invoices = Invoices(make_cuits(1, prefix="30")[0])
        now = time.time()
        rows = [row_from_record(invoices.record(i + 1, now)) for i in range(sizes.rows)]
        insert_rate = plain_insert(archive, rows)
        with engine.begin() as conn:
            conn.execute(delete(ArchivedJob))
        if backend == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM FULL archived_jobs"))
        bulk_rate = bulk(client, runtime, archive, sizes.rows)
        size = bytes_per_invoice(archive)
        with engine.begin() as conn:
            conn.execute(delete(ArchivedJob))
        p50, p99, jobs = lag(client, runtime, archive, sizes)
    finally:
        unlink_prefix(client, prefix)
        engine.dispose()
    return {
        f"archive_insert_rows_per_s_{backend}": round(insert_rate),
        f"archive_rows_per_s_{backend}": round(bulk_rate),
        f"archive_vs_insert_{backend}": round(bulk_rate / insert_rate, 2),
        f"archive_bytes_per_invoice_{backend}": round(size),
        f"archive_lag_p50_ms_{backend}": round(p50, 1),
        f"archive_lag_p99_ms_{backend}": round(p99, 1),
        f"archive_lag_jobs_{backend}": jobs,
    }


def print_table(figures: dict[str, Any]) -> None:
    labels = [
        ("archive_lag_p50_ms", "write lag p50 (finish to commit)", "ms"),
        ("archive_lag_p99_ms", "write lag p99", "ms"),
        ("archive_rows_per_s", "rows/s through archive_due", "rows/s"),
        ("archive_insert_rows_per_s", "rows/s, plain INSERT (baseline)", "rows/s"),
        ("archive_vs_insert", "archive_due / plain INSERT", "x"),
        ("archive_bytes_per_invoice", "bytes per invoice (indexes included)", "bytes"),
    ]
    print(f"{'figure':<40}{'postgresql':>12}{'sqlite':>12}  unit")
    for key, label, unit in labels:
        pg, lite = figures.get(f"{key}_postgresql", "-"), figures.get(f"{key}_sqlite", "-")
        print(f"{label:<40}{pg:>12,}{lite:>12,}  {unit}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.bench.archive", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--quick", action="store_true", help="fewer rows and a shorter lag phase")
    p.add_argument("--postgres", help="a PostgreSQL server URL (a database is created there)")
    p.add_argument("--rows", type=int, help="rows in the insert and bulk phases")
    p.add_argument("--rate", type=float, help="jobs finishing per second in the lag phase")
    ns = p.parse_args(argv)
    base = QUICK if ns.quick else FULL
    sizes = Sizes(ns.rows or base.rows, ns.rate or base.rate, base.lag_seconds)
    redis_url = localredis.ensure()
    figures: dict[str, Any] = {"rows": sizes.rows, "lag_rate_per_s": sizes.rate}
    with tempfile.TemporaryDirectory(prefix="tfq-bench-archive-") as tmp:
        work = Path(tmp)
        with postgres_database(ns.postgres) as pg_url:
            figures |= measure("postgresql", pg_url, redis_url, sizes, work)
        lite = f"sqlite:///{work / 'archive.sqlite3'}"
        figures |= measure("sqlite", lite, redis_url, sizes, work)
    print_table(figures)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
