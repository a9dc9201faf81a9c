"""The dispatcher: claims lanes whose slot has come and publishes one task per claim,
and one per group of due callback deliveries.

It wakes at once when work arrives for an idle CUIT (the enqueue script pushes to the wake
list) and otherwise sleeps until the earliest slot. It also reaps leases whose worker
died. Several dispatchers at once are safe: claiming is one Lua script.

Backpressure (`by_capacity`): it claims no more lanes than the live send workers have free
slots, so a claim never waits in Celery's queue while its lease runs out. When the slots
are full it sleeps until a release frees one, then lets a few more come free before it
claims again, so a busy machine spends its rounds on invoices, not on claiming.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from worker.store.callbacks import Callbacks
from worker.store.lanes import LaneStore

log = logging.getLogger("tfq.dispatcher")

MAX_SLEEP_SECONDS = 1.0  # the longest sleep between rounds
REAP_EVERY_SECONDS = 1.0  # reaping also recounts the lanes in flight
LOOKAHEAD_SECONDS = 0.25  # claim a little early; the worker's presend waits out the rest
# With every slot taken, a freed one is claimed after this: long enough to gather the
# slots freed meanwhile into one round, short against any call.
FULL_SETTLE_SECONDS = 0.01
CALLBACK_GROUP_MAX = 50  # due callback deliveries sent by one task (side by side)
# Outbox events and due callbacks are taken at most this often: under load a round comes
# every few milliseconds, and batches and groups of one or two would save little.
CALLBACKS_EVERY_SECONDS = 0.2


class Dispatcher:
    def __init__(
        self,
        store: LaneStore,
        publish: Callable[[str, str], None],
        *,
        lease_seconds: float,
        max_claims: int = 500,
        by_capacity: bool = False,
        owner: str | None = None,
        health_check: Callable[[], bool] | None = None,
        health_probe_seconds: float = 60.0,
        callbacks: Callbacks | None = None,
        publish_callbacks: Callable[[list[str]], None] | None = None,
        publish_events: Callable[[], int] | None = None,
    ):
        self.store = store
        self.publish = publish
        self.health_check = health_check
        self.health_probe_seconds = health_probe_seconds
        self.callbacks = callbacks
        self.publish_callbacks = publish_callbacks
        self.publish_events = publish_events
        self._last_probe = 0.0
        self.lease_seconds = lease_seconds
        self.max_claims = max_claims
        self.by_capacity = by_capacity
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.published = 0
        self.full = False  # the last round left due lanes waiting for a free slot
        self._last_reap = float("-inf")
        self._last_callbacks = float("-inf")

    def run_once(self) -> float:
        """Reap, claim and publish; returns how long to sleep (seconds) before the next round
        (with every slot full: until a release wakes it, then FULL_SETTLE_SECONDS)."""
        if time.monotonic() - self._last_reap >= REAP_EVERY_SECONDS:
            self._last_reap = time.monotonic()
            reaped = self.store.reap()
            if reaped:
                log.warning("reaped expired leases", extra={"cuits": reaped})
        claims = self.store.claim(
            self.max_claims,
            self.lease_seconds,
            LOOKAHEAD_SECONDS,
            self.owner,
            by_capacity=self.by_capacity,
        )
        self.full = claims.full
        for cuit, token in claims.leases:
            try:
                self.publish(cuit, token)
                self.published += 1
            except Exception:
                # The lease expires and is reaped; the lane is claimed again then.
                log.exception("publish failed", extra={"cuit": cuit})
        self._dispatch_callbacks()
        if claims.full:
            return MAX_SLEEP_SECONDS
        if len(claims.leases) >= self.max_claims:
            return 0.0
        if claims.down_until is not None and self._service_back(claims.now):
            return 0.0
        if (
            claims.down_until is None
            and claims.now - self._last_probe >= self.health_probe_seconds
            and self.store.has_sightings()
        ):
            # Some CUITs saw an outage on their own calls: ask whether it is over.
            self._service_back(claims.now)
        wake_at = claims.down_until or claims.next_ready
        if wake_at is None:
            return MAX_SLEEP_SECONDS
        return max(0.0, min(MAX_SLEEP_SECONDS, wake_at - claims.now - LOOKAHEAD_SECONDS))

    def _dispatch_callbacks(self) -> None:
        if time.monotonic() - self._last_callbacks < CALLBACKS_EVERY_SECONDS:
            return
        self._last_callbacks = time.monotonic()
        if self.publish_events is not None:
            try:
                self.publish_events()
            except Exception:  # entries stay in the outbox and are taken again
                log.exception("publishing events failed")
        if self.callbacks is None or self.publish_callbacks is None:
            return
        due = self.callbacks.claim_due()
        # One task per group, not per delivery: the task's cost is paid once a group.
        for start in range(0, len(due), CALLBACK_GROUP_MAX):
            group = due[start : start + CALLBACK_GROUP_MAX]
            try:
                self.publish_callbacks(group)
            except Exception:  # claimed with a visibility timeout: they come back
                log.exception("callback publish failed", extra={"delivery_ids": group})

    def _service_back(self, now: float) -> bool:
        """During an outage, a good health check lifts the window before its end time."""
        if self.health_check is None or now - self._last_probe < self.health_probe_seconds:
            return False
        self._last_probe = now
        try:
            healthy = self.health_check()
        except Exception:
            log.warning("health check failed", exc_info=True)
            return False
        if healthy:
            log.warning("service is back before the end of its window; resuming every lane")
            self.store.clear_down()
            self.store.lift_sightings()
        return healthy

    def run(self, stop: threading.Event) -> None:
        log.info("dispatcher running", extra={"owner": self.owner})
        woken = threading.Event()
        waker = threading.Thread(
            target=self._wait_for_wakeups, args=(stop, woken), name="tfq-waker", daemon=True
        )
        waker.start()
        while not stop.is_set():
            woken.clear()  # a wake-up that comes during the round brings the next one
            try:
                delay = self.run_once()
            except Exception:
                log.exception("dispatcher round failed")
                delay = MAX_SLEEP_SECONDS
            # A local timer: Redis times out blocking calls only every 1/hz (100 ms).
            if delay > 0 and woken.wait(delay) and self.full:
                stop.wait(FULL_SETTLE_SECONDS)

    def _wait_for_wakeups(self, stop: threading.Event, woken: threading.Event) -> None:
        """Work arrived for an idle CUIT, a lane became the earliest, a sending slot came
        free or a worker came or went: wake the loop."""
        while not stop.is_set():
            try:
                if self.store.wait_for_wake(timeout_seconds=1):
                    woken.set()
            except Exception:
                log.warning("waiting for wake-ups failed", exc_info=True)
                stop.wait(1.0)

    def start_thread(self) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="tfq-dispatcher", daemon=True)
        thread.start()
        return thread, stop
