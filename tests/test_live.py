"""Against the real TusFacturas API: skipped by default (`-m live` runs them).

Needs TFQ_LIVE_TENANTS_FILE (a tenants file with one real CUIT + PDV; a DEV-plan PDV such
as 679 is fine). Only calls that are free of quota and issue nothing are made:
estado_servicios/alertas, numeracion and consulta.
"""

from __future__ import annotations

import os

import pytest

from worker.client import TusFacturasClient
from worker.settings import PRODUCTION_API_URL
from worker.tenants import Pdv, Tenants

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


def test_numeracion_gives_a_next_number(live: tuple[TusFacturasClient, Pdv]) -> None:
    client, pdv = live
    assert client.numeracion(pdv, os.environ.get("TFQ_LIVE_TIPO", "FACTURA B")) >= 1


def test_consulta_of_a_number_never_issued_is_none(live: tuple[TusFacturasClient, Pdv]) -> None:
    client, pdv = live
    tipo = os.environ.get("TFQ_LIVE_TIPO", "FACTURA B")
    next_number = client.numeracion(pdv, tipo)
    assert client.consulta(pdv, tipo, next_number + 1000) is None
