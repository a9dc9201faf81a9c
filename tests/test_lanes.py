"""The lane scripts against a real Redis: claims, fencing, gap, pacing, pauses, reaping."""

from __future__ import annotations

import json
import time
from unittest.mock import ANY

import pytest

from worker.dispatcher import Dispatcher
from worker.store.jobs import InvalidBatchName, JobResult, NewJob, check_batch_name
from worker.store.keys import Stat
from worker.store.lanes import LaneStore
from worker.store.scripts import Enqueued, Released
from worker.tusfacturas.client import REGENERAR_PDF

CUIT_A = "20111111112"
CUIT_B = "20267565393"


def job(n: int, cuit: str = CUIT_A, ref: str | None = None) -> NewJob:
    return NewJob(f"job{cuit}{n}", cuit, ref or f"REF-{n}", 679, "FACTURA B", b"x")


def claim_all(store: LaneStore, lease: float = 30.0) -> dict[str, str]:
    return dict(store.claim(100, lease, 0.0, "test").leases)


def test_enqueue_is_idempotent_per_key(store: LaneStore) -> None:
    first = store.enqueue([job(1), job(2)], batch="b1")
    assert [e.outcome for e in first] == ["created", "created"]
    again = store.enqueue([job(3, ref="REF-1")], batch="b1")
    assert again == [Enqueued("duplicate", f"job{CUIT_A}1", "")]
    # The same reference under another CUIT is another invoice.
    assert not store.enqueue([job(4, cuit=CUIT_B, ref="REF-1")])[0].duplicate
    assert store.depth(CUIT_A) == 2
    assert store.r.hget(store.keys.batch("b1"), "total") == b"2"


@pytest.mark.parametrize(
    "name", ["a|b", "nightly/2026", "-lead", "x" * 201, "sp ace", "ñandú", "new\nline"]
)
def test_one_batch_name_rule_at_the_store_door(store: LaneStore, name: str) -> None:
    with pytest.raises(InvalidBatchName, match="batch: 1 to 200 letters"):
        store.enqueue([job(1)], batch=name)
    assert store.depth(CUIT_A) == 0  # nothing was queued


def test_batch_names_that_pass(store: LaneStore) -> None:
    for i, name in enumerate(["nightly-2026-11-23", "a", "shop@host:run.1_b", "9" * 200]):
        assert store.enqueue([job(i, ref=f"N{i}")], batch=name)[0].outcome == "created"
    assert check_batch_name("") == ""  # no batch


def test_resubmission_after_rejection_links_the_jobs(store: LaneStore) -> None:
    store.enqueue([job(1)])
    token = claim_all(store)[CUIT_A]
    assert store.transition(CUIT_A, token, f"job{CUIT_A}1", "rejected", {"errors": "[]"})
    store.release(CUIT_A, token, not_before=0, gap_seconds=0)
    (enqueued,) = store.enqueue([job(9, ref="REF-1")])
    assert (enqueued.outcome, enqueued.previous_job_id) == ("created", f"job{CUIT_A}1")
    assert store.job(f"job{CUIT_A}1")["next"] == enqueued.job_id  # type: ignore[index]


def test_claim_leases_with_increasing_fencing_tokens(store: LaneStore) -> None:
    store.enqueue([job(1), job(1, cuit=CUIT_B)])
    claims = claim_all(store)
    assert set(claims) == {CUIT_A, CUIT_B}
    assert int(claims[CUIT_A]) != int(claims[CUIT_B])
    assert claim_all(store) == {}  # leased lanes are not claimed twice


