"""CSV bulk files.

One row per invoice item; the rows of an invoice are those with the same `cuit` and
`comprobante.external_reference`, next to each other or not. Items keep the order of
their rows. The first non-blank line is the header: dotted column names that mirror
the job envelope.

| column                  | goes to                                                    |
|-------------------------|------------------------------------------------------------|
| `cuit`                  | `cuit` (the issuer)                                        |
| `callback_url`          | `callback_url`                                             |
| `cliente.<field>`       | `invoice.cliente.<field>`                                  |
| `comprobante.<field>`   | `invoice.comprobante.<field>`                              |
| `item.<field>`          | `invoice.comprobante.detalle[i].<field>`, one item per row |
| `item.producto.<field>` | `invoice.comprobante.detalle[i].producto.<field>`          |
| `metadata.<key>`        | `metadata.<key>`, as text                                  |

- `cuit` and `comprobante.external_reference` are required columns, filled in every
  row: they tell which invoice a row belongs to.
- Field names are the API's own (`cliente.razon_social`, `item.cantidad`,
  `item.producto.precio_unitario_sin_iva`, ...).
- JSON cells: `comprobante.tributos`, `comprobante.comprobantes_asociados`,
  `comprobante.comprobantes_asociados_periodo`, `comprobante.rg_especiales`,
  `comprobante.datos_informativos`, `comprobante.tags`, `comprobante.pagos` and
  `comprobante.fex` hold JSON text, e.g. `[{"tipo":7,"regimen":4,"base_imponible":1000,
  "alicuota":3,"total":30}]` (quoted as CSV requires: `"[{""tipo"":7,...}]"`).
  There is no `comprobante.detalle` column: items are rows.
- An empty cell means "absent"; spaces around a value are trimmed. Numbers are plain
  text with `.` for decimals and no thousands separator (`1234.50`, not `1.234,50`);
  dates are `dd/mm/aaaa`, as in the API.
- Invoice-level columns (all but `item.*`) must have the same value in every row of
  the invoice that fills them; it is fine to fill them in the first row only and leave
  them empty in the others. Two rows with different values refuse the invoice, naming
  the column and both lines.
- A row whose `item.*` cells are all empty adds no item (it may carry invoice-level
  cells only).
- Delimiter `,` or `;` (whichever the header has more of, for spreadsheet exports that
  use `;`), standard double-quote quoting. One row per line: a cell cannot hold a line
  break (write `#@#`, the API's line break). Columns without a name (trailing
  separators) are allowed as long as their cells are empty.
- Refusals: an unknown column, a repeated column, or a missing `cuit` or
  `comprobante.external_reference` column refuses the whole file, reported once on the
  header line. A row with a different number of cells than the header, or that is not
  valid UTF-8 or too long, refuses its invoice. A row whose invoice cannot be told (no
  readable `cuit` and `comprobante.external_reference`) refuses every invoice in the
  file, since it may hold an item of any of them.
- Problems name the envelope path and, for items, the line the item came from:
  `invoice.comprobante.detalle[1].producto.alicuota (line 7): ...`. The job's line is
  the first row of its invoice (the header is line 1).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from typing import IO, Any, Literal

from producers.bulkfile.jobs import JobLine, parse_json, validate_job
from producers.bulkfile.lines import decode_utf8, physical_lines, too_long
from worker.errors import FieldError

_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_COLUMNS = frozenset(
    {
        "tributos",
        "comprobantes_asociados",
        "comprobantes_asociados_periodo",
        "rg_especiales",
        "datos_informativos",
        "tags",
        "pagos",
        "fex",
    }
)
_DETALLE_RE = re.compile(r"^invoice\.comprobante\.detalle\[(\d+)\]")
_ALLOWED = (
    "cuit, callback_url, cliente.<field>, comprobante.<field>, item.<field>, "
    "item.producto.<field>, metadata.<key>"
)
_ColumnKind = Literal[
    "cuit", "callback_url", "cliente", "comprobante", "json", "item", "producto", "metadata", ""
]


@dataclass(frozen=True, slots=True)
class _Column:
    index: int
    name: str
    kind: _ColumnKind  # "" for a column without a name
    key: str  # the field (or metadata key) it fills


@dataclass(frozen=True, slots=True)
class _Layout:
    delimiter: str
    columns: tuple[_Column, ...]
    cuit: int
    external_reference: int

    @property
    def width(self) -> int:
        return len(self.columns)


@dataclass(slots=True)
class _Group:
    """One invoice found in the first pass: where its rows are, and row-level problems."""

    first_line: int
    runs: list[list[int]] = field(default_factory=list)  # [first line, offset, row count]
    errors: list[FieldError] = field(default_factory=list)


def _classify(name: str) -> tuple[_ColumnKind, str] | None:
    if name in ("cuit", "callback_url"):
        return ("cuit" if name == "cuit" else "callback_url"), name
    if name == "":
        return "", ""
    head, _, rest = name.partition(".")
    if head == "metadata":
        return ("metadata", rest) if rest else None
    if head == "item" and rest.startswith("producto."):
        head, rest = "producto", rest[len("producto.") :]
    if not _FIELD_RE.match(rest):
        return None
    if head == "cliente":
        return "cliente", rest
    if head == "comprobante" and rest != "detalle":
        return ("json" if rest in _JSON_COLUMNS else "comprobante"), rest
    if head == "item" and rest != "producto":
        return "item", rest
    if head == "producto":
        return "producto", rest
    return None


def _parse_header(text: str) -> tuple[_Layout | None, list[FieldError]]:
    delimiter = ";" if text.count(";") > text.count(",") else ","
    try:
        names = next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return None, [FieldError("header", f"not valid CSV: {exc}")]
    columns: list[_Column] = []
    unknown: list[str] = []
    repeated: list[str] = []
    for index, raw_name in enumerate(names):
        name = raw_name.strip()
        kind = _classify(name)
        if kind is None:
            unknown.append(name)
            continue
        if name and any(c.name == name for c in columns):
            repeated.append(name)
        columns.append(_Column(index, name, kind[0], kind[1]))
    errors: list[FieldError] = []
    if unknown:
        listed = ", ".join(json.dumps(n, ensure_ascii=False) for n in unknown)
        errors.append(FieldError("header", f"unknown columns {listed}; allowed: {_ALLOWED}"))
    if repeated:
        errors.append(FieldError("header", f"columns given more than once: {', '.join(repeated)}"))
    by_name = {c.name: c.index for c in columns}
    for required in ("cuit", "comprobante.external_reference"):
        if required not in by_name:
            errors.append(FieldError("header", f"missing column {required}"))
    if errors:
        errors.append(FieldError("header", "no invoice in this file was read"))
        return None, errors
    layout = _Layout(
        delimiter,
        tuple(columns),
        by_name["cuit"],
        by_name["comprobante.external_reference"],
    )
    return layout, []


def _parse_row(text: str, layout: _Layout) -> tuple[list[str] | None, str | None]:
    """The cells (trimmed), and what is wrong with the row if anything.

    Cells are returned even for a wrong row when they can be read, so the row's invoice
    can still be told from its key cells.
    """
    try:
        cells = next(csv.reader([text], delimiter=layout.delimiter, strict=True))
    except csv.Error as exc:
        reason = (
            "a quoted cell is not closed (a cell cannot hold a line break; write #@#)"
            if "unexpected end of data" in str(exc)
            else f"not valid CSV: {exc}"
        )
        try:
            cells = next(csv.reader([text], delimiter=layout.delimiter))
        except csv.Error:
            return None, reason
        # Loose parsing keeps columns aligned only if the count still matches.
        return ([c.strip() for c in cells] if len(cells) == layout.width else None), reason
    cells = [c.strip() for c in cells]
    if len(cells) != layout.width:
        return cells, f"has {len(cells)} cells, the header has {layout.width}"
    unnamed = [c.index + 1 for c in layout.columns if c.kind == "" and cells[c.index]]
    if unnamed:
        return cells, f"cell {unnamed[0]} has a value but its column has no name in the header"
    return cells, None


def _row_key(cells: list[str] | None, layout: _Layout, trusted: int) -> tuple[str, str] | None:
    """(cuit, external_reference) of a row, when both cells are there and trustworthy."""
    if cells is None:
        return None
    idx_cuit, idx_ref = layout.cuit, layout.external_reference
    if max(idx_cuit, idx_ref) >= min(len(cells), trusted):
        return None
    key = (cells[idx_cuit], cells[idx_ref])
    if not all(key) or any("\ufffd" in k for k in key):
        return None
    return key


def read_csv(fh: IO[bytes], max_bytes: int, today: date | None) -> Iterator[JobLine]:
    layout: _Layout | None = None
    groups: dict[tuple[str, str], _Group] = {}
    orphans: list[JobLine] = []  # rows that belong to no invoice we can tell

    for line in physical_lines(fh, max_bytes):
        if line.blank:
            continue
        if layout is None:
            text, bad = decode_utf8(line.data)
            if line.oversized:
                bad = too_long(line, max_bytes)
            if bad is None:
                layout, errors = _parse_header(text)
            else:
                errors = [FieldError("header", bad)]
            if layout is None:
                yield JobLine(line.number, None, None, errors)
                return
            continue

        text, bad = decode_utf8(line.data)
        if line.oversized:
            bad = too_long(line, max_bytes)
        cells, row_bad = _parse_row(text, layout)
        bad = bad or row_bad
        # An oversized row was cut: its last cell may be cut too.
        trusted = len(cells) - 1 if line.oversized and cells else layout.width
        key = _row_key(cells, layout, trusted)
        if key is None:
            reason = bad or "needs cuit and comprobante.external_reference: they tell its invoice"
            orphans.append(JobLine(line.number, None, None, [FieldError("", reason)]))
            continue
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(line.number)
        if bad:
            group.errors.append(FieldError("", f"line {line.number}: {bad}"))
            continue
        last = group.runs[-1] if group.runs else None
        if last is not None and last[0] + last[2] == line.number:
            last[2] += 1
        else:
            group.runs.append([line.number, line.offset, 1])

    if layout is None:
        return  # empty file: no jobs

    orphan_note: FieldError | None = None
    if orphans:
        numbers = [str(o.line) for o in orphans[:5]] + (["…"] if len(orphans) > 5 else [])
        orphan_note = FieldError(
            "",
            f"refused because line(s) {', '.join(numbers)} could not be assigned to an "
            "invoice and may hold items of this one",
        )

    seen: dict[tuple[str, str], int] = {}
    pending = iter(orphans)
    orphan = next(pending, None)
    for key, group in groups.items():
        while orphan is not None and orphan.line < group.first_line:
            yield orphan
            orphan = next(pending, None)
        yield _build_invoice(
            fh,
            key,
            group,
            layout=layout,
            max_bytes=max_bytes,
            today=today,
            seen=seen,
            orphan_note=orphan_note,
        )
    while orphan is not None:
        yield orphan
        orphan = next(pending, None)


def _build_invoice(
    fh: IO[bytes],
    key: tuple[str, str],
    group: _Group,
    *,
    layout: _Layout,
    max_bytes: int,
    today: date | None,
    seen: dict[tuple[str, str], int],
    orphan_note: FieldError | None,
) -> JobLine:
    errors = list(group.errors)
    rows: list[tuple[int, list[str]]] = []
    for first, offset, count in group.runs:
        fh.seek(offset)
        got = 0
        for line in islice(physical_lines(fh, max_bytes, first), count):
            text, bad = decode_utf8(line.data)
            cells, row_bad = _parse_row(text, layout)
            if cells is None or bad or row_bad or line.oversized:
                break
            if _row_key(cells, layout, layout.width) != key:
                break
            rows.append((line.number, cells))
            got += 1
        if got != count:
            errors.append(FieldError("", "the file changed while it was being read"))
    if not rows:
        return JobLine(group.first_line, None, None, errors)  # only unreadable rows

    values: dict[_Column, tuple[str, int]] = {}  # invoice-level column -> (value, line)
    items: list[dict[str, Any]] = []
    item_lines: list[int] = []
    for number, cells in rows:
        item: dict[str, Any] = {}
        for col in layout.columns:
            value = cells[col.index]
            if not value or col.kind == "":
                continue
            if col.kind == "item":
                item[col.key] = value
            elif col.kind == "producto":
                item.setdefault("producto", {})[col.key] = value
            elif col not in values:
                values[col] = (value, number)
            elif values[col][0] != value:
                errors.append(
                    FieldError(
                        col.name,
                        f"line {number} differs from line {values[col][1]}; the rows of "
                        "an invoice must agree on it (or leave it empty)",
                    )
                )
        if item:
            items.append(item)
            item_lines.append(number)

    cliente: dict[str, Any] = {}
    comprobante: dict[str, Any] = {}
    raw: dict[str, Any] = {"invoice": {"cliente": cliente, "comprobante": comprobante}}
    metadata: dict[str, Any] = {}
    for col, (value, number) in values.items():
        if col.kind in ("cuit", "callback_url"):
            raw[col.key] = value
        elif col.kind == "cliente":
            cliente[col.key] = value
        elif col.kind == "comprobante":
            comprobante[col.key] = value
        elif col.kind == "metadata":
            metadata[col.key] = value
        elif col.kind == "json":
            parsed, bad = parse_json(value)
            if bad:
                errors.append(FieldError(f"invoice.comprobante.{col.key} (line {number})", bad))
            else:
                comprobante[col.key] = parsed
    comprobante["detalle"] = items
    if metadata:
        raw["metadata"] = metadata
    # Keys in envelope order, for a readable `raw`.
    raw = {k: raw[k] for k in ("cuit", "invoice", "callback_url", "metadata") if k in raw}

    env, invalid = validate_job(group.first_line, raw, today, seen)
    for err in invalid:
        match = _DETALLE_RE.match(err.path)
        if match and int(match.group(1)) < len(item_lines):
            item_line = item_lines[int(match.group(1))]
            errors.append(FieldError(f"{err.path} (line {item_line})", err.reason))
        else:
            errors.append(err)
    if orphan_note is not None:
        errors.append(orphan_note)
    if errors:
        return JobLine(group.first_line, None, raw, errors)
    return JobLine(group.first_line, env, raw, [])
