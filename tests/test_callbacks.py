"""Callbacks: signed per Standard Webhooks (checked with the `standardwebhooks` library),
retried, stopped by 410, dead-lettered and replayed; SSRF refused; outbox entries parsed
whatever their batch name holds."""

from __future__ import annotations

import json
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ops.testkit.harness import unique_prefix
from ops.testkit.webhook_receiver import Receiver, running_receiver
from worker.settings import Settings
from worker.store.callbacks import RETENTION_SECONDS, CallbackField, Callbacks, DeliveryStatus
from worker.store.keys import Keys
from worker.store.lanes import LaneStore
from worker.store.outbox import EventKind, OutboxEvent, encode, parse
from worker.store.scripts import text
from worker.tenants import Tenants
from worker.webhooks.delivery import Deliverer
from worker.webhooks.publishing import delivery_id_for, publish_events
from worker.webhooks.safe_http import UnsafeCallbackURL, check_callback_url
from worker.webhooks.signing import sign

CUIT = "20111111112"


@pytest.fixture
def receiver(tenants: Tenants) -> Iterator[Receiver]:
    with running_receiver(tenants) as rec:
        yield rec


@pytest.fixture
def parts(redis_url: str, tenants: Tenants) -> Iterator[tuple[Callbacks, Deliverer]]:
    client = redis.Redis.from_url(redis_url)
    keys = Keys(unique_prefix("cb"))
    callbacks = Callbacks(LaneStore(client, keys))
    settings = Settings(
        callbacks_allow_private=True,
        callback_retry_seconds=[0.05, 0.05, 0.05],
        callback_timeout_seconds=0.5,
    )
    yield callbacks, Deliverer(callbacks, tenants, settings)
    for key in client.scan_iter(keys.pattern()):
        client.unlink(key)


def drain(callbacks: Callbacks, deliverer: Deliverer, until: Callable[[], bool]) -> list[str]:
    """Act as the dispatcher + task: deliver whatever is due until `until()`."""
    outcomes: list[str] = []
    deadline = time.monotonic() + 10
    while not until() and time.monotonic() < deadline:
        for delivery_id in callbacks.claim_due():
            outcomes.append(deliverer.deliver(delivery_id))
        time.sleep(0.02)
    return outcomes


RESULT = {"job_id": "j1", "cuit": CUIT, "status": "issued", "cae": "75000000000001"}


def test_an_outbox_entry_becomes_one_delivery_and_one_result_even_when_taken_again(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver
) -> None:
    callbacks, deliverer = parts
    store, keys = callbacks.store, callbacks.keys
    env = {"invoice": {}, "callback_url": receiver.url, "metadata": {"order": 7}}
    store.r.hset(
        keys.job("j1"),
        mapping={"id": "j1", "cuit": CUIT, "ref": "o-7", "status": "issued", "cae": "7500",
                 "env": zlib.compress(json.dumps(env).encode())},
    )  # fmt: skip
    entry = "invoice.issued|j1"
    stored: list[tuple[str, dict[str, object]]] = []
    store.r.zadd(keys.outbox, {entry: 0})
    assert publish_events(store, callbacks, stored.extend) == 1
    # The delivery exists and the entry is gone, in one step (no half-made delivery).
    assert store.r.zcard(keys.outbox) == 0
    assert callbacks.pending_count() == 1
    # A dispatcher that died after publishing but before settling: the entry comes back.
    store.r.zadd(keys.outbox, {entry: 0})
    assert publish_events(store, callbacks, stored.extend) == 1
    assert store.r.zcard(keys.outbox) == 0
    assert callbacks.pending_count() == 1
    assert [i for i, _ in stored] == ["j1", "j1"]  # the backend write is idempotent
    drain(callbacks, deliverer, lambda: callbacks.pending_count() == 0)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got["verified"]
    assert got["body"]["type"] == "invoice.issued"
    assert got["body"]["data"]["metadata"] == {"order": 7}


