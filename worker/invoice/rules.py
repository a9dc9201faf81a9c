"""The business rules AFIP or TusFacturas would refuse that we can check before sending:
rules across fields and blocks (receiver identification and letter, dates in Argentina
time, currency, type-specific blocks, notes and their associations, totals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

from worker.errors import FieldError
from worker.invoice.cuit import cuit_problem
from worker.invoice.fieldtypes import TOTAL_TOLERANCE, round_half_even
from worker.invoice.schema import MAX_ASSOCIATED, Comprobante
from worker.invoice.tables import (
    ARGENTINA_TZ,
    CONDICION_PAGO_OTRA,
    CONDICIONES_IVA,
    LETTER_RECEPTORS,
    LETTERS_WITH_VAT,
    TIPOS,
)
from worker.settings import CF_IDENTIFICATION_THRESHOLD_ARS

if TYPE_CHECKING:
    # Types only: the envelope module imports this one (its door runs these rules).
    from worker.invoice.envelope import JobEnvelope

FCE_ANULACION_ID = 22  # rg_especiales dato of FCE notes: "S" or "N" (the FCE page)


def argentina_today() -> date:
    """Today's date where AFIP counts it (UTC−03:00)."""
    return datetime.now(ARGENTINA_TZ).date()


_21 = Decimal(21)
# Item alícuotas that carry no VAT: exento and no gravado (tables.ALICUOTAS).
EXENTO, NO_GRAVADO = Decimal(-1), Decimal(-2)


@dataclass(frozen=True)
class Subtotals:
    """An invoice's amounts as AFIP books them, under one reading of `bonificacion`.

    `net` and `vat` are per VAT rate (0, 10.5, 21, 27) for letters that add VAT; `exento`
    and `no_gravado` are the items at alícuota -1 and -2 (the legacy `exentos` field is
    left out: the totals the API checks never counted it);
    `final` is what letters without VAT (C, and documents that are not AFIP's) carry.
    Each figure is rounded half even on its own, as AFIP's fields are.
    """

    net: dict[Decimal, Decimal]
    vat: dict[Decimal, Decimal]
    exento: Decimal
    no_gravado: Decimal
    final: Decimal
    tributos: Decimal  # tributos[].total and impuestos_internos
    total: Decimal


def subtotals(comprobante: Comprobante) -> list[Subtotals]:
    """The invoice's subtotals under each reading of the docs (one when they agree).

    Net per VAT rate is summed and rounded, VAT per rate = round(net × rate) (AFIP's
    AlicIva lines), all round half even (`redondeos.md`). Letters A, B and M add VAT; C
    and the others carry final prices. `bonificacion` is a discount without VAT taken
    off "el primer subtotal SIN IVA" and taxed at that subtotal's rate: the reference
    page says the first subtotal, a newer version adds "(generalmente el del 21%)". The
    first subtotal is that of the first item's rate; both readings are given.
    """
    with localcontext() as ctx:  # amounts are bounded, but products of them need room
        ctx.prec = 60
        return _subtotals(comprobante)


def expected_totals(comprobante: Comprobante) -> list[Decimal]:
    """What the items, discounts, tributos and internal taxes add up to, under each
    reading of the docs (`subtotals`)."""
    totals: list[Decimal] = []
    for reading in subtotals(comprobante):
        if reading.total not in totals:
            totals.append(reading.total)
    return totals


def booked_subtotals(comprobante: Comprobante) -> Subtotals:
    """The reading whose total is the invoice's own (the first when none is)."""
    readings = subtotals(comprobante)
    return next((r for r in readings if r.total == comprobante.total), readings[0])


def _subtotals(comprobante: Comprobante) -> list[Subtotals]:
    with_vat = comprobante.info.letter in LETTERS_WITH_VAT
    # Raw nets by alícuota, in the order they first appear; without VAT, one "final" group.
    raw: dict[Decimal, Decimal] = {}
    for item in comprobante.detalle:
        p = item.producto
        line = item.cantidad * p.precio_unitario_sin_iva * (1 - item.bonificacion_porcentaje / 100)
        key = p.alicuota if with_vat else _FINAL
        raw[key] = raw.get(key, Decimal(0)) + line
    others = sum((t.total for t in comprobante.tributos), Decimal(0))
    if comprobante.impuestos_internos:
        others += comprobante.impuestos_internos
    readings = [next(iter(raw))]
    if _21 in raw and readings[0] != _21:  # (the same reading once is enough)
        readings.append(_21)
    found: list[Subtotals] = []
    for discounted in readings:
        nets = {
            key: round_half_even(value - (comprobante.bonificacion if key == discounted else 0))
            for key, value in raw.items()
        }
        net = {k: v for k, v in nets.items() if k >= 0}
        vat = {k: round_half_even(v * k / 100) for k, v in net.items()}
        exento, no_gravado = nets.get(EXENTO, Decimal(0)), nets.get(NO_GRAVADO, Decimal(0))
        final = nets.get(_FINAL, Decimal(0))
        total = sum(net.values()) + sum(vat.values()) + exento + no_gravado + final + others
        found.append(
            Subtotals(net, vat, exento, no_gravado, final, round_half_even(others),
                      round_half_even(total))
        )  # fmt: skip
    return found


