"""`tfq invoices export` and `GET /v1/invoices`: the period's sales from a real archive
(SQLite and PostgreSQL), credit notes negative, totals at the end, paging."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from ops.testkit.examples import load_example
from ops.testkit.harness import serving, unique_prefix
from producers.client import InvoiceQueue
from producers.http.app import create_app
from tests.conftest import MONO_CUIT, RI_CUIT
from tests.test_http import assert_problem, auth, tenants_with_clients
from worker.accounting import sales as sales_module
from worker.accounting.export import COLUMNS, sale_row, write_csv, write_jsonl
from worker.accounting.sales import Period, Sales, decode_cursor
from worker.archive import db
from worker.archive.repository import Archive, row_from_record
from worker.invoice.envelope import validate_envelope
from worker.settings import Settings
from worker.store.jobs import pack_envelope

DAY = date(2026, 11, 20)


def issued_record(name: str, job_id: str, numero: int, *, day: date = DAY, **extra: Any) -> dict:
    """The Redis record of an example issued as `numero` on `day`."""
    example = load_example(name, day)
    example["invoice"]["comprobante"]["external_reference"] = f"REF-{job_id}"
    env = validate_envelope(example, today=day)
    c = env.invoice.comprobante
    return {
        "id": job_id, "cuit": env.cuit, "ref": f"REF-{job_id}", "pv": str(c.punto_venta),
        "tipo": c.tipo, "status": "issued", "env": pack_envelope(env), "attempts": "1",
        "created": "1764000000.5", "updated": "1764000001.5", "finished": "1764000001.5",
        "log": "[]", "numero": str(numero), "cae": f"7612345678{numero:04d}",
        "cae_vencimiento": "30/11/2026", **extra,
    }  # fmt: skip


@pytest.fixture
def archive(archive_url: str) -> Archive:
    engine = db.engine_for(archive_url)
    db.migrate(engine)
    archive = Archive(engine)
    archive.upsert(
        [
            row_from_record(issued_record("factura_a", "a1", 12)),
            row_from_record(issued_record("factura_b", "b1", 40)),
            row_from_record(issued_record("nota_credito_b", "n1", 5)),
            row_from_record(issued_record("factura_dolares", "d1", 13)),
            row_from_record(issued_record("factura_c", "c1", 7)),  # MONO_CUIT's
            row_from_record(issued_record("factura_b", "b2", 41, day=date(2026, 12, 1))),
            row_from_record(issued_record("factura_b", "t1", 3, test_mode="1")),
        ]
    )
    return archive


NOV = Period(date(2026, 11, 1), date(2026, 11, 30))


def test_a_sale_is_broken_down_by_rate_and_a_credit_note_is_negative(archive: Archive) -> None:
    rows = {r["job_id"]: r for r in map(sale_row, Sales(archive.engine).all(NOV))}
    assert set(rows) == {"a1", "b1", "n1", "d1", "c1"}  # not December's, nor a test PDV's
    a = rows["a1"]
    assert (a["tipo"], a["tipo_codigo"], a["numero"]) == ("FACTURA A", 1, 12)
    assert (a["documento_tipo"], a["documento_nro"], a["condicion_iva"]) == (
        "CUIT", "30712293841", "RI"
    )  # fmt: skip
    assert a["neto_gravado_21"] == Decimal("52000.00")
    assert a["iva_21"] == Decimal("10920.00")
    assert a["neto_gravado_10_5"] == Decimal("2205.90")
    assert a["iva_10_5"] == Decimal("231.62")
    assert a["tributos"] == Decimal("1626.18")
    assert a["total"] == Decimal("66983.70")
    assert a["cae"] == "76123456780012"
    n = rows["n1"]
    assert n["tipo_codigo"] == 8
    assert n["total"] == Decimal("-3000.00")
    assert n["neto_gravado_21"] == Decimal("-2479.34")
    assert n["iva_21"] == Decimal("-520.66")
    assert rows["d1"]["moneda"] == "DOL"
    c = rows["c1"]  # a C invoice discriminates no VAT
    assert (c["sin_iva_discriminado"], c["neto_gravado_21"], c["total"]) == (
        Decimal("4850.00"), Decimal("0.00"), Decimal("4850.00")
    )  # fmt: skip


def test_csv_ends_with_totals_per_currency_and_in_pesos(archive: Archive) -> None:
    out = io.StringIO()
    totals = write_csv(Sales(archive.engine).all(NOV), out)
    lines = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert totals.count == 5
    assert [r["fecha"] for r in lines[-3:]] == ["TOTAL"] * 3
    by = {r["tipo"]: r for r in lines[-3:]}
    assert by["TOTAL PES"]["total"] == str(
        Decimal("66983.70") + Decimal("36000.00") - 3000 + Decimal("4850.00")
    )
    assert by["TOTAL PES"]["iva_21"] == str(
        Decimal("10920.00") + Decimal("6247.93") - Decimal("520.66")
    )
    assert by["TOTAL DOL"]["total"] == "1742.40"
    dol = next(r for r in lines[:-3] if r["moneda"] == "DOL")
    pesos = Decimal(by["TOTAL PES"]["total"]) + Decimal("1742.40") * Decimal(dol["cotizacion"])
    assert Decimal(by["TOTAL EN PESOS"]["total"]) == pesos.quantize(Decimal("0.01"))
    assert list(lines[0]) == COLUMNS


def test_jsonl_is_one_record_per_sale_then_the_totals(archive: Archive) -> None:
    out = io.StringIO()
    write_jsonl(Sales(archive.engine).all(NOV), out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["record"] for r in records] == ["invoice"] * 5 + ["totals"]
    assert records[-1]["count"] == 5
    # Books' order: date, CUIT, PDV, tipo, number.
    keys = [(r["fecha"], r["cuit"], r["punto_venta"], r["tipo"], r["numero"]) for r in records[:-1]]
    assert keys == sorted(keys)


def test_pages_follow_a_cursor_to_the_end(archive: Archive) -> None:
    sales = Sales(archive.engine)
    seen, cursor = [], None
    for _ in range(10):
        page = sales.page(NOV, cursor=cursor, limit=1)
        seen += [s.job_id for s in page.sales]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [s.job_id for s in sales.all(NOV)]
    assert len(seen) == 5
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor("not-a-cursor")


def test_the_cli_writes_the_file_and_refuses_a_backwards_period(
    archive: Archive, archive_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "TFQ_ARCHIVE_URL": archive_url}
    out = tmp_path / "ventas.csv"
    cmd = [sys.executable, "-m", "producers.cli", "invoices", "export"]
    done = subprocess.run(
        [*cmd, "--from", "2026-11-01", "--to", "30/11/2026", "-o", str(out)],
        check=False, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5 invoices and notes" in done.stdout
    assert out.read_text().count("\n") == 1 + 5 + 3
    bad = subprocess.run(
        [*cmd, "--from", "2026-12-01", "--to", "2026-11-01"],
        check=False, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--from" in bad.stderr


def test_the_intake_pages_a_clients_sales_with_totals_on_the_last_page(
    archive: Archive, archive_url: str, redis_url: str
) -> None:
    settings = Settings(
        redis_url=redis_url, key_prefix=unique_prefix("books"), archive_url=archive_url
    )
    queue = InvoiceQueue(settings=settings, key_prefix=settings.key_prefix)
    app = create_app(settings, queue=queue, tenants=tenants_with_clients())
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    with serving(app) as url, requests.Session() as http:

        def get(**params: Any) -> requests.Response:
            return http.get(
                f"{url}/v1/invoices", params=period | params, headers=auth(), timeout=30
            )

        seen, cursor, body = [], None, {}
        for _ in range(10):
            reply = get(limit=2, **({"cursor": cursor} if cursor else {}))
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["totals"] is None or body["next_cursor"] is None
            seen += [r["job_id"] for r in body["invoices"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        # The shop client sees RI_CUIT's sales only: not the factura C of MONO_CUIT.
        assert seen == [s.job_id for s in Sales(archive.engine).all(NOV) if s.cuit == RI_CUIT]
        assert body["totals"]["count"] == len(seen)
        assert_problem(get(cuit=MONO_CUIT), 403, "forbidden-cuit")
        assert_problem(get(cursor="zz"), 422, "invalid-cursor")
        assert_problem(get(**{"from": "2026-12-01"}), 422, "invalid-period")


def test_a_page_never_exceeds_the_largest_and_still_says_what_follows(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sales_module, "PAGE_MAX", 2)
    page = Sales(archive.engine).page(NOV, limit=10)
    assert len(page.sales) == 2
    assert page.next_cursor is not None
