"""Audit the sandbox ledger against what was submitted: exactly once, in order, never too fast.

Used by the integration tests, the benchmark and the chaos runner, so they all judge a
run by the same rules.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

INVOICING = ("facturacion/nuevo", "facturacion/lotes")


@dataclass
class Audit:
    submitted: int = 0
    issued: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (cuit, ref) issued twice+
    missing: list[tuple[str, str]] = field(
        default_factory=list
    )  # submitted, neither issued nor excused
    unexpected: list[tuple[str, str]] = field(default_factory=list)  # issued, never submitted
    order_violations: list[str] = field(default_factory=list)
    gap_violations: list[str] = field(default_factory=list)
    # Informational: other rules the sandbox saw broken (a resend that met 10016, ...), how
    # many invoicing calls there were and the closest two of a CUIT (seconds).
    other_violations: list[str] = field(default_factory=list)
    invoicing_calls: int = 0
    min_call_interval: float | None = None

    @property
    def clean(self) -> bool:
        return not (
            self.duplicates
            or self.missing
            or self.unexpected
            or self.order_violations
            or self.gap_violations
        )

    def summary(self) -> dict[str, int]:
        return {
            "submitted": self.submitted,
            "issued": self.issued,
            "duplicates": len(self.duplicates),
            "missing": len(self.missing),
            "unexpected": len(self.unexpected),
            "order_violations": len(self.order_violations),
            "gap_violations": len(self.gap_violations),
            "other_violations": len(self.other_violations),
            "invoicing_calls": self.invoicing_calls,
        }


def audit(
    ledger: dict[str, Any],
    submitted: Iterable[tuple[str, str]],
    *,
    gap_seconds: float,
    excused: Iterable[tuple[str, str]] = (),
    blocked_externally: Iterable[str] = (),
    tolerance_seconds: float = 0.002,
) -> Audit:
    """Check the ledger.

    `submitted` is (cuit, external_reference) in enqueue order; `excused` are keys that
    may legitimately stay unissued (rejected or reported as needing attention).
    `blocked_externally` are CUITs that AFIP blocked for reasons of its own (a chaos
    fault): a block can only be discovered by calling, so the first call into it is not
    held against us; any further call during the block is.
    """
    order = list(submitted)
    position = {key: i for i, key in enumerate(order)}
    excused_set = set(excused)
    # Only this run's CUITs: a sandbox shared by several runs holds others too.
    cuits = {cuit for cuit, _ in order}
    issued = [inv for inv in ledger["issued"] if inv["cuit"] in cuits]
    result = Audit(submitted=len(order), issued=len(issued))

    counts = Counter((i["cuit"], i["external_reference"]) for i in issued)
    result.duplicates = sorted(k for k, n in counts.items() if n > 1)
    result.unexpected = sorted(k for k in counts if k not in position)
    result.missing = [k for k in order if k not in counts and k not in excused_set]

    # Per CUIT + punto de venta + tipo: numbers 1, 2, 3... in enqueue order.
    sequences: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for inv in issued:
        sequences[(inv["cuit"], int(inv["punto_venta"]), inv["tipo"])].append(inv)
    for seq, invoices in sequences.items():
        invoices.sort(key=lambda inv: int(inv["numero"]))
        numbers = [int(inv["numero"]) for inv in invoices]
        if numbers != list(range(1, len(numbers) + 1)):
            result.order_violations.append(f"{seq}: numbers are not 1, 2, 3...: {numbers[:20]}")
        enq = [position.get((inv["cuit"], inv["external_reference"]), -1) for inv in invoices]
        if enq != sorted(enq):
            result.order_violations.append(f"{seq}: numbers not in enqueue order")

    # Per CUIT: invoicing calls at least the gap apart (the sandbox also flags them).
    discoveries = set(blocked_externally)
    for v in sorted(ledger.get("violations", []), key=lambda v: float(v.get("arrival", 0))):
        if v.get("cuit") not in cuits:
            continue
        if v.get("rule") == "blocked" and v.get("cuit") in discoveries:
            discoveries.discard(v["cuit"])
            continue
        if v.get("rule") in ("gap", "blocked"):
            result.gap_violations.append(f"sandbox: {v.get('cuit')}: {v.get('detail')}")
        else:
            result.other_violations.append(f"sandbox {v.get('rule')}: {v.get('detail')}")
    arrivals: dict[str, list[float]] = defaultdict(list)
    for call in ledger.get("calls", []):
        if call.get("endpoint") in INVOICING and call.get("cuit") in cuits:
            arrivals[call["cuit"]].append(float(call["arrival"]))
            result.invoicing_calls += 1
    for cuit, times in arrivals.items():
        times.sort()
        for a, b in itertools.pairwise(times):
            if result.min_call_interval is None or b - a < result.min_call_interval:
                result.min_call_interval = b - a
            if b - a < gap_seconds - tolerance_seconds:
                result.gap_violations.append(f"{cuit}: calls {b - a:.3f} s apart")
    return result
