"""Celery wiring: the app, its settings, the send task and the dispatcher's publisher.

Waiting work never sits in Celery: a task exists only for a lane already claimed, so no
countdown/ETA task is ever parked in worker memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Celery, signals, states

from worker.dispatcher import LOOKAHEAD_SECONDS, Dispatcher
from worker.runtime import Runtime
from worker.settings import get_settings
from worker.slots import SlotRegistration
from worker.submit import Sender
from worker.webhooks.delivery import Deliverer
from worker.webhooks.publishing import publish_events as _publish_events

log = logging.getLogger("tfq.celery")
T = TypeVar("T")

settings = get_settings()
runtime = Runtime(settings)
# Queue names carry the key prefix, so several tfq installations can share one Redis.
# Callbacks have their own queue: a slow receiver never holds up invoicing.
SEND_QUEUE = f"{settings.key_prefix}send"
CALLBACK_QUEUE = f"{settings.key_prefix}callbacks"
# One task may make up to four API calls (reconcile, renumber, send), each bounded by the
# API timeout; the hard limit caps that, and the broker's redelivery of a dead worker's
# message comes only after it, so a message is never worked twice at once. Leases, not
# this, decide when a lane is taken over; a late redelivery finds a stale token and stops.
SOFT_TIME_LIMIT_SECONDS = int(4 * settings.api_timeout_seconds + 60)
TIME_LIMIT_SECONDS = SOFT_TIME_LIMIT_SECONDS + 30
# A send task works its lane and then, while lanes are due, the next ones (one at a time,
# each claimed like a dispatcher's claim): it starts no new lane once less than a worst-case
# lane's time is left before the soft limit (30 s of its 60 s slack).
MORE_LANES_SECONDS = SOFT_TIME_LIMIT_SECONDS - 4 * settings.api_timeout_seconds - 30
MORE_LANES_MAX = 100
VISIBILITY_TIMEOUT_SECONDS = TIME_LIMIT_SECONDS + 300

app = Celery("tfq", broker=settings.redis_url, backend=settings.redis_url)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
    result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
    broker_connection_retry_on_startup=True,
    task_default_queue=SEND_QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=settings.result_retention_seconds,
    worker_send_task_events=settings.task_events,
    task_send_sent_event=settings.task_events,
    worker_hijack_root_logger=False,
    task_soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
    task_time_limit=TIME_LIMIT_SECONDS,
)

_parts: dict[str, Any] = {}  # one sender and one deliverer per process, built on first use
_parts_lock = threading.Lock()


def store_results(results: list[tuple[str, dict[str, Any]]]) -> None:
    """Finished jobs' results in Celery's backend, in one round trip: `AsyncResult(job_id)
    .get()` works. Each is what RedisBackend.store_result writes (same key, encoding, expiry
    and publish to waiting clients), and as there a result already stored is kept."""
    backend = app.backend
    expires = backend.expires or None
    pipe = backend.client.pipeline(transaction=False)
    for job_id, result in results:
        key = backend.get_key_for_task(job_id)
        value = backend.encode(_success_meta(job_id, result))
        # Celery skips the write when the stored state is SUCCESS; a job id only ever
        # holds a SUCCESS, so "not when one exists" is the same rule, without a read.
        pipe.set(key, value, ex=expires, nx=True)
        pipe.publish(key, value)
    pipe.execute()


def _success_meta(job_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """Celery's own result meta (status, result, date_done, ...) for a SUCCESS. The one use
    of a private backend method: store_result builds the meta and writes it in one call,
    one round trip per result; this keeps the meta Celery's while the writes are batched."""
    meta: dict[str, Any] = app.backend._get_result_meta(
        result=result, state=states.SUCCESS, traceback=None, request=None
    )
    meta["task_id"] = job_id
    return meta


def publish_events() -> int:
    """The outbox's events as backend results and callback deliveries (dispatcher loop)."""
    return _publish_events(
        runtime.store,
        runtime.callbacks,
        store_results,
        public_url=settings.public_url,
        archived=runtime.archived_results.get,
    )


def _part(name: str, build: Callable[[], T]) -> T:
    """Built once per process, whichever thread asks first."""
    with _parts_lock:
        if name not in _parts:
            _parts[name] = build()
        part: T = _parts[name]
        return part


def get_sender() -> Sender:
    return _part("sender", runtime.sender)


def get_deliverer() -> Deliverer:
    return _part("deliverer", runtime.deliverer)


@app.task(name="tfq.send", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def send_lane(self: Any, cuit: str, token: str) -> str:
    """Work one claimed lane under its fencing token in one of this worker's slots, then
    the lanes that come due meanwhile (`Sender.handle_then_more`)."""
    done = get_sender().handle_then_more(
        cuit,
        token,
        self.request.hostname or "",
        max_lanes=MORE_LANES_MAX,
        max_seconds=MORE_LANES_SECONDS,
        lookahead_seconds=LOOKAHEAD_SECONDS,
    )
    return f"{done[0]}" + (f", then {len(done) - 1} more lanes" if len(done) > 1 else "")


@app.task(name="tfq.callbacks", ignore_result=True)  # type: ignore[untyped-decorator]
def deliver_callbacks(delivery_ids: list[str]) -> list[str]:
    """Send a group of callback deliveries side by side (retries are scheduled in Redis,
    not here)."""
    return get_deliverer().deliver_group(delivery_ids)


def register_slots(sender: Any, **_: object) -> None:
    """A worker that serves the send queue registers its slots (its Celery concurrency)
    for the dispatchers' backpressure, renewed until it shuts down."""
    if SEND_QUEUE not in sender.app.amqp.queues.consume_from:
        return
    registration = SlotRegistration(runtime.store, sender.hostname, sender.controller.concurrency)
    registration.start()
    signals.worker_shutdown.connect(lambda **_: registration.stop(), weak=False)


signals.worker_ready.connect(register_slots, weak=False)


def publish(cuit: str, token: str) -> None:
    send_lane.apply_async(args=(cuit, token), queue=SEND_QUEUE)


def publish_callbacks(delivery_ids: list[str]) -> None:
    deliver_callbacks.apply_async(args=(delivery_ids,), queue=CALLBACK_QUEUE)


def make_dispatcher() -> Dispatcher:
    """A dispatcher wired to this app: send tasks, callbacks, outbox events, health probes."""
    return Dispatcher(
        runtime.store,
        publish,
        lease_seconds=settings.lease_seconds,
        by_capacity=True,
        health_check=runtime.service_healthy,
        health_probe_seconds=settings.health_probe_seconds,
        callbacks=runtime.callbacks,
        publish_callbacks=publish_callbacks,
        publish_events=publish_events,
    )
