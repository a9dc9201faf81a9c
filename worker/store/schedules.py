"""The keeper's schedules in Redis: finished jobs waiting for the SQL archive (`archive`),
and issued jobs waiting for their PDFs to be kept (`pdfs`). Both are filled by the status
scripts (lib.lua) in the same step as the job's status; these are the keeper's reads and
writes, each one script."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from worker.store.jobs import JobStore
from worker.store.scripts import Turn, read_query, read_schedule_claim


class Schedule(StrEnum):
    ARCHIVE = "archive"
    PDFS = "pdfs"


@dataclass(frozen=True)
class ScheduleClaim:
    job_id: str
    deadline: str  # the claim's score, as the script wrote it: settling compares it


def claim(
    store: JobStore, schedule: Schedule, max_items: int, visibility_seconds: float
) -> list[ScheduleClaim]:
    """Due jobs of a schedule, each pushed ahead by `visibility_seconds` while handled."""
    raw = store.run_script("schedule_claim", schedule, max_items, visibility_seconds)
    return [ScheduleClaim(job_id, deadline) for job_id, deadline in read_schedule_claim(raw)]


def settle_archived(store: JobStore, claims: list[ScheduleClaim]) -> int:
    """Remove archived jobs from the schedule, unless they changed since their claim."""
    if not claims:
        return 0
    return int(
        store.run_script("archive_done", *[x for c in claims for x in (c.job_id, c.deadline)])
    )


def account_turn(
    store: JobStore, account: str, interval_seconds: float, max_wait_seconds: float, endpoint: str
) -> Turn:
    """A call's turn under its account's pacing, outside any lane: go, or wait (seconds)."""
    raw = store.run_script("account_turn", account, interval_seconds, max_wait_seconds, endpoint)
    return read_query(raw)


def wait_account_turn(
    store: JobStore, account: str, interval_seconds: float, endpoint: str, max_wait_seconds: float
) -> bool:
    """Wait for a call's turn under its account's pacing, shared in Redis with the workers'
    calls (the account's per-second limit counts every call of its credentials): True once
    the call may go, False when no turn came within `max_wait_seconds` (nothing was taken).

    The one loop for calls made outside any lane: the PDF keeper's `regenerar_pdf` and the
    audit's queries."""
    deadline = time.monotonic() + max_wait_seconds
    while True:
        turn = account_turn(store, account, interval_seconds, max_wait_seconds, endpoint)
        if turn.go:
            return True
        wait = turn.value or 0.0
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)


def pdf_kept(store: JobStore, job_id: str, fields: dict[str, Any] | None = None) -> bool:
    """Record the kept PDFs' fields (none: nothing to keep) and take the job off the
    schedule; the job goes back to the archive's. False when its record is gone."""
    args = [x for kv in (fields or {}).items() for x in kv]
    return bool(store.run_script("pdf_kept", job_id, *args))


def pdf_retry(
    store: JobStore, job_id: str, *, at: float, max_attempts: int, error: str, regenerations: int
) -> int:
    """Try again at `at` (epoch s); the attempts made so far, negative when that was the
    last one (the job leaves the schedule with its error)."""
    raw = store.run_script("pdf_retry", job_id, at, max_attempts, error, regenerations)
    return int(raw)
