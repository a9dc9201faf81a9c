"""Publishing the outbox: each event becomes a result in Celery's backend and a callback
delivery, exactly once however often it is taken."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from worker.store.callbacks import Callbacks
from worker.store.jobs import JobResult
from worker.store.keys import JobField
from worker.store.lanes import LaneStore
from worker.store.outbox import EventKind, parse

log = logging.getLogger("tfq.callbacks")

ResultSink = Callable[[str, dict[str, Any]], None]
# The result of a job Redis no longer holds (the archive's), or None.
ArchivedResult = Callable[[str], JobResult | None]


def publish_events(
    store: LaneStore,
    callbacks: Callbacks,
    store_result: ResultSink,
    *,
    public_url: str | None = None,
    archived: ArchivedResult | None = None,
) -> int:
    """Turn outbox entries into results in Celery's backend and callback deliveries.

    Entries are written by the status scripts, atomically with the change they report,
    so no final job goes without its result and callback, whatever crashes in between.
    Publishing is idempotent: the delivery id is derived from the entry. Results carry
    tfq's lasting PDF links under `public_url` (TFQ_PUBLIC_URL).
    """
    done = 0
    for entry in callbacks.claim_events():
        _publish_one(store, callbacks, store_result, entry, public_url, archived)
        done += 1
    return done


def _publish_one(
    store: LaneStore,
    callbacks: Callbacks,
    store_result: ResultSink,
    entry: str,
    public_url: str | None,
    archived: ArchivedResult | None,
) -> None:
    try:
        event = parse(entry)
    except ValueError:  # nothing to report, and it would come back for ever
        log.warning("malformed outbox entry dropped", extra={"entry": entry})
        callbacks.event_done(entry)
        return
    rec = store.job(event.job_id)
    kept = (
        JobResult.from_record(rec, public_url)
        if rec is not None
        else (archived(event.job_id) if archived is not None else None)
    )
    if kept is None:  # gone from Redis and never archived: nothing left to report
        callbacks.event_done(entry)
        return
    result = kept.model_dump(mode="json")
    if event.kind == EventKind.BATCH_COMPLETED:
        batch = event.batch or ""
        counts = store.batch_counts(batch)
        data: dict[str, Any] = {
            **(counts.as_dict() if counts else {"batch": batch}),
            "cuit": result["cuit"],
        }
    else:
        data = result
        if event.kind == EventKind.INVOICE_ATTENTION:
            data["reason"] = (rec or {}).get(JobField.ATTENTION) or ""
        else:
            store_result(event.job_id, result)
    url = result["callback_url"]
    if not url:
        callbacks.event_done(entry)
        return
    callbacks.enqueue(
        event.kind,
        result["cuit"],
        url,
        data,
        delivery_id=delivery_id_for(entry),
        outbox_entry=entry,
    )


def delivery_id_for(entry: str) -> str:
    """The webhook-id of the delivery published from an outbox entry (stable, so idempotent)."""
    return "msg_" + hashlib.sha256(entry.encode()).hexdigest()[:24]
