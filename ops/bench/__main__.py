"""Benchmark the queue end to end: Redis, real `tfq worker` processes, the sandbox over HTTP.

    python -m ops.bench [--quick] [--only NAME ...] [--workers 4] [--threads 32]
                        [--callbacks local|none|as-is] [--keep-logs]

Every scenario runs under its own key prefix (`ops.testkit.harness.unique_prefix`) with its own
sandbox and a generated tenants file (CUITs with PDVs 2 and 3, real, and 679, test), and
removes its keys, its Celery result keys and its processes afterwards (also on Ctrl-C).
Prints a table (each figure with its target) and one JSON line with every figure.

Scenarios (sizes without --quick; --quick runs the same with fewer jobs, a few minutes):

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
7. `realistic`: 1,000 CUITs x 4 jobs (quick: 200 x 3), gap 6 s, sandbox latency lognormal
   (`--latency-dist lognormal:250:2500:9000`: median 250 ms, p99 2.5 s, cap 9 s; the real
   API's figures and the 60 s gap divided by 10), TFQ_API_TIMEOUT_SECONDS=15 (above the cap),
   batching off. `realistic_utilisation` = (sum over CUITs of the ideal time from its first
   call to its last under tfq's own gap rule: each call may start at the previous call's
   arrival + its duration (arrival to issued, from the ledger) + the gap) / (the sum of the
   measured times), target >= 0.98. Also `realistic_calls_per_s` (first to last call).
8. `accounts`: 4 TusFacturas accounts x 250 CUITs (quick: 4 x 50) x 4 jobs, gap 1 s, latency
   20 ms; the tenants file names each CUIT's account with max_rps 10, the sandbox answers 429
   beyond 10 calls a second per account, and the workers run with TFQ_API_MAX_RPS=10. Each
   account's calls/s (every endpoint, 429s included: what tfq sent) over the middle 80 % of
   its calls / its limit: `accounts_min_rps_ratio` (slowest account, target >= 0.95) and
   `accounts_max_rps_ratio` (fastest, target <= 1.0); `accounts_429` the sandbox's refusals
   (they also count among the scenario's rule breaks).
9. `overload`: jobs offered at twice the same run's `capacity_calls_per_s` (capacity runs
   first if not asked for) for 60 s (quick: 15 s) over 600 CUITs (quick: 200), gap 0, latency
   20 ms, batching off. `overload_goodput_ratio` = invoicing calls/s over the middle 80 % /
   `capacity_calls_per_s` (target >= 0.95); `overload_leases_reaped` (target 0);
   `overload_jain` = Jain's fairness index of the calls per CUIT while demand was offered
   (target >= 0.99).
10. `console`: the web console's batch page with one batch of 10,000 queued jobs over
   1,000 CUITs (quick: 1,000 over 100), no worker (`ops.bench.console`, which also runs on its
   own with a profile): `console_batch_page_p95_ms` (target <= 300 ms) and
   `console_batch_page_vs_api` (page median / `GET /v1/batches/{name}` median, same run).
Scenarios 7-9 also report their gap, order and exactly-once violations (all must be 0).

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
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from ops.bench.run import FULL, QUICK, Bench
from ops.bench.scenarios import RUNNERS, SCENARIOS
from ops.testkit.localredis import ensure


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
    p.add_argument("--only", action="extend", nargs="+", choices=SCENARIOS, help="run only these")
    # As README's sizing: two worker processes per core (a thread pool holds one core at
    # most: the GIL), each with its callback worker, and threads enough for `realistic`'s
    # calls in flight (about 160 calls/s at a 0.4 s mean latency).
    p.add_argument("--workers", type=int, default=4, help="tfq worker processes (two per core)")
    p.add_argument("--threads", type=int, default=32, help="threads per worker process")
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
