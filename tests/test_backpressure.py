"""Backpressure and account-paced claims against a real Redis: claims never outrun the
send workers' slots, a dead worker's slots come back, and an account's lanes take its call
slots in turn."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import load_examples
from producers.client import InvoiceQueue
from worker.dispatcher import MAX_SLEEP_SECONDS, Dispatcher
from worker.invoice.rules import argentina_today
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store.jobs import NewJob
from worker.store.keys import AccountField, LaneField
from worker.store.lanes import LaneStore

CUITS = [f"2011111{n:04d}" for n in range(12)]


def fill(store: LaneStore, cuits: list[str] = CUITS) -> None:
    store.enqueue([NewJob(f"job{c}", c, f"REF-{c}", 679, "FACTURA B", b"x") for c in cuits])


def claim(store: LaneStore, most: int = 100) -> dict[str, str]:
    claims = store.claim(most, 30.0, 0.0, "test", by_capacity=True)
    return dict(claims.leases)


def inflight(store: LaneStore) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in store.r.hgetall(store.keys.inflight).items()}


def test_claims_stop_at_the_free_slots_of_live_workers(store: LaneStore) -> None:
    fill(store)
    # No send worker is alive: a claim would only wait in a queue until its lease ran out.
    none = store.claim(100, 30.0, 0.0, "test", by_capacity=True)
    assert (none.leases, none.full) == ([], True)
    store.register_worker("w1", 3, 60)
    store.register_worker("w2", 2, 60)
    first = store.claim(100, 30.0, 0.0, "test", by_capacity=True)
    assert len(first.leases) == 5
    assert first.full
    assert claim(store) == {}  # every slot is taken
    assert inflight(store) == {"queued": 5}
    # Without backpressure (a dispatcher that publishes to its own code) nothing changes.
    assert len(store.claim(100, 30.0, 0.0, "test").leases) == len(CUITS) - 5


def test_a_begun_claim_holds_its_workers_slot_until_released(store: LaneStore) -> None:
    fill(store)
    store.register_worker("w1", 2, 60)
    leases = claim(store)
    (cuit, token), (_other, _) = leases.items()
    assert store.begin(cuit, token, "w1")
    assert not store.begin(cuit, token, "w1")  # a redelivery takes no second slot
    assert inflight(store) == {"queued": 1, "w1": 1}
    store.r.delete(store.keys.wake)
    assert store.release(cuit, token, not_before=0, gap_seconds=0) is not None
    assert inflight(store) == {"queued": 1}
    # The dispatcher waited for a slot: the release woke it, once.
    assert store.r.lrange(store.keys.wake, 0, -1) == [b"1"]
    assert not store.r.exists(store.keys.prefix + "workers:full")
    assert len(claim(store)) == 1


def test_a_dead_workers_lanes_stop_holding_slots_when_it_lapses(store: LaneStore) -> None:
    fill(store)
    store.register_worker("dead", 2, 0.3)
    store.register_worker("live", 2, 60)
    leases = list(claim(store).items())
    for cuit, token in leases[:2]:
        assert store.begin(cuit, token, "dead")
    for cuit, token in leases[2:]:
        assert store.begin(cuit, token, "live")
    assert claim(store) == {}
    time.sleep(0.4)
    # Its 2 slots and its 2 lanes no longer count; the live worker is still full. The dead
    # worker's lanes stay leased until their leases run out and they are reaped.
    assert claim(store) == {}
    assert inflight(store) == {"live": 2}
    cuit, token = leases[2]
    store.release(cuit, token, not_before=0, gap_seconds=0)
    assert len(claim(store)) == 1


def test_reaping_recounts_the_lanes_in_flight(store: LaneStore) -> None:
    fill(store)
    store.register_worker("w1", 4, 60)
    leases = list(claim(store).items())
    store.begin(*leases[0], "w1")
    store.r.hset(store.keys.inflight, mapping={"queued": 40, "w1": 9, "gone": 3})  # drifted
    assert claim(store) == {}
    store.reap()
    assert inflight(store) == {"queued": 3, "w1": 1}
    assert claim(store) == {}  # still 4 in flight for 4 slots


def test_an_accounts_lanes_take_its_slots_in_turn(store: LaneStore) -> None:
    lanes = CUITS[:5]
    fill(store, lanes)
    interval = 0.2
    # Each lane learnt its account at an earlier release.
    for cuit in lanes:
        store.r.hset(store.keys.lane_state(cuit), LaneField.ACCOUNT, "acct")
    store.r.hset(store.keys.account("acct"), AccountField.INTERVAL, interval)
    t0 = store.now()
    first = dict(store.claim(100, 30.0, 0.0, "test").leases)
    assert list(first) == [lanes[0]]  # one claim per slot of the account, in ready order
    # The others wait in the ready set for their own slot, one interval apart.
    ready = dict(store.r.zrange(store.keys.ready, 0, -1, withscores=True))
    slots = [ready[c.encode()] - t0 for c in lanes[1:]]
    assert [round(s, 1) for s in slots] == [0.2, 0.4, 0.6, 0.8]
    taken = []
    deadline = time.monotonic() + 3
    while len(taken) < 4 and time.monotonic() < deadline:
        taken += [c for c, _ in store.claim(100, 30.0, 0.02, "test").leases]
        time.sleep(0.01)
    assert taken == lanes[1:]  # in turn, none twice, none claimed only to wait


def test_a_lane_of_another_account_is_not_held_by_a_busy_one(store: LaneStore) -> None:
    fill(store, CUITS[:3])
    for cuit in CUITS[:2]:
        store.r.hset(store.keys.lane_state(cuit), LaneField.ACCOUNT, "busy")
    store.r.hset(store.keys.account("busy"), mapping={AccountField.INTERVAL: 10})
    claimed = [c for c, _ in store.claim(100, 30.0, 0.0, "test").leases]
    assert claimed == [CUITS[0], CUITS[2]]  # the third has no account known yet


def test_the_release_records_the_lanes_account_for_its_next_claims(store: LaneStore) -> None:
    fill(store, CUITS[:1])
    ((cuit, token),) = store.claim(10, 30.0, 0.0, "test").leases
    store.release(cuit, token, not_before=0, gap_seconds=0, account="acct",
                  account_interval=0.103)  # fmt: skip
    assert store.r.hget(store.keys.lane_state(cuit), LaneField.ACCOUNT) == b"acct"
    assert store.r.hget(store.keys.account("acct"), AccountField.INTERVAL) == b"0.103"


def test_a_full_dispatcher_sleeps_until_a_release_wakes_it(store: LaneStore) -> None:
    fill(store)
    store.register_worker("w1", 1, 60)
    published: list[tuple[str, str]] = []
    dispatcher = Dispatcher(
        store, lambda c, t: published.append((c, t)), lease_seconds=30, by_capacity=True
    )
    assert dispatcher.run_once() == MAX_SLEEP_SECONDS  # full: no busy loop
    assert len(published) == 1
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        assert len(published) == 1
        cuit, token = published[0]
        store.begin(cuit, token, "w1")
        released_at = time.monotonic()
        store.release(cuit, token, not_before=0, gap_seconds=0)
        while len(published) < 2 and time.monotonic() - released_at < 2:
            time.sleep(0.005)
        # Well within the second a sleeping dispatcher would otherwise wait.
        assert len(published) == 2
        assert time.monotonic() - released_at < 0.5
    finally:
        stop.set()
        thread.join(3)


def _examples_queued(
    store: LaneStore, sandbox: SandboxProcess, tenants_file: Path
) -> tuple[InvoiceQueue, list[str], Runtime]:
    """The sample jobs queued, gap 0 and no account pacing (every lane is due at once), and
    one send worker with one slot; returns the queue, the job ids and a runtime."""
    settings = Settings(
        redis_url=os.environ.get("TFQ_REDIS_URL", "redis://127.0.0.1:6379/0"),
        key_prefix=store.keys.prefix,
        api_url=sandbox.api_url,
        tenants_file=tenants_file,
        cuit_gap_seconds=0,
        api_max_rps=1000,
    )
    queue = InvoiceQueue(settings.redis_url, key_prefix=store.keys.prefix, settings=settings)
    envelopes = list(load_examples(argentina_today()).values())
    report = queue.submit_many(envelopes)
    assert len(report.accepted) == len(envelopes)
    assert len({e["cuit"] for e in envelopes}) > 1
    store.register_worker("w1", 1, 60)  # one slot: every lane goes through it in turn
    return queue, [job_id for _, job_id in report.accepted], Runtime(settings)


def test_a_send_task_keeps_its_slot_busy_with_the_lanes_that_come_due(
    store: LaneStore, sandbox: SandboxProcess, tenants_file: Path
) -> None:
    queue, job_ids, runtime = _examples_queued(store, sandbox, tenants_file)
    ((cuit, token),) = store.claim(1, 30.0, 0.0, "test", by_capacity=True).leases
    done = runtime.sender().handle_then_more(
        cuit, token, "w1", max_lanes=1000, max_seconds=60, lookahead_seconds=0.02
    )
    # One task worked every lane the queue had, each claimed in turn as it came due, and
    # stopped when none was left (not at max_lanes), giving its slot back.
    assert len(done) >= len(job_ids)
    assert all(queue.status(job_id)["status"] in ("issued", "rejected") for job_id in job_ids)
    assert inflight(store) == {}


def test_a_send_task_stops_at_its_bounds_with_lanes_still_due(
    store: LaneStore, sandbox: SandboxProcess, tenants_file: Path
) -> None:
    queue, job_ids, runtime = _examples_queued(store, sandbox, tenants_file)
    sender = runtime.sender()
    ((cuit, token),) = store.claim(1, 30.0, 0.0, "test", by_capacity=True).leases
    done = sender.handle_then_more(
        cuit, token, "w1", max_lanes=2, max_seconds=60, lookahead_seconds=0.02
    )
    assert len(done) == 2  # its own lane and one more, though more are due
    ((cuit, token),) = store.claim(1, 30.0, 0.0, "test", by_capacity=True).leases
    done = sender.handle_then_more(
        cuit, token, "w1", max_lanes=1000, max_seconds=0, lookahead_seconds=0.02
    )
    assert len(done) == 1  # out of time: its own lane only
    # Nothing claimed beyond the bounds: the slot is free, and jobs still wait.
    assert inflight(store) == {}
    assert any(queue.status(job_id)["status"] == "queued" for job_id in job_ids)
