"""`tfq audit`: what TusFacturas holds for a period against what tfq's archive holds.

The walk. `facturacion/consulta_avanzada` by date (`busqueda_tipo` "F"), one call per day
and punto de venta, and one more for each further page of 1000 (`pagina` from 0). By date
rather than by number range ("TN"): a number range needs the numbers first, and the
only ones tfq has are its own, so an invoice issued outside tfq before the first or after
the last of them would never be asked for (exactly what the audit looks for); numeracion,
which would give the last one, is billed on the newest page. By date, one call covers
every tipo of the day, so the cost does not grow with the tipos; `--tipo` filters the
rows. Answers are per PDV of the credentials (the docs' "consideraciones importantes").

The cost. consulta_avanzada "no contabiliza como un request" (vousys/tusfacturas-api,
consulta-avanzada.md, commit 00e6649): no call of an audit is billed. It is still paced
(`wait_account_turn`): each call waits for its account's slot in Redis, shared with the
workers' calls, which it slows down by as much. And bounded: at most `MAX_DAYS` days, at
most `max_calls` calls in all (the plan states the count before anything is sent), and
the first error stops the walk with what it was doing.

The comparison (`compare`) is a pure function of the two sides' `Record`s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine

from worker.accounting.sales import Period, Sale, Sales
from worker.errors import TfqError
from worker.store.audits import FindingKind
from worker.store.jobs import JobStore
from worker.store.schedules import wait_account_turn
from worker.tenants import Pacing, Pdv
from worker.tusfacturas.client import CONSULTA_AVANZADA, TusFacturasClient, not_issued
from worker.tusfacturas.errors import TusFacturasError
from worker.tusfacturas.replies import clean_str, issued_from_consulta

MAX_DAYS = 366  # a longer period is refused: split it
PAGE_SIZE = 1000  # consulta_avanzada's largest page
DEFAULT_MAX_CALLS = 5000  # calls in all, further pages included
BILLED_CALLS = 0  # consulta_avanzada does not count against the plan
# The longest one call waits for its account's turn before the audit gives up: the
# workers share the account and come first in nothing, so this is generous.
MAX_PACING_WAIT_SECONDS = 60.0
CENT = Decimal("0.01")


class AuditError(TfqError):
    """The walk stopped: a call failed, pacing gave no turn, or the call bound was hit."""


@dataclass(frozen=True)
class Record:
    """One issued invoice as one side holds it; `job_id` only on tfq's side."""

    punto_venta: int
    tipo: str
    numero: int
    total: Decimal | None
    cae: str
    documento_nro: str
    external_reference: str
    fecha: date | None = None
    job_id: str | None = None

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.punto_venta, self.tipo, self.numero)


@dataclass(frozen=True)
class Finding:
    """Something to look at: which invoice, its job when tfq has one, what is wrong and
    what to do."""

    kind: FindingKind
    punto_venta: int
    tipo: str
    numero: int
    detail: str
    action: str
    job_id: str | None = None
    external_reference: str = ""
    numero_hasta: int | None = None  # numbering_gap: the last missing number of the hole
    field: str = ""  # mismatch: which field
    tfq: str = ""  # mismatch: tfq's value
    tusfacturas: str = ""  # mismatch: TusFacturas' value

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if k == "kind" else v) for k, v in asdict(self).items()}

    @property
    def invoice(self) -> str:
        numbers = f"{self.numero:08d}"
        if self.numero_hasta is not None and self.numero_hasta != self.numero:
            numbers += f"..{self.numero_hasta:08d}"
        return f"{self.tipo} {self.punto_venta:05d}-{numbers}"


# --- the two sides ------------------------------------------------------------------------


def record_of_sale(sale: Sale) -> Record:
    return Record(
        punto_venta=sale.punto_venta,
        tipo=sale.tipo,
        numero=sale.numero,
        total=sale.total,
        cae=sale.cae.strip(),
        documento_nro=sale.documento_nro.strip(),
        external_reference=sale.external_reference,
        fecha=sale.fecha,
        job_id=sale.job_id,
    )


def record_of_row(row: dict[str, Any], pdv: Pdv) -> Record | None:
    """A consulta_avanzada row as a Record; None when it is not an issued invoice (queued,
    failed) or names no number."""
    comp = row.get("comprobante") if isinstance(row.get("comprobante"), dict) else row
    status = clean_str(comp.get("status")) if isinstance(comp, dict) else ""
    if not_issued(status):
        return None
    issued = issued_from_consulta(row, test_mode=pdv.test)
    if issued.numero is None or not issued.tipo:
        return None
    return Record(
        punto_venta=issued.punto_venta or pdv.punto_venta,
        tipo=issued.tipo,
        numero=issued.numero,
        total=issued.total,
        cae=issued.cae.strip(),
        documento_nro=(issued.documento_nro or "").strip(),
        external_reference=issued.external_reference,
        fecha=issued.fecha,
    )