_FINAL = Decimal(-100)  # the group key of items of letters without VAT


def afip_date_window(today: date, *, tipo: str, services: bool) -> tuple[date, date, str]:
    """The `fecha` AFIP accepts today: (earliest, latest, description) (afip_rules.md §3)."""
    info = TIPOS[tipo]
    if info.fce and info.kind == "factura":
        return today - timedelta(days=5), today + timedelta(days=1), "N-5 and N+1 (FCE)"
    if services:
        return today - timedelta(days=10), today + timedelta(days=10), "N-10 and N+10 (services)"
    return today - timedelta(days=5), today + timedelta(days=5), "N-5 and N+5 (goods)"


def business_errors(
    env: JobEnvelope,
    *,
    today: date | None = None,
    cf_threshold: Decimal = CF_IDENTIFICATION_THRESHOLD_ARS,
) -> list[FieldError]:
    """Every rule AFIP or TusFacturas would refuse that we can check before sending."""
    today = today or argentina_today()
    c = env.invoice.comprobante
    cl = env.invoice.cliente
    info = c.info
    errs: list[FieldError] = []

    def err(path: str, reason: str) -> None:
        errs.append(FieldError(f"invoice.{path}", reason))

    # Receiver identification.
    if cl.documento_tipo in ("CUIT", "CUIL"):
        problem = cuit_problem(cl.documento_nro)
        if problem:
            err("cliente.documento_nro", f"not a valid {cl.documento_tipo}: {problem}")
        elif cl.documento_nro == env.cuit:
            err("cliente.documento_nro", "the receiver cannot be the issuer (AFIP 10069)")
    elif cl.documento_tipo == "DNI" and len(cl.documento_nro) > 11:
        # A real DNI has 7 or 8 digits, but the vendor's examples send 9 and 10, and AFIP's
        # DocNro takes up to 11: only what AFIP cannot hold is refused.
        err("cliente.documento_nro", "a DNI has at most 11 digits")
    anonymous = cl.documento_tipo == "OTRO" and int(cl.documento_nro) == 0
    if cl.condicion_pago == CONDICION_PAGO_OTRA and not cl.condicion_pago_otra:
        err("cliente.condicion_pago_otra", "required when condicion_pago is 214 (Otra)")
    if cl.envia_por_mail == "S" and not cl.email:
        err("cliente.email", "required when envia_por_mail is 'S'")

    # Letter against the receiver's VAT condition (TFC-8004, RG 5616).
    allowed = LETTER_RECEPTORS[info.letter]
    for field in ("condicion_iva", "condicion_iva_operacion"):
        cond = getattr(cl, field)
        if cond not in allowed:
            err(
                f"cliente.{field}",
                f"{c.tipo} cannot be issued to a receiver that is {cond} "
                f"({CONDICIONES_IVA[cond]}); allowed: {', '.join(sorted(allowed))}",
            )
    if (info.letter in ("A", "M") or info.fce) and cl.documento_tipo != "CUIT":
        err("cliente.documento_tipo", f"{c.tipo} needs a receiver identified by CUIT (AFIP 10013)")
    if info.letter == "B" and cl.condicion_iva == "E" and cl.documento_tipo != "CUIT":
        err("cliente.documento_tipo", "a B invoice to an exento receiver needs a CUIT")

    # Dates (Argentina time).
    low, high, window = afip_date_window(today, tipo=c.tipo, services=c.is_services)
    if not low <= c.fecha <= high:
        err("comprobante.fecha", f"must be between {window}, N = {today:%d/%m/%Y} (AFIP 10016)")
    elif (
        c.fecha > today
        and (c.fecha.year, c.fecha.month) != (today.year, today.month)
        and not c.is_services
    ):
        err("comprobante.fecha", "a future date must stay in the current month (AFIP 10016)")
    if c.vencimiento is not None and c.vencimiento < c.fecha:
        err("comprobante.vencimiento", "must not be before fecha (AFIP 10036)")
    desde, hasta = c.periodo_facturado_desde, c.periodo_facturado_hasta
    if (desde is None) != (hasta is None):
        missing = "periodo_facturado_hasta" if hasta is None else "periodo_facturado_desde"
        err(f"comprobante.{missing}", "both ends of the billed period are required")
    elif desde and hasta and desde > hasta:
        err("comprobante.periodo_facturado_desde", "is after periodo_facturado_hasta (AFIP 10032)")

    # Currency.
    if c.datos_informativos and c.datos_informativos.paga_misma_moneda == "S" and c.moneda == "PES":
        err("comprobante.datos_informativos.paga_misma_moneda", "'S' only for foreign currency")

    # Type-specific blocks.
    if info.letter == "E" and not c.fex:
        err("comprobante.fex", "required for type E (export) invoices")
    if info.letter != "E" and c.fex:
        err("comprobante.fex", "only for type E invoices")
    if info.fce and info.kind == "factura" and not c.rg_especiales:
        err("comprobante.rg_especiales", "required for FCE MiPyME invoices (CBU, SCA/ADC)")
    if info.fce and info.is_note:
        datos = c.rg_especiales.datos if c.rg_especiales else []
        anulacion = [d for d in datos if d.id == FCE_ANULACION_ID]
        if not anulacion or anulacion[0].valor.strip() not in ("S", "N"):
            err(
                "comprobante.rg_especiales",
                f"an FCE note needs dato id {FCE_ANULACION_ID} (anulación) with valor 'S' or "
                "'N' (factura-de-credito-electronica-mipyme-fce.md)",
            )
    if info.letter == "E":
        # "bonificación, no gravados, impuestos internos ... en cero. El bloque tributos
        # deberá ser enviado vacío" (factura-electronica-afip-exportacion.md).
        if c.bonificacion:
            err("comprobante.bonificacion", "must be 0 on type E invoices (exportación page)")
        if c.impuestos_internos:
            err("comprobante.impuestos_internos", "must be 0 on type E invoices (exportación page)")
        if c.tributos:
            err("comprobante.tributos", "must be empty on type E invoices (exportación page)")
    _note_errors(env, c, err)

    # Totals. Documents that are not AFIP's (REMITO, PRESUPUESTO) have no rule to meet.
    expected = expected_totals(c) if info.letter else [c.total]
    if all(abs(total - c.total) > TOTAL_TOLERANCE for total in expected):
        err(
            "comprobante.total",
            f"is {c.total} but the items, bonificacion and tributos add up to "
            + " or ".join(str(t) for t in expected),
        )
    if c.pagos and c.pagos.total > c.total:
        err("comprobante.pagos.total", "must not exceed the invoice total")

    # Anonymous consumidor final above the identification threshold (RG 5700/2025).
    # cotizacion is "solo aplicable a monedas distintas al peso argentino": for PES it is
    # 1 whatever the job says (the vendor's own PES examples send other values).
    rate = Decimal(1) if c.moneda == "PES" else c.cotizacion
    if anonymous and c.total * rate >= cf_threshold:
        err(
            "cliente.documento_nro",
            f"an anonymous consumidor final (OTRO 0) is allowed only below "
            f"${cf_threshold:,.0f}; identify the buyer (RG 5700/2025)",
        )
    return errs


