"""`tfq doctor` against the sandbox in each dialect: it tells a user how their account
behaves where the vendor's pages disagree (the live test runs it on a real account)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import load_example
from producers.doctor import cost, render, run_doctor
from worker.invoice.rules import argentina_today
from worker.tenants import Tenants
from worker.tusfacturas.client import TusFacturasClient

from .conftest import RI_CUIT, TENANTS_FILE


@pytest.fixture(scope="module")
def afip() -> Iterator[SandboxProcess]:
    with SandboxProcess(TENANTS_FILE, gap_seconds=0, block_seconds=5) as sb:
        yield sb


def _one_pdv(tmp_path: Path, *, test: bool = False) -> Tenants:
    """The example tenants' PDV 3 alone (its credentials are the sandbox's)."""
    path = tmp_path / "one.toml"
    path.write_text(
        f'[[tenant]]\ncuit = "{RI_CUIT}"\n[[tenant.pdv]]\npunto_venta = 3\napikey = "1135"\n'
        'apitoken = "sandbox-ri-3-apitoken"\nusertoken = "sandbox-ri-3-usertoken"\n'
        f"test = {str(test).lower()}\n"
    )
    return Tenants.load(path)


@pytest.mark.parametrize(
    ("dialect", "reading"),
    [("classic", "next"), ("newest", "last issued"), ("mixed", "last issued"), ("mixed2", "next")],
)
def test_doctor_tells_the_numeracion_reading_and_the_not_found_wording(
    afip: SandboxProcess, dialect: str, reading: str, tmp_path: Path
) -> None:
    afip.reset()
    afip.set_config(gap_seconds=0, dialect=dialect)
    tenants = _one_pdv(tmp_path)
    pdv = tenants.pdv(RI_CUIT, 3)
    client = TusFacturasClient(afip.api_url)
    invoice = load_example("factura_a", argentina_today())["invoice"]
    for i in range(3):  # an account with a history: numbers 1 to 3 issued
        invoice["comprobante"]["external_reference"] = f"DOCTOR-{i}"
        client.nuevo(pdv, invoice)
    report = run_doctor(client, tenants, ["FACTURA A"], [], spacing_seconds=0)
    print("\n".join(render(report)))
    (one,) = report.pdvs
    assert one.numeracion_reading == reading
    assert report.ok, render(report)
    checks = {c.name: c for c in one.checks}
    assert "the next is 4" in checks["numeracion FACTURA A"].detail or reading == "next"
    assert checks["test flag"].ok
    assert "tfq reads it as not found" in checks["not found"].detail
    assert report.paid_requests == cost(tenants, ["FACTURA A"]) == 1


def test_doctor_on_a_fresh_pdv_and_a_wrong_test_flag(afip: SandboxProcess, tmp_path: Path) -> None:
    afip.reset()
    afip.set_config(gap_seconds=0, dialect="newest")
    tenants = _one_pdv(tmp_path)
    report = run_doctor(
        TusFacturasClient(afip.api_url), tenants, ["FACTURA A"], [], spacing_seconds=0
    )
    (one,) = report.pdvs
    assert "nothing issued yet" in {c.name: c for c in one.checks}["numeracion FACTURA A"].detail
    # PDV 3 is a real one; a file that says test = true: the CAE its invoices carry says no.
    client = TusFacturasClient(afip.api_url)
    invoice = load_example("factura_a", argentina_today())["invoice"]
    client.nuevo(tenants.pdv(RI_CUIT, 3), invoice)
    tenants = _one_pdv(tmp_path, test=True)
    report = run_doctor(client, tenants, ["FACTURA A"], [], spacing_seconds=0)
    checks = {c.name: c for c in report.pdvs[0].checks}
    assert not checks["test flag"].ok
    assert not report.ok


def test_doctor_reports_bad_credentials_and_redis(afip: SandboxProcess, tmp_path: Path) -> None:
    afip.reset()
    bad = tmp_path / "tenants.toml"
    bad.write_text(TENANTS_FILE.read_text().replace('apitoken = "', 'apitoken = "x', 1))
    report = run_doctor(
        TusFacturasClient(afip.api_url),
        Tenants.load(bad),
        ["FACTURA B"],
        ["Redis runs without appendonly: a restart can lose queued jobs"],
        spacing_seconds=0,
    )
    first = report.pdvs[0]
    assert not first.ok
    assert "tenant_blocked" in first.checks[0].detail
    assert not report.redis[0].ok
    text = "\n".join(render(report))
    assert "x" + "apitoken" not in text  # no secret in the output
    for tenant in Tenants.load(bad).tenants:
        for pdv in tenant.pdv:
            for secret in pdv.secrets():
                assert secret not in text


def test_tfq_doctor_command(afip: SandboxProcess, redis_url: str) -> None:
    afip.reset()
    afip.set_config(gap_seconds=0, dialect="newest")
    env = {
        **os.environ,
        "TFQ_API_URL": afip.api_url,
        "TFQ_TENANTS_FILE": str(TENANTS_FILE),
        "TFQ_REDIS_URL": redis_url,
    }
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "producers.cli", "doctor", "--json", "--tipo", "FACTURA B"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert time.monotonic() - started < 60
    doc = json.loads(proc.stdout)
    assert {p["numeracion_reading"] for p in doc["pdvs"] if p["ok"]} <= {"last issued", "next"}
    assert doc["paid_requests"] == sum(len(t.pdv) for t in Tenants.load(TENANTS_FILE).tenants)
    # The shared test Redis runs without AOF: the doctor says so, and exits 1.
    assert proc.returncode == (0 if doc["ok"] else 1)
