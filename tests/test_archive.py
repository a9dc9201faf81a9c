"""The archive on both databases: migrations, idempotent upserts, the unique invoice."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import IntegrityError

from ops.testkit.examples import load_example
from worker.archive import db
from worker.archive.archiver import archive_due
from worker.archive.repository import Archive, row_from_record
from worker.errors import ConfigError
from worker.invoice.envelope import validate_envelope
from worker.settings import Settings
from worker.store.jobs import pack_envelope
from worker.store.lanes import LaneStore
from worker.store.schedules import Schedule, claim, settle_archived

TODAY = date(2026, 11, 20)


def record(
    job_id: str,
    *,
    status: str = "issued",
    numero: int | None = 7,
    updated: float = 1.0,
    ref: str = "ORD-1002",
) -> dict[str, Any]:
    """A job hash as the worker leaves it in Redis (text fields, `env` compressed)."""
    example = load_example("factura_b", TODAY)
    example["invoice"]["comprobante"]["external_reference"] = ref
    env = validate_envelope(example, today=TODAY)
    rec: dict[str, Any] = {
        "id": job_id,
        "cuit": env.cuit,
        "ref": ref,
        "pv": "679",
        "tipo": "FACTURA B",
        "status": status,
        "batch": "nightly",
        "env": pack_envelope(env),
        "attempts": "1",
        "created": "1764000000.5",
        "updated": str(updated),
        "finished": str(updated),
        "log": json.dumps([{"at": 1.0, "outcome": status}]),
    }
    if status == "issued":
        rec |= {"numero": str(numero), "cae": "76123456789012", "cae_vencimiento": "30/11/2026"}
    else:
        rec |= {"errors": json.dumps(["El campo X es invalido"])}
    return rec


@pytest.fixture
def archive(archive_url: str) -> Archive:
    engine = db.engine_for(archive_url)
    db.migrate(engine)
    return Archive(engine)


def test_migrate_creates_the_table_once(archive_url: str) -> None:
    engine = db.engine_for(archive_url)
    assert db.current_revision(engine) is None
    assert db.migrate(engine) == (None, db.head_revision())
    assert db.migrate(engine) == (db.head_revision(), db.head_revision())
    tables = inspect(engine).get_table_names()
    assert "archived_jobs" in tables


def test_row_holds_the_request_as_sent_and_the_reply(archive: Archive) -> None:
    assert archive.upsert([row_from_record(record("j1"))]) == 1
    row = archive.get("j1")
    assert row is not None
    assert (row.cuit, row.punto_venta, row.tipo, row.numero) == ("20111111112", 679, "FACTURA B", 7)
    assert row.cae == "76123456789012"
    assert row.total == Decimal("36000.00")
    assert row.fecha == TODAY
    assert row.request["comprobante"]["numero"] == 7
    assert row.request["cliente"]["documento_nro"] == "28765432"
    assert row.result["status"] == "issued"
    assert row.job_metadata == {"order_id": 1002}
    assert row.attempt_log == [{"at": 1.0, "outcome": "issued"}]
    assert row.batch == "nightly"
    text = json.dumps([row.request, row.result])
    for secret in ("apikey", "apitoken", "usertoken"):
        assert secret not in text


def test_upsert_is_idempotent_and_newer_wins(archive: Archive) -> None:
    first = row_from_record(record("j1", status="rejected", numero=None, updated=5.0))
    assert archive.upsert([first]) == 1
    assert archive.upsert([first]) == 0  # replayed event: nothing changes
    older = row_from_record(record("j1", status="issued", updated=4.0))
    assert archive.upsert([older]) == 0
    row = archive.get("j1")
    assert row is not None
    assert row.status == "rejected"
    newer = row_from_record(record("j1", status="issued", updated=6.0))
    assert archive.upsert([newer]) == 1
    row = archive.get("j1")
    assert row is not None
    assert (row.status, row.numero) == ("issued", 7)
    assert archive.count() == 1


def test_an_issued_number_is_archived_once(archive: Archive) -> None:
    archive.upsert([row_from_record(record("j1", ref="A"))])
    # Rejected jobs have no number: any count of them is fine.
    archive.upsert(
        [row_from_record(record(f"r{i}", status="rejected", ref=f"R{i}")) for i in range(3)]
    )
    with pytest.raises(IntegrityError):
        archive.upsert([row_from_record(record("j2", ref="B"))])
    assert archive.count() == 4
    assert archive.find("20111111112", "A") is not None


def test_plain_postgresql_urls_get_the_shipped_driver() -> None:
    assert db.driver_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert db.driver_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert db.driver_url("sqlite:////tmp/a.sqlite3") == "sqlite:////tmp/a.sqlite3"
    assert "secret" not in db.safe_url("postgresql://u:secret@h/db")
    with pytest.raises(ConfigError, match="sqlite or postgresql"):
        db.driver_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match="not a database URL"):
        db.driver_url("::nonsense::")


def test_ensure_schema_migrates_sqlite_but_never_production(archive_url: str) -> None:
    engine = db.engine_for(archive_url)
    if engine.dialect.name == "sqlite":
        db.ensure_schema(engine)
        assert db.current_revision(engine) == db.head_revision()
    else:
        with pytest.raises(ConfigError, match="tfq archive migrate"):
            db.ensure_schema(engine)
        db.migrate(engine)
        db.ensure_schema(engine)


def test_default_url_is_a_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    url = Settings(data_dir=tmp_path / "data").archive_database_url
    engine = create_engine(db.driver_url(url))
    assert engine.dialect.name == "sqlite"
    assert url.endswith("/data/archive.sqlite3")


# --- the archiver: from the Redis schedule to the database --------------------------------


def finish(store: LaneStore, rec: dict[str, Any], at: float) -> None:
    """What the status scripts leave: the final record, and the job due for the archive."""
    store.r.hset(store.keys.job(rec["id"]), mapping=rec)
    store.r.zadd(store.keys.archive, {rec["id"]: at})


def test_archiver_writes_each_finished_job_once(store: LaneStore, archive: Archive) -> None:
    for i in range(5):
        finish(store, record(f"j{i}", numero=10 + i, ref=f"R{i}"), at=1.0)
    first = archive_due(store, archive)
    assert (first.claimed, first.written, first.settled, first.failed) == (5, 5, 5, False)
    assert store.r.zcard(store.keys.archive) == 0
    assert archive_due(store, archive).claimed == 0
    # A later change to a job (its PDF stored, say) is archived again.
    finish(store, record("j0", numero=10, ref="R0", updated=9.0) | {"pdf_sha256": "ab" * 32}, 2.0)
    again = archive_due(store, archive)
    assert (again.claimed, again.written) == (1, 1)
    row = archive.get("j0")
    assert row is not None
    assert row.pdf_sha256 == "ab" * 32
    assert archive.count() == 5


def test_a_change_while_archiving_is_archived_again(store: LaneStore, archive: Archive) -> None:
    finish(store, record("j1"), at=1.0)
    claims = claim(store, Schedule.ARCHIVE, 10, 120)
    finish(store, record("j1", updated=9.0), at=5.0)  # re-added while the claim was out
    assert settle_archived(store, claims) == 0
    assert store.r.zcard(store.keys.archive) == 1


def test_database_outage_keeps_everything_queued(store: LaneStore, tmp_path: Path) -> None:
    finish(store, record("j1"), at=1.0)
    broken = Archive(db.engine_for(f"sqlite:///{tmp_path}/no-schema.sqlite3"))  # no table
    failed = archive_due(store, broken, visibility_seconds=0)
    assert (failed.failed, failed.settled) == (True, 0)
    assert store.r.zcard(store.keys.archive) == 1


def test_a_duplicate_number_is_held_back_not_the_others(store: LaneStore, archive: Archive) -> None:
    finish(store, record("j1", numero=7, ref="A"), at=1.0)
    finish(store, record("j2", numero=7, ref="B"), at=2.0)  # the same invoice number
    finish(store, record("j3", numero=8, ref="C"), at=3.0)
    done = archive_due(store, archive)
    assert (done.written, done.settled) == (2, 2)
    assert [m.decode() for m in store.r.zrange(store.keys.archive, 0, -1)] == ["j2"]


def test_the_password_comes_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "postgres_password"
    secret.write_text("s3cr3t/x@y\n", encoding="utf-8")
    s = Settings(archive_url="postgresql://tfq@postgres:5432/tfq", archive_password_file=secret)
    url = db.driver_url(s.archive_database_url)
    assert url == "postgresql+psycopg://tfq:s3cr3t%2Fx%40y@postgres:5432/tfq"
    assert "s3cr3t" not in db.safe_url(s.archive_database_url)
