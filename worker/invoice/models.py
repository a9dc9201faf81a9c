"""Invoice jobs: the TusFacturas request body (API field names) and the job envelope.

`validate_envelope` is the one door in. It runs the structural checks (pydantic) and then
the business rules we can know before sending (AFIP letters, dates, totals, currency,
identification), and refuses with every field path and reason at once per stage.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from worker.errors import FieldError, InvalidJob, field_errors, format_loc, unencodable_path
from worker.invoice.cuit import cuit_problem, valid_cuit
from worker.invoice.tables import (
    ALICUOTAS,
    ARGENTINA_TZ,
    CONDICION_PAGO_OTRA,
    CONDICIONES_IVA,
    CONDICIONES_PAGO,
    LETTER_RECEPTORS,
    LETTERS_WITH_VAT,
    MONEDAS,
    PROVINCIAS,
    TIPOS,
    TRIBUTO_REGIMENES,
    TRIBUTO_TIPOS,
    TipoInfo,
)
from worker.settings import CF_IDENTIFICATION_THRESHOLD_ARS

CENT = Decimal("0.01")
TOTAL_TOLERANCE = Decimal("0.01")
MAX_ITEMS = 130
MAX_ASSOCIATED = 10
FCE_ANULACION_ID = 22  # rg_especiales dato of FCE notes: "S" or "N" (the FCE page)
CREDENTIAL_FIELDS = ("apikey", "apitoken", "usertoken")
# Used with fullmatch: `$` would accept a final newline.
EXTERNAL_REFERENCE_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
EMAIL_RE = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")


MAX_JSON_DEPTH = 20


def plain_json(value: Any) -> bytes:
    """`value` as UTF-8 JSON, or ValueError: free-form blocks (metadata, fex) must be plain
    JSON (finite numbers, valid UTF-8 text, at most MAX_JSON_DEPTH levels) to be stored
    and sent."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((item, depth + 1) for item in node.values())
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ValueError("must be plain JSON: finite numbers and valid UTF-8 text") from None


def argentina_today() -> date:
    """Today's date where AFIP counts it (UTC−03:00)."""
    return datetime.now(ARGENTINA_TZ).date()


def round_half_even(value: Decimal, quantum: Decimal = CENT) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN)


# --- field types --------------------------------------------------------------------


_API_DATE_RE = re.compile(r"\s*([0-9]{2})/([0-9]{2})/([0-9]{4})\s*")


def _parse_api_date(value: Any) -> Any:
    # Hand-parsed: strptime dominated validation time on bulk intake.
    if isinstance(value, date):
        return value
    m = _API_DATE_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError("must be a date as dd/mm/aaaa")
    try:
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        raise ValueError("not a real calendar date (dd/mm/aaaa)") from None


