"""Connecting to the archive database: URLs, engines and schema migrations (Alembic)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from worker.errors import ConfigError


def driver_url(url: str) -> str:
    """The URL with the driver tfq ships: a plain `postgresql://` (or `postgres://`) URL
    means psycopg 3, whatever SQLAlchemy's own default driver is."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except Exception as exc:  # SQLAlchemy raises ArgumentError, ValueError, ...
        raise ConfigError(f"TFQ_ARCHIVE_URL is not a database URL: {type(exc).__name__}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"TFQ_ARCHIVE_URL: the archive runs on sqlite or postgresql, not {parsed.drivername}"
        )
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL for messages and logs: the password is never shown."""
    return make_url(driver_url(url)).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the intake, `tfq status`) read while the archiver writes; NORMAL
    # sync is durable in WAL mode except for the last commits on power loss, which the
    # outbox covers: an event leaves Redis only after its row is committed.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@cache
def engine_for(url: str) -> Engine:
    """One engine (and connection pool) per URL and process."""
    full = make_url(driver_url(url))
    if full.get_backend_name() == "sqlite":
        if full.database and full.database != ":memory:":
            Path(full.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(full, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(full, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("worker.archive") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Apply every migration not yet applied; returns (revision before, revision now)."""
    before = current_revision(engine)
    command.upgrade(_alembic_config(engine), "head")
    return before, head_revision()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://")))
    head = script.get_current_head()
    assert head is not None, "the archive has no migrations"
    return head


def ensure_schema(engine: Engine) -> None:
    """SQLite files are tfq's own: bring them up to date. Any other database is migrated
    on purpose (`tfq archive migrate`), so a worker never alters a production schema."""
    if current_revision(engine) == head_revision():
        return
    if engine.dialect.name == "sqlite":
        migrate(engine)
        return
    raise ConfigError(
        f"the archive at {safe_url(engine.url.render_as_string(hide_password=False))} "
        "is not at the current schema: run `tfq archive migrate`"
    )
