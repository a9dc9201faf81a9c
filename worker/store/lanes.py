"""Per-CUIT lanes in Redis: every state change is one Lua script in `worker/store/lua/`.

A lane is a FIFO of job ids, a state hash (lease + fencing token, gap clock, pause) and an
entry in one sorted set of ready lanes scored by the earliest time it may send again.
Any number of dispatchers and workers can run these scripts at once and stay consistent.
`LaneStore` is the store the rest of tfq holds: these lane operations on top of the job
records of `JobStore`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from worker.store.jobs import JobStore, job_record
from worker.store.keys import DownField, JobField, LaneField
from worker.store.scripts import (
    Claims,
    DownWindow,
    Released,
    Turn,
    read_claim,
    read_down,
    read_presend,
    read_query,
    read_release,
    text,
)


def _hash(raw: Any) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def _float(value: str | None) -> float | None:
    return float(value) if value else None


@dataclass(frozen=True)
class Lane:
    """What a lane's state hash says, typed (a missing field reads as None or 0)."""

    token: str | None  # the lease's fencing token, while leased
    paused: str | None  # the pause's reason
    paused_until: float | None  # epoch s; None while paused: until someone resumes it
    next_at: float | None  # the lane's next slot (epoch s)
    gap: float | None  # the gap the last release used (seconds)
    failures: int

    @classmethod
    def from_hash(cls, state: dict[str, str]) -> Lane:
        return cls(
            token=state.get(LaneField.TOKEN) or None,
            paused=state.get(LaneField.PAUSED) or None,
            paused_until=_float(state.get(LaneField.PAUSED_UNTIL)),
            next_at=_float(state.get(LaneField.NEXT_AT)),
            gap=_float(state.get(LaneField.GAP)),
            failures=int(state.get(LaneField.FAILURES) or 0),
        )


@dataclass(frozen=True)
class QueueGauges:
    """The queue's state at one instant, for the metrics."""

    stats: dict[str, int]  # the `stats` counters (`Stat`)
    oldest_pending: float | None  # creation time (epoch s) of the oldest unfinished job
    paused_lanes: int
    ready_lanes: int
    leased_lanes: int
    callbacks_due: int
    callbacks_dead: int
    down_until: float | None
    now: float  # Redis' clock
    archive_backlog: int  # finished jobs whose row is not yet written (the `archive` schedule)
    # The last change (epoch s) of the longest-waiting job among the archive's next entries:
    # scores move ahead while a claim is retried, the job's own clock does not.
    archive_oldest: float | None
    pdf_backlog: int  # issued jobs whose PDFs are not yet kept (the `pdfs` schedule)
    send_slots: int = 0  # sending slots of the live send workers (backpressure)
    lanes_in_flight: int = 0  # claimed lanes holding a slot (queued or being worked)
    audits: dict[str, str] = field(default_factory=dict)  # CUIT -> its last audit (JSON)


# How many of the archive's next entries the gauges look at for the oldest one: claims
# reorder the schedule, so the head alone may be a job that finished a second ago.
ARCHIVE_AGE_SAMPLE = 50


