"""Shared fixtures: the example tenants, a sandbox over real HTTP, a Redis URL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import make_url

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


# --- the archive's databases --------------------------------------------------------------

# A private PostgreSQL started from the installed binaries, only when none is reachable.
postgresql_private = factories.postgresql_proc()


def _reachable_postgres(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> tuple[str, int, str, str | None]:
    """(host, port, user, password) of a PostgreSQL server for the tests."""
    url = os.environ.get("TFQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if _reachable_postgres(url):
        parsed = make_url(url)
        return (
            parsed.host or "127.0.0.1",
            parsed.port or 5432,
            parsed.username or "",
            parsed.password,
        )
    proc = request.getfixturevalue("postgresql_private")
    return proc.host, proc.port, proc.user, proc.password


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty archive database of each kind: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.sqlite3'}"
        return
    host, port, user, password = request.getfixturevalue("postgres_server")
    dbname = f"tfq_test_{secrets.token_hex(4)}"
    with DatabaseJanitor(user=user, host=host, port=port, dbname=dbname, password=password):
        auth = f"{user}:{password}@" if password else f"{user}@"
        yield f"postgresql://{auth}{host}:{port}/{dbname}"
