"""`tfq audit`'s last result per CUIT, kept in Redis for the metrics (`tfq_audit_findings`,
`tfq_audit_last_run_timestamp_seconds`, served by the intake's `QueueCollector`).

One hash (`Keys.audits`): the CUIT -> its last audit's summary as JSON, `{"at": epoch s,
"findings": {kind: count}, ...}`. A later audit of a CUIT replaces its earlier one, so a
clean run after a fix clears what the earlier one found. The metrics add the CUITs up:
no metric has a CUIT label; `tfq audit` names the invoices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from worker.store.jobs import JobStore


class FindingKind(StrEnum):
    """What an audit can find, comparing what TusFacturas holds with tfq's archive."""

    MISSING_IN_TFQ = "missing_in_tfq"  # held by TusFacturas, not by tfq
    MISSING_IN_TUSFACTURAS = "missing_in_tusfacturas"  # held by tfq, not by TusFacturas
    DUPLICATE_REFERENCE = "duplicate_reference"  # one external_reference issued twice
    NUMBERING_GAP = "numbering_gap"  # numbers neither holds between the first and last
    MISMATCH = "mismatch"  # same invoice, another total, CAE or receptor document


@dataclass(frozen=True)
class AuditSummary:
    """What the metrics keep of one audit."""

    cuit: str
    at: float  # when it finished (epoch s)
    start: str  # the period, YYYY-MM-DD
    end: str
    findings: dict[str, int] = field(default_factory=dict)  # by FindingKind

    def as_json(self) -> str:
        return json.dumps(
            {"at": self.at, "start": self.start, "end": self.end, "findings": self.findings},
            sort_keys=True,
        )


def record_audit(store: JobStore, summary: AuditSummary) -> None:
    """Keep `summary` as its CUIT's last audit."""
    store.r.hset(store.keys.audits, summary.cuit, summary.as_json())


@dataclass(frozen=True)
class AuditTotals:
    """The CUITs' last audits added up: findings by kind, and the latest run (None: no
    audit has run under this prefix)."""

    findings: dict[FindingKind, int]
    last_run: float | None


def audit_totals(raw: dict[str, str]) -> AuditTotals:
    """The totals of the `audits` hash as read (CUIT -> JSON); unreadable entries are
    skipped, never fatal to a scrape."""
    findings = dict.fromkeys(FindingKind, 0)
    last: float | None = None
    for value in raw.values():
        try:
            doc: Any = json.loads(value)
            at = float(doc["at"])
            counts = doc.get("findings") or {}
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        last = at if last is None else max(last, at)
        for kind in FindingKind:
            try:
                findings[kind] += int(counts.get(kind, 0))
            except (TypeError, ValueError, AttributeError):
                continue
    return AuditTotals(findings, last)
