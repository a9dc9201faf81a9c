"""Job records: how a job is stored in Redis and what its public result looks like.

The envelope is stored once, compressed (zlib), under the field `env`; the rest are small
fields the lane scripts read and write. Credentials are never part of it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from worker.invoice.envelope import JobEnvelope

STATUSES = ("queued", "sending", "unknown", "issued", "rejected", "paused")
FINAL = frozenset({"issued", "rejected"})


def new_job_id() -> str:
    """Time-ordered and unique: 12 hex digits of milliseconds, 10 random."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def pack_envelope(env: JobEnvelope) -> bytes:
    """What `env` holds: the invoice body (JSON numbers), callback and metadata.

    The invoice is serialized by pydantic's own JSON encoder (the same document as
    `invoice_body()`, a third of the time on bulk intake).
    """
    invoice = env.invoice.model_dump_json(exclude_none=True)
    url = json.dumps(str(env.callback_url) if env.callback_url else None)
    meta = json.dumps(env.metadata, separators=(",", ":"), default=str)
    unchecked = json.dumps(env.unchecked_fields, separators=(",", ":"))
    doc = f'{{"invoice":{invoice},"callback_url":{url},"metadata":{meta},"unchecked":{unchecked}}}'
    return zlib.compress(doc.encode(), 1)


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
    status: str
    batch: str
    numero: int | None
    attempts: int
    record: dict[str, Any]

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Job:
        return cls(
            id=rec["id"],
            cuit=rec["cuit"],
            external_reference=rec["ref"],
            punto_venta=int(rec["pv"]),
            tipo=rec["tipo"],
            status=rec.get("status", ""),
            batch=rec.get("batch", ""),
            numero=_int(rec.get("numero")),
            attempts=int(rec.get("attempts") or 0),
            record=rec,
        )

    @property
    def envelope(self) -> dict[str, Any]:
        return unpack_envelope(self.record["env"])

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


def public_result(rec: dict[str, Any]) -> dict[str, Any]:
    """The job's result, as producers, the CLI and callbacks see it."""
    env = unpack_envelope(rec["env"]) if rec.get("env") else {}
    attempts_log = json.loads(rec["log"]) if rec.get("log") else []
    return {
        "job_id": rec.get("id"),
        "cuit": rec.get("cuit"),
        "external_reference": rec.get("ref"),
        "batch": rec.get("batch") or None,
        "status": rec.get("status"),
        "cae": rec.get("cae") or None,
        "cae_vencimiento": rec.get("cae_vencimiento") or None,
        "tipo": rec.get("tipo"),
        "punto_venta": _int(rec.get("pv")),
        "numero": _int(rec.get("numero")) if rec.get("status") == "issued" else None,
        "pdf_url": rec.get("pdf_url") or None,
        "ticket_url": rec.get("ticket_url") or None,
        "afip_qr": rec.get("afip_qr") or None,
        "vencimiento_pago": rec.get("vencimiento_pago") or None,
        "requiere_fec": {"S": True, "N": False}.get(rec.get("requiere_fec") or ""),
        # The permanent micrositio links, when the account has micrositios.
        "micrositios": json.loads(rec["micrositios"]) if rec.get("micrositios") else {},
        "observaciones": rec.get("observaciones") or None,
        "errors": json.loads(rec["errors"]) if rec.get("errors") else [],
        # The last failed call's class and the API's messages (an unknown job's story).
        "last_error": rec.get("last_error") or None,
        "last_messages": json.loads(rec["last_messages"]) if rec.get("last_messages") else [],
        "attempts": int(rec.get("attempts") or 0),
        "attempt_log": attempts_log,
        "test_mode": rec.get("test_mode") == "1",
        "created_at": _ts(rec.get("created")),
        "updated_at": _ts(rec.get("updated")),
        "finished_at": _ts(rec.get("finished")),
        "previous_job_id": rec.get("prev") or None,
        "next_job_id": rec.get("next") or None,
        "callback_url": env.get("callback_url"),
        "metadata": env.get("metadata") or {},
        # Invoice fields tfq passed to the API without checking them.
        "unchecked_fields": env.get("unchecked") or [],
    }
