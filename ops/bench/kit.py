"""Pieces of `python -m ops.bench`: tenants, sample jobs, ledger checks, Redis cleanup, CPU use.

Kept apart from the scenarios so each part can be read (and reused) on its own.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from ops.testkit import tenantgen
from ops.testkit.examples import load_examples
from ops.testkit.ledger import audit

INVOICING = ("facturacion/nuevo", "facturacion/lotes")
GAP_TOLERANCE_SECONDS = 0.001  # clock granularity allowance of the bench's own gap check

# Every tenant gets the puntos de venta the examples use (test?); 679 is the seed's test PDV.
PDVS: tuple[tuple[int, bool], ...] = ((2, False), (3, False), (679, True))


# --- tenants and jobs ------------------------------------------------------------------------


def make_cuits(count: int, prefix: str = "30", start: int = 40_000_000) -> list[str]:
    """`count` distinct valid CUITs counting up from `start`, apart from other runs' CUITs."""
    return tenantgen.make_cuits(count, prefix, start=start, step=1)


class JobMaker:
    """Copies of the sample envelopes for any CUIT, with unique external_references.

    `callback_url`: "as-is" keeps the examples' own URLs, None drops them, any other value
    replaces them (only on the examples that have one).
    """

    def __init__(
        self, today: date, names: list[str] | None = None, callback_url: str | None = "as-is"
    ):
        examples = load_examples(today)
        self.names = names or sorted(examples)
        self.examples = {n: examples[n] for n in self.names}
        self.callback_url = callback_url

    def make(self, cuit: str, ref: str, name: str) -> dict[str, Any]:
        env = copy.deepcopy(self.examples[name])
        env["cuit"] = cuit
        if self.callback_url is None:
            env.pop("callback_url", None)
        elif self.callback_url != "as-is" and env.get("callback_url"):
            env["callback_url"] = self.callback_url
        comp = env["invoice"]["comprobante"]
        comp["external_reference"] = ref
        for assoc in comp.get("comprobantes_asociados") or []:
            assoc["cuit"] = cuit  # a note refers to its issuer's own invoice
        return env

    def name(self, i: int) -> str:
        return self.names[i % len(self.names)]


def ref_of(envelope: dict[str, Any]) -> str:
    ref: str = envelope["invoice"]["comprobante"]["external_reference"]
    return ref


class CallbackSink:
    """A local webhook receiver that answers 204 to every POST and counts them."""

    def __init__(self) -> None:
        sink = self
        self.received = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with sink._lock:
                    sink.received += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CallbackSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- statistics ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def middle_rate(times: list[float]) -> float:
    """Events/s between the 10th and the 90th percentile event."""
    if len(times) < 10:
        return 0.0
    lo, hi = int(len(times) * 0.1), int(len(times) * 0.9)
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else 0.0


# --- the sandbox ledger ----------------------------------------------------------------------


def invoicing_calls(ledger: dict[str, Any], cuits: set[str]) -> list[dict[str, Any]]:
    return [
        c for c in ledger.get("calls", []) if c.get("endpoint") in INVOICING and c["cuit"] in cuits
    ]


@dataclass
class Check:
    """Exactly once, in order, never too fast: what the ledger says about a set of jobs."""

    submitted: int = 0
    issued: int = 0
    duplicates: int = 0  # (cuit, external_reference) issued more than once
    missing: int = 0  # submitted, never issued
    unexpected: int = 0  # issued, never submitted (by this run)
    order_violations: int = 0  # adjacent numbers of a CUIT+PDV+tipo out of enqueue order or gapped
    sandbox_gap_violations: int = 0  # ledger violations with rule gap or blocked
    own_gap_violations: int = 0  # consecutive arrivals closer than gap - tolerance
    gap_violations: int = 0  # distinct offending calls (union of the two above)
    other_violations: int = 0  # any other rule the sandbox saw broken (numbering, date, ...)
    min_gap_seconds: float | None = None  # smallest distance of consecutive invoicing calls
    invoicing_calls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.duplicates
            or self.missing
            or self.unexpected
            or self.order_violations
            or self.gap_violations
            or self.other_violations
        )


def check_ledger(
    ledger: dict[str, Any],
    submitted: list[tuple[str, str]],
    *,
    gap_seconds: float,
    tolerance_seconds: float = GAP_TOLERANCE_SECONDS,
) -> Check:
    """Judge a run (`submitted` is (cuit, external_reference) in enqueue order) with the
    audit every test and the chaos run use, in the benchmark's counters."""
    found = audit(ledger, submitted, gap_seconds=gap_seconds, tolerance_seconds=tolerance_seconds)
    sandbox_gaps = [g for g in found.gap_violations if g.startswith("sandbox")]
    notes = [
        *(f"issued twice: {k}" for k in found.duplicates[:5]),
        *found.order_violations[:10],
        *found.gap_violations[:10],
        *found.other_violations[:5],
    ]
    return Check(
        submitted=found.submitted,
        issued=found.issued,
        duplicates=len(found.duplicates),
        missing=len(found.missing),
        unexpected=len(found.unexpected),
        order_violations=len(found.order_violations),
        sandbox_gap_violations=len(sandbox_gaps),
        own_gap_violations=len(found.gap_violations) - len(sandbox_gaps),
        gap_violations=len(found.gap_violations),
        other_violations=len(found.other_violations),
        min_gap_seconds=found.min_call_interval,
        invoicing_calls=found.invoicing_calls,
        notes=notes[:20],
    )


