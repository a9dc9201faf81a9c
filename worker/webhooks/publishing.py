"""Publishing the outbox: each event becomes a result in Celery's backend and a callback
delivery, exactly once however often it is taken."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from worker.store.callbacks import Callbacks, NewDelivery
from worker.store.jobs import JobResult
from worker.store.keys import JobField
from worker.store.lanes import LaneStore
from worker.store.outbox import EventKind, OutboxEvent, parse

log = logging.getLogger("tfq.callbacks")

# Finished jobs' results, (job id, result) each, written to Celery's backend in one go.
ResultSink = Callable[[list[tuple[str, dict[str, Any]]]], None]
# The result of a job Redis no longer holds (the archive's), or None.
ArchivedResult = Callable[[str], JobResult | None]


def publish_events(
    store: LaneStore,
    callbacks: Callbacks,
    store_results: ResultSink,
    *,
    public_url: str | None = None,
    archived: ArchivedResult | None = None,
    max_events: int = 200,
) -> int:
    """Turn outbox entries into results in Celery's backend and callback deliveries;
    returns how many entries were taken.

    Entries are written by the status scripts, atomically with the change they report,
    so no final job goes without its result and callback, whatever crashes in between.
    Publishing is idempotent: the delivery id is derived from the entry. Results carry
    tfq's lasting PDF links under `public_url` (TFQ_PUBLIC_URL).

    A batch of entries costs four round trips, however many: claim them, read their jobs,
    write their results, then create their deliveries and settle them (one script). An
    entry settles only after its result is written; one that fails stays in the outbox and
    is taken again after the visibility timeout, without holding up the others.
    """
    entries = callbacks.claim_events(max_events)
    events: list[tuple[str, OutboxEvent]] = []
    settled: list[str] = []  # entries with nothing (more) to do
    for entry in entries:
        try:
            events.append((entry, parse(entry)))
        except ValueError:  # nothing to report, and it would come back for ever
            log.warning("malformed outbox entry dropped", extra={"entry": entry})
            settled.append(entry)
    results: list[tuple[str, dict[str, Any]]] = []
    deliveries: list[NewDelivery] = []
    records = store.jobs([event.job_id for _, event in events]) if events else []
    for (entry, event), rec in zip(events, records, strict=True):
        try:
            report = _report(store, event, rec, public_url, archived)
        except Exception:  # taken again after the visibility timeout
            log.exception("outbox entry not published", extra={"entry": entry})
            continue
        if report is None:  # gone from Redis and never archived: nothing left to report
            settled.append(entry)
            continue
        result, data = report
        if event.kind not in (EventKind.BATCH_COMPLETED, EventKind.INVOICE_ATTENTION):
            results.append((event.job_id, result))
        url = result["callback_url"]
        if not url:
            settled.append(entry)
            continue
        deliveries.append(
            NewDelivery(delivery_id_for(entry), event.kind, result["cuit"], url, data, entry)
        )
    if results:
        store_results(results)
    callbacks.enqueue_many(deliveries, settled)
    return len(entries)


def _report(
    store: LaneStore,
    event: OutboxEvent,
    rec: dict[str, Any] | None,
    public_url: str | None,
    archived: ArchivedResult | None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An event's job result and its callback's data; None when the job is gone for good."""
    kept = (
        JobResult.from_record(rec, public_url)
        if rec is not None
        else (archived(event.job_id) if archived is not None else None)
    )
    if kept is None:
        return None
    result = kept.model_dump(mode="json")
    if event.kind == EventKind.BATCH_COMPLETED:
        batch = event.batch or ""
        counts = store.batch_counts(batch)
        data: dict[str, Any] = {
            **(counts.as_dict() if counts else {"batch": batch}),
            "cuit": result["cuit"],
        }
        return result, data
    if event.kind == EventKind.INVOICE_ATTENTION:
        return result, {**result, "reason": (rec or {}).get(JobField.ATTENTION) or ""}
    return result, result


def delivery_id_for(entry: str) -> str:
    """The webhook-id of the delivery published from an outbox entry (stable, so idempotent)."""
    return "msg_" + hashlib.sha256(entry.encode()).hexdigest()[:24]
