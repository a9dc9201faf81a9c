"""What the operations commands read and show: `tfq enqueue`, `status`, `batch`, `lanes`,
`failed` and `demo`.

Each `*_doc` function reads Redis through `InvoiceQueue` / `LaneStore` and returns one
JSON-ready dict: exactly what `--json` prints. `*_lines` and `*_table` turn a doc into
plain text or a `Table` (plain columns on a pipe, a rich table on a terminal), so the CLI
only chooses the output. Times in docs are ISO 8601 UTC; "how long until" is in seconds
in fields named `*_in_seconds`.
"""

from __future__ import annotations

import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO
from urllib.parse import urlsplit

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table as RichTable
from rich.text import Text

from producers.bulkfile import Format, JobLine, read_jobs
from worker.errors import FieldError
from worker.store.jobs import FINAL, JobResult
from worker.store.lanes import LaneStore
from worker.store.scripts import text

if TYPE_CHECKING:
    from rich.console import Console

    from producers.client import InvoiceQueue

BATCH_NAME_RE = re.compile(r"^[A-Za-z0-9_.:@/-]{1,200}$")
STATUS_ORDER = ("queued", "sending", "unknown", "issued", "rejected")
SUBMIT_CHUNK = 500  # jobs per submit_many call while enqueuing a file
LIST_DUPLICATES = 20  # text output lists this many duplicates; --json lists all
PIPELINE_CHUNK = 1000  # lanes read per Redis round trip


# --- small formatting helpers ---------------------------------------------------------


def duration(seconds: float | None) -> str:
    """`45s`, `2m 05s`, `1h 02m`, `3d 04h`; `-` for None."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h:02d}h"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def relative(ts: float | None, now: float) -> str:
    """`now`, `in 12s`, `3m 05s ago`; `-` for None."""
    if ts is None:
        return "-"
    delta = ts - now
    if abs(delta) < 0.5:
        return "now"
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def redis_where(url: str) -> str:
    """A Redis URL without credentials, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def invoice_number(punto_venta: int | None, numero: int | None) -> str:
    """AFIP's own way of writing an invoice number: `00003-00000074`."""
    if punto_venta is None:
        return "-"
    if numero is None:  # numbered only when sent
        return f"PDV {punto_venta}"
    return f"{punto_venta:05d}-{numero:08d}"


def jobs_count(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


def _float(value: str | None) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


@dataclass
class Table:
    """Rows of text, shown as plain aligned columns or as a rich table."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""

    def plain(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        lines = [self.title] if self.title else []
        for row in [self.columns, *self.rows]:
            cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def rich(self) -> RichTable:
        table = RichTable(title=self.title or None, title_justify="left")
        for name in self.columns:
            table.add_column(name)
        for row in self.rows:
            # Text, not str: an API message like "[10016] ..." is not rich markup.
            table.add_row(*(Text(cell) for cell in row))
        return table


def show(table: Table, console: Console | None, out: TextIO) -> None:
    if console is not None:
        console.print(table.rich())
    else:
        out.write(table.plain() + "\n")


# --- enqueue --------------------------------------------------------------------------


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


# --- status ---------------------------------------------------------------------------


def status_doc(queue: InvoiceQueue, job_id: str) -> dict[str, Any] | None:
    """The job's public result, plus its place in its lane while it waits."""
    result = queue.status(job_id)
    if result is None:
        return None
    if result["status"] not in FINAL:
        lane = queue.keys.lane(result["cuit"])
        position = queue.redis.lpos(lane, job_id)
        result["lane_position"] = int(position) + 1 if position is not None else None  # type: ignore[arg-type]
        result["lane_depth"] = queue.store.depth(result["cuit"])
    return result


def _cae_text(result: dict[str, Any]) -> str:
    if result.get("cae"):
        due = result.get("cae_vencimiento")
        return f"{result['cae']} (vence {due})" if due else str(result["cae"])
    if result.get("status") == "issued" and result.get("test_mode"):
        return "test mode (punto de venta de prueba: no CAE)"
    return "-"


def status_lines(doc: dict[str, Any]) -> list[str]:
    status = str(doc["status"])
    if doc.get("paused_reason"):
        until = f" until {doc['paused_until']}" if doc.get("paused_until") else ""
        status += f" (lane paused{until}: {doc['paused_reason']})"
    if doc.get("lane_position") is not None:
        status += f", {doc['lane_position']} of {doc['lane_depth']} in lane {doc['cuit']}"
    rows: list[tuple[str, str]] = [
        ("job", str(doc["job_id"])),
        ("cuit", str(doc["cuit"])),
        ("external_reference", str(doc["external_reference"])),
        ("batch", doc.get("batch") or "-"),
        ("status", status),
        (
            "invoice",
            f"{doc.get('tipo')} {invoice_number(doc.get('punto_venta'), doc.get('numero'))}",
        ),
        ("cae", _cae_text(doc)),
    ]
    optional = ("pdf_url", "observaciones", "callback_url", "previous_job_id", "next_job_id")
    rows += [(name, str(doc[name])) for name in optional if doc.get(name)]
    rows += [
        ("attempts", str(doc.get("attempts", 0))),
        ("created_at", doc.get("created_at") or "-"),
        ("updated_at", doc.get("updated_at") or "-"),
    ]
    if doc.get("finished_at"):
        rows.append(("finished_at", doc["finished_at"]))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label.ljust(width)}  {value}" for label, value in rows]
    errors = doc.get("errors") or []
    if errors:
        lines.append(f"{'errors'.ljust(width)}  {errors[0]}")
        lines += [f"{''.ljust(width)}  {message}" for message in errors[1:]]
    return lines