def test_stale_token_can_write_nothing(store: LaneStore) -> None:
    store.enqueue([job(1)])
    old = claim_all(store, lease=0.2)[CUIT_A]
    time.sleep(0.3)
    assert store.reap() == [CUIT_A]
    new = claim_all(store)[CUIT_A]
    assert new != old
    assert not store.transition(CUIT_A, old, f"job{CUIT_A}1", "issued")
    assert store.release(CUIT_A, old, not_before=0, gap_seconds=0) is None
    stale = store.presend(
        CUIT_A, old, gap_seconds=0, account="acct", min_interval_seconds=0, max_wait_seconds=1,
        jobs=[],
    )  # fmt: skip
    assert stale.verdict == "stale"
    assert store.job(f"job{CUIT_A}1")["status"] == "queued"  # type: ignore[index]


def test_gap_is_measured_between_sends(store: LaneStore) -> None:
    store.enqueue([job(1), job(2)])
    token = claim_all(store)[CUIT_A]
    go = store.presend(
        CUIT_A, token, gap_seconds=5, account="acct", min_interval_seconds=0, max_wait_seconds=1,
        jobs=[(f"job{CUIT_A}1", 1, "fp")],
    )  # fmt: skip
    assert go.go
    rec = store.job(f"job{CUIT_A}1")
    assert rec is not None
    assert (rec["status"], rec["numero"], rec["attempts"]) == ("sending", "1", "1")
    store.transition(CUIT_A, token, f"job{CUIT_A}1", "issued")
    released = store.release(CUIT_A, token, not_before=0, gap_seconds=5)
    assert released is not None
    assert released.depth == 1
    assert released.next_at == pytest.approx(go.value + 5, abs=0.01)  # type: ignore[operator]
    assert claim_all(store) == {}  # not before the gap
    # Even a lane claimed early is refused at the last check.
    store.r.zadd(store.keys.ready, {CUIT_A: 0})
    token = claim_all(store)[CUIT_A]
    early = store.presend(
        CUIT_A, token, gap_seconds=5, account="acct", min_interval_seconds=0, max_wait_seconds=1,
        jobs=[(f"job{CUIT_A}2", 2, "fp")],
    )  # fmt: skip
    assert early.verdict == "early"
    assert store.job(f"job{CUIT_A}2")["status"] == "queued"  # type: ignore[index]


def test_account_pacing_is_shared_by_the_accounts_lanes(store: LaneStore) -> None:
    store.enqueue([job(1), job(1, cuit=CUIT_B)])
    claims = claim_all(store)
    kw = {"gap_seconds": 0, "account": "acct", "min_interval_seconds": 0.5, "max_wait_seconds": 1.0}
    first = store.presend(CUIT_A, claims[CUIT_A], jobs=[], **kw)  # type: ignore[arg-type]
    second = store.presend(CUIT_B, claims[CUIT_B], jobs=[], **kw)  # type: ignore[arg-type]
    assert first.go
    assert second.verdict == "wait"
    assert 0.3 < (second.value or 0) <= 0.5


def test_queries_are_paced_with_invoicing_calls(store: LaneStore) -> None:
    """referencia-api-afip-arca.md: a 429 is too many requests per second for the account,
    queries included (numeracion now counts): a query takes the same slot as a send."""
    store.enqueue([job(1), job(1, cuit=CUIT_B)])
    claims = claim_all(store)
    kw = {"account": "acct", "min_interval_seconds": 0.5, "max_wait_seconds": 1.0}
    sent = store.presend(CUIT_A, claims[CUIT_A], gap_seconds=0, jobs=[], **kw)  # type: ignore[arg-type]
    assert sent.go
    query = store.query_turn(CUIT_B, claims[CUIT_B], "facturacion/consulta_avanzada", **kw)  # type: ignore[arg-type]
    assert query.verdict == "wait"
    time.sleep(query.value or 0)
    assert store.query_turn(CUIT_B, claims[CUIT_B], "facturacion/consulta_avanzada", **kw).go  # type: ignore[arg-type]


