"""Outbox entries: the events a status change reports, as the scripts write them.

An entry is one member of the `outbox` sorted set, written in the same step as the change
it reports. Three shapes exist:

- `invoice.<status>|<job id>` (lib.lua, when a job becomes final);
- `batch.completed|<batch>|<job id>` (lib.lua, when a batch's last job becomes final);
- `invoice.attention|<job id>|<epoch seconds>` (LaneStore.record_attention; the time
  makes each raised attention its own event).

Job ids never contain "|", but a batch name may hold anything, so a batch is whatever lies
between the first and the last "|", never found by splitting on every "|".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SEPARATOR = "|"


class EventKind(StrEnum):
    """The events a callback may report (its body's `type`)."""

    INVOICE_ISSUED = "invoice.issued"
    INVOICE_REJECTED = "invoice.rejected"
    INVOICE_ATTENTION = "invoice.attention"
    BATCH_COMPLETED = "batch.completed"


@dataclass(frozen=True)
class OutboxEvent:
    kind: str  # an EventKind's value, as written (an unknown one is kept, not refused)
    job_id: str
    batch: str | None = None  # batch.completed only
    raised_at: int | None = None  # invoice.attention only: when it was raised, epoch seconds


def parse(entry: str) -> OutboxEvent:
    """The event of an outbox entry, whatever its batch name holds.

    Raises ValueError for an entry with no "|" (no job id): nothing writes one.
    """
    kind, separator, rest = entry.partition(SEPARATOR)
    if not separator:
        raise ValueError(f"not an outbox entry (no {SEPARATOR!r}): {entry!r}")
    if kind == EventKind.BATCH_COMPLETED:
        batch, _, job_id = rest.rpartition(SEPARATOR)
        return OutboxEvent(kind, job_id, batch=batch)
    if kind == EventKind.INVOICE_ATTENTION:
        job_id, _, raised_at = rest.partition(SEPARATOR)
        return OutboxEvent(kind, job_id, raised_at=int(raised_at) if raised_at else None)
    return OutboxEvent(kind, rest)


def encode(event: OutboxEvent) -> str:
    """The entry the scripts write for `event` (parse's inverse)."""
    if event.kind == EventKind.BATCH_COMPLETED:
        return SEPARATOR.join((event.kind, event.batch or "", event.job_id))
    if event.kind == EventKind.INVOICE_ATTENTION and event.raised_at is not None:
        return SEPARATOR.join((event.kind, event.job_id, str(event.raised_at)))
    return SEPARATOR.join((event.kind, event.job_id))
