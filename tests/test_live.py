"""Against the real TusFacturas API: skipped by default (`-m live` runs them).

Needs TFQ_LIVE_TENANTS_FILE (a tenants file with one real CUIT + PDV; a DEV-plan PDV such
as 679 is fine). Nothing is issued. The queries are free; numeracion is billed on the
newest page ("1 request = 1 llamada"): each test that asks it says so.
"""

from __future__ import annotations

import os

import pytest

from producers.doctor import render, run_doctor
from worker.settings import PRODUCTION_API_URL
from worker.tenants import Pdv, Tenants
from worker.tusfacturas.client import TusFacturasClient

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def live() -> tuple[TusFacturasClient, Pdv]:
    path = os.environ.get("TFQ_LIVE_TENANTS_FILE")
    if not path:
        pytest.skip("TFQ_LIVE_TENANTS_FILE is not set")
    tenant = Tenants.load(path).tenants[0]
    client = TusFacturasClient(os.environ.get("TFQ_LIVE_API_URL", PRODUCTION_API_URL))
    return client, tenant.pdv[0]


def test_service_status_answers(live: tuple[TusFacturasClient, Pdv]) -> None:
    client, pdv = live
    status = client.estado_servicios(pdv)
    assert isinstance(status.ok, bool)


def test_numeracion_gives_a_number(live: tuple[TusFacturasClient, Pdv]) -> None:
    """One billed request. 0 is a PDV with nothing issued under the newest page's reading."""
    client, pdv = live
    assert client.numeracion(pdv, os.environ.get("TFQ_LIVE_TIPO", "FACTURA B")) >= 0


def test_a_number_never_issued_is_not_found(live: tuple[TusFacturasClient, Pdv]) -> None:
    client, pdv = live
    tipo = os.environ.get("TFQ_LIVE_TIPO", "FACTURA B")
    assert client.lookup(pdv, tipo, 99_999_999) is None


def test_doctor_on_the_real_account(live: tuple[TusFacturasClient, Pdv]) -> None:
    """`tfq doctor`'s checks on a real account: one billed request (numeracion) per PDV."""
    client, _ = live
    tenants = Tenants.load(os.environ["TFQ_LIVE_TENANTS_FILE"])
    report = run_doctor(client, tenants, [os.environ.get("TFQ_LIVE_TIPO", "FACTURA B")], [])
    print("\n".join(render(report)))
    pdv = report.pdvs[0]
    assert {c.name for c in pdv.checks} >= {"credentials and PDV", "clock", "not found"}
    assert pdv.numeracion_reading in ("next", "last issued")
    assert report.ok, render(report)
