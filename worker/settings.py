"""Configuration from `TFQ_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PRODUCTION_API_URL = "https://www.tusfacturas.app/app/api/v2/"

# RG 5700/2025: a consumidor final must be identified from $10.000.000 (afip_rules.md §4.3).
CF_IDENTIFICATION_THRESHOLD_ARS = Decimal("10000000")


class Settings(BaseSettings):
    """Every knob of the worker. Durations say their unit in the name."""

    model_config = SettingsConfigDict(env_prefix="TFQ_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "tfq:"
    api_url: str = PRODUCTION_API_URL
    tenants_file: Path | None = None
    cuit_gap_seconds: float = Field(60.0, ge=0)
    api_max_rps: float = Field(10.0, gt=0)
    batch_max: int = Field(20, ge=1, le=20)
    api_timeout_seconds: float = Field(100.0, gt=0)
    api_connect_timeout_seconds: float = Field(10.0, gt=0)
    cf_identification_threshold: Decimal = Field(CF_IDENTIFICATION_THRESHOLD_ARS, gt=0)
    result_retention_days: int = Field(90, ge=1)
    # The spend guard: every call counts against the plan, answered or not. A job that
    # has had this many invoicing calls without a final outcome pauses its lane, and so
    # does a lane that asked `numeracion` (billed on the newest pages) this often since
    # its last confirmed issue. A resume grants a fresh bound.
    max_sends_per_job: int = Field(10, ge=1)
    max_numeracion_per_lane: int = Field(5, ge=1)
    # "AFIP is down" on one CUIT's call may be that CUIT's certificate or account: every
    # lane waits only once this many CUITs saw it within AFIP's 12-minute window (or on
    # a global signal: maintenance, estado_servicios/alertas).
    outage_quorum: int = Field(2, ge=1)
    # A lane's lease; live workers renew it every third of this, so it only bounds how
    # long a dead worker's lane waits before it is reaped and reconciled.
    lease_seconds: float = Field(30.0, gt=1)
    worker_concurrency: int = Field(64, ge=1)
    metrics_port: int = Field(9808, ge=0, le=65535)  # a worker's /metrics; 0 turns it off
    # Celery task events (task-sent/received/started/succeeded), so Flower lists every
    # task. Off by default: a task is a lane claim, which tells an operator little, and the
    # events cost 10-30% of the send capacity (ops.bench). Workers still send their
    # heartbeats, so Flower and `celery inspect` see them either way.
    task_events: bool = False
    # While every lane waits on an AFIP outage, how often to ask whether it is over.
    health_probe_seconds: float = Field(60.0, gt=0)
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    callbacks_allow_private: bool = False
    # Delays before each callback retry (seconds), scaled by callback_retry_scale (tests
    # shrink it); after the last one the delivery is dead-lettered.
    callback_retry_seconds: list[float] = [5, 300, 1800, 7200, 18000, 36000, 36000]
    callback_retry_scale: float = Field(1.0, gt=0)
    callback_timeout_seconds: float = Field(10.0, gt=0)
    # A claimed delivery or outbox event whose worker died is taken again after this.
    callback_visibility_seconds: float = Field(120.0, gt=0)
    # The HTTP intake (`tfq serve`): largest request body (enforced while streaming) and
    # most envelopes in one POST /v1/batches; both answer 413 beyond.
    intake_max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    intake_max_batch: int = Field(10_000, ge=1)
    # The archive: a SQL database (default: a SQLite file under data_dir) and the PDF
    # store (default: a directory under data_dir; any fsspec URL, e.g. s3://bucket/tfq).
    data_dir: Path = Path(".tfq")
    archive_url: str | None = None
    # The archive database's password, read from a file (a Docker secret) rather than
    # written in TFQ_ARCHIVE_URL.
    archive_password_file: Path | None = None
    pdf_dir: str | None = None
    # Intake's public base URL: callbacks and results link to tfq's own lasting PDF
    # route under it (TusFacturas' own links die the day they are given).
    public_url: str | None = None
    # The web console (`/console` on the intake): the key that signs its session cookies.
    # Unset: a random key per process (logins end at a restart, and several intake
    # workers need one shared key: set it).
    console_secret: SecretStr | None = None
    console_session_hours: float = Field(8.0, gt=0, le=24 * 7)
    pdf_download_timeout_seconds: float = Field(30.0, gt=0)
    pdf_max_attempts: int = Field(8, ge=1)
    # `regenerar_pdf` is billed per call (its newest page): at most this many per job.
    pdf_max_regenerations: int = Field(2, ge=0)
    pdf_visibility_seconds: float = Field(300.0, gt=0)
    archive_visibility_seconds: float = Field(120.0, gt=0)
    # Acknowledged means durable (issue 11): with `auto` a job is acknowledged only once
    # Redis has it on disk (WAITAOF on Redis >= 7.2 with AOF, waiting at most
    # ack_durability_timeout_seconds; older Redis must run `appendfsync always`, or the
    # start warns). `off` acknowledges from memory, for benchmarks and tests that choose it.
    ack_durability: Literal["auto", "off"] = "auto"
    ack_durability_timeout_seconds: float = Field(5.0, gt=0)

    @property
    def archive_database_url(self) -> str:
        """TFQ_ARCHIVE_URL (with the password file's password), or a SQLite file under
        TFQ_DATA_DIR, which needs nothing installed."""
        if not self.archive_url:
            return f"sqlite:///{(self.data_dir / 'archive.sqlite3').resolve()}"
        if self.archive_password_file is None:
            return self.archive_url
        password = self.archive_password_file.read_text(encoding="utf-8").strip()
        return make_url(self.archive_url).set(password=password).render_as_string(False)

    @property
    def pdf_store_url(self) -> str:
        return self.pdf_dir or str((self.data_dir / "pdfs").resolve())

    @property
    def result_retention_seconds(self) -> int:
        """How long finished job records, their results and delivered callbacks are kept."""
        return self.result_retention_days * 86400


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
