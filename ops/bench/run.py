"""What every benchmark scenario shares: the sizes, the `Bench` that gathers figures, a `Run`.

`scenario()` starts one scenario's moving parts (sandbox, tenants, warmed-up worker
processes, a queue under a fresh key prefix) and removes them afterwards, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from ops.bench.kit import (
    PDVS,
    CallbackSink,
    Check,
    JobMaker,
    child_pids,
    make_cuits,
    ref_of,
    unlink_keys,
    unlink_prefix,
)
from ops.sandbox.server import SandboxProcess
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from ops.testkit.tenantgen import write_tenants
from producers.client import InvoiceQueue
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.store.scripts import text


@dataclass(frozen=True)
class Sizes:
    enqueue_jobs: int
    enqueue_cuits: int
    slots_cuits: int
    slots_jobs: int
    capacity_cuits: int
    capacity_jobs: int
    idle_cuits: int
    bulk_jobs: int
    memory_jobs: int
    realistic_cuits: int
    realistic_jobs: int
    accounts_cuits: int  # per account
    accounts_jobs: int
    overload_cuits: int
    overload_seconds: float  # how long demand is offered at twice the capacity
    console_jobs: int = 10_000  # one batch, for the console's batch page
    console_cuits: int = 1_000
    console_requests: int = 30


FULL = Sizes(20_000, 500, 500, 10, 600, 10, 200, 2_000, 20_000, 1_000, 4, 250, 4, 600, 60.0)
QUICK = Sizes(4_000, 100, 100, 10, 200, 8, 40, 400, 5_000, 200, 3, 50, 4, 200, 15.0, 1_000, 100, 5)

BLOCK_SECONDS = 2.0  # a gap violation blocks the CUIT this long (short, so a run still ends)
UNLIMITED_RPS = 1_000_000  # account pacing out of the way: the per-CUIT gap is under test


@dataclass
class Row:
    scenario: str
    metric: str
    value: float | int | None
    unit: str
    target: str = ""
    ok: bool | None = None


@dataclass
class Bench:
    redis_url: str
    sizes: Sizes
    workers: int
    threads: int
    tmp: Path
    log_dir: Path
    callbacks: str = "local"  # local (a sink in this process), none (dropped), as-is
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @functools.cached_property
    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def add(
        self,
        scenario: str,
        metric: str,
        key: str,
        value: float | int | None,
        unit: str = "",
        target: str = "",
        ok: bool | None = None,
        digits: int = 3,
    ) -> None:
        if isinstance(value, float) and math.isfinite(value):
            value = round(value) if digits == 0 else round(value, digits)
        self.rows.append(Row(scenario, metric, value, unit, target, ok))
        self.figures[key] = value


# --- the moving parts of one scenario --------------------------------------------------------


@dataclass
class Run:
    bench: Bench
    label: str
    prefix: str
    cuits: list[str]  # cuits[0] is the warm-up CUIT; the scenario uses the rest
    sandbox: SandboxProcess
    queue: InvoiceQueue
    workers: list[WorkerProcess]
    sink: CallbackSink | None = None
    job_ids: list[str] = field(default_factory=list)
    submitted: list[tuple[str, str]] = field(default_factory=list)  # (cuit, ref) enqueue order

    def maker(self, names: list[str] | None = None) -> JobMaker:
        mode = self.bench.callbacks
        url = self.sink.url if self.sink else (None if mode == "none" else "as-is")
        return JobMaker(argentina_today(), names, callback_url=url)

    def rounds(self, tag: str, per_cuit: int, *, one_type: bool = False) -> list[dict[str, Any]]:
        """`per_cuit` jobs for each of the scenario's CUITs, dealt round them (every CUIT's
        first, then every CUIT's second, ...), refs TAG-CCCC-JJ; the sample types rotate, or
        each CUIT keeps one (`one_type`: one numeracion query per CUIT, then invoicing only)."""
        maker = self.maker()
        return [
            maker.make(cuit, f"{tag}-{c:04d}-{j:02d}", maker.name(c if one_type else c + j))
            for j in range(per_cuit)
            for c, cuit in enumerate(self.cuits[1:])
        ]

    def submit_many(self, envelopes: list[dict[str, Any]]) -> None:
        report = self.queue.submit_many(envelopes)
        if report.refused:
            raise RuntimeError(f"{self.label}: refused jobs: {report.refused[:3]}")
        for index, job_id in report.accepted:
            self.job_ids.append(job_id)
            env = envelopes[index]
            self.submitted.append((env["cuit"], ref_of(env)))

    def issued_count(self) -> int:
        count: int = self.sandbox.health()["issued"]
        return count

    def wait_issued(self, count: int, timeout: float) -> bool:
        return wait_until(lambda: self.issued_count() >= count, timeout, interval=0.2)

    def pids(self) -> dict[str, list[int]]:
        info: dict[str, Any] = self.bench.client.info("server")
        workers = [w.proc.pid for w in self.workers if w.proc is not None]
        return {
            "workers": workers,
            "callback_workers": [c for pid in workers for c in child_pids(pid)],
            "sandbox": [self.sandbox.proc.pid] if self.sandbox.proc is not None else [],
            "redis": [int(info["process_id"])],
        }

    def stats(self) -> dict[str, int]:
        raw = self.bench.client.hgetall(self.queue.keys.stats)
        return {text(k): int(v) for k, v in raw.items()}


def _wait_workers_ready(redis_url: str, workers: list[WorkerProcess], timeout: float) -> bool:
    """Until every worker process answers a Celery ping (its hostname carries its pid)."""
    app = Celery("tfq-bench-ping", broker=redis_url)
    pids = {f"-{w.proc.pid}@" for w in workers if w.proc is not None}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if any(not w.alive for w in workers):
                return False
            replies = app.control.ping(timeout=0.5) or []
            seen = [name for reply in replies for name in reply]
            if all(any(pid in name for name in seen) for pid in pids):
                return True
        return False
    finally:
        app.close()


@contextlib.contextmanager
def scenario(
    bench: Bench,
    label: str,
    cuit_count: int,
    *,
    gap_seconds: float,
    latency_ms: float = 0.0,
    batch_max: int = 1,
    workers: int | None = None,
    sandbox_args: list[str] | None = None,
    accounts: dict[str, str] | None = None,
    account_max_rps: float = 0.0,
    api_max_rps: float = UNLIMITED_RPS,
    worker_settings: dict[str, float] | None = None,
) -> Iterator[Run]:
    """A sandbox, tenants, worker processes (warmed up) and a queue under a fresh prefix.

    `accounts` (CUIT -> account name) puts CUITs in shared TusFacturas accounts, each held
    to `account_max_rps` by the sandbox (0: no limit); `worker_settings` are TFQ_* overrides.
    """
    prefix = unique_prefix(f"bench-{label}")
    cuits = make_cuits(cuit_count + 1)
    limits = {a: account_max_rps for a in set((accounts or {}).values())} if account_max_rps else {}
    tenants = write_tenants(
        bench.tmp / f"tenants-{label}.toml",
        cuits,
        accounts=accounts,
        account_max_rps=limits,
        pdvs=PDVS,
    )
    extra = ["--latency-ms", str(latency_ms)] if latency_ms else []
    extra += sandbox_args or []
    run: Run | None = None
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(CallbackSink()) if bench.callbacks == "local" else None
        sb = SandboxProcess(
            tenants,
            gap_seconds=gap_seconds,
            block_seconds=BLOCK_SECONDS,
            extra_args=extra,
            account_max_rps=account_max_rps,
        )
        stack.enter_context(sb)
        env = worker_env(
            bench.redis_url,
            sb.api_url,
            tenants,
            prefix=prefix,
            gap_seconds=gap_seconds,
            batch_max=batch_max,
            api_max_rps=api_max_rps,
            callbacks_allow_private=int(sink is not None),
            **(worker_settings or {}),
        )
        procs = [
            WorkerProcess(
                env, concurrency=bench.threads, log_path=bench.log_dir / f"{label}-worker{i}.log"
            )
            for i in range(workers or bench.workers)
        ]
        queue = InvoiceQueue(
            bench.redis_url,
            key_prefix=prefix,
            settings=Settings(callbacks_allow_private=sink is not None),  # a local sink
        )
        run = Run(bench, label, prefix, cuits, sb, queue, procs, sink)
        stack.callback(_cleanup_run, run)
        for w in procs:
            stack.callback(w.stop, 10.0)
            w.start()
        if not _wait_workers_ready(bench.redis_url, procs, 60.0):
            raise RuntimeError(f"{label}: workers not ready; see {bench.log_dir}")
        # One job through the whole path: dispatcher, Celery, sender, sandbox.
        maker = run.maker(["factura_b"])
        warm = [maker.make(cuits[0], f"WARM-{i}", "factura_b") for i in range(len(procs))]
        warm_report = queue.submit_many(warm)
        run.job_ids += [job_id for _, job_id in warm_report.accepted]
        if not run.wait_issued(len(warm), 30.0):
            raise RuntimeError(f"{label}: warm-up job not issued; see {bench.log_dir}")
        yield run


def _cleanup_run(run: Run) -> None:
    client = run.bench.client
    unlink_prefix(client, run.prefix)
    # Celery's result backend keys (one per finished job) and the queues' kombu bindings.
    unlink_keys(client, [f"celery-task-meta-{j}" for j in run.job_ids])
    unlink_keys(client, [k.decode() for k in client.scan_iter(match=f"*{run.prefix}*")])
    run.queue.redis.close()


def add_checks(bench: Bench, name: str, check: Check, done: bool, stats: dict[str, int]) -> None:
    """The exactly-once, order and gap figures of a scenario's ledger check, and its notes."""
    prefix = "" if name == "slots" else f"{name}_"
    bench.add(name, "gap violations", f"{prefix}gap_violations", check.gap_violations, "",
              "0", check.gap_violations == 0)  # fmt: skip
    bench.add(name, "order violations", f"{prefix}order_violations", check.order_violations, "",
              "0", check.order_violations == 0)  # fmt: skip
    bad = check.duplicates + check.missing + check.unexpected + check.other_violations
    bench.add(name, "duplicates+missing+other rule breaks", f"{name}_exactly_once_violations",
              bad, "", "0", bad == 0 and done)  # fmt: skip
    if check.min_gap_seconds is not None:
        bench.figures[f"{name}_min_call_interval_s"] = round(check.min_gap_seconds, 4)
    bench.figures[f"{name}_invoicing_calls"] = check.invoicing_calls
    bench.figures[f"{name}_job_states"] = {
        k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("jobs:") and v
    }
    bench.figures[f"{name}_leases_reaped"] = stats.get("leases:reaped", 0)
    callbacks = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("callbacks:")}
    if callbacks:
        bench.figures[f"{name}_callbacks"] = callbacks
    if not done:
        bench.notes.append(f"{name}: not every job was issued before the timeout")
    for note in check.notes[:10]:
        bench.notes.append(f"{name}: {note}")