def test_a_batch_of_entries_is_published_in_one_go_each_exactly_once(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver
) -> None:
    """Many entries of every kind at once: one results write, every delivery created once,
    every entry settled; an entry that cannot be published stays, the others go on."""
    callbacks, deliverer = parts
    store, keys = callbacks.store, callbacks.keys

    def job(job_id: str, status: str, url: str | None, **more: str) -> None:
        env = {"invoice": {}, "callback_url": url} if url else {"invoice": {}}
        store.r.hset(
            keys.job(job_id),
            mapping={"id": job_id, "cuit": CUIT, "status": status,
                     "env": zlib.compress(json.dumps(env).encode()), **more},
        )  # fmt: skip

    entries = [f"invoice.issued|i{n}" for n in range(30)]
    for n in range(30):
        job(f"i{n}", "issued", receiver.url)
    job("r1", "rejected", receiver.url)
    job("quiet", "issued", None)  # no callback_url: a result, no delivery
    job("att", "issued", receiver.url, attention="check it")
    job("b1", "issued", receiver.url, batch="nightly")
    store.r.hset(keys.batch("nightly"), mapping={"total": 1, "issued": 1})
    entries += [
        "invoice.rejected|r1",
        "invoice.issued|quiet",
        "invoice.attention|att|1700000000",
        encode(OutboxEvent(EventKind.BATCH_COMPLETED, "b1", batch="nightly")),
        "invoice.issued|gone",  # no record, no archive: nothing to report
        "invoice.issued|broken",  # its archive lookup fails: taken again later
        "garbage",
    ]
    store.r.zadd(keys.outbox, dict.fromkeys(entries, 0))

    def archived(job_id: str) -> None:
        if job_id == "broken":
            raise RuntimeError("archive unreachable")

    writes: list[list[tuple[str, dict[str, Any]]]] = []
    assert publish_events(store, callbacks, writes.append, archived=archived) == len(entries)
    (results,) = writes  # one write for the whole batch
    assert sorted(i for i, _ in results) == sorted([f"i{n}" for n in range(30)] + ["r1", "quiet"])
    assert {text(m) for m in store.r.zrange(keys.outbox, 0, -1)} == {"invoice.issued|broken"}
    assert callbacks.pending_count() == 33  # 30 issued, rejected, attention, batch
    # Taken again (a dispatcher that died before settling): nothing new is created.
    store.r.zadd(keys.outbox, dict.fromkeys(entries[:5], 0))
    assert publish_events(store, callbacks, writes.append, archived=archived) == 5
    assert callbacks.pending_count() == 33
    assert int(store.r.hget(keys.stats, "callbacks:created") or 0) == 33
    drain(callbacks, deliverer, lambda: callbacks.pending_count() == 0)
    ids = [r["headers"]["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 33
    assert all(r["verified"] for r in receiver.received)
    by_type = [r["body"]["type"] for r in receiver.received]
    assert by_type.count("invoice.issued") == 30
    attention = next(r for r in receiver.received if r["body"]["type"] == "invoice.attention")
    assert attention["body"]["data"]["reason"] == "check it"
    batch = next(r for r in receiver.received if r["body"]["type"] == "batch.completed")
    assert batch["body"]["data"]["batch"] == "nightly"


def test_a_group_is_delivered_side_by_side_each_on_its_own(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver, tenants: Tenants
) -> None:
    """A slow receiver does not hold up the rest of its group; one delivery that fails
    here fails alone; each one is retried on its own."""
    callbacks, deliverer = parts
    with running_receiver(tenants) as slow:
        slow.script = [(200, {}, 0.4)] * 3 + [(500, {}, 0.0)]
        slow_ids = [callbacks.enqueue("invoice.issued", CUIT, slow.url, RESULT) for _ in range(4)]
        fast_ids = [
            callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT) for _ in range(5)
        ]
        broken = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
        callbacks.r.hdel(callbacks.keys.callback(broken), CallbackField.URL)
        group = callbacks.claim_due()
        assert set(group) == {*slow_ids, *fast_ids, broken}
        started = time.monotonic()
        outcomes = dict(zip(group, deliverer.deliver_group(group), strict=True))
        elapsed = time.monotonic() - started
    assert elapsed < 1.0  # one after the other: three slow answers take 1.2 s
    assert [outcomes[i] for i in fast_ids] == ["delivered"] * 5
    assert sorted(outcomes[i] for i in slow_ids) == ["delivered"] * 3 + ["retry"]
    assert outcomes[broken] == "error"
    assert len(receiver.received) == 5
    retried = next(i for i in slow_ids if outcomes[i] == "retry")
    record = callbacks.get(retried) or {}
    assert (record["status"], record["attempts"], record["last_error"]) == (
        "pending", "1", "HTTP 500",
    )  # fmt: skip
    # The failed one is left claimed: it comes back after the visibility timeout.
    assert callbacks.r.zscore(callbacks.keys.callbacks_due, broken) > time.time()


def test_signed_delivery_verifies_with_the_reference_library(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver
) -> None:
    callbacks, deliverer = parts
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
    drain(callbacks, deliverer, lambda: bool(receiver.received))
    (got,) = receiver.received
    assert got["verified"]
    assert got["headers"]["webhook-id"] == delivery_id
    assert got["body"]["type"] == "invoice.issued"
    assert got["body"]["data"] == RESULT
    assert callbacks.get(delivery_id)["status"] == "delivered"  # type: ignore[index]


def test_tampered_body_or_old_timestamp_fails_verification(receiver: Receiver) -> None:
    body = b'{"type":"invoice.issued"}'
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(receiver.secret, "msg_1", now, body),
    }
    Webhook(receiver.secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver.secret).verify(body.replace(b"issued", b"rejected"), headers)
    old = now - 3600
    stale = {**headers, "webhook-timestamp": str(old)}
    stale["webhook-signature"] = sign(receiver.secret, "msg_1", old, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver.secret).verify(body, stale)


