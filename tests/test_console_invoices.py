"""The console's invoice pages over real HTTP (uvicorn), a real Redis and a SQLite archive
filled without a worker: the search (CUIT, reference, number, dates, pages), an invoice
with its amounts and its PDF, the void that queues its credit note (once), CSRF, CUIT
scopes and no secret shown; and one run in a real browser that downloads a PDF."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from ops.testkit.browser import screenshot
from ops.testkit.harness import unique_prefix
from producers.client import InvoiceQueue
from producers.console import invoice_pages
from tests.conftest import MONO_CUIT, RI_CUIT, TENANTS_FILE
from tests.test_accounting_export import issued_record
from tests.test_console import (
    ANA_PASSWORD,
    BEA_PASSWORD,
    Console,
    _csrf,
    serve_console,
)
from worker.archive import db
from worker.archive.pdfs import PdfStore
from worker.archive.repository import Archive, row_from_record
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.store import admin
from worker.store.keys import JobField

TODAY = argentina_today()
EARLY = TODAY - timedelta(days=40)
PDF = b"%PDF-1.4\n% the console's test invoice\n%%EOF\n"
# Job ids as tfq makes them: hex.
A1, B1, B2, B3, OLD, C1 = "0a1", "0b1", "0b2", "0b3", "0b9", "0c1"


def _rows(pdfs: PdfStore) -> list[dict[str, Any]]:
    stored = pdfs.put(f"{RI_CUIT}/{A1}.pdf", PDF)
    return [
        row_from_record(issued_record("factura_a", A1, 12, day=TODAY))
        | {"pdf_path": stored.path, "pdf_sha256": stored.sha256, "pdf_size": stored.size},
        row_from_record(issued_record("servicios", B1, 40, day=TODAY)),
        row_from_record(issued_record("servicios", B2, 41, day=TODAY)),
        row_from_record(issued_record("servicios", B3, 42, day=TODAY)),
        row_from_record(issued_record("servicios", OLD, 30, day=EARLY)),
        row_from_record(issued_record("factura_c", C1, 7, day=TODAY)),  # MONO_CUIT's
    ]


@pytest.fixture
def invoices(redis_url: str, tmp_path: Path) -> Iterator[Console]:
    """The console (as tests/test_console.py's fixture) over an archive of its own, a
    SQLite file with six issued invoices, one of them with its PDF kept."""
    settings = Settings(
        redis_url=redis_url,
        key_prefix=unique_prefix("console-inv"),
        archive_url=f"sqlite:///{tmp_path / 'archive.sqlite3'}",
        pdf_dir=str(tmp_path / "pdfs"),
    )

    def fill(queue: InvoiceQueue) -> None:
        db.migrate(queue.archive.engine)
        Archive(queue.archive.engine).upsert(_rows(PdfStore(settings.pdf_store_url)))

    with serve_console(settings, fill) as console:
        yield console


def _listed(html: str) -> set[str]:
    """The job ids a results page links to."""
    return set(re.findall(r'href="/console/invoices/([0-9a-f]+)"', html))


def _search(http: requests.Session, url: str, **query: str) -> requests.Response:
    params = {k.rstrip("_"): v for k, v in query.items()}
    return http.get(f"{url}/console/invoices", params=params, timeout=10)


def test_the_search_finds_by_cuit_reference_number_and_date(invoices: Console) -> None:
    http, _ = invoices.login("ana", ANA_PASSWORD)
    url = invoices.url
    everything = _search(http, url)
    assert everything.status_code == 200
    assert _listed(everything.text) == {A1, B1, B2, B3, OLD, C1}
    for header in ("Fecha", "Tipo", "PDV-número", "Receptor", "Moneda", "CAE",
                   "External reference"):  # fmt: skip
        assert f'<th scope="col">{header}</th>' in everything.text
    assert '<label for="q-cuit">CUIT</label>' in everything.text  # a form without JS
    assert "00003-00000012" in everything.text
    assert "7612345678" in everything.text  # the CAE
    assert f"REF-{A1}" in everything.text

    assert _listed(_search(http, url, cuit=MONO_CUIT).text) == {C1}
    assert _listed(_search(http, url, cuit=RI_CUIT).text) == {A1, B1, B2, B3, OLD}
    assert _listed(_search(http, url, ref=f"REF-{B2}").text) == {B2}
    assert _listed(_search(http, url, ref="REF-0b").text) == {B1, B2, B3, OLD}
    assert _listed(_search(http, url, ref="REF-%").text) == set()  # taken literally
    assert _listed(_search(http, url, numero="41").text) == {B2}
    assert _listed(_search(http, url, numero="41", cuit=MONO_CUIT).text) == set()
    early = _search(http, url, from_=EARLY.isoformat(), to=(EARLY + timedelta(days=1)).isoformat())
    assert _listed(early.text) == {OLD}
    assert _listed(_search(http, url, from_=TODAY.isoformat()).text) == {A1, B1, B2, B3, C1}
    nothing = _search(http, url, ref="NO-SUCH")
    assert nothing.status_code == 200
    assert "No issued invoices match" in nothing.text

    bad = _search(http, url, from_="20/11/2026", numero="x1", cuit="123")
    assert bad.status_code == 422
    assert "YYYY-MM-DD" in bad.text
    assert "not a valid CUIT" in bad.text
    assert "whole number" in bad.text
    forged = _search(http, url, cursor="not-a-cursor")
    assert forged.status_code == 422
    assert "not a cursor" in forged.text


def test_results_come_a_page_at_a_time(invoices: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invoice_pages, "PAGE_SIZE", 2)
    http, _ = invoices.login("ana", ANA_PASSWORD)
    seen: list[str] = []
    page = _search(http, invoices.url, cuit=RI_CUIT)
    pages = 0
    while True:
        pages += 1
        found = re.findall(r'href="/console/invoices/([0-9a-f]+)"', page.text)
        assert len(found) <= 2
        seen += found
        link = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', page.text)
        if link is None:
            break
        target = link.group(1).replace("&amp;", "&")
        assert f"cuit={RI_CUIT}" in target  # the search is kept
        page = http.get(f"{invoices.url}{target}", timeout=10)
        assert page.status_code == 200
    assert pages == 3
    assert sorted(seen) == sorted({A1, B1, B2, B3, OLD})
    assert len(seen) == len(set(seen))
    assert seen[0] == OLD  # the books' order: the oldest first


def test_an_invoice_shows_its_amounts_result_and_pdf(invoices: Console) -> None:
    http, _ = invoices.login("ana", ANA_PASSWORD)
    page = http.get(f"{invoices.url}/console/invoices/{A1}", timeout=10)
    assert page.status_code == 200
    text = page.text
    assert "FACTURA A 00003-00000012" in text
    for label, amount in (("Neto gravado 21 %", "52000.00"), ("IVA 21 %", "10920.00"),
                          ("IVA 10,5 %", "231.62")):  # fmt: skip
        assert re.search(rf"<th scope=\"row\">{label}</th><td class=\"num\">{amount}</td>", text)
    assert "66983.70" in text
    assert f'href="/console/invoices/{A1}/pdf?kind=a4"' in text
    assert f'href="/console/invoices/{A1}/pdf?kind=ticket"' in text
    assert f'action="/console/invoices/{A1}/void"' in text
    assert "shop.example/hooks" not in text  # no callback URL on the page

    pdf = http.get(f"{invoices.url}/console/invoices/{A1}/pdf?kind=a4", timeout=10)
    assert pdf.status_code == 200
    assert pdf.content == PDF
    assert pdf.headers["content-type"] == "application/pdf"
    disposition = pdf.headers["content-disposition"]
    assert disposition == 'attachment; filename="FACTURA-A-00003-00000012.pdf"'
    ticket = http.get(f"{invoices.url}/console/invoices/{A1}/pdf?kind=ticket", timeout=10)
    assert ticket.status_code == 404
    assert "ticket of invoice" in ticket.text
    none_kept = http.get(f"{invoices.url}/console/invoices/{B1}/pdf", timeout=10)
    assert none_kept.status_code == 404
    assert "PDF of invoice" in none_kept.text
    odd_kind = http.get(f"{invoices.url}/console/invoices/{A1}/pdf?kind=x", timeout=10)
    assert odd_kind.status_code == 422
    assert http.get(f"{invoices.url}/console/invoices/fff", timeout=10).status_code == 404
    assert http.get(f"{invoices.url}/console/invoices/NOT-HEX", timeout=10).status_code == 404


def test_a_void_queues_one_credit_note_and_is_logged(invoices: Console) -> None:
    http, _ = invoices.login("ana", ANA_PASSWORD)
    url = f"{invoices.url}/console/invoices/{A1}"
    csrf = _csrf(http.get(url, timeout=10).text)

    forged = http.post(f"{url}/void", data={"csrf": "forged", "reason": "x"},
                       allow_redirects=False, timeout=10)  # fmt: skip
    assert forged.status_code == 403
    assert invoices.queue.job_id(RI_CUIT, f"NC-{A1}") is None
    no_reason = http.post(f"{url}/void", data={"csrf": csrf}, allow_redirects=False, timeout=10)
    assert no_reason.status_code == 422
    assert "Reason" in no_reason.text

    done = http.post(
        f"{url}/void", data={"csrf": csrf, "reason": "wrong customer"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert done.status_code == 303
    note_id = invoices.queue.job_id(RI_CUIT, f"NC-{A1}")
    assert note_id is not None
    assert done.headers["location"] == f"/console/invoices/{note_id}"
    record = invoices.queue.store.job(note_id)
    assert record is not None
    assert record[JobField.TIPO] == "NOTA DE CREDITO A"
    assert record[JobField.STATUS] == "queued"

    note = http.get(f"{invoices.url}{done.headers['location']}", timeout=10)
    assert note.status_code == 200
    assert "NOTA DE CREDITO A" in note.text
    assert f'href="/console/invoices/{A1}"' in note.text  # what it credits
    assert "Queue the credit note" not in note.text  # a note is not voided
    original = http.get(url, timeout=10).text
    assert note_id in original  # the invoice lists its note

    again = http.post(f"{url}/void", data={"csrf": csrf, "reason": "wrong customer"}, timeout=10)
    assert again.status_code == 200
    assert "already voided" in again.text
    assert len(invoices.queue.store.references_starting(RI_CUIT, f"NC-{A1}")) == 1
    more = http.post(
        f"{url}/void", data={"csrf": csrf, "reason": "again", "amount": "10.00"}, timeout=10
    )
    assert more.status_code == 409
    assert "already credited" in more.text

    actions = [(e["action"], e["target"], e.get("note"), e.get("duplicate"))
               for e in admin.console_actions(invoices.queue.store, 10)]  # fmt: skip
    assert actions[:2] == [("void", A1, note_id, True), ("void", A1, note_id, False)]
    assert "wrong customer" in http.get(f"{invoices.url}/console/log", timeout=10).text


def test_a_void_that_cannot_be_shows_why(invoices: Console) -> None:
    http, _ = invoices.login("ana", ANA_PASSWORD)
    url = f"{invoices.url}/console/invoices/{C1}"
    csrf = _csrf(http.get(url, timeout=10).text)
    too_much = http.post(
        f"{url}/void", data={"csrf": csrf, "reason": "x", "amount": "999999"}, timeout=10
    )
    assert too_much.status_code == 409
    assert "more than the invoice&#39;s total" in too_much.text
    not_a_number = http.post(
        f"{url}/void", data={"csrf": csrf, "reason": "x", "amount": "lots"}, timeout=10
    )
    assert not_a_number.status_code == 422
    assert "not a number" in not_a_number.text
    assert invoices.queue.store.references_starting(MONO_CUIT, "NC-") == []


def test_an_operator_sees_only_their_cuits_invoices(invoices: Console) -> None:
    http, _ = invoices.login("bea", BEA_PASSWORD)
    url = invoices.url
    assert _listed(_search(http, url).text) == {C1}
    assert _listed(_search(http, url, cuit=RI_CUIT).text) == set()
    assert _listed(_search(http, url, ref=f"REF-{A1}").text) == set()
    assert http.get(f"{url}/console/invoices/{A1}", timeout=10).status_code == 404
    pdf = http.get(f"{url}/console/invoices/{A1}/pdf", timeout=10)
    assert pdf.status_code == 404
    assert not pdf.content.startswith(b"%PDF")
    csrf = _csrf(http.get(f"{url}/console/invoices/{C1}", timeout=10).text)
    refused = http.post(f"{url}/console/invoices/{A1}/void", data={"csrf": csrf, "reason": "x"},
                        allow_redirects=False, timeout=10)  # fmt: skip
    assert refused.status_code == 404
    assert invoices.queue.job_id(RI_CUIT, f"NC-{A1}") is None


def test_no_invoice_page_shows_a_secret(invoices: Console) -> None:
    http, _ = invoices.login("ana", ANA_PASSWORD)
    secrets_in_file = re.findall(
        r'(?:apitoken|usertoken|apikey)\s*=\s*"([^"]+)"', TENANTS_FILE.read_text()
    )
    assert secrets_in_file
    for path in ("/invoices", f"/invoices?cuit={RI_CUIT}", f"/invoices/{A1}", f"/invoices/{C1}"):
        text = http.get(f"{invoices.url}/console{path}", timeout=10).text
        for secret in secrets_in_file:
            assert secret not in text, path
        assert "scrypt$" not in text


def test_an_operator_finds_an_invoice_and_downloads_its_pdf(
    page: Page, invoices: Console, tmp_path: Path
) -> None:
    page.goto(f"{invoices.url}/console/login?next=/invoices")
    page.get_by_label("Operator").fill("ana")
    page.get_by_label("Password").fill(ANA_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/invoices$"))
    page.get_by_label("CUIT").fill(RI_CUIT)
    page.get_by_label("External reference").fill(f"REF-{A1}")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/console/invoices\?"))
    row = page.get_by_role("row").filter(has_text=f"REF-{A1}")
    expect(row).to_contain_text("66983.70")
    screenshot(page, "console-invoices")
    row.get_by_role("link", name="FACTURA A 00003-00000012").click()
    expect(page.get_by_role("heading", name="FACTURA A 00003-00000012")).to_be_visible()
    screenshot(page, "console-invoice")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download the PDF (A4)").click()
    download = dl.value
    assert download.suggested_filename == "FACTURA-A-00003-00000012.pdf"
    saved = tmp_path / "downloaded.pdf"
    download.save_as(saved)
    assert saved.read_bytes() == PDF
