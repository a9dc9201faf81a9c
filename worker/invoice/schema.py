"""The TusFacturas request body (`facturacion/nuevo` without the credentials) as pydantic
models, field names exactly as the API spells them. Each block checks what it can know on
its own; rules across blocks are in `worker.invoice.rules`."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from worker.invoice.cuit import valid_cuit
from worker.invoice.fieldtypes import (
    TOTAL_TOLERANCE,
    Amount,
    Amount2,
    ApiDate,
    Number,
    OptionalAmount2,
    OptionalApiDate,
    Str255,
    YesNo,
    blank_to_none,
    decimals_at_most,
    digit_text,
    int_to_text,
    round_half_even,
)
from worker.invoice.passthrough import CREDENTIAL_FIELDS, plain_json
from worker.invoice.tables import (
    ALICUOTAS,
    CONDICIONES_PAGO,
    MONEDAS,
    PROVINCIAS,
    TIPOS,
    TRIBUTO_REGIMENES,
    TRIBUTO_TIPOS,
    TipoInfo,
)

MAX_ITEMS = 130
MAX_ASSOCIATED = 10
# Used with fullmatch: `$` would accept a final newline.
EXTERNAL_REFERENCE_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
EMAIL_RE = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")


class ApiModel(BaseModel):
    """API blocks. A field tfq does not know passes through to the API unchanged (the
    vendor's pages use more fields than any one table lists) and is reported in the job's
    result as not checked by tfq; a misspelt name of a known field is refused with a hint
    (`worker.invoice.passthrough`), so a typo never vanishes silently."""

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
    codigo: Annotated[str, BeforeValidator(int_to_text), Field(max_length=50)] = ""
    precio_unitario_sin_iva: Annotated[Amount, decimals_at_most(3)]
    alicuota: Number
    unidad_medida: Annotated[int, Field(ge=0, le=99)] = 7
    impuestos_internos_alicuota: Annotated[
        Amount | None, Field(le=100), BeforeValidator(blank_to_none)
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
    cantidad: Annotated[Number, Field(gt=0, le=Decimal("999999999")), decimals_at_most(2)]
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
    cotizacion: Annotated[Number, Field(gt=0, le=Decimal("1000000000")), decimals_at_most(3)] = (
        Decimal(1)
    )
    # 1 Español, 2 Inglés; the vendor's examples send it as "1" as often as 1.
    idioma: Annotated[Literal[1, 2], BeforeValidator(digit_text)] = 1
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
        Amount | None, Field(le=100), BeforeValidator(blank_to_none)
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
        BeforeValidator(blank_to_none),
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
