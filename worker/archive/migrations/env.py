"""Alembic's environment: migrations run on the engine tfq hands over (`db.migrate`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from worker.archive.schema import Base

engine: Engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them (batch mode); PostgreSQL alters in place.
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
