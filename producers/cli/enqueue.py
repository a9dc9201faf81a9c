"""`tfq enqueue`'s work: queue every valid job of a bulk file, report each by its line."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from producers.bulkfile.jobs import JobLine
from producers.bulkfile.reader import Format, read_jobs
from worker.errors import FieldError

if TYPE_CHECKING:
    from rich.console import Console

    from producers.client import InvoiceQueue

SUBMIT_CHUNK = 500  # jobs per submit_many call while enqueuing a file
LIST_DUPLICATES = 20  # text output lists this many duplicates; --json lists all


@dataclass
class EnqueueReport:
    """What `tfq enqueue` did with each job of a file, by line."""

    file: str
    batch: str
    accepted: list[tuple[int, str]] = field(default_factory=list)  # (line, job id)
    # (line, job id, cuit, external_reference): the key already had a live job.
    duplicates: list[tuple[int, str, str, str]] = field(default_factory=list)
    refused: list[tuple[int, list[FieldError]]] = field(default_factory=list)
    queued_nothing: bool = False  # --strict found a refused job, so nothing was queued
    not_queued: int = 0  # valid jobs left out by --strict

    @property
    def jobs(self) -> int:
        return len(self.accepted) + len(self.duplicates) + len(self.refused) + self.not_queued

    @property
    def exit_code(self) -> int:
        return 1 if self.refused else 0

    def doc(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "batch": self.batch or None,
            "jobs": self.jobs,
            "counts": {
                "accepted": len(self.accepted),
                "duplicates": len(self.duplicates),
                "refused": len(self.refused),
                "not_queued": self.not_queued,
            },
            "queued_nothing": self.queued_nothing,
            "accepted": [{"line": line, "job_id": job_id} for line, job_id in self.accepted],
            "duplicates": [
                {"line": line, "job_id": job_id, "cuit": cuit, "external_reference": ref}
                for line, job_id, cuit, ref in self.duplicates
            ],
            "refused": [
                {"line": line, "errors": [e.as_dict() for e in errors]}
                for line, errors in self.refused
            ],
        }

    def lines(self) -> list[str]:
        out = [f"{line}: {err}" for line, errors in self.refused for err in errors]
        for line, job_id, cuit, ref in self.duplicates[:LIST_DUPLICATES]:
            out.append(
                f"{line}: duplicate: cuit {cuit} already has external_reference {ref} "
                f"(job {job_id}); nothing new was queued"
            )
        if len(self.duplicates) > LIST_DUPLICATES:
            out.append(f"... and {len(self.duplicates) - LIST_DUPLICATES} more duplicates (--json)")
        if self.queued_nothing:
            out.append(
                f"{self.jobs} jobs: {self.not_queued} valid, {len(self.refused)} refused; "
                "nothing was queued (--strict)"
            )
            return out
        summary = (
            f"{self.jobs} jobs: {len(self.accepted)} accepted, "
            f"{len(self.duplicates)} duplicates, {len(self.refused)} refused"
        )
        if self.batch:
            summary += f"; batch {self.batch} (follow it with: tfq batch {self.batch} --watch)"
        out.append(summary)
        return out


def count_lines(path: Path) -> int:
    """Physical lines of a file (a progress bar's total), without decoding it."""
    count = 0
    last = b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


@contextmanager
def line_progress(console: Console, path: Path) -> Iterator[Callable[[int], None]]:
    """A transient progress bar over the file's lines; call it with the line reached."""
    with Progress(
        TextColumn("enqueue {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(path.name, total=count_lines(path))
        yield lambda line: bar.update(task, completed=line)


@contextmanager
def regular_file(path: Path | None, stdin: BinaryIO | None = None) -> Iterator[Path]:
    """`path`, or a temporary copy of a pipe or of `stdin` (when `path` is None).

    A regular file can be read twice (`--strict`) and counted (the progress bar).
    """
    if path is not None and path.is_file():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="tfq-enqueue-") as tmp:
        copy = Path(tmp) / ("stdin" if path is None else "pipe" + path.suffix)
        with copy.open("wb") as dst:
            if path is None:
                shutil.copyfileobj(stdin or sys.stdin.buffer, dst)
            else:
                with path.open("rb") as src:
                    shutil.copyfileobj(src, dst)
        yield copy


def enqueue_file(
    queue: InvoiceQueue,
    path: Path,
    *,
    fmt: Format = "auto",
    batch: str = "",
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> EnqueueReport:
    """Queue every valid job of a bulk file; a refused job never stops the others.

    With `strict`, the whole file is checked first and nothing is queued when any job is
    refused. `progress` is called with the line reached. Raises OSError when the file
    cannot be read, `FileFormatError` for an unknown format.
    """
    report = EnqueueReport(file=str(path), batch=batch)
    if strict:
        valid = 0
        for job in read_jobs(path, fmt=fmt):
            if job.ok:
                valid += 1
            else:
                report.refused.append((job.line, job.errors))
        if report.refused:
            report.queued_nothing = True
            report.not_queued = valid
            return report
    pending: list[JobLine] = []
    for job in read_jobs(path, fmt=fmt):
        if job.ok:
            pending.append(job)
        else:
            report.refused.append((job.line, job.errors))
        if len(pending) >= SUBMIT_CHUNK:
            _submit(queue, pending, report)
        if progress is not None:
            progress(job.line)
    _submit(queue, pending, report)
    report.refused.sort(key=lambda item: item[0])
    return report


def _submit(queue: InvoiceQueue, pending: list[JobLine], report: EnqueueReport) -> None:
    if not pending:
        return
    envelopes = [job.envelope for job in pending if job.envelope is not None]
    result = queue.submit_many(envelopes, batch=report.batch)
    for index, job_id in result.accepted:
        report.accepted.append((pending[index].line, job_id))
    for index, job_id in result.duplicates:
        env = envelopes[index]
        report.duplicates.append((pending[index].line, job_id, env.cuit, env.external_reference))
    for index, errors in result.refused:  # e.g. a date that left AFIP's window meanwhile
        report.refused.append((pending[index].line, errors))
    pending.clear()
