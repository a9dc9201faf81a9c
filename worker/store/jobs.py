"""Job records: how a job is stored in Redis, its statuses, its public result
(`JobResult`, the one shape the Python API, the HTTP API and callbacks give), and the
store's job operations (`JobStore`).

The envelope is stored once, compressed (zlib), under the field `env`; the rest are small
fields the lane scripts read and write. Credentials are never part of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

import redis
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer
from redis.commands.core import Script

from worker.errors import TfqError
from worker.invoice.envelope import JobEnvelope
from worker.store.durability import (
    check_waitaof_reply,
    forget_server,
    server_durability,
    waitaof_command,
)
from worker.store.keys import BatchField, JobField, Keys
from worker.store.scripts import Enqueued, read_enqueue, register, text


class JobStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # a call for it may be in flight
    UNKNOWN = "unknown"  # a call's outcome is unknown: reconciled before anything is sent
    ISSUED = "issued"
    REJECTED = "rejected"
    # Not stored: how a queued job of a paused lane reads.
    PAUSED = "paused"


FINAL = frozenset({JobStatus.ISSUED, JobStatus.REJECTED})
# The statuses a job record holds (batch and global counters keep one count each).
RECORDED = (
    JobStatus.QUEUED,
    JobStatus.SENDING,
    JobStatus.UNKNOWN,
    JobStatus.ISSUED,
    JobStatus.REJECTED,
)


# A batch name is part of Redis keys, of outbox entries and of `/v1/batches/{name}`: one
# rule for every door (the Python API, `tfq enqueue --batch`, `POST /v1/batches`).
BATCH_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$"
BATCH_NAME_RULE = "1 to 200 letters, digits or . _ : @ -, starting with a letter or digit"
_BATCH_NAME = re.compile(BATCH_NAME_PATTERN)


class InvalidBatchName(TfqError, ValueError):
    """A batch name outside `BATCH_NAME_RULE`; nothing was queued."""


def check_batch_name(name: str) -> str:
    """The name, when it is a valid batch name or "" (no batch); else `InvalidBatchName`."""
    if name and not _BATCH_NAME.match(name):
        raise InvalidBatchName(f"batch: {BATCH_NAME_RULE}")
    return name


def new_job_id(noise: str = "") -> str:
    """Time-ordered and unique: 12 hex digits of milliseconds, 10 random (`noise`, when
    the caller drew them already)."""
    return f"{int(time.time() * 1000):012x}{noise or secrets.token_hex(5)}"


class JobIds:
    """Ids as `new_job_id` makes them (the time taken per id), the random parts drawn
    `block` at a time: bulk intake asks for thousands."""

    def __init__(self, block: int = 500):
        self.block = block
        self._noise = ""
        self._at = 0

    def __call__(self) -> str:
        if self._at >= len(self._noise):
            self._noise, self._at = secrets.token_hex(5 * self.block), 0
        at = self._at
        self._at = at + 10
        return new_job_id(self._noise[at : at + 10])


# Compact JSON, ASCII only (\u escapes): metadata, callback URL and unchecked paths.
_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)


def pack_envelope(env: JobEnvelope) -> bytes:
    """What `env` holds: the invoice body (JSON numbers), callback and metadata.

    The invoice is serialized by pydantic's own JSON encoder (the same document as
    `invoice_body()`, a third of the time on bulk intake), straight to bytes; the
    document is assembled as bytes, without a round trip through str.
    """
    invoice = env.invoice.__pydantic_serializer__.to_json(env.invoice, exclude_none=True)
    url = _COMPACT.encode(str(env.callback_url)) if env.callback_url else "null"
    meta = _COMPACT.encode(env.metadata) if env.metadata else "{}"
    unchecked = env.unchecked_fields
    listed = _COMPACT.encode(unchecked) if unchecked else "[]"
    tail = f',"callback_url":{url},"metadata":{meta},"unchecked":{listed}}}'
    return zlib.compress(b'{"invoice":' + invoice + tail.encode(), 1)


def unpack_envelope(blob: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(zlib.decompress(blob))
    return result


def fingerprint(payload: dict[str, Any]) -> str:
    """A short hash of exactly what is sent (without credentials), for the intent record."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _ts(value: str | None) -> str | None:
    if not value:
        return None
    return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="milliseconds")


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