def ok_arrivals(ledger: dict[str, Any], cuits: set[str]) -> dict[str, list[float]]:
    """Per CUIT, sorted arrival times (epoch s) of invoicing calls that issued something."""
    out: defaultdict[str, list[float]] = defaultdict(list)
    for call in invoicing_calls(ledger, cuits):
        if call.get("outcome") in ("ok", "partial"):
            out[call["cuit"]].append(float(call["arrival"]))
    for times in out.values():
        times.sort()
    return dict(out)


# --- Redis -----------------------------------------------------------------------------------


def unlink_prefix(client: redis.Redis, prefix: str) -> int:
    """SCAN keys starting with `prefix` (glob characters escaped) and UNLINK them."""
    pattern = "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in prefix) + "*"
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=2000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += int(client.unlink(*batch))
            batch = []
    if batch:
        removed += int(client.unlink(*batch))
    return removed


def unlink_keys(client: redis.Redis, keys: Iterable[str]) -> int:
    removed = 0
    for chunk in _chunks(list(keys), 1000):
        removed += int(client.unlink(*chunk))
    return removed


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def command_counts(client: redis.Redis) -> dict[str, int]:
    """Redis' cumulative calls per command (`INFO commandstats`), server-wide."""
    stats: dict[str, Any] = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def command_delta(before: dict[str, int], after: dict[str, int], per: int) -> dict[str, float]:
    """Commands per unit of work between two `command_counts` (server-wide: other clients
    of the same Redis show up too)."""
    out = {k: (v - before.get(k, 0)) / max(1, per) for k, v in after.items()}
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 0.05}


def used_memory(client: redis.Redis) -> int:
    info: dict[str, Any] = client.info("memory")
    return int(info["used_memory"])


# --- CPU use of the processes in a run -------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` (all its threads); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (a worker's callback worker), [] when it is gone."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (`/proc/stat`: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / _CLK_TCK


class CpuMeter:
    """CPU % (of one core) of named processes between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, list[int]]):
        self.pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.percent: dict[str, float] = {}
        self.seconds = 0.0  # wall time of the last start..stop

    def _sample(self) -> dict[str, float]:
        own = os.times()
        out = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}
        out["bench"] = own.user + own.system
        out["machine"] = machine_busy_seconds()
        return out

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        wall = max(1e-9, time.monotonic() - self._t0)
        self.seconds = wall
        end = self._sample()
        self.percent = {k: 100.0 * (end[k] - self._start.get(k, 0.0)) / wall for k in end}
        # What else ran on the machine meanwhile (other users of the cores and of Redis).
        ours = sum(v for k, v in self.percent.items() if k != "machine")
        self.percent["others"] = max(0.0, self.percent["machine"] - ours)
        return self.percent


# --- where the time goes ---------------------------------------------------------------------


def job_times(client: redis.Redis, job_key: Any, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per job id: `cuit`, `ref` and the Redis timestamps `created`, `sent_at` (presend),
    `finished` (epoch s)."""
    out: dict[str, dict[str, Any]] = {}
    fields = ("ref", "cuit", "created", "sent_at", "finished")
    for chunk in _chunks(job_ids, 1000):
        pipe = client.pipeline(transaction=False)
        for job_id in chunk:
            pipe.hmget(job_key(job_id), fields)
        for job_id, values in zip(chunk, pipe.execute(), strict=True):
            rec = dict(zip(fields, values, strict=True))
            if rec["sent_at"] is None:
                continue
            row: dict[str, Any] = {k: float(v) for k, v in rec.items() if k in fields[2:] and v}
            row["ref"], row["cuit"] = rec["ref"].decode(), rec["cuit"].decode()
            out[job_id] = row
    return out


def pipeline_breakdown(
    times: dict[str, dict[str, Any]], ledger: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """p50/p99/max (ms) of each step of an invoicing call, from Redis and sandbox stamps.

    send: presend (the worker's gap reference, Redis clock) -> the sandbox's arrival stamp;
    call: arrival -> the (last) job of the call recorded issued (API latency, the reply, the
    worker's bookkeeping);
    turnaround: a call's jobs recorded -> the CUIT's next call passing presend (release,
    dispatcher, Celery publish and consume, reads before sending; includes waiting for the
    gap when the gap is longer than the call).
    """
    arrival = {(i["cuit"], i["external_reference"]): float(i["arrival"]) for i in ledger["issued"]}
    # One entry per call (a `lotes` call carries several jobs with one send time).
    calls: dict[tuple[str, float], tuple[float, float]] = {}
    for t in times.values():
        a = arrival.get((t["cuit"], t["ref"]))
        if a is None or "finished" not in t:
            continue
        key = (t["cuit"], t["sent_at"])
        prev = calls.get(key)
        calls[key] = (a, max(t["finished"], prev[1] if prev else 0.0))
    send = [1000 * (a - sent) for (_, sent), (a, _) in calls.items()]
    call = [1000 * (fin - a) for (a, fin) in calls.values()]
    by_cuit: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
    for (cuit, sent), (_, finished) in calls.items():
        by_cuit[cuit].append((sent, finished))
    turnaround: list[float] = []
    for sends in by_cuit.values():
        sends.sort()
        for (_, finished), (sent_next, _) in itertools.pairwise(sends):
            turnaround.append(1000 * (sent_next - finished))
    return {
        name: {
            "p50": round(percentile(v, 50), 1),
            "p99": round(percentile(v, 99), 1),
            "max": round(max(v, default=0.0), 1),
        }
        for name, v in (("send", send), ("call", call), ("turnaround", turnaround))
    }
