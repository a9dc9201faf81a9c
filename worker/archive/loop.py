"""The keeper loop: a thread beside each dispatcher that archives finished jobs and keeps
their PDFs. Several at once are safe: both schedules are claimed with a visibility
timeout, and both writes are idempotent.

A database that is down, or not yet migrated, never stops invoicing: jobs wait in the
`archive` schedule (the backlog is a metric with an alert) and are written once it is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from worker.archive import db
from worker.archive.archiver import archive_due
from worker.archive.keeper import PdfKeeper
from worker.archive.repository import Archive
from worker.errors import ConfigError
from worker.settings import Settings
from worker.store.lanes import LaneStore

log = logging.getLogger("tfq.archive")

IDLE_SECONDS = 1.0  # how often an idle loop looks for due work
RETRY_SECONDS = 10.0  # how long the loop waits after the database failed
ARCHIVE_BATCH = 500  # jobs per archive transaction
PDF_BATCH = 20  # PDFs per pass: each is up to two downloads


class KeeperLoop:
    def __init__(
        self,
        store: LaneStore,
        archive: Archive,
        pdf_keeper: Callable[[], PdfKeeper],
        settings: Settings,
    ):
        self.store = store
        self.archive = archive
        self._pdf_keeper = pdf_keeper
        self.settings = settings
        self._schema_ready = False

    def run_once(self) -> float:
        """One pass over both schedules; returns how long to sleep (seconds)."""
        busy = False
        if self._ensure_schema():
            done = archive_due(
                self.store,
                self.archive,
                max_items=ARCHIVE_BATCH,
                visibility_seconds=self.settings.archive_visibility_seconds,
            )
            if done.failed:
                return RETRY_SECONDS
            busy = done.claimed == ARCHIVE_BATCH
        outcomes = self._pdf_keeper().run_due(PDF_BATCH)
        busy = busy or sum(outcomes.values()) == PDF_BATCH
        return 0.0 if busy else IDLE_SECONDS

    def _ensure_schema(self) -> bool:
        """SQLite is migrated here; PostgreSQL must be (`tfq archive migrate`): until it
        is, jobs wait and the log says why, once a minute at most."""
        if self._schema_ready:
            return True
        try:
            db.ensure_schema(self.archive.engine)
        except (ConfigError, SQLAlchemyError) as exc:
            log.error("archive not ready: %s", exc if isinstance(exc, ConfigError) else type(exc))
            return False
        self._schema_ready = True
        return True

    def run(self, stop: threading.Event) -> None:
        log.info("keeper running", extra={"archive": db.safe_url(str(self.archive.engine.url))})
        while not stop.is_set():
            try:
                delay = self.run_once()
            except Exception:  # claims come back after their visibility timeout
                log.exception("keeper pass failed")
                delay = RETRY_SECONDS
            if delay > 0:
                stop.wait(delay if self._schema_ready else max(delay, 60.0))

    def start_thread(self) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="tfq-keeper", daemon=True)
        thread.start()
        return thread, stop
