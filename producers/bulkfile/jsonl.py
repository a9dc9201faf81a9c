"""JSONL bulk files.

One job envelope per line, as a JSON object (the same envelope as the Python API and the
HTTP intake). A line that is not JSON, or whose value is not an object, is refused with
the position of the problem. A second job with the same `cuit` and
`comprobante.external_reference` as an earlier line is refused as a duplicate of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import IO, Any

from producers.bulkfile.jobs import JobLine, parse_json, validate_job
from producers.bulkfile.lines import decode_utf8, physical_lines, too_long
from worker.errors import FieldError

_JSON_TYPE_NAMES = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "a number")


def read_jsonl(fh: IO[bytes], max_bytes: int, today: date | None) -> Iterator[JobLine]:
    seen: dict[tuple[str, str], int] = {}
    for line in physical_lines(fh, max_bytes):
        if line.oversized:
            yield JobLine(line.number, None, None, [FieldError("", too_long(line, max_bytes))])
            continue
        if line.blank:
            continue
        text, bad = decode_utf8(line.data)
        if bad:
            yield JobLine(line.number, None, None, [FieldError("", bad)])
            continue
        value, bad = parse_json(text)
        if bad is None and not isinstance(value, dict):
            bad = f"{_json_type(value)} is not a job: each line must be one JSON object"
        if bad is not None:
            yield JobLine(line.number, None, None, [FieldError("", bad)])
            continue
        env, errors = validate_job(line.number, value, today, seen)
        yield JobLine(line.number, env, value, errors)
