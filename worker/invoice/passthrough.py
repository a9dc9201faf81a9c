"""Fields tfq does not know: a field outside the schema passes through to the API
unchanged and is listed as not checked; a misspelt name of a known field is refused with a
hint. Whatever passes through (and the free-form blocks) must be plain JSON and carry no
credentials at any depth, since it is stored and sent."""

from __future__ import annotations

import difflib
import functools
import json
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from worker.errors import FieldError, format_loc

CREDENTIAL_FIELDS = ("apikey", "apitoken", "usertoken")
# Blocks the API takes as free-form JSON (checked as plain JSON by their own validators).
FREE_FORM_FIELDS = frozenset({"fex"})
MAX_JSON_DEPTH = 20


# json.dumps(value, allow_nan=False, ensure_ascii=False), its encoder made once.
_PLAIN = json.JSONEncoder(allow_nan=False, ensure_ascii=False)


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
        return _PLAIN.encode(value).encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ValueError("must be plain JSON: finite numbers and valid UTF-8 text") from None


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


@functools.cache
def _nested_of(model: type[BaseModel]) -> tuple[frozenset[str], frozenset[str]]:
    """(the names `model` knows, those of them holding blocks or free-form JSON)."""
    fields = _fields_of(model)
    nested = {name for name, (block, _) in fields.items() if block is not None}
    return frozenset(fields), frozenset(nested | (FREE_FORM_FIELDS & set(fields)))


def unknown_fields(
    model: type[BaseModel], data: Any, loc: tuple[int | str, ...]
) -> tuple[list[str], list[FieldError]]:
    """(paths of fields `model` does not know, refusals of misspelt or credential names)."""
    unchecked: list[str] = []
    refused: list[FieldError] = []
    if not isinstance(data, dict):
        return unchecked, refused
    fields = _fields_of(model)
    known_names, nested = _nested_of(model)
    if data.keys() <= known_names:
        # Every name is known (the common case): only the blocks need a look, in order.
        for key in [k for k in data if k in nested]:
            _known_field(key, data[key], fields[key], loc, unchecked, refused)
        return unchecked, refused
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        known = fields.get(key)
        if known is not None:
            _known_field(key, value, known, loc, unchecked, refused)
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


def _known_field(
    key: str,
    value: Any,
    known: tuple[type[BaseModel] | None, bool],
    loc: tuple[int | str, ...],
    unchecked: list[str],
    refused: list[FieldError],
) -> None:
    """`unknown_fields` inside a known field's block(s), or its free-form value."""
    block, is_list = known
    if key in FREE_FORM_FIELDS:
        refused += _credentials_inside(value, (*loc, key))
    elif block is not None and (not is_list or isinstance(value, list)):
        # (a wrong type is left to pydantic, which names it)
        items = value if is_list else [value]
        names, nested = _nested_of(block)
        for i, item in enumerate(items):
            if not nested and isinstance(item, dict) and item.keys() <= names:
                continue  # a block without blocks, every name known: nothing to report
            sub = (*loc, key, i) if is_list else (*loc, key)
            u, r = unknown_fields(block, item, sub)
            unchecked += u
            refused += r


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