def archive_records(
    engine: Engine, cuit: str, start: date, end: date, punto_venta: int | None, tipo: str | None,
    *, include_test: bool = False,
) -> list[Record]:  # fmt: skip
    """What tfq's archive holds as issued for the period."""
    period = Period(
        start, end, cuits=frozenset({cuit}), punto_venta=punto_venta, tipo=tipo,
        include_test=include_test,
    )  # fmt: skip
    return [record_of_sale(s) for s in Sales(engine).all(period)]


# --- the plan and the walk ----------------------------------------------------------------


@dataclass(frozen=True)
class AuditPlan:
    """What an audit will ask, stated before anything is sent."""

    cuit: str
    start: date
    end: date
    pdvs: list[Pdv]
    tipo: str | None
    max_calls: int = DEFAULT_MAX_CALLS

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def calls(self) -> int:
        """The calls it makes when no day holds more than one page: days x PDVs."""
        return len(self.days) * len(self.pdvs)

    @property
    def billed_calls(self) -> int:
        return BILLED_CALLS

    def as_dict(self) -> dict[str, Any]:
        return {
            "cuit": self.cuit,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "puntos_de_venta": [p.punto_venta for p in self.pdvs],
            "tipo": self.tipo,
            "endpoint": CONSULTA_AVANZADA,
            "busqueda_tipo": "F",
            "calls": self.calls,
            "max_calls": self.max_calls,
            "billed_calls": self.billed_calls,
        }

    def describe(self) -> str:
        pvs = ", ".join(str(p.punto_venta) for p in self.pdvs)
        return (
            f"tfq audit of CUIT {self.cuit}, {self.start} to {self.end} "
            f"({len(self.days)} day{'' if len(self.days) == 1 else 's'}), PDV {pvs}"
            + (f", {self.tipo}" if self.tipo else "")
            + f": {_calls(self.calls)} to {CONSULTA_AVANZADA} (one per day and PDV, one more "
            f"per further {PAGE_SIZE} invoices of a day; never more than {self.max_calls}), "
            f"{self.billed_calls} billed; each waits for its account's pacing slot, "
            "shared with the workers"
        )


def check_plan(plan: AuditPlan) -> None:
    """ValueError for a plan tfq refuses to run."""
    if plan.end < plan.start:
        raise ValueError(f"--to {plan.end} is before --from {plan.start}")
    if len(plan.days) > MAX_DAYS:
        raise ValueError(f"{len(plan.days)} days: at most {MAX_DAYS} a run; split the period")
    if not plan.pdvs:
        raise ValueError(f"CUIT {plan.cuit} has no punto de venta to audit")
    if plan.calls > plan.max_calls:
        raise ValueError(
            f"{plan.calls} calls at least, over --max-calls {plan.max_calls}: "
            "a shorter period, or one PDV at a time"
        )


class Walk:
    """Every issued invoice TusFacturas holds for the plan's period, paced and bounded."""

    def __init__(
        self,
        client: TusFacturasClient,
        store: JobStore,
        pacing: Callable[[Pdv], Pacing],
        default_max_rps: float,
        *,
        max_pacing_wait_seconds: float = MAX_PACING_WAIT_SECONDS,
    ):
        self.client = client
        self.store = store
        self.pacing = pacing
        self.default_max_rps = default_max_rps
        self.max_wait = max_pacing_wait_seconds
        self.calls = 0

    def records(self, plan: AuditPlan) -> list[Record]:
        out: list[Record] = []
        for pdv in plan.pdvs:
            for day in plan.days:
                out += self._day(plan, pdv, day)
        return out

    def _day(self, plan: AuditPlan, pdv: Pdv, day: date) -> list[Record]:
        found: list[Record] = []
        pagina = 0
        while True:
            rows = self._call(plan, pdv, day, pagina)
            for row in rows:
                record = record_of_row(row, pdv)
                if record is not None and (plan.tipo is None or record.tipo == plan.tipo):
                    found.append(record)
            if len(rows) < PAGE_SIZE:
                return found
            pagina += 1

    def _call(self, plan: AuditPlan, pdv: Pdv, day: date, pagina: int) -> list[dict[str, Any]]:
        where = f"PDV {pdv.punto_venta}, {day.isoformat()}, page {pagina}"
        if self.calls >= plan.max_calls:
            raise AuditError(
                f"stopped at {where}: {self.calls} calls made, the bound (--max-calls); "
                "a shorter period, or one PDV at a time"
            )
        pacing = self.pacing(pdv)
        interval = pacing.interval_seconds(self.default_max_rps)
        if not wait_account_turn(
            self.store, pacing.account, interval, CONSULTA_AVANZADA, self.max_wait
        ):
            raise AuditError(
                f"stopped at {where}: account {pacing.account} gave no pacing turn within "
                f"{self.max_wait:.0f} s (the workers are using it); try again later"
            )
        self.calls += 1
        try:
            return self.client.consulta_avanzada(
                pdv, "F", {"fecha": day.strftime("%d/%m/%Y")}, pagina=pagina, limite=PAGE_SIZE
            )
        except TusFacturasError as exc:
            text = "; ".join(exc.messages) or exc.detail
            raise AuditError(f"stopped at {where}: {exc.kind}: {text}") from None


