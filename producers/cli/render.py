"""Turning the read commands' documents into text: lines, and tables that are plain
columns on a pipe and rich tables on a terminal. The documents come from
`worker.store.queries` and `InvoiceQueue`; nothing here reads Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from rich.table import Table as RichTable
from rich.text import Text

from worker.store.jobs import RECORDED, JobStatus

if TYPE_CHECKING:
    from rich.console import Console

    from worker.store.queries import FailedDoc, LanesDoc


# --- small formatting helpers ---------------------------------------------------------


def duration(seconds: float | None) -> str:
    """`45s`, `2m 05s`, `1h 02m`, `3d 04h` from seconds; `-` for None."""
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


# --- status ---------------------------------------------------------------------------


def _cae_text(result: dict[str, Any]) -> str:
    if result.get("cae"):
        due = result.get("cae_vencimiento")
        return f"{result['cae']} (vence {due})" if due else str(result["cae"])
    if result.get("status") == JobStatus.ISSUED and result.get("test_mode"):
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
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in RECORDED)


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


# --- lanes ----------------------------------------------------------------------------


def lanes_table(doc: LanesDoc) -> Table:
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


def lanes_summary(doc: LanesDoc) -> list[str]:
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


def failed_table(doc: FailedDoc) -> Table:
    table = Table(["when", "job", "CUIT", "external_reference", "status", "invoice", "messages"])
    for job in doc["jobs"]:
        messages = "; ".join(str(m) for m in job["messages"]) or job["last_error"] or "-"
        if job["status"] == JobStatus.UNKNOWN:
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
