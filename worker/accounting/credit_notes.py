"""The credit note that cancels an issued invoice: `tfq void`, `InvoiceQueue.void` and
`POST /v1/invoices/{id}/credit-note`.

Two halves:

- pure: `build_credit_note` turns the original invoice (`Original`) into the envelope of
  its NOTA DE CREDITO: the matching tipo, same PDV, CUIT, cliente, currency; associated
  with the invoice; the same items and totals (a full void) or a part of them (`amount`);
- lookups: `find_original` (Redis while it holds the record, else the archive) and
  `credits_of` (the notes already issued or queued for an invoice, by their
  external_reference `NC-<original job id>[-<cents>]`, in Redis' idempotency index and in
  the archive); `plan_void` puts them together and refuses, with the reason, what cannot be
  credited.

A note is idempotent per original invoice and amount: its external_reference is derived
from the original job id (`note_reference`), so asking again returns the same job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any

from worker.errors import FieldError, TfqError
from worker.invoice.fieldtypes import round_half_even
from worker.invoice.rules import FCE_ANULACION_ID, booked_subtotals
from worker.invoice.schema import Comprobante, Invoice
from worker.invoice.tables import LETTERS_WITH_VAT, TIPOS
from worker.store.jobs import JobStatus, unpack_envelope
from worker.store.keys import JobField

if TYPE_CHECKING:
    from worker.archive.results import ArchivedResults
    from worker.store.jobs import JobStore

REFERENCE_PREFIX = "NC-"
REASON_MAX = 255  # it becomes the note's `comentario` (255) and part of `leyenda_gral` (500)
CENT = Decimal("0.01")
FCE_REGIMEN = "Factura de Crédito Electrónica MiPyMEs (FCE)"
# Statuses of a note that count as credited: issued, or on its way to be.
LIVE = frozenset({JobStatus.QUEUED, JobStatus.SENDING, JobStatus.UNKNOWN, JobStatus.ISSUED})


class CannotVoid(TfqError):
    """The invoice cannot be credited (as asked): `status` is the HTTP status to answer
    (404, 409, 422), `slug` the problem's name, `errors` the field paths and reasons."""

    def __init__(self, status: int, slug: str, message: str, path: str = "job_id"):
        super().__init__(message)
        self.status = status
        self.slug = slug
        self.message = message
        self.errors = [FieldError(path, message)]


# --- the original invoice ---------------------------------------------------------------


@dataclass(frozen=True)
class Original:
    """An invoice (or debit note) as tfq keeps it, wherever it is kept."""

    job_id: str
    cuit: str
    status: str
    invoice: dict[str, Any]  # the body as sent (no credentials)
    numero: int | None  # as issued; None while it is not
    callback_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    external_reference: str = ""

    @property
    def comprobante(self) -> dict[str, Any]:
        comp: dict[str, Any] = self.invoice["comprobante"]
        return comp

    @property
    def tipo(self) -> str:
        return str(self.comprobante["tipo"])

    @property
    def punto_venta(self) -> int:
        return int(self.comprobante["punto_venta"])

    @property
    def fecha(self) -> date:
        return datetime.strptime(self.comprobante["fecha"], "%d/%m/%Y").date()

    @property
    def total(self) -> Decimal:
        return _money(self.comprobante["total"])


def note_tipo(tipo: str) -> str:
    """The NOTA DE CREDITO that credits a `tipo`; `CannotVoid` (422) for what has none."""
    info = TIPOS.get(tipo)
    if info is None or not info.letter or info.kind not in ("factura", "nota_debito"):
        what = "a credit note" if info is not None and info.kind == "nota_credito" else tipo
        raise CannotVoid(
            422,
            "not-creditable",
            f"{what} cannot be credited: only invoices and debit notes of AFIP "
            "(A, B, C, M, FCE) have a credit note",
            "tipo",
        )
    if info.letter == "E":
        # E notes carry their associations inside `fex`, only for exports of goods, and go
        # through AFIP's export service (rules._note_errors): not built here.
        raise CannotVoid(
            422,
            "not-creditable",
            f"{tipo}: tfq does not build E (export) credit notes, whose associations go "
            "inside fex; issue the NOTA DE CREDITO E as a job of its own",
            "tipo",
        )
    if info.fce:
        return f"NOTA DE CREDITO ELECTRONICA MiPyME (FCE) {info.letter}"
    return f"NOTA DE CREDITO {info.letter}"


