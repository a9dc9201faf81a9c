"""Shared fixtures: the example tenants, a sandbox over real HTTP, a Redis URL, the archive's
databases, a real browser."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import make_url

from ops.sandbox.server import SandboxProcess
from ops.testkit import browser as chromium
from ops.testkit import localpostgres
from ops.testkit.examples import EXAMPLES_DIR
from ops.testkit.harness import unique_prefix
from worker.store.keys import Keys
from worker.store.lanes import LaneStore
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


@pytest.fixture
def store(redis_url: str) -> Iterator[LaneStore]:
    """The store under a key prefix of its own, its keys deleted after the test."""
    client = redis.Redis.from_url(redis_url)
    keys = Keys(unique_prefix("store"))
    yield LaneStore(client, keys)
    for key in client.scan_iter(keys.pattern(), count=1000):
        client.unlink(key)


# --- the archive's databases --------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL: TFQ_TEST_POSTGRES_URL or the local default when it
    answers, else a private server started from the installed binaries for the session."""
    url = os.environ.get("TFQ_TEST_POSTGRES_URL", localpostgres.DEFAULT_URL)
    if localpostgres.reachable(url):
        yield url
        return
    private, data = localpostgres.start_private()
    try:
        yield private
    finally:
        localpostgres.stop_private(data)


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty archive database of each kind: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.sqlite3'}"
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    dbname = f"tfq_test_{secrets.token_hex(4)}"
    with DatabaseJanitor(
        user=server.username or "postgres",
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        dbname=dbname,
        password=server.password,
    ):
        yield server.set(database=dbname).render_as_string(hide_password=False)


# --- a real browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (`make test` installs it), driven by Playwright; it and Playwright's
    driver are stopped at the end of the module: Playwright's sync API runs an event loop in
    this thread while it lives, and later tests' `asyncio.run` must find none."""
    with chromium.chromium() as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a browser context of this test's own, closed after it."""
    with chromium.new_page(browser) as new:
        yield new