def _digit_text(value: Any) -> Any:
    """ "1" -> 1: the API reads numeric fields sent as strings, and the docs do so."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


def _int_to_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _blank_to_none(value: Any) -> Any:
    # The SDK sends "" for unused optional fields; treat them as absent.
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _number(value: Decimal) -> int | float:
    # The API wants JSON numbers. Amounts have at most 3 decimals and 13 integer digits,
    # so the float's shortest repr is the exact decimal.
    return int(value) if value == value.to_integral_value() else float(value)


def _decimals_at_most(places: int) -> AfterValidator:
    def check(value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"at most {places} decimals")
        return value

    return AfterValidator(check)


ApiDate = Annotated[
    date,
    BeforeValidator(_parse_api_date),
    PlainSerializer(lambda d: d.strftime("%d/%m/%Y"), return_type=str),
]
OptionalApiDate = Annotated[ApiDate | None, BeforeValidator(_blank_to_none)]
Number = Annotated[Decimal, Field(allow_inf_nan=False), PlainSerializer(_number, when_used="json")]
Amount = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, le=Decimal("9999999999999.99")),
    PlainSerializer(_number, when_used="json"),
]
Amount2 = Annotated[Amount, _decimals_at_most(2)]
OptionalAmount2 = Annotated[Amount2 | None, BeforeValidator(_blank_to_none)]
YesNo = Literal["S", "N"]
Str255 = Annotated[str, Field(max_length=255)]


class ApiModel(BaseModel):
    """API blocks. A field tfq does not know passes through to the API unchanged (the
    vendor's pages use more fields than any one table lists) and is reported in the job's
    result as not checked by tfq; a misspelt name of a known field is refused with a hint
    (`unknown_fields`), so a typo never vanishes silently."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=False, populate_by_name=True)


# --- cliente ------------------------------------------------------------------------


class Cliente(ApiModel):
    documento_tipo: Literal["CUIT", "CUIL", "CDI", "DNI", "PASAPORTE", "OTRO"]
    documento_nro: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
    razon_social: Annotated[str, Field(min_length=1, max_length=255)]
    nombre_fantasia: Str255 | None = None
    email: Str255 | None = None
    domicilio: Annotated[str, Field(min_length=1, max_length=255)]
    provincia: int
    envia_por_mail: YesNo
    # Informative ("sale impreso en el PDF"); 0 where the vendor's FCE note example sends it.
    condicion_pago: int = 0
    condicion_pago_otra: Annotated[str | None, Field(max_length=100)] = None
    condicion_iva: Literal["CF", "RI", "M", "E", "CDEX", "IVNA"]
    condicion_iva_operacion: Literal["CF", "RI", "M", "E", "CDEX", "IVNA"] | None = None
    codigo: Annotated[str | None, Field(max_length=50)] = None
    # REQUERIDO on the reference page, yet most of the vendor's examples leave it out.
    rg5329: YesNo = "N"
    # "N" unless the job says otherwise: otherwise TusFacturas e-mails the buyer about every
    # unpaid invoice (referencia-api-afip-arca.md, reclama_deuda).
    reclama_deuda: YesNo = "N"
    reclama_deuda_dias: Annotated[int | None, Field(ge=0)] = None
    reclama_deuda_repite_dias: Annotated[int | None, Field(ge=0)] = None

    @field_validator("documento_nro")
    @classmethod
    def _digits(cls, v: str) -> str:
        if not (v.isascii() and v.isdigit()) or len(v) > 20:
            raise ValueError("digits 0-9 only (no dots or dashes), at most 20")
        return v

    @field_validator("provincia")
    @classmethod
    def _provincia(cls, v: int) -> int:
        if v not in PROVINCIAS:
            raise ValueError("not a province code of the API's table (1 to 26)")
        return v

    @field_validator("condicion_pago")
    @classmethod
    def _condicion_pago(cls, v: int) -> int:
        if v and v not in CONDICIONES_PAGO:
            raise ValueError("not a condicion_pago code of the API's table (201 to 217)")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if not v:
            return None
        addresses = [a.strip(" ") for a in v.split(",")]  # spaces only: no line breaks
        if len(addresses) > 15:
            raise ValueError("at most 15 addresses")
        bad = [i for i, a in enumerate(addresses) if not EMAIL_RE.fullmatch(a)]
        if bad:
            raise ValueError(f"address {bad[0] + 1} is not an e-mail address")
        return v

    @model_validator(mode="after")
    def _fill_operacion(self) -> Cliente:
        # RG 5616: the API takes condicion_iva when absent; we make it explicit.
        if self.condicion_iva_operacion is None:
            self.condicion_iva_operacion = self.condicion_iva
        return self


# --- comprobante --------------------------------------------------------------------


class Producto(ApiModel):
    # "mínima de 4 caracteres" on the reference page; its own examples send "p2".
    descripcion: Annotated[str, Field(min_length=1, max_length=255)]
    unidad_bulto: Annotated[int, Field(ge=1)] = 1
    lista_precios: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    codigo: Annotated[str, BeforeValidator(_int_to_text), Field(max_length=50)] = ""
    precio_unitario_sin_iva: Annotated[Amount, _decimals_at_most(3)]
    alicuota: Number
    unidad_medida: Annotated[int, Field(ge=0, le=99)] = 7
    impuestos_internos_alicuota: Annotated[
        Amount | None, Field(le=100), BeforeValidator(_blank_to_none)
    ] = None
    actualiza_precio: YesNo = "N"
    rg5329: YesNo = "N"

    @field_validator("alicuota")
    @classmethod
    def _alicuota(cls, v: Decimal) -> Decimal:
        if v not in ALICUOTAS:
            raise ValueError("must be one of 27, 21, 10.5, 0, -1 (exento), -2 (no gravado)")
        return v

    @model_validator(mode="after")
    def _rg5329_needs_update(self) -> Producto:
        if self.rg5329 == "S" and self.actualiza_precio != "S":
            raise ValueError("rg5329 'S' requires actualiza_precio 'S'")
        return self


class Item(ApiModel):
    cantidad: Annotated[Number, Field(gt=0, le=Decimal("999999999")), _decimals_at_most(2)]
    afecta_stock: YesNo = "N"
    bonificacion_porcentaje: Annotated[Number, Field(ge=0, le=100)] = Decimal(0)
    leyenda: Annotated[str | None, Field(max_length=1000)] = None
    producto: Producto


class Tributo(ApiModel):
    tipo: int
    # REQUERIDO on the reference page, from the "Régimen de percepción" table.
    regimen: int
    base_imponible: Amount2
    alicuota: Annotated[Amount, Field(le=100)]
    total: Amount2
    descripcion: Str255 | None = None

    @field_validator("tipo")
    @classmethod
    def _tipo(cls, v: int) -> int:
        if v not in TRIBUTO_TIPOS:
            raise ValueError(f"not a tributo tipo of the table {sorted(TRIBUTO_TIPOS)}")
        return v

    @model_validator(mode="after")
    def _regimen_of_tipo(self) -> Tributo:
        allowed = TRIBUTO_REGIMENES[self.tipo]
        if self.regimen not in allowed:
            raise ValueError(
                f"regimen {self.regimen} is not one of tipo {self.tipo}'s "
                f"({min(allowed)} to {max(allowed)}, tablas de referencia)"
            )
        return self

    @model_validator(mode="after")
    def _adds_up(self) -> Tributo:
        expected = round_half_even(self.base_imponible * self.alicuota / 100)
        if abs(expected - self.total) > TOTAL_TOLERANCE:
            raise ValueError(
                f"total {self.total} is not base_imponible × alicuota / 100 = {expected}"
            )
        return self


class ComprobanteAsociado(ApiModel):
    tipo_comprobante: str
    punto_venta: Annotated[int, Field(ge=1, le=99998)]
    numero: Annotated[int, Field(ge=1, le=99999999)]
    comprobante_fecha: ApiDate
    cuit: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]

    @field_validator("tipo_comprobante")
    @classmethod
    def _tipo(cls, v: str) -> str:
        if v not in TIPOS:
            raise ValueError("not a comprobante tipo of the API's table")
        return v

    @field_validator("cuit")
    @classmethod
    def _cuit(cls, v: str) -> str:
        return valid_cuit(v)


