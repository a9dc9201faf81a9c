"""Every Redis key tfq writes, and the fields of its hashes, in one place (arq's
`constants.py` habit).

The Lua scripts get the key names from `lua_prelude()`, generated from `TEMPLATES`, so
no other code builds a key string. `{}` is the variable part (a job id, a CUIT, ...).
Python code names hash fields by the enums below, never by bare strings; the Lua scripts
in `worker/store/lua/` spell the same names.
"""

from __future__ import annotations

from enum import StrEnum

TEMPLATES: dict[str, str] = {
    # One hash per job: status, envelope, numbering, result, attempts.
    "job": "job:{}",
    # Idempotency: per issuing CUIT, external_reference -> job id. Never expires.
    "idem": "idem:{}",
    # A CUIT's lane: FIFO list of job ids, and its state hash (lease, gap clock, pause).
    "lane": "lane:{}",
    "lane_state": "lane:{}:s",
    # Lanes with work, scored by the earliest time (epoch seconds) they may send.
    "ready": "ready",
    # Leased lanes, scored by lease expiry (for the reaper).
    "leased": "leased",
    # Paused lanes, scored by the end of the pause (+inf when it has none).
    "paused": "paused",
    # Every CUIT that ever had a lane.
    "lanes": "lanes",
    # Monotonic fencing-token counter for leases.
    "fence": "fence",
    # Pacing of one TusFacturas account (its next free call slot), by account name (never
    # a credential: worker.tenants names accounts); and the service-down window.
    "account": "account:{}",
    "down": "down",
    # CUITs that saw an outage on their own calls, scored by when (a quorum makes it global).
    "sightings": "sightings",
    # Wake-up list for dispatchers (work arrived for an idle CUIT, or a slot came free).
    "wake": "wake",
    # Backpressure: the send workers alive (scored by when their registration lapses),
    # their sending slots (Celery concurrency) by worker name, the lanes in flight
    # ("queued": claimed, not yet begun; a worker's name: begun by it), and a flag set
    # while a dispatcher waits for a free slot (the next release wakes it).
    "workers": "workers",
    "worker_slots": "workers:slots",
    "inflight": "workers:inflight",
    "slots_full": "workers:full",
    # Next number per CUIT + punto de venta + tipo, as last confirmed.
    "seq": "seq:{}",
    # Batches: counters per status; index of batches by creation time.
    "batch": "batch:{}",
    "batch_cuits": "batch:{}:cuits",
    "batches": "batches",
    # Jobs needing a human (rejected, unknown), scored by time.
    "attention": "attention",
    # Unfinished jobs scored by creation time (the oldest one's age is a metric).
    "pending": "pending",
    # Global counters (metrics).
    "stats": "stats",
    # Callback deliveries: one hash each; due ones scored by next attempt time (a claimed
    # one is pushed ahead by a visibility timeout); exhausted ones in the dead-letter set.
    "callback": "cb:{}",
    # Outbox of events to publish ("invoice.issued|<job id>", "batch.completed|<batch>|<job
    # id>", ...), written in the same script as the status change they report.
    "outbox": "outbox",
    # Finished jobs whose record is not yet in the SQL archive, scored by when they are
    # due (a claimed one is pushed ahead by a visibility timeout).
    "archive": "archive",
    # Issued jobs whose PDFs are not yet in the PDF store, scored by the next try.
    "pdfs": "pdfs",
    # Held while a credit note for the job is planned and queued (`InvoiceQueue.void`), so
    # two voids of one invoice never both find it uncredited.
    "void_lock": "void:{}",
    "callbacks_due": "callbacks:due",
    "callbacks_dead": "callbacks:dead",
    # `tfq audit`: each CUIT's last audit (its summary, JSON), by CUIT; the metrics add
    # them up (worker/accounting/audit.py).
    "audits": "audits",
    # The web console's audit log: every operator action, newest first (JSON; capped).
    "console_log": "console:log",
}


