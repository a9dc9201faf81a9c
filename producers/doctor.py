"""`tfq doctor`: what a tenants file's accounts are like, before going live.

Everything that can be learnt without issuing an invoice, per tenant and punto de venta:

- the credentials and the PDV (a free query by number: 401/403 or a PDV error says so);
- the `test` flag against what the PDV answers (a test PDV's invoices carry no CAE);
- which reading of `numeracion` the account speaks: the next number (older pages, the
  SDK) or the last one issued (the newest page), found with free queries;
- how its "not found" is worded, and whether tfq understands it;
- the clock skew against the API (its HTTP `Date`), which moves AFIP's date windows;
- and, once, Redis' persistence.

It states its cost before it calls: `numeracion` is billed on the newest page ("1 request
= 1 llamada"), one per PDV and tipo checked; the queries are free.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from worker.tenants import Pdv, Tenants
from worker.tusfacturas.client import TusFacturasClient
from worker.tusfacturas.errors import TusFacturasError, says_not_found
from worker.tusfacturas.replies import clean_str, messages

PROBE_NUMBER = 99_999_999  # a number no PDV reaches: its query must answer "not found"
MAX_CLOCK_SKEW_SECONDS = 5.0
QUERY_SPACING_SECONDS = 0.15  # the reference page asks for 100 ms between calls at least


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class PdvReport:
    cuit: str
    punto_venta: int
    test_in_file: bool
    checks: list[Check] = field(default_factory=list)
    numeracion_reading: str = "unknown"  # "next", "last issued", or "unknown"
    not_found_wording: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


@dataclass
class DoctorReport:
    api_url: str
    paid_requests: int
    pdvs: list[PdvReport]
    redis: list[Check]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pdvs) and all(c.ok for c in self.redis)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "api_url": self.api_url,
            "paid_requests": self.paid_requests,
            "pdvs": [asdict(p) | {"ok": p.ok} for p in self.pdvs],
            "redis": [asdict(c) for c in self.redis],
        }


def cost(tenants: Tenants, tipos: list[str]) -> int:
    """Billed requests a doctor run makes: one numeracion per PDV and tipo."""
    return sum(len(t.pdv) for t in tenants.tenants) * len(tipos)


class Doctor:
    def __init__(
        self, client: TusFacturasClient, *, spacing_seconds: float = QUERY_SPACING_SECONDS
    ):
        self.client = client
        self.spacing = spacing_seconds
        self._last_call = 0.0

    def _paced(self) -> None:
        wait = self._last_call + self.spacing - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_call = time.monotonic()

    def check_pdv(self, cuit: str, pdv: Pdv, tipos: list[str]) -> PdvReport:
        report = PdvReport(cuit, pdv.punto_venta, pdv.test)
        tipo = tipos[0]
        self._paced()
        try:
            probe = self.client.lookup(pdv, tipo, PROBE_NUMBER)
        except TusFacturasError as exc:
            report.add("credentials and PDV", False, _failure(exc))
            return report
        report.add(
            "credentials and PDV",
            probe is None,
            "accepted (a free query by number answered)"
            if probe is None
            else f"number {PROBE_NUMBER} is issued: this PDV is not what it seems",
        )
        skew = self._clock_skew()
        if skew is None:
            report.add("clock", True, "the API sent no Date header; skew unknown")
        else:
            report.add(
                "clock",
                abs(skew) <= MAX_CLOCK_SKEW_SECONDS,
                f"this machine is {skew:+.1f} s from the API's clock"
                + ("" if abs(skew) <= MAX_CLOCK_SKEW_SECONDS else ": fix NTP before going live"),
            )
        self._not_found(report, pdv, tipo)
        for one in tipos:
            self._numeracion(report, pdv, one)
        return report

    def _clock_skew(self) -> float | None:
        stamp = self.client.last_reply_date
        if not stamp:
            return None
        try:
            server = parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            return None
        return (datetime.now(UTC) - server).total_seconds()

    def _not_found(self, report: PdvReport, pdv: Pdv, tipo: str) -> None:
        """How `consulta` says "not found": the docs show no such reply."""
        self._paced()
        try:
            body = self.client.raw_query(
                pdv,
                "facturacion/consulta",
                {
                    "comprobante": {
                        "tipo": tipo,
                        "operacion": "V",
                        "punto_venta": pdv.punto_venta,
                        "numero": PROBE_NUMBER,
                    }
                },
            )
        except TusFacturasError as exc:
            report.add("not found", False, f"consulta failed: {_failure(exc)}")
            return
        texts = messages(body.get("errores"))
        if clean_str(body.get("error")).upper() != "S":
            report.not_found_wording = "(no error)"
            report.add(
                "not found",
                False,
                f"consulta for number {PROBE_NUMBER} answered without an error",
            )
        else:
            report.not_found_wording = " | ".join(texts)
            understood = says_not_found(texts)
            report.add(
                "not found",
                understood,
                f"worded {report.not_found_wording!r}; "
                + (
                    "tfq reads it as not found"
                    if understood
                    else "tfq does not read it as not found (it relies on consulta_avanzada's "
                    "empty list, which this account answered)"
                ),
            )

    def _numeracion(self, report: PdvReport, pdv: Pdv, tipo: str) -> None:
        self._paced()
        try:
            asked = self.client.numeracion(pdv, tipo)
        except TusFacturasError as exc:
            report.add(f"numeracion {tipo}", False, _failure(exc))
            return
        try:
            self._paced()
            at = self.client.lookup(pdv, tipo, asked) if asked > 0 else None
            self._paced()
            before = self.client.lookup(pdv, tipo, asked - 1) if asked > 1 else None
        except TusFacturasError as exc:
            report.add(f"numeracion {tipo}", False, f"answered {asked}; {_failure(exc)}")
            return
        if asked == 0 or at is not None:
            reading = "last issued"
            detail = f"answered {asked}: the last number issued" + (
                " (nothing issued yet)" if asked == 0 else f", so the next is {asked + 1}"
            )
        elif asked == 1 or before is not None:
            reading = "next"
            detail = f"answered {asked}: the next number to issue"
            if asked == 1:
                detail += " (or the last issued is 1 and queries do not show it)"
        else:
            reading = "unknown"
            detail = f"answered {asked}, yet neither {asked} nor {asked - 1} is issued"
        report.numeracion_reading = reading
        report.add(f"numeracion {tipo}", reading != "unknown", detail)
        test_seen = at or before
        if test_seen is not None:
            empty_cae = not test_seen.cae
            agrees = empty_cae == pdv.test
            report.add(
                "test flag",
                agrees,
                f"the file says test = {str(pdv.test).lower()}; its invoices carry "
                + ("no CAE (a test PDV)" if empty_cae else "a CAE (a real PDV)"),
            )


def _failure(exc: TusFacturasError) -> str:
    text = "; ".join(exc.messages) or exc.detail
    return f"{exc.kind}: {text}"


def redis_checks(warnings: list[str]) -> list[Check]:
    if not warnings:
        return [Check("redis persistence", True, "appendonly yes, maxmemory-policy noeviction")]
    return [Check("redis persistence", False, w) for w in warnings]


def run_doctor(
    client: TusFacturasClient,
    tenants: Tenants,
    tipos: list[str],
    redis_warnings: list[str],
    *,
    spacing_seconds: float = QUERY_SPACING_SECONDS,
) -> DoctorReport:
    doctor = Doctor(client, spacing_seconds=spacing_seconds)
    reports = [
        doctor.check_pdv(tenant.cuit, pdv, tipos)
        for tenant in tenants.tenants
        for pdv in tenant.pdv
    ]
    return DoctorReport(
        client.base_url, cost(tenants, tipos), reports, redis_checks(redis_warnings)
    )


def render(report: DoctorReport) -> list[str]:
    n = report.paid_requests
    lines = [
        f"tfq doctor: {report.api_url} ({n} billed request{'' if n == 1 else 's'}: numeracion)"
    ]
    for pdv in report.pdvs:
        lines.append(
            f"CUIT {pdv.cuit} PDV {pdv.punto_venta} (test = {str(pdv.test_in_file).lower()}): "
            + ("ok" if pdv.ok else "PROBLEMS")
        )
        lines += [f"  {'ok ' if c.ok else 'BAD'} {c.name}: {c.detail}" for c in pdv.checks]
    lines += [f"{'ok ' if c.ok else 'BAD'} {c.name}: {c.detail}" for c in report.redis]
    lines.append("all checks passed" if report.ok else "some checks failed: see BAD above")
    return lines