@dataclass
class Job:
    """A job record as the worker sees it."""

    id: str
    cuit: str
    external_reference: str
    punto_venta: int
    tipo: str
    status: JobStatus
    batch: str
    numero: int | None
    attempts: int
    record: dict[str, Any]

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Job:
        return cls(
            id=rec[JobField.ID],
            cuit=rec[JobField.CUIT],
            external_reference=rec[JobField.EXTERNAL_REFERENCE],
            punto_venta=int(rec[JobField.PUNTO_VENTA]),
            tipo=rec[JobField.TIPO],
            status=JobStatus(rec[JobField.STATUS]),
            batch=rec.get(JobField.BATCH, ""),
            numero=_int(rec.get(JobField.NUMERO)),
            attempts=int(rec.get(JobField.ATTEMPTS) or 0),
            record=rec,
        )

    @property
    def envelope(self) -> dict[str, Any]:
        return unpack_envelope(self.record[JobField.ENVELOPE])

    @cached_property
    def requested_numero(self) -> int:
        """The number the job asked to be issued as; 0: the next one. Read once: the
        sender asks it of every job it considers for a batch."""
        return int(self.envelope["invoice"]["comprobante"].get("numero") or 0)

    def payload(self, numero: int) -> dict[str, Any]:
        """The invoice body to send, numbered."""
        body: dict[str, Any] = self.envelope["invoice"]
        body["comprobante"]["numero"] = numero
        return body


def _json_list(value: str | None) -> list[Any]:
    return json.loads(value) if value else []


