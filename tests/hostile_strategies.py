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

Enumeration tables (`worker.tables`) are the API's own tables, used as data only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from hypothesis import strategies as st

from ops.examples import load_examples
from worker.models import argentina_today
from worker.tables import (
    CONDICIONES_IVA,
    CONDICIONES_PAGO,
    MONEDAS,
    PROVINCIAS,
    TIPOS,
    TRIBUTO_TIPOS,
)

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


EXAMPLES = _with_export_invoice(load_examples(TODAY))
BASE_NAMES = sorted(EXAMPLES)
ALLOWED_CUITS = ("20111111112", "20267565393")  # the demo client's CUITs
MAX_ITEMS = 130  # README: "<= 130 items"
CREDENTIALS = ("apikey", "apitoken", "usertoken")
VALID_TIPOS = frozenset(TIPOS)
DOCUMENTO_TIPOS = ("CUIT", "CUIL", "CDI", "DNI", "PASAPORTE", "OTRO")
ALICUOTA_VALUES = (27, 21, 10.5, 0, -1, -2)
ASCII_REF_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
STRICT_DATE_RE = re.compile(r"^([0-9]{2})/([0-9]{2})/([0-9]{4})$")

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


def _s(min_len: int = 0, max_len: int | None = 255, required: bool = False) -> Spec:
    return Spec("str", required, min_len=min_len, max_len=max_len)


def _enum(values: tuple[Any, ...], required: bool = False) -> Spec:
    return Spec("enum", required, values=values)


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
        "condicion_pago": Spec("int", True, values=tuple(sorted(CONDICIONES_PAGO))),
        "condicion_pago_otra": _s(0, 100),
        "condicion_iva": _enum(IVA, True),
        "condicion_iva_operacion": _enum(IVA),
        "codigo": _s(0, 50),
        "rg5329": _enum(YN, True),
        "reclama_deuda": _enum(YN),
        "reclama_deuda_dias": Spec("int", lo=0),
        "reclama_deuda_repite_dias": Spec("int", lo=0),
    },
    "comprobante": {
        "tipo": _enum(tuple(TIPOS), True),
        "operacion": _enum(("V",), True),
        "punto_venta": Spec("int", True, lo=1, hi=99998),
        "numero": Spec("numero"),
        "fecha": Spec("date", True),
        "vencimiento": Spec("date", True),
        "periodo_facturado_desde": Spec("date"),
        "periodo_facturado_hasta": Spec("date"),
        "moneda": _enum(tuple(MONEDAS), True),
        "cotizacion": Spec("dec", True, gt0=True, places=3),
        "idioma": Spec("intenum", values=(1, 2)),
        "rubro": _s(1, 255, True),
        "rubro_grupo_contable": _s(1, 255, True),
        "detalle": Spec("list", True, min_len=1, max_len=MAX_ITEMS),
        "total": Spec("dec", True, gt0=True, places=2, hi=9999999999999.99),
        "bonificacion": Spec("dec", lo=0, places=2, hi=9999999999999.99),
        "leyenda_gral": _s(0, 500),
        "comentario": _s(),
        "external_reference": Spec("ref", True),
        "tags": Spec("list", max_len=50),
        "tributos": Spec("list", max_len=7),
        "impuestos_internos": Spec("dec", lo=0, places=2),
        "impuestos_internos_base": Spec("dec", lo=0, places=2),
        "impuestos_internos_alicuota": Spec("dec", lo=0, hi=100),
        "exentos": Spec("dec", lo=0, places=2),
        "comprobantes_asociados": Spec("list"),
        "comprobantes_asociados_periodo": Spec("obj"),
        "rg_especiales": Spec("obj"),
        "pagos": Spec("obj"),
        "datos_informativos": Spec("obj"),
        "abono": _enum(YN),
        "abono_frecuencia": Spec("int"),
        "abono_hasta": Spec("str"),
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
        "descripcion": _s(4, 255, True),
        "unidad_bulto": Spec("int", lo=1),
        "lista_precios": _s(4, 255, True),
        "codigo": _s(0, 50),
        "precio_unitario_sin_iva": Spec("dec", True, lo=0, places=3, hi=9999999999999.99),
        "alicuota": Spec("alicuota", True),
        "unidad_medida": Spec("int", lo=0, hi=99),
        "impuestos_internos_alicuota": Spec("dec", lo=0, hi=100),
        "actualiza_precio": _enum(YN),
        "rg5329": _enum(YN),
    },
    "tributo": {
        "tipo": Spec("int", True, values=tuple(sorted(TRIBUTO_TIPOS))),
        "regimen": Spec("int", lo=1, hi=99),
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
    "datos_informativos": {"paga_misma_moneda": _enum(YN)},
}
KNOWN_FIELDS = frozenset(name for block in FIELDS.values() for name in block) | {
    "fecha_desde",
    "fecha_hasta",
    "regimen",
    "datos",
    "formas_pago",
}
# Fields whose value is free-form JSON: nothing under them is a "field".
FREE_FORM = ("metadata", "fex")


