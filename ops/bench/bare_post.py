"""The bare-POST baseline: the CPU of one `facturacion/nuevo` call with nothing of tfq around it.

`capacity` divides tfq's CPU per invoicing call (every tfq process and the result backend)
by this, measured against the same sandbox in the same run, so the ratio means the same on
a quiet machine and on a busy one. The baseline is what any client must spend: `requests`
posting a ready JSON body on a kept-alive session, from a few threads, and the sandbox
answering it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import requests

from ops.bench.kit import CpuMeter, cpu_seconds
from ops.bench.sandbox import nuevo_body_template
from worker.tenants import Pdv


@dataclass(frozen=True)
class BarePost:
    calls: int
    client_ms: float  # CPU per call of the posting process
    sandbox_ms: float  # CPU per call of the sandbox

    @property
    def total_ms(self) -> float:
        return self.client_ms + self.sandbox_ms


def measure_bare_post(
    api_url: str, pdv: Pdv, sandbox_pid: int, *, calls: int, threads: int = 4, tag: str = "BARE"
) -> BarePost:
    """Post `calls` valid invoices for `pdv` (references `tag`-n) and measure the CPU spent."""
    template = nuevo_body_template(pdv)
    url = api_url.rstrip("/") + "/facturacion/nuevo"
    bodies = [template.replace(b'"REF"', b'"%s-%d"' % (tag.encode(), i), 1) for i in range(calls)]
    lock = threading.Lock()
    failures: list[str] = []

    def post_share(share: list[bytes]) -> None:
        session = requests.Session()
        session.trust_env = False
        headers = {"Content-Type": "application/json"}
        for body in share:
            reply = session.post(url, data=body, headers=headers, timeout=30)
            if reply.status_code != 200 or reply.json().get("error") != "N":
                with lock:
                    failures.append(reply.text[:200])

    shares = [bodies[i::threads] for i in range(threads)]
    pool = [threading.Thread(target=post_share, args=(s,)) for s in shares]
    own0, sandbox0 = os.times(), cpu_seconds(sandbox_pid)
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    own1, sandbox1 = os.times(), cpu_seconds(sandbox_pid)
    if failures:
        raise RuntimeError(f"bare POST baseline: {len(failures)} calls failed: {failures[0]}")
    client = (own1.user + own1.system) - (own0.user + own0.system)
    return BarePost(calls, 1000 * client / calls, 1000 * (sandbox1 - sandbox0) / calls)


# Every tfq process of a run (the dispatchers live in the workers) and the result backend.
TFQ_PROCESSES = ("workers", "callback_workers", "redis")


def cpu_ms_per_call(meter: CpuMeter, calls: int) -> float:
    """tfq's CPU per call (ms) over a CpuMeter's last start..stop."""
    busy = sum(meter.percent.get(k, 0.0) for k in TFQ_PROCESSES) / 100 * meter.seconds
    return 1000 * busy / max(1, calls)