def test_a_paid_query_is_counted_and_bounded_per_lane(store: LaneStore) -> None:
    store.enqueue([job(1)])
    token = claim_all(store)[CUIT_A]
    kw = {
        "account": "acct",
        "min_interval_seconds": 0,
        "max_wait_seconds": 1.0,
        "counter": "numeracion_calls",
        "bound": 2,
    }
    assert store.query_turn(CUIT_A, token, "facturacion/numeracion", **kw).go  # type: ignore[arg-type]
    assert store.query_turn(CUIT_A, token, "facturacion/numeracion", **kw).go  # type: ignore[arg-type]
    spent = store.query_turn(CUIT_A, token, "facturacion/numeracion", **kw)  # type: ignore[arg-type]
    assert (spent.verdict, spent.spent_sends) == ("spent", 2)
    assert store.refund_call(CUIT_A, token, "numeracion_calls") == 1  # a maintenance refusal
    assert store.query_turn(CUIT_A, token, "facturacion/numeracion", **kw).go  # type: ignore[arg-type]
    # A confirmed issue starts the count again.
    store.set_next_number(CUIT_A, 679, "FACTURA B", 2, token, mode="confirmed")
    assert store.query_turn(CUIT_A, token, "facturacion/numeracion", **kw).go  # type: ignore[arg-type]


def test_presend_refuses_a_job_past_its_bound_of_sends(store: LaneStore) -> None:
    store.enqueue([job(1), job(2)])
    token = claim_all(store)[CUIT_A]
    kw = {
        "gap_seconds": 0,
        "account": "acct",
        "min_interval_seconds": 0,
        "max_wait_seconds": 1.0,
        "max_sends": 2,
    }
    batch = [(f"job{CUIT_A}1", 1, "fp"), (f"job{CUIT_A}2", 2, "fp")]
    assert store.presend(CUIT_A, token, jobs=batch[1:], **kw).go  # type: ignore[arg-type]
    assert store.presend(CUIT_A, token, jobs=batch[1:], **kw).go  # type: ignore[arg-type]
    spent = store.presend(CUIT_A, token, jobs=batch, **kw)  # type: ignore[arg-type]
    assert (spent.verdict, spent.spent_index, spent.spent_sends) == ("spent", 1, 2)
    store.pause(CUIT_A, "spend guard: test", spent_job=f"job{CUIT_A}2")
    store.release(CUIT_A, token, not_before=0, gap_seconds=0)
    assert claim_all(store) == {}  # paused: nothing is claimed, nothing is sent
    assert store.resume(CUIT_A)  # a fresh bound for the job it stopped at
    token = claim_all(store)[CUIT_A]
    assert store.presend(CUIT_A, token, jobs=batch, **kw).go  # type: ignore[arg-type]


def test_release_pops_finished_head_jobs(store: LaneStore) -> None:
    store.enqueue([job(1), job(2), job(3)])
    token = claim_all(store)[CUIT_A]
    store.transition(CUIT_A, token, f"job{CUIT_A}1", "issued")
    store.transition(CUIT_A, token, f"job{CUIT_A}2", "rejected")
    assert store.release(CUIT_A, token, not_before=0, gap_seconds=0) == Released(1, ANY)
    assert store.head(CUIT_A, 5) == [f"job{CUIT_A}3"]


def test_pause_holds_the_lane_and_resume_frees_it(store: LaneStore) -> None:
    store.enqueue([job(1), job(1, cuit=CUIT_B)])
    store.pause(CUIT_A, "quota used up")
    assert set(claim_all(store)) == {CUIT_B}
    assert store.depth(CUIT_A) == 1  # nothing dropped
    assert store.resume(CUIT_A)
    assert set(claim_all(store)) == {CUIT_A}


def test_timed_pause_ends_by_itself(store: LaneStore) -> None:
    store.enqueue([job(1)])
    store.pause(CUIT_A, "AFIP block", until=store.now() + 0.3)
    assert claim_all(store) == {}
    time.sleep(0.35)
    assert set(claim_all(store)) == {CUIT_A}
    assert "paused" not in store.lane_state(CUIT_A)