# --- the comparison -----------------------------------------------------------------------


def _money(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return value.quantize(CENT)
    except InvalidOperation:
        return value


def _doc(value: str) -> str:
    """A document number as AFIP reads it: its digits (the API pads and dashes them)."""
    digits = "".join(c for c in value if c.isdigit())
    return digits.lstrip("0") or digits


def _mismatches(ours: Record, theirs: Record) -> Iterable[tuple[str, str, str]]:
    """(field, tfq's value, TusFacturas' value) for each field that differs; a field one
    side does not state is not compared."""
    a, b = _money(ours.total), _money(theirs.total)
    if a is not None and b is not None and a != b:
        yield "total", str(a), str(b)
    if (ours.cae or theirs.cae) and ours.cae != theirs.cae:
        yield "cae", ours.cae, theirs.cae
    if (
        ours.documento_nro
        and theirs.documento_nro
        and _doc(ours.documento_nro) != _doc(theirs.documento_nro)
    ):
        yield "documento_nro", ours.documento_nro, theirs.documento_nro


ACTIONS = {
    FindingKind.MISSING_IN_TFQ: (
        "find its job: `tfq status --cuit CUIT --ref EXTERNAL_REFERENCE` (runbook "
        "audit-findings.md): a job unknown or rejected "
        "there lost its reply, never enqueue it again; no job: it was issued outside "
        "tfq: book it, or undo it with a credit note"
    ),
    FindingKind.MISSING_IN_TUSFACTURAS: (
        "check it with facturacion/consulta (free) and in AFIP's own records; if AFIP "
        "never authorized it, tfq's record is wrong: escalate before anything is re-issued"
    ),
    FindingKind.DUPLICATE_REFERENCE: (
        "one sale invoiced twice: keep one and undo the other with a credit note "
        "(`tfq void JOB` for tfq's jobs)"
    ),
    FindingKind.NUMBERING_GAP: (
        "audit a wider period (an invoice dated outside it keeps its number inside); "
        "then look the numbers up with facturacion/consulta: AFIP numbers without holes"
    ),
    FindingKind.MISMATCH: (
        "TusFacturas' copy is what AFIP authorized: check the archived request of the job "
        "(`tfq status JOB`) and correct the books, or undo and re-issue with a credit note"
    ),
}


def compare(theirs: list[Record], ours: list[Record]) -> list[Finding]:
    """The findings of an audit: TusFacturas' records (`theirs`) against tfq's (`ours`),
    both of one CUIT and period. Sorted by PDV, tipo, number, kind."""
    findings: list[Finding] = []
    t_by: dict[tuple[int, str, int], Record] = {}
    o_by: dict[tuple[int, str, int], Record] = {}
    for r in theirs:
        t_by.setdefault(r.key, r)
    for r in ours:
        if r.key in o_by:  # two jobs recorded with one number: never expected
            first = o_by[r.key]
            findings.append(_finding(
                FindingKind.MISMATCH, r, f"jobs {first.job_id} and {r.job_id} both record "
                "this number", field="job_id", tfq=f"{first.job_id}, {r.job_id}",
            ))  # fmt: skip
            continue
        o_by[r.key] = r

    for key, t in t_by.items():
        o = o_by.get(key)
        if o is None:
            ref = f" (external_reference {t.external_reference!r})" if t.external_reference else ""
            findings.append(_finding(
                FindingKind.MISSING_IN_TFQ, t, f"TusFacturas holds it{ref}; tfq's archive "
                "has no issued job with this number",
            ))  # fmt: skip
            continue
        for name, mine, vendor in _mismatches(o, t):
            findings.append(_finding(
                FindingKind.MISMATCH, o, f"{name}: tfq has {mine!r}, TusFacturas {vendor!r}",
                field=name, tfq=mine, tusfacturas=vendor,
            ))  # fmt: skip
    for key, o in o_by.items():
        if key not in t_by:
            findings.append(_finding(
                FindingKind.MISSING_IN_TUSFACTURAS, o, f"tfq's job {o.job_id} recorded it "
                "issued; TusFacturas holds no invoice with this number for the period",
            ))  # fmt: skip

    # One invoice per number: tfq's record where it has one (it names the job).
    union = {**t_by, **o_by}
    findings += _duplicates(union.values())
    findings += _gaps(union.keys())
    order = list(FindingKind)
    findings.sort(key=lambda f: (f.punto_venta, f.tipo, f.numero, order.index(f.kind)))
    return findings


def _finding(
    kind: FindingKind, r: Record, detail: str, *, field: str = "", tfq: str = "",
    tusfacturas: str = "",
) -> Finding:  # fmt: skip
    return Finding(
        kind, r.punto_venta, r.tipo, r.numero, detail, ACTIONS[kind], job_id=r.job_id,
        external_reference=r.external_reference, field=field, tfq=tfq, tusfacturas=tusfacturas,
    )  # fmt: skip


def _duplicates(records: Iterable[Record]) -> list[Finding]:
    """Each invoice after the first (by PDV, tipo, number) whose external_reference another
    invoice of the period already carries, in either source."""
    by_ref: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.external_reference:
            by_ref[r.external_reference].append(r)
    out = []
    for ref, group in by_ref.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda r: r.key)
        first = group[0]
        named = f"{first.tipo} {first.punto_venta:05d}-{first.numero:08d}" + (
            f" (job {first.job_id})" if first.job_id else ""
        )
        for r in group[1:]:
            out.append(_finding(
                FindingKind.DUPLICATE_REFERENCE, r, f"external_reference {ref!r} was "
                f"issued before as {named}",
            ))  # fmt: skip
    return out