class PeriodoAsociado(ApiModel):
    fecha_desde: ApiDate
    fecha_hasta: ApiDate

    @model_validator(mode="after")
    def _order(self) -> PeriodoAsociado:
        if self.fecha_desde > self.fecha_hasta:
            raise ValueError("fecha_desde is after fecha_hasta")
        return self


def _periodo_or_none(value: Any) -> Any:
    # The SDK always sends the period block, with empty strings when unused.
    if isinstance(value, dict) and all(not str(v).strip() for v in value.values()):
        return None
    return value


class DatoEspecial(ApiModel):
    id: int
    valor: Annotated[str, Field(max_length=255)]


class RgEspeciales(ApiModel):
    regimen: Str255
    datos: list[DatoEspecial] = Field(default_factory=list)


class DatosInformativos(ApiModel):
    paga_misma_moneda: YesNo = "N"


class FormaPago(ApiModel):
    descripcion: Str255
    importe: Amount2


class Pagos(ApiModel):
    formas_pago: list[FormaPago] = Field(default_factory=list)
    total: Amount2


class Comprobante(ApiModel):
    tipo: str
    operacion: Literal["V"]
    punto_venta: Annotated[int, Field(ge=1, le=99998)]
    # 0 or absent: the worker sends the next number. A number given is the one the job
    # must be issued as: the worker sends it only when it is the next (as the API does).
    numero: Annotated[int, Field(ge=0, le=99999999)] = 0
    fecha: ApiDate
    vencimiento: OptionalApiDate = None
    periodo_facturado_desde: OptionalApiDate = None
    periodo_facturado_hasta: OptionalApiDate = None
    # Absent in some of the vendor's examples: pesos.
    moneda: str = "PES"
    cotizacion: Annotated[Number, Field(gt=0, le=Decimal("1000000000")), _decimals_at_most(3)] = (
        Decimal(1)
    )
    # 1 Español, 2 Inglés; the vendor's examples send it as "1" as often as 1.
    idioma: Annotated[Literal[1, 2], BeforeValidator(_digit_text)] = 1
    rubro: Annotated[str, Field(min_length=1, max_length=255)]
    rubro_grupo_contable: Annotated[str, Field(min_length=1, max_length=255)]
    detalle: Annotated[list[Item], Field(min_length=1, max_length=MAX_ITEMS)]
    total: Annotated[Amount2, Field(gt=0)]
    bonificacion: Amount2 = Decimal(0)
    leyenda_gral: Annotated[str | None, Field(max_length=500)] = None
    comentario: Str255 | None = None
    external_reference: str
    tags: Annotated[list[Str255], Field(max_length=50)] = Field(default_factory=list)
    tributos: Annotated[list[Tributo], Field(max_length=7)] = Field(default_factory=list)
    impuestos_internos: OptionalAmount2 = None
    impuestos_internos_base: OptionalAmount2 = None
    impuestos_internos_alicuota: Annotated[
        Amount | None, Field(le=100), BeforeValidator(_blank_to_none)
    ] = None
    exentos: OptionalAmount2 = None
    # "Solo podras enviar hasta 10 comprobantes asociados por NC/ND" (notas-credito-debito).
    comprobantes_asociados: Annotated[
        list[ComprobanteAsociado] | None, Field(max_length=MAX_ASSOCIATED)
    ] = None
    comprobantes_asociados_periodo: Annotated[
        PeriodoAsociado | None, BeforeValidator(_periodo_or_none)
    ] = None
    rg_especiales: RgEspeciales | None = None
    pagos: Pagos | None = None
    datos_informativos: DatosInformativos | None = None
    abono: YesNo | None = None
    abono_frecuencia: int | None = None
    abono_hasta: Annotated[
        Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])/\d{4}$")] | None,
        BeforeValidator(_blank_to_none),
    ] = None
    abono_actualiza_precios: YesNo | None = None
    fex: dict[str, Any] | None = None

    @field_validator("tipo")
    @classmethod
    def _tipo(cls, v: str) -> str:
        if v not in TIPOS:
            raise ValueError("not a comprobante tipo of the API's table (e.g. 'FACTURA B')")
        return v

    @field_validator("fex")
    @classmethod
    def _fex(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and len(plain_json(v)) > 65536:
            raise ValueError("at most 64 KiB")
        return v

    @field_validator("moneda")
    @classmethod
    def _moneda(cls, v: str) -> str:
        if v not in MONEDAS:
            raise ValueError("not a moneda code of the API's table (e.g. PES, DOL, 060)")
        return v

    @field_validator("external_reference")
    @classmethod
    def _external_reference(cls, v: str) -> str:
        if not EXTERNAL_REFERENCE_RE.fullmatch(v):
            raise ValueError("required: 1 to 255 letters, digits, '_' or '-'")
        return v

    @property
    def info(self) -> TipoInfo:
        return TIPOS[self.tipo]

    @property
    def is_services(self) -> bool:
        """Services invoices carry a billed period; AFIP gives them a ±10 day window."""
        return self.periodo_facturado_desde is not None or self.periodo_facturado_hasta is not None


class Invoice(ApiModel):
    """The body of `facturacion/nuevo` without the credentials."""

    cliente: Cliente
    comprobante: Comprobante

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in CREDENTIAL_FIELDS):
            raise ValueError(
                "apikey/apitoken/usertoken do not belong in a job: "
                "the worker reads them from the tenants file when it sends"
            )
        return data