def test_service_down_stops_every_claim(store: LaneStore) -> None:
    store.enqueue([job(1), job(1, cuit=CUIT_B)])
    until = store.now() + 60
    store.set_down(until, "maintenance")
    claims = store.claim(100, 30, 0, "t")
    assert claims.leases == []
    assert claims.down_until == pytest.approx(until)
    store.clear_down()
    assert len(store.claim(100, 30, 0, "t").leases) == 2


def test_a_deep_lane_never_delays_a_shallow_one(store: LaneStore) -> None:
    store.enqueue([job(i) for i in range(2000)])
    store.enqueue([job(1, cuit=CUIT_B)])
    assert set(claim_all(store)) == {CUIT_A, CUIT_B}


def test_renew_keeps_a_live_lease(store: LaneStore) -> None:
    store.enqueue([job(1)])
    token = claim_all(store, lease=0.3)[CUIT_A]
    time.sleep(0.2)
    assert store.renew([(CUIT_A, token)], 0.5) == 1
    time.sleep(0.2)
    assert store.reap() == []


def test_wake_up_on_work_for_an_idle_cuit(store: LaneStore) -> None:
    store.r.delete(store.keys.wake)
    store.enqueue([job(1)])
    assert store.r.lpop(store.keys.wake) == b"1"
    store.enqueue([job(2)])  # the lane is not idle any more: no second wake-up
    assert store.r.lpop(store.keys.wake) is None


def test_a_good_health_check_lifts_the_outage_early(store: LaneStore) -> None:
    store.enqueue([job(1)])
    store.set_down(store.now() + 600, "AFIP/ARCA is down")
    published: list[str] = []
    probes: list[bool] = []

    def healthy() -> bool:
        probes.append(True)
        return True

    dispatcher = Dispatcher(
        store, lambda cuit, token: published.append(cuit), lease_seconds=30, health_check=healthy
    )
    assert dispatcher.run_once() == 0.0  # probed, found healthy, lifted the window
    assert probes == [True]
    assert store.down() == {}
    dispatcher.run_once()
    assert published == [CUIT_A]
    # A second outage right away is not probed again before health_probe_seconds.
    store.set_down(store.now() + 600, "AFIP/ARCA is down")
    dispatcher.run_once()
    assert probes == [True]


def test_a_claim_is_worked_once_even_if_delivered_twice(store: LaneStore) -> None:
    store.enqueue([job(1)])
    token = claim_all(store)[CUIT_A]
    assert store.begin(CUIT_A, token)
    assert not store.begin(CUIT_A, token)  # the redelivered message stops here
    store.release(CUIT_A, token, not_before=0, gap_seconds=0)
    assert not store.begin(CUIT_A, token)  # and a stale token never starts
    new = claim_all(store)[CUIT_A]
    assert store.begin(CUIT_A, new)


def test_many_lanes_finding_one_outage_make_one_strike(store: LaneStore) -> None:
    """Strikes count probing rounds, not lanes: 40 discoveries at once back off like one."""
    past = store.now() - 30  # mantenimiento_hasta has minute precision: it may read as over
    results = [store.set_down(past, "TusFacturas maintenance") for _ in range(40)]
    assert {window.strikes for window in results} == {1}
    assert results[-1].until - store.now() <= 1.0
    time.sleep(1.05)  # the window passed: the next discovery starts a new round
    window = store.set_down(past, "TusFacturas maintenance")
    assert window.strikes == 2
    assert 1.5 < window.until - store.now() <= 2.0


def test_a_late_stale_message_cannot_wedge_the_live_claim(store: LaneStore) -> None:
    store.enqueue([job(1)])
    stale = claim_all(store, lease=0.1)[CUIT_A]
    time.sleep(0.15)
    store.reap()
    live = claim_all(store)[CUIT_A]
    assert not store.begin(CUIT_A, stale)  # the late message of the old lease marks nothing
    assert store.begin(CUIT_A, live)


