"""Following a batch until it is done: `tfq batch --watch` and the demo's progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from producers.cli.render import batch_done, counts_text, eta_text

if TYPE_CHECKING:
    from rich.console import Console

    from producers.client import InvoiceQueue


def watch_batch(
    queue: InvoiceQueue,
    name: str,
    *,
    console: Console | None,
    out: TextIO | None,
    interval_seconds: float = 1.0,
    timeout_seconds: float | None = None,
    check: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Redraw a batch's progress until it is done; the last doc (None: no such batch).

    On a terminal (`console`) a rich progress bar; otherwise one line on `out` each time
    the counts change (nothing when `out` is None). `check` runs every round and may raise
    to stop (the demo checks its worker is alive). Raises TimeoutError after
    `timeout_seconds`. Ctrl-C raises KeyboardInterrupt to the caller.
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    doc = queue.batch(name)
    if doc is None:
        return None
    if console is not None:
        return _watch_rich(queue, name, doc, console, interval_seconds, deadline, check)
    last: tuple[int, str] | None = None
    while True:
        current = (doc["done"], counts_text(doc["counts"]))
        if out is not None and current != last:
            eta = eta_text(doc)
            out.write(
                f"{datetime.now(UTC):%H:%M:%S} batch {name}: {doc['done']}/{doc['total']} done"
                f" ({current[1]}), ETA {eta}\n"
            )
            out.flush()
            last = current
        if batch_done(doc):
            return doc
        _tick(interval_seconds, deadline, check, name)
        doc = queue.batch(name) or doc


def _tick(
    interval_seconds: float, deadline: float | None, check: Callable[[], None] | None, name: str
) -> None:
    if check is not None:
        check()
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"batch {name} not done in time")
    time.sleep(interval_seconds)


def _watch_rich(
    queue: InvoiceQueue,
    name: str,
    doc: dict[str, Any],
    console: Console,
    interval_seconds: float,
    deadline: float | None,
    check: Callable[[], None] | None,
) -> dict[str, Any]:
    columns = (
        TextColumn("batch [bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("ETA {task.fields[eta]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(name, total=doc["total"], counts="", eta="-")
        while True:
            bar.update(
                task,
                completed=doc["done"],
                total=doc["total"],
                counts=counts_text(doc["counts"]),
                eta=eta_text(doc),
            )
            if batch_done(doc):
                return doc
            _tick(interval_seconds, deadline, check, name)
            doc = queue.batch(name) or doc
