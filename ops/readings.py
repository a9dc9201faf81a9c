"""The five first-day failures of issue 8, each against the sandbox in the dialect that
shows it, with the figures that tell whether tfq handles that reading of the pages.

    python -m ops.readings                      # this tree's worker
    python -m ops.readings --worker-tree DIR    # the worker of another checkout (before/after)

Scenarios (each prints one JSON line):

- `numeracion-last`: numeracion answers the last number issued (newest page). 5 CUITs x 10
  jobs on fresh PDVs: issued within the time limit, numeracion calls.
- `not-found-wording`: "No se han encontrado comprobantes." for a missing invoice. 12 CUITs x
  10 jobs while 20 % of invoicing calls fail with a 5xx (ambiguous: reconciled): issued, stuck.
- `block-data-error`: the catalogue's data error that names a JSON block, on the first job of
  each of 5 CUITs (10 jobs each): issued, rejected, lanes paused.
- `lotes-nested`: lotes successes nested one level deeper. 5 CUITs x 20 jobs, batches of 20:
  issued, invoicing calls (one per batch is ideal).
- `intake`: three invoices the vendor's examples would send: how many the intake refuses.

The sandbox, Redis and the job submission are this tree's; only the worker process comes
from `--worker-tree`, so a worker from before a change runs against today's sandbox.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from ops.sandbox.server import SandboxProcess
from ops.sandbox.texts import MSGS_REJECTED_CATALOGUE
from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import WorkerProcess, from_tree, unique_prefix, wait_until, worker_env
from ops.testkit.localredis import free_port, start_private, stop_pid
from ops.testkit.tenantgen import REAL_PDV, make_cuits, write_tenants
from producers.client import InvoiceQueue

GAP = 0.5

# The three refused-at-intake cases of the issue, as tfq's validate_envelope sees them.
INTAKE_PROBE = r"""
import copy, json, sys
from ops.testkit.examples import load_example
from worker.invoice.envelope import validate_envelope
from worker.invoice.rules import argentina_today
from worker.errors import InvalidJob
base = load_example("factura_b", argentina_today())
a = copy.deepcopy(base)
a["invoice"]["comprobante"]["idioma"] = "1"
b = copy.deepcopy(base)
b["invoice"]["comprobante"]["detalle"][0]["incluir_lista_precios_venta"] = "N"
c = copy.deepcopy(base)
comp = c["invoice"]["comprobante"]
item = comp["detalle"][0]
item["cantidad"] = 1
item["producto"]["alicuota"] = 10.5
item["producto"]["precio_unitario_sin_iva"] = 100
comp["detalle"] = [item]
comp["bonificacion"] = 10
comp["total"] = 99.45
cases = [a, b, c]
refused = []
for case in cases:
    try:
        validate_envelope(case)
    except InvalidJob as exc:
        refused.append(str(exc)[:200])
