"""Exactly-once submission: what a worker does with one claimed lane.

For the lane's head it either reconciles an earlier attempt whose outcome is unknown, or
sends the next invoice (or a `facturacion/lotes` batch of head jobs with the same punto
de venta and tipo), with an explicit number, after writing its intent atomically with the
last lease/gap check. Every outcome is recorded under the lease's fencing token, then the
lease is released with the next slot a gap after the later of the send and its reply
(`worker.outcomes`: this module decides what to send, that one records what came of it).

Why explicit numbers: AFIP accepts number N only once per CUIT + PDV + tipo, so a resend
of the same invoice with the same N can never become a second invoice; it gets 10016,
which we reconcile with `facturacion/consulta`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from worker.invoice.rules import afip_date_window, argentina_today
from worker.invoice.tables import TIPOS
from worker.metrics import SENDS_HELD
from worker.outcomes import Claim, OutcomeRecorder
from worker.settings import Settings
from worker.store.jobs import FINAL, Job, JobStatus, fingerprint
from worker.store.keys import JobField, LaneField
from worker.store.lanes import LaneStore
from worker.store.scripts import Verdict
from worker.tenants import Pdv, UnknownPdv
from worker.tenants_live import TenantLookup
from worker.tusfacturas.client import CONSULTA_AVANZADA, NUMERACION, TusFacturasClient
from worker.tusfacturas.errors import ServiceDownError, TusFacturasError
from worker.tusfacturas.replies import IssuedInvoice

log = logging.getLogger("tfq.submit")

MAX_RECONCILES = 25  # then the job stays unknown and its lane is paused for a human
PRESEND_MAX_WAIT_SECONDS = 2.0
# numeracion's answer N means N (the next number) or N + 1 (N was the last issued):
# free queries look from max(N, 1) upwards for the first number not issued. More than
# this many issued numbers above N means the numbering is not what either reading says.
NUMBER_PROBES = 3
NUMERACION_COUNTER = LaneField.NUMERACION_CALLS  # numeracion calls since the last issue


def _parse_fecha(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def _date_window_problem(payload: dict[str, Any], today: date) -> str | None:
    """A job validated at intake may have waited past AFIP's date window."""
    comp = payload["comprobante"]
    low, high, window = afip_date_window(
        today, tipo=comp["tipo"], services=bool(comp.get("periodo_facturado_desde"))
    )
    if not low <= _parse_fecha(comp["fecha"]) <= high:
        return (
            f"fecha {comp['fecha']} fell outside AFIP's window (between {window}, N = "
            f"{today:%d/%m/%Y}) while the job was queued; submit it again with a new date"
        )
    return None


def matches(found: IssuedInvoice, payload: dict[str, Any]) -> bool:
    """Is the invoice found under our number the one we sent? (total, buyer, date)."""
    comp, cliente = payload["comprobante"], payload["cliente"]
    checks: list[bool] = []
    if found.total is not None:
        checks.append(abs(found.total - Decimal(str(comp["total"]))) <= Decimal("0.01"))
    if found.documento_nro:
        checks.append(found.documento_nro.lstrip("0") == str(cliente["documento_nro"]).lstrip("0"))
    if found.fecha is not None:
        checks.append(found.fecha == _parse_fecha(comp["fecha"]))
    if found.external_reference and comp.get("external_reference"):
        checks.append(found.external_reference == comp["external_reference"])
    return bool(checks) and all(checks)


class Handled(StrEnum):
    """What `Sender.handle` did with a claim (logs, the Celery task's result, tests)."""

    DUPLICATE = "duplicate or stale"
    NO_NUMBER = "no number"
    PAUSED_SPEND_GUARD = "paused: spend guard"
    PAUSED_UNKNOWN_PDV = "paused: unknown pdv"
    RECONCILED_ISSUED = "reconciled: issued"
    RECONCILE_DEFERRED = "reconcile deferred"
    RECONCILE_FAILED = "reconcile failed"
    REJECTED_DATE = "rejected: date"
    REJECTED_DATE_ORDER = "rejected: date order"
    REJECTED_NUMERO = "rejected: numero"
    REJECTED_UNCLASSIFIED = "rejected: unclassified error"
    RELEASED = "released"
    REQUEUED = "requeued"
    RESYNC_FAILED = "resync failed"
    SENT = "sent"
    SETTLING = "waiting for the unknown attempt to settle"
    STALE = "stale"
    HELD_BACK = "held back"  # the gap, account pacing or an outage: released for later
    CALL_FAILED = "call failed"  # recorded by its failure class