# --- batch ----------------------------------------------------------------------------


def batch_done(doc: dict[str, Any]) -> bool:
    return bool(doc["done"] >= doc["total"])


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUS_ORDER)


def eta_text(doc: dict[str, Any]) -> str:
    if batch_done(doc):
        return "done"
    if doc["paused_lanes"]:  # a paused lane waits for a person, not for a clock
        return f"{duration(doc['eta_seconds'])} once its paused lanes resume"
    return duration(doc["eta_seconds"])


def batch_lines(doc: dict[str, Any]) -> list[str]:
    eta = eta_text(doc)
    lines = [
        f"batch {doc['batch']}: {doc['done']} of {doc['total']} done "
        f"({math.floor(doc['progress'] * 100)}%), ETA {eta}",
        f"  {counts_text(doc['counts'])}",
        f"  {doc['cuits']} CUITs, created {doc['created_at']}",
    ]
    if doc["paused_lanes"]:
        lines.append(
            f"  {doc['paused_lanes']} of its lanes are paused: their jobs wait "
            "(tfq lanes; tfq lanes resume CUIT)"
        )
    return lines


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


# --- lanes ----------------------------------------------------------------------------


def lane_row(
    cuit: str, depth: int, state: dict[str, str], ready_at: float | None, now: float
) -> dict[str, Any]:
    """One lane as `tfq lanes` shows it, from its depth, state hash and ready score."""
    leased = bool(state.get("token"))
    paused = state.get("paused") or None
    paused_until = _float(state.get("paused_until"))
    next_at = _float(state.get("next_at"))
    next_slot: float | None = None
    if leased:
        status = "sending"
    elif paused:
        status = "paused"
        if paused_until is not None and depth:
            next_slot = max(paused_until, next_at or 0.0)
    elif depth == 0:
        status = "idle"
    else:
        next_slot = ready_at if ready_at is not None else max(now, next_at or 0.0)
        status = "ready" if next_slot <= now else "waiting"
    expires = _float(state.get("expires"))
    return {
        "cuit": cuit,
        "depth": depth,
        "status": status,
        "next_slot_at": iso(next_slot),
        "next_slot_in_seconds": None if next_slot is None else round(max(0.0, next_slot - now), 1),
        "paused_reason": paused,
        "paused_until": iso(paused_until),
        "leased": leased,
        "lease_owner": state.get("owner") if leased else None,
        "lease_expires_in_seconds": (
            round(expires - now, 1) if leased and expires is not None else None
        ),
        "failures": int(state.get("failures") or 0),
        "last_sent_at": iso(_float(state.get("last_sent"))),
    }


