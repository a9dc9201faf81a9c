"""Moving finished jobs from Redis into the archive.

The status scripts add a finished job to the `archive` schedule in the same step as the
change (see lib.lua), so no finished job can be missed. The archiver claims due entries,
upserts their rows, and only then settles the entries: a worker killed mid-write, or a
database outage, leaves them in Redis to be taken again, and the upsert makes the retry
write nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from worker.archive.repository import Archive, row_from_record
from worker.store.jobs import FINAL
from worker.store.keys import JobField
from worker.store.lanes import LaneStore
from worker.store.schedules import Schedule, claim, settle_archived

log = logging.getLogger("tfq.archive")


@dataclass(frozen=True)
class ArchivePass:
    claimed: int
    written: int  # rows inserted or replaced by a newer record
    settled: int
    failed: bool  # the database refused: every claim stays in Redis


def archive_due(
    store: LaneStore, archive: Archive, *, max_items: int = 500, visibility_seconds: float = 120
) -> ArchivePass:
    """One pass: claim what is due, write it, settle what was written."""
    claims = claim(store, Schedule.ARCHIVE, max_items, visibility_seconds)
    if not claims:
        return ArchivePass(0, 0, 0, failed=False)
    records = store.jobs([c.job_id for c in claims])
    rows = []
    for c, rec in zip(claims, records, strict=True):
        if rec is None:
            # Expired before it was archived: only an archiver stopped for the whole
            # retention period gets here. Say so loudly; there is nothing left to write.
            log.error("job %s left Redis before it was archived", c.job_id)
        elif rec.get(JobField.STATUS) in FINAL:
            rows.append(row_from_record(rec))
    try:
        written = archive.upsert(rows)
    except IntegrityError:
        # One row breaks a constraint (the same invoice number under two jobs: a
        # duplicate). Write the others one by one and leave that one queued and loud.
        written, refused = _one_by_one(archive, rows)
        claims = [c for c in claims if c.job_id not in refused]
    except SQLAlchemyError as exc:
        log.warning("archive write failed (%d jobs stay queued): %s", len(rows), type(exc).__name__)
        return ArchivePass(len(claims), 0, 0, failed=True)
    return ArchivePass(len(records), written, settle_archived(store, claims), failed=False)


def _one_by_one(archive: Archive, rows: list[dict[str, Any]]) -> tuple[int, set[str]]:
    written, refused = 0, set()
    for row in rows:
        try:
            written += archive.upsert([row])
        except IntegrityError:
            refused.add(row["job_id"])
            log.error(
                "job %s not archived: %s %s-%s is archived under another job",
                row["job_id"],
                row["tipo"],
                row["punto_venta"],
                row["numero"],
            )
    return written, refused
