"""The sandbox's state machine: a fake TusFacturas API v2 without the HTTP.

Everything here is synchronous and pure Python; `ops.sandbox.app` only adds the transport
(reading bodies, sleeping for latency, dropping connections). Shapes and texts follow
`docs/reference/tusfacturas_api.md` (§1-§6.1) and `afip_rules.md` (§2, §3).

An invoicing call (`facturacion/nuevo`, `facturacion/lotes`) goes through two phases:

1. `Sandbox.admit` (at arrival, before any latency): maintenance, body, credentials,
   the account's per-second limit (429, `ops.sandbox.accounts`; queries too), pre-commit
   faults (429, 5xx), AFIP down, quota, TusFacturas-side validation (blocks, punto de
   venta, tipo, lotes structure), then the per-CUIT gap / block rule. Refusals
   here never reach "AFIP" and do not count for the gap.
2. `Sandbox.commit` (after the latency; the app shields it from client disconnects):
   the AFIP-side checks (total re-check, numbering 10016, date window, 10036, 10032,
   `reject_ref_pattern`), then the invoice(s) are issued and the post-commit fault, if
   any, is chosen.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ops.sandbox.accounts import AccountLimits
from ops.sandbox.afip import CAE_BASE, Afip, qr_url
from ops.sandbox.api import NUEVO, Rejection, Reply, error_body
from ops.sandbox.config import SandboxConfig
from ops.sandbox.dates import AR_TZ, ar_today, fmt_date
from ops.sandbox.dialect import Dialect, dialect_from_json
from ops.sandbox.faults import Faults
from ops.sandbox.invoice import TIPO_CODES, Invoice, parse_invoice, parse_lotes
from ops.sandbox.queries import Archive, Stored, answer_query
from ops.sandbox.texts import (
    HTML_5XX,
    HTML_524,
    HTML_GARBAGE,
    MSG_CREDENTIALS,
    MSG_NO_PROCESADO,
    MSG_QUOTA,
    MSG_RATE_LIMIT,
    MSG_UNKNOWN,
    afip_down_text,
    msg_10016,
)
from worker.tenants import Pdv, Tenants, UnknownPdv


@dataclass(slots=True)
class Admission:
    """An invoicing call that passed phase 1 and will be committed after the latency."""

    endpoint: str
    cuit: str
    pdv: Pdv
    arrival: float
    invoices: list[Invoice]
    latency_seconds: float


def pdf_links(
    base_url: str, cuit: str, tipo: str, punto_venta: int, numero: int, given_at: float
) -> tuple[str, str]:
    """An invoice's PDF and ticket links, stamped with when they were given (they expire)."""
    name = f"{cuit}-{TIPO_CODES.get(tipo, 0):03d}-{punto_venta:05d}-{numero:08d}"
    stamp = f"?t={given_at:.3f}"
    base = f"{base_url}/_sandbox/pdf/{name}"
    return f"{base}.pdf{stamp}", f"{base}-ticket.pdf{stamp}"