def note_reference(job_id: str, amount: Decimal | None = None) -> str:
    """`NC-<job id>` for a full void, `NC-<job id>-<amount in cents>` for a partial one."""
    if amount is None:
        return f"{REFERENCE_PREFIX}{job_id}"
    return f"{REFERENCE_PREFIX}{job_id}-{int(amount * 100)}"


def parse_amount(value: Any) -> Decimal | None:
    """A partial amount: a positive number of at most 2 decimals; `CannotVoid` (422) else."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise CannotVoid(422, "invalid-amount", "not a number", "amount")
    if amount <= 0:
        raise CannotVoid(422, "invalid-amount", "must be greater than 0", "amount")
    if amount != amount.quantize(CENT):
        raise CannotVoid(422, "invalid-amount", "at most 2 decimals (cents)", "amount")
    if amount >= Decimal("1e13"):
        raise CannotVoid(422, "invalid-amount", "too large for an AFIP amount", "amount")
    return amount.quantize(CENT)


# --- building the note (pure) -----------------------------------------------------------

# What every note copies from the invoice's comprobante (abono, pagos, tags and fields tfq
# does not know are left out: they belong to the sale, not to its cancellation); and what a
# full void copies besides, so that its total is the invoice's.
_COPIED = (
    "operacion", "punto_venta", "moneda", "cotizacion", "idioma", "rubro",
    "rubro_grupo_contable", "periodo_facturado_desde", "periodo_facturado_hasta",
    "datos_informativos",
)  # fmt: skip
_AMOUNTS = (
    "detalle", "tributos", "bonificacion", "impuestos_internos", "impuestos_internos_base",
    "impuestos_internos_alicuota", "exentos",
)  # fmt: skip


def build_credit_note(
    original: Original,
    *,
    today: date,
    reason: str | None = None,
    amount: Decimal | None = None,
) -> dict[str, Any]:
    """The envelope of the credit note for `original` (an issued invoice or debit note).

    Without `amount` (or with the invoice's whole total) it credits the invoice in full:
    the same items, tributos, discounts and internal taxes, so the same total. With
    `amount` it credits that part (`partial_amounts`). Dated today (Argentina), never
    before the invoice. The caller checks the amount against what is left to credit.
    """
    if original.status != JobStatus.ISSUED or original.numero is None:
        raise CannotVoid(409, "not-issued", f"job {original.job_id} is not issued")
    tipo = note_tipo(original.tipo)
    comp = original.comprobante
    full = amount is None or amount == original.total
    fecha = max(today, original.fecha)
    number = f"{original.tipo} {original.punto_venta:05d}-{original.numero:08d}"
    if TIPOS[tipo].fce and fecha > today:
        raise CannotVoid(
            409,
            "too-early",
            f"{number} is dated {original.fecha:%d/%m/%Y}: an FCE note cannot be dated "
            "after today (AFIP 10016); void it from that day",
        )
    note: dict[str, Any] = {k: comp[k] for k in _COPIED if comp.get(k) is not None}
    note.update(
        tipo=tipo,
        numero=0,
        fecha=f"{fecha:%d/%m/%Y}",
        external_reference=note_reference(original.job_id, None if full else amount),
        leyenda_gral=(f"Anula {number}" if full else f"Crédito parcial de {number}")
        + (f": {reason}" if reason else ""),
        comprobantes_asociados=[
            {
                "tipo_comprobante": original.tipo,
                "punto_venta": original.punto_venta,
                "numero": original.numero,
                "comprobante_fecha": comp["fecha"],
                "cuit": original.cuit,
            }
        ],
    )
    if reason:
        note["comentario"] = reason
    fce_full = TIPOS[tipo].fce and full
    if comp.get("vencimiento") and (fce_full or not TIPOS[tipo].fce):
        # FCE notes carry FchVtoPago only when they annul (AFIP 10175).
        note["vencimiento"] = note["fecha"]
    if TIPOS[tipo].fce:
        regimen = (comp.get("rg_especiales") or {}).get("regimen") or FCE_REGIMEN
        note["rg_especiales"] = {
            "regimen": regimen,
            "datos": [{"id": FCE_ANULACION_ID, "valor": "S" if fce_full else "N"}],
        }
    if full:
        note.update({k: comp[k] for k in _AMOUNTS if comp.get(k) is not None})
        note["total"] = comp["total"]
    else:
        assert amount is not None
        note.update(partial_amounts(Invoice.model_validate(original.invoice).comprobante, amount))
    metadata: dict[str, Any] = {"voids_job_id": original.job_id}
    if reason:
        metadata["reason"] = reason
    if original.external_reference:
        metadata["voids_external_reference"] = original.external_reference
    if not full:
        metadata["amount"] = str(amount)
    envelope: dict[str, Any] = {
        "cuit": original.cuit,
        "invoice": {"cliente": original.invoice["cliente"], "comprobante": note},
        "metadata": metadata,
    }
    if original.callback_url:
        envelope["callback_url"] = original.callback_url
    return envelope


def partial_amounts(c: Comprobante, amount: Decimal) -> dict[str, Any]:
    """The amounts of a note crediting `amount` (total, VAT included) of the invoice `c`:
    `detalle`, `tributos`, `bonificacion`, internal taxes and `total` (= `amount`).

    Method: one item per VAT rate. The invoice's booked subtotals (`booked_subtotals`: net
    per VAT rate after `bonificacion`, exento, no gravado, or the final amount of letters
    without VAT) are each scaled by amount / total and become one item of cantidad 1 whose
    `precio_unitario_sin_iva` is that scaled net (2 decimals, so the item's net is exactly
    it); tributos and internal taxes are scaled alike (tributo total = base × alícuota,
    as the schema checks). No `bonificacion` (it is already in the nets), so there is one
    reading of the totals. What rounding leaves over (a few cents) goes to one group: a
    group without VAT takes it exactly; else the largest VAT group's net is moved to the
    cent whose net + VAT comes closest. Net + round(net × rate) skips some totals (21 %:
    about one cent in five), so at worst the items add up to one cent off `amount`,
    within TOTAL_TOLERANCE, which the validator and AFIP (10048) accept.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        return _partial_amounts(c, amount)


