"""The archive of finished jobs.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archived_jobs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("cuit", sa.String(11), nullable=False),
        sa.Column("external_reference", sa.String(255), nullable=False),
        sa.Column("batch", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tipo", sa.String(64), nullable=False),
        sa.Column("punto_venta", sa.Integer, nullable=False),
        sa.Column("numero", sa.Integer),
        sa.Column("cae", sa.String(32)),
        sa.Column("cae_vencimiento", sa.String(16)),
        sa.Column("fecha", sa.Date),
        sa.Column("total", sa.Numeric(18, 2)),
        sa.Column("moneda", sa.String(8)),
        sa.Column("test_mode", sa.Boolean, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("attempt_log", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("pdf_path", sa.String(512)),
        sa.Column("pdf_sha256", sa.String(64)),
        sa.Column("pdf_size", sa.Integer),
        sa.Column("ticket_path", sa.String(512)),
        sa.Column("ticket_sha256", sa.String(64)),
        sa.Column("ticket_size", sa.Integer),
    )
    op.create_index(
        "uq_archived_jobs_invoice",
        "archived_jobs",
        ["cuit", "punto_venta", "tipo", "numero"],
        unique=True,
        sqlite_where=sa.text("status = 'issued'"),
        postgresql_where=sa.text("status = 'issued'"),
    )
    op.create_index("ix_archived_jobs_cuit_fecha", "archived_jobs", ["cuit", "fecha"])
    op.create_index(
        "ix_archived_jobs_cuit_reference", "archived_jobs", ["cuit", "external_reference"]
    )
    op.create_index("ix_archived_jobs_batch", "archived_jobs", ["batch"])


def downgrade() -> None:
    op.drop_table("archived_jobs")
