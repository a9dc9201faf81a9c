"""Benchmark of the HTTP intake (`tfq serve`) over real HTTP against a local Redis.

    python -m ops.bench.intake                 # 2 uvicorn workers, 4 batches in flight
    python -m ops.bench.intake --workers 1 --concurrency 2 --batches 40

Starts the intake with uvicorn in a subprocess (its own key prefix and tenants file with a
bench client), then measures:
- `POST /v1/batches`: accepted envelopes per second with batches of `--batch-size` sample
  envelopes, `--concurrency` requests in flight (target >= 5,000 envelopes/s);
- `POST /v1/invoices`: one envelope per request, one at a time: p50 and p99 latency;
- `GET /healthz` (a Redis PING): the same, as the baseline of the HTTP stack itself.

Prints a table and one JSON line; removes its keys, files and processes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import requests

from ops.testkit.examples import load_examples
from ops.testkit.harness import unique_prefix
from ops.testkit.localredis import ensure, free_port
from ops.testkit.tenantgen import make_cuits
from producers.http.auth import token_sha256
from worker.invoice.rules import argentina_today

TOKEN = "bench-intake-token"
TARGET_ENVELOPES_PER_S = 5_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Envelopes:
    """Copies of the sample envelopes with unique external_references, round robin."""

    def __init__(self, cuits: list[str]):
        self.examples = list(load_examples(argentina_today()).values())
        self.cuits = cuits
        self.n = 0

    def next(self, label: str) -> dict[str, Any]:
        i = self.n
        self.n += 1
        env = copy.deepcopy(self.examples[i % len(self.examples)])
        cuit = self.cuits[i % len(self.cuits)]
        env["cuit"] = cuit
        comp = env["invoice"]["comprobante"]
        comp["external_reference"] = f"{label}-{i:08d}"
        for assoc in comp.get("comprobantes_asociados") or []:
            assoc["cuit"] = cuit
        return env


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pids
    for child in children:
        pids += process_tree(int(child))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return total


# The intake runs in its own session (so its uvicorn workers stop with it); if whoever
# started it dies without stopping it (a killed test run), it stops itself.
_ORPHAN_GUARD = """
import os, signal, threading, time
def _guard(parent=os.getppid()):
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=_guard, daemon=True).start()
"""


class IntakeProcess:
    """The intake's `serve` in a subprocess (its own session, so its workers die with it)."""

    def __init__(self, env: dict[str, str], workers: int, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        code = _ORPHAN_GUARD + (
            "from producers.http.serve import serve; "
            f"serve('127.0.0.1', {self.port}, workers={workers})"
        )
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the intake exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("the intake did not answer /healthz")

    def cpu(self) -> float:
        return cpu_seconds(process_tree(self.proc.pid))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


def _chunks(items: list[bytes], n: int) -> Iterator[list[bytes]]:
    for i in range(n):
        yield items[i::n]


def post_batches(url: str, bodies: list[bytes], concurrency: int) -> tuple[int, float]:
    """Posts every body, `concurrency` at a time; (accepted envelopes, wall seconds)."""
    accepted = [0] * concurrency
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def run(slot: int, mine: list[bytes]) -> None:
        # A connection per request, as bulk clients do: with several uvicorn workers each
        # request goes to whichever worker accepts it, rather than every request of a
        # kept-alive connection to the same one.
        for body in mine:
            resp = requests.post(url + "/v1/batches", data=body, headers=headers, timeout=120)
            if resp.status_code != 200:
                failures.append(f"{resp.status_code} {resp.text[:200]}")
                return
            accepted[slot] += resp.json()["accepted"]

    threads = [
        threading.Thread(target=run, args=(slot, mine))
        for slot, mine in enumerate(_chunks(bodies, concurrency))
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"POST /v1/batches failed: {failures[0]}")
    return sum(accepted), elapsed


def timed(
    session: requests.Session, method: str, url: str, bodies: list[bytes | None]
) -> list[float]:
    """Latency (ms) of each request, one at a time."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    out = []
    for body in bodies:
        t0 = time.perf_counter()
        resp = session.request(method, url, data=body, headers=headers, timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"{method} {url}: {resp.status_code} {resp.text[:200]}")
    return out


def unlink_prefix(client: redis.Redis, prefix: str) -> int:
    removed = 0
    batch: list[Any] = []
    for key in client.scan_iter(match=f"{prefix}*", count=2000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += int(client.unlink(*batch))
            batch.clear()
    if batch:
        removed += int(client.unlink(*batch))
    return removed


def run(ns: argparse.Namespace) -> dict[str, Any]:
    redis_url = ensure()
    prefix = unique_prefix("bench-intake")
    cuits = make_cuits(ns.cuits)
    maker = Envelopes(cuits)
    client = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory(prefix="tfq-bench-intake-") as tmp:
        tenants = Path(tmp) / "tenants.toml"
        tenants.write_text(
            "[[client]]\n"
            'name = "bench"\n'
            f'token_sha256 = "{token_sha256(TOKEN)}"\n'
            f"cuits = {json.dumps(cuits)}\n",
            encoding="utf-8",
        )
        env = dict(os.environ)
        env.update(
            {
                "TFQ_REDIS_URL": redis_url,
                "TFQ_KEY_PREFIX": prefix,
                "TFQ_TENANTS_FILE": str(tenants),
                "TFQ_LOG_LEVEL": ns.log_level,
                "TFQ_LOG_FORMAT": "json",
            }
        )
        log_path = Path(tmp) / "intake.log"
        intake = IntakeProcess(env, ns.workers, log_path)
        try:
            intake.wait_ready()

            def batch_body(label: str) -> bytes:
                jobs = [maker.next(label) for _ in range(ns.batch_size)]
                return json.dumps({"batch": f"bench-{label}", "jobs": jobs}).encode()

            warm = [batch_body("warm") for _ in range(max(2, ns.concurrency))]
            bodies = [batch_body(f"b{i}") for i in range(ns.batches)]
            singles = [json.dumps(maker.next("one")).encode() for _ in range(ns.singles)]
            mean_body = sum(map(len, bodies)) / len(bodies)

            post_batches(intake.url, warm, ns.concurrency)
            cpu0 = intake.cpu()
            accepted, elapsed = post_batches(intake.url, bodies, ns.concurrency)
            cpu_batches = intake.cpu() - cpu0
            expected = ns.batches * ns.batch_size
            if accepted != expected:
                raise RuntimeError(f"accepted {accepted} of {expected} envelopes")
            rate = accepted / elapsed

            with requests.Session() as session:
                timed(session, "POST", intake.url + "/v1/invoices", list(singles[:20]))
                single_ms = timed(session, "POST", intake.url + "/v1/invoices", list(singles[20:]))
                health_ms = timed(session, "GET", intake.url + "/healthz", [None] * ns.healthz)
        finally:
            intake.stop()
            removed = unlink_prefix(client, prefix)
            client.close()
    load = os.getloadavg()[0]
    figures = {
        "intake_batch_envelopes_per_s": round(rate),
        "intake_single_p50_ms": round(percentile(single_ms, 50), 2),
        "intake_single_p99_ms": round(percentile(single_ms, 99), 2),
        "healthz_p99_ms": round(percentile(health_ms, 99), 2),
    }
    rows = [
        ("POST /v1/batches", f"{ns.batches} x {ns.batch_size} envelopes, "
         f"{ns.concurrency} in flight", f"{rate:,.0f}", "env/s",
         f">= {TARGET_ENVELOPES_PER_S:,}", "yes" if rate >= TARGET_ENVELOPES_PER_S else "NO"),
        ("", "request body (mean)", f"{mean_body / 1e6:.2f}", "MB", "", ""),
        ("", "wall time per batch", f"{1000 * elapsed / ns.batches * ns.concurrency:,.0f}",
         "ms", "", ""),
        ("", "intake CPU per 1,000 envelopes", f"{1000 * cpu_batches / accepted * 1000:,.0f}",
         "ms", "", ""),
        ("POST /v1/invoices", f"{len(single_ms)} single envelopes, p50",
         f"{figures['intake_single_p50_ms']:.2f}", "ms", "", ""),
        ("", "p99", f"{figures['intake_single_p99_ms']:.2f}", "ms", "", ""),
        ("GET /healthz", f"{ns.healthz} requests, p50 (baseline)",
         f"{percentile(health_ms, 50):.2f}", "ms", "", ""),
        ("", "p99", f"{figures['healthz_p99_ms']:.2f}", "ms", "", ""),
    ]  # fmt: skip
    print(
        f"tfq intake benchmark: {ns.workers} uvicorn worker(s), {os.cpu_count()} CPUs, "
        f"Redis {redis_url}, {len(cuits)} CUITs, load average {load:.1f}; {removed} keys removed"
    )
    print(f"{'route':<20}{'measure':<42}{'value':>10} {'unit':<7}{'target':>10}  ok")
    for route, measure, val, unit, target, ok in rows:
        print(f"{route:<20}{measure:<42}{val:>10} {unit:<7}{target:>10}  {ok}")
    print(json.dumps({**figures, "workers": ns.workers}), flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.bench.intake", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--batches", type=int, default=30, help="POST /v1/batches requests")
    p.add_argument("--batch-size", type=int, default=1000, help="envelopes per batch")
    p.add_argument("--concurrency", type=int, default=4, help="batch requests in flight")
    p.add_argument("--cuits", type=int, default=50, help="issuing CUITs of the envelopes")
    p.add_argument("--singles", type=int, default=1000, help="POST /v1/invoices requests")
    p.add_argument("--healthz", type=int, default=1000, help="GET /healthz requests")
    p.add_argument("--log-level", default="INFO", help="the intake's TFQ_LOG_LEVEL")
    ns = p.parse_args(argv)
    figures = run(ns)
    return 0 if figures["intake_batch_envelopes_per_s"] >= TARGET_ENVELOPES_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
