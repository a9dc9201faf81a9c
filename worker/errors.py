"""Refusals of bad input: every one names the field path and the reason, never the value.

Pydantic's own `str(ValidationError)` prints the offending input, which may be a secret;
everything user-facing goes through `field_errors` instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError


class TfqError(Exception):
    """The root of every error tfq raises on purpose: `except TfqError` catches tfq's
    refusals and failures, and nothing else."""


class ConfigError(TfqError):
    """tfq is set up wrong (a setting, a file, a service it needs): the message says what
    to fix. The command line prints it and exits 2, without a traceback."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One refusal; `path` is dotted with indexes: `invoice.comprobante.detalle[0].cantidad`."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def _plain_key(part: str) -> bool:
    return bool(part) and part.isprintable() and not any(ch in part for ch in '.[]"')


def format_loc(loc: tuple[int | str, ...]) -> str:
    """`invoice.comprobante.detalle[0].cantidad`; odd keys quoted: `metadata["a.b"]`, `[""]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _plain_key(part):
            path = f"{path}.{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _real_loc(loc: tuple[int | str, ...], data: object) -> tuple[int | str, ...]:
    """The parts of `loc` that name keys and indexes of `data`.

    Pydantic inserts tags of union members and validators into `loc`; they come after a
    leaf of the input, where no key can be. (Guessing tags by their look would drop a
    user's key named like one.)
    """
    out: list[int | str] = []
    node: object = data
    for part in loc:
        if isinstance(node, dict):
            out.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
        elif node is None and not out:
            out.append(part)
        # else: a tag under a leaf value: not part of the input's path
    return tuple(out)


def field_errors(exc: ValidationError, prefix: str = "", data: object = None) -> list[FieldError]:
    """The refusals of a pydantic ValidationError, without input values.

    With the validated `data`, paths follow its real keys; without it, pydantic's own tags
    are recognised by their shape.
    """
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        if data is not None:
            loc = _real_loc(tuple(err["loc"]), data)
        else:
            loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        path = format_loc(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = err["msg"]
        # "Value error, <our text>" -> "<our text>"
        if err["type"] == "value_error" and msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(FieldError(path, msg))
    return out


def _is_union_tag(part: int | str) -> bool:
    # pydantic inserts the model/function name of a union member or validator into loc.
    return isinstance(part, str) and (part.startswith("function-") or "[" in part)


class InvalidJob(TfqError, ValueError):
    """A job refused at intake; `errors` lists every field path and reason."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def unencodable_path(value: object) -> str | None:
    """The path of the first key or string that is not valid UTF-8 text (a lone surrogate)."""
    loc = _unencodable_loc(value, ())
    return None if loc is None else format_loc(loc)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unencodable_loc(value: object, loc: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    if isinstance(value, str):
        return None if _encodable(value) else loc
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _encodable(key):
                return (*loc, key)  # format_loc quotes it with ASCII escapes
            found = _unencodable_loc(item, (*loc, str(key)))
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _unencodable_loc(item, (*loc, i))
            if found is not None:
                return found
    return None
