"""Every Redis key tfq writes, in one place (arq's `constants.py` habit).

The Lua scripts get the same names from `lua_prelude()`, generated from `TEMPLATES`, so
no other code builds a key string. `{}` is the variable part (a job id, a CUIT, ...).
"""

from __future__ import annotations

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
    # Account pacing (next free call slot) and the service-down window.
    "account": "account",
    "down": "down",
    # CUITs that saw an outage on their own calls, scored by when (a quorum makes it global).
    "sightings": "sightings",
    # Wake-up list for dispatchers (work arrived for an idle CUIT).
    "wake": "wake",
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
    "callbacks_due": "callbacks:due",
    "callbacks_dead": "callbacks:dead",
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

    @property
    def account(self) -> str:
        return self._k("account")

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

    def pattern(self) -> str:
        """Matches every key tfq writes (for scans in tests and tools)."""
        return self.prefix + "*"


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