def block_of(path: Path) -> str | None:
    """Which block (model) the dict at `path` is validated as, or None when free-form."""
    shapes: dict[Path, str] = {
        (): "top",
        ("invoice",): "invoice",
        ("invoice", "cliente"): "cliente",
        ("invoice", "comprobante"): "comprobante",
        ("invoice", "comprobante", "datos_informativos"): "datos_informativos",
    }
    if path in shapes:
        return shapes[path]
    lists = {"detalle": "item", "tributos": "tributo", "comprobantes_asociados": "asociado"}
    if len(path) == 4 and path[:2] == ("invoice", "comprobante") and isinstance(path[3], int):
        return lists.get(str(path[2]))
    if len(path) == 5 and path[2] == "detalle" and path[4] == "producto":
        return "producto"
    return None


def blocks(env: Any) -> list[tuple[Path, str]]:
    """Every block of `env` that is a dict now, with its path."""
    found: list[tuple[Path, str]] = []
    if not isinstance(env, dict):
        return found
    found.append(((), "top"))
    for path in (("invoice",), ("invoice", "cliente"), ("invoice", "comprobante")):
        if isinstance(get(env, path), dict):
            found.append((path, block_of(path) or ""))
    comp = ("invoice", "comprobante")
    if isinstance(get(env, (*comp, "datos_informativos")), dict):
        found.append(((*comp, "datos_informativos"), "datos_informativos"))
    for name, block in (("detalle", "item"), ("tributos", "tributo")):
        items = get(env, (*comp, name))
        if isinstance(items, list):
            for i, item in enumerate(items[:MAX_ITEMS]):
                if isinstance(item, dict):
                    found.append(((*comp, name, i), block))
                    if block == "item" and isinstance(item.get("producto"), dict):
                        found.append(((*comp, name, i, "producto"), "producto"))
    assoc = get(env, (*comp, "comprobantes_asociados"))
    if isinstance(assoc, list):
        for i, item in enumerate(assoc):
            if isinstance(item, dict):
                found.append(((*comp, "comprobantes_asociados", i), "asociado"))
    return found


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


