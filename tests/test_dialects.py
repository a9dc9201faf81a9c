"""tfq under every reading of the vendor's pages: the sandbox's dialects, end to end.

Real Redis, real worker processes, the sandbox over HTTP in each dialect
(`ops/sandbox/dialect.py`). Each behaviour quotes the page it answers to; the five
failures of issue 8 are here, each in the dialect that shows it:

1. numeracion answers the last number issued and is billed
   (`web-services-afip-api-arca/api-factura-electronica-afip-consultar-numeracion-de-comprobantes..md`);
2. "not found" worded as the sibling pages word it ("No se han encontrado comprobantes.",
   `web-services-afip-api-arca/eliminar-comprobantes-encolados.md`);
3. a data error that names a JSON block ("Debe enviar el bloque ...");
4. lotes successes nested one level deeper
   (`api-factura-electronica-afip-facturacion-ventas/api-factura-electronica-afip-api-facturacion-por-lotes.md`);
5. valid invoices refused at intake (tests/test_vendor_docs.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from ops.sandbox.dialect import PRESETS
from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from ops.testkit.ledger import audit
from ops.testkit.tenantgen import REAL_PDV, TEST_PDV, make_cuits, write_tenants
from producers.client import InvoiceQueue
from worker.metrics import queue_registry
from worker.store.keys import Keys
from worker.store.lanes import LaneStore
from worker.store.queries import lanes_doc
from worker.tenants import Tenants
from worker.tusfacturas.client import TusFacturasClient

GAP = 0.2
CUITS = make_cuits(4, prefix="27")
DIALECTS = sorted(PRESETS)
# What does not depend on a reading runs under the newest pages' only.
ONE_DIALECT = pytest.mark.parametrize("dialect", ["newest"], indirect=True)


@pytest.fixture(scope="module")
def tenants_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tenants(tmp_path_factory.mktemp("dialect-tenants") / "tenants.toml", CUITS)


@pytest.fixture(scope="module")
def afip(tenants_path: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess(tenants_path, gap_seconds=GAP, block_seconds=30) as sb:
        yield sb


@dataclass
class Run:
    sandbox: SandboxProcess
    queue: InvoiceQueue
    store: LaneStore
    env: dict[str, str]
    log: Path
    tenants: Tenants
    submitted: list[tuple[str, str]] = field(default_factory=list)

    def worker(self) -> WorkerProcess:
        return WorkerProcess(self.env, log_path=self.log, concurrency=8)

    def submit(self, envelopes: list[dict[str, Any]]) -> None:
        report = self.queue.submit_many(envelopes)
        assert not report.refused, report.refused
        self.submitted += [
            (e["cuit"], e["invoice"]["comprobante"]["external_reference"]) for e in envelopes
        ]

    def results(self) -> list[dict[str, Any]]:
        out = []
        for cuit, ref in self.submitted:
            job_id = self.queue.job_id(cuit, ref)
            status = self.queue.status(job_id) if job_id else None
            if status is not None:
                out.append(status)
        return out

    def wait_final(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        def done() -> bool:
            results = self.results()
            return len(results) == len(self.submitted) and all(
                r["status"] in ("issued", "rejected") for r in results
            )

        ok = wait_until(done, timeout, interval=0.2)
        results = self.results()
        assert ok, [(r["external_reference"], r["status"], r["last_error"]) for r in results]
        return results

    def calls(self, endpoint: str, cuit: str | None = None) -> list[dict[str, Any]]:
        return [
            c
            for c in self.sandbox.ledger()["calls"]
            if c["endpoint"] == endpoint and (cuit is None or c["cuit"] == cuit)
        ]

    def lane(self, cuit: str) -> dict[str, str]:
        return self.store.lane_state(cuit)


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(
    afip: SandboxProcess, tenants_path: Path, redis_url: str, tmp_path: Path, dialect: str
) -> Iterator[Run]:
    afip.reset()
    afip.set_config(gap_seconds=GAP, block_seconds=30, dialect=dialect)
    prefix = unique_prefix("d")
    env = worker_env(
        redis_url, afip.api_url, tenants_path, prefix=prefix, gap_seconds=GAP, batch_max=5,
        max_sends_per_job=4, max_numeracion_per_lane=3, health_probe_seconds=1,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    store = LaneStore(client, Keys(prefix))
    queue = InvoiceQueue(redis_url, key_prefix=prefix)
    yield Run(afip, queue, store, env, tmp_path / "worker.log", Tenants.load(tenants_path))
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.unlink(key)


def jobs(cuit: str, count: int, *, pdv: int = REAL_PDV, tag: str = "J") -> list[dict[str, Any]]:
    return factura_b_jobs(cuit, count, pdv=pdv, tag=tag)


def issue_outside_tfq(run: Run, cuit: str, count: int) -> list[tuple[str, str]]:
    """Invoices another program issues on our PDV before tfq starts (numbers 1..count)."""
    pdv = run.tenants.pdv(cuit, REAL_PDV)
    client = TusFacturasClient(run.sandbox.api_url)
    keys = []
    for env in jobs(cuit, count, tag="OUTSIDE"):
        time.sleep(GAP * 1.5)  # the outsider keeps AFIP's gap too
        client.nuevo(pdv, env["invoice"])
        keys.append((cuit, env["invoice"]["comprobante"]["external_reference"]))
    time.sleep(GAP * 1.5)
    return keys


# --- 1. numbering under both readings of numeracion ----------------------------------------


def test_numbering_is_right_under_every_reading(run: Run, dialect: str) -> None:
    """numeracion's N is the next number (older pages) or the last issued (newest page):
    free queries tell which, on a fresh PDV (N = 0 or 1) and one with invoices already."""
    fresh, used = CUITS[0], CUITS[1]
    outside = issue_outside_tfq(run, used, 3)
    envelopes = jobs(fresh, 7) + jobs(used, 7) + jobs(fresh, 2, pdv=TEST_PDV)
    with run.worker():
        run.submit(envelopes)
        results = run.wait_final()
    assert {r["status"] for r in results} == {"issued"}
    numbers = {r["external_reference"]: r["numero"] for r in results}
    assert [numbers[f"J-{used[-4:]}-{REAL_PDV}-{i:03d}"] for i in range(7)] == list(range(4, 11))
    result = audit(run.sandbox.ledger(), outside + run.submitted, gap_seconds=GAP)
    assert result.clean, result
    # numeracion is billed on the newest page: once per CUIT + PDV + tipo, no more.
    assert len(run.calls("facturacion/numeracion")) == 3
    assert not [c for c in run.calls("facturacion/lotes") if c["outcome"] != "ok"]
    assert not [c for c in run.calls("facturacion/nuevo") if c["outcome"] != "ok"]


# --- 2. not found, in every wording ---------------------------------------------------------


def test_lost_replies_are_reconciled_whatever_not_found_looks_like(run: Run) -> None:
    """Calls that never reach "AFIP" (dropped before commit look the same to us as after)
    are reconciled with a free query; its "not found" must be read in every wording."""
    run.env["TFQ_API_TIMEOUT_SECONDS"] = "0.4"
    run.sandbox.set_faults(drop_after_commit={"rate": 0.3}, error_5xx={"rate": 0.2})
    envelopes = jobs(CUITS[0], 8, tag="L") + jobs(CUITS[1], 8, tag="L")
    with run.worker():
        run.submit(envelopes)
        time.sleep(2)
        run.sandbox.set_faults(drop_after_commit={"rate": 0}, error_5xx={"rate": 0})
        results = run.wait_final(timeout=90)
    assert {r["status"] for r in results} == {"issued"}
    result = audit(run.sandbox.ledger(), run.submitted, gap_seconds=GAP)
    assert result.clean, result
    assert not [c for c in run.calls("facturacion/numeracion") if c["outcome"] != "ok"]


# --- 3. one tenant's data error and one tenant's trouble stay theirs ------------------------


def test_a_data_error_naming_a_block_rejects_only_that_job(run: Run, dialect: str) -> None:
    """ "Debe enviar el bloque ..." (the catalogue dialect's AFIP refusal of the first job)
    is that invoice's data error: its CUIT's later jobs are issued, no lane pauses."""
    if PRESETS[dialect].texts != "catalogue":
        pytest.skip("the block-naming refusal is the catalogue's wording")
    run.sandbox.set_faults(reject_ref_pattern=r"^BAD-")
    bad = jobs(CUITS[2], 1, tag="BAD")
    good = jobs(CUITS[2], 5, tag="OK")
    with run.worker():
        run.submit(bad + good)
        results = run.wait_final()
    assert results[0]["status"] == "rejected"
    assert "bloque" in " ".join(results[0]["errors"]) or results[0]["errors"]
    assert {r["status"] for r in results[1:]} == {"issued"}
    assert "paused" not in run.lane(CUITS[2])


@ONE_DIALECT
def test_one_tenants_certificate_error_pauses_only_its_lane(run: Run) -> None:
    """errores-comunes: "No se puede establecer la comunicación con ARCA" is an expired or
    misconfigured certificate: that tenant's configuration, not a global outage."""
    sick, well = CUITS[0], CUITS[1]
    run.sandbox.set_faults(cuit_errors={sick: "No se puede establecer la comunicación con ARCA"})
    with run.worker():
        run.submit(jobs(sick, 2, tag="S") + jobs(well, 4, tag="W"))
        assert wait_until(lambda: "paused" in run.lane(sick), 20)
        wait_until(
            lambda: sum(r["status"] == "issued" for r in run.results()) == 4, 30, interval=0.2
        )
        results = {r["external_reference"]: r for r in run.results()}
    assert all(results[f"W-{well[-4:]}-{REAL_PDV}-{i:03d}"]["status"] == "issued" for i in range(4))
    assert "certificate" in run.lane(sick)["paused"]
    assert not run.store.down()


@ONE_DIALECT
def test_afip_down_seen_by_one_cuit_waits_only_there_until_a_quorum_sees_it(run: Run) -> None:
    """TusFacturas' "impediremos que factures por un lapso de 12 minutos" on one CUIT's
    call is that CUIT's word; every lane waits once two CUITs have seen it."""
    afip_down = (
        "Los servicios de facturacion de AFIP estan presentando errores. Para evitar "
        "inconsistencias, impediremos que factures por un lapso de 12 minutos."
    )
    first, second, other = CUITS[0], CUITS[1], CUITS[2]
    run.sandbox.set_faults(cuit_errors={first: afip_down})
    # A health check would lift the pause at once: keep estado_servicios saying "down".
    run.env["TFQ_HEALTH_PROBE_SECONDS"] = "3600"
    with run.worker():
        run.submit(jobs(first, 1, tag="A") + jobs(other, 2, tag="O"))
        assert wait_until(lambda: "paused" in run.lane(first), 20)
        assert wait_until(lambda: len(run.sandbox.ledger()["issued"]) == 2, 20)
        assert not run.store.down(), "one CUIT's sighting opened the global window"
        run.sandbox.set_faults(cuit_errors={second: afip_down})
        run.submit(jobs(second, 1, tag="B"))
        assert wait_until(lambda: bool(run.store.down()), 20)


# --- 4. lotes in both shapes, each item checked ---------------------------------------------


def test_lotes_are_paid_once_in_either_shape(run: Run) -> None:
    envelopes = jobs(CUITS[3], 10, tag="B")
    with run.worker():
        run.submit(envelopes)
        results = run.wait_final()
    assert {r["status"] for r in results} == {"issued"}
    assert [r["numero"] for r in results] == list(range(1, 11))
    lotes = run.calls("facturacion/lotes")
    assert len(lotes) == 2, lotes  # 10 jobs, batches of 5: each paid once
    assert sum(c["invoices"] for c in lotes) == 10
    assert not run.calls("facturacion/nuevo")


# --- the spend guard: every loop on a paid endpoint has a bound ------------------------------


def _metric(run: Run, name: str) -> float:
    for family in queue_registry(run.store).collect():
        for sample in family.samples:
            if sample.name in (name, f"{name}_total"):
                return float(sample.value)
    raise AssertionError(name)


@ONE_DIALECT
def test_a_job_that_cannot_get_an_answer_pauses_its_lane_at_the_bound(run: Run) -> None:
    """5xx on every invoicing call: each one counts against the plan. After
    TFQ_MAX_SENDS_PER_JOB calls the lane pauses, names the job, and calls nothing more."""
    cuit = CUITS[0]
    run.sandbox.set_faults(error_5xx={"rate": 1.0})
    (env,) = jobs(cuit, 1, tag="G")
    with run.worker():
        run.submit([env])
        assert wait_until(lambda: "paused" in run.lane(cuit), 60)
        job_id = run.queue.job_id(cuit, env["invoice"]["comprobante"]["external_reference"])
        reason = run.lane(cuit)["paused"]
        assert "spend guard" in reason
        assert job_id
        assert job_id in reason
        sent = len(run.calls("facturacion/nuevo", cuit))
        assert sent == 4
        time.sleep(2)
        assert len(run.calls("facturacion/nuevo", cuit)) == sent  # costs nothing while it waits
        assert _metric(run, "tfq_lanes_spend_paused") == 1
        rows = {row["cuit"]: row for row in lanes_doc(run.store, limit=50)["rows"]}  # `tfq lanes`
        assert job_id in str(rows[cuit])
        # A human fixes the cause and resumes: a fresh bound.
        run.sandbox.set_faults(error_5xx={"rate": 0.0})
        assert run.store.resume(cuit)
        results = run.wait_final()
    assert results[0]["status"] == "issued"


@ONE_DIALECT
def test_numeracion_that_never_answers_pauses_its_lane_at_the_bound(run: Run) -> None:
    """numeracion is billed on the newest page: a lane asks it at most
    TFQ_MAX_NUMERACION_PER_LANE times between confirmed issues."""
    cuit = CUITS[1]
    run.sandbox.set_faults(error_5xx={"rate": 1.0, "endpoints": ["facturacion/numeracion"]})
    (env,) = jobs(cuit, 1, tag="N")
    with run.worker():
        run.submit([env])
        assert wait_until(lambda: "paused" in run.lane(cuit), 60)
        assert "spend guard" in run.lane(cuit)["paused"]
        asked = len(run.calls("facturacion/numeracion", cuit))
        assert asked == 3
        time.sleep(2)
        assert len(run.calls("facturacion/numeracion", cuit)) == asked
    assert not run.calls("facturacion/nuevo", cuit)


@ONE_DIALECT
def test_a_numbering_that_never_agrees_never_loops(run: Run) -> None:
    """10016 on every send, while the free query says the number is not issued: the old
    loop was 10016, "not found", resync to the same number, the same send, for ever. Now:
    the same number once more, then one numeracion, then the job is rejected with AFIP's
    words (its date is the only thing left that 10016 can mean)."""
    cuit = CUITS[2]
    run.sandbox.set_faults(sequence_error={"rate": 1.0})
    (env,) = jobs(cuit, 1, tag="R")
    with run.worker():
        run.submit([env])
        results = run.wait_final()
    assert results[0]["status"] == "rejected"
    assert any("10016" in e for e in results[0]["errors"])
    assert len(run.calls("facturacion/nuevo", cuit)) == 2
    assert len(run.calls("facturacion/numeracion", cuit)) == 2


# --- asked-for numbers -----------------------------------------------------------------------


@ONE_DIALECT
def test_a_requested_numero_is_issued_only_when_it_is_the_next(run: Run) -> None:
    cuit = CUITS[3]
    first, second = jobs(cuit, 2, tag="Q")
    first["invoice"]["comprobante"]["numero"] = 1
    second["invoice"]["comprobante"]["numero"] = 7
    with run.worker():
        run.submit([first, second])
        results = run.wait_final()
    assert (results[0]["status"], results[0]["numero"]) == ("issued", 1)
    assert results[1]["status"] == "rejected"
    assert "numero 7 was asked for" in results[1]["errors"][0]


# --- unknown texts -------------------------------------------------------------------------


def test_an_unknown_error_after_the_invoice_was_issued_is_found_not_resent(run: Run) -> None:
    """The newest lotes page: "es posible de que el comprobante se haya procesado
    correctamente ... a pesar de la falla reportada". An error text no page catalogues is
    reconciled: found issued, recorded issued, never sent again."""
    run.env["TFQ_BATCH_MAX"] = "1"
    run.sandbox.set_faults(unknown_error_after_commit={"next": 2})
    envelopes = jobs(CUITS[0], 3, tag="U")
    with run.worker():
        run.submit(envelopes)
        results = run.wait_final()
    assert {r["status"] for r in results} == {"issued"}
    result = audit(run.sandbox.ledger(), run.submitted, gap_seconds=GAP)
    assert result.clean, result
    assert len(run.calls("facturacion/nuevo")) == 3


@ONE_DIALECT
def test_an_unknown_error_on_a_whole_batch_sends_again_what_was_not_issued(run: Run) -> None:
    """A batch's unknown answer says nothing of each invoice. After a partial batch (the
    second invoice refused, so "AFIP" stops there), the ones found are issued and the
    others are sent again: the refused one is refused again, the rest issued."""
    cuit = CUITS[1]
    run.sandbox.set_faults(reject_ref_pattern=r"^BAD-", unknown_error_after_commit={"next": 1})
    envelopes = jobs(cuit, 1, tag="G1") + jobs(cuit, 1, tag="BAD") + jobs(cuit, 3, tag="G3")
    with run.worker():
        run.submit(envelopes)
        results = run.wait_final()
    assert [r["status"] for r in results] == ["issued", "rejected", "issued", "issued", "issued"]
    assert [r["numero"] for r in results if r["status"] == "issued"] == [1, 2, 3, 4]
    bad = [(cuit, envelopes[1]["invoice"]["comprobante"]["external_reference"])]
    result = audit(run.sandbox.ledger(), run.submitted, gap_seconds=GAP, excused=bad)
    assert result.clean, result
