"""Benchmark the queue end to end: Redis, real `tfq worker` processes, the sandbox over HTTP.

    python -m ops.bench [--quick] [--only NAME ...] [--workers 3] [--threads 24]
                        [--callbacks local|none|as-is] [--keep-logs]

Every scenario runs under its own key prefix (`ops.testkit.harness.unique_prefix`) with its own
sandbox and a generated tenants file (CUITs with PDVs 2 and 3, real, and 679, test), and
removes its keys, its Celery result keys and its processes afterwards (also on Ctrl-C).
Prints a table (each figure with its target) and one JSON line with every figure.

Scenarios (sizes without --quick; --quick runs the same with fewer jobs, about a minute):

1. `enqueue`: `InvoiceQueue.submit_many(..., batch=)` of 20,000 copies of the sample jobs
   (`ops/testkit/examples`, unique external_references, 500 CUITs), validation included: jobs/s
   (target >= 10,000). Baseline, same run, same Redis: a loop of Celery `apply_async` of the
   same envelope dicts to a throwaway queue (json serializer, no consumer).
   `enqueue_vs_apply_async` = enqueue jobs/s / apply_async jobs/s (target >= 3).
2. `slots`: 500 CUITs x 10 jobs, gap 1 s (worker and sandbox), sandbox latency 20 ms,
   TFQ_BATCH_MAX=1 (one call per job). Per CUIT, from the ledger's arrival times of its
   invoicing calls: utilisation = 9 gaps (the ideal time from its 1st to its 10th call) /
   (arrival of its 10th call - arrival of its 1st). `slot_utilisation` is the mean over
   CUITs (target >= 0.98); `slot_utilisation_worst` the lowest CUIT. Also: gap violations
   (distinct calls the sandbox flagged with rule gap/blocked, or that arrived closer than
   gap - 1 ms to the CUIT's previous call that reached "AFIP") and order violations (per
   CUIT + PDV + tipo the numbers must be 1, 2, 3, ... in enqueue order: each adjacent pair
   out of order or with a hole counts), duplicates and missing jobs: all must be 0.
3. `capacity`: 600 CUITs x 10 jobs, gap 0, latency 20 ms, batching off: invoicing calls/s
   the ledger saw over the middle 80 % of the run (10th to 90th percentile arrival), target
   >= 300. Queries (`numeracion`, `consulta`) are counted apart.
4. `idle`: 200 idle CUITs, jobs enqueued one at a time 50 ms apart: the time from the
   client's clock just before `submit` to the sandbox's arrival stamp of that job's call
   (both epoch seconds on this machine). Each CUIT first gets one job (`cold`: includes its
   `numeracion` query) and, once the gap has passed, the measured one (warm).
   `idle_latency_p99_ms` is the warm p99, target <= 50 ms.
5. `bulk`: one CUIT (test PDV 679) x 2,000 jobs, TFQ_BATCH_MAX=20, gap 0.5 s: 100 `lotes`
   calls. Makespan = first call's arrival to last call's arrival; ideal = 99 gaps = 49.5 s.
   `bulk_makespan_ratio` = makespan / ideal (target <= 1.05).
6. `memory`: 20,000 queued sample jobs under a fresh prefix, no worker: Redis `used_memory`
   delta / jobs (target <= 2,048 bytes). Also the sum of `MEMORY USAGE` of the prefix's keys
   per job (not disturbed by other Redis clients), by key kind. Keys removed afterwards.

Ideals use the configured gap: a safety margin the worker adds is part of what is measured.
Worker scenarios start `--workers` processes (each with its own dispatcher), wait until each
answers a Celery ping, and run one warm-up job first. The examples' `callback_url`s point
at a local sink (`--callbacks local`, TFQ_CALLBACKS_ALLOW_PRIVATE=1), are dropped (`none`),
or kept (`as-is`: here they do not resolve, and each costs a worker thread a DNS timeout).

Diagnostics in the JSON line (not targets): `*_cpu_percent` (of one core, per process group;
`others` = whatever else kept this machine busy meanwhile), `*_path_ms` (see
`ops.bench.kit.pipeline_breakdown`), `capacity_redis_commands_per_job` (server-wide
`INFO commandstats` delta), `*_leases_reaped`, `*_callbacks`, `*_job_states`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from celery import Celery

from ops.bench.kit import (
    CallbackSink,
    Check,
    CpuMeter,
    JobMaker,
    check_ledger,
    child_pids,
    command_counts,
    command_delta,
    job_times,
    make_cuits,
    ok_arrivals,
    percentile,
    pipeline_breakdown,
    ref_of,
    unlink_keys,
    unlink_prefix,
    used_memory,
    write_tenants,
)
from ops.sandbox.server import SandboxProcess
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from ops.testkit.localredis import ensure
from producers.client import InvoiceQueue
from worker.invoice.models import argentina_today
from worker.store.scripts import text

SCENARIOS = ("enqueue", "slots", "capacity", "idle", "bulk", "memory")


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


FULL = Sizes(20_000, 500, 500, 10, 600, 10, 200, 2_000, 20_000)
QUICK = Sizes(4_000, 100, 100, 10, 200, 8, 40, 400, 5_000)

SLOT_GAP_SECONDS = 1.0
SLOT_LATENCY_MS = 20.0
BULK_GAP_SECONDS = 0.5
BULK_BATCH = 20
IDLE_GAP_SECONDS = 1.0
IDLE_SPACING_SECONDS = 0.05
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
) -> Iterator[Run]:
    """A sandbox, tenants, worker processes (warmed up) and a queue under a fresh prefix."""
    prefix = unique_prefix(f"bench-{label}")
    cuits = make_cuits(cuit_count + 1)
    tenants = write_tenants(bench.tmp / f"tenants-{label}.toml", cuits)
    extra = ["--latency-ms", str(latency_ms)] if latency_ms else []
    run: Run | None = None
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(CallbackSink()) if bench.callbacks == "local" else None
        sb = SandboxProcess(
            tenants, gap_seconds=gap_seconds, block_seconds=BLOCK_SECONDS, extra_args=extra
        )
        stack.enter_context(sb)
        env = worker_env(
            bench.redis_url,
            sb.api_url,
            tenants,
            prefix=prefix,
            gap_seconds=gap_seconds,
            batch_max=batch_max,
            api_max_rps=UNLIMITED_RPS,
            callbacks_allow_private=int(sink is not None),
        )
        procs = [
            WorkerProcess(
                env, concurrency=bench.threads, log_path=bench.log_dir / f"{label}-worker{i}.log"
            )
            for i in range(workers or bench.workers)
        ]
        queue = InvoiceQueue(bench.redis_url, key_prefix=prefix)
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


# --- 1. enqueue ------------------------------------------------------------------------------


def bench_enqueue(bench: Bench) -> None:
    n, cuit_count = bench.sizes.enqueue_jobs, bench.sizes.enqueue_cuits
    cuits = make_cuits(cuit_count)
    maker = JobMaker(argentina_today())
    envelopes = [
        maker.make(cuits[i % cuit_count], f"ENQ-{i:07d}", maker.name(i // cuit_count))
        for i in range(n)
    ]
    warmup = [maker.make(cuits[i % cuit_count], f"WARM-{i}", maker.name(i)) for i in range(200)]
    prefix = unique_prefix("bench-enqueue")
    queue_name = f"{prefix}throwaway"
    client = bench.client
    queue = InvoiceQueue(bench.redis_url, key_prefix=prefix)
    app = Celery("tfq-bench", broker=bench.redis_url)
    app.conf.update(
        task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True
    )
    noop = app.task(name="tfq.bench.noop", ignore_result=True)(_noop)
    try:
        queue.submit_many(warmup)
        t0 = time.perf_counter()
        report = queue.submit_many(envelopes, batch="bench")
        enqueue_s = time.perf_counter() - t0
        if report.refused or len(report.accepted) != n:
            raise RuntimeError(f"enqueue: {len(report.refused)} refused: {report.refused[:2]}")
        for env in warmup:
            noop.apply_async(args=(env,), queue=queue_name)
        t0 = time.perf_counter()
        for env in envelopes:
            noop.apply_async(args=(env,), queue=queue_name)
        celery_s = time.perf_counter() - t0
        queued = int(client.llen(queue_name))
    finally:
        app.close()
        unlink_prefix(client, prefix)
        # kombu's bindings of the throwaway queue (_kombu.binding*.<queue>).
        unlink_keys(client, [k.decode() for k in client.scan_iter(match=f"*{prefix}*")])
        queue.redis.close()
    rate, celery_rate = n / enqueue_s, n / celery_s
    bench.add("enqueue", f"submit_many, {n:,} jobs", "enqueue_jobs_per_s", rate, "jobs/s",
              ">= 10,000", rate >= 10_000, 0)  # fmt: skip
    bench.add("enqueue", "apply_async loop (baseline)", "apply_async_jobs_per_s", celery_rate,
              "jobs/s", "", None, 0)  # fmt: skip
    ratio = rate / celery_rate
    bench.add("enqueue", "enqueue / apply_async", "enqueue_vs_apply_async", ratio, "x", ">= 3",
              ratio >= 3)  # fmt: skip
    bench.add("enqueue", "enqueue us/job", "enqueue_us_per_job", 1e6 * enqueue_s / n, "us")
    bench.figures["apply_async_queued"] = queued


def _noop(envelope: dict[str, Any]) -> None:
    """The throwaway task: never run (no consumer)."""


# --- 2. slot utilisation ---------------------------------------------------------------------


def bench_slots(bench: Bench) -> None:
    cuit_count, per_cuit = bench.sizes.slots_cuits, bench.sizes.slots_jobs
    gap = SLOT_GAP_SECONDS
    with scenario(
        bench, "slots", cuit_count, gap_seconds=gap, latency_ms=SLOT_LATENCY_MS, batch_max=1
    ) as run:
        cuits = run.cuits[1:]
        maker = run.maker()
        envelopes = [
            maker.make(cuit, f"S-{c:04d}-{j:02d}", maker.name(c + j))
            for c, cuit in enumerate(cuits)
            for j in range(per_cuit)
        ]
        base = run.issued_count()
        meter = CpuMeter(run.pids())
        meter.start()
        run.submit_many(envelopes)
        done = run.wait_issued(base + len(envelopes), 60 + 5 * per_cuit * gap)
        cpu = meter.stop()
        ledger = run.sandbox.ledger()
        stats = run.stats()
        path = job_times(run.bench.client, run.queue.keys.job, run.job_ids)
    check = check_ledger(ledger, run.submitted, gap_seconds=gap)
    arrivals = ok_arrivals(ledger, set(cuits))
    ideal = (per_cuit - 1) * gap
    utils = []
    for cuit in cuits:
        times = arrivals.get(cuit, [])
        if len(times) >= 2:
            utils.append(min(1.0, ideal / (times[-1] - times[0])) if times[-1] > times[0] else 0)
        else:
            utils.append(0.0)
    mean_util = statistics.fmean(utils) if utils else 0.0
    worst = min(utils) if utils else 0.0
    lateness = _slot_lateness(arrivals, gap)
    label = f"{cuit_count} CUITs x {per_cuit}, gap {gap:g}s"
    bench.add("slots", f"utilisation, mean ({label})", "slot_utilisation", mean_util, "",
              ">= 0.98", mean_util >= 0.98)  # fmt: skip
    bench.add("slots", "utilisation, worst CUIT", "slot_utilisation_worst", worst, "")
    bench.add(
        "slots", "call interval - gap, p50", "slot_late_p50_ms", lateness[0], "ms", "", None, 1
    )
    bench.add(
        "slots", "call interval - gap, p99", "slot_late_p99_ms", lateness[1], "ms", "", None, 1
    )
    _add_checks(bench, "slots", check, done, stats)
    bench.figures["slots_cpu_percent"] = {k: round(v) for k, v in cpu.items()}
    bench.figures["slots_path_ms"] = pipeline_breakdown(path, ledger)


def _slot_lateness(arrivals: dict[str, list[float]], gap: float) -> tuple[float, float]:
    """p50 and p99 (ms) of (interval between consecutive calls of a CUIT) - gap."""
    late = [
        1000 * (b - a - gap) for times in arrivals.values() for a, b in itertools.pairwise(times)
    ]
    return percentile(late, 50), percentile(late, 99)


def _add_checks(bench: Bench, name: str, check: Check, done: bool, stats: dict[str, int]) -> None:
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


# --- 3. capacity -----------------------------------------------------------------------------


def bench_capacity(bench: Bench) -> None:
    cuit_count, per_cuit = bench.sizes.capacity_cuits, bench.sizes.capacity_jobs
    with scenario(
        bench, "capacity", cuit_count, gap_seconds=0.0, latency_ms=SLOT_LATENCY_MS, batch_max=1
    ) as run:
        cuits = run.cuits[1:]
        maker = run.maker()
        # One sample type per CUIT: one numeracion query per CUIT, then invoicing calls only.
        envelopes = [
            maker.make(cuit, f"C-{c:04d}-{j:02d}", maker.name(c))
            for j in range(per_cuit)
            for c, cuit in enumerate(cuits)
        ]
        base = run.issued_count()
        meter = CpuMeter(run.pids())
        counts = command_counts(run.bench.client)
        meter.start()
        t0 = time.time()
        run.submit_many(envelopes)
        done = run.wait_issued(base + len(envelopes), 300)
        cpu = meter.stop()
        commands = command_delta(counts, command_counts(run.bench.client), len(envelopes))
        ledger = run.sandbox.ledger()
        stats = run.stats()
        path = job_times(run.bench.client, run.queue.keys.job, run.job_ids)
    cuit_set = set(cuits)
    calls = [c for c in ledger["calls"] if c["cuit"] in cuit_set and c["arrival"] >= t0]
    invoicing = sorted(
        c["arrival"] for c in calls if c["endpoint"] in ("facturacion/nuevo", "facturacion/lotes")
    )
    queries = Counter(c["endpoint"] for c in calls if c["endpoint"] not in
                      ("facturacion/nuevo", "facturacion/lotes"))  # fmt: skip
    rate = _middle_rate(invoicing)
    overall = len(invoicing) / (invoicing[-1] - invoicing[0]) if len(invoicing) > 1 else 0.0
    all_rate = len(calls) / max(
        1e-9, max(c["arrival"] for c in calls) - min(c["arrival"] for c in calls)
    )
    check = check_ledger(ledger, run.submitted, gap_seconds=0.0)
    bench.add("capacity", f"invoicing calls/s, middle 80% ({len(invoicing):,} calls)",
              "capacity_calls_per_s", rate, "calls/s", ">= 300", rate >= 300, 0)  # fmt: skip
    bench.add("capacity", "invoicing calls/s, first to last", "capacity_calls_per_s_overall",
              overall, "calls/s", "", None, 0)  # fmt: skip
    bench.add("capacity", "all API calls/s (with queries)", "capacity_all_calls_per_s", all_rate,
              "calls/s", "", None, 0)  # fmt: skip
    bench.figures["capacity_queries"] = dict(queries)
    bench.figures["capacity_enqueue_to_first_call_s"] = (
        round(invoicing[0] - t0, 3) if invoicing else None
    )
    _add_checks(bench, "capacity", check, done, stats)
    bench.figures["capacity_cpu_percent"] = {k: round(v) for k, v in cpu.items()}
    bench.figures["capacity_path_ms"] = pipeline_breakdown(path, ledger)
    bench.figures["capacity_redis_commands_per_job"] = commands


def _middle_rate(times: list[float]) -> float:
    """Events/s between the 10th and the 90th percentile event."""
    if len(times) < 10:
        return 0.0
    lo, hi = int(len(times) * 0.1), int(len(times) * 0.9)
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else 0.0


# --- 4. idle CUIT latency --------------------------------------------------------------------


def bench_idle(bench: Bench) -> None:
    count = bench.sizes.idle_cuits
    with scenario(bench, "idle", count, gap_seconds=IDLE_GAP_SECONDS) as run:
        cuits = run.cuits[1:]
        maker = run.maker(["factura_b"])
        base = run.issued_count()
        sent: dict[str, float] = {}
        for phase in ("cold", "warm"):
            for c, cuit in enumerate(cuits):
                env = maker.make(cuit, f"I-{phase}-{c:04d}", "factura_b")
                sent[ref_of(env)] = time.time()
                run.queue.submit(env)
                run.submitted.append((cuit, ref_of(env)))
                time.sleep(IDLE_SPACING_SECONDS)
            base += len(cuits)
            if not run.wait_issued(base, 60):
                bench.notes.append(f"idle: {phase} jobs not all issued")
            time.sleep(IDLE_GAP_SECONDS * 1.5)  # every CUIT idle again: its gap has passed
        ledger = run.sandbox.ledger()
        stats = run.stats()
        run.job_ids += [j for j in (run.queue.job_id(c, r) for c, r in run.submitted) if j]
    arrival = {i["external_reference"]: i["arrival"] for i in ledger["issued"]}
    lat = {
        phase: [1000 * (arrival[r] - t) for r, t in sent.items() if phase in r and r in arrival]
        for phase in ("cold", "warm")
    }
    p99 = percentile(lat["warm"], 99)
    bench.add("idle", f"enqueue -> call arrival, p99 ({count} idle CUITs)",
              "idle_latency_p99_ms", p99, "ms", "<= 50", p99 <= 50, 1)  # fmt: skip
    bench.add("idle", "enqueue -> call arrival, p50", "idle_latency_p50_ms",
              percentile(lat["warm"], 50), "ms", "", None, 1)  # fmt: skip
    bench.add("idle", "enqueue -> call arrival, max", "idle_latency_max_ms",
              max(lat["warm"], default=0.0), "ms", "", None, 1)  # fmt: skip
    bench.add("idle", "first job of a CUIT (with numeracion), p99", "idle_cold_latency_p99_ms",
              percentile(lat["cold"], 99), "ms", "", None, 1)  # fmt: skip
    check = check_ledger(ledger, run.submitted, gap_seconds=IDLE_GAP_SECONDS)
    _add_checks(bench, "idle", check, True, stats)


# --- 5. one CUIT, bulk with lotes ------------------------------------------------------------


def bench_bulk(bench: Bench) -> None:
    n, gap = bench.sizes.bulk_jobs, BULK_GAP_SECONDS
    with scenario(bench, "bulk", 1, gap_seconds=gap, batch_max=BULK_BATCH) as run:
        cuit = run.cuits[1]
        maker = run.maker(["factura_b"])
        envelopes = [maker.make(cuit, f"B-{i:05d}", "factura_b") for i in range(n)]
        base = run.issued_count()
        meter = CpuMeter(run.pids())
        meter.start()
        run.submit_many(envelopes)
        calls_needed = math.ceil(n / BULK_BATCH)
        done = run.wait_issued(base + n, 60 + 3 * calls_needed * gap)
        cpu = meter.stop()
        ledger = run.sandbox.ledger()
        stats = run.stats()
        path = job_times(run.bench.client, run.queue.keys.job, run.job_ids)
    times = ok_arrivals(ledger, {cuit}).get(cuit, [])
    ideal = (calls_needed - 1) * gap
    makespan = times[-1] - times[0] if len(times) > 1 else math.inf
    ratio = makespan / ideal if ideal > 0 else math.inf
    bench.add("bulk", f"makespan / ideal ({n:,} jobs, {calls_needed} calls, ideal {ideal:g}s)",
              "bulk_makespan_ratio", ratio, "", "<= 1.05", ratio <= 1.05)  # fmt: skip
    bench.add("bulk", "makespan", "bulk_makespan_s", makespan, "s", "", None, 2)
    bench.figures["bulk_calls"] = len(times)
    intervals = [b - a for a, b in itertools.pairwise(times)]
    bench.figures["bulk_call_interval_s"] = {
        "min": round(min(intervals, default=0.0), 4),
        "p50": round(percentile(intervals, 50), 4),
        "max": round(max(intervals, default=0.0), 4),
    }
    check = check_ledger(ledger, run.submitted, gap_seconds=gap)
    _add_checks(bench, "bulk", check, done, stats)
    bench.figures["bulk_cpu_percent"] = {k: round(v) for k, v in cpu.items()}
    bench.figures["bulk_path_ms"] = pipeline_breakdown(path, ledger)


# --- 6. Redis memory per queued job ----------------------------------------------------------


def bench_memory(bench: Bench) -> None:
    n = bench.sizes.memory_jobs
    cuits = make_cuits(bench.sizes.enqueue_cuits)
    maker = JobMaker(argentina_today())
    envelopes = [
        maker.make(cuits[i % len(cuits)], f"M-{i:07d}", maker.name(i // len(cuits)))
        for i in range(n)
    ]
    prefix = unique_prefix("bench-memory")
    client = bench.client
    queue = InvoiceQueue(bench.redis_url, key_prefix=prefix)
    by_kind: Counter[str] = Counter()
    try:
        queue.submit_many(envelopes[:1])  # scripts loaded, prefix's fixed keys exist
        before = used_memory(client)
        report = queue.submit_many(envelopes[1:])
        after = used_memory(client)
        jobs = len(report.accepted)
        keys = list(client.scan_iter(match=f"{prefix}*", count=5000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(keys, pipe.execute(), strict=True):
            kind = key.decode()[len(prefix) :].split(":")[0]
            by_kind[kind] += int(size or 0)
        encodings = Counter(
            text(client.object("encoding", k))
            for k in keys[:50]
            if k.decode().startswith(prefix + "job:")
        )
    finally:
        unlink_prefix(client, prefix)
        queue.redis.close()
    per_job = (after - before) / jobs
    bench.add("memory", f"used_memory delta / job ({jobs:,} jobs)", "redis_bytes_per_job",
              per_job, "B", "<= 2,048", per_job <= 2048, 0)  # fmt: skip
    key_bytes = sum(by_kind.values()) / jobs
    bench.add("memory", "sum of MEMORY USAGE / job", "redis_key_bytes_per_job", key_bytes, "B",
              "", None, 0)  # fmt: skip
    bench.figures["redis_bytes_per_job_by_key"] = {
        k: round(v / jobs) for k, v in by_kind.most_common()
    }
    bench.figures["redis_job_hash_encoding"] = dict(encodings)


# --- main ------------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Bench], None]] = {
    "enqueue": bench_enqueue,
    "slots": bench_slots,
    "capacity": bench_capacity,
    "idle": bench_idle,
    "bulk": bench_bulk,
    "memory": bench_memory,
}


def _print_table(bench: Bench) -> None:
    print(f"{'scenario':<10}{'metric':<58}{'value':>12} {'unit':<8}{'target':>10}  ok")
    for r in bench.rows:
        value = "-" if r.value is None else f"{r.value:,}"
        ok = "" if r.ok is None else ("yes" if r.ok else "NO")
        print(f"{r.scenario:<10}{r.metric:<58}{value:>12} {r.unit:<8}{r.target:>10}  {ok}")
    for note in bench.notes:
        print(f"note: {note}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of ~1 min")
    p.add_argument("--only", action="append", choices=SCENARIOS, help="run only these")
    # As README's deployment: one worker process more than there are cores (a thread pool
    # holds one core at most: the GIL), each with its callback worker.
    p.add_argument("--workers", type=int, default=3, help="tfq worker processes")
    p.add_argument("--threads", type=int, default=24, help="threads per worker process")
    p.add_argument(
        "--callbacks",
        choices=("local", "none", "as-is"),
        default="local",
        help="the examples' callback_url: a local sink (default), dropped, or as written",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the worker logs directory")
    ns = p.parse_args(argv)
    # Ctrl-C and SIGTERM both unwind the scenario (processes stopped, keys removed).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)

    redis_url = ensure()
    names = [s for s in SCENARIOS if not ns.only or s in ns.only]
    with tempfile.TemporaryDirectory(prefix="tfq-bench-") as tmp:
        log_dir = Path(tempfile.mkdtemp(prefix="tfq-bench-logs-")) if ns.keep_logs else Path(tmp)
        bench = Bench(redis_url, QUICK if ns.quick else FULL, ns.workers, ns.threads,
                      Path(tmp), log_dir, ns.callbacks)  # fmt: skip
        started = time.monotonic()
        failed: list[str] = []
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                RUNNERS[name](bench)
            except KeyboardInterrupt:
                print("interrupted: cleaned up", file=sys.stderr)
                return 130
            except Exception as exc:
                failed.append(name)
                bench.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
            print(f"  {name}: {time.monotonic() - t0:.1f}s", file=sys.stderr, flush=True)
        mode = "quick" if ns.quick else "full"
        print(f"tfq benchmark ({mode}): {ns.workers} worker processes x {ns.threads} threads, "
              f"Redis {redis_url}, {time.monotonic() - started:.0f}s")  # fmt: skip
        _print_table(bench)
        if ns.keep_logs:
            print(f"worker logs: {log_dir}")
        print(json.dumps(bench.figures, default=str), flush=True)
    ok = not failed and all(r.ok is not False for r in bench.rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