class LaneStore(JobStore):
    """The lane scripts and the reads around them, over one Redis connection pool."""

    # --- writes (each one script) -------------------------------------------------------

    def claim(
        self,
        max_claims: int,
        lease_seconds: float,
        lookahead_seconds: float,
        owner: str,
        *,
        by_capacity: bool = False,
    ) -> Claims:
        """Lease due lanes; `by_capacity`: no more than the registered send workers have
        free slots (`register_worker`), so each claim starts as soon as it is published."""
        return read_claim(
            self.run_script(
                "claim", max_claims, lease_seconds, lookahead_seconds, owner, int(by_capacity)
            )
        )

    def register_worker(self, worker: str, slots: int, ttl_seconds: float) -> None:
        """A send worker's heartbeat: alive, with `slots` lanes at once (0: leaving)."""
        self.run_script("register", worker, slots, ttl_seconds)

    def presend(
        self,
        cuit: str,
        token: str,
        *,
        gap_seconds: float,
        account: str,
        min_interval_seconds: float,
        max_wait_seconds: float,
        max_sends: int = 0,
        jobs: list[tuple[str, int, str]],
    ) -> Turn:
        """Atomic last check (lease, service, spend bound, gap, the pacing of `account`,
        whose calls are at least `min_interval_seconds` apart) and intent record."""
        args: list[Any] = [
            cuit, token, gap_seconds, account, min_interval_seconds, max_wait_seconds, max_sends
        ]  # fmt: skip
        for job_id, numero, fingerprint in jobs:
            args += [job_id, numero, fingerprint]
        return read_presend(self.run_script("presend", *args))

    def query_turn(
        self,
        cuit: str,
        token: str,
        endpoint: str,
        *,
        account: str,
        min_interval_seconds: float,
        max_wait_seconds: float,
        counter: str = "",
        bound: int = 0,
    ) -> Turn:
        """A query's turn under the pacing of `account` (and its count, for a paid query):
        go, wait (seconds), early (epoch s), spent (count in `spent_sends`) or stale."""
        reply = self.run_script(
            "query", cuit, token, account, min_interval_seconds, max_wait_seconds, endpoint,
            counter, bound,
        )  # fmt: skip
        return read_query(reply)

    def refund_call(self, cuit: str, token: str, counter: str) -> int:
        """Take one call back from a lane's count (a maintenance refusal was not billed)."""
        return int(self.run_script("tally", cuit, token, counter))

    def outage_sighting(self, cuit: str, window_seconds: float) -> int:
        """Record that `cuit` saw an outage; how many CUITs saw one within the window."""
        return int(self.run_script("sighting", cuit, window_seconds))

    def release(
        self,
        cuit: str,
        token: str,
        *,
        not_before: float,
        gap_seconds: float,
        failures: int | None = None,
        account: str = "",
        account_not_before: float | None = None,
        account_interval: float = 0.0,
        reply_age_seconds: float = 0.0,
    ) -> Released | None:
        """Unlease; the next slot is max(not_before, last send + gap). None when stale.
        `account` and its least `account_interval` between calls pace the lane's next
        claims; with `account_not_before` (a 429), that account's calls wait too.
        `reply_age_seconds`: how long ago (by the worker's own clock) the reply to the
        lease's invoicing call came; the gap runs from then (0: from now)."""
        reply = self.run_script(
            "release",
            cuit,
            token,
            not_before,
            gap_seconds,
            "" if failures is None else failures,
            account,
            "" if account_not_before is None else account_not_before,
            account_interval,
            reply_age_seconds,
        )
        return read_release(reply)

    def begin(self, cuit: str, token: str, worker: str = "") -> bool:
        """Mark `token` as being worked (by the registered send worker `worker`, whose
        slot it holds); False when another handler already is (a duplicate delivery of
        the same claim) or the lease is no longer this token's."""
        return self.begin_head(cuit, token, worker, 0) is not None

    def begin_head(
        self, cuit: str, token: str, worker: str, count: int
    ) -> list[tuple[str, dict[str, Any] | None]] | None:
        """`begin`, and the lane's first `count` job ids with their records (None: gone),
        in one round trip; None when this handler may not work the lane."""
        reply = self.run_script("begin", cuit, token, worker, count)
        if not reply:
            return None
        items = iter(reply[1:])
        pairs = zip(items, items, strict=False)
        return [(text(job_id), job_record(_pairs(flat))) for job_id, flat in pairs]

    def take_solo(self, cuit: str, token: str) -> bool:
        """Whether the next send goes alone (after a whole-batch refusal), counting it off."""
        return bool(self.run_script("solo", cuit, token, "take", 0))

    def set_solo(self, cuit: str, token: str, count: int) -> bool:
        """The next `count` sends of the lane go one job each; False when stale."""
        return bool(self.run_script("solo", cuit, token, "set", count))

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

    def resume_paused(self, wanted: Callable[[str, str], bool]) -> list[str]:
        """Resume the lanes paused until resumed for which `wanted(cuit, reason)`; which."""
        cuits = [text(c) for c in self.r.zrangebyscore(self.keys.paused, "+inf", "+inf")]
        pipe = self.r.pipeline(transaction=False)
        for cuit in cuits:
            pipe.hget(self.keys.lane_state(cuit), LaneField.PAUSED)
        reasons = pipe.execute()
        return [
            cuit
            for cuit, reason in zip(cuits, reasons, strict=True)
            if reason is not None and wanted(cuit, text(reason)) and self.resume(cuit)
        ]

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
    ) -> DownWindow:
        """Every lane waits until `until` (or a backoff by this outage's probing rounds,
        if later)."""
        return read_down(
            self.run_script(
                "down", until, reason, backoff_base_seconds, backoff_cap_seconds, jitter
            )
        )

    def clear_down(self) -> None:
        self.run_script("down", 0, "", 0, 0, 0)

    # --- numbering (seq.lua) --------------------------------------------------------------

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
        value = self.r.hget(self.keys.lane_state(cuit), LaneField.numeracion(punto_venta, tipo))
        return int(value) if value else None

    def forget_next_number(self, cuit: str, punto_venta: int, tipo: str, token: str) -> bool:
        """The next send learns the number afresh; False when the lease is gone."""
        return bool(self.run_script("seq", cuit, token, f"{punto_venta}:{tipo}", 0, "forget"))

    # --- reads --------------------------------------------------------------------------

    def head(self, cuit: str, count: int) -> list[str]:
        return [text(x) for x in self.r.lrange(self.keys.lane(cuit), 0, count - 1)]

    def lane(self, cuit: str) -> Lane:
        return Lane.from_hash(self.lane_state(cuit))

    def lane_state(self, cuit: str) -> dict[str, str]:
        """The lane's state hash as it is (fields by `LaneField`), for operators' views."""
        return _hash(self.r.hgetall(self.keys.lane_state(cuit)))

    def depth(self, cuit: str) -> int:
        return int(self.r.llen(self.keys.lane(cuit)))

    def down(self) -> dict[str, str]:
        """The service-down window (fields by `DownField`); empty when the service is up."""
        return _hash(self.r.hgetall(self.keys.down))

    def wait_for_wake(self, timeout_seconds: int) -> bool:
        """Block until work arrives for an idle lane, or a lane becomes the earliest."""
        return bool(self.r.blpop([self.keys.wake], timeout=timeout_seconds))

    def gauges(self) -> QueueGauges:
        k = self.keys
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(k.stats)
        pipe.zrange(k.pending, 0, 0, withscores=True)
        pipe.zcard(k.paused)
        pipe.zcard(k.ready)
        pipe.zcard(k.leased)
        pipe.zcard(k.callbacks_due)
        pipe.hget(k.down, DownField.UNTIL)
        pipe.zcard(k.callbacks_dead)
        pipe.time()
        pipe.zcard(k.archive)
        pipe.zrange(k.archive, 0, ARCHIVE_AGE_SAMPLE - 1)
        pipe.zcard(k.pdfs)
        pipe.zrange(k.workers, 0, -1, withscores=True)
        pipe.hgetall(k.worker_slots)
        pipe.hvals(k.inflight)
        pipe.hgetall(k.audits)
        (
            stats, oldest, paused, ready, leased, cb_due, down_until, cb_dead, now,
            archive_backlog, archive_next, pdf_backlog, workers, slots, inflight, audits,
        ) = pipe.execute()  # fmt: skip
        clock = float(now[0]) + float(now[1]) / 1e6
        live = {text(w) for w, lapses in workers if lapses > clock}
        return QueueGauges(
            stats={name: int(value) for name, value in _hash(stats).items()},
            oldest_pending=float(oldest[0][1]) if oldest else None,
            paused_lanes=int(paused),
            ready_lanes=int(ready),
            leased_lanes=int(leased),
            callbacks_due=int(cb_due),
            callbacks_dead=int(cb_dead),
            down_until=float(text(down_until)) if down_until else None,
            now=clock,
            archive_backlog=int(archive_backlog),
            archive_oldest=self._last_change([text(x) for x in archive_next]),
            pdf_backlog=int(pdf_backlog),
            send_slots=sum(int(n) for w, n in slots.items() if text(w) in live),
            lanes_in_flight=sum(max(0, int(n)) for n in inflight),
            audits=_hash(audits),
        )

    def _last_change(self, job_ids: list[str]) -> float | None:
        """The earliest `updated` among these jobs (a record already gone is skipped)."""
        if not job_ids:
            return None
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), JobField.UPDATED)
        changes = [float(text(v)) for v in pipe.execute() if v]
        return min(changes) if changes else None


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """A Lua script's HGETALL reply (field, value, ...) as a dict."""
    items = iter(flat)
    return dict(zip(items, items, strict=False))
