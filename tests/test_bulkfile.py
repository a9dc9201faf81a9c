"""Bulk job files: JSONL and CSV read line by line, and the `validate` command's logic."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from producers.bulkfile import jobs as bulk_jobs
from producers.bulkfile import jsonl
from producers.bulkfile.jobs import JobLine
from producers.bulkfile.reader import FileFormatError, read_jobs, validate_file
from worker.invoice.envelope import validate_envelope

EXAMPLES = Path(__file__).resolve().parent.parent / "ops" / "testkit" / "examples"
BULK_CSV = EXAMPLES / "bulk.csv"


def _example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def _examples() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in _example_paths()]


def _date_of(fecha: str) -> date:
    return datetime.strptime(fecha, "%d/%m/%Y").date()


# The examples are dated; check them against the day they are written for.
EXAMPLES_TODAY = _date_of(_examples()[0]["invoice"]["comprobante"]["fecha"])


def _csv_rows(path: Path = BULK_CSV) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


CSV_TODAY = _date_of(_csv_rows()[1][_csv_rows()[0].index("comprobante.fecha")])


def _write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def _jobs(path: Path, **kwargs: Any) -> list[JobLine]:
    kwargs.setdefault("today", EXAMPLES_TODAY)
    return list(read_jobs(path, **kwargs))


def _line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _reasons(job: JobLine) -> list[str]:
    return [str(e) for e in job.errors]


# --- JSONL --------------------------------------------------------------------------


def test_examples_are_dated_and_valid() -> None:
    assert len(_examples()) >= 3
    for example in _examples():
        validate_envelope(example, today=EXAMPLES_TODAY)


def test_good_jsonl_from_examples(tmp_path: Path) -> None:
    examples = _examples()
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(b"\n".join(_line(e) for e in examples) + b"\n")

    jobs = _jobs(path)

    assert [j.line for j in jobs] == list(range(1, len(examples) + 1))
    for job, example in zip(jobs, examples, strict=True):
        assert job.ok
        assert job.errors == []
        assert job.raw == example
        assert job.envelope == validate_envelope(example, today=EXAMPLES_TODAY)


def test_jsonl_broken_lines_do_not_stop_the_good_ones(tmp_path: Path) -> None:
    a, b, c, d = _examples()[:4]
    invalid = json.loads(json.dumps(c))
    invalid["cuit"] = "20111111113"  # wrong check digit
    invalid["invoice"]["comprobante"]["external_reference"] = "OTHER-1"
    invalid["invoice"]["comprobante"]["detalle"][0]["cantidad"] = -1
    bad_utf8 = _line(b).replace(b'"cuit"', b'"cu\xffit"')
    max_bytes = max(len(_line(e)) for e in (a, b, c, d)) + 100
    lines = [
        b"\xef\xbb\xbf" + _line(a),  # 1: BOM, good
        b"",  # 2: blank
        b'{"cuit": "20111111112",',  # 3: bad JSON
        b"[1, 2, 3]",  # 4: not an object
        bad_utf8,  # 5: bad UTF-8
        b"   \t ",  # 6: blank
        b"{" + b" " * (max_bytes * 3) + b"}",  # 7: oversized
        _line(c) + b"\r",  # 8: good, CRLF
        _line(a),  # 9: duplicate of line 1
        _line(invalid),  # 10: invalid invoice
        b'{"a": 1, "a": 2}',  # 11: duplicate JSON key
        b'{"total": NaN}',  # 12: NaN is not JSON
        b'"just a string"',  # 13: not an object
        _line(d),  # 14: good, no final line break
    ]
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"\n".join(lines))

    jobs = {j.line: j for j in _jobs(path, max_line_bytes=max_bytes)}

    assert sorted(jobs) == [1, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14]
    assert {n for n, j in jobs.items() if j.ok} == {1, 8, 14}
    assert jobs[1].envelope is not None
    assert jobs[1].envelope.key == (a["cuit"], a["invoice"]["comprobante"]["external_reference"])
    assert jobs[14].raw == d

    assert re.fullmatch(r"not valid JSON at column \d+: .+", _reasons(jobs[3])[0])
    assert jobs[3].raw is None
    assert _reasons(jobs[4]) == ["an array is not a job: each line must be one JSON object"]
    bad_at = bad_utf8.index(b"\xff") + 1
    assert _reasons(jobs[5]) == [f"not valid UTF-8 at byte {bad_at} (save the file as UTF-8)"]
    assert _reasons(jobs[7]) == [
        f"line is {max_bytes * 3 + 2} bytes, longer than the limit of {max_bytes}"
    ]
    assert jobs[9].envelope is None
    assert jobs[9].errors[0].path == "invoice.comprobante.external_reference"
    assert "duplicate of line 1" in jobs[9].errors[0].reason
    paths = {e.path for e in jobs[10].errors}
    assert "cuit" in paths
    assert "invoice.comprobante.detalle[0].cantidad" in paths
    assert jobs[10].raw == invalid
    assert "appears twice" in _reasons(jobs[11])[0]
    assert "NaN is not a JSON number" in _reasons(jobs[12])[0]
    assert _reasons(jobs[13]) == ["a string is not a job: each line must be one JSON object"]


def test_jsonl_duplicate_is_refused_every_time_naming_the_first(tmp_path: Path) -> None:
    a = _examples()[0]
    path = tmp_path / "dups.jsonl"
    path.write_bytes(b"\n".join([_line(a), b"", _line(a), _line(a)]))

    jobs = _jobs(path)

    assert [j.line for j in jobs] == [1, 3, 4]
    assert jobs[0].ok
    for job in jobs[1:]:
        assert not job.ok
        assert "duplicate of line 1" in job.errors[0].reason


def test_oversized_line_is_never_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _examples()[0]
    path = tmp_path / "big.jsonl"
    with path.open("wb") as fh:
        fh.write(b'{"x": "' + b"y" * 3_000_000 + b'"}\n')
        fh.write(_line(a) + b"\n")

    biggest = 0
    real_lines = jsonl.physical_lines

    def spy(fh: Any, max_bytes: int, first_number: int = 1) -> Any:
        real_readline = fh.readline

        def readline(size: int = -1) -> bytes:
            nonlocal biggest
            assert size > 0, "an unbounded readline would hold the whole line"
            data: bytes = real_readline(size)
            biggest = max(biggest, len(data))
            return data

        monkeypatch.setattr(fh, "readline", readline)
        return real_lines(fh, max_bytes, first_number)

    monkeypatch.setattr(jsonl, "physical_lines", spy)

    jobs = _jobs(path, max_line_bytes=10_000)

    assert 0 < biggest <= 1 << 16
    assert [j.line for j in jobs] == [1, 2]
    assert _reasons(jobs[0]) == ["line is 3000009 bytes, longer than the limit of 10000"]
    assert jobs[1].ok


def test_line_exactly_at_the_limit_is_read(tmp_path: Path) -> None:
    a = _line(_examples()[0])
    path = tmp_path / "edge.jsonl"
    path.write_bytes(a + b"\r\n" + a[:-1] + b" }\n")

    jobs = _jobs(path, max_line_bytes=len(a))

    assert jobs[0].ok
    assert _reasons(jobs[1]) == [f"line is {len(a) + 1} bytes, longer than the limit of {len(a)}"]


# --- CSV ----------------------------------------------------------------------------


def _csv_jobs(path: Path, **kwargs: Any) -> list[JobLine]:
    kwargs.setdefault("today", CSV_TODAY)
    return list(read_jobs(path, **kwargs))


def _by_ref(jobs: list[JobLine]) -> dict[str, JobLine]:
    out = {}
    for job in jobs:
        assert job.raw is not None
        out[job.raw["invoice"]["comprobante"]["external_reference"]] = job
    return out


def test_example_csv_is_valid() -> None:
    jobs = _csv_jobs(BULK_CSV)

    assert len(jobs) >= 3
    assert all(j.ok for j in jobs), [(j.line, _reasons(j)) for j in jobs]
    rows = _csv_rows()
    refs = [r[rows[0].index("comprobante.external_reference")] for r in rows[1:]]
    first_lines = sorted({refs.index(ref) + 2 for ref in refs})
    assert [j.line for j in jobs] == first_lines
    items = [len(j.envelope.invoice.comprobante.detalle) for j in jobs if j.envelope]
    assert max(items) >= 3
    assert sum(items) == len(rows) - 1
    tenants = {j.envelope.cuit for j in jobs if j.envelope}
    assert tenants == {"20111111112", "20267565393"}


def test_csv_maps_columns_to_the_envelope() -> None:
    job = _csv_jobs(BULK_CSV)[0]
    assert job.raw is not None
    assert set(job.raw) >= {"cuit", "invoice"}
    comprobante = job.raw["invoice"]["comprobante"]
    assert isinstance(comprobante["tributos"], list)  # a JSON cell
    assert comprobante["detalle"][0]["producto"]["precio_unitario_sin_iva"] == "5200.00"
    assert "periodo_facturado_desde" not in comprobante  # empty cell: absent
    assert job.envelope is not None
    assert job.envelope.invoice.comprobante.tributos[0].tipo == 7
    assert job.envelope.metadata == {"order_id": "2001", "channel": "web"}


def test_csv_semicolon_delimiter_and_bom(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "excel.csv", _csv_rows(), delimiter=";")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))

    jobs = _csv_jobs(path)

    assert [j.line for j in jobs] == [j.line for j in _csv_jobs(BULK_CSV)]
    assert all(j.ok for j in jobs)


def test_csv_items_on_non_consecutive_rows(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    col = {name: i for i, name in enumerate(header)}
    ref = col["comprobante.external_reference"]
    three = [r for r in rows if r[ref] == "ORD-2001"]
    others = [r for r in rows if r[ref] != "ORD-2001"]
    assert len(three) == 3
    assert len(others) >= 2
    # Fill invoice-level cells on the first row only; put the items far apart.
    for row in three[1:]:
        for name, i in col.items():
            if not name.startswith("item.") and name not in (
                "cuit",
                "comprobante.external_reference",
            ):
                row[i] = ""
    three[1][col["item.producto.alicuota"]] = "22"
    ordered = [three[0], others[0], three[1], *others[1:], three[2]]
    path = _write_csv(tmp_path / "spread.csv", [header, *ordered])

    jobs = _by_ref(_csv_jobs(path))

    job = jobs["ORD-2001"]
    assert job.line == 2
    assert job.raw is not None
    descripciones = [
        i["producto"]["descripcion"] for i in job.raw["invoice"]["comprobante"]["detalle"]
    ]
    assert descripciones == [r[col["item.producto.descripcion"]] for r in three]
    assert [str(e) for e in job.errors if "alicuota" in e.path] == [
        "invoice.comprobante.detalle[1].producto.alicuota (line 4): "
        "must be one of 27, 21, 10.5, 0, -1 (exento), -2 (no gravado)"
    ]
    assert all(j.ok for ref_, j in jobs.items() if ref_ != "ORD-2001")

    # Fixed, the spread invoice is valid, with its items in row order.
    three[1][col["item.producto.alicuota"]] = "10.5"
    _write_csv(path, [header, *ordered])
    jobs = _by_ref(_csv_jobs(path))
    assert all(j.ok for j in jobs.values())
    assert jobs["ORD-2001"].line == 2
    assert [j.line for j in _csv_jobs(path)] == sorted(j.line for j in jobs.values())


def test_csv_disagreeing_invoice_cells(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    rows[1][header.index("comprobante.total")] = "99.99"  # line 3, invoice of line 2
    path = _write_csv(tmp_path / "disagree.csv", [header, *rows])

    jobs = _csv_jobs(path)

    bad = [j for j in jobs if not j.ok]
    assert [j.line for j in bad] == [2]
    assert str(bad[0].errors[0]) == (
        "comprobante.total: line 3 differs from line 2; the rows of an invoice must agree "
        "on it (or leave it empty)"
    )
    out = io.StringIO()
    validate_file(path, today=CSV_TODAY, out=out)
    assert "99.99" not in out.getvalue()  # values are never quoted


def test_csv_short_row(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    rows[2] = rows[2][:-1]  # line 4
    path = _write_csv(tmp_path / "short.csv", [header, *rows])

    jobs = _csv_jobs(path)

    bad = [j for j in jobs if not j.ok]
    assert [j.line for j in bad] == [2]
    assert f"line 4: has {len(header) - 1} cells, the header has {len(header)}" in _reasons(bad[0])
    assert len(jobs) == len(_csv_jobs(BULK_CSV))


def test_csv_unknown_columns_refuse_the_whole_file(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    header = [*header, "foo", "comprobante.detalle", "item.producto"]
    rows = [[*r, "", "", ""] for r in rows]
    path = _write_csv(tmp_path / "unknown.csv", [header, *rows])

    jobs = _csv_jobs(path)

    assert len(jobs) == 1
    assert jobs[0].line == 1
    assert jobs[0].envelope is None
    first = str(jobs[0].errors[0])
    assert first.startswith('header: unknown columns "foo", "comprobante.detalle", "item.producto"')
    assert "no invoice in this file was read" in _reasons(jobs[0])[-1]


def test_csv_header_needs_the_key_columns_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_text("cuit,cuit,cliente.razon_social\n20111111112,20111111112,X\n")

    (job,) = _csv_jobs(path)

    assert _reasons(job)[:2] == [
        "header: columns given more than once: cuit",
        "header: missing column comprobante.external_reference",
    ]


def test_csv_misspelt_field_is_refused_by_the_model(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    header[header.index("cliente.razon_social")] = "cliente.razon_socal"
    path = _write_csv(tmp_path / "typo.csv", [header, *rows])

    jobs = _csv_jobs(path)

    assert all(not j.ok for j in jobs)
    assert all(any(e.path == "invoice.cliente.razon_socal" for e in j.errors) for j in jobs)


def test_csv_unreadable_row_refuses_its_invoice(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    path = _write_csv(tmp_path / "latin1.csv", [header, *rows])
    data = path.read_bytes().split(b"\n")
    assert b"ORD-2001" in data[3]  # line 4 belongs to the invoice of line 2
    data[3] = data[3].replace(b"Cartucho", b"Cartucho \xf1")
    path.write_bytes(b"\n".join(data))

    jobs = _csv_jobs(path)

    bad = [j for j in jobs if not j.ok]
    assert [j.line for j in bad] == [2]
    assert any(r.startswith("line 4: not valid UTF-8 at byte ") for r in _reasons(bad[0]))
    assert len(jobs) == len(_csv_jobs(BULK_CSV))


def test_csv_row_without_key_refuses_every_invoice(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    orphan = list(rows[0])
    orphan[header.index("comprobante.external_reference")] = ""
    path = _write_csv(tmp_path / "orphan.csv", [header, *rows, orphan])
    orphan_line = len(rows) + 2

    jobs = _csv_jobs(path)

    assert jobs[-1].line == orphan_line
    assert jobs[-1].raw is None
    assert "needs cuit and comprobante.external_reference" in _reasons(jobs[-1])[0]
    for job in jobs[:-1]:
        assert not job.ok
        assert f"line(s) {orphan_line} could not be assigned" in _reasons(job)[-1]


def test_csv_bad_json_cell_and_unnamed_columns(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    col = header.index("comprobante.tributos")
    for row in rows[:3]:
        row[col] = '[{"tipo": 7,'
    header, rows = [*header, "", ""], [[*r, "", ""] for r in rows]  # trailing ";;" of Excel
    rows[-1][-1] = "stray"
    path = _write_csv(tmp_path / "cells.csv", [header, *rows])

    jobs = _csv_jobs(path)

    first, last = jobs[0], jobs[-1]
    assert re.fullmatch(
        r"invoice\.comprobante\.tributos \(line 2\): not valid JSON at column \d+: .+",
        _reasons(first)[0],
    )
    assert _reasons(last) == [
        f"line {len(rows) + 1}: cell {len(header)} has a value but its column has no name "
        "in the header",
        *_reasons(last)[1:],
    ]
    assert all(j.ok for j in jobs[1:-1])


def test_csv_blank_lines_header_only_and_empty(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    path = _write_csv(tmp_path / "blank.csv", [header, [], *rows[:3], [], []])
    assert [j.line for j in _csv_jobs(path)] == [3]

    header_only = _write_csv(tmp_path / "header.csv", [header])
    assert _csv_jobs(header_only) == []
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert _csv_jobs(empty) == []


def test_csv_from_a_pipe(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    data = BULK_CSV.read_bytes()

    def feed() -> None:
        with fifo.open("wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        jobs = _csv_jobs(fifo)
    finally:
        writer.join(timeout=10)
    assert [j.line for j in jobs] == [j.line for j in _csv_jobs(BULK_CSV)]
    assert all(j.ok for j in jobs)


# --- format detection ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["jobs.jsonl", "jobs.NDJSON", "jobs.json", "jobs.txt"])
def test_jsonl_detection(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\n  " + _line(_examples()[0]) + b"\n")
    jobs = _jobs(path)
    assert [(j.line, j.ok) for j in jobs] == [(2, True)]


def test_csv_detection_and_explicit_format(tmp_path: Path) -> None:
    as_txt = tmp_path / "export.txt"
    as_txt.write_bytes(BULK_CSV.read_bytes())
    assert all(j.ok for j in _csv_jobs(as_txt))
    as_json = tmp_path / "export.json"
    as_json.write_bytes(BULK_CSV.read_bytes())
    assert all(j.ok for j in _csv_jobs(as_json, fmt="csv"))
    with pytest.raises(FileFormatError):
        _csv_jobs(as_json, fmt="xml")


# --- validate_file ------------------------------------------------------------------


def _broken_jsonl(tmp_path: Path) -> Path:
    a, b = _examples()[:2]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([_line(a), b"{oops", _line(b), _line(a)]) + b"\n")
    return path


def test_validate_file_all_valid() -> None:
    out = io.StringIO()
    assert validate_file(BULK_CSV, today=CSV_TODAY, out=out) == 0
    n = len(_csv_jobs(BULK_CSV))
    assert out.getvalue() == f"{n} jobs: {n} valid, 0 invalid\n"


def test_validate_file_text(tmp_path: Path) -> None:
    out = io.StringIO()

    code = validate_file(_broken_jsonl(tmp_path), today=EXAMPLES_TODAY, out=out)

    lines = out.getvalue().splitlines()
    assert code == 1
    assert re.fullmatch(r"2: not valid JSON at column 2: .+", lines[0])
    assert lines[1] == (
        "4: invoice.comprobante.external_reference: duplicate of line 1 "
        "(same cuit and external_reference)"
    )
    assert lines[-1] == "4 jobs: 2 valid, 2 invalid"
    assert len(lines) == 3


def test_validate_file_json(tmp_path: Path) -> None:
    out = io.StringIO()

    code = validate_file(_broken_jsonl(tmp_path), today=EXAMPLES_TODAY, out=out, as_json=True)

    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 1
    assert objs[0]["line"] == 2
    assert objs[0]["path"] == ""
    assert objs[0]["reason"].startswith("not valid JSON at column 2")
    assert objs[1] == {
        "line": 4,
        "path": "invoice.comprobante.external_reference",
        "reason": "duplicate of line 1 (same cuit and external_reference)",
    }
    assert objs[-1] == {"jobs": 4, "valid": 2, "invalid": 2}


def test_validate_file_csv_paths_name_the_item_line(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    rows[2][header.index("item.cantidad")] = "0"  # line 4, third item of line 2's invoice
    path = _write_csv(tmp_path / "item.csv", [header, *rows])
    out = io.StringIO()

    assert validate_file(path, today=CSV_TODAY, out=out) == 1

    assert out.getvalue().splitlines()[0] == (
        "2: invoice.comprobante.detalle[2].cantidad (line 4): Input should be greater than 0"
    )


@pytest.mark.parametrize("as_json", [False, True])
def test_validate_file_unreadable(tmp_path: Path, as_json: bool) -> None:
    out = io.StringIO()

    assert validate_file(tmp_path / "missing.jsonl", out=out, as_json=as_json) == 2
    assert validate_file(tmp_path, out=out, as_json=as_json, fmt="jsonl") == 2
    assert validate_file(tmp_path / "x.csv", fmt="yaml", out=out, as_json=as_json) == 2  # type: ignore[arg-type]

    text = out.getvalue()
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 3
    if as_json:
        assert all("error" in json.loads(line) for line in lines)
    else:
        assert (
            lines[0]
            == f"error: cannot read {tmp_path / 'missing.jsonl'}: No such file or directory"
        )


def test_validate_file_empty_is_success(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n\n")
    out = io.StringIO()
    assert validate_file(path, out=out) == 0
    assert out.getvalue() == "0 jobs: 0 valid, 0 invalid\n"


def test_validate_file_writes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_file(BULK_CSV, today=CSV_TODAY) == 0
    assert capsys.readouterr().out.endswith("invalid\n")


def test_validate_file_never_shows_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret-looking detail")

    monkeypatch.setattr(bulk_jobs, "validate_envelope", boom)
    out = io.StringIO()

    assert validate_file(_broken_jsonl(tmp_path), out=out) == 2

    assert "secret-looking" not in out.getvalue()
    assert "internal error (RuntimeError)" in out.getvalue()


def test_csv_invoice_with_only_unreadable_rows(tmp_path: Path) -> None:
    header, *rows = _csv_rows()
    path = _write_csv(tmp_path / "bad.csv", [header, *rows])
    data = path.read_bytes().split(b"\n")
    assert b"ORD-2002" in data[4]  # line 5: the only row of its invoice
    data[4] = data[4].replace(b"P\xc3\xa9rez", b"P\xe9rez")
    path.write_bytes(b"\n".join(data))

    jobs = {j.line: j for j in _csv_jobs(path)}

    assert jobs[5].raw is None
    assert jobs[5].envelope is None
    bad_at = data[4].index(b"\xe9") + 1
    assert [e.reason for e in jobs[5].errors] == [
        f"line 5: not valid UTF-8 at byte {bad_at} (save the file as UTF-8)"
    ]
    assert all(j.ok for n, j in jobs.items() if n != 5)


def test_csv_line_break_inside_a_cell_refuses_the_file(tmp_path: Path) -> None:
    text = BULK_CSV.read_text(encoding="utf-8").replace("Resma A4 75g", '"Resma\nA4 75g"', 1)
    path = tmp_path / "multiline.csv"
    path.write_text(text, encoding="utf-8")

    jobs = _csv_jobs(path)

    assert not any(j.ok for j in jobs)
    by_line = {j.line: _reasons(j) for j in jobs}
    assert by_line[2][0].startswith("a quoted cell is not closed")
    assert by_line[3][0].startswith("has ")  # the rest of the row, not a row of its own