class JobResult(BaseModel):
    """A job's result, as producers, the CLI, the HTTP API and callbacks see it."""

    # A record is whole but for a rare orphan (fields written after it expired): every
    # field may be missing.
    job_id: str | None = None
    cuit: str | None = None
    external_reference: str | None = None
    batch: str | None = None
    status: JobStatus | None = Field(
        None, description="queued, sending, unknown, issued, rejected or paused"
    )
    cae: str | None = None
    cae_vencimiento: str | None = None
    tipo: str | None = None
    punto_venta: int | None = None
    numero: int | None = Field(None, description="set once issued")
    pdf_url: str | None = Field(
        None,
        description="tfq's own lasting link to the PDF (GET /v1/invoices/{id}/pdf under "
        "TFQ_PUBLIC_URL); TusFacturas' links die the day they are given and are not passed on",
    )
    ticket_url: str | None = Field(None, description="the same for the ticket, when there is one")
    pdf_sha256: str | None = Field(None, description="the kept PDF's sha256, once tfq stored it")
    afip_qr: str | None = None
    vencimiento_pago: str | None = None
    requiere_fec: bool | None = None
    micrositios: dict[str, str] = Field(
        default_factory=dict, description="the permanent micrositio links, when enabled"
    )
    observaciones: str | None = None
    errors: list[str] = Field(
        default_factory=list, description="why the job was rejected: the API's messages or tfq's"
    )
    last_error: str | None = Field(None, description="the last failed call's class")
    last_messages: list[str] = Field(
        default_factory=list, description="the API's messages on the last failed call"
    )
    attempts: int = 0
    attempt_log: list[Any] = Field(default_factory=list)
    test_mode: bool = False
    created_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    previous_job_id: str | None = None
    next_job_id: str | None = None
    callback_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    unchecked_fields: list[str] = Field(
        default_factory=list,
        description="invoice fields tfq passed to the API unchanged, without checking them",
    )
    # Present only when set: while the job's lane is paused (`paused_until` None: until
    # someone resumes it), and on a POST's answer.
    paused_reason: str | None = None
    paused_until: str | None = None
    duplicate: bool | None = Field(
        None, description="POST only: true when the key already had this job (200)"
    )

    # Unannotated on purpose: an annotated return type would replace the model's JSON
    # schema (the HTTP API's documentation) with that type's.
    @model_serializer(mode="wrap")
    def _only_set_extras(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """The extras appear only when set (byte-compatible with the dicts of old)."""
        data = handler(self)
        for name in ("paused_reason", "paused_until", "duplicate"):
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data

    @classmethod
    def from_record(cls, rec: dict[str, Any], public_url: str | None = None) -> JobResult:
        """The result of a job record; `public_url` (TFQ_PUBLIC_URL) makes its PDF links."""
        env = unpack_envelope(rec[JobField.ENVELOPE]) if rec.get(JobField.ENVELOPE) else {}
        status = rec.get(JobField.STATUS)
        micrositios = rec.get(JobField.MICROSITIOS)
        issued = status == JobStatus.ISSUED
        pdf_url, ticket_url = pdf_links(
            rec.get(JobField.ID),
            public_url,
            pdf=issued and bool(rec.get(JobField.PDF_URL) or rec.get(JobField.PDF_PATH)),
            ticket=issued and bool(rec.get(JobField.TICKET_URL) or rec.get(JobField.TICKET_PATH)),
        )
        return cls(
            job_id=rec.get(JobField.ID),
            cuit=rec.get(JobField.CUIT),
            external_reference=rec.get(JobField.EXTERNAL_REFERENCE),
            batch=rec.get(JobField.BATCH) or None,
            status=status,
            cae=rec.get(JobField.CAE) or None,
            cae_vencimiento=rec.get(JobField.CAE_VENCIMIENTO) or None,
            tipo=rec.get(JobField.TIPO),
            punto_venta=_int(rec.get(JobField.PUNTO_VENTA)),
            numero=_int(rec.get(JobField.NUMERO)) if status == JobStatus.ISSUED else None,
            pdf_url=pdf_url,
            ticket_url=ticket_url,
            pdf_sha256=rec.get(JobField.PDF_SHA256) or None,
            afip_qr=rec.get(JobField.AFIP_QR) or None,
            vencimiento_pago=rec.get(JobField.VENCIMIENTO_PAGO) or None,
            requiere_fec={"S": True, "N": False}.get(rec.get(JobField.REQUIERE_FEC) or ""),
            micrositios=json.loads(micrositios) if micrositios else {},
            observaciones=rec.get(JobField.OBSERVACIONES) or None,
            errors=_json_list(rec.get(JobField.ERRORS)),
            last_error=rec.get(JobField.LAST_ERROR) or None,
            last_messages=_json_list(rec.get(JobField.LAST_MESSAGES)),
            attempts=int(rec.get(JobField.ATTEMPTS) or 0),
            attempt_log=_json_list(rec.get(JobField.ATTEMPT_LOG)),
            test_mode=rec.get(JobField.TEST_MODE) == "1",
            created_at=_ts(rec.get(JobField.CREATED)),
            updated_at=_ts(rec.get(JobField.UPDATED)),
            finished_at=_ts(rec.get(JobField.FINISHED)),
            previous_job_id=rec.get(JobField.PREVIOUS) or None,
            next_job_id=rec.get(JobField.NEXT) or None,
            callback_url=env.get("callback_url"),
            metadata=env.get("metadata") or {},
            unchecked_fields=env.get("unchecked") or [],
        )


def pdf_links(
    job_id: str | None, public_url: str | None, *, pdf: bool, ticket: bool
) -> tuple[str | None, str | None]:
    """tfq's lasting links to a job's PDF and ticket: under the intake's public base URL,
    never the vendor's (they die the day they are given). None without a public URL."""
    if not public_url or not job_id:
        return None, None
    base = f"{public_url.rstrip('/')}/v1/invoices/{job_id}/pdf"
    return (base if pdf else None), (f"{base}?kind=ticket" if ticket else None)


def job_record(raw: Any) -> dict[str, Any] | None:
    """A job hash with text fields decoded; `env` stays bytes (compressed)."""
    if not raw:
        return None
    return {text(k): (v if k == JobField.ENVELOPE.encode() else text(v)) for k, v in raw.items()}


@dataclass(frozen=True)
class NewJob:
    id: str
    cuit: str
    external_reference: str
    punto_venta: int
    tipo: str
    envelope: bytes  # zlib-compressed JSON (pack_envelope)


@dataclass(frozen=True)
class BatchCounts:
    """A batch's counters."""

    name: str
    total: int
    counts: dict[str, int]  # jobs per recorded status
    created: float  # epoch s
    completed: float | None  # epoch s, once every job is final

    def as_dict(self) -> dict[str, Any]:
        """The shape callbacks and the CLI give (`batch.completed`'s data)."""
        return {
            "batch": self.name,
            "total": self.total,
            "counts": self.counts,
            "created": self.created,
            "completed": self.completed,
        }


class JobStore:
    """Job records over one Redis connection pool: every write is one script of
    `worker/store/lua/`, run under the lane's fencing token where one applies."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.r = client
        self.keys = keys
        self.p = keys.prefix
        self._scripts: dict[str, Script] = register(client)

    def run_script(self, name: str, *args: Any) -> Any:
        """Run one of the scripts in worker/store/lua (the prefix is always its first argument)."""
        return self._scripts[name](args=[self.p, *args])

    def now(self) -> float:
        """Redis' clock (epoch s): the one every script uses."""
        seconds, micros = self.r.time()
        return float(seconds) + float(micros) / 1_000_000

    # --- writes (each one script) -------------------------------------------------------

    def enqueue(
        self, jobs: list[NewJob], batch: str = "", *, on_disk_within: float | None = None
    ) -> list[Enqueued]:
        """What happened to each job, in the order given.

        With `on_disk_within` (seconds), answer only once Redis has the jobs on disk:
        where the server has WAITAOF, wait for it on the enqueue's own connection and
        raise `NotOnDisk` when the fsync did not happen in time (the jobs stay queued).
        """
        args: list[Any] = [self.p, check_batch_name(batch)]
        for j in jobs:
            args += [j.id, j.cuit, j.external_reference, j.punto_venta, j.tipo, j.envelope]
        if on_disk_within is None or not server_durability(self.r).waitaof:
            return read_enqueue(self._scripts["enqueue"](args=args), [j.id for j in jobs])
        # WAITAOF waits for the writes of its own connection: one pipeline, one connection.
        pipe = self.r.pipeline(transaction=False)
        self._scripts["enqueue"](args=args, client=pipe)
        pipe.execute_command(*waitaof_command(on_disk_within))  # type: ignore[no-untyped-call]
        try:
            reply, synced = pipe.execute()
        except redis.ResponseError as exc:
            if "appendonly" not in str(exc).lower():
                raise
            forget_server(self.r)  # AOF was turned off since: ask the server again
            synced = None
        check_waitaof_reply(synced, on_disk_within)
        return read_enqueue(reply, [j.id for j in jobs])

    def transition(
        self,
        cuit: str,
        token: str,
        job_id: str,
        status: JobStatus,
        fields: dict[str, Any] | None = None,
        retention_seconds: int = 0,
    ) -> int:
        """Set a job's status and fields, only while `token` still holds the lane.

        Returns 0 when the lease is gone, 2 when this completed the job's batch, else 1.
        """
        args: list[Any] = [cuit, token, job_id, status, retention_seconds]
        for k, v in (fields or {}).items():
            args += [k, v if isinstance(v, str | int | float) else json.dumps(v, default=str)]
        return int(self.run_script("transition", *args))

    def record_failed_call(
        self,
        cuit: str,
        token: str,
        job_ids: Iterable[str],
        *,
        kind: str,
        error: str,
        messages: list[str],
    ) -> bool:
        """A failed call's class and the API's messages on its jobs; False when stale."""
        reply = self.run_script(
            "failed_call", cuit, token, kind, error, json.dumps(messages), *job_ids
        )
        return int(reply) >= 0

    def record_attention(self, job_id: str, reason: str) -> None:
        """Queue an `invoice.attention` event for a job a human must look at."""
        self.run_script("attention", job_id, reason)

    # --- reads --------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        """A job's record (fields by `JobField`), or None when there is none."""
        return job_record(self.r.hgetall(self.keys.job(job_id)))

    def jobs(self, job_ids: list[str]) -> list[dict[str, Any] | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [job_record(raw) for raw in pipe.execute()]

    def placements(self, job_ids: list[str]) -> list[tuple[str, str] | None]:
        """(punto de venta, tipo) of each job; None for a job that is gone."""
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), JobField.PUNTO_VENTA, JobField.TIPO)
        return [(text(pv), text(tipo)) if tipo else None for pv, tipo in pipe.execute()]

    def job_id_for(self, cuit: str, external_reference: str) -> str | None:
        found = self.r.hget(self.keys.idem(cuit), external_reference)
        return text(found) if found else None

    def references_starting(self, cuit: str, prefix: str) -> list[tuple[str, str]]:
        """(external_reference, job id) of every key ever queued for the CUIT that starts
        with `prefix` (glob characters in it taken literally). A scan of the CUIT's whole
        index: for rare lookups (`tfq void`), not for a hot path."""
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
        return [
            (text(ref), text(job_id))
            for ref, job_id in self.r.hscan_iter(self.keys.idem(cuit), match=pattern, count=1000)
        ]

    def batch_counts(self, name: str) -> BatchCounts | None:
        """A batch's counters: total and jobs per status."""
        raw = self.r.hgetall(self.keys.batch(name))
        if not raw:
            return None
        counts = {text(k): text(v) for k, v in raw.items()}
        completed = counts.get(BatchField.COMPLETED)
        return BatchCounts(
            name=name,
            total=int(counts.get(BatchField.TOTAL, 0)),
            counts={str(s): int(counts.get(s, 0)) for s in RECORDED},
            created=float(counts.get(BatchField.CREATED, 0)),
            completed=float(completed) if completed else None,
        )

    def batch_cuits(self, name: str) -> list[str]:
        """The CUITs with jobs in a batch."""
        return [text(c) for c in self.r.smembers(self.keys.batch_cuits(name))]
