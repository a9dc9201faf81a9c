"""The callbacks store: delivery records in Redis, and the outbox events they come from.

A delivery is one hash (`cb:<id>`, fields in `CallbackField`); the due ones wait in a
sorted set scored by their next attempt (epoch seconds), the exhausted ones in the
dead-letter set. Every change is one script in `worker/store/lua/callback_*.lua`, and the
ones that settle an attempt apply only while the delivery is in the state the caller saw.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from worker.store.keys import Keys
from worker.store.lanes import LaneStore
from worker.store.scripts import text

log = logging.getLogger("tfq.callbacks")

VISIBILITY_SECONDS = 120.0  # default: a claimed delivery is taken again after this
RETENTION_SECONDS = 90 * 86400  # default: a delivered one is kept this long, like its job


class CallbackField(StrEnum):
    """The fields of a delivery's hash (the scripts write the same names)."""

    ID = "id"  # the webhook-id, stable across retries
    EVENT = "event"
    CUIT = "cuit"
    URL = "url"
    BODY = "body"  # the JSON sent, exactly (signed as is)
    ATTEMPTS = "attempts"
    STATUS = "status"  # a DeliveryStatus
    CREATED = "created"  # epoch seconds
    HTTP_STATUS = "http_status"  # delivered: the receiver's status code
    DELIVERED = "delivered"  # epoch seconds
    LAST_ERROR = "last_error"
    NEXT_AT = "next_at"  # retry: when, epoch seconds


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to create: `event` with `data` to `url`, as `id` (the webhook-id; derived
    from its outbox entry, so publishing twice creates it once)."""

    id: str
    event: str
    cuit: str
    url: str
    data: dict[str, Any]
    outbox_entry: str = ""  # the entry it is published from, removed in the same step

    def body(self) -> str:
        """The JSON sent, exactly (signed as is)."""
        return json.dumps(
            {"type": self.event, "timestamp": datetime.now(UTC).isoformat(), "data": self.data},
            separators=(",", ":"),
            default=str,
        )


class Callbacks:
    """Delivery records in Redis: create, claim, settle, dead-letter, replay."""

    def __init__(
        self,
        store: LaneStore,
        visibility_seconds: float = VISIBILITY_SECONDS,
        retention_seconds: int = RETENTION_SECONDS,
    ):
        self.store = store
        self.r = store.r
        self.keys: Keys = store.keys
        self.visibility_seconds = visibility_seconds
        self.retention_seconds = retention_seconds

    def enqueue(
        self,
        event: str,
        cuit: str,
        url: str,
        data: dict[str, Any],
        *,
        delivery_id: str | None = None,
        outbox_entry: str = "",
    ) -> str:
        """A delivery of `event` with `data` to `url`; returns its id (the webhook-id).

        With a `delivery_id` (derived from an outbox entry) a second call for the same
        event creates nothing: publishing an event twice never delivers it twice. The
        delivery and the removal of its `outbox_entry` are one script.
        """
        delivery_id = delivery_id or f"msg_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"
        self.enqueue_many([NewDelivery(delivery_id, event, cuit, url, data, outbox_entry)])
        return delivery_id

    def enqueue_many(self, deliveries: list[NewDelivery], settled: Iterable[str] = ()) -> int:
        """Create `deliveries` and remove their outbox entries, with the `settled` entries
        (events with nothing to deliver), in one script; returns how many were created."""
        args: list[Any] = []
        for d in deliveries:
            args += [d.id, d.event, d.cuit, d.url, d.body(), d.outbox_entry]
        for entry in settled:
            args += ["", "", "", "", "", entry]
        if not args:
            return 0
        return int(self.store.run_script("callback_new", *args))

    def claim_due(self, max_items: int = 200) -> list[str]:
        return [
            text(x)
            for x in self.store.run_script(
                "due_claim", "callbacks_due", max_items, self.visibility_seconds
            )
        ]

    def claim_events(self, max_items: int = 200) -> list[str]:
        """Outbox entries to publish (taken again after a while if not settled)."""
        return [
            text(x)
            for x in self.store.run_script(
                "due_claim", "outbox", max_items, self.visibility_seconds
            )
        ]

    def get(self, delivery_id: str) -> dict[str, str] | None:
        raw = self.r.hgetall(self.keys.callback(delivery_id))
        return {text(k): text(v) for k, v in raw.items()} if raw else None

    def record_attempt(self, delivery_id: str) -> int | None:
        """Count one attempt at sending, before it is made; returns its number (1 for the
        first), or None when the delivery is no longer pending (another copy settled it)."""
        number = int(self.store.run_script("callback_attempt", delivery_id))
        return number or None

    # Settling is conditional on the delivery still being pending (see callback_settle.lua):
    # each returns whether it applied.

    def delivered(self, delivery_id: str, status_code: int) -> bool:
        return self._settle(
            delivery_id, DeliveryStatus.DELIVERED, status_code, self.retention_seconds
        )

    def retry(self, delivery_id: str, at: float, error: str) -> bool:
        return self._settle(delivery_id, "retry", error, at)

    def dead_letter(self, delivery_id: str, reason: str) -> bool:
        settled = self._settle(delivery_id, DeliveryStatus.DEAD, reason, 0)
        if settled:
            log.warning(
                "callback dead-lettered", extra={"delivery_id": delivery_id, "reason": reason}
            )
        return settled

    def _settle(self, delivery_id: str, outcome: str, detail: object, number: float) -> bool:
        return bool(self.store.run_script("callback_settle", delivery_id, outcome, detail, number))

    def dead(self, limit: int = 100) -> list[dict[str, str]]:
        ids = [text(x) for x in self.r.zrevrange(self.keys.callbacks_dead, 0, limit - 1)]
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def replay(self, delivery_id: str) -> bool:
        """Send a dead-lettered delivery again (same webhook-id, attempts start over);
        False when it is not dead-lettered (anymore)."""
        return bool(self.store.run_script("callback_replay", delivery_id))

    def replay_all(self) -> int:
        return sum(self.replay(text(i)) for i in self.r.zrange(self.keys.callbacks_dead, 0, -1))

    def pending_count(self) -> int:
        return int(self.r.zcard(self.keys.callbacks_due))

    def dead_count(self) -> int:
        return int(self.r.zcard(self.keys.callbacks_dead))