def _partial_amounts(c: Comprobante, amount: Decimal) -> dict[str, Any]:
    factor = amount / c.total
    booked = booked_subtotals(c)
    with_vat = c.info.letter in LETTERS_WITH_VAT
    groups: list[tuple[Decimal, Decimal]] = []  # (alícuota, scaled net)
    if with_vat:
        groups += [(rate, net) for rate, net in booked.net.items()]
        groups += [(Decimal(-1), booked.exento), (Decimal(-2), booked.no_gravado)]
    else:
        groups.append((c.detalle[0].producto.alicuota, booked.final))
    groups = [(rate, round_half_even(net * factor)) for rate, net in groups if net > 0]
    tributos = []
    for t in c.tributos:
        base = round_half_even(t.base_imponible * factor)
        total = round_half_even(base * t.alicuota / 100)
        if total > 0:
            tributos.append(
                t.model_dump(mode="json", exclude_none=True)
                | {"base_imponible": _num(base), "total": _num(total)}
            )
    internos: dict[str, Any] = {}
    if c.impuestos_internos:
        internos["impuestos_internos"] = _num(round_half_even(c.impuestos_internos * factor))
        if c.impuestos_internos_base:
            base = round_half_even(c.impuestos_internos_base * factor)
            internos["impuestos_internos_base"] = _num(base)
        if c.impuestos_internos_alicuota is not None:
            internos["impuestos_internos_alicuota"] = _num(c.impuestos_internos_alicuota)
    others = sum((Decimal(str(t["total"])) for t in tributos), Decimal(0)) + Decimal(
        str(internos.get("impuestos_internos", 0))
    )
    if not groups:  # (an invoice of tributos only cannot be: items are required)
        groups = [(c.detalle[0].producto.alicuota if not with_vat else Decimal(0), Decimal(0))]

    def gross(rate: Decimal, net: Decimal) -> Decimal:
        return net + (round_half_even(net * rate / 100) if with_vat and rate > 0 else 0)

    # The group that takes the rounding: one without VAT if any, else the largest.
    flat = [i for i, (rate, _) in enumerate(groups) if not with_vat or rate <= 0]
    pick = max(flat or range(len(groups)), key=lambda i: groups[i][1])
    rest = sum((gross(r, n) for i, (r, n) in enumerate(groups) if i != pick), Decimal(0))
    target = amount - others - rest  # what the picked group must add up to
    rate, net = groups[pick]
    if not with_vat or rate <= 0:
        net = target
    else:
        guess = round_half_even(target / (1 + rate / 100))
        candidates = [guess + CENT * k for k in range(-3, 4)]
        net = min(candidates, key=lambda n: (abs(gross(rate, n) - target), abs(n - guess)))
    if net <= 0:
        raise CannotVoid(
            422,
            "invalid-amount",
            f"{amount} is too small to credit this invoice's tributos in proportion",
            "amount",
        )
    groups[pick] = (rate, net)
    first = c.detalle[0].producto
    several = len([g for g in groups if g[1] > 0]) > 1
    detalle = [
        {
            "cantidad": 1,
            "afecta_stock": "N",
            "bonificacion_porcentaje": 0,
            "producto": {
                "descripcion": "Crédito parcial"
                + (f" (alícuota {_rate_label(r)})" if several and with_vat else ""),
                "codigo": "NC-PARCIAL",
                "lista_precios": first.lista_precios or "Notas de crédito",
                "unidad_bulto": 1,
                "alicuota": _num(r),
                "unidad_medida": 7,
                "actualiza_precio": "N",
                "rg5329": "N",
                "precio_unitario_sin_iva": _num(n),
            },
        }
        for r, n in groups
        if n > 0
    ]
    return {"detalle": detalle, "tributos": tributos, "bonificacion": 0, **internos,
            "total": _num(amount)}  # fmt: skip


