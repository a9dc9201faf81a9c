"""Hostile job envelopes for property tests, each with an independent verdict.

`hostile_envelopes()` starts from the valid examples (dated today) and applies 0..N
mutations; `random_json_envelopes()` throws arbitrary JSON. Every generated `Hostile`
carries `expect`:

- "valid": no mutation, or only mutations that keep a valid envelope valid;
- "invalid": some mutation broke a rule of the README's intake list, and its *witness*
  (a check on the final envelope, written here from the README and the API's tables,
  never by calling the validator) still holds after every later mutation;
- "unknown": anything else (lax coercions, random values, other valid enum values...):
  the tests then only assert the invariants (no crash, paths, nothing echoed).

Enumeration tables (`worker.invoice.tables`) are the API's own tables, used as data only; the
tables whose contents are intake rules of their own (monedas, condiciones de pago, the
regimen of each tributo tipo) are written here from the docs. Two rules are modelled in
full, not only by witnesses: fields a block does not know (`unknown_keys`: they pass
through and are listed, unless misspelt or credentials) and the invoice total
(`model_totals`, both readings of `bonificacion`).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, Literal

from hypothesis import strategies as st

from ops.testkit.examples import load_examples
from worker.invoice.rules import argentina_today
from worker.invoice.tables import CONDICIONES_IVA, PROVINCIAS, TIPOS
from worker.settings import CF_IDENTIFICATION_THRESHOLD_ARS

TODAY = argentina_today()


def _with_export_invoice(examples: dict[str, Any]) -> dict[str, Any]:
    """The examples plus a type E invoice (the only one with `fex`, a free-form block),
    derived from factura_c: a foreign customer, dollars, the same items and total."""
    e = json.loads(json.dumps(examples["factura_c"]))
    e["invoice"]["cliente"].update(
        documento_tipo="PASAPORTE",
        documento_nro="12345678",
        razon_social="Importadora Oriental SA",
        domicilio="Av. 18 de Julio 1234, Montevideo",
        condicion_iva="CDEX",
    )
    e["invoice"]["comprobante"].update(
        tipo="FACTURA E",
        moneda="DOL",
        cotizacion=1415.5,
        external_reference="EXP-0001",
        fex={"tipo_exportacion": 1, "incoterms": "FOB", "pais_destino": 203},
    )
    return {**examples, "factura_e": e}


def _with_fce_note(examples: dict[str, Any]) -> dict[str, Any]:
    """The examples plus an FCE MiPyME credit note (the only one with `rg_especiales`),
    derived from factura_a: it annuls an FCE A invoice of the same issuer, and carries the
    dato 22 (anulación "N") an FCE note needs (the vendor's nota-de-credito-mipyme-a)."""
    e = json.loads(json.dumps(examples["factura_a"]))
    comp = e["invoice"]["comprobante"]
    comp.update(
        tipo="NOTA DE CREDITO ELECTRONICA MiPyME (FCE) A",
        external_reference="NC-FCE-0001",
        comprobantes_asociados=[
            {
                "tipo_comprobante": "FACTURA DE CREDITO ELECTRONICA MiPyME (FCE) A",
                "punto_venta": 3,
                "numero": 12,
                "comprobante_fecha": comp["fecha"],
                "cuit": e["cuit"],
            }
        ],
        rg_especiales={
            "regimen": "Factura de Crédito Electrónica MiPyMEs (FCE)",
            "datos": [{"id": 22, "valor": "N"}, {"id": 23, "valor": "PIRULO S.A"}],
        },
    )
    return {**examples, "nota_credito_fce_a": e}


EXAMPLES = _with_fce_note(_with_export_invoice(load_examples(TODAY)))
BASE_NAMES = sorted(EXAMPLES)
ALLOWED_CUITS = ("20111111112", "20267565393")  # the demo client's CUITs
MAX_ITEMS = 130  # README: "<= 130 items"
MAX_ASSOCIATED = 10  # "hasta 10 comprobantes asociados por NC/ND"
CREDENTIALS = ("apikey", "apitoken", "usertoken")
VALID_TIPOS = frozenset(TIPOS)
DOCUMENTO_TIPOS = ("CUIT", "CUIL", "CDI", "DNI", "PASAPORTE", "OTRO")
ALICUOTA_VALUES = (27, 21, 10.5, 0, -1, -2)
ASCII_REF_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
STRICT_DATE_RE = re.compile(r"^([0-9]{2})/([0-9]{2})/([0-9]{4})$")
# The docs' table of monedas (tablas de referencia), and codes only older tables have.
MONEDAS: tuple[str, ...] = ("PES", "DOL", "004", "003", "011", "012", "023", "033", "032")
MONEDAS += ("031", "060", "036", "035", "010")
RETIRED_MONEDAS = ("021", "019", "009")
# Condiciones de venta 201 to 217; 0 (or absent): none.
CONDICIONES_PAGO = tuple(range(201, 218))
CONDICION_PAGO_OTRA = 214
# Tributo tipo -> the regimen values it takes ("Régimen de percepción").
TRIBUTO_REGIMENES: dict[int, tuple[int, ...]] = {
    6: (1, 2, 3),
    7: tuple(range(4, 29)),
    1: (31, 32, 33, 34),
}
MAX_DNI_DIGITS = 11
E_TIPOS = ("FACTURA E", "NOTA DE DEBITO E", "NOTA DE CREDITO E")
FCE_NOTES = tuple(
    f"NOTA DE {kind} ELECTRONICA MiPyME (FCE) {letter}"
    for kind in ("CREDITO", "DEBITO")
    for letter in "ABC"
)
FCE_ANULACION = 22  # the rg_especiales dato of an FCE note: valor "S" or "N"
# Documents AFIP does not issue: no letter, no total to meet.
NON_AFIP_TIPOS: tuple[str, ...] = ("FACTURA NO VALIDA EN AFIP", "NOTA DE CREDITO NO VALIDA EN AFIP")
NON_AFIP_TIPOS += ("REMITO", "PRESUPUESTO")
LIQUIDACIONES = {"FACTURA A": "LIQUIDACIONES A", "FACTURA B": "LIQUIDACIONES B"}
LETTERS_WITH_VAT = ("A", "B", "M")  # prices without VAT, VAT added per rate
CF_THRESHOLD = Decimal(CF_IDENTIFICATION_THRESHOLD_ARS)  # anonymous CF: below this (ARS)
TOLERANCE = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999.99")
MISSPELLING_CUTOFF = 0.85  # difflib.get_close_matches: a key this close is a typo
MAX_JSON_DEPTH = 20  # free-form values: plain JSON at most this deep

Path = tuple[str | int, ...]
Effect = Literal["keeps", "breaks", "unknown"]
Expect = Literal["valid", "invalid", "unknown"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- the envelope's shape, from the README and the API's field list ------------------------


@dataclass(frozen=True)
class Spec:
    """One field of a block: its kind, whether the API requires it, and its limits."""

    kind: str
    required: bool = False
    lo: float | None = None  # inclusive lower bound (ints, decimals)
    hi: float | None = None  # inclusive upper bound
    gt0: bool = False  # strictly positive
    places: int | None = None  # most decimals
    min_len: int = 0
    max_len: int | None = None
    values: tuple[Any, ...] = ()  # enumerations
    bad: tuple[Any, ...] = ()  # more values it never takes
    blank: bool = False  # "" (or spaces) means absent


def _s(min_len: int = 0, max_len: int | None = 255, required: bool = False) -> Spec:
    return Spec("str", required, min_len=min_len, max_len=max_len)


def _enum(values: tuple[Any, ...], required: bool = False) -> Spec:
    return Spec("enum", required, values=values)


def _amount(places: int | None = 2, hi: float | None = None, blank: bool = False) -> Spec:
    return Spec("dec", lo=0, places=places, hi=hi, blank=blank)


YN = ("S", "N")
IVA = tuple(CONDICIONES_IVA)
FIELDS: dict[str, dict[str, Spec]] = {
    "top": {
        "cuit": Spec("cuit", True),
        "invoice": Spec("obj", True),
        "callback_url": Spec("url"),
        "metadata": Spec("free"),
    },
    "invoice": {"cliente": Spec("obj", True), "comprobante": Spec("obj", True)},
    "cliente": {
        "documento_tipo": _enum(DOCUMENTO_TIPOS, True),
        "documento_nro": Spec("digits", True),
        "razon_social": _s(1, 255, True),
        "nombre_fantasia": _s(),
        "email": Spec("emails"),
        "domicilio": _s(1, 255, True),
        "provincia": Spec("int", True, values=tuple(sorted(PROVINCIAS))),
        "envia_por_mail": _enum(YN, True),
        "condicion_pago": Spec("int", values=(0, *CONDICIONES_PAGO), bad=(218, 300)),
        "condicion_pago_otra": _s(0, 100),
        "condicion_iva": _enum(IVA, True),
        "condicion_iva_operacion": _enum(IVA),
        "codigo": _s(0, 50),
        "rg5329": _enum(YN),
        "reclama_deuda": _enum(YN),
        "reclama_deuda_dias": Spec("int", lo=0),
        "reclama_deuda_repite_dias": Spec("int", lo=0),
    },
    "comprobante": {
        "tipo": _enum(tuple(TIPOS), True),
        "operacion": _enum(("V",), True),
        "punto_venta": Spec("int", True, lo=1, hi=99998),
        "numero": Spec("int", lo=0, hi=99999999),
        "fecha": Spec("date", True),
        "vencimiento": Spec("date"),
        "periodo_facturado_desde": Spec("date"),
        "periodo_facturado_hasta": Spec("date"),
        "moneda": Spec("enum", values=MONEDAS, bad=RETIRED_MONEDAS),
        "cotizacion": Spec("dec", gt0=True, places=3, hi=1e9),
        "idioma": Spec("intenum", values=(1, 2)),
        "rubro": _s(1, 255, True),
        "rubro_grupo_contable": _s(1, 255, True),
        "detalle": Spec("list", True, min_len=1, max_len=MAX_ITEMS),
        "total": Spec("dec", True, gt0=True, places=2, hi=9999999999999.99),
        "bonificacion": _amount(hi=9999999999999.99),
        "leyenda_gral": _s(0, 500),
        "comentario": _s(),
        "external_reference": Spec("ref", True),
        "tags": Spec("list", max_len=50),
        "tributos": Spec("list", max_len=7),
        "impuestos_internos": _amount(blank=True),
        "impuestos_internos_base": _amount(blank=True),
        "impuestos_internos_alicuota": _amount(None, 100, blank=True),
        "exentos": _amount(blank=True),
        "comprobantes_asociados": Spec("list", max_len=MAX_ASSOCIATED),
        "comprobantes_asociados_periodo": Spec("obj"),
        "rg_especiales": Spec("obj"),
        "pagos": Spec("obj"),
        "datos_informativos": Spec("obj"),
        "abono": _enum(YN),
        "abono_frecuencia": Spec("int"),
        "abono_hasta": Spec("str", bad=("13/2026", "1/2026", "2026-01", "00/2026"), blank=True),
        "abono_actualiza_precios": _enum(YN),
        "fex": Spec("free"),
    },
    "item": {
        "cantidad": Spec("dec", True, gt0=True, places=2),
        "afecta_stock": _enum(YN),
        "bonificacion_porcentaje": Spec("dec", lo=0, hi=100),
        "leyenda": _s(0, 1000),
        "producto": Spec("obj", True),
    },
    "producto": {
        "descripcion": _s(1, 255, True),
        "unidad_bulto": Spec("int", lo=1),
        "lista_precios": _s(1, 255),
        "codigo": Spec("code", max_len=50),
        "precio_unitario_sin_iva": Spec("dec", True, lo=0, places=3, hi=9999999999999.99),
        "alicuota": Spec("alicuota", True),
        "unidad_medida": Spec("int", lo=0, hi=99),
        "impuestos_internos_alicuota": _amount(None, 100, blank=True),
        "actualiza_precio": _enum(YN),
        "rg5329": _enum(YN),
    },
    "tributo": {
        # The tipos older tables had (2 to 5, 8, 9, 13, 99) are not the API's.
        "tipo": Spec("int", True, values=tuple(TRIBUTO_REGIMENES), bad=(2, 3, 4, 5, 8, 9, 13, 99)),
        "regimen": Spec("regimen", True),
        "base_imponible": Spec("dec", True, lo=0, places=2),
        "alicuota": Spec("dec", True, lo=0, hi=100),
        "total": Spec("dec", True, lo=0, places=2),
        "descripcion": _s(),
    },
    "asociado": {
        "tipo_comprobante": _enum(tuple(TIPOS), True),
        "punto_venta": Spec("int", True, lo=1, hi=99998),
        "numero": Spec("int", True, lo=1, hi=99999999),
        "comprobante_fecha": Spec("date", True),
        "cuit": Spec("cuit", True),
    },
    "periodo": {"fecha_desde": Spec("date", True), "fecha_hasta": Spec("date", True)},
    "rg_especiales": {"regimen": _s(0, 255, True), "datos": Spec("list")},
    "dato": {"id": Spec("int", True), "valor": _s(0, 255, True)},
    "datos_informativos": {"paga_misma_moneda": _enum(YN)},
    "pagos": {"formas_pago": Spec("list"), "total": Spec("dec", True, lo=0, places=2)},
    "forma_pago": {"descripcion": _s(0, 255, True), "importe": Spec("dec", True, lo=0, places=2)},
}
KNOWN_FIELDS = frozenset(name for block in FIELDS.values() for name in block)
# Fields whose value is free-form JSON: nothing under them is a "field".
FREE_FORM = ("metadata", "fex")
# The blocks inside each block: field -> (block, whether it holds a list of them).
CHILDREN: dict[str, dict[str, tuple[str, bool]]] = {
    "top": {"invoice": ("invoice", False)},
    "invoice": {"cliente": ("cliente", False), "comprobante": ("comprobante", False)},
    "comprobante": {
        "detalle": ("item", True),
        "tributos": ("tributo", True),
        "comprobantes_asociados": ("asociado", True),
        "comprobantes_asociados_periodo": ("periodo", False),
        "rg_especiales": ("rg_especiales", False),
        "pagos": ("pagos", False),
        "datos_informativos": ("datos_informativos", False),
    },
    "item": {"producto": ("producto", False)},
    "rg_especiales": {"datos": ("dato", True)},
    "pagos": {"formas_pago": ("forma_pago", True)},
}
# Blocks mutations leave alone: in no example, and a blank period is no period at all.
NOT_TARGETS = frozenset({"periodo", "pagos", "forma_pago"})


def walk(env: Any, *, every: bool = False) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """Every block of `env` that is a dict now: (path, block, the dict).

    Mutations target all but `NOT_TARGETS` (lists cut at MAX_ITEMS); `every` walks them
    all. A dict where a list of blocks belongs is no block (BUG-11).
    """
    stack: list[tuple[Any, Path, str]] = [(env, (), "top")]
    while stack:
        node, path, block = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, block, node
        for name, (child, is_list) in CHILDREN.get(block, {}).items():
            if not every and child in NOT_TARGETS:
                continue
            value = node.get(name)
            if is_list and isinstance(value, list):
                items = value if every else value[:MAX_ITEMS]
                stack.extend((item, (*path, name, i), child) for i, item in enumerate(items))
            elif not is_list:
                stack.append((value, (*path, name), child))


def blocks(env: Any) -> list[tuple[Path, str]]:
    """Every block of `env` that mutations may target, with its path."""
    return [(path, block) for path, block, _ in walk(env)]


# --- fields a block does not know ------------------------------------------------------------


def close_match(key: str, block: str) -> str | None:
    """The known field of `block` that `key` is a misspelling of, if any."""
    found = difflib.get_close_matches(key, list(FIELDS[block]), n=1, cutoff=MISSPELLING_CUTOFF)
    return found[0] if found else None


@dataclass
class UnknownKeys:
    """Keys of API blocks that are no field of theirs: passed through (with their values)
    or refused (with the field they misspell; None for a credential)."""

    passed: list[tuple[Path, Any]] = field(default_factory=list)
    refused: list[tuple[Path, str | None]] = field(default_factory=list)


def nested_credentials(value: Any, path: Path) -> list[Path]:
    """Credential keys at any depth of a free-form value (fex, a pass-through field)."""
    found: list[Path] = []
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if len(where) - len(path) > MAX_JSON_DEPTH:
            continue
        if isinstance(node, dict):
            for key, item in node.items():
                if key in CREDENTIALS:
                    found.append((*where, key))
                else:
                    stack.append((item, (*where, str(key))))
        elif isinstance(node, list):
            stack.extend((item, (*where, i)) for i, item in enumerate(node))
    return found


def unknown_keys(env: Any) -> UnknownKeys:
    """The envelope's unknown keys below the top level (which refuses them all), and the
    credentials inside free-form values: passed-through ones and `fex`."""
    out = UnknownKeys()
    for path, block, holder in walk(env, every=True):
        if block == "top":
            continue
        for key, value in holder.items():
            if key in FIELDS[block]:
                if key == "fex":
                    out.refused += [(p, None) for p in nested_credentials(value, (*path, key))]
                continue
            if key in CREDENTIALS:
                out.refused.append(((*path, key), None))
            elif (hint := close_match(key, block)) is not None:
                out.refused.append(((*path, key), hint))
            elif inside := nested_credentials(value, (*path, key)):
                out.refused += [(p, None) for p in inside]
            elif plain_json(value):
                out.passed.append(((*path, key), value))
    return out


def plain_json(value: Any) -> bool:
    """Finite numbers, text that is valid UTF-8, at most MAX_JSON_DEPTH levels."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        if isinstance(node, dict):
            if not all(_utf8(k) for k in node):
                return False
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            if not _utf8(node):
                return False
        elif isinstance(node, float) and not math.isfinite(node):
            return False
    return True


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def path_text(path: Path) -> str:
    """A path as intake refusals write it: `invoice.cliente["odd.key"]`, `detalle[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part and part.isprintable() and not any(ch in part for ch in '.[]"'):
            text = f"{text}.{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


# --- the invoice total and the other amount rules ---------------------------------------------


def dec(value: Any) -> Decimal | None:
    """A JSON number as the exact decimal it is written as; None for anything else."""
    if not is_number(value):
        return None
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(TOLERANCE, rounding=ROUND_HALF_EVEN)


def letter_of(comp: Any) -> str | None:
    tipo = comp.get("tipo") if isinstance(comp, dict) else None
    return TIPOS[tipo].letter if isinstance(tipo, str) and tipo in TIPOS else None


def model_totals(comp: Any) -> list[Decimal] | None:
    """The totals the docs accept for this comprobante (None: its amounts are not plain).

    Net per VAT rate (the item's alicuota for letters A, B and M, else 0), summed in the
    order the rates first appear, rounded half even; VAT per rate = round(net × rate).
    `bonificacion` is a discount without VAT off "el primer subtotal SIN IVA", taxed at
    its rate; "generalmente el del 21%" says a newer version of the page: the subtotal
    of the first item's rate and, when there is one, the 21 % subtotal are both read.
    Tributos and impuestos_internos add up. Within a cent of any reading is right.
    """
    rates = subtotal_rates(comp)
    if rates is None:
        return None
    readings = [rates[0], Decimal(21)] if Decimal(21) in rates[1:] else [rates[0]]
    totals = [total_with_discount_on(comp, rate) for rate in readings]
    return [t for t in totals if t is not None]


def subtotal_rates(comp: Any) -> list[Decimal] | None:
    """The VAT rates of the subtotals, in the order they first appear."""
    nets = _nets(comp)
    return None if nets is None else list(nets[0])


def total_with_discount_on(comp: Any, discounted: Decimal) -> Decimal | None:
    """The total with `bonificacion` off the subtotal of rate `discounted`."""
    nets = _nets(comp)
    if nets is None:
        return None
    net_by_rate, others, bonificacion = nets
    with localcontext() as ctx:
        ctx.prec = 60
        total = others
        for rate, raw in net_by_rate.items():
            net = _cents(raw - (bonificacion if rate == discounted else 0))
            total += net + _cents(net * rate / 100)
        return _cents(total)


def _nets(comp: Any) -> tuple[dict[Decimal, Decimal], Decimal, Decimal] | None:
    """(net by VAT rate, tributos + impuestos_internos, bonificacion), or None."""
    letter = letter_of(comp)
    items = comp.get("detalle") if isinstance(comp, dict) else None
    if letter is None or not isinstance(items, list) or not items:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        net_by_rate: dict[Decimal, Decimal] = {}
        for item in items:
            p = item.get("producto") if isinstance(item, dict) else None
            if not isinstance(p, dict):
                return None
            qty, price = dec(item.get("cantidad")), dec(p.get("precio_unitario_sin_iva"))
            off, rate = dec(item.get("bonificacion_porcentaje", 0)), dec(p.get("alicuota"))
            if qty is None or price is None or off is None or rate is None:
                return None
            rate = rate if letter in LETTERS_WITH_VAT and rate > 0 else Decimal(0)
            net_by_rate[rate] = net_by_rate.get(rate, Decimal(0)) + qty * price * (1 - off / 100)
        others = Decimal(0)
        tributos = comp.get("tributos", [])
        if not isinstance(tributos, list):
            return None
        for tributo in tributos:
            t = dec(tributo.get("total")) if isinstance(tributo, dict) else None
            if t is None:
                return None
            others += t
        internos = comp.get("impuestos_internos")
        if not (internos is None or (isinstance(internos, str) and not internos.strip())):
            amount = dec(internos)
            if amount is None:
                return None
            others += amount
        bonificacion = dec(comp.get("bonificacion", 0))
        if bonificacion is None:
            return None
        return net_by_rate, others, bonificacion


def total_refused(final: Any) -> bool:
    """The total is a number the docs' arithmetic does not reach (AFIP documents only)."""
    comp = get(final, ("invoice", "comprobante"))
    total = dec(comp.get("total")) if isinstance(comp, dict) else None
    if total is None or letter_of(comp) in (None, ""):
        return False
    totals = model_totals(comp)
    return totals is not None and all(abs(t - total) > TOLERANCE for t in totals)


def anonymous(cliente: Any) -> bool:
    """OTRO with number 0: a consumidor final not identified."""
    if not isinstance(cliente, dict) or cliente.get("documento_tipo") != "OTRO":
        return False
    nro = cliente.get("documento_nro")
    if is_number(nro) and isinstance(nro, int):
        nro = str(nro)
    return isinstance(nro, str) and nro.isascii() and nro.isdigit() and int(nro) == 0


def cf_amount(env: Any) -> Decimal | None:
    """total × cotizacion in pesos (the cotizacion of PES is 1, whatever is sent)."""
    comp = get(env, ("invoice", "comprobante"))
    if not isinstance(comp, dict):
        return None
    total = dec(comp.get("total"))
    moneda = comp.get("moneda", "PES")
    rate = Decimal(1) if moneda == "PES" else dec(comp.get("cotizacion", 1))
    if total is None or rate is None or not isinstance(moneda, str):
        return None
    return total * rate


def cf_refused(final: Any) -> bool:
    """An anonymous consumidor final at or above the identification threshold."""
    amount = cf_amount(final)
    return (
        anonymous(get(final, ("invoice", "cliente")))
        and amount is not None
        and amount >= CF_THRESHOLD
    )


def cf_ok(env: Any) -> bool:
    """The identification threshold cannot refuse `env` (for mutations that keep)."""
    if not anonymous(get(env, ("invoice", "cliente"))):
        return True
    amount = cf_amount(env)
    return amount is not None and amount < CF_THRESHOLD


# --- paths in a JSON value ------------------------------------------------------------------


def get(value: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or not 0 <= part < len(value):
                return MISSING
        elif not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def put(value: Any, path: Path, new: Any) -> bool:
    parent = get(value, path[:-1])
    last = path[-1]
    if isinstance(last, int):
        if isinstance(parent, list) and 0 <= last < len(parent):
            parent[last] = new
            return True
        return False
    if isinstance(parent, dict):
        parent[last] = new
        return True
    return False


def delete(value: Any, path: Path) -> bool:
    parent = get(value, path[:-1])
    if isinstance(parent, dict) and path[-1] in parent:
        del parent[path[-1]]
        return True
    return False


def clone(value: Any) -> Any:
    """A deep copy of a JSON value, in C (copy.deepcopy recurses in Python: deep values
    would hit the recursion limit)."""
    return json.loads(json.dumps(value))


def is_same(a: Any, b: Any) -> bool:
    """`a` is still the value a mutation put there (containers: the very same object)."""
    if a is b:
        return True
    if type(a) is not type(b) or isinstance(a, list | dict):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def strict_date(value: Any) -> date | None:
    """A dd/mm/aaaa string (ASCII digits, nothing around) as a date, else None."""
    m = STRICT_DATE_RE.match(value) if isinstance(value, str) else None
    if m is None:
        return None
    try:
        return date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        return None


def fmt(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def cuit_digit(first_ten: str) -> int | None:
    """AFIP's modulo 11 check digit (weights 5 4 3 2 7 6 5 4 3 2); None: no valid digit."""
    total = sum(int(d) * w for d, w in zip(first_ten, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True))
    digit = 11 - total % 11
    return 0 if digit == 11 else None if digit == 10 else digit


def bad_check_digit(value: Any) -> bool:
    """11 ASCII digits whose last one is not the modulo 11 check digit."""
    if not (isinstance(value, str) and len(value) == 11 and value.isascii() and value.isdigit()):
        return False
    return cuit_digit(value[:10]) != int(value[10])


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def string_values(value: Any, out: list[str] | None = None) -> list[str]:
    """Every string value (not key) inside a JSON value."""
    out = [] if out is None else out
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


# --- what a generated envelope carries -------------------------------------------------------


@dataclass
class Mutation:
    tag: str
    desc: str
    effect: Effect
    # For "breaks": a check on the final envelope that, when true, makes it invalid.
    witness: Callable[[Any], bool] | None = None
    # The witness only counts when every other mutation keeps validity (broken totals).
    alone: bool = False
    touches_ref: bool = False


@dataclass
class Hostile:
    value: Any
    base: str
    mutations: list[Mutation] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    expect: Expect = "unknown"

    @property
    def tags(self) -> set[str]:
        return {m.tag for m in self.mutations}

    def describe(self) -> str:
        return f"{self.base}: " + ("; ".join(m.desc for m in self.mutations) or "(pristine)")

    def __repr__(self) -> str:  # short: values can be huge or nested 600 deep
        return f"<{self.expect} {self.describe()[:300]}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # hypothesis' failure report
        p.text(repr(self))

    def judge(self) -> Expect:
        """The verdict from the witnesses (see the module docstring)."""
        final = self.value
        for m in self.mutations:
            if m.effect != "breaks" or m.witness is None:
                continue
            others_keep = all(o.effect == "keeps" for o in self.mutations if o is not m)
            if (not m.alone or others_keep) and m.witness(final):
                return "invalid"
        if all(m.effect == "keeps" for m in self.mutations):
            return "valid"
        return "unknown"

    def stamp(self, tag: str) -> None:
        """Make the external_reference unique (unless a mutation chose it)."""
        if any(m.touches_ref for m in self.mutations):
            return
        path = ("invoice", "comprobante", "external_reference")
        ref = get(self.value, path)
        if isinstance(ref, str) and ASCII_REF_RE.match(ref):
            put(self.value, path, f"{ref}-{tag}")


# --- value strategies -----------------------------------------------------------------------

HOSTILE_CHARS = (
    "\x00",
    "\x01",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\u0085",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\uffff",
    "\U0001f4a9",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "e\u0301",
    "ñ",
    "ß",
    "İ",
    "\n",
    "\r\n",
    "\t",
    "'",
    '"',
    "\\",
    "<script>alert(1)</script>",
    "%s%n",
    "{0}",
    "${jndi:x}",
    "'; DROP TABLE jobs; --",
    "\u0000\u0000",
)
# Text without lone surrogates (which JSON can carry but UTF-8 cannot).
SAFE_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.lists(st.sampled_from(HOSTILE_CHARS), min_size=1, max_size=4).map("".join),
)
# Lone surrogates included, as JSON can carry them ("\ud800"); a high one followed by a low
# one is written in JSON exactly as the character they pair into, so such text is made that
# character: every generated value reads back from JSON as itself.
ANY_TEXT = st.one_of(
    SAFE_TEXT,
    st.text(st.characters(categories=["Cs", "Cc", "So", "Nd", "No"]), max_size=6).map(
        lambda t: json.loads(json.dumps(t))
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    ANY_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
WRONG_CONTAINERS = st.one_of(
    st.lists(SCALARS, max_size=3), st.dictionaries(SAFE_TEXT, SCALARS, max_size=3)
)


@st.composite
def huge_string(draw: Any, longer_than: int) -> str:
    """A string of more than `longer_than` characters (built by repetition: cheap to draw)."""
    seed = draw(st.one_of(SAFE_TEXT.filter(bool), st.sampled_from(HOSTILE_CHARS)))
    extra = draw(st.sampled_from([1, 2, 100, 5000]))
    n = longer_than + extra
    return (seed * (n // len(seed) + 1))[:n]


@st.composite
def deep_value(draw: Any) -> Any:
    """Lists and dicts nested 10 to 600 deep (JSON parsers stop near 1000)."""
    depth = draw(st.sampled_from([10, 60, 300, 600]))
    value: Any = draw(st.sampled_from([[], {}, "deep", 0]))
    as_dict = draw(st.booleans())
    for _ in range(depth):
        value = {"d": value} if as_dict else [value]
    return value


# Values an unknown field may carry through to the API: plain JSON only (BUG-10), and no
# credential at any depth (Hypothesis draws this module's string constants as keys too).
PLAIN_VALUES = JSON_VALUES.filter(lambda v: plain_json(v) and not nested_credentials(v, ()))


def wrong_types(spec: Spec) -> st.SearchStrategy[Any]:
    """Values of a JSON type this field never takes."""
    options: list[st.SearchStrategy[Any]] = [WRONG_CONTAINERS, deep_value()]
    if spec.kind in ("str", "enum", "ref", "url", "emails", "date"):
        options += [st.integers(), st.floats(), st.booleans()]
        if spec.kind == "url":
            options = [st.integers(), st.floats(), WRONG_CONTAINERS]
    elif spec.kind == "code":  # text, or an integer (made text)
        options += [st.floats(), st.booleans()]
    elif spec.kind in ("int", "intenum", "regimen"):
        options += [
            st.sampled_from(["abc", "", "uno", "1,5", "1.5", "NaN", "Infinity", "0x1F"]),
            st.floats(allow_nan=True).filter(lambda f: not f.is_integer()),
        ]
    elif spec.kind in ("dec", "alicuota"):
        texts = ["abc", "", "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1,5"]
        options += [
            st.sampled_from([t for t in texts if t or not spec.blank]),
            st.sampled_from(["1.2.3", "$10", "10 pesos", "1e", "--1"]),
            st.sampled_from([math.nan, math.inf, -math.inf]),
        ]
    elif spec.kind in ("cuit", "digits"):
        options += [st.floats(), st.sampled_from(["", "abc", "20-11111111-2", "20.111.111.112"])]
    elif spec.kind in ("obj", "list"):
        options = [st.integers(), st.floats(), st.booleans(), SAFE_TEXT]
        options.append(st.lists(SCALARS, max_size=3) if spec.kind == "obj" else st.just({}))
    if spec.required:
        options.append(st.none())
    return st.one_of(options)


@st.composite
def bad_value(draw: Any, spec: Spec, env: Any, path: Path) -> Any:
    """A value this field can never take, whatever the rest of the envelope says."""
    kind = spec.kind
    choices: list[st.SearchStrategy[Any]] = [wrong_types(spec)]
    if spec.bad:
        choices.append(st.sampled_from(spec.bad))
    if kind == "str":
        if spec.min_len:
            choices.append(st.just(""))
        if spec.max_len:
            choices.append(huge_string(spec.max_len))
    elif kind == "code":
        assert spec.max_len is not None
        choices.append(huge_string(spec.max_len))
        choices.append(st.sampled_from([10**spec.max_len, -(10 ** (spec.max_len - 1)), 10**99]))
    elif kind == "enum":
        values = set(spec.values)
        variants = [
            v2
            for v in spec.values
            for v2 in (v.lower(), f" {v}", f"{v} ", f"{v}\x00", v.replace(" ", "  "), v + "X")
            if v2 not in values
        ]
        choices += [
            st.sampled_from(variants or ["?"]),
            ANY_TEXT.filter(lambda t: t not in values),
            huge_string(300),
        ]
    elif kind == "intenum":
        # "1" and "2" are read as 1 and 2; other text is not.
        choices.append(st.sampled_from([0, 3, -1, 10**20, "0", "3", "12", "１", "1.0", "uno"]))
    elif kind == "int":
        if spec.values:
            out = {-1, 0, 10, 11, 12, 27, 100, 200, 216, 218, 10**20} - set(spec.values)
            choices.append(st.sampled_from(sorted(out)))
        bad_ints = []
        if spec.lo is not None:
            bad_ints += [int(spec.lo) - 1, int(spec.lo) - 10**6, -(10**30)]
        if spec.hi is not None:
            bad_ints += [int(spec.hi) + 1, 10**30]
        if bad_ints:
            choices.append(st.sampled_from(bad_ints))
    elif kind == "regimen":  # in no tipo's table
        every = {r for table in TRIBUTO_REGIMENES.values() for r in table}
        choices.append(st.sampled_from(sorted({-1, 0, 29, 30, 35, 99, 10**20} - every)))
    elif kind in ("dec", "alicuota"):
        choices.append(st.sampled_from(list(_bad_numbers(spec))))
    elif kind == "date":
        choices.append(st.sampled_from(_bad_dates(required=spec.required)))
    elif kind == "cuit":
        choices.append(_bad_cuits())
    elif kind == "digits":
        choices.append(
            st.sampled_from(["30-71229384-1", "12.345.678", "abc", "28765432a", "1" * 21, "٫"])
        )
        choices.append(st.sampled_from([" 28765432", "28765432 ", "+28765432", "-1"]))
    elif kind == "ref":
        choices.append(
            st.sampled_from(
                ["", "has space", "ñandú", "a/b", "ref.1", "a+b", "x\x00", "😀", "ref\n"]
            )
        )
        choices.append(huge_string(255).map(lambda s: "a" * len(s)))
    elif kind == "url":
        choices.append(
            st.sampled_from(
                ["not a url", "ftp://files.example/x", "javascript:alert(1)", "http://", "//x.y"]
            )
        )
    elif kind == "emails":
        choices.append(
            st.sampled_from(
                [
                    "not-an-email",
                    "a@b",
                    "a@@b.example",
                    "a b@c.example",
                    "a@b.example;c@d.example",
                    "a@b.example\n",
                ]
            )
        )
        choices.append(st.just(",".join(f"a{i}@b.example" for i in range(16))))
    elif kind == "list":
        if spec.min_len:
            choices.append(st.just([]))
        if spec.max_len:
            current = get(env, path)
            first = current[0] if isinstance(current, list) and current else "x"
            n = spec.max_len + 1
            choices.append(st.just(None).map(lambda _: [clone(first) for _ in range(n)]))
    return draw(st.one_of(choices))


def _bad_numbers(spec: Spec) -> list[Any]:
    out: list[Any] = []
    if spec.kind == "alicuota":
        return [22, 10.4, 5, 2.5, 100, -3, "21%", 1e9, -0.5, 105]
    if spec.gt0:
        out += [0, 0.0, "0", -1, -0.01, "-5"]
    elif spec.lo is not None:
        out += [-1, -0.01, "-1", -(10**20)]
    if spec.hi is not None:
        out += [spec.hi + 1, 10**20, "1e30"]
    if spec.places is not None:
        tail = "0" * spec.places + "1"
        out += [f"1.{tail}", float(f"1.{tail}"), f"2.{'3' * (spec.places + 1)}"]
    return out


def _bad_dates(required: bool) -> list[Any]:
    y = TODAY.year
    d = fmt(TODAY)
    out: list[Any] = [
        TODAY.isoformat(),
        d.replace("/", "-"),
        d.replace("/", "."),
        d[:6] + d[8:],  # dd/mm/aa
        f"{TODAY.day}/{TODAY.month}/{y}" if TODAY.day < 10 or TODAY.month < 10 else "1/1/2026",
        f"{d} 10:00",
        f"{d}x",
        f"31/02/{y}",
        f"30/02/{y}",
        f"00/01/{y}",
        f"32/01/{y}",
        f"15/13/{y}",
        f"15/00/{y}",
        "29/02/2027",
        "31/04/2026",
        "99/99/9999",
        "00/00/0000",
        "today",
        int(TODAY.strftime("%d%m%Y")),
    ]
    if required:
        out += ["", "   "]
    return out


@st.composite
def _bad_check_digit_cuits(draw: Any) -> str:
    """11 ASCII digits with a CUIT prefix and a wrong check digit."""
    prefix = draw(st.sampled_from(["20", "23", "27", "30", "33"]))
    body = prefix + draw(st.text("0123456789", min_size=8, max_size=8))
    good = cuit_digit(body)
    return body + str(draw(st.sampled_from([d for d in range(10) if d != good])))


@st.composite
def _bad_cuits(draw: Any) -> Any:
    digits = draw(_bad_check_digit_cuits())
    return draw(
        st.sampled_from(
            [
                digits,
                int(digits),
                digits[:10],
                digits + "0",
                digits[:10] + "A",
                "A" + digits[1:],
                f"{digits[:2]}-{digits[2:10]}-{digits[10]}",
                f" {digits}",
                "",
            ]
        )
    )


# --- mutations ------------------------------------------------------------------------------

Mutator = Callable[[Any, Any, "Hostile"], Mutation | None]


def _holds(path: Path, value: Any) -> Callable[[Any], bool]:
    return lambda final: is_same(get(final, path), value)


def _fields(env: Any, *, present: bool | None = None) -> list[tuple[Path, Spec]]:
    out = []
    for path, block in blocks(env):
        holder = get(env, path)
        for name, spec in FIELDS[block].items():
            here = name in holder
            if present is None or here == present:
                out.append(((*path, name), spec))
    return out


def _show(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def m_delete_required(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    fields = [(p, s) for p, s in _fields(env, present=True) if s.required]
    if not fields:
        return None
    path, _ = draw(st.sampled_from(fields))
    delete(env, path)

    def witness(final: Any) -> bool:
        parent = get(final, path[:-1])
        return isinstance(parent, dict) and path[-1] not in parent

    return Mutation(
        "delete_required",
        f"delete {_show(path)}",
        "breaks",
        witness,
        touches_ref=path[-1] == "external_reference",
    )


def m_bad_value(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    fields = [(p, s) for p, s in _fields(env) if s.kind != "free"]
    present = [(p, s) for p, s in fields if get(env, p) is not MISSING]
    # Mostly fields that are there; sometimes a bad value for an absent optional field.
    pool = present if present and draw(st.integers(0, 4)) else fields
    if not pool:
        return None
    path, spec = draw(st.sampled_from(pool))
    value = draw(bad_value(spec, env, path))
    put(env, path, value)
    return Mutation(
        f"bad_{spec.kind}",
        f"{_show(path)} = {_short(value)}",
        "breaks",
        _holds(path, value),
        touches_ref=path[-1] == "external_reference",
    )


@st.composite
def misspelling(draw: Any, name: str) -> str:
    """`name` with one slip of the keyboard."""
    i = draw(st.integers(0, len(name) - 1))
    slips = [
        name[: i + 1] + name[i:],  # a letter twice
        name[:i] + name[i + 1 :],  # one left out
        name[:i] + name[i + 1 : i + 2] + name[i : i + 1] + name[i + 2 :],  # two swapped
        name + "s",
        name.replace("_", "-"),
        name + " ",
        name.capitalize(),
    ]
    slip: str = draw(st.sampled_from(slips))
    return slip


def unknown_key_effect(block: str, key: str, value: Any = None) -> tuple[Effect, str]:
    """What a key `block` does not know does to a valid envelope, and why."""
    if block == "top":
        return "breaks", "unknown at the top level"
    if key in CREDENTIALS:
        return "breaks", "a credential"
    hint = close_match(key, block)
    if hint is not None:
        return "breaks", f"misspells {hint!r}"
    if not plain_json(value):
        # Like fex and metadata, what is sent must be plain JSON (BUG-10).
        return "breaks", "passes through, but is not plain JSON"
    if nested_credentials(value, ()):
        return "breaks", "passes through, but holds a credential"
    return "keeps", "passes through"


def m_extra_field(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """A key the block does not know: refused at the top level, a credential or a near
    miss of a known field; anywhere else it passes through (listed as unchecked)."""
    found = blocks(env)
    if not found:
        return None
    path, block = draw(st.sampled_from(found))
    known = FIELDS[block]
    typos = ["razon_socail", "Total", "CUIT", "cuit_emisor", "__proto__", "constructor", "$where"]
    typos += ["0", "", " ", "detalle ", "external-reference", "numero_factura", "apiKey"]
    typos += ["client", "cantidadd", "incluir_lista_precios_venta", "comprobante_nro"]
    key = draw(
        st.one_of(
            st.sampled_from(typos),
            SAFE_TEXT.map(lambda t: "zz" + t[:20]),
            st.sampled_from(["zz😀", "zz\x00", "zz.dotted", "zz\u202e", 'zz"q"', "zz[0]"]),
            st.sampled_from(sorted(known)).flatmap(misspelling),
        )
    )
    if key in known:
        return None
    value = draw(st.one_of(PLAIN_VALUES, JSON_VALUES, deep_value()))
    holder = get(env, path)
    holder[key] = value
    effect, why = unknown_key_effect(block, key, value)

    def witness(final: Any) -> bool:
        here = get(final, path)
        if not (isinstance(here, dict) and key in here):
            return False
        return (
            block == "top"
            or close_match(key, block) is not None
            or key in CREDENTIALS
            or (not plain_json(here[key]))
        )

    return Mutation(
        "extra_field" if effect == "breaks" else "extra_field_passes",
        f"{_show((*path, key))} (unknown: {why}) = {_short(value)}",
        effect,
        witness if effect == "breaks" else None,
    )


def m_credentials(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Credentials are refused in every API block, at any depth, and at the top level."""
    name = draw(st.sampled_from(CREDENTIALS))
    secret = "sk_" + draw(st.text("0123456789abcdef", min_size=16, max_size=40))
    places = [p for p, _ in blocks(env)]
    where = draw(
        st.one_of(
            st.sampled_from([("invoice",), ("invoice",), ("invoice", "cliente"), ()]),
            st.sampled_from(places or [()]),
        )
    )
    holder = get(env, where)
    if not isinstance(holder, dict):
        return None
    holder[name] = secret
    h.secrets.append(secret)

    def witness(final: Any) -> bool:
        here = get(final, where)
        return isinstance(here, dict) and name in here

    return Mutation("credentials", f"{_show((*where, name))} = <secret>", "breaks", witness)


def m_too_many(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    limits = [("detalle", MAX_ITEMS), ("tributos", 7), ("comprobantes_asociados", MAX_ASSOCIATED)]
    name, limit = draw(st.sampled_from(limits))
    path = ("invoice", "comprobante", name)
    items = get(env, path)
    template = items[0] if isinstance(items, list) and items else {"tipo": 7}
    n = draw(st.sampled_from([limit + 1, limit + 2, 500]))
    value = [clone(template) for _ in range(n)]
    if not put(env, path, value):
        return None

    def witness(final: Any) -> bool:
        here = get(final, path)
        return isinstance(here, list) and len(here) > limit

    return Mutation("too_many", f"{_show(path)} has {n} entries", "breaks", witness)


def m_date_rules(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    comp = ("invoice", "comprobante")
    fecha = strict_date(get(env, (*comp, "fecha")))
    rule = draw(st.sampled_from(["window", "vencimiento", "periodo", "periodo_one_end"]))
    if rule == "window":
        days = draw(st.sampled_from([-400, -31, -15, 15, 45, 3650]))
        value = fmt(TODAY + timedelta(days=days))
        if not put(env, (*comp, "fecha"), value):
            return None

        def window(final: Any) -> bool:
            got = strict_date(get(final, (*comp, "fecha")))
            return got is not None and abs((got - TODAY).days) > 12

        return Mutation("date_window", f"fecha {days:+d} days", "breaks", window)
    if rule == "vencimiento":
        if fecha is None:
            return None
        value = fmt(fecha - timedelta(days=draw(st.sampled_from([1, 2, 30]))))
        put(env, (*comp, "vencimiento"), value)

        def order(final: Any) -> bool:
            f = strict_date(get(final, (*comp, "fecha")))
            v = strict_date(get(final, (*comp, "vencimiento")))
            return f is not None and v is not None and v < f

        return Mutation("vencimiento_before_fecha", f"vencimiento {value}", "breaks", order)
    desde, hasta = (*comp, "periodo_facturado_desde"), (*comp, "periodo_facturado_hasta")
    if not isinstance(get(env, comp), dict):
        return None
    if rule == "periodo":
        put(env, desde, fmt(TODAY - timedelta(days=10)))
        put(env, hasta, fmt(TODAY - timedelta(days=20)))

        def reversed_period(final: Any) -> bool:
            d, e = strict_date(get(final, desde)), strict_date(get(final, hasta))
            return d is not None and e is not None and d > e

        return Mutation("periodo_reversed", "periodo desde > hasta", "breaks", reversed_period)
    end = draw(st.sampled_from([desde, hasta]))
    other = hasta if end == desde else desde
    put(env, end, fmt(TODAY - timedelta(days=10)))
    delete(env, other)

    def one_end(final: Any) -> bool:
        holder = get(final, comp)
        return (
            isinstance(holder, dict)
            and strict_date(holder.get(end[-1])) is not None
            and other[-1] not in holder
        )

    return Mutation("periodo_one_end", f"only {end[-1]}", "breaks", one_end)


def m_receiver_rules(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    cl = ("invoice", "cliente")
    comp = ("invoice", "comprobante")
    if not isinstance(get(env, cl), dict):
        return None
    rule = draw(st.sampled_from(["cuit_digit", "self", "dni_length", "letter", "email", "otra"]))
    tipo, nro = (*cl, "documento_tipo"), (*cl, "documento_nro")
    if rule == "cuit_digit":
        kind = draw(st.sampled_from(["CUIT", "CUIL"]))
        value = draw(_bad_check_digit_cuits())
        put(env, tipo, kind)
        put(env, nro, value)

        def bad_receiver(final: Any) -> bool:
            return get(final, tipo) in ("CUIT", "CUIL") and bad_check_digit(get(final, nro))

        return Mutation("receiver_check_digit", f"{kind} {value}", "breaks", bad_receiver)
    if rule == "self":
        cuit = get(env, ("cuit",))
        if not isinstance(cuit, str):
            return None
        put(env, tipo, "CUIT")
        put(env, nro, cuit)

        def is_self(final: Any) -> bool:
            return get(final, tipo) in ("CUIT", "CUIL") and get(final, nro) == get(final, ("cuit",))

        return Mutation("receiver_is_issuer", "receiver = issuer", "breaks", is_self)
    if rule == "dni_length":
        # A DNI has at most 11 digits (AFIP's DocNro); 21 or more are no document at all.
        value = draw(st.text("0123456789", min_size=MAX_DNI_DIGITS + 1, max_size=22))
        put(env, tipo, "DNI")
        put(env, nro, value)

        def dni(final: Any) -> bool:
            n = get(final, nro)
            return (
                get(final, tipo) == "DNI"
                and isinstance(n, str)
                and n.isascii()
                and n.isdigit()
                and len(n) > MAX_DNI_DIGITS
            )

        return Mutation("dni_length", f"DNI {value}", "breaks", dni)
    if rule == "letter":
        # README: A and M go to RI/monotributo only; B never to them (every A or B tipo).
        t = get(env, (*comp, "tipo"))
        letter = TIPOS[t].letter if isinstance(t, str) and t in TIPOS else ""
        if letter not in ("A", "B"):
            return None
        tipos = tuple(name for name, info in TIPOS.items() if info.letter == letter)
        forbidden = {"B": ("RI", "M"), "A": ("CF", "E", "CDEX", "IVNA")}[letter]
        value = draw(st.sampled_from(forbidden))
        field_name = draw(st.sampled_from(["condicion_iva", "condicion_iva_operacion"]))
        put(env, (*cl, field_name), value)

        def wrong_letter(final: Any) -> bool:
            return (
                get(final, (*comp, "tipo")) in tipos and get(final, (*cl, field_name)) in forbidden
            )

        return Mutation("letter_vs_iva", f"{t} to {field_name} {value}", "breaks", wrong_letter)
    if rule == "email":
        put(env, (*cl, "envia_por_mail"), "S")
        delete(env, (*cl, "email"))

        def no_email(final: Any) -> bool:
            holder = get(final, cl)
            return (
                isinstance(holder, dict)
                and holder.get("envia_por_mail") == "S"
                and "email" not in holder
            )

        return Mutation("mail_without_email", "envia_por_mail S, no email", "breaks", no_email)
    put(env, (*cl, "condicion_pago"), 214)
    delete(env, (*cl, "condicion_pago_otra"))

    def no_otra(final: Any) -> bool:
        holder = get(final, cl)
        return (
            isinstance(holder, dict)
            and is_same(holder.get("condicion_pago"), 214)
            and "condicion_pago_otra" not in holder
        )

    return Mutation("pago_otra_missing", "condicion_pago 214 without text", "breaks", no_otra)


def _holds_snapshot(path: Path, value: Any) -> Callable[[Any], bool]:
    """The very value a mutation put at `path`, with the contents it had then."""
    snapshot = json.dumps(value, sort_keys=True)

    def holds(final: Any) -> bool:
        here = get(final, path)
        return is_same(here, value) and json.dumps(here, sort_keys=True) == snapshot

    return holds


def _as_json_number(value: Decimal) -> float | int | None:
    """`value` as a JSON number that reads back as exactly `value`."""
    number: float | int = int(value) if value == value.to_integral_value() else float(value)
    return number if dec(number) == value else None


def _cf_threshold(draw: Any, env: Any, holder: dict[str, Any]) -> Mutation | None:
    """An anonymous consumidor final (OTRO 0) at or above the identification threshold:
    in pesos whatever the cotizacion says, or in a foreign currency at its cotizacion."""
    cliente = get(env, ("invoice", "cliente"))
    total = dec(holder.get("total"))
    if not isinstance(cliente, dict) or total is None or total <= 0:
        return None
    nro = draw(st.sampled_from(["0", "00", 0]))
    if draw(st.booleans()):
        if draw(st.booleans()):
            holder["moneda"] = "PES"
        else:
            holder.pop("moneda", None)
        holder["cotizacion"] = draw(st.sampled_from([0.001, 0.5, 1, 1415.5]))
        items = holder.get("detalle")
        product = get(items, (0, "producto"))
        price = dec(product.get("precio_unitario_sin_iva")) if isinstance(product, dict) else None
        if isinstance(items, list) and price is not None and price > 0:
            items[0]["cantidad"] = int(CF_THRESHOLD / price) + 1
        totals = model_totals(holder)
        reached = [t for t in totals or [] if t >= CF_THRESHOLD]
        number = _as_json_number(draw(st.sampled_from(reached))) if reached else None
        if number is None:  # (the total does not add up then: refused all the same)
            number = int(CF_THRESHOLD)
        holder["total"] = number
        desc = f"anonymous CF, {number} pesos at cotizacion {holder['cotizacion']}"
    else:
        rate = (CF_THRESHOLD / total).quantize(Decimal("0.001"), rounding=ROUND_CEILING)
        cotizacion = _as_json_number(rate + draw(st.sampled_from([0, 0, 1])))
        if cotizacion is None or cotizacion > 1e9:
            return None
        holder["moneda"] = draw(st.sampled_from([m for m in MONEDAS if m != "PES"]))
        holder["cotizacion"] = cotizacion
        desc = f"anonymous CF, {total} {holder['moneda']} at cotizacion {cotizacion}"
    cliente.update(documento_tipo="OTRO", documento_nro=nro)
    return Mutation("cf_threshold", desc, "breaks", cf_refused)


def _add_up(comp: dict[str, Any]) -> None:
    """Make the total the first reading's (so that only the rule under test refuses)."""
    totals = model_totals(comp)
    number = _as_json_number(totals[0]) if totals else None
    if number is not None and number > 0:
        comp["total"] = number


def _export_rules(draw: Any, holder: dict[str, Any]) -> Mutation | None:
    """Type E: bonificacion and impuestos_internos must be 0, tributos empty."""
    if holder.get("tipo") not in E_TIPOS:
        return None
    comp = ("invoice", "comprobante")
    what = draw(st.sampled_from(["bonificacion", "impuestos_internos", "tributos"]))
    if what == "tributos":
        holder["tributos"] = [
            {"tipo": 7, "regimen": 4, "base_imponible": 100, "alicuota": 3, "total": 3}
        ]
        _add_up(holder)

        def taxed(final: Any) -> bool:
            here = get(final, (*comp, "tributos"))
            return get(final, (*comp, "tipo")) in E_TIPOS and isinstance(here, list) and bool(here)

        return Mutation("export_tributos", "type E with tributos", "breaks", taxed)
    value = draw(st.sampled_from([0.01, 1, 150.5, 1000]))
    holder[what] = value
    _add_up(holder)

    def not_zero(final: Any) -> bool:
        here = get(final, (*comp, what))
        return get(final, (*comp, "tipo")) in E_TIPOS and is_number(here) and here != 0

    return Mutation(f"export_{what}", f"type E with {what} {value}", "breaks", not_zero)


def _fce_rules(draw: Any, holder: dict[str, Any]) -> Mutation | None:
    """An FCE note without the dato 22 (anulación) valued "S" or "N"."""
    comp = ("invoice", "comprobante")
    if holder.get("tipo") not in FCE_NOTES:
        holder["tipo"] = draw(st.sampled_from(FCE_NOTES))
    tipo = holder["tipo"]
    regimen = "Factura de Crédito Electrónica MiPyMEs (FCE)"
    how = draw(st.sampled_from(["absent", "null", "no_datos", "other_ids", "bad_valor"]))
    if how == "absent":
        holder.pop("rg_especiales", None)

        def absent(final: Any) -> bool:
            here = get(final, comp)
            return (
                isinstance(here, dict)
                and here.get("tipo") in FCE_NOTES
                and ("rg_especiales" not in here)
            )

        return Mutation("fce_without_rg", f"{tipo} without rg_especiales", "breaks", absent)
    value: Any = None
    if how == "no_datos":
        value = draw(st.sampled_from([{"regimen": regimen}, {"regimen": regimen, "datos": []}]))
    elif how == "other_ids":
        value = {"regimen": regimen, "datos": [{"id": 23, "valor": "X"}, {"id": 27, "valor": "S"}]}
    elif how == "bad_valor":
        valor = draw(st.sampled_from(["", "SI", "s", "n", "X", "NO", "Sí", "NN", "S/N"]))
        value = {"regimen": regimen, "datos": [{"id": FCE_ANULACION, "valor": valor}]}
    holder["rg_especiales"] = value
    holds = _holds_snapshot((*comp, "rg_especiales"), value)

    def no_anulacion(final: Any) -> bool:
        return get(final, (*comp, "tipo")) in FCE_NOTES and holds(final)

    return Mutation(
        "fce_anulacion", f"{tipo}, rg_especiales {_short(value)}", "breaks", no_anulacion
    )


def _regimen_rules(draw: Any, holder: dict[str, Any]) -> Mutation | None:
    """A tributo whose regimen is not in its tipo's table."""
    tipo = draw(st.sampled_from(sorted(TRIBUTO_REGIMENES)))
    others = sorted({r for t, rs in TRIBUTO_REGIMENES.items() if t != tipo for r in rs})
    regimen = draw(st.sampled_from(others))
    tributos = holder.get("tributos")
    if not (isinstance(tributos, list) and tributos and isinstance(tributos[0], dict)):
        tributos = holder["tributos"] = [{"base_imponible": 100, "alicuota": 3, "total": 3}]
    i = draw(st.integers(0, len(tributos) - 1))
    if not isinstance(tributos[i], dict):
        return None
    tributos[i].update(tipo=tipo, regimen=regimen)
    path = ("invoice", "comprobante", "tributos", i)

    def mismatch(final: Any) -> bool:
        return is_same(get(final, (*path, "tipo")), tipo) and is_same(
            get(final, (*path, "regimen")), regimen
        )

    return Mutation("tributo_regimen", f"tributo tipo {tipo} regimen {regimen}", "breaks", mismatch)


def m_document_rules(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Rules of some documents: type E (export), FCE notes, tributos."""
    holder = get(env, ("invoice", "comprobante"))
    if not isinstance(holder, dict):
        return None
    rule: Callable[[Any, dict[str, Any]], Mutation | None] = draw(
        st.sampled_from([_export_rules, _fce_rules, _regimen_rules])
    )
    return rule(draw, holder)


def _broken_total(draw: Any, env: Any, holder: dict[str, Any]) -> Mutation | None:
    """A total the arithmetic does not reach: off by more than a cent, with the
    bonificacion left out, or with it taken off a subtotal neither reading names. (Not an
    AFIP document, or another reading's total: that keeps.)"""
    total = holder.get("total")
    if not is_number(total):
        return None
    how = draw(st.sampled_from(["delta", "delta", "ignored", "wrong_rate"]))
    rates = subtotal_rates(holder)
    letter = letter_of(holder)
    if how != "delta" and rates is not None and letter not in ("", "E"):
        if how == "ignored":  # the discount is there, the total does not show it
            holder["bonificacion"] = draw(st.sampled_from([1, 10.5, 150, 1000.25]))
            desc = f"bonificacion {holder['bonificacion']}, total {total} without it"
        else:
            wrong = [r for r in rates if r not in (rates[0], Decimal(21))]
            if not wrong:
                return None
            trial = dict(holder)
            if not dec(trial.get("bonificacion", 0)):
                trial["bonificacion"] = draw(st.sampled_from([1, 10.5, 150, 1000.25]))
            value = total_with_discount_on(trial, wrong[0])
            if value is None or value <= 0 or (number := _as_json_number(value)) is None:
                return None
            if any(abs(value - t) <= TOLERANCE for t in model_totals(trial) or []):
                return None
            holder.update(trial, total=number)
            desc = f"bonificacion {trial['bonificacion']} off the {wrong[0]} % subtotal: {number}"
    else:
        delta = draw(st.sampled_from([0.05, 1, -1, 100, 1000.5, -0.05]))
        value = round(total + delta, 2)
        holder["total"] = value if value > 0 else round(total * 2, 2)
        desc = f"total {total} -> {holder['total']}"
    if letter == "" or (model_totals(holder) is not None and not total_refused(env)):
        # No total to meet (not an AFIP document), or the total of the other reading.
        return Mutation("unchecked_total", desc, "keeps" if cf_ok(env) else "unknown")
    return Mutation("broken_total", desc, "breaks", total_refused, alone=True)


def m_invoice_rules(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    comp = ("invoice", "comprobante")
    holder = get(env, comp)
    if not isinstance(holder, dict):
        return None
    rule = draw(
        st.sampled_from(["total", "total", "misma_moneda", "note", "assoc", "cf_threshold"])
    )
    if rule == "total":
        return _broken_total(draw, env, holder)
    if rule == "cf_threshold":
        return _cf_threshold(draw, env, holder)
    if rule == "misma_moneda":
        holder["moneda"] = "PES"
        holder["datos_informativos"] = {"paga_misma_moneda": "S"}

        def misma(final: Any) -> bool:
            return (
                get(final, (*comp, "moneda")) == "PES"
                and get(final, (*comp, "datos_informativos", "paga_misma_moneda")) == "S"
            )

        return Mutation("pes_misma_moneda", "PES with paga_misma_moneda S", "breaks", misma)
    tipo = holder.get("tipo")
    if rule == "note":
        notes = ("NOTA DE CREDITO", "NOTA DE DEBITO")
        if not isinstance(tipo, str) or tipo[-1:] not in "ABC" or not tipo[-1:]:
            return None
        new_tipo = f"{draw(st.sampled_from(notes))} {tipo[-1]}"
        holder["tipo"] = new_tipo
        holder.pop("comprobantes_asociados", None)
        holder.pop("comprobantes_asociados_periodo", None)

        def orphan(final: Any) -> bool:
            here = get(final, comp)
            return (
                isinstance(here, dict)
                and here.get("tipo") == new_tipo
                and "comprobantes_asociados" not in here
                and "comprobantes_asociados_periodo" not in here
            )

        return Mutation(
            "note_without_invoices", f"{new_tipo} without its invoices", "breaks", orphan
        )
    # A factura carrying associated invoices, or an associated invoice of another issuer.
    assoc = holder.get("comprobantes_asociados")
    cuit = get(env, ("cuit",))
    if isinstance(assoc, list) and assoc and isinstance(assoc[0], dict) and isinstance(cuit, str):
        other = "20267565393" if cuit != "20267565393" else "20111111112"
        assoc[0]["cuit"] = other
        path = (*comp, "comprobantes_asociados", 0, "cuit")

        def foreign(final: Any) -> bool:
            return get(final, path) == other and get(final, ("cuit",)) not in (other, MISSING)

        return Mutation(
            "assoc_other_issuer", "associated invoice of another CUIT", "breaks", foreign
        )
    if isinstance(tipo, str) and tipo.startswith("FACTURA ") and tipo[-1:] in "ABC":
        value = [
            {
                "tipo_comprobante": tipo,
                "punto_venta": 1,
                "numero": 1,
                "comprobante_fecha": fmt(TODAY),
                "cuit": "20111111112",
            }
        ]
        holder["comprobantes_asociados"] = value

        def factura_with_assoc(final: Any) -> bool:
            here = get(final, comp)
            return (
                isinstance(here, dict)
                and isinstance(here.get("tipo"), str)
                and here["tipo"].startswith("FACTURA ")
                and here["tipo"][-1:] in "ABC"
                and "MiPyME" not in here["tipo"]
                and is_same(here.get("comprobantes_asociados"), value)
            )

        return Mutation(
            "factura_with_assoc",
            "factura with comprobantes_asociados",
            "breaks",
            factura_with_assoc,
        )
    return None


def m_non_object(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    value = draw(
        st.one_of(
            SCALARS,
            st.lists(SCALARS, max_size=3),
            st.just([clone(env)]),
            deep_value().filter(lambda v: isinstance(v, list)),
        )
    )
    h.value = value
    return Mutation(
        "non_object",
        f"top level {type(value).__name__}",
        "breaks",
        lambda final: not isinstance(final, dict),
        touches_ref=True,
    )


# Keeps: valid envelopes stay valid (composable, and safe on any example).

SAFE_DELETES: dict[str, tuple[str, ...]] = {
    "top": ("callback_url", "metadata"),
    # rg5329 "N", reclama_deuda "N" and condicion_pago 0 when absent.
    "cliente": ("nombre_fantasia", "codigo", "reclama_deuda", "rg5329", "condicion_pago"),
    "comprobante": (
        "numero",
        "idioma",
        "leyenda_gral",
        "comentario",
        "datos_informativos",
        "vencimiento",
    ),
    "item": ("afecta_stock", "leyenda"),
    "producto": ("codigo", "unidad_bulto", "unidad_medida", "rg5329", "lista_precios"),
    "tributo": ("descripcion",),
}
FREE_TEXT: dict[str, tuple[str, ...]] = {
    "cliente": ("razon_social", "domicilio", "nombre_fantasia", "codigo"),
    "comprobante": ("rubro", "rubro_grupo_contable", "leyenda_gral", "comentario"),
    "item": ("leyenda",),
    "producto": ("descripcion", "lista_precios", "codigo"),
}


def m_keep_delete_optional(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    options = [
        (*path, name)
        for path, block in blocks(env)
        for name in SAFE_DELETES.get(block, ())
        if name in get(env, path)
    ]
    if not options:
        return None
    path = draw(st.sampled_from(options))
    delete(env, path)
    return Mutation("keep_delete_optional", f"delete {_show(path)}", "keeps")


def m_keep_text(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    options = [
        ((*path, name), FIELDS[block][name])
        for path, block in blocks(env)
        for name in FREE_TEXT.get(block, ())
    ]
    if not options:
        return None
    path, spec = draw(st.sampled_from(options))
    assert spec.max_len is not None
    text = draw(SAFE_TEXT)
    if draw(st.integers(0, 3)) == 0 and text:  # exactly at the limit
        text = (text * (spec.max_len // len(text) + 1))[: spec.max_len]
    text = text[: spec.max_len]
    if len(text) < max(spec.min_len, 1):
        text = (text + "\x00\U0001f4a9ñ!" + "x" * spec.min_len)[: max(spec.min_len, 4)]
    put(env, path, text)
    return Mutation("keep_text", f"{_show(path)} = {_short(text)}", "keeps")


def m_keep_metadata(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    if not isinstance(env, dict):
        return None
    value = draw(
        st.dictionaries(
            SAFE_TEXT,
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False, allow_infinity=False),
                SAFE_TEXT,
                st.lists(st.integers(), max_size=3),
            ),
            max_size=8,
        )
    )
    env["metadata"] = value
    return Mutation("keep_metadata", f"metadata = {_short(value)}", "keeps")


def m_keep_callback(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    if not isinstance(env, dict):
        return None
    value = draw(
        st.sampled_from(
            [
                "",
                "https://shop.example/hooks/x?a=1&b=%20",
                # Public: the client refuses internal callbacks (tests/test_durability.py).
                "http://8.8.8.8:8080/cb",
                "https://xn--ol-yja.example/ñ",
            ]
        )
    )
    env["callback_url"] = value
    return Mutation("keep_callback", f"callback_url = {value!r}", "keeps")


def m_keep_ref(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    path = ("invoice", "comprobante", "external_reference")
    if get(env, path) is MISSING:
        return None
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    value = draw(st.text(alphabet, min_size=1, max_size=12))
    value = value * draw(st.sampled_from([1, 1, 15]))
    put(env, path, value[:200])
    return Mutation("keep_ref", f"external_reference = {_short(value[:200])}", "keeps")


def _no_internos(comp: dict[str, Any]) -> bool:
    """impuestos_internos adds nothing to the total now (absent, null, 0 or blank)."""
    value = comp.get("impuestos_internos")
    return value is None or is_same(value, 0) or (isinstance(value, str) and not value.strip())


def m_keep_documented(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Values the docs allow that older rules refused, and blanks that mean absent."""
    comp, cl = ("invoice", "comprobante"), ("invoice", "cliente")
    holder, cliente = get(env, comp), get(env, cl)
    products = [p for p, block in blocks(env) if block == "producto"]
    options = []
    if isinstance(holder, dict):
        options += ["idioma", "numero", "blank"]
        if _no_internos(holder):
            options += ["internos_blank", "internos_zero"]
        if holder.get("tipo") in FCE_NOTES:
            options.append("anulacion")
    if isinstance(cliente, dict):
        options.append("condicion_pago")
        if cliente.get("documento_tipo") == "DNI":
            options.append("dni")
    if products:
        options += ["codigo_int", "lista_null", "producto_blank"]
    if not options:
        return None
    what = draw(st.sampled_from(options))
    blank = draw(st.sampled_from(["", " ", "   "]))
    path: Path
    value: Any
    if what == "idioma":  # 1 Español, 2 Inglés, as text as often as not
        path, value = (*comp, "idioma"), draw(st.sampled_from(["1", "2"]))
    elif what == "numero":  # the number the job must be issued as
        path, value = (*comp, "numero"), draw(st.integers(0, 99999999))
    elif what == "blank":
        names = ["impuestos_internos_base", "impuestos_internos_alicuota", "exentos", "abono_hasta"]
        path, value = (*comp, draw(st.sampled_from(names))), blank
    elif what == "internos_blank":
        path, value = (*comp, "impuestos_internos"), blank
    elif what == "internos_zero":
        path, value = (*comp, "impuestos_internos"), draw(st.sampled_from([0, 0.0]))
    elif what == "anulacion":
        datos = get(env, (*comp, "rg_especiales", "datos"))
        ids = [
            i
            for i, d in enumerate(datos if isinstance(datos, list) else [])
            if isinstance(d, dict) and is_same(d.get("id"), FCE_ANULACION)
        ]
        if not ids:
            return None
        path = (*comp, "rg_especiales", "datos", ids[0], "valor")
        value = draw(st.sampled_from(["S", "N"]))
    elif what == "condicion_pago":  # 0: none; 201 to 217 (214 "Otra" with its text)
        value = draw(st.sampled_from([0, *CONDICIONES_PAGO]))
        if value == CONDICION_PAGO_OTRA:
            cliente["condicion_pago_otra"] = "Cheque a 30 días"
        path = (*cl, "condicion_pago")
    elif what == "dni":  # up to 11 digits
        digits = draw(st.text("0123456789", min_size=1, max_size=MAX_DNI_DIGITS))
        path, value = (*cl, "documento_nro"), digits
    elif what == "codigo_int":  # an integer code is sent as text
        value = draw(st.integers(-(10**48), 10**49))
        path = (*draw(st.sampled_from(products)), "codigo")
    elif what == "lista_null":
        path, value = (*draw(st.sampled_from(products)), "lista_precios"), None
    else:
        path, value = (*draw(st.sampled_from(products)), "impuestos_internos_alicuota"), blank
    put(env, path, value)
    return Mutation("keep_documented", f"{_show(path)} = {_short(value)}", "keeps")


def m_keep_unknown_field(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """A field tfq does not know, in an API block: it passes through (listed as unchecked)."""
    found = [(p, b) for p, b in blocks(env) if b != "top"]
    if not found:
        return None
    path, block = draw(st.sampled_from(found))
    names = ["incluir_lista_precios_venta", "external_id", "x-trace", "zz.odd", "", 'a "b"']
    key = draw(st.one_of(st.sampled_from(names), SAFE_TEXT.map(lambda t: "x_" + t[:20])))
    if key in FIELDS[block] or unknown_key_effect(block, key)[0] != "keeps":
        return None
    value = draw(PLAIN_VALUES)
    get(env, path)[key] = value
    return Mutation(
        "keep_unknown_field", f"{_show((*path, key))} (passes) = {_short(value)}", "keeps"
    )


def _fits_threshold(env: Any, comp: dict[str, Any]) -> bool:
    """cf_ok for `env` with its comprobante replaced by `comp`."""
    invoice = get(env, ("invoice",))
    return isinstance(invoice, dict) and cf_ok({**env, "invoice": {**invoice, "comprobante": comp}})


def m_keep_currency(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Any moneda of the table; PES with any cotizacion (pesos are pesos); no moneda: PES;
    no cotizacion: 1. paga_misma_moneda "S" goes with foreign currency only."""
    holder = get(env, ("invoice", "comprobante"))
    if not isinstance(holder, dict):
        return None
    what = draw(st.sampled_from(["pes", "foreign", "no_moneda", "no_cotizacion"]))
    trial = dict(holder)
    if what == "pes":
        trial["moneda"] = "PES"
        cotizacion = draw(
            st.one_of(
                st.sampled_from([1, 0.001, 0.5, 2, 1.001, 1415.5, 1_000_000_000]),
                st.decimals(Decimal("0.001"), 10**9, places=3).map(_as_json_number),
            )
        )
        if cotizacion is None:
            return None
        trial["cotizacion"] = cotizacion
    elif what == "foreign":
        trial["moneda"] = draw(st.sampled_from([m for m in MONEDAS if m != "PES"]))
        if draw(st.booleans()):
            trial["cotizacion"] = draw(st.sampled_from([1, 0.75, 1415.5, 1.234]))
    else:
        trial.pop("moneda" if what == "no_moneda" else "cotizacion", None)
    if not _fits_threshold(env, trial):
        return None
    holder.clear()
    holder.update(trial)
    informativos = holder.get("datos_informativos")
    pesos = holder.get("moneda", "PES") == "PES"
    if pesos and isinstance(informativos, dict) and informativos.get("paga_misma_moneda") == "S":
        informativos["paga_misma_moneda"] = "N"
    desc = (
        f"moneda {holder.get('moneda', '(none)')}, cotizacion {holder.get('cotizacion', '(none)')}"
    )
    return Mutation("keep_currency", desc, "keeps")


BONIFICACIONES = st.one_of(
    st.sampled_from([Decimal(0), Decimal("0.01"), Decimal(1), Decimal(1500)]),
    st.decimals(0, 5000, places=2),
)


def m_keep_amounts(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """A bonificacion (off the first item's rate or the 21 % subtotal: either reading),
    impuestos_internos, the items in another order, an item at another VAT rate, and the
    total that adds up (or a cent off it). Type E keeps both amounts at 0."""
    holder = get(env, ("invoice", "comprobante"))
    if not isinstance(holder, dict) or "pagos" in holder or model_totals(holder) is None:
        return None
    items = holder["detalle"]
    order = list(range(len(items)))
    how = draw(st.sampled_from(["same", "reverse", "rotate", "shuffle"]))
    if how == "reverse":
        order.reverse()
    elif how == "rotate":
        k = draw(st.integers(0, len(order) - 1))
        order = order[k:] + order[:k]
    elif how == "shuffle" and len(order) <= 8:
        order = draw(st.permutations(order))
    trial = dict(holder)
    trial["detalle"] = [items[i] for i in order]
    if draw(st.booleans()):  # another VAT rate for one item: other subtotals, in other orders
        j = draw(st.integers(0, len(order) - 1))
        trial["detalle"][j] = clone(trial["detalle"][j])
        trial["detalle"][j]["producto"]["alicuota"] = draw(st.sampled_from(ALICUOTA_VALUES))
    if letter_of(holder) != "E":
        amounts = {"bonificacion": draw(BONIFICACIONES)}
        if draw(st.booleans()):
            amounts["impuestos_internos"] = draw(st.decimals(0, 1000, places=2))
        for name, amount in amounts.items():
            trial[name] = _as_json_number(amount)
            if trial[name] is None:
                return None
    totals = model_totals(trial)
    if totals is None:
        return None
    reading = draw(st.integers(0, len(totals) - 1))
    total = totals[reading] + draw(st.sampled_from([Decimal(0), Decimal(0), TOLERANCE, -TOLERANCE]))
    number = _as_json_number(total)
    if number is None or not 0 < total <= MAX_AMOUNT:
        return None
    trial["total"] = number
    if not _fits_threshold(env, trial):
        return None
    holder.clear()
    holder.update(trial)
    which = "21 %" if reading else "first rate"
    desc = f"detalle {how}, bonificacion {trial.get('bonificacion')} ({which}), total {number}"
    return Mutation("keep_amounts", desc, "keeps")


def m_keep_tipo(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """FACTURA A/B as LIQUIDACIONES A/B; or a document AFIP does not issue (no total to
    meet), when the invoice names no other invoice and carries no fex."""
    holder = get(env, ("invoice", "comprobante"))
    if not isinstance(holder, dict):
        return None
    tipo = holder.get("tipo")
    options = [LIQUIDACIONES[tipo]] if isinstance(tipo, str) and tipo in LIQUIDACIONES else []
    plain = ("comprobantes_asociados", "comprobantes_asociados_periodo", "fex")
    if all(holder.get(name) is None for name in plain):
        options += NON_AFIP_TIPOS
    if not options:
        return None
    trial = dict(holder)
    trial["tipo"] = draw(st.sampled_from(options))
    if trial["tipo"] in NON_AFIP_TIPOS and "pagos" not in trial and draw(st.booleans()):
        trial["total"] = _as_json_number(draw(st.decimals(Decimal("0.01"), 10**6, places=2)))
    if trial.get("total") is None or not _fits_threshold(env, trial):
        return None
    holder.update(trial)
    return Mutation("keep_tipo", f"{trial['tipo']}, total {trial['total']}", "keeps")


def m_keep_tributo(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """A tributo of another tipo, with a regimen of that tipo's table."""
    tributos = get(env, ("invoice", "comprobante", "tributos"))
    if not isinstance(tributos, list) or not tributos:
        return None
    i = draw(st.integers(0, len(tributos) - 1))
    if not isinstance(tributos[i], dict):
        return None
    tipo = draw(st.sampled_from(sorted(TRIBUTO_REGIMENES)))
    regimen = draw(st.sampled_from(TRIBUTO_REGIMENES[tipo]))
    tributos[i].update(tipo=tipo, regimen=regimen)
    return Mutation("keep_tributo", f"tributos[{i}] tipo {tipo} regimen {regimen}", "keeps")


def m_keep_assoc(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """A note may name up to 10 invoices."""
    holder = get(env, ("invoice", "comprobante"))
    tipo = holder.get("tipo") if isinstance(holder, dict) else None
    listed = holder.get("comprobantes_asociados") if isinstance(holder, dict) else None
    if not (isinstance(tipo, str) and tipo in TIPOS and TIPOS[tipo].is_note):
        return None
    if not (isinstance(listed, list) and listed and len(listed) < MAX_ASSOCIATED):
        return None
    n = draw(st.integers(1, MAX_ASSOCIATED - len(listed)))
    listed.extend(clone(listed[0]) for _ in range(n))
    return Mutation("keep_assoc", f"comprobantes_asociados: {len(listed)}", "keeps")


# Unknown: the outcome depends on details the README leaves open, or on luck.


def m_random_leaf(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    fields = _fields(env)
    if not fields:
        return None
    path, _ = draw(st.sampled_from(fields))
    value = draw(JSON_VALUES)
    put(env, path, value)
    return Mutation(
        "random_value",
        f"{_show(path)} = {_short(value)}",
        "unknown",
        touches_ref=path[-1] == "external_reference",
    )


def m_delete_any(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    fields = _fields(env, present=True)
    if not fields:
        return None
    path, _ = draw(st.sampled_from(fields))
    delete(env, path)
    return Mutation(
        "delete_any",
        f"delete {_show(path)}",
        "unknown",
        touches_ref=path[-1] == "external_reference",
    )


def m_lax(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Values a lenient parser may coerce: numeric strings, bools, 1.0, padded dates, ints."""
    fields = [
        (p, s)
        for p, s in _fields(env, present=True)
        if s.kind in ("int", "dec", "alicuota", "date", "cuit", "digits", "intenum", "regimen")
    ]
    if not fields:
        return None
    path, _ = draw(st.sampled_from(fields))
    current = get(env, path)
    options: list[Any] = [True, False]
    if is_number(current):
        options += [str(current), float(current), f" {current} ", f"{current}e0", f"+{current}"]
    if isinstance(current, str):
        options += [f" {current} ", f"{current}\n", current.strip()]
        if current.isascii() and current.isdigit():
            options += [int(current)]
    value = draw(st.sampled_from(options))
    put(env, path, value)
    return Mutation("lax_value", f"{_show(path)} = {_short(value)}", "unknown")


def m_other_enum(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    fields = [(p, s) for p, s in _fields(env) if s.kind in ("enum", "alicuota", "intenum")]
    if not fields:
        return None
    path, spec = draw(st.sampled_from(fields))
    values = ALICUOTA_VALUES if spec.kind == "alicuota" else spec.values
    value = draw(st.sampled_from(values))
    put(env, path, value)
    return Mutation("other_enum", f"{_show(path)} = {value!r}", "unknown")


def m_shift_date(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    fields = [(p, s) for p, s in _fields(env, present=True) if s.kind == "date"]
    if not fields:
        return None
    path, _ = draw(st.sampled_from(fields))
    current = strict_date(get(env, path)) or TODAY
    days = draw(st.integers(-12, 12))
    put(env, path, fmt(current + timedelta(days=days)))
    return Mutation("shift_date", f"{_show(path)} {days:+d} days", "unknown")


def m_amount(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    fields = [(p, s) for p, s in _fields(env, present=True) if s.kind == "dec"]
    if not fields:
        return None
    path, _ = draw(st.sampled_from(fields))
    value = draw(
        st.one_of(
            st.decimals(0, 10**6, places=2).map(float),
            st.integers(0, 10**9),
            st.sampled_from([10**15, 1e-7, 0.1 + 0.2, 9999999999999.99, 1e30]),
        )
    )
    put(env, path, value)
    return Mutation("random_amount", f"{_show(path)} = {_short(value)}", "unknown")


def m_swap_issuer(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    if not isinstance(env, dict):
        return None
    value = draw(st.sampled_from([*ALLOWED_CUITS, 20111111112, "30712293841"]))
    env["cuit"] = value
    return Mutation("swap_issuer", f"cuit = {value!r}", "unknown")


def m_dup_items(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    path = ("invoice", "comprobante", "detalle")
    items = get(env, path)
    if not isinstance(items, list) or not items:
        return None
    n = draw(st.integers(1, MAX_ITEMS - len(items))) if len(items) < MAX_ITEMS else 0
    items.extend(clone(items[0]) for _ in range(n))
    return Mutation("dup_items", f"detalle + {n} copies", "unknown")


def m_metadata_hostile(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Metadata is free-form: deep, big, with credential-looking keys. Unknown direction."""
    if not isinstance(env, dict):
        return None
    kind = draw(st.sampled_from(["deep", "many", "big", "credential", "random"]))
    if kind == "deep":
        value: Any = {"d": draw(deep_value())}
    elif kind == "many":
        value = {f"k{i}": i for i in range(draw(st.sampled_from([50, 51, 200])))}
    elif kind == "big":
        value = {"blob": draw(huge_string(draw(st.sampled_from([100, 8000, 20000]))))}
    elif kind == "credential":
        secret = "sk_meta_" + draw(st.text("0123456789abcdef", min_size=16, max_size=24))
        value = {draw(st.sampled_from(CREDENTIALS)): secret}
    else:
        value = draw(JSON_VALUES)
    env["metadata"] = value
    return Mutation("metadata_hostile", f"metadata {kind}", "unknown")


def m_fex_hostile(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """`fex` is free-form too: random JSON (NaN, lone surrogates...) or deep values."""
    comp = get(env, ("invoice", "comprobante"))
    if not isinstance(comp, dict):
        return None
    value = draw(st.one_of(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=4), deep_value()))
    comp["fex"] = value
    return Mutation("fex_hostile", f"fex = {_short(value)}", "unknown")


def m_metadata_nonjson(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Metadata holding NaN/±Infinity floats or lone surrogates (JSON can carry them)."""
    if not isinstance(env, dict):
        return None
    bad = draw(st.sampled_from([math.nan, math.inf, -math.inf, "a\ud800b", "\udfff"]))
    value = {"v": bad} if draw(st.booleans()) else {"\ud83d": 1}
    env["metadata"] = value
    return Mutation("metadata_nonjson", f"metadata = {_short(value)}", "unknown")


def m_unicode_digits(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    """Non-ASCII characters that str.isdigit() accepts, in CUIT / document number fields."""
    digit = draw(st.sampled_from(["２", "٣", "۴", "५", "²", "①", "𝟖", "０"]))
    target = draw(st.sampled_from(["cuit", "documento_nro", "assoc"]))
    if target == "cuit":
        path: Path = ("cuit",)
    elif target == "documento_nro":
        path = ("invoice", "cliente", "documento_nro")
    else:
        path = ("invoice", "comprobante", "comprobantes_asociados", 0, "cuit")
    current = get(env, path)
    if not isinstance(current, str) or not current:
        return None
    pos = draw(st.integers(0, len(current) - 1))
    value = current[:pos] + digit + current[pos + 1 :]
    put(env, path, value)
    # CUITs and document numbers are ASCII digits: AFIP takes nothing else.
    return Mutation("unicode_digits", f"{_show(path)} = {value!r}", "breaks", _holds(path, value))


BREAKING: list[Mutator] = [
    m_delete_required,
    m_bad_value,
    m_bad_value,
    m_bad_value,
    m_extra_field,
    m_credentials,
    m_too_many,
    m_date_rules,
    m_receiver_rules,
    m_invoice_rules,
    m_invoice_rules,
    m_document_rules,
    m_document_rules,
]
KEEPING: list[Mutator] = [
    m_keep_delete_optional,
    m_keep_text,
    m_keep_metadata,
    m_keep_callback,
    m_keep_ref,
    m_keep_documented,
    m_keep_documented,
    m_keep_unknown_field,
    m_keep_currency,
    m_keep_amounts,
    m_keep_amounts,
    m_keep_tipo,
    m_keep_tributo,
    m_keep_assoc,
]
UNKNOWN: list[Mutator] = [
    m_random_leaf,
    m_delete_any,
    m_lax,
    m_other_enum,
    m_shift_date,
    m_amount,
    m_swap_issuer,
    m_dup_items,
    m_metadata_hostile,
    m_fex_hostile,
]
OPTIONAL_FAMILIES: dict[str, Mutator] = {
    "metadata_nonjson": m_metadata_nonjson,
    "unicode_digits": m_unicode_digits,
}


@st.composite
def hostile_envelopes(
    draw: Any,
    *,
    extra: tuple[str, ...] = (),
    force: str | None = None,
    max_mutations: int = 4,
) -> Hostile:
    """One envelope from an example and 0..`max_mutations` mutations.

    `extra` adds optional mutation families (`OPTIONAL_FAMILIES`); `force` applies one
    such family to every envelope.
    """
    base = draw(st.sampled_from(BASE_NAMES))
    h = Hostile(clone(EXAMPLES[base]), base)
    mode = draw(st.sampled_from(["pristine", "keeps", "mixed", "mixed", "mixed", "breaks"]))
    if mode == "pristine":
        n, families = 0, []
    elif mode == "keeps":
        n, families = draw(st.integers(1, 3)), KEEPING
    elif mode == "breaks":
        n, families = 1, BREAKING
    else:
        n = draw(st.integers(1, max_mutations))
        families = BREAKING + KEEPING + UNKNOWN + [OPTIONAL_FAMILIES[e] for e in extra]
    plan: list[Mutator] = [draw(st.sampled_from(families)) for _ in range(n)]
    if force:
        plan.insert(draw(st.integers(0, len(plan))), OPTIONAL_FAMILIES[force])
    if n and draw(st.integers(0, 29)) == 0:
        plan.append(m_non_object)
    for mutate in plan:
        if not isinstance(h.value, dict):
            break
        m = mutate(draw, h.value, h)
        if m is None:
            continue
        if m.effect == "breaks" and m.witness is not None and not m.alone:
            assert m.witness(h.value), f"witness of a fresh mutation does not hold: {m.desc}"
        h.mutations.append(m)
    h.expect = h.judge()
    return h


# Arbitrary JSON as an envelope: sometimes with the envelope's own keys.
ENVELOPE_KEYS = ("cuit", "invoice", "callback_url", "metadata", "cliente", "comprobante")


@st.composite
def random_json_envelopes(draw: Any) -> Hostile:
    value = draw(
        st.one_of(
            JSON_VALUES,
            st.dictionaries(st.sampled_from(ENVELOPE_KEYS) | ANY_TEXT, JSON_VALUES, max_size=5),
        )
    )
    h = Hostile(value, "random-json")
    required_missing = not isinstance(value, dict) or not {"cuit", "invoice"} <= set(value)
    h.mutations.append(
        Mutation(
            "random_json",
            f"random {type(value).__name__}",
            "breaks" if required_missing else "unknown",
            (lambda final: True) if required_missing else None,
            touches_ref=True,
        )
    )
    h.expect = h.judge()
    return h


def envelopes(
    *, extra: tuple[str, ...] = (), force: str | None = None
) -> st.SearchStrategy[Hostile]:
    """Mutated examples, mostly; arbitrary JSON, sometimes."""
    mutated = hostile_envelopes(extra=extra, force=force)
    if force:
        return mutated
    return st.one_of(mutated, mutated, mutated, mutated, mutated, mutated, random_json_envelopes())