def test_a_late_retry_of_a_delivered_callback_is_dropped_not_sent(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver
) -> None:
    """Two copies of one delivery (claimed again after the visibility timeout): one
    delivers, the other failed and schedules a retry, or gives up. The retry must not send
    again, nor stay in the due set to be claimed every visibility period forever; giving up
    must not turn a delivered callback into a dead letter."""
    callbacks, deliverer = parts
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
    assert deliverer.deliver(delivery_id) == "delivered"
    # The slow copy's late retry and late give-up change nothing.
    assert not callbacks.retry(delivery_id, 0, "ConnectionError reaching the receiver")
    assert not callbacks.dead_letter(delivery_id, "gave up after 8 attempts: HTTP 500")
    assert callbacks.pending_count() == 0
    assert callbacks.dead_count() == 0
    assert drain(callbacks, deliverer, lambda: callbacks.pending_count() == 0) == []
    assert callbacks.get(delivery_id)["status"] == "delivered"  # type: ignore[index]
    assert len(receiver.received) == 1
    # A delivered record is kept as long as job records, not for ever.
    assert 0 < callbacks.r.ttl(callbacks.keys.callback(delivery_id)) <= RETENTION_SECONDS


def test_retried_after_500_and_after_a_timeout_with_a_stable_id(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver
) -> None:
    callbacks, deliverer = parts
    receiver.script = [(500, {}, 0.0), (200, {}, 1.0), (200, {}, 0.0)]  # 2nd: too slow
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
    outcomes = drain(
        callbacks,
        deliverer,
        lambda: callbacks.get(delivery_id)["status"] == "delivered",  # type: ignore[index]
    )
    assert outcomes == ["retry", "retry", "delivered"]
    assert {r["headers"]["webhook-id"] for r in receiver.received} == {delivery_id}
    assert all(r["verified"] for r in receiver.received)


def test_retry_after_is_honoured(parts: tuple[Callbacks, Deliverer], receiver: Receiver) -> None:
    callbacks, deliverer = parts
    receiver.script = [(503, {"Retry-After": "30"}, 0.0)]
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
    assert deliverer.deliver(callbacks.claim_due()[0]) == "retry"
    next_at = float(callbacks.get(delivery_id)["next_at"])  # type: ignore[index]
    assert 28 < next_at - time.time() <= 30


def test_410_stops_and_exhaustion_dead_letters_then_replay(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver
) -> None:
    callbacks, deliverer = parts
    receiver.script = [(410, {}, 0.0)]
    gone = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
    drain(callbacks, deliverer, lambda: callbacks.dead_count() == 1)
    assert callbacks.get(gone)["status"] == "dead"  # type: ignore[index]
    assert len(receiver.received) == 1

    receiver.script = [(500, {}, 0.0)] * 4
    failing = callbacks.enqueue("invoice.rejected", CUIT, receiver.url, RESULT)
    drain(callbacks, deliverer, lambda: callbacks.dead_count() == 2)
    assert len(receiver.received) == 1 + 4  # first try + 3 retries
    assert "gave up after 4 attempts" in callbacks.get(failing)["last_error"]  # type: ignore[index]
    assert callbacks.r.ttl(callbacks.keys.callback(failing)) == -1  # waits for a human

    assert callbacks.replay(failing)
    assert callbacks.replay_all() == 1
    drain(
        callbacks, deliverer, lambda: callbacks.dead_count() == 0 and callbacks.pending_count() == 0
    )
    assert callbacks.get(failing)["status"] == "delivered"  # type: ignore[index]
    assert callbacks.get(gone)["status"] == "delivered"  # type: ignore[index]


def test_redirects_are_not_followed(parts: tuple[Callbacks, Deliverer], receiver: Receiver) -> None:
    callbacks, deliverer = parts
    receiver.script = [(302, {"Location": "http://169.254.169.254/latest/meta-data"}, 0.0)]
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
    assert deliverer.deliver(callbacks.claim_due()[0]) == "retry"
    assert "redirects are not followed" in callbacks.get(delivery_id)["last_error"]  # type: ignore[index]
    assert len(receiver.received) == 1


