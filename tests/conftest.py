"""Shared fixtures: the example tenants, a sandbox over real HTTP, a Redis URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import EXAMPLES_DIR
from worker.tenants import Pdv, Tenants

TENANTS_FILE = EXAMPLES_DIR / "tenants.toml"
RI_CUIT = "20111111112"  # Responsable Inscripto: PDV 679 (test) and 3
MONO_CUIT = "20267565393"  # Monotributista: PDV 2


@pytest.fixture(scope="session")
def tenants_file() -> Path:
    return TENANTS_FILE


@pytest.fixture(scope="session")
def tenants() -> Tenants:
    return Tenants.load(TENANTS_FILE)


@pytest.fixture(scope="session")
def test_pdv(tenants: Tenants) -> Pdv:
    return tenants.pdv(RI_CUIT, 679)


@pytest.fixture(scope="session")
def real_pdv(tenants: Tenants) -> Pdv:
    return tenants.pdv(RI_CUIT, 3)


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    with SandboxProcess(TENANTS_FILE, gap_seconds=0, block_seconds=5) as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> Iterator[SandboxProcess]:
    """The session's sandbox, wiped clean (ledger, numbering, faults, gap 0) for this test."""
    sandbox_process.reset()
    sandbox_process.set_config(gap_seconds=0, block_seconds=5)
    yield sandbox_process
    sandbox_process.reset()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("TFQ_REDIS_URL", "redis://127.0.0.1:6379/0")
