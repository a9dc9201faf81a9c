"""A job's result wherever it is kept: Redis while it holds the record, the archive after.

Redis lets a finished record go after `TFQ_RESULT_RETENTION_DAYS`; the archive never does.
Every reader of results (the Python API, the intake, `tfq status`, publishing) asks here
once Redis has no record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from worker.archive import db
from worker.archive.repository import Archive, archived_result
from worker.archive.schema import ArchivedJob
from worker.errors import ConfigError, TfqError
from worker.store.jobs import JobResult

T = TypeVar("T")


class ArchiveUnavailable(TfqError):
    """The archive cannot be read now (down, or not migrated): try again later."""


class ArchivedResults:
    def __init__(self, archive: Archive, public_url: str | None):
        self.archive = archive
        self.public_url = public_url
        self._schema_ready = False

    def get(self, job_id: str) -> JobResult | None:
        """The archived result of a job Redis no longer holds, or None when the archive
        has no such job; `ArchiveUnavailable` when it cannot say."""
        row = self.row(job_id)
        return None if row is None else archived_result(row, self.public_url)

    def row(self, job_id: str) -> ArchivedJob | None:
        """The job's archive row, or None; `ArchiveUnavailable` when it cannot say."""
        return self._read(lambda: self.archive.get(job_id))

    def rows_by_reference_prefix(self, cuit: str, prefix: str) -> list[ArchivedJob]:
        """The CUIT's rows whose external_reference starts with `prefix`;
        `ArchiveUnavailable` when it cannot say."""
        return self._read(lambda: self.archive.with_reference_prefix(cuit, prefix))

    def _read(self, read: Callable[[], T]) -> T:
        where = db.safe_url(str(self.archive.engine.url))
        try:
            if not self._schema_ready:
                db.ensure_schema(self.archive.engine)  # a SQLite file may not exist yet
                self._schema_ready = True
            return read()
        except ConfigError as exc:
            raise ArchiveUnavailable(str(exc)) from None
        except SQLAlchemyError as exc:
            raise ArchiveUnavailable(f"the archive at {where}: {type(exc).__name__}") from None
