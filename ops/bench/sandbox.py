"""Benchmark the sandbox: valid `facturacion/nuevo` calls per second vs. the bare HTTP floor.

    python -m ops.bench.sandbox [--seconds 5] [--clients 2] [--concurrency 32] [--cuits 50]

Starts a `SandboxProcess` (gap 0) with a generated tenants file of `--cuits` CUITs, then, for
`--seconds` each, fires from `--clients` client processes (aiohttp, keep-alive,
`--concurrency` requests in flight per process):

1. `GET /_sandbox/health` — the floor: what this machine's HTTP stack does with no work;
2. `POST facturacion/nuevo` — valid invoices spread over the CUITs.

Prints a table and one JSON line `{"nuevo_calls_per_s", "health_calls_per_s",
"nuevo_p99_ms", ...}`. Target: >= 1,000 nuevo/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from ops.sandbox.dates import AR_TZ
from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import load_example
from ops.testkit.tenantgen import REAL_PDV, make_cuits, write_tenants
from worker.tenants import Pdv, Tenants


def nuevo_body_template(pdv: Pdv) -> bytes:
    """The sample Factura B for this PDV, with credentials, and "REF" as the reference slot."""
    invoice = load_example("factura_b", datetime.now(AR_TZ).date())["invoice"]
    invoice["comprobante"]["punto_venta"] = pdv.punto_venta
    invoice["comprobante"]["external_reference"] = "REF"
    return json.dumps({**pdv.credentials(), **invoice}).encode()


@dataclass(frozen=True)
class Job:
    """One client process's share of a phase. `bodies` empty = no body (GET)."""

    url: str
    method: str
    bodies: list[bytes]
    seconds: float
    concurrency: int
    worker_id: int


async def _load(job: Job) -> dict[str, Any]:
    url, method, bodies, seconds = job.url, job.method, job.bodies, job.seconds
    concurrency, worker_id = job.concurrency, job.worker_id
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_client(slot: int) -> None:
            nonlocal errors, counter
            while time.perf_counter() < deadline:
                counter += 1
                data = None
                if bodies:
                    template = bodies[counter % len(bodies)]
                    data = template.replace(b'"REF"', b'"B%d-%d"' % (worker_id, counter), 1)
                start = time.perf_counter()
                try:
                    async with session.request(method, url, data=data, headers=headers) as resp:
                        payload = await resp.read()
                        ok = resp.status == 200 and (not bodies or b'"error": "N"' in payload)
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors += 1

        await asyncio.gather(*(one_client(s) for s in range(concurrency)))
    return {"latencies": latencies, "errors": errors}


def _client_process(job: Job) -> dict[str, Any]:
    try:
        import uvloop  # optional speed-up, not a declared dependency

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_load(job))


def run_phase(
    url: str, method: str, bodies: list[bytes], *, seconds: float, clients: int, concurrency: int
) -> dict[str, float]:
    jobs = [Job(url, method, bodies, seconds, concurrency, w) for w in range(clients)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.map(_client_process, jobs)
    wall = time.perf_counter() - started
    latencies: list[float] = sorted(lat for r in results for lat in r["latencies"])
    errors = sum(r["errors"] for r in results)
    calls = len(latencies)
    # calls/s over the load window (not the pool start-up)
    per_s = calls / seconds if seconds > 0 else 0.0

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "calls": calls,
        "errors": errors,
        "calls_per_s": per_s,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.bench.sandbox", description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0, help="load time per phase, seconds")
    p.add_argument("--clients", type=int, default=2, help="client processes")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight per client")
    p.add_argument("--cuits", type=int, default=50)
    ns = p.parse_args(argv)

    cuits = make_cuits(ns.cuits)
    with tempfile.TemporaryDirectory() as tmp:
        tenants = write_tenants(Path(tmp) / "tenants.toml", cuits)
        loaded = Tenants.load(tenants)
        bodies = [nuevo_body_template(loaded.pdv(cuit, REAL_PDV)) for cuit in cuits]
        with SandboxProcess(tenants, gap_seconds=0, block_seconds=0) as sb:
            load = {"seconds": ns.seconds, "clients": ns.clients, "concurrency": ns.concurrency}
            health = run_phase(sb.url + "/_sandbox/health", "GET", [], **load)
            nuevo = run_phase(sb.api_url + "facturacion/nuevo", "POST", bodies, **load)
            ledger = sb.ledger()
    issued = len(ledger["issued"])
    bad = len(ledger["violations"])

    print(f"sandbox benchmark: {ns.clients} client processes x {ns.concurrency} in flight, "
          f"{ns.seconds:g}s per phase, {len(cuits)} CUITs")  # fmt: skip
    print(f"{'phase':<22}{'calls':>9}{'errors':>8}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, r in (("GET /_sandbox/health", health), ("POST facturacion/nuevo", nuevo)):
        print(
            f"{name:<22}{r['calls']:>9.0f}{r['errors']:>8.0f}{r['calls_per_s']:>10.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
        )
    print(f"ledger: {issued} invoices issued, {bad} violations")
    summary = {
        "nuevo_calls_per_s": round(nuevo["calls_per_s"], 1),
        "health_calls_per_s": round(health["calls_per_s"], 1),
        "nuevo_p99_ms": round(nuevo["p99_ms"], 2),
        "nuevo_p50_ms": round(nuevo["p50_ms"], 2),
        "health_p99_ms": round(health["p99_ms"], 2),
        "nuevo_errors": int(nuevo["errors"]),
        "issued": issued,
    }
    print(json.dumps(summary))
    ok = nuevo["calls_per_s"] >= 1000 and nuevo["errors"] == 0 and issued == nuevo["calls"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