def test_only_the_lease_holder_moves_the_number(store: LaneStore) -> None:
    store.enqueue([job(1)])
    stale = claim_all(store, lease=0.1)[CUIT_A]
    time.sleep(0.15)
    store.reap()
    live = claim_all(store)[CUIT_A]
    assert store.set_next_number(CUIT_A, 679, "FACTURA B", 8, live)
    assert not store.set_next_number(CUIT_A, 679, "FACTURA B", 3, stale)
    assert store.next_number(CUIT_A, 679, "FACTURA B") == 8


def test_the_gap_runs_from_the_reply(store: LaneStore) -> None:
    """AFIP measures arrivals: the next call waits a gap after the previous reply."""
    store.enqueue([job(1), job(2)])
    token = claim_all(store)[CUIT_A]
    kw = {"gap_seconds": 5, "account": "acct", "min_interval_seconds": 0, "max_wait_seconds": 1}
    sent = store.presend(CUIT_A, token, jobs=[(f"job{CUIT_A}1", 1, "fp")], **kw)  # type: ignore[arg-type]
    time.sleep(0.3)  # the call takes a while
    store.transition(CUIT_A, token, f"job{CUIT_A}1", "issued")
    released = store.release(CUIT_A, token, not_before=0, gap_seconds=5)
    assert released is not None
    assert released.next_at >= (sent.value or 0) + 5.3 - 0.02


def test_lane_and_job_writes_of_a_stale_worker_are_refused(store: LaneStore) -> None:
    """solo, a failed call's story and a forgotten number are written only under the lease."""
    store.enqueue([job(1), job(2)])
    old = claim_all(store, lease=0.1)[CUIT_A]
    time.sleep(0.15)
    store.reap()
    live = claim_all(store)[CUIT_A]
    assert not store.set_solo(CUIT_A, old, 2)
    assert store.set_solo(CUIT_A, live, 1)
    assert not store.take_solo(CUIT_A, old)
    assert store.take_solo(CUIT_A, live)
    assert not store.take_solo(CUIT_A, live)  # one job went alone: batches again
    ids = [f"job{CUIT_A}1", f"job{CUIT_A}2"]
    failure = {"kind": "transient", "error": "timeout", "messages": ["slow"]}
    assert not store.record_failed_call(CUIT_A, old, ids, **failure)  # type: ignore[arg-type]
    assert "last_error" not in (store.job(ids[0]) or {})
    assert "log" not in (store.job(ids[0]) or {})
    assert store.record_failed_call(CUIT_A, live, ids, **failure)  # type: ignore[arg-type]
    rec = store.job(ids[1]) or {}
    assert (rec["last_kind"], rec["last_error"], rec["last_messages"]) == (
        "transient",
        "timeout",
        '["slow"]',
    )
    store.set_next_number(CUIT_A, 679, "FACTURA B", 5, live)
    assert not store.forget_next_number(CUIT_A, 679, "FACTURA B", old)
    assert store.next_number(CUIT_A, 679, "FACTURA B") == 5
    assert store.forget_next_number(CUIT_A, 679, "FACTURA B", live)
    assert store.next_number(CUIT_A, 679, "FACTURA B") is None


def test_job_result_keeps_its_keys_and_shows_extras_only_when_set(store: LaneStore) -> None:
    store.enqueue([job(1)])
    rec = store.job(f"job{CUIT_A}1") or {}
    del rec["env"]  # this test's envelope is not a packed one
    result = JobResult.from_record(rec)
    doc = result.model_dump(mode="json")
    assert doc["status"] == "queued"
    assert len(doc) == 32
    assert (doc["pdf_url"], doc["ticket_url"], doc["pdf_sha256"]) == (None, None, None)
    assert "paused_reason" not in doc
    assert "duplicate" not in doc
    result.paused_reason, result.paused_until = "closing", None
    assert list(result.model_dump(mode="json"))[-2:] == ["paused_reason", "paused_until"]