def test_private_targets_are_dead_lettered_unless_allowed(
    parts: tuple[Callbacks, Deliverer], receiver: Receiver
) -> None:
    callbacks, deliverer = parts
    deliverer.settings = Settings(callbacks_allow_private=False)
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, receiver.url, RESULT)
    assert deliverer.deliver(callbacks.claim_due()[0]) == "dead"
    assert "internal address" in callbacks.get(delivery_id)["last_error"]  # type: ignore[index]
    assert receiver.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/x",
        "http://[::1]/x",
        "http://[fe80::1]/x",
        "http://[fc00::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://localhost:8080/x",
        "http://api.localhost/x",
        "http://2130706433/x",
        "ftp://example.com/x",
        "https:///nohost",
    ],
)
def test_ssrf_refusals(url: str) -> None:
    with pytest.raises(UnsafeCallbackURL):
        check_callback_url(url, allow_private=False)


def test_dns_names_resolving_inside_are_refused() -> None:
    name = socket.gethostname()
    addresses = {i[4][0] for i in socket.getaddrinfo(name, 80)}
    assert addresses  # the machine's own name resolves to one of its own addresses
    with pytest.raises(UnsafeCallbackURL):
        check_callback_url(f"http://{name}/hook", allow_private=False)


@pytest.mark.parametrize("scheme", ["http", "https"])  # checked before any TLS handshake
def test_dns_rebinding_is_caught_when_connecting(
    scheme: str,
    parts: tuple[Callbacks, Deliverer],
    receiver: Receiver,
    tenants: Tenants,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name first answers with a public address (the URL check passes), then with the
    receiver's loopback address when the connection is made. No DNS server can be made to
    do that here, so the resolver is replaced; the connection and the receiver are real."""
    callbacks, _ = parts
    target = urlsplit(receiver.url)
    real_getaddrinfo = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))]])

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.example":
            return next(answers, None) or real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    deliverer = Deliverer(callbacks, tenants, Settings(callbacks_allow_private=False))
    url = f"{scheme}://hooks.rebind.example:{target.port}{target.path}"
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, url, RESULT)
    assert deliverer.deliver(callbacks.claim_due()[0]) == "dead"
    record = callbacks.get(delivery_id) or {}
    assert record["last_error"] == "callback_url's host resolved to an internal address"
    assert receiver.received == []


def test_public_literal_is_allowed() -> None:
    check_callback_url("https://8.8.8.8/hook", allow_private=False)


# --- outbox entries ---------------------------------------------------------------------------

ODD_BATCHES = [
    "nightly",
    "",
    "a|b",
    "|",
    "||lead|and|trail||",
    "batch.completed|x|j9",
    "espacios y ñandú",
    "tab\tnew\nline",
    "emoji 🧾|€",
    "' .. redis.call('FLUSHALL') .. '",
]


@pytest.mark.parametrize("batch", ODD_BATCHES)
def test_batch_events_round_trip_whatever_the_batch_name(batch: str) -> None:
    event = OutboxEvent(EventKind.BATCH_COMPLETED, "j-42", batch=batch)
    entry = encode(event)
    assert entry == f"batch.completed|{batch}|j-42"  # what lib.lua writes
    assert parse(entry) == event


@pytest.mark.parametrize(
    ("entry", "event"),
    [
        ("invoice.issued|j1", OutboxEvent(EventKind.INVOICE_ISSUED, "j1")),
        ("invoice.rejected|j1", OutboxEvent(EventKind.INVOICE_REJECTED, "j1")),
        (
            "invoice.attention|j1|1765000000",
            OutboxEvent(EventKind.INVOICE_ATTENTION, "j1", raised_at=1765000000),
        ),
        ("invoice.someday|j1", OutboxEvent("invoice.someday", "j1")),
    ],
)
def test_invoice_events_round_trip(entry: str, event: OutboxEvent) -> None:
    assert parse(entry) == event
    assert encode(event) == entry


def test_an_entry_without_a_job_is_refused() -> None:
    with pytest.raises(ValueError, match="not an outbox entry"):
        parse("invoice.issued")


def test_the_scripts_write_what_encode_writes(parts: tuple[Callbacks, Deliverer]) -> None:
    """A real status change through lib.lua, with a batch name full of separators."""
    callbacks, _ = parts
    store, keys = callbacks.store, callbacks.keys
    batch = "ops|2026-12|a||b"
    store.r.hset(keys.job("j7"), mapping={"id": "j7", "cuit": CUIT, "batch": batch})
    store.r.hset(keys.batch(batch), mapping={"total": 1})
    store.r.hset(keys.lane_state(CUIT), "token", "t1")
    assert store.run_script("transition", CUIT, "t1", "j7", "issued", 0) == 2
    written = {text(m) for m in store.r.zrange(keys.outbox, 0, -1)}
    assert written == {
        encode(OutboxEvent(EventKind.INVOICE_ISSUED, "j7")),
        encode(OutboxEvent(EventKind.BATCH_COMPLETED, "j7", batch=batch)),
    }


def test_a_batch_named_with_separators_publishes_its_own_counts(
    parts: tuple[Callbacks, Deliverer],
) -> None:
    callbacks, _ = parts
    store, keys = callbacks.store, callbacks.keys
    batch = "shop|eu|2026"
    env = {"invoice": {}, "callback_url": "https://shop.example/hook"}
    store.r.hset(
        keys.job("j8"),
        mapping={"id": "j8", "cuit": CUIT, "status": "issued", "batch": batch,
                 "env": zlib.compress(json.dumps(env).encode())},
    )  # fmt: skip
    store.r.hset(keys.batch(batch), mapping={"total": 1, "issued": 1})
    entry = encode(OutboxEvent(EventKind.BATCH_COMPLETED, "j8", batch=batch))
    store.r.zadd(keys.outbox, {entry: 0})
    assert publish_events(store, callbacks, lambda results: None) == 1
    record = callbacks.get(delivery_id_for(entry)) or {}
    body = json.loads(record["body"])
    assert body["type"] == "batch.completed"
    assert body["data"]["batch"] == batch
    assert body["data"]["cuit"] == CUIT


def test_a_malformed_entry_is_dropped_not_retried_for_ever(
    parts: tuple[Callbacks, Deliverer],
) -> None:
    callbacks, _ = parts
    callbacks.r.zadd(callbacks.keys.outbox, {"garbage": 0})
    assert publish_events(callbacks.store, callbacks, lambda results: None) == 1
    assert callbacks.r.zcard(callbacks.keys.outbox) == 0
    assert callbacks.pending_count() == 0


# --- conditional writes -------------------------------------------------------------------------


def test_an_attempt_is_counted_only_while_pending(parts: tuple[Callbacks, Deliverer]) -> None:
    callbacks, _ = parts
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, "https://shop.example/h", RESULT)
    assert callbacks.record_attempt(delivery_id) == 1
    assert callbacks.record_attempt(delivery_id) == 2
    assert callbacks.delivered(delivery_id, 200)
    assert callbacks.record_attempt(delivery_id) is None
    assert callbacks.get(delivery_id)["attempts"] == "2"  # type: ignore[index]
    # An expired (or never made) delivery is not brought back as a stray hash.
    assert callbacks.record_attempt("msg_gone") is None
    assert not callbacks.r.exists(callbacks.keys.callback("msg_gone"))


def test_replay_applies_once_and_only_to_dead_letters(
    parts: tuple[Callbacks, Deliverer],
) -> None:
    callbacks, _ = parts
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, "https://shop.example/h", RESULT)
    assert not callbacks.replay(delivery_id)  # pending: nothing to replay
    assert callbacks.record_attempt(delivery_id) == 1
    assert callbacks.dead_letter(delivery_id, "gone")
    assert callbacks.replay(delivery_id)
    assert not callbacks.replay(delivery_id)  # a second replay queues nothing more
    record = callbacks.get(delivery_id) or {}
    assert (record["status"], record["attempts"]) == ("pending", "0")
    assert callbacks.dead_count() == 0
    assert callbacks.r.zscore(callbacks.keys.callbacks_due, delivery_id) == 0
    assert not callbacks.replay("msg_never")
    assert not callbacks.r.exists(callbacks.keys.callback("msg_never"))


def test_the_scripts_write_only_the_named_fields(parts: tuple[Callbacks, Deliverer]) -> None:
    callbacks, _ = parts
    named = {str(f) for f in CallbackField}
    delivery_id = callbacks.enqueue("invoice.issued", CUIT, "https://shop.example/h", RESULT)
    assert callbacks.record_attempt(delivery_id) == 1
    assert callbacks.retry(delivery_id, 0, "HTTP 500")
    assert callbacks.delivered(delivery_id, 200)
    record = callbacks.get(delivery_id) or {}
    assert set(record) == named
    assert record[CallbackField.STATUS] == DeliveryStatus.DELIVERED
