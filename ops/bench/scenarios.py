"""The benchmark scenarios' registry and the first six (see `python -m ops.bench --help`):
each one adds its figures. The load scenarios of issue 10 are in `ops.bench.scenarios_load`."""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from celery import Celery

from ops.bench import console
from ops.bench.bare_post import cpu_ms_per_call, measure_bare_post
from ops.bench.kit import (
    CpuMeter,
    JobMaker,
    check_ledger,
    command_counts,
    command_delta,
    job_times,
    make_cuits,
    middle_rate,
    ok_arrivals,
    percentile,
    pipeline_breakdown,
    ref_of,
    unlink_keys,
    unlink_prefix,
    used_memory,
)
from ops.bench.run import Bench, add_checks, scenario
from ops.bench.scenarios_load import bench_accounts, bench_overload, bench_realistic
from ops.testkit.harness import unique_prefix
from ops.testkit.tenantgen import REAL_PDV
from producers.client import InvoiceQueue
from worker.invoice.rules import argentina_today
from worker.store.scripts import text
from worker.tenants import Tenants

SLOT_GAP_SECONDS = 1.0
SLOT_LATENCY_MS = 20.0
BULK_GAP_SECONDS = 0.5
BULK_BATCH = 20
IDLE_GAP_SECONDS = 1.0
IDLE_SPACING_SECONDS = 0.05


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
    add_checks(bench, "slots", check, done, stats)
    bench.figures["slots_cpu_percent"] = {k: round(v) for k, v in cpu.items()}
    bench.figures["slots_path_ms"] = pipeline_breakdown(path, ledger)


def _slot_lateness(arrivals: dict[str, list[float]], gap: float) -> tuple[float, float]:
    """p50 and p99 (ms) of (interval between consecutive calls of a CUIT) - gap."""
    late = [
        1000 * (b - a - gap) for times in arrivals.values() for a, b in itertools.pairwise(times)
    ]
    return percentile(late, 50), percentile(late, 99)


# --- 3. capacity -----------------------------------------------------------------------------


def bench_capacity(bench: Bench) -> None:
    cuit_count, per_cuit = bench.sizes.capacity_cuits, bench.sizes.capacity_jobs
    with scenario(
        bench, "capacity", cuit_count, gap_seconds=0.0, latency_ms=SLOT_LATENCY_MS, batch_max=1
    ) as run:
        cuits = run.cuits[1:]
        envelopes = run.rounds("C", per_cuit, one_type=True)
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
        # The baseline, against the same sandbox, after the ledger above was read.
        pdv = Tenants.load(bench.tmp / "tenants-capacity.toml").pdv(run.cuits[0], REAL_PDV)
        bare = measure_bare_post(
            run.sandbox.api_url, pdv, run.pids()["sandbox"][0], calls=min(2000, len(envelopes))
        )
    tfq_ms = cpu_ms_per_call(meter, len(envelopes))
    cuit_set = set(cuits)
    calls = [c for c in ledger["calls"] if c["cuit"] in cuit_set and c["arrival"] >= t0]
    invoicing = sorted(
        c["arrival"] for c in calls if c["endpoint"] in ("facturacion/nuevo", "facturacion/lotes")
    )
    queries = Counter(c["endpoint"] for c in calls if c["endpoint"] not in
                      ("facturacion/nuevo", "facturacion/lotes"))  # fmt: skip
    rate = middle_rate(invoicing)
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
    add_checks(bench, "capacity", check, done, stats)
    bench.figures["capacity_cpu_percent"] = {k: round(v) for k, v in cpu.items()}
    ratio = tfq_ms / max(1e-9, bare.client_ms)
    bench.add("capacity", "tfq CPU per invoicing call", "cpu_ms_per_call", tfq_ms, "ms")
    bench.add("capacity", "bare POST CPU per call (baseline)", "bare_post_cpu_ms",
              bare.client_ms, "ms")  # fmt: skip
    bench.add("capacity", "tfq CPU per call / bare POST", "cpu_per_call_vs_bare_post", ratio, "x",
              "<= 4", ratio <= 4)  # fmt: skip
    bench.figures["bare_post_sandbox_cpu_ms"] = round(bare.sandbox_ms, 3)
    bench.figures["capacity_path_ms"] = pipeline_breakdown(path, ledger)
    bench.figures["capacity_redis_commands_per_job"] = commands


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
    add_checks(bench, "idle", check, True, stats)


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
    add_checks(bench, "bulk", check, done, stats)
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


def _after_capacity(bench: Bench, runner: Callable[[Bench], None]) -> None:
    """Run `runner` against this run's capacity figure, measuring it first if not yet done."""
    if "capacity_calls_per_s" not in bench.figures:
        bench_capacity(bench)
    runner(bench)


def bench_console(bench: Bench) -> None:
    """The console's batch page with one big batch (`ops.bench.console`), no worker."""
    s = bench.sizes
    sizes = console.Sizes(jobs=s.console_jobs, cuits=s.console_cuits,
                          requests=s.console_requests, profile=0)  # fmt: skip
    figures, _ = console.run(bench.redis_url, sizes)
    bench.add("console", f"batch page p95 ({s.console_jobs:,} jobs, {s.console_cuits:,} CUITs)",
              "console_batch_page_p95_ms", figures["batch_page_p95_ms"], "ms",
              f"<= {console.TARGET_P95_MS:.0f}", figures["batch_page_ok"], digits=1)  # fmt: skip
    bench.add("console", "batch page / GET /v1/batches/{name} (medians)",
              "console_batch_page_vs_api", figures["batch_page_vs_api"], "x", digits=2)  # fmt: skip
    bench.figures["console"] = {k: figures[k] for k in ("queued", "issued") if k in figures}


RUNNERS: dict[str, Callable[[Bench], None]] = {
    "enqueue": bench_enqueue,
    "slots": bench_slots,
    "capacity": bench_capacity,
    "idle": bench_idle,
    "bulk": bench_bulk,
    "memory": bench_memory,
    "realistic": bench_realistic,
    "accounts": bench_accounts,
    "overload": lambda bench: _after_capacity(bench, bench_overload),
    "console": bench_console,
}
SCENARIOS = tuple(RUNNERS)