class LeaseKeeper:
    """Renews the leases this process holds while their calls run (a slow call is ~90 s)."""

    def __init__(self, store: LaneStore, lease_seconds: float):
        self.store = store
        self.lease_seconds = lease_seconds
        self._held: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, cuit: str, token: str) -> None:
        with self._lock:
            self._held[(cuit, token)] = self._held.get((cuit, token), 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tfq-lease-keeper", daemon=True
                )
                self._thread.start()

    def drop(self, cuit: str, token: str) -> None:
        with self._lock:
            n = self._held.get((cuit, token), 0) - 1
            if n <= 0:
                self._held.pop((cuit, token), None)
            else:
                self._held[(cuit, token)] = n

    def _run(self) -> None:
        while True:
            time.sleep(self.lease_seconds / 3)
            with self._lock:
                held = list(self._held)
            if held:
                try:
                    self.store.renew(held, self.lease_seconds)
                except Exception:  # a missed renewal only risks a reap, which is safe
                    log.warning("lease renewal failed", exc_info=True)


class Sender(OutcomeRecorder):
    """Handles claims. Thread-safe: one per worker process, shared by its threads."""

    def __init__(
        self,
        store: LaneStore,
        client: TusFacturasClient,
        tenants: TenantLookup,
        settings: Settings,
        lease_seconds: float = 60.0,
    ):
        super().__init__(store, settings)
        self.client = client
        self.tenants = tenants
        self.keeper = LeaseKeeper(store, lease_seconds)

    # --- entry point --------------------------------------------------------------------

    def handle(self, cuit: str, token: str, worker: str = "") -> Handled:
        """Work the lane `cuit` under lease `token` in the registered send worker `worker`
        (whose slot it holds); returns what happened (for logs/tests)."""
        claim = Claim(
            cuit,
            token,
            self.tenants.gap_seconds(cuit, self.settings.cuit_gap_seconds),
        )
        head = self.store.begin_head(cuit, token, worker, self.settings.batch_max)
        if head is None:
            # A redelivered message of a claim someone is working, or a stale token.
            return Handled.DUPLICATE
        self.keeper.hold(cuit, token)
        try:
            return self._handle(claim, head)
        finally:
            self.keeper.drop(cuit, token)

    def handle_then_more(
        self,
        cuit: str,
        token: str,
        worker: str,
        *,
        max_lanes: int,
        max_seconds: float,
        lookahead_seconds: float,
    ) -> list[Handled]:
        """Work a claimed lane, then keep its slot busy: claim the next due lane the way a
        dispatcher does (by capacity, in ready-time order) and work it, until none is due,
        `max_lanes` were worked or `max_seconds` have passed. Under load most lanes start
        here, each without a task of its own to publish, receive and acknowledge."""
        done = [self.handle(cuit, token, worker)]
        deadline = time.monotonic() + max_seconds
        while len(done) < max_lanes and time.monotonic() < deadline:
            claims = self.store.claim(
                1,
                self.keeper.lease_seconds,
                lookahead_seconds,
                worker or "sender",
                by_capacity=True,
            )
            if not claims.leases:
                break
            done += [self.handle(c, t, worker) for c, t in claims.leases]
        return done

    def _handle(self, claim: Claim, head_jobs: list[tuple[str, dict[str, Any] | None]]) -> Handled:
        ids = [job_id for job_id, _ in head_jobs]
        records = [record for _, record in head_jobs]
        jobs = [Job.from_record(r) for r in records if r is not None and JobField.ENVELOPE in r]
        if not jobs or jobs[0].id != ids[0] or jobs[0].status in FINAL:
            # Finished (or vanished) head jobs are dropped by the release.
            self._release(claim)
            return Handled.RELEASED
        head = jobs[0]
        try:
            pdv = self.tenants.pdv(claim.cuit, head.punto_venta)
        except UnknownPdv as exc:
            self.store.pause(claim.cuit, str(exc))
            self._attention(claim, head, f"lane paused: {exc}")
            self._release(claim)
            return Handled.PAUSED_UNKNOWN_PDV
        # The lane's calls (sends and queries) count against the head job's PDV's account.
        pacing = self.tenants.pacing(claim.cuit, head.punto_venta)
        claim.account = pacing.account
        claim.account_interval = pacing.interval_seconds(self.settings.api_max_rps)
        if head.status in (JobStatus.SENDING, JobStatus.UNKNOWN):
            return self._reconcile(claim, pdv, head)
        return self._send_next(claim, pdv, jobs)

    # --- sending ------------------------------------------------------------------------

    def _send_next(self, claim: Claim, pdv: Pdv, jobs: list[Job]) -> Handled:
        head = jobs[0]
        today = argentina_today()
        problem = _date_window_problem(head.payload(0), today)
        if problem:
            self._finish(claim, head, JobStatus.REJECTED, {JobField.ERRORS: [problem]})
            self._release(claim)
            return Handled.REJECTED_DATE
        batch = self._batch(claim, jobs, today)
        numero = self._next_number(claim, pdv, head)
        if numero is None:
            return Handled.NO_NUMBER
        requested = head.requested_numero
        if requested and requested != numero:
            # The API issues a given number only when it is the next one (10016).
            reason = (
                f"numero {requested} was asked for, but the next {head.tipo} number at "
                f"punto de venta {head.punto_venta} is {numero}; AFIP issues numbers only in "
                "sequence (10016). Send it without numero to take the next one."
            )
            self._finish(claim, head, JobStatus.REJECTED, {JobField.ERRORS: [reason]})
            self._release(claim)
            return Handled.REJECTED_NUMERO
        return self._send(claim, pdv, batch, numero)

    def _batch(self, claim: Claim, jobs: list[Job], today: date) -> list[Job]:
        """Head jobs that can share one `lotes` call: same PDV and tipo, in date order."""
        head = jobs[0]
        if self.settings.batch_max <= 1 or not TIPOS[head.tipo].batchable or head.requested_numero:
            return [head]
        if self.store.take_solo(claim.cuit, claim.token):
            # After a whole-batch refusal: these jobs go one by one to find the culprit.
            return [head]
        batch = [head]
        last_fecha = _parse_fecha(head.payload(0)["comprobante"]["fecha"])
        for job in jobs[1:]:
            if (
                job.status != JobStatus.QUEUED
                or job.punto_venta != head.punto_venta
                or job.tipo != head.tipo
                or job.requested_numero
            ):
                break
            payload = job.payload(0)
            fecha = _parse_fecha(payload["comprobante"]["fecha"])
            if fecha < last_fecha or _date_window_problem(payload, today):
                break
            batch.append(job)
            last_fecha = fecha
        return batch

    def _next_number(self, claim: Claim, pdv: Pdv, head: Job) -> int | None:
        """The number to send `head` with; None when the lane was released meanwhile."""
        numero = self.store.next_number(claim.cuit, pdv.punto_venta, head.tipo)
        if numero is not None:
            return numero
        return self._learn_number(claim, pdv, head)

    def _learn_number(self, claim: Claim, pdv: Pdv, head: Job) -> int | None:
        """Ask `numeracion` (billed, paced, bounded per lane), then find with free queries
        which number it meant: right whether it answers the next number or the last one
        issued, including 0 on a PDV that has issued nothing. None: the lane is released.
        """
        pv, tipo = pdv.punto_venta, head.tipo
        asked = self.store.asked_number(claim.cuit, pv, tipo)
        if asked is None:
            if not self._query_turn(claim, NUMERACION, head, paid=True):
                return None
            try:
                asked = self.client.numeracion(pdv, tipo)
            except TusFacturasError as exc:
                if isinstance(exc, ServiceDownError) and exc.scope == "global":
                    # Maintenance refuses every request unprocessed: not a call spent.
                    self.store.refund_call(claim.cuit, claim.token, NUMERACION_COUNTER)
                self._on_failure(claim, [], exc)
                return None
            self.store.set_next_number(claim.cuit, pv, tipo, asked, claim.token, mode="asked")
        candidate = max(asked, 1)
        for _ in range(NUMBER_PROBES):
            if not self._query_turn(claim, CONSULTA_AVANZADA, head):
                return None
            try:
                found = self.client.lookup(pdv, tipo, candidate)
            except TusFacturasError as exc:
                self._on_failure(claim, [], exc)
                return None
            if found is None:
                self.store.set_next_number(
                    claim.cuit, pv, tipo, candidate, claim.token, mode="verified"
                )
                log.info(
                    "numbering learnt",
                    extra={
                        "cuit": claim.cuit,
                        "pdv": pv,
                        "tipo": tipo,
                        "numeracion": asked,
                        "numero": candidate,
                        "reading": "next" if candidate == asked else "last issued",
                    },
                )
                return candidate
            candidate += 1
        reason = (
            f"numbering of {tipo} at PDV {pv}: numeracion answered {asked}, yet numbers "
            f"{max(asked, 1)} to {candidate - 1} are all issued; check the numbering in "
            f"TusFacturas, then resume the lane (job {head.id}, {head.external_reference})"
        )
        self.store.pause(claim.cuit, reason)
        self._attention(claim, head, reason)
        self._release(claim)
        return None

    def _query_turn(self, claim: Claim, endpoint: str, head: Job, *, paid: bool = False) -> bool:
        """Wait for a query's turn under the pacing of the claim's account. False: the lane was
        released (its slot is far off, the lease is gone, or a paid query's bound for
        this lane is spent, which pauses it)."""
        while True:
            turn = self.store.query_turn(
                claim.cuit,
                claim.token,
                endpoint,
                account=claim.account,
                min_interval_seconds=claim.account_interval,
                max_wait_seconds=PRESEND_MAX_WAIT_SECONDS,
                counter=NUMERACION_COUNTER if paid else "",
                bound=self.settings.max_numeracion_per_lane if paid else 0,
            )
            if turn.go:
                return True
            if turn.verdict is Verdict.WAIT:
                SENDS_HELD.labels("account").inc()
                time.sleep(turn.value or 0.0)
                continue
            if turn.verdict is Verdict.EARLY:
                self._release(claim, not_before=turn.value)
            elif turn.verdict is Verdict.SPENT:
                self._spend_pause(
                    claim,
                    head,
                    f"{endpoint} asked {turn.spent_sends} times since the last "
                    "confirmed issue without a usable number",
                )
            return False

    def _spend_pause(self, claim: Claim, job: Job, what: str) -> None:
        """The spend guard: stop a lane that could go on paying for calls without progress.
        Its jobs wait; the reason names the job; a resume grants a fresh bound."""
        last = job.record.get(JobField.LAST_ERROR) or ""
        reason = (
            f"spend guard: job {job.id} ({job.external_reference}): {what}"
            + (f"; last error: {last}" if last else "")
            + f"; fix the cause, then `tfq lanes resume {claim.cuit}`"
        )[:500]
        self.store.pause(claim.cuit, reason, spent_job=job.id)
        self._attention(claim, job, reason)
        self._release(claim)

    def _send(self, claim: Claim, pdv: Pdv, batch: list[Job], numero: int) -> Handled:
        payloads = [job.payload(numero + i) for i, job in enumerate(batch)]
        intent = [
            (job.id, numero + i, fingerprint(p))
            for i, (job, p) in enumerate(zip(batch, payloads, strict=True))
        ]
        while True:
            verdict = self.store.presend(
                claim.cuit,
                claim.token,
                gap_seconds=claim.gap,
                account=claim.account,
                min_interval_seconds=claim.account_interval,
                max_wait_seconds=PRESEND_MAX_WAIT_SECONDS,
                max_sends=self.settings.max_sends_per_job,
                jobs=intent,
            )
            if verdict.go:
                break
            if verdict.verdict is Verdict.SPENT:
                if verdict.spent_index == 0:
                    self._spend_pause(
                        claim,
                        batch[0],
                        f"{verdict.spent_sends} invoicing calls without a final outcome",
                    )
                    return Handled.PAUSED_SPEND_GUARD
                # A later job of the batch has had its bound: send the ones before it.
                batch = batch[: verdict.spent_index]
                payloads, intent = payloads[: len(batch)], intent[: len(batch)]
                continue
            if verdict.why:
                SENDS_HELD.labels(verdict.why).inc()
            if verdict.verdict is Verdict.WAIT:
                time.sleep(verdict.value or 0.0)
                continue
            if verdict.verdict is Verdict.STALE:
                return Handled.STALE
            # early (gap or account pacing far off): come back at that time. down: the
            # global window holds the lane; it must not carry the window's end itself.
            self._release(
                claim, not_before=verdict.value if verdict.verdict is Verdict.EARLY else None
            )
            return Handled.HELD_BACK
        sent_at = verdict.value or 0.0
        log.info(
            "sending",
            extra={
                "cuit": claim.cuit,
                "jobs": [j.id for j in batch],
                "numero": numero,
                "pdv": pdv.punto_venta,
            },
        )
        try:
            if len(batch) == 1:
                issued = self.client.nuevo(pdv, payloads[0])
                claim.replied_at = time.monotonic()
                self._issued(claim, batch[0], numero, issued, sent_at)
            else:
                result = self.client.lotes(pdv, payloads)
                claim.replied_at = time.monotonic()
                self._batch_outcome(claim, batch, numero, result, sent_at)
        except TusFacturasError as exc:
            self._on_failure(claim, batch, exc, numero=numero)
            return Handled.CALL_FAILED
        self._release(claim, failures=0)
        return Handled.SENT

    def _reconcile(self, claim: Claim, pdv: Pdv, head: Job) -> Handled:
        """An earlier attempt's outcome is unknown: ask a free query before sending anything."""
        if head.numero is None:
            self._requeue(claim, head, "no number recorded for the unknown attempt")
            self._release(claim)
            return Handled.REQUEUED
        # The unknown attempt may still be in flight (a worker died mid-call, a request
        # sat in a buffer): asking before it could have landed would resend too soon.
        # A call that was answered is not in flight.
        if head.record.get(JobField.REPLIED) != "1":
            settle_at = (
                float(head.record.get(JobField.SENT_AT) or 0) + self.settings.api_timeout_seconds
            )
            if self.store.now() < settle_at:
                self._release(claim, not_before=settle_at)
                return Handled.SETTLING
        if not self._query_turn(claim, CONSULTA_AVANZADA, head):
            return Handled.RECONCILE_DEFERRED
        reconciles = int(head.record.get(JobField.RECONCILES) or 0) + 1
        self.store.transition(
            claim.cuit, claim.token, head.id, JobStatus.UNKNOWN, {JobField.RECONCILES: reconciles}
        )
        payload = head.payload(head.numero)
        try:
            found = self.client.lookup(pdv, head.tipo, head.numero)
        except TusFacturasError as exc:
            if reconciles >= MAX_RECONCILES:
                self.store.pause(
                    claim.cuit, f"job {head.id} unknown after {reconciles} reconciliations"
                )
            self._on_failure(claim, [], exc)
            return Handled.RECONCILE_FAILED
        if found is not None and matches(found, payload):
            self._issued(
                claim, head, head.numero, found, float(head.record.get(JobField.SENT_AT) or 0)
            )
            self._release(claim, failures=0)
            return Handled.RECONCILED_ISSUED
        if head.record.get(JobField.LAST_KIND) == "unclassified":
            # An error text nobody catalogued, and the invoice is not there: the API's
            # messages are the answer. Never sent again on a guess.
            messages = json.loads(head.record.get(JobField.LAST_MESSAGES) or "[]")
            errors = messages or [head.record.get(JobField.LAST_ERROR)]
            self._finish(claim, head, JobStatus.REJECTED, {JobField.ERRORS: errors})
            self._release(claim)
            return Handled.REJECTED_UNCLASSIFIED
        if found is not None:
            # The number belongs to another invoice: ours never landed. Renumber.
            return self._resync_and_send(claim, pdv, head, "number taken by another invoice")
        if (
            head.record.get(JobField.MISSING) == str(head.numero)
            and head.record.get(JobField.LAST_KIND) == "sequence"
        ):
            # Not found, yet AFIP said 10016 for this number: our count is off, or the date is.
            return self._resync_and_send(claim, pdv, head, "10016 for a number not issued")
        self.store.transition(
            claim.cuit, claim.token, head.id, JobStatus.UNKNOWN, {JobField.MISSING: head.numero}
        )
        # Not issued: send the same payload with the same number again (AFIP dedups by number).
        return self._send(claim, pdv, [head], head.numero)

    def _resync_and_send(self, claim: Claim, pdv: Pdv, head: Job, why: str) -> Handled:
        """Learn the numbering afresh (one numeracion, bounded per lane), then send."""
        self.store.forget_next_number(claim.cuit, pdv.punto_venta, head.tipo, claim.token)
        fresh = self._learn_number(claim, pdv, head)
        if fresh is None:
            return Handled.RESYNC_FAILED
        if fresh == head.numero and why.startswith("10016"):
            messages = json.loads(head.record.get(JobField.LAST_MESSAGES) or "[]")
            reason = (
                "AFIP refused the date: fecha is earlier than the last invoice issued on this "
                "punto de venta and tipo (10016)"
            )
            self._finish(claim, head, JobStatus.REJECTED, {JobField.ERRORS: [*messages, reason]})
            self._release(claim)
            return Handled.REJECTED_DATE_ORDER
        log.warning(
            "renumbering",
            extra={"cuit": claim.cuit, "job_id": head.id, "why": why, "numero": fresh},
        )
        return self._send(claim, pdv, [head], fresh)