print(json.dumps({"cases": len(cases), "refused": len(refused), "why": refused}))
"""


def jobs(cuit: str, count: int, tag: str) -> list[dict[str, Any]]:
    return factura_b_jobs(cuit, count, pdv=REAL_PDV, tag=tag)


class Scene:
    def __init__(self, workdir: Path, worker_tree: Path | None, cuits: int, dialect: str):
        self.cuits = make_cuits(cuits, prefix="30", start=20_000_000)
        tenants = write_tenants(workdir / f"tenants-{dialect}.toml", self.cuits)
        port = free_port()
        self.redis_url, self.redis_pid = start_private(port, appendonly=False)
        self.sandbox = SandboxProcess(tenants, gap_seconds=GAP, block_seconds=30, dialect=dialect)
        self.sandbox.start()
        prefix = unique_prefix("r")
        self.env = worker_env(
            self.redis_url, self.sandbox.api_url, tenants, prefix=prefix, gap_seconds=GAP,
            api_timeout_seconds=2, batch_max=1,
        )  # fmt: skip
        self.tree = worker_tree
        self.queue = InvoiceQueue(self.redis_url, key_prefix=prefix)
        self.log = workdir / f"worker-{dialect}.log"
        self.refs: list[tuple[str, str]] = []

    def submit(self, envelopes: list[dict[str, Any]]) -> None:
        report = self.queue.submit_many(envelopes)
        assert not report.refused, report.refused
        self.refs += [
            (e["cuit"], e["invoice"]["comprobante"]["external_reference"]) for e in envelopes
        ]

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for cuit, ref in self.refs:
            job_id = self.queue.job_id(cuit, ref)
            status = (self.queue.status(job_id) or {}).get("status") if job_id else None
            counts[str(status)] = counts.get(str(status), 0) + 1
        return counts

    def calls(self, endpoint: str) -> int:
        return sum(1 for c in self.sandbox.ledger()["calls"] if c["endpoint"] == endpoint)

    def paused_lanes(self) -> int:
        client = redis.Redis.from_url(self.redis_url)
        return sum(
            1 for c in self.cuits if client.hget(self.queue.store.keys.lane_state(c), "paused")
        )

    def run(self, seconds: float, until: Callable[[], bool]) -> float:
        started = time.monotonic()
        with WorkerProcess(self.env, concurrency=16, log_path=self.log, tree=self.tree):
            wait_until(until, seconds, interval=0.5)
        return round(time.monotonic() - started, 1)

    def close(self) -> None:
        self.sandbox.stop()
        stop_pid(self.redis_pid)


def _final(scene: Scene) -> Callable[[], bool]:
    return lambda: (
        sum(scene.statuses().get(s, 0) for s in ("issued", "rejected")) == len(scene.refs)
    )


def numeracion_last(workdir: Path, tree: Path | None) -> dict[str, Any]:
    scene = Scene(workdir, tree, 5, "numeracion=last")
    try:
        scene.submit([e for c in scene.cuits for e in jobs(c, 10, "N")])
        seconds = scene.run(120, _final(scene))
        return {
            "jobs": len(scene.refs),
            "issued": scene.statuses().get("issued", 0),
            "numeracion_calls": scene.calls("facturacion/numeracion"),
            "invoicing_calls": scene.calls("facturacion/nuevo"),
            "seconds": seconds,
        }
    finally:
        scene.close()


def not_found_wording(workdir: Path, tree: Path | None) -> dict[str, Any]:
    scene = Scene(workdir, tree, 12, "not_found=0")
    try:
        scene.sandbox.set_faults(error_5xx={"rate": 0.2})
        scene.submit([e for c in scene.cuits for e in jobs(c, 10, "F")])
        seconds = scene.run(180, _final(scene))
        st = scene.statuses()
        return {"jobs": len(scene.refs), "issued": st.get("issued", 0),
                "stuck": len(scene.refs) - st.get("issued", 0) - st.get("rejected", 0),
                "paused_lanes": scene.paused_lanes(), "seconds": seconds}  # fmt: skip
    finally:
        scene.close()


def block_data_error(workdir: Path, tree: Path | None) -> dict[str, Any]:
    scene = Scene(workdir, tree, 5, "texts=catalogue")
    try:
        # The catalogue's refusal that names a JSON block, for the first job of each CUIT.
        scene.sandbox.set_faults(
            reject_ref_pattern=r"^BAD-", reject_ref_text=MSGS_REJECTED_CATALOGUE[0]
        )
        for cuit in scene.cuits:
            scene.submit(jobs(cuit, 1, "BAD") + jobs(cuit, 9, "OK"))
        seconds = scene.run(90, _final(scene))
        st = scene.statuses()
        return {"jobs": len(scene.refs), "issued": st.get("issued", 0),
                "rejected": st.get("rejected", 0), "paused_lanes": scene.paused_lanes(),
                "seconds": seconds}  # fmt: skip
    finally:
        scene.close()


def lotes_nested(workdir: Path, tree: Path | None) -> dict[str, Any]:
    scene = Scene(workdir, tree, 5, "lotes=nested")
    scene.env["TFQ_BATCH_MAX"] = "20"
    try:
        scene.submit([e for c in scene.cuits for e in jobs(c, 20, "L")])
        seconds = scene.run(120, _final(scene))
        return {"jobs": len(scene.refs), "issued": scene.statuses().get("issued", 0),
                "batches_needed": len(scene.cuits), "lotes_calls": scene.calls("facturacion/lotes"),
                "nuevo_calls": scene.calls("facturacion/nuevo"), "seconds": seconds}  # fmt: skip
    finally:
        scene.close()


def intake(workdir: Path, tree: Path | None) -> dict[str, Any]:
    del workdir
    root = tree or Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, *from_tree(root, INTAKE_PROBE)], capture_output=True, text=True,
        check=True, cwd=root,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


SCENARIOS: dict[str, Callable[[Path, Path | None], dict[str, Any]]] = {
    "numeracion-last": numeracion_last,
    "not-found-wording": not_found_wording,
    "block-data-error": block_data_error,
    "lotes-nested": lotes_nested,
    "intake": intake,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.readings", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--worker-tree", type=Path, default=None, help="run the worker from this checkout"
    )
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run these only")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tfq-readings-"))
    for name in args.only or SCENARIOS:
        figures = SCENARIOS[name](workdir, args.worker_tree)
        print(
            json.dumps(
                {"scenario": name, "worker": str(args.worker_tree or "this tree"), **figures}
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