class JobEnvelope(BaseModel):
    """What producers submit: the same for the Python API, a JSONL line and an HTTP body."""

    model_config = ConfigDict(extra="forbid")
    # Paths of invoice fields tfq passed through without checking them (`unknown_fields`).
    _unchecked: list[str] = PrivateAttr(default_factory=list)

    cuit: str
    invoice: Invoice
    callback_url: Annotated[AnyHttpUrl | None, BeforeValidator(_blank_to_none)] = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cuit", mode="before")
    @classmethod
    def _cuit(cls, v: Any) -> Any:
        v = str(v) if isinstance(v, int) else v
        return valid_cuit(v) if isinstance(v, str) else v

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > 50:
            raise ValueError("at most 50 keys")
        if len(plain_json(v)) > 8192:
            raise ValueError("at most 8 KiB")
        return v

    @property
    def external_reference(self) -> str:
        return self.invoice.comprobante.external_reference

    @property
    def unchecked_fields(self) -> list[str]:
        return list(self._unchecked)

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: one invoice per (issuer CUIT, external_reference)."""
        return (self.cuit, self.invoice.comprobante.external_reference)

    def invoice_body(self) -> dict[str, Any]:
        """The invoice as the API wants it (JSON-ready, numbers as numbers), no credentials."""
        return self.invoice.model_dump(mode="json", exclude_none=True)


# --- business rules -----------------------------------------------------------------


def expected_totals(comprobante: Comprobante) -> list[Decimal]:
    """What the items, discounts, tributos and internal taxes add up to, under each
    reading of the docs (one total when they agree).

    Net per VAT rate is summed and rounded, VAT per rate = round(net × rate) (AFIP's
    AlicIva lines), all round half even (`redondeos.md`). Letters A, B and M add VAT; C
    and the others carry final prices. `bonificacion` is a discount without VAT taken
    off "el primer subtotal SIN IVA" and taxed at that subtotal's rate: the reference
    page says the first subtotal, a newer version adds "(generalmente el del 21%)". The
    first subtotal is that of the first item's rate; both readings are accepted.
    """
    with localcontext() as ctx:  # amounts are bounded, but products of them need room
        ctx.prec = 60
        return _expected_totals(comprobante)


def _expected_totals(comprobante: Comprobante) -> list[Decimal]:
    with_vat = comprobante.info.letter in LETTERS_WITH_VAT
    net_by_rate: dict[Decimal, Decimal] = {}  # in the order the rates first appear
    for item in comprobante.detalle:
        p = item.producto
        net = item.cantidad * p.precio_unitario_sin_iva * (1 - item.bonificacion_porcentaje / 100)
        rate = p.alicuota if with_vat and p.alicuota > 0 else Decimal(0)
        net_by_rate[rate] = net_by_rate.get(rate, Decimal(0)) + net
    others = sum((t.total for t in comprobante.tributos), Decimal(0))
    if comprobante.impuestos_internos:
        others += comprobante.impuestos_internos
    readings = [next(iter(net_by_rate))]
    if Decimal(21) in net_by_rate:
        readings.append(Decimal(21))
    totals: list[Decimal] = []
    for discounted in readings:
        total = others
        for rate, raw_net in net_by_rate.items():
            discount = comprobante.bonificacion if rate == discounted else Decimal(0)
            net = round_half_even(raw_net - discount)
            total += net + round_half_even(net * rate / 100)
        total = round_half_even(total)
        if total not in totals:
            totals.append(total)
    return totals


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


# --- fields tfq does not know -----------------------------------------------------------

# A name this close to a known field's is a typo of it (difflib's ratio: "cantidadd" to
# "cantidad" is 0.94, "incluir_lista_precios_venta" to "lista_precios" 0.65).
MISSPELLING_CUTOFF = 0.85


def _block_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The API block model a field holds, and whether it holds a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    for arg in get_args(annotation):
        model, is_list = _block_model(arg)
        if model is not None:
            return model, is_list or origin is list
    return None, False


@functools.cache
def _fields_of(model: type[BaseModel]) -> dict[str, tuple[type[BaseModel] | None, bool]]:
    """Each field of `model`: the block model it holds, and whether a list of them."""
    return {name: _block_model(f.annotation) for name, f in model.model_fields.items()}


def unknown_fields(
    model: type[BaseModel], data: Any, loc: tuple[int | str, ...]
) -> tuple[list[str], list[FieldError]]:
    """(paths of fields `model` does not know, refusals of misspelt or credential names)."""
    unchecked: list[str] = []
    refused: list[FieldError] = []
    if not isinstance(data, dict):
        return unchecked, refused
    fields = _fields_of(model)
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        known = fields.get(key)
        if known is not None:
            block, is_list = known
            if key in FREE_FORM_FIELDS:
                refused += _credentials_inside(value, (*loc, key))
            elif block is not None and (not is_list or isinstance(value, list)):
                # (a wrong type is left to pydantic, which names it)
                items = value if is_list else [value]
                for i, item in enumerate(items):
                    sub = (*loc, key, i) if is_list else (*loc, key)
                    u, r = unknown_fields(block, item, sub)
                    unchecked += u
                    refused += r
            continue
        where = format_loc((*loc, key))
        if key in CREDENTIAL_FIELDS:
            refused.append(FieldError(where, "credentials do not belong in a job"))
        elif close := difflib.get_close_matches(key, list(fields), n=1, cutoff=MISSPELLING_CUTOFF):
            refused.append(FieldError(where, f"unknown field: did you mean '{close[0]}'?"))
        else:
            # Passed to the API unchanged, so stored and sent: plain JSON, no credentials.
            try:
                plain_json(value)
            except ValueError as exc:
                refused.append(FieldError(where, str(exc)))
                continue
            found = _credentials_inside(value, (*loc, key))
            refused += found
            if not found:
                unchecked.append(where)
    return unchecked, refused


# Blocks the API takes as free-form JSON (checked as plain JSON by their own validators).
FREE_FORM_FIELDS = frozenset({"fex"})


def _credentials_inside(value: Any, loc: tuple[int | str, ...]) -> list[FieldError]:
    """Credential names at any depth of a free-form value: they would be stored and sent."""
    found: list[FieldError] = []
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(value, loc)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if key in CREDENTIAL_FIELDS:
                    found.append(
                        FieldError(format_loc((*where, key)), "credentials do not belong in a job")
                    )
                elif len(where) - len(loc) < MAX_JSON_DEPTH:
                    stack.append((item, (*where, str(key))))
        elif isinstance(node, list) and len(where) - len(loc) < MAX_JSON_DEPTH:
            stack.extend((item, (*where, i)) for i, item in enumerate(node))
    return found


def validate_envelope(
    data: Any,
    *,
    today: date | None = None,
    cf_threshold: Decimal = CF_IDENTIFICATION_THRESHOLD_ARS,
) -> JobEnvelope:
    """The job, or `InvalidJob` listing every field path and reason."""
    if not isinstance(data, dict):
        raise InvalidJob([FieldError("", "a job must be a JSON object")])
    unchecked, misspelt = unknown_fields(Invoice, data.get("invoice"), ("invoice",))
    try:
        env = JobEnvelope.model_validate(data)
    except ValidationError as exc:
        errors = misspelt + field_errors(exc, data=data)
        if any(e["type"] == "string_unicode" for e in exc.errors(include_input=False)):
            # A lone surrogate (JSON allows one): pydantic cannot name where it is.
            path = unencodable_path(data)
            if path is not None:
                errors = [FieldError(path, "not valid UTF-8 text")]
        raise InvalidJob(errors) from None
    if misspelt:
        raise InvalidJob(misspelt)
    errs = business_errors(env, today=today, cf_threshold=cf_threshold)
    if errs:
        raise InvalidJob(errs)
    env._unchecked = unchecked
    return env
