"""Benchmark of the web console's batch page with a big batch, against the JSON API.

    python -m ops.bench.console                  # 10,000 jobs over 1,000 CUITs, 30 requests
    python -m ops.bench.console --jobs 500 --cuits 50 --requests 5 --no-profile

Under a fresh key prefix on the local Redis (`ops.testkit.localredis`): one batch of
`--jobs` copies of the sample envelopes dealt over `--cuits` CUITs (`InvoiceQueue.submit_many`,
no worker: the jobs stay queued), an operator (all CUITs) and a `[[client]]` bearer token
for the same CUITs, and the intake app (`producers.http.app.create_app`) served by uvicorn
in a thread. Two scenarios: `queued` (every job queued) and `issued` (half the lanes leased
and half of their jobs issued through the store's own scripts, then released).

Each scenario times, `--requests` times after `--warmups` (one at a time, one connection):
- `GET /console/batches/{name}` (the whole page) and its htmx fragment (`HX-Request: true`);
- `GET /console/batches` (the batches list);
- baselines, same run: `GET /v1/batches/{name}` (the JSON of the same batch) and `GET /healthz`.
`batch_page_p95_ms` (target <= 300 ms at 10,000 jobs / 1,000 CUITs) and `batch_page_vs_api`
(page median / API median: what the page costs over reading the batch). Then a cProfile of a
few page renders in this thread (straight through the ASGI app, its sync handlers run
inline) prints the top functions. Prints a table and one JSON line; removes its keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import requests

from ops.bench.kit import JobMaker, make_cuits, percentile, unlink_prefix
from ops.testkit.harness import serving, unique_prefix
from ops.testkit.localredis import ensure
from producers.client import InvoiceQueue
from producers.console.passwords import hash_password
from producers.http.app import create_app
from producers.http.auth import token_sha256
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.store.jobs import JobStatus
from worker.tenants import Tenants

TARGET_P95_MS = 300.0
BATCH = "bench-console"
OPERATOR, PASSWORD = "bench", "bench-console-password-42"
TOKEN = "bench-console-token"
CUIT_START = 46_000_000  # apart from the other benchmarks' CUITs


@dataclass(frozen=True)
class Sizes:
    jobs: int = 10_000
    cuits: int = 1_000
    requests: int = 30
    warmups: int = 3
    profile: int = 3  # page renders under cProfile (0: none)
    issued: bool = True  # also the scenario with part of the batch issued


FULL = Sizes()
QUICK = Sizes(jobs=500, cuits=50, requests=5, warmups=1, profile=1)


# --- the app -----------------------------------------------------------------------------------


def tenants_for(cuits: list[str]) -> Tenants:
    return Tenants.from_dict(
        {
            "operator": [
                {
                    "name": OPERATOR,
                    "password_hash": hash_password(PASSWORD, n=2**14),
                    "cuits": ["*"],
                }
            ],
            "client": [{"name": "bench", "token_sha256": token_sha256(TOKEN), "cuits": cuits}],
        }
    )


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    if not found:
        raise RuntimeError("no csrf token on the login page")
    return found.group(1)


def login(url: str) -> requests.Session:
    http = requests.Session()
    csrf = _csrf(http.get(f"{url}/console/login", timeout=10).text)
    form = {"name": OPERATOR, "password": PASSWORD, "csrf": csrf, "next": "/batches"}
    reply = http.post(f"{url}/console/login", data=form, allow_redirects=False, timeout=30)
    if reply.status_code != 303:
        raise RuntimeError(f"console login: {reply.status_code}")
    return http


# --- the batch -----------------------------------------------------------------------------------


def fill(queue: InvoiceQueue, cuits: list[str], jobs: int) -> None:
    """`jobs` sample envelopes dealt round `cuits` (each CUIT's first, then second, ...)."""
    maker = JobMaker(argentina_today(), callback_url=None)
    envelopes = [
        maker.make(cuits[i % len(cuits)], f"CON-{i:06d}", maker.name(i // len(cuits)))
        for i in range(jobs)
    ]
    report = queue.submit_many(envelopes, batch=BATCH)
    if report.refused or len(report.accepted) != jobs:
        raise RuntimeError(f"refused jobs: {report.refused[:3]}")


def issue_part(queue: InvoiceQueue, lanes_share: float = 0.5, jobs_share: float = 0.5) -> int:
    """Lease `lanes_share` of the lanes as a worker would, record `jobs_share` of each one's
    jobs issued (the `transition` script), release them: what a run leaves half way."""
    store = queue.store
    cuits = store.batch_cuits(BATCH)
    claims = store.claim(max(1, int(len(cuits) * lanes_share)), 300.0, 0.0, "bench-console")
    issued = 0
    for cuit, token in claims.leases:
        head = store.head(cuit, 10_000)
        for job_id in head[: int(len(head) * jobs_share)]:
            store.transition(cuit, token, job_id, JobStatus.ISSUED, {"numero": issued + 1})
            issued += 1
        store.release(cuit, token, not_before=0.0, gap_seconds=queue.settings.cuit_gap_seconds)
    return issued


# --- measuring -----------------------------------------------------------------------------------


def timed(call: Callable[[], requests.Response], n: int, warmups: int) -> dict[str, float]:
    for _ in range(warmups):
        call().raise_for_status()
    ms: list[float] = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        reply = call()
        ms.append(1000 * (time.perf_counter() - t0))
        reply.raise_for_status()
        size = len(reply.content)
    return {
        "median_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1),
        "bytes": size,
    }


def measure(url: str, sizes: Sizes) -> dict[str, dict[str, float]]:
    console = login(url)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {TOKEN}"
    fragment = {"HX-Request": "true"}
    calls: dict[str, Callable[[], requests.Response]] = {
        "batch_page": lambda: console.get(f"{url}/console/batches/{BATCH}", timeout=60),
        "batch_fragment": lambda: console.get(
            f"{url}/console/batches/{BATCH}", headers=fragment, timeout=60
        ),
        "batches_page": lambda: console.get(f"{url}/console/batches", timeout=60),
        "api_batch": lambda: api.get(f"{url}/v1/batches/{BATCH}", timeout=60),
        "healthz": lambda: api.get(f"{url}/healthz", timeout=60),
    }
    return {name: timed(call, sizes.requests, sizes.warmups) for name, call in calls.items()}


@contextlib.contextmanager
def sync_inline() -> Iterator[None]:
    """FastAPI's sync handlers and dependencies run in this thread (so cProfile sees them)."""

    async def inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    modules = (fastapi.routing, fastapi.dependencies.utils)
    saved = [getattr(m, "run_in_threadpool") for m in modules]  # noqa: B009
    for m in modules:
        setattr(m, "run_in_threadpool", inline)  # noqa: B010
    try:
        yield
    finally:
        for m, original in zip(modules, saved, strict=True):
            setattr(m, "run_in_threadpool", original)  # noqa: B010


async def _asgi_get(app: Any, path: str, cookie: str) -> int:
    """GET `path` straight through the ASGI app in this thread; the reply's status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"127.0.0.1"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


def profile(app: Any, url: str, renders: int, top: int = 20) -> tuple[str, list[dict[str, Any]]]:
    """cProfile of `renders` full batch pages through the app in this thread (the session
    of a login over `url`): the printed top functions (by own time and by cumulative
    time) and the top own-time rows."""
    cookie = "; ".join(f"{c.name}={c.value}" for c in login(url).cookies)
    path = f"/console/batches/{BATCH}"

    async def go() -> cProfile.Profile:
        if (status := await _asgi_get(app, path, cookie)) != 200:  # warm
            raise RuntimeError(f"profiled page: {status}")
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(renders):
            await _asgi_get(app, path, cookie)
        prof.disable()
        return prof

    with sync_inline():
        prof = asyncio.run(go())
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    rows: list[dict[str, Any]] = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, fn), (_, calls, tottime, cumtime, _) in sorted(
        raw.items(), key=lambda kv: -kv[1][2]
    )[:10]:
        rows.append({"function": f"{file.rsplit('/', 2)[-1]}:{line}({fn})", "calls": calls,
                     "own_ms_per_page": round(1000 * tottime / renders, 1),
                     "cum_ms_per_page": round(1000 * cumtime / renders, 1)})  # fmt: skip
    return out.getvalue(), rows


# --- a run ---------------------------------------------------------------------------------------


def run(redis_url: str, sizes: Sizes) -> tuple[dict[str, Any], str]:
    """Figures of every scenario (JSON-ready) and the profile's text."""
    prefix = unique_prefix("bench-console")
    cuits = make_cuits(sizes.cuits, start=CUIT_START)
    settings = Settings(redis_url=redis_url, key_prefix=prefix)
    queue = InvoiceQueue(settings=settings, key_prefix=prefix)
    figures: dict[str, Any] = {"jobs": sizes.jobs, "cuits": sizes.cuits,
                               "requests": sizes.requests}  # fmt: skip
    profile_text = ""
    try:
        t0 = time.perf_counter()
        fill(queue, cuits, sizes.jobs)
        figures["fill_seconds"] = round(time.perf_counter() - t0, 2)
        app = create_app(settings, queue=queue, tenants=tenants_for(cuits))
        with serving(app) as url:
            figures["queued"] = measure(url, sizes)
            if sizes.issued:
                figures["issued_jobs"] = issue_part(queue)
                figures["issued"] = measure(url, sizes)
            if sizes.profile:
                profile_text, figures["profile_top"] = profile(app, url, sizes.profile)
        page, api_ = figures["queued"]["batch_page"], figures["queued"]["api_batch"]
        figures["batch_page_p95_ms"] = page["p95_ms"]
        figures["batch_page_median_ms"] = page["median_ms"]
        figures["batch_page_vs_api"] = round(page["median_ms"] / max(0.01, api_["median_ms"]), 2)
        figures["api_vs_healthz"] = round(
            api_["median_ms"] / max(0.01, figures["queued"]["healthz"]["median_ms"]), 2
        )
        worst = max(
            figures[s][page]["p95_ms"]
            for s in ("queued", "issued")
            if s in figures
            for page in ("batch_page", "batch_fragment")
        )
        figures["batch_page_p95_worst_ms"] = worst
        figures["batch_page_ok"] = worst <= TARGET_P95_MS
    finally:
        unlink_prefix(queue.redis, prefix)
        queue.redis.close()
    return figures, profile_text


def print_table(figures: dict[str, Any]) -> None:
    print(f"console batch page: {figures['jobs']:,} jobs over {figures['cuits']:,} CUITs, "
          f"{figures['requests']} requests each (ms)")  # fmt: skip
    print(f"{'scenario':<9}{'request':<16}{'median':>9}{'p95':>9}{'max':>9}{'bytes':>10}")
    for scenario in ("queued", "issued"):
        for name, f in figures.get(scenario, {}).items():
            print(f"{scenario:<9}{name:<16}{f['median_ms']:>9.1f}{f['p95_ms']:>9.1f}"
                  f"{f['max_ms']:>9.1f}{f['bytes']:>10,}")  # fmt: skip
    ok = "yes" if figures["batch_page_ok"] else "NO"
    print(f"batch_page_p95_ms {figures['batch_page_p95_ms']}, worst page or fragment p95 "
          f"{figures['batch_page_p95_worst_ms']} (target <= {TARGET_P95_MS:.0f}: {ok}); "
          f"batch_page_vs_api {figures['batch_page_vs_api']}, "
          f"api_vs_healthz {figures['api_vs_healthz']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.bench.console", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--quick", action="store_true", help="500 jobs, 50 CUITs, 5 requests")
    p.add_argument("--jobs", type=int, help="jobs in the batch (default 10,000)")
    p.add_argument("--cuits", type=int, help="CUITs they are dealt over (default 1,000)")
    p.add_argument("--requests", type=int, help="timed requests of each kind (default 30)")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile of renders")
    p.add_argument("--no-issued", action="store_true", help="only the all-queued scenario")
    ns = p.parse_args(argv)
    sizes = QUICK if ns.quick else FULL
    sizes = Sizes(
        jobs=ns.jobs or sizes.jobs,
        cuits=ns.cuits or sizes.cuits,
        requests=ns.requests or sizes.requests,
        warmups=sizes.warmups,
        profile=0 if ns.no_profile else sizes.profile,
        issued=sizes.issued and not ns.no_issued,
    )
    figures, profile_text = run(ensure(), sizes)
    if profile_text:
        print(profile_text)
    print_table(figures)
    print(json.dumps(figures), flush=True)
    return 0 if figures["batch_page_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
