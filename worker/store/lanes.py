"""Per-CUIT lanes in Redis: every state change is one Lua script in `worker/store/lua/`.

A lane is a FIFO of job ids, a state hash (lease + fencing token, gap clock, pause) and an
entry in one sorted set of ready lanes scored by the earliest time it may send again.
Any number of dispatchers and workers can run these scripts at once and stay consistent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import redis

from worker.store.keys import Keys, lua_prelude

SCRIPTS = (
    "enqueue",
    "claim",
    "presend",
    "transition",
    "release",
    "pause",
    "resume",
    "reap",
    "renew",
    "down",
    "due_claim",
    "begin",
    "seq",
    "callback_new",
    "callback_settle",
    "callback_attempt",
    "callback_replay",
    "query",
    "sighting",
    "lift_sightings",
    "tally",
    "schedule_claim",
    "archive_done",
    "account_turn",
    "pdf_kept",
    "pdf_retry",
)


def _load(name: str) -> str:
    lua = resources.files("worker.store") / "lua"
    return lua_prelude() + (lua / "lib.lua").read_text() + (lua / f"{name}.lua").read_text()


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(raw: Any) -> dict[str, Any] | None:
    """A job hash with text fields decoded; `env` stays bytes (compressed)."""
    if not raw:
        return None
    return {text(k): (v if k == b"env" else text(v)) for k, v in raw.items()}


@dataclass(frozen=True)
class Claims:
    leases: list[tuple[str, str]]  # (cuit, fencing token)
    next_ready: float | None  # earliest ready score (epoch s) after this claim
    down_until: float | None  # the service is down until then: nothing was claimed
    now: float  # Redis' clock when claiming


@dataclass(frozen=True)
class Presend:
    verdict: str  # go, wait, early, down, spent, stale
    value: float | None = None  # go: send time; wait: seconds; early/down: epoch s
    why: str = ""  # wait/early: "gap" (this CUIT's) or "account" (pacing of all calls)
    spent_index: int = 0  # spent: the batch's first job that has had its bound of sends
    spent_sends: int = 0  # spent: how many paid calls that job has had

    @property
    def go(self) -> bool:
        return self.verdict == "go"


@dataclass(frozen=True)
class NewJob:
    id: str
    cuit: str
    external_reference: str
    punto_venta: int
    tipo: str
    envelope: bytes  # zlib-compressed JSON (worker.store.jobs.pack_envelope)


class LaneStore:
    """The lane scripts and the reads around them, over one Redis connection pool."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.r = client
        self.keys = keys
        self.p = keys.prefix
        self._scripts = {name: client.register_script(_load(name)) for name in SCRIPTS}

    def run_script(self, name: str, *args: Any) -> Any:
        """Run one of the scripts in worker/store/lua (the prefix is always its first argument)."""
        return self._scripts[name](args=[self.p, *args])

    def now(self) -> float:
        seconds, micros = self.r.time()
        return float(seconds) + float(micros) / 1_000_000

    # --- writes (each one script) -------------------------------------------------------

    def enqueue(self, jobs: list[NewJob], batch: str = "") -> list[tuple[str, str, str]]:
        """[(outcome 'created'|'duplicate', job id, previous id)] in the order given."""
        args: list[Any] = [batch]
        for j in jobs:
            args += [j.id, j.cuit, j.external_reference, j.punto_venta, j.tipo, j.envelope]
        flat = [text(x) for x in self.run_script("enqueue", *args)]
        return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]

    def claim(
        self, max_claims: int, lease_seconds: float, lookahead_seconds: float, owner: str
    ) -> Claims:
        flat = [
            text(x)
            for x in self.run_script("claim", max_claims, lease_seconds, lookahead_seconds, owner)
        ]
        leases = [(flat[i], flat[i + 1]) for i in range(3, len(flat), 2)]
        return Claims(
            leases=leases,
            next_ready=float(flat[0]) if flat[0] else None,
            down_until=float(flat[1]) if flat[1] else None,
            now=float(flat[2]),
        )

    def presend(
        self,
        cuit: str,
        token: str,
        *,
        gap_seconds: float,
        min_interval_seconds: float,
        max_wait_seconds: float,
        max_sends: int = 0,
        jobs: list[tuple[str, int, str]],
    ) -> Presend:
        """Atomic last check (lease, service, spend bound, gap, account pacing) and intent
        record."""
        args: list[Any] = [
            cuit, token, gap_seconds, min_interval_seconds, max_wait_seconds, max_sends
        ]  # fmt: skip
        for job_id, numero, fingerprint in jobs:
            args += [job_id, numero, fingerprint]
        res = [text(x) for x in self.run_script("presend", *args)]
        if res[0] == "spent":
            return Presend("spent", spent_index=int(res[1]), spent_sends=int(res[2]))
        return Presend(
            res[0], float(res[1]) if len(res) > 1 else None, res[2] if len(res) > 2 else ""
        )

    def query_turn(
        self,
        cuit: str,
        token: str,
        endpoint: str,
        *,
        min_interval_seconds: float,
        max_wait_seconds: float,
        counter: str = "",
        bound: int = 0,
    ) -> Presend:
        """A query's turn under account pacing (and its count, for a paid query):
        go, wait (seconds), early (epoch s), spent (count in `spent_sends`) or stale."""
        res = [
            text(x)
            for x in self.run_script(
                "query",
                cuit,
                token,
                min_interval_seconds,
                max_wait_seconds,
                endpoint,
                counter,
                bound,
            )
        ]
        if res[0] == "spent":
            return Presend("spent", spent_sends=int(res[1]))
        return Presend(res[0], float(res[1]) if len(res) > 1 else None)

    def refund_call(self, cuit: str, token: str, counter: str) -> int:
        """Take one call back from a lane's count (a maintenance refusal was not billed)."""
        return int(self.run_script("tally", cuit, token, counter))

    def outage_sighting(self, cuit: str, window_seconds: float) -> int:
        """Record that `cuit` saw an outage; how many CUITs saw one within the window."""
        return int(self.run_script("sighting", cuit, window_seconds))

    def transition(
        self,
        cuit: str,
        token: str,
        job_id: str,
        status: str,
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

    def release(
        self,
        cuit: str,
        token: str,
        *,
        not_before: float,
        gap_seconds: float,
        failures: int | None = None,
        account_not_before: float | None = None,
    ) -> tuple[int, float] | None:
        """Unlease; the next slot is max(not_before, last send + gap). None when stale."""
        res = [
            text(x)
            for x in self.run_script(
                "release",
                cuit,
                token,
                not_before,
                gap_seconds,
                "" if failures is None else failures,
                "" if account_not_before is None else account_not_before,
            )
        ]
        if res[0] == "stale":
            return None
        return int(res[0]), float(res[1])

    def begin(self, cuit: str, token: str) -> bool:
        """Mark `token` as being worked; False when another handler already is (a duplicate
        delivery of the same claim) or the lease is no longer this token's."""
        return bool(self.run_script("begin", cuit, token))

    def record_attention(self, job_id: str, reason: str) -> None:
        """Queue an `invoice.attention` event for a job a human must look at."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.job(job_id), "attention", reason)
        pipe.zadd(self.keys.outbox, {f"invoice.attention|{job_id}|{int(time.time())}": time.time()})
        pipe.execute()

    def pause(
        self,
        cuit: str,
        reason: str,
        until: float | None = None,
        *,
        spent_job: str = "",
        kind: str = "",
    ) -> None:
        """Pause a lane; `spent_job` names the job the spend guard stopped at (a resume
        gives it a fresh bound); kind "outage": the CUIT's own sighting of an outage, lifted
        by a good health check (`lift_sightings`)."""
        self.run_script("pause", cuit, reason, "" if until is None else until, spent_job, kind)

    def has_sightings(self) -> bool:
        return bool(self.r.zcard(self.keys.sightings))

    def lift_sightings(self) -> int:
        """Resume the lanes paused by their own sighting of an outage; how many."""
        return int(self.run_script("lift_sightings"))

    def resume(self, cuit: str) -> bool:
        return bool(self.run_script("resume", cuit))

    def reap(self, max_lanes: int = 100) -> list[str]:
        return [text(x) for x in self.run_script("reap", max_lanes)]

    def renew(self, leases: list[tuple[str, str]], lease_seconds: float) -> int:
        args: list[Any] = [lease_seconds]
        for cuit, token in leases:
            args += [cuit, token]
        return int(self.run_script("renew", *args))

    def set_down(
        self,
        until: float,
        reason: str,
        *,
        backoff_base_seconds: float = 1.0,
        backoff_cap_seconds: float = 300.0,
        jitter: float = 1.0,
    ) -> tuple[int, float]:
        """Every lane waits until `until` (or a backoff by this outage's probing rounds,
        if later); returns (strikes, window end)."""
        strikes, window = self.run_script(
            "down", until, reason, backoff_base_seconds, backoff_cap_seconds, jitter
        )
        return int(strikes), float(window)

    def clear_down(self) -> None:
        self.run_script("down", 0, "", 0, 0, 0)

    # --- reads --------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        return _record(self.r.hgetall(self.keys.job(job_id)))

    def jobs(self, job_ids: list[str]) -> list[dict[str, Any] | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [_record(raw) for raw in pipe.execute()]

    def head(self, cuit: str, count: int) -> list[str]:
        return [text(x) for x in self.r.lrange(self.keys.lane(cuit), 0, count - 1)]

    def lane_state(self, cuit: str) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.r.hgetall(self.keys.lane_state(cuit)).items()}

    def depth(self, cuit: str) -> int:
        return int(self.r.llen(self.keys.lane(cuit)))

    def down(self) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.r.hgetall(self.keys.down).items()}

    def batch_counts(self, name: str) -> dict[str, Any] | None:
        """A batch's counters: total and jobs per status."""
        raw = self.r.hgetall(self.keys.batch(name))
        if not raw:
            return None
        counts = {text(k): text(v) for k, v in raw.items()}
        by_status = {
            s: int(counts.get(s, 0)) for s in ("queued", "sending", "unknown", "issued", "rejected")
        }
        return {
            "batch": name,
            "total": int(counts.get("total", 0)),
            "counts": by_status,
            "created": float(counts.get("created", 0)),
            "completed": float(counts["completed"]) if counts.get("completed") else None,
        }

    def job_id_for(self, cuit: str, external_reference: str) -> str | None:
        found = self.r.hget(self.keys.idem(cuit), external_reference)
        return text(found) if found else None

    def next_number(self, cuit: str, punto_venta: int, tipo: str) -> int | None:
        value = self.r.get(self.keys.seq(cuit, punto_venta, tipo))
        return int(value) if value else None

    def set_next_number(
        self,
        cuit: str,
        punto_venta: int,
        tipo: str,
        numero: int,
        token: str,
        *,
        mode: Literal["asked", "verified", "confirmed"] = "confirmed",
    ) -> bool:
        """Record the next number (or numeracion's raw answer, mode 'asked'), only under
        the lane's current lease. See `worker/store/lua/seq.lua` for the modes."""
        return bool(self.run_script("seq", cuit, token, f"{punto_venta}:{tipo}", numero, mode))

    def asked_number(self, cuit: str, punto_venta: int, tipo: str) -> int | None:
        """numeracion's raw answer, while it waits to be verified."""
        value = self.r.hget(self.keys.lane_state(cuit), f"numeracion:{punto_venta}:{tipo}")
        return int(value) if value else None

    def forget_next_number(self, cuit: str, punto_venta: int, tipo: str) -> None:
        self.r.delete(self.keys.seq(cuit, punto_venta, tipo))