# --- each TusFacturas account's pacing key -------------------------------------------------------


def two_claims(store: LaneStore) -> dict[str, str]:
    store.enqueue([job(1), job(1, cuit=CUIT_B)])
    return claim_all(store)


PACED = {"min_interval_seconds": 0.5, "max_wait_seconds": 1.0}


def test_each_account_has_its_own_pacing(store: LaneStore) -> None:
    claims = two_claims(store)
    a, b = claims[CUIT_A], claims[CUIT_B]
    assert store.presend(CUIT_A, a, gap_seconds=0, account="acct-a", jobs=[], **PACED).go
    held = store.presend(CUIT_B, b, gap_seconds=0, account="acct-a", jobs=[], **PACED)
    assert (held.verdict, held.why) == ("wait", "account")
    # The other account's calls go at once: one account at its limit never slows another.
    assert store.presend(CUIT_B, b, gap_seconds=0, account="acct-b", jobs=[], **PACED).go
    assert store.r.exists(store.keys.account("acct-a"), store.keys.account("acct-b")) == 2
    assert not store.r.exists(store.keys.prefix + "account")  # no installation-wide key


def test_queries_count_in_their_accounts_pacing(store: LaneStore) -> None:
    claims = two_claims(store)
    a, b = claims[CUIT_A], claims[CUIT_B]
    assert store.query_turn(CUIT_A, a, "facturacion/numeracion", account="acct-a", **PACED).go
    held = store.presend(CUIT_B, b, gap_seconds=0, account="acct-a", jobs=[], **PACED)
    assert held.verdict == "wait"
    assert store.query_turn(CUIT_B, b, "facturacion/numeracion", account="acct-b", **PACED).go


def test_a_429_slows_only_its_account(store: LaneStore) -> None:
    claims = two_claims(store)
    now = store.now()
    store.release(
        CUIT_A, claims[CUIT_A], not_before=now, gap_seconds=0,
        account="acct-a", account_not_before=now + 5,
    )  # fmt: skip
    b = claims[CUIT_B]
    slowed = store.presend(CUIT_B, b, gap_seconds=0, account="acct-a", jobs=[], **PACED)
    assert (slowed.verdict, slowed.why) == ("early", "account")
    assert slowed.value == pytest.approx(now + 5, abs=0.01)
    assert store.presend(CUIT_B, b, gap_seconds=0, account="acct-b", jobs=[], **PACED).go


def test_regenerar_pdf_takes_its_accounts_turn(store: LaneStore) -> None:
    def turn(account: str) -> list[bytes]:
        reply: list[bytes] = store.run_script("account_turn", account, 0.5, 5.0, REGENERAR_PDF)
        return reply

    assert turn("acct-a") == [b"go"]
    assert turn("acct-a")[0] == b"wait"
    assert turn("acct-b") == [b"go"]


def test_failed_calls_build_a_capped_attempts_log(store: LaneStore) -> None:
    """Each failed call is appended to its jobs' attempts log (the result's attempt_log),
    newest last, the newest 20 kept; a stale worker appends nothing."""
    store.enqueue([job(1)])
    live = claim_all(store)[CUIT_A]
    job_id = f"job{CUIT_A}1"
    assert "log" not in (store.job(job_id) or {})
    for i in range(22):
        assert store.record_failed_call(
            CUIT_A, live, [job_id], kind="transient", error=f"timeout {i}", messages=[]
        )
    log = json.loads((store.job(job_id) or {})["log"])
    assert len(log) == 20
    assert [e["error"] for e in log[-2:]] == ["timeout 20", "timeout 21"]
    assert log[0]["error"] == "timeout 2"
    assert {e["outcome"] for e in log} == {"transient"}
    assert all(e["at"] > 1.7e9 for e in log)
    assert store.gauges().stats[Stat.failed("transient")] == 22  # once per call
