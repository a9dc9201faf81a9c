"""The scenarios users ask about (issue 10): a realistic night, shared accounts, overload.

Each adds its figures to the bench's JSON line; see `python -m ops.bench --help`.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from ops.bench.kit import INVOICING, CpuMeter, check_ledger, make_cuits, middle_rate
from ops.bench.run import Bench, add_checks, scenario

# The real API's 2.5 s median / 25 s p99 and the 60 s gap, divided by 10.
REALISTIC_GAP_SECONDS = 6.0
REALISTIC_LATENCY_DIST = "lognormal:250:2500:9000"
REALISTIC_CAP_SECONDS = 9.0
# Above the latency cap: a slow call is a slow call, not a timeout and a reconciliation.
REALISTIC_API_TIMEOUT_SECONDS = 15.0

ACCOUNT_COUNT = 4
ACCOUNT_MAX_RPS = 10.0  # the vendor's default per account
ACCOUNTS_GAP_SECONDS = 1.0  # every CUIT could call far more often than its account allows
LOAD_LATENCY_MS = 20.0

OVERLOAD_FACTOR = 2.0  # demand offered, in multiples of the same run's capacity
SUBMIT_TICK_SECONDS = 0.1


def _cpu(meter: CpuMeter) -> dict[str, int]:
    return {k: round(v) for k, v in meter.stop().items()}


# --- realistic: many CUITs, a real gap, a long-tailed API latency ----------------------------


def bench_realistic(bench: Bench) -> None:
    cuit_count, per_cuit = bench.sizes.realistic_cuits, bench.sizes.realistic_jobs
    gap = REALISTIC_GAP_SECONDS
    with scenario(
        bench,
        "realistic",
        cuit_count,
        gap_seconds=gap,
        batch_max=1,
        sandbox_args=["--latency-dist", REALISTIC_LATENCY_DIST],
        worker_settings={"api_timeout_seconds": REALISTIC_API_TIMEOUT_SECONDS},
    ) as run:
        cuits = run.cuits[1:]
        envelopes = run.rounds("R", per_cuit)
        base = run.issued_count()
        meter = CpuMeter(run.pids())
        meter.start()
        run.submit_many(envelopes)
        timeout = 120 + 3 * per_cuit * (gap + REALISTIC_CAP_SECONDS)
        done = run.wait_issued(base + len(envelopes), timeout)
        cpu = _cpu(meter)
        ledger = run.sandbox.ledger()
        stats = run.stats()
    ideal, measured = gap_rule_times(ledger, set(cuits), gap)
    utilisation = ideal / measured if measured > 0 else 0.0
    arrivals = sorted(
        c["arrival"]
        for c in ledger["calls"]
        if c["endpoint"] in INVOICING and c["cuit"] in set(cuits)
    )
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    rate = len(arrivals) / span if span > 0 else 0.0
    label = f"{cuit_count:,} CUITs x {per_cuit}, gap {gap:g}s, lognormal 250/2500/9000 ms"
    bench.add("realistic", f"utilisation vs gap rule ({label})", "realistic_utilisation",
              utilisation, "", ">= 0.98", utilisation >= 0.98)  # fmt: skip
    bench.add("realistic", "invoicing calls/s, first to last", "realistic_calls_per_s", rate,
              "calls/s", "", None, 1)  # fmt: skip
    bench.figures["realistic_ideal_s"] = round(ideal, 1)
    bench.figures["realistic_measured_s"] = round(measured, 1)
    check = check_ledger(ledger, run.submitted, gap_seconds=gap)
    add_checks(bench, "realistic", check, done, stats)
    bench.figures["realistic_cpu_percent"] = cpu


def gap_rule_times(ledger: dict[str, Any], cuits: set[str], gap: float) -> tuple[float, float]:
    """Summed over CUITs: the ideal time from a CUIT's first call to its last under tfq's
    gap rule (a call may start at the previous one's start + its duration + the gap), and
    the time the ledger measured. A call's duration: its arrival to its last invoice issued."""
    calls: defaultdict[str, dict[float, float]] = defaultdict(dict)
    for inv in ledger["issued"]:
        if inv["cuit"] in cuits and inv["endpoint"] in INVOICING:
            by_arrival = calls[inv["cuit"]]
            arrival = float(inv["arrival"])
            by_arrival[arrival] = max(by_arrival.get(arrival, 0.0), float(inv["issued_at"]))
    ideal = measured = 0.0
    for by_arrival in calls.values():
        starts = sorted(by_arrival)
        if len(starts) < 2:
            continue
        ideal += sum(by_arrival[s] - s + gap for s in starts[:-1])
        measured += starts[-1] - starts[0]
    return ideal, measured


# --- accounts: CUITs sharing TusFacturas accounts, each held to its limit --------------------


def bench_accounts(bench: Bench) -> None:
    per_account, per_cuit = bench.sizes.accounts_cuits, bench.sizes.accounts_jobs
    cuit_count = ACCOUNT_COUNT * per_account
    # `scenario` makes the same CUITs; the first is its warm-up CUIT (an account of its own).
    planned = make_cuits(cuit_count + 1)[1:]
    account_of = {cuit: f"bench-account-{i % ACCOUNT_COUNT}" for i, cuit in enumerate(planned)}
    with scenario(
        bench,
        "accounts",
        cuit_count,
        gap_seconds=ACCOUNTS_GAP_SECONDS,
        latency_ms=LOAD_LATENCY_MS,
        batch_max=1,
        accounts=account_of,
        account_max_rps=ACCOUNT_MAX_RPS,
        api_max_rps=ACCOUNT_MAX_RPS,
    ) as run:
        cuits = run.cuits[1:]
        if cuits != planned:
            raise RuntimeError("accounts: the scenario's CUITs are not the planned ones")
        envelopes = run.rounds("A", per_cuit)
        base = run.issued_count()
        meter = CpuMeter(run.pids())
        meter.start()
        t0 = time.time()
        run.submit_many(envelopes)
        calls_each = len(envelopes) / ACCOUNT_COUNT
        done = run.wait_issued(base + len(envelopes), 120 + 3 * calls_each / ACCOUNT_MAX_RPS)
        cpu = _cpu(meter)
        ledger = run.sandbox.ledger()
        stats = run.stats()
    sent: defaultdict[str, list[float]] = defaultdict(list)
    for call in ledger["calls"]:
        account = account_of.get(call["cuit"] or "")
        if account is not None and call["arrival"] >= t0:
            sent[account].append(float(call["arrival"]))  # every endpoint: the limit's count
    names = sorted(set(account_of.values()))
    ratios = {a: middle_rate(sorted(sent[a])) / ACCOUNT_MAX_RPS for a in names}
    low, high = min(ratios.values()), max(ratios.values())
    too_fast = sum(int(v["too_fast"]) for a, v in ledger.get("accounts", {}).items() if a in ratios)
    label = f"{ACCOUNT_COUNT} accounts x {per_account} CUITs, {ACCOUNT_MAX_RPS:g} rps each"
    bench.add("accounts", f"calls/s / limit, slowest account ({label})",
              "accounts_min_rps_ratio", low, "", ">= 0.95", low >= 0.95)  # fmt: skip
    bench.add("accounts", "calls/s / limit, fastest account", "accounts_max_rps_ratio", high,
              "", "<= 1.0", high <= 1.0)  # fmt: skip
    bench.add("accounts", "sandbox 429s (account over its limit)", "accounts_429", too_fast, "",
              "", None, 0)  # fmt: skip
    bench.figures["accounts_rps_ratio_by_account"] = {a: round(r, 3) for a, r in ratios.items()}
    # The headroom under the sandbox's sliding window: the shortest time any limit + 1
    # consecutive calls of one account took (below 1 s, the last of them was a 429).
    n = int(ACCOUNT_MAX_RPS)
    spans = [t[i + n] - t[i] for a in names for t in [sorted(sent[a])] for i in range(len(t) - n)]
    bench.figures["accounts_tightest_window_s"] = round(min(spans), 4) if spans else None
    check = check_ledger(ledger, run.submitted, gap_seconds=ACCOUNTS_GAP_SECONDS)
    add_checks(bench, "accounts", check, done, stats)
    bench.figures["accounts_cpu_percent"] = cpu


# --- overload: demand at twice the capacity --------------------------------------------------


def bench_overload(bench: Bench) -> None:
    """Needs the same run's `capacity_calls_per_s` (the registry runs `capacity` first)."""
    capacity = float(bench.figures.get("capacity_calls_per_s") or 0.0)
    if capacity <= 0:
        raise RuntimeError("overload: no capacity figure from this run to measure against")
    cuit_count, seconds = bench.sizes.overload_cuits, bench.sizes.overload_seconds
    demand = OVERLOAD_FACTOR * capacity
    total = round(demand * seconds)
    with scenario(
        bench, "overload", cuit_count, gap_seconds=0.0, latency_ms=LOAD_LATENCY_MS, batch_max=1
    ) as run:
        cuits = run.cuits[1:]
        envelopes = run.rounds("O", math.ceil(total / cuit_count), one_type=True)[:total]
        base = run.issued_count()
        meter = CpuMeter(run.pids())
        meter.start()
        t0 = time.time()
        offered = _offer(run.submit_many, envelopes, demand)
        t_end = time.time()
        done = run.wait_issued(base + total, 120 + 3 * total / capacity)
        cpu = _cpu(meter)
        ledger = run.sandbox.ledger()
        stats = run.stats()
    cuit_set = set(cuits)
    invoicing = sorted(
        float(c["arrival"])
        for c in ledger["calls"]
        if c["endpoint"] in INVOICING and c["cuit"] in cuit_set and c["arrival"] >= t0
    )
    goodput = middle_rate(invoicing)
    ratio = goodput / capacity
    per_cuit = {cuit: 0 for cuit in cuits}
    for call in ledger["calls"]:
        ok = call.get("outcome") in ("ok", "partial") and call["endpoint"] in INVOICING
        if ok and call["cuit"] in cuit_set and t0 <= call["arrival"] <= t_end:
            per_cuit[call["cuit"]] += 1
    jain = jain_index(list(per_cuit.values()))
    label = f"{total:,} jobs at {demand:,.0f}/s over {seconds:g}s, {cuit_count} CUITs"
    bench.add("overload", f"goodput / capacity ({label})", "overload_goodput_ratio", ratio, "",
              ">= 0.95", ratio >= 0.95)  # fmt: skip
    bench.add("overload", "invoicing calls/s, middle 80%", "overload_calls_per_s", goodput,
              "calls/s", "", None, 0)  # fmt: skip
    bench.add("overload", "Jain's fairness, calls per CUIT while offered", "overload_jain", jain,
              "", ">= 0.99", jain >= 0.99)  # fmt: skip
    bench.figures["overload_offered_jobs_per_s"] = round(offered, 1)
    check = check_ledger(ledger, run.submitted, gap_seconds=0.0)
    add_checks(bench, "overload", check, done, stats)
    reaped = int(stats.get("leases:reaped", 0))
    bench.add("overload", "leases reaped", "overload_leases_reaped", reaped, "", "0",
              reaped == 0, 0)  # fmt: skip
    bench.figures["overload_cpu_percent"] = cpu


def _offer(submit: Any, envelopes: list[dict[str, Any]], rate: float) -> float:
    """Submit `envelopes` at `rate` jobs/s, in ticks; the rate actually offered."""
    t0 = time.monotonic()
    sent = 0
    while sent < len(envelopes):
        due = min(len(envelopes), int(rate * (time.monotonic() - t0)) + 1)
        if due > sent:
            submit(envelopes[sent:due])
            sent = due
        time.sleep(SUBMIT_TICK_SECONDS)
    return sent / max(1e-9, time.monotonic() - t0)


def jain_index(values: list[int]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one takes everything."""
    total, squares = sum(values), sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 0.0