class Keys:
    """Key names under one prefix (`TFQ_KEY_PREFIX`, default `tfq:`)."""

    def __init__(self, prefix: str = "tfq:"):
        self.prefix = prefix

    def _k(self, name: str, part: str = "") -> str:
        return self.prefix + TEMPLATES[name].replace("{}", part)

    def job(self, job_id: str) -> str:
        return self._k("job", job_id)

    def idem(self, cuit: str) -> str:
        return self._k("idem", cuit)

    def lane(self, cuit: str) -> str:
        return self._k("lane", cuit)

    def lane_state(self, cuit: str) -> str:
        return self._k("lane_state", cuit)

    def seq(self, cuit: str, punto_venta: int, tipo: str) -> str:
        return self._k("seq", f"{cuit}:{punto_venta}:{tipo}")

    def batch(self, name: str) -> str:
        return self._k("batch", name)

    def void_lock(self, job_id: str) -> str:
        return self._k("void_lock", job_id)

    def batch_cuits(self, name: str) -> str:
        return self._k("batch_cuits", name)

    @property
    def ready(self) -> str:
        return self._k("ready")

    @property
    def leased(self) -> str:
        return self._k("leased")

    @property
    def paused(self) -> str:
        return self._k("paused")

    @property
    def lanes(self) -> str:
        return self._k("lanes")

    @property
    def fence(self) -> str:
        return self._k("fence")

    def account(self, name: str) -> str:
        return self._k("account", name)

    @property
    def down(self) -> str:
        return self._k("down")

    @property
    def sightings(self) -> str:
        return self._k("sightings")

    @property
    def wake(self) -> str:
        return self._k("wake")

    @property
    def workers(self) -> str:
        return self._k("workers")

    @property
    def worker_slots(self) -> str:
        return self._k("worker_slots")

    @property
    def inflight(self) -> str:
        return self._k("inflight")

    @property
    def batches(self) -> str:
        return self._k("batches")

    @property
    def attention(self) -> str:
        return self._k("attention")

    @property
    def pending(self) -> str:
        return self._k("pending")

    @property
    def stats(self) -> str:
        return self._k("stats")

    def callback(self, delivery_id: str) -> str:
        return self._k("callback", delivery_id)

    @property
    def outbox(self) -> str:
        return self._k("outbox")

    @property
    def archive(self) -> str:
        return self._k("archive")

    @property
    def pdfs(self) -> str:
        return self._k("pdfs")

    @property
    def callbacks_due(self) -> str:
        return self._k("callbacks_due")

    @property
    def callbacks_dead(self) -> str:
        return self._k("callbacks_dead")

    @property
    def audits(self) -> str:
        return self._k("audits")

    @property
    def console_log(self) -> str:
        return self._k("console_log")

    def pattern(self) -> str:
        """Matches every key tfq writes (for scans in tests and tools)."""
        return self.prefix + "*"


class JobField(StrEnum):
    """Fields of a job hash (`job:<id>`)."""

    ID = "id"
    CUIT = "cuit"
    EXTERNAL_REFERENCE = "ref"
    PUNTO_VENTA = "pv"
    TIPO = "tipo"
    BATCH = "batch"
    ENVELOPE = "env"  # zlib-compressed JSON (worker.store.jobs.pack_envelope)
    PREVIOUS = "prev"  # the rejected job this one replaces
    NEXT = "next"  # the job that replaced this rejected one
    STATUS = "status"
    CREATED = "created"
    UPDATED = "updated"
    FINISHED = "finished"
    # The intent record, written with the last check before a send.
    NUMERO = "numero"
    FINGERPRINT = "fingerprint"
    SENT_AT = "sent_at"
    FENCE = "fence"
    ATTEMPTS = "attempts"  # paid invoicing calls made for the job
    ATTEMPTS_BASE = "attempts_base"  # attempts when a resume granted a fresh bound
    # The result of an issue.
    CAE = "cae"
    CAE_VENCIMIENTO = "cae_vencimiento"
    PDF_URL = "pdf_url"
    TICKET_URL = "ticket_url"
    AFIP_QR = "afip_qr"
    OBSERVACIONES = "observaciones"
    VENCIMIENTO_PAGO = "vencimiento_pago"
    REQUIERE_FEC = "requiere_fec"
    MICROSITIOS = "micrositios"
    TEST_MODE = "test_mode"
    ERRORS = "errors"  # JSON list of strings: why the job was rejected
    ISSUED_AT = "issued_at"
    # The last failed call, and reconciliation of an unknown outcome.
    LAST_KIND = "last_kind"
    LAST_ERROR = "last_error"
    LAST_MESSAGES = "last_messages"  # JSON list of the API's messages
    REPLIED = "replied"
    RECONCILES = "reconciles"
    MISSING = "missing"  # the number a free query did not find
    ATTENTION = "attention"  # why a human must look at the job
    ATTEMPT_LOG = "log"
    # The PDFs kept in the PDF store (worker.archive.keeper): where, sha256, size in bytes;
    # and the keeper's tries, its last error, and its billed `regenerar_pdf` calls.
    PDF_PATH = "pdf_path"
    PDF_SHA256 = "pdf_sha256"
    PDF_SIZE = "pdf_size"
    TICKET_PATH = "ticket_path"
    TICKET_SHA256 = "ticket_sha256"
    TICKET_SIZE = "ticket_size"
    PDF_ATTEMPTS = "pdf_attempts"
    PDF_ERROR = "pdf_error"
    PDF_REGENERATIONS = "pdf_regenerations"