def _rate_label(rate: Decimal) -> str:
    return {Decimal(-1): "exento", Decimal(-2): "no gravado"}.get(rate, f"{_num(rate)} %")


def _num(value: Decimal) -> int | float:
    """A JSON number as the API's examples write them (21, 10.5, 114.88)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN).normalize())


# --- lookups ----------------------------------------------------------------------------


def find_original(store: JobStore, archived: ArchivedResults, job_id: str) -> Original | None:
    """The job as tfq keeps it: Redis' record while it holds one, else the archive's row;
    None when neither knows it."""
    rec = store.job(job_id)
    if rec is not None and rec.get(JobField.ENVELOPE):
        env = unpack_envelope(rec[JobField.ENVELOPE])
        status = rec.get(JobField.STATUS, "")
        numero = rec.get(JobField.NUMERO)
        return Original(
            job_id=job_id,
            cuit=rec[JobField.CUIT],
            status=status,
            invoice=env["invoice"],
            numero=int(numero) if numero and status == JobStatus.ISSUED else None,
            callback_url=env.get("callback_url"),
            metadata=env.get("metadata") or {},
            external_reference=rec.get(JobField.EXTERNAL_REFERENCE, ""),
        )
    row = archived.row(job_id)
    if row is None:
        return None
    result = row.result or {}
    return Original(
        job_id=job_id,
        cuit=row.cuit,
        status=row.status,
        invoice=row.request,
        numero=row.numero if row.status == JobStatus.ISSUED else None,
        callback_url=result.get("callback_url"),  # the archive keeps it in the result
        metadata=row.job_metadata or {},
        external_reference=row.external_reference,
    )


@dataclass(frozen=True)
class Credit:
    """A credit note seen for an invoice."""

    job_id: str
    external_reference: str
    status: str
    total: Decimal


def _amount_of_reference(reference: str, original: Original) -> Decimal:
    """What a note of ours credits by its reference alone: the total, or the cents."""
    tail = reference[len(note_reference(original.job_id)) :]
    return (Decimal(int(tail[1:])) / 100).quantize(CENT) if tail else original.total


def _ours(reference: str, job_id: str) -> bool:
    base = note_reference(job_id)
    return reference == base or (
        reference.startswith(base + "-") and reference[len(base) + 1 :].isdigit()
    )


def credits_of(store: JobStore, archived: ArchivedResults, original: Original) -> list[Credit]:
    """The credit notes tfq made for `original` (by their references `NC-<job id>…`), from
    Redis' idempotency index (every key ever queued) and the archive, each once, with its
    status as the freshest place says. A note whose record Redis let go and the archive
    does not hold counts as issued (as enqueueing counts it) for the amount its reference
    names."""
    base = note_reference(original.job_id)
    found: dict[str, Credit] = {}
    for ref, job_id in store.references_starting(original.cuit, base):
        if not _ours(ref, original.job_id):
            continue
        rec = store.job(job_id)
        if rec is not None and rec.get(JobField.ENVELOPE):
            env = unpack_envelope(rec[JobField.ENVELOPE])
            total = _money(env["invoice"]["comprobante"]["total"])
            found[job_id] = Credit(job_id, ref, rec.get(JobField.STATUS, ""), total)
            continue
        row = archived.row(job_id)
        if row is not None:
            total = (
                _money(row.total) if row.total is not None else _amount_of_reference(ref, original)
            )
            found[job_id] = Credit(job_id, ref, row.status, total)
        else:
            found[job_id] = Credit(
                job_id, ref, JobStatus.ISSUED, _amount_of_reference(ref, original)
            )
    for row in archived.rows_by_reference_prefix(original.cuit, base):
        if row.job_id in found or not _ours(row.external_reference, original.job_id):
            continue
        total = _money(row.total) if row.total is not None else Decimal(0)
        found[row.job_id] = Credit(row.job_id, row.external_reference, row.status, total)
    return list(found.values())


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


@dataclass(frozen=True)
class VoidPlan:
    """What to do: submit `envelope` (a new note, or one whose key already has a job in
    Redis: submit reports it as a duplicate), or answer `existing`, a live note only the
    archive still knows (submitting it again would make a second note)."""

    envelope: dict[str, Any]
    reference: str
    existing: str | None = None


def plan_void(
    store: JobStore,
    archived: ArchivedResults,
    job_id: str,
    *,
    today: date,
    reason: str | None = None,
    amount: Any = None,
) -> VoidPlan:
    """The credit note for job `job_id`, or `CannotVoid` saying why there can be none:
    no such job (404); not issued, already credited in full, an amount above what is
    left (409); a credit note, a type without notes, a bad amount or reason (422)."""
    if reason is not None:
        reason = reason.strip() or None
    if reason is not None and len(reason) > REASON_MAX:
        raise CannotVoid(422, "invalid-reason", f"at most {REASON_MAX} characters", "reason")
    parsed = parse_amount(amount)
    original = find_original(store, archived, job_id)
    if original is None:
        raise CannotVoid(404, "no-such-job", f"no job {job_id}")
    note_tipo(original.tipo)  # a credit note, a recibo, an E invoice: refused as such
    if original.status != JobStatus.ISSUED:
        raise CannotVoid(
            409,
            "not-issued",
            f"job {job_id} is {original.status or 'of unknown status'}, not issued: "
            "only an issued invoice can be credited",
        )
    total = original.total
    if parsed is not None and parsed > total:
        moneda = original.comprobante.get("moneda", "PES")
        raise CannotVoid(
            409,
            "amount-too-large",
            f"{parsed} is more than the invoice's total, {total} {moneda}",
            "amount",
        )
    full = parsed is None or parsed == total
    reference = note_reference(job_id, None if full else parsed)
    credits = credits_of(store, archived, original)
    live = [c for c in credits if c.status in LIVE]
    same = [c for c in live if c.external_reference == reference]
    if same:
        # Asked before: the same note, whatever has been credited since.
        envelope = build_credit_note(
            original, today=today, reason=reason, amount=None if full else parsed
        )
        in_redis = store.job_id_for(original.cuit, reference) == same[0].job_id
        return VoidPlan(envelope, reference, None if in_redis else same[0].job_id)
    credited = sum((c.total for c in live), Decimal(0))
    left = total - credited
    if left <= 0:
        raise CannotVoid(
            409,
            "already-credited",
            f"job {job_id} is already credited in full ({credited} of {total} by "
            f"{', '.join(c.job_id for c in live)})",
        )
    if parsed is not None and parsed > left:
        raise CannotVoid(
            409,
            "amount-too-large",
            f"{parsed} is more than what is left to credit: {left} of {total}",
            "amount",
        )
    if full and credited > 0:
        raise CannotVoid(
            409,
            "partly-credited",
            f"job {job_id} is already credited {credited} of {total}: credit the rest "
            f"with an amount of {left}",
        )
    envelope = build_credit_note(
        original, today=today, reason=reason, amount=None if full else parsed
    )
    return VoidPlan(envelope, reference)
