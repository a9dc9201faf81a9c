"""A send worker's registration for backpressure: its sending slots, renewed while it lives.

The dispatchers claim no more lanes than the registered workers have free slots
(`worker/store/lua/claim.lua`). A worker that dies stops renewing; once its registration
lapses, its slots and the lanes it held in flight no longer count, and the lanes
themselves are reaped when their leases run out.
"""

from __future__ import annotations

import logging
import threading

from worker.store.lanes import LaneStore

log = logging.getLogger("tfq.slots")

HEARTBEAT_SECONDS = 5.0
# Lapses after three missed heartbeats: a worker busy enough to miss one is not dead.
TTL_SECONDS = 3 * HEARTBEAT_SECONDS + 1


class SlotRegistration:
    """Keeps `worker` registered with `slots` sending slots until `stop()`."""

    def __init__(self, store: LaneStore, worker: str, slots: int):
        self.store = store
        self.worker = worker
        self.slots = slots
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._beat()  # counted before the first claim it could take
        self._thread = threading.Thread(target=self._run, name="tfq-slots", daemon=True)
        self._thread.start()
        log.info("sending slots registered", extra={"worker": self.worker, "slots": self.slots})

    def stop(self) -> None:
        """Leave: the dispatchers stop counting these slots at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(HEARTBEAT_SECONDS)
        try:
            self.store.register_worker(self.worker, 0, TTL_SECONDS)
        except Exception:  # it lapses by itself
            log.warning("unregistering sending slots failed", exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._beat()

    def _beat(self) -> None:
        try:
            self.store.register_worker(self.worker, self.slots, TTL_SECONDS)
        except Exception:  # retried at the next beat; a lapse only pauses claims
            log.warning("renewing sending slots failed", exc_info=True)
