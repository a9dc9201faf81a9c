"""The entry points of bulk files: `read_jobs` (any format) and `validate_file` (the
`validate` command's logic).


Output of `validate_file`: one line per problem, `LINE: PATH: REASON` (or `LINE: REASON`
when the problem is the line itself), then `N jobs: V valid, I invalid`. With
`as_json=True`, one JSON object per problem (`line`, `path`, `reason`) and a summary
object (`jobs`, `valid`, `invalid`). Exit code 0 when every job is valid, 1 when any is
not, 2 when the file cannot be read. Messages never quote cell or field values.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal, TextIO

from producers.bulkfile.csvfile import read_csv
from producers.bulkfile.jobs import JobLine
from producers.bulkfile.jsonl import read_jsonl
from producers.bulkfile.lines import BOM, CHUNK_BYTES
from worker.errors import TfqError

Format = Literal["auto", "jsonl", "csv"]

DEFAULT_MAX_LINE_BYTES = 1_000_000
_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
_CSV_SUFFIXES = frozenset({".csv"})


class FileFormatError(TfqError, ValueError):
    """The file is not one `read_jobs` can read (unknown format)."""


def read_jobs(
    path: Path,
    *,
    fmt: Format = "auto",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    today: date | None = None,
) -> Iterator[JobLine]:
    """The jobs of a JSONL or CSV file, in line order, each validated or with its errors.

    `fmt="auto"` goes by the extension (.jsonl, .ndjson, .json: JSONL; .csv: CSV) and
    otherwise by the first non-blank byte (`{`: JSONL, else CSV). `max_line_bytes` is
    the longest line accepted, in bytes without the line break. `today` is the date
    invoice dates are checked against (default: today in Argentina).

    Raises OSError when the file cannot be opened or read, FileFormatError for an
    unknown `fmt`. JSONL is read in one pass; CSV in two (invoices may be spread over
    the file), keeping only an index of row positions in memory.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    with ExitStack() as stack:
        stream: IO[bytes] = stack.enter_context(open(path, "rb"))
        if not stream.seekable():
            # A pipe: CSV needs a second pass, and detection a peek.
            spool = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(stream, spool, CHUNK_BYTES)
            spool.seek(0)
            stream = spool
        if _resolve_format(path, fmt, stream) == "jsonl":
            yield from read_jsonl(stream, max_line_bytes, today)
        else:
            yield from read_csv(stream, max_line_bytes, today)


def validate_file(
    path: Path | str,
    *,
    fmt: Format = "auto",
    today: date | None = None,
    out: TextIO | None = None,
    as_json: bool = False,
) -> int:
    """Check every job of a bulk file and print the problems; the exit code.

    0: every job is valid (or the file has none); 1: at least one is not; 2: the file
    cannot be read. Nothing is enqueued.
    """
    stream = out if out is not None else sys.stdout
    total = valid = 0

    def emit(obj: dict[str, Any], text: str) -> None:
        stream.write((json.dumps(obj, ensure_ascii=False) if as_json else text) + "\n")

    try:
        for job in read_jobs(Path(path), fmt=fmt, today=today):
            total += 1
            if job.ok:
                valid += 1
                continue
            for err in job.errors:
                emit({"line": job.line, **err.as_dict()}, f"{job.line}: {err}")
    except (OSError, FileFormatError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        emit({"error": f"cannot read {path}: {reason}"}, f"error: cannot read {path}: {reason}")
        return 2
    except Exception as exc:  # never a traceback on the command line
        reason = f"internal error ({type(exc).__name__}) while reading {path}"
        emit({"error": reason}, f"error: {reason}")
        return 2
    invalid = total - valid
    emit(
        {"jobs": total, "valid": valid, "invalid": invalid},
        f"{total} jobs: {valid} valid, {invalid} invalid",
    )
    return 0 if invalid == 0 else 1


def _resolve_format(path: Path, fmt: str, fh: IO[bytes]) -> Literal["jsonl", "csv"]:
    if fmt in ("jsonl", "csv"):
        return "jsonl" if fmt == "jsonl" else "csv"
    if fmt != "auto":
        raise FileFormatError(f"unknown format {fmt!r}: use auto, jsonl or csv")
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _CSV_SUFFIXES:
        return "csv"
    first = b""
    while not first:
        chunk = fh.read(CHUNK_BYTES)
        if not chunk:
            break
        if fh.tell() == len(chunk) and chunk.startswith(BOM):
            chunk = chunk[len(BOM) :]
        first = chunk.lstrip()[:1]
    fh.seek(0)
    return "jsonl" if first == b"{" else "csv"