class LaneField(StrEnum):
    """Fields of a lane's state hash (`lane:<cuit>:s`)."""

    TOKEN = "token"  # noqa: S105 (the lease's fencing token, not a secret)
    EXPIRES = "expires"
    OWNER = "owner"
    CLAIMED = "claimed"
    WORKING = "working"  # the token a handler is working (a redelivery is refused)
    PAUSED = "paused"  # the pause's reason
    PAUSED_UNTIL = "paused_until"
    PAUSED_AT = "paused_at"
    PAUSED_KIND = "paused_kind"
    SPENT_JOB = "spent_job"
    NUMERACION_CALLS = "numeracion_calls"
    NEXT_AT = "next_at"
    GAP = "gap"
    FAILURES = "failures"
    LAST_SENT = "last_sent"
    LAST_DONE = "last_done"
    SOLO = "solo"  # head jobs still to send one by one after a whole-batch refusal
    WORKER = "worker"  # the send worker that began the lease (its in-flight count)
    ACCOUNT = "account"  # the account its calls last counted against (claims pace by it)
    RESERVED = "reserved"  # the account slot reserved for its next claim (epoch s)

    @staticmethod
    def numeracion(punto_venta: int, tipo: str) -> str:
        """numeracion's raw answer for a PDV + tipo, while it waits to be verified."""
        return f"numeracion:{punto_venta}:{tipo}"


class BatchField(StrEnum):
    """Fields of a batch hash (`batch:<name>`), besides one count per job status."""

    TOTAL = "total"
    CREATED = "created"
    UPDATED = "updated"
    LAST_FINAL = "last_final"
    COMPLETED = "completed"


class DownField(StrEnum):
    """Fields of the service-down window (`down`)."""

    UNTIL = "until"
    REASON = "reason"
    STRIKES = "strikes"
    SINCE = "since"


class AccountField(StrEnum):
    """Fields of an account's pacing hash (`account:<name>`)."""

    NEXT = "next"  # the next free call slot (set by each call, and by a 429)
    CLAIM_NEXT = "claim_next"  # the next slot not yet reserved by a claim
    INTERVAL = "interval"  # the least time between its calls (seconds)


class CallbackField(StrEnum):
    """Fields of a callback delivery hash (`cb:<id>`)."""

    ID = "id"
    EVENT = "event"
    CUIT = "cuit"
    URL = "url"
    BODY = "body"
    ATTEMPTS = "attempts"
    STATUS = "status"
    CREATED = "created"
    HTTP_STATUS = "http_status"
    DELIVERED = "delivered"
    LAST_ERROR = "last_error"
    NEXT_AT = "next_at"


class Stat(StrEnum):
    """Counters of the `stats` hash, besides `jobs:<status>` (`Stat.jobs`),
    `calls:<endpoint>` (`Stat.calls`) and `failed:<class>` (`Stat.failed`)."""

    INVOICING_CALLS = "calls:invoicing"
    LEASES_REAPED = "leases:reaped"
    LANES_SPEND_PAUSED = "lanes:spend_paused"
    CALLBACKS_CREATED = "callbacks:created"
    CALLBACKS_DELIVERED = "callbacks:delivered"
    CALLBACKS_DEAD = "callbacks:dead"
    PDFS_FAILED = "pdfs:failed"  # PDFs given up after their last download attempt

    @staticmethod
    def jobs(status: str) -> str:
        return f"jobs:{status}"

    @staticmethod
    def calls(endpoint: str) -> str:
        return f"calls:{endpoint}"

    @staticmethod
    def failed(kind: str) -> str:
        """Failed invoicing calls of one class (transient, ambiguous, rejected, ...)."""
        return f"{FAILED_PREFIX}{kind}"


FAILED_PREFIX = "failed:"


def lua_prelude() -> str:
    """Lua functions `K.<name>(P, part)` mirroring TEMPLATES; P is the prefix (ARGV[1])."""
    lines = ["local K = {}"]
    for name, template in TEMPLATES.items():
        head, _, tail = template.partition("{}")
        if "{}" in template:
            lines.append(f"K.{name} = function(P, x) return P .. '{head}' .. x .. '{tail}' end")
        else:
            lines.append(f"K.{name} = function(P) return P .. '{head}' end")
    return "\n".join(lines) + "\n"