class Sandbox:
    """All sandbox state: AFIP's memory, the archive of issued invoices, ledger and faults."""

    def __init__(self, config: SandboxConfig, tenants: Tenants | None = None):
        self.config = config
        self.tenants = tenants if tenants is not None else Tenants.load(config.tenants_file)
        self._startup_gap = (config.gap_seconds, config.block_seconds)
        self._startup_pdf_link_seconds = config.pdf_link_seconds
        self._startup_dialect = config.dialect
        self._startup_account_max_rps = config.account_max_rps
        self.accounts = AccountLimits(self.tenants, config.account_max_rps)
        self._credentials: dict[tuple[str, str, str], tuple[str, Pdv] | None] = {}
        self._cae_counter = 0  # never reset: CAEs stay unique for the life of the process
        self.faults = copy.deepcopy(config.faults)
        self.rng = random.Random(config.seed)
        self.issued: list[dict[str, Any]] = []
        self.violations: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.afip = Afip()
        self.archive = Archive()

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear ledger, numbering, blocks and faults; gap/block back to their startup values."""
        self.config.gap_seconds, self.config.block_seconds = self._startup_gap
        self.config.dialect = self._startup_dialect
        self.config.pdf_link_seconds = self._startup_pdf_link_seconds
        self.config.account_max_rps = self._startup_account_max_rps
        self.accounts = AccountLimits(self.tenants, self.config.account_max_rps)
        self.faults = Faults()
        self.rng = random.Random(self.config.seed)
        self.issued = []
        self.violations = []
        self.calls = []
        self.afip = Afip()
        self.archive = Archive()

    def set_config(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = set(data) - {
            "gap_seconds",
            "block_seconds",
            "pdf_link_seconds",
            "account_max_rps",
            "dialect",
        }
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        data = dict(data)
        if "dialect" in data:
            self.config.dialect = dialect_from_json(data.pop("dialect"))
        values = {k: float(v) for k, v in data.items()}
        if any(v < 0 for v in values.values()):
            raise ValueError(
                "gap_seconds, block_seconds, pdf_link_seconds and account_max_rps must be >= 0"
            )
        for key, value in values.items():
            setattr(self.config, key, value)
        self.accounts.default_max_rps = self.config.account_max_rps
        return self.config_json()

    def config_json(self) -> dict[str, Any]:
        return {
            "gap_seconds": self.config.gap_seconds,
            "block_seconds": self.config.block_seconds,
            "pdf_link_seconds": self.config.pdf_link_seconds,
            "account_max_rps": self.config.account_max_rps,
            "dialect": self.config.dialect.spec(),
        }

    @property
    def dialect(self) -> Dialect:
        return self.config.dialect

    def pdf_link_alive(self, given_at: float, now: float) -> bool:
        """Whether a PDF link given at `given_at` (epoch s) still serves its file."""
        return now - given_at <= self.config.pdf_link_seconds

    def ledger(self) -> dict[str, Any]:
        """What was issued, every rule seen broken, every call, and each account's calls
        and calls refused as too fast (`ops.sandbox.accounts`)."""
        return {
            "issued": self.issued,
            "violations": self.violations,
            "calls": self.calls,
            "accounts": self.accounts.to_json(),
        }

    # -- bookkeeping -----------------------------------------------------------------------

    def _call(
        self, endpoint: str, cuit: str | None, arrival: float, outcome: str, n: int = 0
    ) -> None:
        self.calls.append(
            {
                "endpoint": endpoint,
                "cuit": cuit,
                "arrival": arrival,
                "outcome": outcome,
                "invoices": n,
            }
        )

    def _violation(self, rule: str, cuit: str | None, detail: str, arrival: float) -> None:
        self.violations.append({"rule": rule, "cuit": cuit, "detail": detail, "arrival": arrival})

    def _refuse(
        self, endpoint: str, cuit: str | None, arrival: float, rej: Rejection, ext: str = ""
    ) -> Reply:
        if rej.rule:
            self._violation(rej.rule, cuit, rej.detail, arrival)
        self._call(endpoint, cuit, arrival, rej.outcome)
        return Reply(rej.status, error_body([rej.text], rej.code, ext))

    # -- phase 1 helpers -------------------------------------------------------------------

    def authenticate(self, body: dict[str, Any]) -> tuple[str, Pdv]:
        key = (
            str(body.get("apikey", "")),
            str(body.get("apitoken", "")),
            str(body.get("usertoken", "")),
        )
        try:
            found = self._credentials[key]
        except KeyError:
            try:
                found = self.tenants.find_by_credentials(*key)
            except UnknownPdv:
                found = None
            if found is not None or len(self._credentials) < 10_000:  # bound junk keys
                self._credentials[key] = found
        if found is None:
            raise Rejection(
                MSG_CREDENTIALS,
                "AUTH",
                rule="credentials",
                detail="unknown credentials",
                status=401,
                outcome="unauthorized",
            )
        return found

    def _maintenance(self, now: float) -> Reply | None:
        until = self.faults.maintenance_until
        if until is None or until.timestamp() <= now:
            return None
        local = until.astimezone(AR_TZ)
        hhmm = f"{local.hour:02d}:{local.minute:02d}"
        return Reply(
            200,
            {
                "error": "S",
                "mantenimiento": 1,
                "mantenimiento_hasta": f"{fmt_date(local.date())} {hhmm}",
                "errores": [f"Estaremos realizando tareas de mantenimiento hasta las {hhmm}"],
            },
        )

    def _afip_down(self, now: float) -> bool:
        until = self.faults.afip_down_until
        return until is not None and until.timestamp() > now

    def _too_fast(self, endpoint: str, cuit: str, account: str, arrival: float) -> Reply:
        """The account is over its per-second limit: 429, before anything else is done."""
        limit = self.accounts.max_rps(account)
        self.violations.append(
            {
                "rule": "account_rate",
                "cuit": cuit,
                "account": account,
                "detail": f"account {account}: more than {limit:g} calls in one second",
                "arrival": arrival,
            }
        )
        self._call(endpoint, cuit, arrival, "account_rate")
        return Reply(429, error_body([MSG_RATE_LIMIT], "RATE-LIMIT"), headers={"Retry-After": "1"})

    def _pre_faults(self, endpoint: str) -> tuple[Reply, str] | None:
        """HTTP 429 and 5xx, before anything is committed: (reply, ledger outcome) or None."""
        if self.faults.rate_429.fires(endpoint, self.rng):
            body = error_body([MSG_RATE_LIMIT], "RATE-LIMIT")
            return Reply(429, body, headers={"Retry-After": "1"}), "fault:rate_429"
        if self.faults.error_5xx.fires(endpoint, self.rng):
            if self.rng.random() < 0.5:
                code, reason = 502, "Bad Gateway"
            else:
                code, reason = 503, "Service Temporarily Unavailable"
            return Reply(code, HTML_5XX.format(code=code, reason=reason)), "fault:error_5xx"
        return None

    def _front_door(
        self, endpoint: str, raw: bytes, arrival: float
    ) -> tuple[dict[str, Any], str, Pdv] | Reply:
        """Maintenance, body, credentials, the account's limit, 429/5xx: common to every API
        endpoint."""
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        cuit: str | None = None
        maintenance = self._maintenance(arrival)
        if maintenance is not None:
            if isinstance(body, dict):
                found = self._credentials.get(
                    (
                        str(body.get("apikey", "")),
                        str(body.get("apitoken", "")),
                        str(body.get("usertoken", "")),
                    )
                )
                cuit = found[0] if found else None
            self._call(endpoint, cuit, arrival, "maintenance")
            return maintenance
        if not isinstance(body, dict):
            self._call(endpoint, None, arrival, "bad_request")
            return Reply(
                400,
                error_body(
                    ["El cuerpo del request debe ser un objeto JSON valido (UTF-8)."], "TFC-8001"
                ),
            )
        try:
            cuit, pdv = self.authenticate(body)
        except Rejection as rej:
            return self._refuse(endpoint, None, arrival, rej)
        account = self.accounts.account(cuit, pdv.punto_venta)
        if not self.accounts.admit(account, arrival):
            return self._too_fast(endpoint, cuit, account, arrival)
        fault = self._pre_faults(endpoint)
        if fault is not None:
            self._call(endpoint, cuit, arrival, fault[1])
            return fault[0]
        return body, cuit, pdv

    # -- phase 1: admission of invoicing calls ---------------------------------------------

    def admit(self, endpoint: str, raw: bytes, arrival: float) -> Admission | Reply:
        """Everything before "AFIP": a Reply when refused, else an Admission to commit."""
        front = self._front_door(endpoint, raw, arrival)
        if isinstance(front, Reply):
            return front
        body, cuit, pdv = front
        ext = ""
        if endpoint == NUEVO:
            comp = body.get("comprobante")
            if isinstance(comp, dict) and comp.get("external_reference") is not None:
                ext = str(comp.get("external_reference"))
        if self._afip_down(arrival):
            self._call(endpoint, cuit, arrival, "afip_down")
            return Reply(200, error_body([afip_down_text()], "AFIP-CAIDO", ext))
        tenant_text = self.faults.cuit_errors.get(cuit)
        if tenant_text is not None:
            self._call(endpoint, cuit, arrival, "cuit_error")
            return Reply(200, error_body([tenant_text], "", ext))
        quota = self.faults.quota.get(cuit)
        if quota is not None and quota <= 0:
            self._call(endpoint, cuit, arrival, "quota")
            return Reply(200, error_body([MSG_QUOTA], "CUPO", ext))
        try:
            invoices = [parse_invoice(body, pdv)] if endpoint == NUEVO else parse_lotes(body, pdv)
        except Rejection as rej:
            return self._refuse(endpoint, cuit, arrival, rej, ext)
        gap_refusal = self.afip.gap(
            cuit,
            arrival,
            gap_seconds=self.config.gap_seconds,
            block_seconds=self.config.block_seconds,
            blocked_cuits=self.faults.blocked_cuits,
        )
        if gap_refusal is not None:
            return self._refuse(endpoint, cuit, arrival, gap_refusal, ext)
        if quota is not None:
            self.faults.quota[cuit] = quota - 1
        latency = self.faults.latency_ms
        jitter = self.faults.latency_jitter_ms
        if self.faults.latency_dist is not None:
            latency = self.faults.latency_dist.draw_ms(self.rng)
        elif jitter > 0:
            latency = max(0.0, latency + self.rng.uniform(-jitter, jitter))
        return Admission(endpoint, cuit, pdv, arrival, invoices, latency / 1000.0)

    # -- phase 2: AFIP checks and commit ---------------------------------------------------

    def _issue(self, inv: Invoice, adm: Admission, base_url: str) -> dict[str, Any]:
        """Issue one invoice: take its numero, archive it, ledger it; the success fields."""
        cuit, pdv = adm.cuit, adm.pdv
        pv = inv.punto_venta
        numero = self.afip.next_numero(cuit, pv, inv.tipo, inv.fecha)
        self._cae_counter += 1
        nro = f"{pv:05d}-{numero:08d}"
        fecha_str = fmt_date(inv.fecha)
        if pdv.test:
            cae = cae_field = venc_cae = qr = ""
        else:
            cae = f"{CAE_BASE + self._cae_counter:014d}"
            cae_field = cae + " "
            venc_cae = fmt_date(inv.fecha + timedelta(days=10))
            qr = qr_url(cuit, pv, inv, numero, cae) + " "
        pdf, ticket = pdf_links(base_url, cuit, inv.tipo, pv, numero, adm.arrival)
        venc_pago = fmt_date(inv.vencimiento) if inv.vencimiento else fecha_str
        envia = inv.cliente.get("envia_por_mail") == "S"
        razon = str(inv.cliente.get("razon_social") or "")
        result = {
            "error": "N",
            "errores": [""],
            "rta": f"El comprobante {inv.tipo} {nro} ({razon}) se ha guardado correctamente ",
            "cae": cae_field,
            "vencimiento_cae": venc_cae,
            "vencimiento_pago": venc_pago,
            "requiere_fec": "NO ",
            "comprobante_nro": nro,
            "comprobante_tipo": inv.tipo,
            "comprobante_pdf_url": pdf,
            "comprobante_ticket_url": ticket,
            "afip_qr": qr,
            "envio_x_mail": "S" if envia else "N",
            "envio_x_mail_direcciones": str(inv.cliente.get("email") or "") if envia else "",
            "external_reference": inv.external_reference,
            "micrositios": {"cliente": "", "descarga": ""},
            "observaciones": "",
        }
        comprobante = dict(inv.comp)
        comprobante.update(
            tipo=inv.tipo,
            operacion="V",
            punto_venta=pv,
            numero=numero,
            fecha=fecha_str,
            total=float(inv.total),
            cae=cae_field,
            vencimiento_cae=venc_cae,
            vencimiento_pago=venc_pago,
            afip_qr=qr,
            afip_observaciones="",
            comprobante_pdf_url=pdf,
            comprobante_ticket_url=ticket,
            external_reference=inv.external_reference,
            micrositios={"cliente": "", "descarga": ""},
            status="EMITIDO",
            ctacte_status="IMPAGA",
        )
        stored = Stored(
            inv.cliente,
            comprobante,
            inv.fecha,
            len(self.issued),
            inv.external_reference,
            inv.tipo,
            numero,
        )
        self.archive.add(cuit, pv, stored)
        self.issued.append(
            {
                "cuit": cuit,
                "punto_venta": pv,
                "tipo": inv.tipo,
                "numero": numero,
                "external_reference": inv.external_reference,
                "fecha": fecha_str,
                "total": float(inv.total),
                "documento_nro": inv.documento_nro,
                "cae": cae,
                "test": pdv.test,
                "endpoint": adm.endpoint,
                "arrival": adm.arrival,
                "issued_at": time.time(),
            }
        )
        return result

    def commit(self, adm: Admission, base_url: str) -> Reply:
        """Phase 2: AFIP checks, issue, choose the post-commit fault, ledger the call."""
        today = ar_today()
        if self.faults.sequence_error.fires(adm.endpoint, self.rng):
            self._call(adm.endpoint, adm.cuit, adm.arrival, "fault:sequence_error")
            ext = adm.invoices[0].external_reference if adm.endpoint == NUEVO else ""
            return Reply(200, error_body([msg_10016(self.dialect)], "AFIP-10016", ext))
        if adm.endpoint == NUEVO:
            reply, issued = self._commit_nuevo(adm, base_url, today)
        else:
            reply, issued = self._commit_lotes(adm, base_url, today)
        if isinstance(reply.body, dict) and reply.body.get("error") == "N":
            outcome = "ok"
        else:
            outcome = "partial" if issued else "error"
        faults = self.faults
        if faults.drop_after_commit.fires(adm.endpoint, self.rng):
            reply.post, outcome = "drop", "fault:drop_after_commit"
        elif faults.lotes_524.fires(adm.endpoint, self.rng):
            reply = Reply(524, HTML_524)
            outcome = "fault:lotes_524"
        elif faults.garbage_after_commit.fires(adm.endpoint, self.rng):
            reply, outcome = Reply(200, HTML_GARBAGE), "fault:garbage_after_commit"
        elif faults.unknown_error_after_commit.fires(adm.endpoint, self.rng):
            reply = Reply(200, error_body([MSG_UNKNOWN], ""))
            outcome = "fault:unknown_error_after_commit"
        elif faults.hang_after_commit_ms > 0:
            reply.post, reply.hang_seconds = "hang", faults.hang_after_commit_ms / 1000.0
            outcome = "fault:hang_after_commit"
        self._call(adm.endpoint, adm.cuit, adm.arrival, outcome, issued)
        return reply

    def _commit_nuevo(self, adm: Admission, base_url: str, today: date) -> tuple[Reply, int]:
        inv = adm.invoices[0]
        rej = self.afip.check(inv, adm.cuit, today, dialect=self.dialect, faults=self.faults)
        if rej is not None:
            if rej.rule:
                self._violation(rej.rule, adm.cuit, rej.detail, adm.arrival)
            return Reply(200, error_body([rej.text], rej.code, inv.external_reference)), 0
        return Reply(200, self._issue(inv, adm, base_url)), 1

    def _commit_lotes(self, adm: Admission, base_url: str, today: date) -> tuple[Reply, int]:
        first = adm.invoices[0]
        last, _ = self.afip.last_issued(adm.cuit, first.punto_venta, first.tipo)
        expected = last + 1
        if first.numero != expected:
            detail = f"lotes starts at numero {first.numero}, next is {expected}"
            self._violation("numbering", adm.cuit, detail, adm.arrival)
            text = (
                f"El comprobante enviado en la fila 0 (comenzando en 0) tiene el numero "
                f"{first.numero}, pero el proximo a autorizar es {expected}. "
                f"{msg_10016(self.dialect)} "
                "El lote no se procesara."
            )
            return Reply(200, error_body([text], "AFIP-10016")), 0
        results: list[dict[str, Any]] = []
        issued = 0
        rejected = False
        for inv in adm.invoices:
            nro = f"{inv.punto_venta:05d}-{inv.numero:08d}"
            if rejected:
                results.append(_lotes_item_error(inv, nro, [MSG_NO_PROCESADO]))
                continue
            rej = self.afip.check(inv, adm.cuit, today, dialect=self.dialect, faults=self.faults)
            if rej is not None:
                if rej.rule:
                    self._violation(rej.rule, adm.cuit, rej.detail, adm.arrival)
                results.append(_lotes_item_error(inv, nro, [rej.text]))
                rejected = True
                continue
            item = self._issue(inv, adm, base_url)
            item["errores"] = []
            item["cae_vencimiento"] = item["vencimiento_cae"]
            results.append(item)
            issued += 1
        if not rejected and self.dialect.lotes == "nested":
            # The newest lotes page's success example: one level deeper.
            nested = [{"error": "N", "errores": [], "response": results}]
            return Reply(200, {"error": "N", "errores": [], "response": nested}), issued
        body = {"error": "S" if rejected else "N", "errores": [], "response": results}
        return Reply(200, body), issued

    # -- queries ---------------------------------------------------------------------------

    def query(self, endpoint: str, raw: bytes, arrival: float, base_url: str = "") -> Reply:
        front = self._front_door(endpoint, raw, arrival)
        if isinstance(front, Reply):
            return front
        body, cuit, pdv = front
        try:
            reply = answer_query(
                endpoint,
                body,
                cuit,
                pdv,
                afip=self.afip,
                archive=self.archive,
                dialect=self.dialect,
                afip_down=self._afip_down(arrival),
                links=lambda tipo, numero: pdf_links(
                    base_url, cuit, tipo, pdv.punto_venta, numero, arrival
                ),
            )
        except Rejection as rej:
            return self._refuse(endpoint, cuit, arrival, rej)
        outcome = (
            "ok" if isinstance(reply.body, dict) and reply.body.get("error") == "N" else "error"
        )
        if self.faults.drop_after_commit.fires(endpoint, self.rng):
            reply.post, outcome = "drop", "fault:drop_after_commit"
        elif self.faults.lotes_524.fires(endpoint, self.rng):
            reply, outcome = Reply(524, HTML_524), "fault:lotes_524"
        elif self.faults.garbage_after_commit.fires(endpoint, self.rng):
            reply, outcome = Reply(200, HTML_GARBAGE), "fault:garbage_after_commit"
        self._call(endpoint, cuit, arrival, outcome)
        return reply


def _lotes_item_error(inv: Invoice, nro: str, texts: list[str]) -> dict[str, Any]:
    return {
        "error": "S",
        "errores": texts,
        "cae": "",
        "vencimiento_cae": "",
        "cae_vencimiento": "",
        "comprobante_nro": nro,
        "comprobante_tipo": inv.tipo,
        "observaciones": "",
        "rta": "",
        "comprobante_pdf_url": "",
        "afip_qr": "",
        "external_reference": inv.external_reference,
        "envio_x_mail": "",
        "envio_x_mail_direcciones": "",
    }