def _fex_associated(c: Comprobante) -> list[Any] | None:
    """The associations of an E note, inside `fex`; None when there is no such list."""
    found = (c.fex or {}).get("comprobantes_asociados")
    return found if isinstance(found, list) else None


def _note_errors(env: JobEnvelope, c: Comprobante, err: Any) -> None:
    info = c.info
    listed, period = c.comprobantes_asociados, c.comprobantes_asociados_periodo
    fex_listed = _fex_associated(c)
    if not info.is_note:
        if listed or period:
            err("comprobante.comprobantes_asociados", "only credit and debit notes carry these")
        if fex_listed:
            err("comprobante.fex.comprobantes_asociados", "only credit and debit notes carry these")
        return
    if info.letter == "E":
        # E notes name the E invoices they annul inside `fex`, and only for exports of
        # goods (`tipo_exportacion` "1"); AFIP has no E notes by period (exportación page).
        if listed or period:
            where = "comprobantes_asociados" if listed else "comprobantes_asociados_periodo"
            err(f"comprobante.{where}", "an E note carries its associations inside fex")
        tipo_exportacion = str((c.fex or {}).get("tipo_exportacion", "")).strip()
        if fex_listed and tipo_exportacion != "1":
            err(
                "comprobante.fex.comprobantes_asociados",
                "only when fex.tipo_exportacion is '1' (exportación definitiva de bienes)",
            )
        elif fex_listed is not None and len(fex_listed) > MAX_ASSOCIATED:
            err(
                "comprobante.fex.comprobantes_asociados",
                f"at most {MAX_ASSOCIATED} (notas-credito-debito.md)",
            )
        return
    if listed and period:
        err("comprobante.comprobantes_asociados_periodo", "send either the list or the period")
    elif not listed and not period:
        err("comprobante.comprobantes_asociados", "a note needs the invoices it refers to")
    if period and (info.fce or info.letter not in ("A", "B", "C")):
        err("comprobante.comprobantes_asociados_periodo", f"not allowed for {c.tipo}: list them")
    for i, assoc in enumerate(listed or []):
        path = f"comprobante.comprobantes_asociados[{i}]"
        assoc_info = TIPOS[assoc.tipo_comprobante]
        if assoc_info.letter != info.letter or assoc_info.fce != info.fce:
            err(f"{path}.tipo_comprobante", f"cannot be associated with {c.tipo}")
        if assoc.cuit != env.cuit:
            err(f"{path}.cuit", "must be the issuer's own CUIT")
        if assoc.comprobante_fecha > c.fecha:
            err(f"{path}.comprobante_fecha", "the associated invoice is dated after the note")
