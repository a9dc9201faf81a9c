"""The sandbox's dialects: the readings of the vendor's pages where they disagree.

tfq must be right under every reading, so the sandbox plays each one (`--dialect`):

- `numeracion`: "next" answers the next number to issue (older pages and the PHP SDK);
  "last" answers the last one issued, 0 when there is none (the newest page,
  `web-services-afip-api-arca/api-factura-electronica-afip-consultar-numeracion-de-comprobantes..md`).
- `not_found`: how `consulta` and `consulta_avanzada` say that nothing matches. The docs
  show no such reply for them. "empty": consulta_avanzada answers `total: 0` and no
  `comprobantes` (its documented shape), consulta an error "... no existe."; "0", "1",
  "2": both answer an error reply in that wording of `NOT_FOUND_WORDINGS`, the first
  being the sibling pages' ("No se han encontrado comprobantes.",
  `eliminar-comprobantes-encolados.md` and others).
- `lotes`: "flat" (`response: [item, ...]`, older pages and every error example) or
  "nested" (`response: [{error, errores, response: [item, ...]}]`, the newest page's
  success example).
- `texts`: "classic" (the sandbox's own wordings) or "catalogue" (the texts of
  `errores-comunes-de-arca-en-tusfacturasapp.md` and the endpoint pages: 10016 as "no se
  corresponde con el último a autorizar", data errors that name a JSON block, ...).

A dialect is named by a preset (`classic`, `newest`, `mixed`) and/or `key=value` pairs:
`--dialect newest`, `--dialect numeracion=last,lotes=nested`, `--dialect newest,not_found=2`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# Each wording a not-found reply may take; index 0 is the sibling pages' one.
NOT_FOUND_WORDINGS: tuple[str, ...] = (
    "No se han encontrado comprobantes.",
    "El comprobante solicitado no existe.",
    "No existen comprobantes con los datos enviados.",
)
NOT_FOUND_EMPTY = "empty"

_CHOICES: dict[str, tuple[str, ...]] = {
    "numeracion": ("next", "last"),
    "not_found": (NOT_FOUND_EMPTY, *(str(i) for i in range(len(NOT_FOUND_WORDINGS)))),
    "lotes": ("flat", "nested"),
    "texts": ("classic", "catalogue"),
}


@dataclass(frozen=True)
class Dialect:
    numeracion: str = "next"
    not_found: str = NOT_FOUND_EMPTY
    lotes: str = "flat"
    texts: str = "classic"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in _CHOICES[f.name]:
                raise ValueError(
                    f"dialect {f.name}={value!r}: expected one of {', '.join(_CHOICES[f.name])}"
                )

    @property
    def not_found_text(self) -> str | None:
        """The wording of a not-found error reply; None: answer an empty list instead."""
        return (
            None if self.not_found == NOT_FOUND_EMPTY else NOT_FOUND_WORDINGS[int(self.not_found)]
        )

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def spec(self) -> str:
        """The `--dialect` text that gives this dialect back."""
        return ",".join(f"{k}={v}" for k, v in asdict(self).items())


PRESETS: dict[str, Dialect] = {
    "classic": Dialect(),
    # What the newest pages say, each where they say it.
    "newest": Dialect(numeracion="last", not_found="0", lotes="nested", texts="catalogue"),
    # The other combinations, so no axis is only ever tested beside one value of another.
    "mixed": Dialect(numeracion="last", not_found="1", lotes="flat", texts="classic"),
    "mixed2": Dialect(numeracion="next", not_found="2", lotes="nested", texts="catalogue"),
}


def parse_dialect(text: str) -> Dialect:
    """`newest`, `numeracion=last,lotes=nested`, `newest,not_found=2`: a Dialect, or
    ValueError naming what is wrong."""
    dialect = Dialect()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            if key not in PRESETS:
                raise ValueError(f"unknown dialect {key!r}: presets are {', '.join(PRESETS)}")
            dialect = PRESETS[key]
            continue
        if key not in _CHOICES:
            raise ValueError(f"unknown dialect axis {key!r}: axes are {', '.join(_CHOICES)}")
        dialect = replace(dialect, **{key: value})
    return dialect


def dialect_from_json(data: Any) -> Dialect:
    if isinstance(data, str):
        return parse_dialect(data)
    if not isinstance(data, dict):
        raise ValueError("a dialect is a preset name or an object of axes")
    return replace(Dialect(), **{str(k): str(v) for k, v in data.items() if k in _CHOICES})
