"""Libro IVA Digital ventas: records worked out by hand from AFIP's layout (RG 3685 Anexo
II, REGINFO_CV_VENTAS_CBTE and REGINFO_CV_VENTAS_ALICUOTAS), and the command that writes
them from a real archive.

Each expected line is written field by field, in the layout's order, with the field's
name; comparisons slice both lines by the layout's widths so a failure names the field.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ops.testkit.examples import load_example
from producers.cli import app
from tests.test_accounting_export import issued_record
from worker.accounting import libro_iva
from worker.accounting.libro_iva import (
    ALICUOTA_LAYOUT,
    ALICUOTA_LENGTH,
    CBTE_LAYOUT,
    CBTE_LENGTH,
    FieldSpec,
    LibroIvaError,
    alicuota_records,
    comprobante_record,
    write_libro_iva,
)
from worker.accounting.sales import Sale, sale_of
from worker.archive import db
from worker.archive.repository import Archive, row_from_record
from worker.archive.schema import ArchivedJob
from worker.invoice.rules import Subtotals
from worker.settings import get_settings

TODAY = date(2026, 11, 20)  # the examples' date
ISSUER = "20111111112"  # the examples' CUIT (factura_c's is another)
runner = CliRunner()


def sale(example: str, numero: int) -> Sale:
    """The sale the archive gives back for `example` issued as `numero`."""
    env = load_example(example)
    request = copy.deepcopy(env["invoice"])
    request["comprobante"]["numero"] = numero
    row = ArchivedJob(
        job_id=f"j-{example}", cuit=env["cuit"], external_reference="ref",
        punto_venta=request["comprobante"]["punto_venta"], numero=numero,
        cae="76123456789012", cae_vencimiento="30/11/2026", request=request,
    )  # fmt: skip
    return sale_of(row)


def split(line: str, layout: tuple[FieldSpec, ...]) -> dict[str, str]:
    out, at = {}, 0
    for spec in layout:
        out[spec.name] = line[at : at + spec.width]
        at += spec.width
    assert at == len(line), f"line of {len(line)} characters, layout of {at}"
    return out


def assert_record(got: str, expected: str, layout: tuple[FieldSpec, ...], length: int) -> None:
    assert len(expected) == length  # (the expectation itself is well formed)
    assert len(got) == length, f"record of {len(got)} characters, not {length}"
    mine, theirs = split(got, layout), split(expected, layout)
    for name in theirs:
        assert mine[name] == theirs[name], f"field {name}: {mine[name]!r} != {theirs[name]!r}"


def cbte(*fields: str) -> str:
    return "".join(fields)


# The comprobantes fields most sales leave at zero (campos 10 to 16, 15 digits each).
ZERO = "000000000000000"


# --- FACTURA A: two rates and an IIBB perception ---------------------------------------


def test_factura_a_with_two_rates_and_iibb() -> None:
    s = sale("factura_a", 123)
    expected = cbte(
        "20261120",  # 1 fecha: 20/11/2026 as AAAAMMDD
        "001",  # 2 tipo de comprobante: FACTURA A
        "00003",  # 3 punto de venta 3
        "00000000000000000123",  # 4 número desde (20)
        "00000000000000000123",  # 5 número hasta: the same
        "80",  # 6 código de documento: CUIT
        "00000000030712293841",  # 7 CUIT 30712293841, zero-padded to 20
        "VOUSYS SRL                    ",  # 8 denominación, 30 left-aligned
        "000000006698370",  # 9 importe total 66983.70
        ZERO,  # 10 no gravado
        ZERO,  # 11 percepción a no categorizados
        ZERO,  # 12 exento
        ZERO,  # 13 percepciones impuestos nacionales
        "000000000162618",  # 14 percepciones IIBB 1626.18 (tributo tipo 7)
        ZERO,  # 15 percepciones municipales
        ZERO,  # 16 impuestos internos
        "PES",  # 17 moneda
        "0001000000",  # 18 tipo de cambio 1.000000
        "2",  # 19 cantidad de alícuotas: 10.5 and 21
        " ",  # 20 código de operación: blank (all gravado)
        ZERO,  # 21 otros tributos
        "00000000",  # 22 fecha de vencimiento de pago: not informed
    )
    assert_record(comprobante_record(s), expected, CBTE_LAYOUT, CBTE_LENGTH)

    got = alicuota_records(s)
    assert len(got) == 2
    assert_record(got[0], cbte(
        "001",  # 1 tipo de comprobante
        "00003",  # 2 punto de venta
        "00000000000000000123",  # 3 número
        "000000000220590",  # 4 neto gravado 2205.90
        "0004",  # 5 alícuota 10.5 %
        "000000000023162",  # 6 IVA 231.62
    ), ALICUOTA_LAYOUT, ALICUOTA_LENGTH)  # fmt: skip
    assert_record(got[1], cbte(
        "001",  # 1 tipo de comprobante
        "00003",  # 2 punto de venta
        "00000000000000000123",  # 3 número
        "000000005200000",  # 4 neto gravado 52000.00
        "0005",  # 5 alícuota 21 %
        "000000001092000",  # 6 IVA 10920.00
    ), ALICUOTA_LAYOUT, ALICUOTA_LENGTH)  # fmt: skip


# --- FACTURA B and its credit note ------------------------------------------------------


def test_factura_b_informs_its_alicuota() -> None:
    s = sale("factura_b", 45)
    expected = cbte(
        "20261120",  # 1 fecha
        "006",  # 2 tipo: FACTURA B
        "00679",  # 3 punto de venta 679
        "00000000000000000045",  # 4 número desde
        "00000000000000000045",  # 5 número hasta
        "96",  # 6 código de documento: DNI
        "00000000000028765432",  # 7 DNI 28765432
        "Juan Perez                    ",  # 8 "Juan Pérez" without the accent
        "000000003600000",  # 9 importe total 36000.00
        ZERO,  # 10 no gravado
        ZERO,  # 11 percepción a no categorizados
        ZERO,  # 12 exento
        ZERO,  # 13 percepciones nacionales
        ZERO,  # 14 percepciones IIBB
        ZERO,  # 15 percepciones municipales
        ZERO,  # 16 impuestos internos
        "PES",  # 17 moneda
        "0001000000",  # 18 tipo de cambio 1
        "1",  # 19 cantidad de alícuotas
        " ",  # 20 código de operación
        ZERO,  # 21 otros tributos
        "00000000",  # 22 vencimiento de pago
    )
    assert_record(comprobante_record(s), expected, CBTE_LAYOUT, CBTE_LENGTH)
    [line] = alicuota_records(s)
    assert_record(line, cbte(
        "006",  # 1 tipo
        "00679",  # 2 punto de venta
        "00000000000000000045",  # 3 número
        "000000002975207",  # 4 neto 24793.39 + 2 × 2479.34 = 29752.07
        "0005",  # 5 alícuota 21 %
        "000000000624793",  # 6 IVA round(29752.07 × 0.21) = 6247.93
    ), ALICUOTA_LAYOUT, ALICUOTA_LENGTH)  # fmt: skip


def test_nota_de_credito_b_is_told_apart_by_its_tipo_with_positive_amounts() -> None:
    s = sale("nota_credito_b", 46)
    expected = cbte(
        "20261120",  # 1 fecha
        "008",  # 2 tipo: NOTA DE CREDITO B
        "00679",  # 3 punto de venta
        "00000000000000000046",  # 4 número desde
        "00000000000000000046",  # 5 número hasta
        "96",  # 6 DNI
        "00000000000028765432",  # 7 número de documento
        "Juan Perez                    ",  # 8 denominación
        "000000000300000",  # 9 importe total 3000.00 (not negative)
        ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO,  # 10 to 16
        "PES",  # 17 moneda
        "0001000000",  # 18 tipo de cambio
        "1",  # 19 cantidad de alícuotas
        " ",  # 20 código de operación
        ZERO,  # 21 otros tributos
        "00000000",  # 22 vencimiento de pago
    )  # fmt: skip
    assert_record(comprobante_record(s), expected, CBTE_LAYOUT, CBTE_LENGTH)
    [line] = alicuota_records(s)
    assert_record(line, cbte(
        "008",  # 1 tipo
        "00679",  # 2 punto de venta
        "00000000000000000046",  # 3 número
        "000000000247934",  # 4 neto 2479.34
        "0005",  # 5 alícuota 21 %
        "000000000052066",  # 6 IVA round(2479.34 × 0.21 = 520.6614) = 520.66
    ), ALICUOTA_LAYOUT, ALICUOTA_LENGTH)  # fmt: skip


# --- FACTURA C: no alícuotas ------------------------------------------------------------


def test_factura_c_has_no_alicuota_records() -> None:
    s = sale("factura_c", 381)
    expected = cbte(
        "20261120",  # 1 fecha
        "011",  # 2 tipo: FACTURA C
        "00002",  # 3 punto de venta 2
        "00000000000000000381",  # 4 número desde
        "00000000000000000381",  # 5 número hasta
        "99",  # 6 código de documento: sin identificar (OTRO)
        "00000000000000000000",  # 7 número 0
        "Consumidor Final              ",  # 8 denominación
        "000000000485000",  # 9 importe total 4850.00
        ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO,  # 10 to 16
        "PES",  # 17 moneda
        "0001000000",  # 18 tipo de cambio
        "0",  # 19 cantidad de alícuotas: none for C
        " ",  # 20 código de operación
        ZERO,  # 21 otros tributos
        "00000000",  # 22 vencimiento de pago
    )  # fmt: skip
    assert_record(comprobante_record(s), expected, CBTE_LAYOUT, CBTE_LENGTH)
    assert alicuota_records(s) == []


# --- foreign currency -------------------------------------------------------------------


def test_dollar_invoice_keeps_its_amounts_and_cotizacion() -> None:
    s = sale("factura_dolares", 124)
    expected = cbte(
        "20261120",  # 1 fecha
        "001",  # 2 tipo: FACTURA A
        "00003",  # 3 punto de venta
        "00000000000000000124",  # 4 número desde
        "00000000000000000124",  # 5 número hasta
        "80",  # 6 CUIT
        "00000000033693450239",  # 7 CUIT 33693450239
        "Importadora del Plata SA      ",  # 8 denominación
        "000000000174240",  # 9 importe total USD 1742.40 (the invoice's currency)
        ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO,  # 10 to 16
        "DOL",  # 17 moneda: AFIP's code, as TusFacturas sends it
        "1415500000",  # 18 tipo de cambio 1415.500000 (4 integers, 6 decimals)
        "1",  # 19 cantidad de alícuotas
        " ",  # 20 código de operación
        ZERO,  # 21 otros tributos
        "00000000",  # 22 vencimiento de pago
    )  # fmt: skip
    assert_record(comprobante_record(s), expected, CBTE_LAYOUT, CBTE_LENGTH)
    [line] = alicuota_records(s)
    assert_record(line, cbte(
        "001",  # 1 tipo
        "00003",  # 2 punto de venta
        "00000000000000000124",  # 3 número
        "000000000144000",  # 4 neto USD 12 × 120 = 1440.00
        "0005",  # 5 alícuota 21 %
        "000000000030240",  # 6 IVA USD 302.40
    ), ALICUOTA_LAYOUT, ALICUOTA_LENGTH)  # fmt: skip


# --- the layout's other rules -----------------------------------------------------------


def _subtotals(**amounts: Any) -> Subtotals:
    zero = Decimal(0)
    base: dict[str, Any] = dict(net={}, vat={}, exento=zero, no_gravado=zero, final=zero,
                                tributos=zero, total=zero)  # fmt: skip
    return Subtotals(**(base | amounts))


def test_exento_only_a_informs_one_zero_alicuota_and_codigo_e() -> None:
    s = dataclasses.replace(
        sale("factura_a", 5), subtotals=_subtotals(exento=Decimal("100.00")),
        total=Decimal("100.00"), tributos_by_tipo={},
    )  # fmt: skip
    fields = split(comprobante_record(s), CBTE_LAYOUT)
    assert fields["exento"] == "000000000010000"
    assert fields["cantidad_alicuotas"] == "1"
    assert fields["codigo_operacion"] == "E"
    [line] = alicuota_records(s)
    got = split(line, ALICUOTA_LAYOUT)
    assert (got["neto_gravado"], got["alicuota"], got["impuesto_liquidado"]) == (
        ZERO, "0003", ZERO,
    )  # fmt: skip


def test_export_books_exento_with_codigo_x_and_no_alicuotas() -> None:
    s = dataclasses.replace(
        sale("factura_dolares", 9), tipo="FACTURA E", tipo_code=19,
        subtotals=_subtotals(final=Decimal("500.00")), total=Decimal("500.00"),
    )  # fmt: skip
    fields = split(comprobante_record(s), CBTE_LAYOUT)
    assert fields["tipo_comprobante"] == "019"
    assert fields["exento"] == "000000000050000"
    assert (fields["cantidad_alicuotas"], fields["codigo_operacion"]) == ("0", "X")
    assert alicuota_records(s) == []


def test_percepcion_iva_and_nacionales_go_to_campo_13() -> None:
    s = dataclasses.replace(
        sale("factura_a", 5),
        tributos_by_tipo={6: Decimal("10.00"), 1: Decimal("2.50"), 7: Decimal("1.00")},
    )
    fields = split(comprobante_record(s), CBTE_LAYOUT)
    assert fields["percepciones_nacionales"] == "000000000001250"
    assert fields["percepciones_iibb"] == "000000000000100"
    assert fields["otros_tributos"] == ZERO


def test_a_value_that_does_not_fit_names_the_invoice_and_the_field() -> None:
    s = dataclasses.replace(sale("factura_dolares", 124), cotizacion=Decimal("10000"))
    with pytest.raises(LibroIvaError, match=r"FACTURA A 00003-00000124 .*tipo_cambio"):
        comprobante_record(s)
    s = dataclasses.replace(sale("factura_a", 123), total=Decimal("10000000000000"))
    with pytest.raises(LibroIvaError, match=r"j-factura_a.*importe_total"):
        comprobante_record(s)


def test_a_wrong_width_in_the_table_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tuple(
        dataclasses.replace(f, width=31) if f.name == "denominacion" else f for f in CBTE_LAYOUT
    )
    monkeypatch.setattr(libro_iva, "CBTE_LAYOUT", wrong)
    with pytest.raises(LibroIvaError, match="record of 267 characters, not 266"):
        comprobante_record(sale("factura_a", 123))


def test_names_are_written_in_ascii() -> None:
    s = dataclasses.replace(sale("factura_b", 1), razon_social="Ñandú Peñalosa Güemes — Cía.")
    fields = split(comprobante_record(s), CBTE_LAYOUT)
    assert fields["denominacion"] == "Nandu Penalosa Guemes ? Cia.  "


def test_write_uses_crlf_and_leaves_no_file_when_a_sale_does_not_fit(tmp_path: Path) -> None:
    good = sale("factura_a", 123)
    result = write_libro_iva([good], tmp_path, ISSUER, date(2026, 11, 1))
    assert result.comprobantes_path.name == "20111111112_202611_VENTAS_CBTE.txt"
    assert result.alicuotas_path.name == "20111111112_202611_VENTAS_ALICUOTAS.txt"
    assert result.comprobantes_path.read_bytes().endswith(b"\r\n")
    assert result.alicuotas_path.read_bytes().count(b"\r\n") == 2

    bad = dataclasses.replace(good, numero=10**20)
    with pytest.raises(LibroIvaError, match="numero_desde"):
        write_libro_iva([good, bad], tmp_path / "other", ISSUER, date(2026, 11, 1))
    assert not (tmp_path / "other").exists()


# --- through the command, on a real SQLite archive -------------------------------------


@pytest.fixture
def archive_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    url = f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    engine = db.engine_for(url)
    db.migrate(engine)
    monkeypatch.setenv("TFQ_ARCHIVE_URL", url)
    get_settings.cache_clear()  # settings are read once per process
    yield Archive(engine)
    get_settings.cache_clear()


def test_command_writes_both_files_from_the_archive(archive_env: Archive, tmp_path: Path) -> None:
    archive_env.upsert([
        row_from_record(issued_record("factura_a", "a1", 123)),
        row_from_record(issued_record("factura_b", "b1", 45)),
        row_from_record(issued_record("nota_credito_b", "nc1", 46)),
        row_from_record(issued_record("factura_dolares", "usd1", 124)),
        row_from_record(issued_record("factura_c", "c1", 381)),  # another CUIT: not in this book
        row_from_record(issued_record("factura_b", "bad1", 0, status="rejected")),  # not issued
    ])  # fmt: skip
    out = tmp_path / "libro"
    result = runner.invoke(
        app, ["invoices", "libro-iva", "--period", "2026-11", "--cuit", ISSUER, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    cbte_path = out / "20111111112_202611_VENTAS_CBTE.txt"
    alicuotas_path = out / "20111111112_202611_VENTAS_ALICUOTAS.txt"
    assert f"{cbte_path}: 4 comprobantes" in result.output
    assert f"{alicuotas_path}: 5 alícuotas records" in result.output
    assert "total PES: 102983.70 facturas y débitos, 3000.00 notas de crédito" in result.output
    assert "total DOL: 1742.40" in result.output

    cbte_data, ali_data = cbte_path.read_bytes(), alicuotas_path.read_bytes()
    assert cbte_data.endswith(b"\r\n")
    assert ali_data.endswith(b"\r\n")
    cbtes = cbte_data.decode("latin-1").split("\r\n")[:-1]
    alicuotas = ali_data.decode("latin-1").split("\r\n")[:-1]
    assert [len(line) for line in cbtes] == [CBTE_LENGTH] * 4
    assert [len(line) for line in alicuotas] == [ALICUOTA_LENGTH] * 5
    assert not any("\n" in line or "\r" in line for line in cbtes + alicuotas)
    # The books' order (date, CUIT, punto de venta, tipo, number) and the records built
    # from the same sales as above.
    assert sorted(cbtes) == sorted(
        comprobante_record(sale(name, n))
        for name, n in [("factura_a", 123), ("factura_b", 45), ("nota_credito_b", 46),
                        ("factura_dolares", 124)]
    )  # fmt: skip

    doc = json.loads(
        runner.invoke(app, ["invoices", "libro-iva", "--period", "2026-11", "--cuit", ISSUER,
                            "-o", str(out), "--json"]).output
    )  # fmt: skip
    assert (doc["comprobantes"], doc["alicuotas"]) == (4, 5)
    assert doc["comprobantes_path"] == str(cbte_path)
    assert doc["totals"]["DOL"] == {"facturas_y_debitos": "1742.40", "notas_de_credito": "0.00"}


def test_command_writes_empty_files_for_an_empty_period(
    archive_env: Archive, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["invoices", "libro-iva", "--period", "2026-10", "--cuit", ISSUER,
              "-o", str(tmp_path)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0 comprobantes" in result.output
    assert (tmp_path / "20111111112_202610_VENTAS_CBTE.txt").read_bytes() == b""
    assert (tmp_path / "20111111112_202610_VENTAS_ALICUOTAS.txt").read_bytes() == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-13", "--cuit", ISSUER], "--period must be a month as YYYY-MM"),
        (["--period", "11/2026", "--cuit", ISSUER], "--period must be a month as YYYY-MM"),
        (["--period", "2026-11", "--cuit", "2011111111"], "must be 11 digits"),
        (["--period", "2026-11", "--cuit", "20111111113"], "check digit"),
    ],
)
def test_command_refuses_a_bad_period_or_cuit(
    archive_env: Archive, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["invoices", "libro-iva", *args, "-o", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "x").exists()