def lanes_doc(store: LaneStore, *, limit: int) -> dict[str, Any]:
    """Every lane, deepest first (then by CUIT), cut to `limit`; totals over all of them."""
    r, keys = store.r, store.keys
    cuits = sorted(text(c) for c in r.smembers(keys.lanes))
    now = store.now()
    rows: list[dict[str, Any]] = []
    for start in range(0, len(cuits), PIPELINE_CHUNK):
        chunk = cuits[start : start + PIPELINE_CHUNK]
        pipe = r.pipeline(transaction=False)
        for cuit in chunk:
            pipe.llen(keys.lane(cuit))
            pipe.hgetall(keys.lane_state(cuit))
            pipe.zscore(keys.ready, cuit)
        replies = pipe.execute()
        for i, cuit in enumerate(chunk):
            depth, raw_state, score = replies[3 * i : 3 * i + 3]
            state = {text(k): text(v) for k, v in raw_state.items()}
            rows.append(lane_row(cuit, int(depth), state, _float(score), now))
    rows.sort(key=lambda row: (-row["depth"], row["cuit"]))
    down = store.down()
    down_until = _float(down.get("until"))
    return {
        "now": iso(now),
        "service_down": (
            {"until": iso(down_until), "reason": down.get("reason") or None}
            if down_until is not None and down_until > now
            else None
        ),
        "lanes": len(rows),
        "with_jobs": sum(1 for row in rows if row["depth"]),
        "queued_jobs": sum(row["depth"] for row in rows),
        "paused": sum(1 for row in rows if row["paused_reason"]),
        "leased": sum(1 for row in rows if row["leased"]),
        "shown": min(limit, len(rows)),
        "rows": rows[:limit],
    }


def lanes_table(doc: dict[str, Any]) -> Table:
    table = Table(["CUIT", "depth", "state", "next slot", "paused", "lease"])
    for row in doc["rows"]:
        if row["next_slot_in_seconds"] is None:
            slot = "-"
        elif row["next_slot_in_seconds"] <= 0:
            slot = "now"
        else:
            slot = f"in {duration(row['next_slot_in_seconds'])}"
        paused = row["paused_reason"] or "-"
        if row["paused_until"]:
            paused += f" (until {row['paused_until']})"
        lease = "no"
        if row["leased"]:
            lease = f"yes, {row['lease_owner']}"
            if row["lease_expires_in_seconds"] is not None:
                lease += f", expires in {duration(row['lease_expires_in_seconds'])}"
        table.rows.append([row["cuit"], str(row["depth"]), row["status"], slot, paused, lease])
    return table


def lanes_summary(doc: dict[str, Any]) -> list[str]:
    lines = []
    if doc["service_down"]:
        down = doc["service_down"]
        lines.append(f"service down until {down['until']}: {down['reason'] or '-'}")
    summary = (
        f"{doc['lanes']} lanes: {doc['with_jobs']} with jobs ({doc['queued_jobs']} queued), "
        f"{doc['paused']} paused, {doc['leased']} sending"
    )
    if doc["shown"] < doc["lanes"]:
        summary += f"; the {doc['shown']} deepest shown (--limit)"
    lines.append(summary)
    return lines


# --- failed ---------------------------------------------------------------------------