def _gaps(keys: Iterable[tuple[int, str, int]]) -> list[Finding]:
    """The holes in the numbering of each (PDV, tipo), between the first and the last
    number either source holds: one finding per run of missing numbers."""
    numbers: dict[tuple[int, str], set[int]] = defaultdict(set)
    for pv, tipo, numero in keys:
        numbers[(pv, tipo)].add(numero)
    out = []
    for (pv, tipo), held in numbers.items():
        ordered = sorted(held)
        for before, after in pairwise(ordered):
            if after - before > 1:
                first, last = before + 1, after - 1
                count = last - first + 1
                out.append(Finding(
                    FindingKind.NUMBERING_GAP, pv, tipo, first,
                    f"{count} number{'' if count == 1 else 's'} between {before} and {after} "
                    "held by neither TusFacturas nor tfq for the period",
                    ACTIONS[FindingKind.NUMBERING_GAP], numero_hasta=last,
                ))  # fmt: skip
    return out


# --- the report -----------------------------------------------------------------------------


@dataclass
class AuditReport:
    plan: AuditPlan
    held_by_tusfacturas: int
    held_by_tfq: int
    calls: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((str(k) for k in FindingKind), 0)
        for f in self.findings:
            counts[str(f.kind)] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "plan": self.plan.as_dict(),
            "calls": self.calls,
            "billed_calls": self.plan.billed_calls,
            "held_by_tusfacturas": self.held_by_tusfacturas,
            "held_by_tfq": self.held_by_tfq,
            "counts": self.counts(),
            "findings": [f.as_dict() for f in self.findings],
        }


def run_audit(
    plan: AuditPlan, walk: Walk, engine: Engine, *, include_test: bool = False
) -> AuditReport:
    """Walk TusFacturas, read the archive, compare; AuditError when the walk stops."""
    theirs = walk.records(plan)
    pv = plan.pdvs[0].punto_venta if len(plan.pdvs) == 1 else None
    ours = archive_records(
        engine, plan.cuit, plan.start, plan.end, pv, plan.tipo, include_test=include_test
    )
    audited = {p.punto_venta for p in plan.pdvs}
    ours = [r for r in ours if r.punto_venta in audited]
    return AuditReport(plan, len(theirs), len(ours), walk.calls, compare(theirs, ours))


def render(report: AuditReport) -> list[str]:
    lines = [
        f"tfq audit: CUIT {report.plan.cuit}, {report.plan.start} to {report.plan.end}: "
        f"{report.held_by_tusfacturas} invoices at TusFacturas, {report.held_by_tfq} in "
        f"tfq's archive ({_calls(report.calls)}, {report.plan.billed_calls} billed)"
    ]
    for f in report.findings:
        job = f" job {f.job_id}" if f.job_id else ""
        lines.append(f"{f.kind} {f.invoice}{job}: {f.detail}")
        lines.append(f"  do: {f.action}")
    if report.clean:
        lines.append("clean: both hold the same invoices")
    else:
        summary = ", ".join(f"{n} {k}" for k, n in report.counts().items() if n)
        count = len(report.findings)
        lines.append(f"{count} finding{'' if count == 1 else 's'}: {summary}")
    return lines


def _calls(count: int) -> str:
    return f"{count} call" if count == 1 else f"{count} calls"