def wrong_types(spec: Spec) -> st.SearchStrategy[Any]:
    """Values of a JSON type this field never takes."""
    options: list[st.SearchStrategy[Any]] = [WRONG_CONTAINERS, deep_value()]
    if spec.kind in ("str", "enum", "ref", "url", "emails", "date"):
        options += [st.integers(), st.floats(), st.booleans()]
        if spec.kind == "url":
            options = [st.integers(), st.floats(), WRONG_CONTAINERS]
    elif spec.kind in ("int", "intenum", "numero"):
        options += [
            st.sampled_from(["abc", "", "uno", "1,5", "1.5", "NaN", "Infinity", "0x1F"]),
            st.floats(allow_nan=True).filter(lambda f: not f.is_integer()),
        ]
    elif spec.kind in ("dec", "alicuota"):
        options += [
            st.sampled_from(
                ["abc", "", "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1,5"]
            ),
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
    if kind == "str":
        if spec.min_len:
            choices.append(st.just(""))
        if spec.max_len:
            choices.append(huge_string(spec.max_len))
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
        choices.append(st.sampled_from([0, 3, -1, 10**20]))
    elif kind == "int":
        if spec.values:
            out = sorted({-1, 0, 10, 11, 12, 27, 100, 200, 216, 10**20} - set(spec.values))
            choices.append(st.sampled_from(out))
        bad_ints = []
        if spec.lo is not None:
            bad_ints += [int(spec.lo) - 1, int(spec.lo) - 10**6, -(10**30)]
        if spec.hi is not None:
            bad_ints += [int(spec.hi) + 1, 10**30]
        if bad_ints:
            choices.append(st.sampled_from(bad_ints))
    elif kind == "numero":
        choices.append(st.sampled_from([1, -1, 7, 99999999, 10**12]))
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


def m_extra_field(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    found = blocks(env)
    if not found:
        return None
    path, block = draw(st.sampled_from(found))
    known = FIELDS[block]
    typos = ["razon_socail", "Total", "CUIT", "cuit_emisor", "__proto__", "constructor", "$where"]
    typos += ["0", "", " ", "detalle ", "external-reference", "numero_factura", "apiKey"]
    key = draw(
        st.one_of(
            st.sampled_from(typos),
            SAFE_TEXT.map(lambda t: "zz" + t[:20]),
            st.sampled_from(["zz😀", "zz\x00", "zz.dotted", "zz\u202e"]),
        )
    )
    if key in known or (block == "invoice" and key in CREDENTIALS):
        return None
    value = draw(st.one_of(JSON_VALUES, deep_value()))
    holder = get(env, path)
    holder[key] = value

    def witness(final: Any) -> bool:
        here = get(final, path)
        return isinstance(here, dict) and key in here

    return Mutation(
        "extra_field", f"{_show((*path, key))} (unknown) = {_short(value)}", "breaks", witness
    )


def m_credentials(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    name = draw(st.sampled_from(CREDENTIALS))
    secret = "sk_" + draw(st.text("0123456789abcdef", min_size=16, max_size=40))
    where = draw(st.sampled_from([("invoice",), ("invoice",), ("invoice", "cliente"), ()]))
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
    name, limit = draw(st.sampled_from([("detalle", MAX_ITEMS), ("tributos", 7)]))
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
        value = draw(st.sampled_from(["123456", "123456789", "1", "12345678901"]))
        put(env, tipo, "DNI")
        put(env, nro, value)

        def dni(final: Any) -> bool:
            n = get(final, nro)
            return (
                get(final, tipo) == "DNI"
                and isinstance(n, str)
                and n.isascii()
                and n.isdigit()
                and len(n) not in (7, 8)
            )

        return Mutation("dni_length", f"DNI {value}", "breaks", dni)
    if rule == "letter":
        # README: A and M go to RI/monotributo only; B never to them.
        t = get(env, (*comp, "tipo"))
        letter = t[-1:] if isinstance(t, str) else ""
        tipos = tuple(f"{k} {letter}" for k in ("FACTURA", "NOTA DE DEBITO", "NOTA DE CREDITO"))
        if letter not in ("A", "B") or t not in tipos:
            return None
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


def m_invoice_rules(draw: Any, env: Any, h: Hostile) -> Mutation | None:
    comp = ("invoice", "comprobante")
    holder = get(env, comp)
    if not isinstance(holder, dict):
        return None
    rule = draw(st.sampled_from(["total", "cotizacion", "misma_moneda", "note", "assoc"]))
    if rule == "total":
        total = holder.get("total")
        if not is_number(total):
            return None
        delta = draw(st.sampled_from([0.05, 1, -1, 100, 1000.5, -0.05]))
        value = round(total + delta, 2)
        if value <= 0:
            value = round(total * 2, 2)
        holder["total"] = value
        return Mutation(
            "broken_total",
            f"total {total} -> {value}",
            "breaks",
            _holds((*comp, "total"), value),
            alone=True,
        )
    if rule == "cotizacion":
        holder["moneda"] = "PES"
        value = draw(st.sampled_from([2, 0.5, 1415.5, 1.001]))
        holder["cotizacion"] = value

        def pes(final: Any) -> bool:
            c = get(final, (*comp, "cotizacion"))
            return get(final, (*comp, "moneda")) == "PES" and is_number(c) and c != 1

        return Mutation("pes_cotizacion", f"PES with cotizacion {value}", "breaks", pes)
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
    "cliente": ("nombre_fantasia", "codigo", "reclama_deuda"),
    "comprobante": ("numero", "idioma", "leyenda_gral", "comentario", "datos_informativos"),
    "item": ("afecta_stock", "leyenda"),
    "producto": ("codigo", "unidad_bulto", "unidad_medida", "rg5329"),
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
                "http://127.0.0.1:8080/cb",
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
        if s.kind in ("int", "dec", "alicuota", "date", "cuit", "digits", "intenum", "numero")
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
]
KEEPING: list[Mutator] = [
    m_keep_delete_optional,
    m_keep_text,
    m_keep_metadata,
    m_keep_callback,
    m_keep_ref,
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