def failed_doc(store: LaneStore, *, limit: int) -> dict[str, Any]:
    """Rejected and unknown jobs (the attention index), newest first, with the API's words."""
    r, keys = store.r, store.keys
    total = int(r.zcard(keys.attention))
    raw = r.zrevrange(keys.attention, 0, max(0, limit - 1), withscores=True) if limit else []
    pairs: list[tuple[Any, float]] = list(raw)  # type: ignore[arg-type]
    ids = [text(member) for member, _ in pairs]
    jobs = []
    for (_, score), rec in zip(pairs, store.jobs(ids), strict=True):
        if rec is None:  # a finished record past its retention
            continue
        result = JobResult.from_record(rec).model_dump(mode="json")
        unknown = result["status"] == "unknown"
        jobs.append(
            {
                "job_id": result["job_id"],
                "at": iso(float(score)),
                "cuit": result["cuit"],
                "external_reference": result["external_reference"],
                "batch": result["batch"],
                "status": result["status"],
                "tipo": result["tipo"],
                "punto_venta": result["punto_venta"],
                # An unknown job keeps the number it was sent with until reconciled.
                "numero": int(rec["numero"]) if unknown and rec.get("numero") else None,
                "messages": result["errors"] or result["last_messages"],
                "last_error": result["last_error"],
                "attempts": result["attempts"],
            }
        )
    return {"total": total, "shown": len(jobs), "jobs": jobs}


def failed_table(doc: dict[str, Any]) -> Table:
    table = Table(["when", "job", "CUIT", "external_reference", "status", "invoice", "messages"])
    for job in doc["jobs"]:
        messages = "; ".join(str(m) for m in job["messages"]) or job["last_error"] or "-"
        if job["status"] == "unknown":
            messages = f"reconciling with facturacion/consulta; last: {messages}"
        invoice = f"{job['tipo']} {invoice_number(job['punto_venta'], job['numero'])}"
        table.rows.append(
            [
                job["at"] or "-",
                job["job_id"],
                job["cuit"],
                job["external_reference"],
                job["status"],
                invoice,
                messages,
            ]
        )
    return table


# --- results (the demo) ---------------------------------------------------------------


def results_table(results: list[dict[str, Any]]) -> Table:
    table = Table(["external_reference", "status", "tipo", "numero", "CAE", "errors"])
    for res in results:
        table.rows.append(
            [
                str(res["external_reference"]),
                str(res["status"]),
                str(res["tipo"]),
                invoice_number(res.get("punto_venta"), res.get("numero")),
                res["cae"] or ("test mode" if res.get("test_mode") else "-"),
                "; ".join(str(e) for e in res.get("errors") or []) or "-",
            ]
        )
    return table


def ledger_summary(ledger: dict[str, Any], refs: set[str]) -> dict[str, Any]:
    """The sandbox's ledger, for our jobs: issued once each? any rule broken?"""
    issued = [i for i in ledger.get("issued", []) if i.get("external_reference") in refs]
    per_ref: dict[str, int] = {}
    for item in issued:
        per_ref[item["external_reference"]] = per_ref.get(item["external_reference"], 0) + 1
    calls: dict[str, int] = {}
    for call in ledger.get("calls", []):
        calls[call["endpoint"]] = calls.get(call["endpoint"], 0) + 1
    return {
        "issued": len(issued),
        "issued_twice": sorted(ref for ref, n in per_ref.items() if n > 1),
        "not_issued": sorted(refs - per_ref.keys()),
        "violations": len(ledger.get("violations", [])),
        "violation_rules": sorted({v.get("rule", "?") for v in ledger.get("violations", [])}),
        "calls": calls,
    }


def ledger_lines(summary: dict[str, Any]) -> list[str]:
    calls = summary["calls"]
    invoicing = {k: v for k, v in calls.items() if k.startswith("facturacion/") and v}
    by_endpoint = ", ".join(f"{n} {endpoint}" for endpoint, n in sorted(invoicing.items()))
    lines = [
        f"sandbox ledger: {summary['issued']} invoices issued, {summary['violations']} violations"
        + (f" ({', '.join(summary['violation_rules'])})" if summary["violations"] else ""),
        f"  API calls: {sum(calls.values())} in all ({by_endpoint or 'none'})",
    ]
    if summary["issued_twice"]:
        lines.append(f"  issued more than once: {', '.join(summary['issued_twice'])}")
    if summary["not_issued"]:
        lines.append(f"  not issued: {', '.join(summary['not_issued'])}")
    return lines
