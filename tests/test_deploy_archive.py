"""The compose file keeps what was issued: PostgreSQL on a volume in production, migrated
before anything starts; a SQLite file in the demo; PDFs on a volume both roles share."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.test_deploy import COMPOSE_FILE, active, command, environment, role
from worker.archive.db import driver_url


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return doc


def volumes_at(svc: dict[str, Any], path: str, named: dict[str, Any]) -> list[str]:
    mounts = [str(v).split(":") for v in svc.get("volumes") or []]
    return [src for src, dst, *_ in mounts if dst == path and src in named]


def test_production_archives_to_postgres_on_a_volume(compose: dict[str, Any]) -> None:
    prod = active(compose, "prod")
    named = compose.get("volumes") or {}
    pg = prod["postgres"]
    assert volumes_at(pg, "/var/lib/postgresql/data", named), "postgres needs a named volume"
    assert "postgres_password" in (pg.get("secrets") or [])
    assert environment(pg)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    migrate = prod["archive-migrate"]
    assert command(migrate) == ["archive", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for svc in prod.values():
        if role(svc) not in ("worker", "serve"):
            continue
        env = environment(svc)
        assert driver_url(env["TFQ_ARCHIVE_URL"]).startswith("postgresql+psycopg://tfq@postgres")
        assert env["TFQ_ARCHIVE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
        assert "postgres_password" in svc["secrets"]
        needs = svc["depends_on"]["archive-migrate"]["condition"]
        assert needs == "service_completed_successfully"
        assert volumes_at(svc, "/data", named) == ["tfq-data"]  # PDFs: kept and served


def test_the_demo_keeps_a_sqlite_archive_apart(compose: dict[str, Any]) -> None:
    demo = active(compose, "demo")
    assert "postgres" not in demo
    for svc in demo.values():
        if role(svc) in ("worker", "serve"):
            env = environment(svc)
            assert "TFQ_ARCHIVE_URL" not in env  # the SQLite file under TFQ_DATA_DIR
            assert env["TFQ_DATA_DIR"] == "/data/demo"


def test_no_password_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for key, value in environment(svc).items():
            assert "PASSWORD=" not in key
            if key.endswith("_URL") and "://" in value:
                userinfo = value.split("://", 1)[1].split("@", 1)[0] if "@" in value else ""
                assert ":" not in userinfo, f"{name}: {key} carries a password"
