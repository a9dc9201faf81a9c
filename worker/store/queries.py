"""Read-only views over many lanes and jobs at once, for the operations commands.

Each function returns a JSON-ready record: exactly what `tfq lanes --json` and
`tfq failed --json` print. Times are ISO 8601 UTC; "how long until" is in seconds in
fields named `*_in_seconds`. Turning them into text is the command line's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from worker.store.jobs import JobResult, JobStatus
from worker.store.lanes import LaneStore
from worker.store.scripts import text

PIPELINE_CHUNK = 1000  # lanes read per Redis round trip


class LaneRow(TypedDict):
    """One lane as `tfq lanes` shows it."""

    cuit: str
    depth: int
    status: str  # sending, paused, idle, ready or waiting
    next_slot_at: str | None
    next_slot_in_seconds: float | None
    paused_reason: str | None
    paused_until: str | None
    leased: bool
    lease_owner: str | None
    lease_expires_in_seconds: float | None
    failures: int
    last_sent_at: str | None


class ServiceDown(TypedDict):
    until: str | None
    reason: str | None


class LanesDoc(TypedDict):
    """Every lane's row (cut to a limit) and totals over all of them."""

    now: str | None
    service_down: ServiceDown | None
    lanes: int
    with_jobs: int
    queued_jobs: int
    paused: int
    leased: int
    shown: int
    rows: list[LaneRow]


class FailedJob(TypedDict):
    """A rejected or unknown job, with the API's words."""

    job_id: str
    at: str | None
    cuit: str
    external_reference: str
    batch: str | None
    status: str
    tipo: str | None
    punto_venta: int | None
    numero: int | None
    messages: list[Any]
    last_error: str | None
    attempts: int


class FailedDoc(TypedDict):
    total: int
    shown: int
    jobs: list[FailedJob]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _float(value: str | None) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


def lane_row(
    cuit: str, depth: int, state: dict[str, str], ready_at: float | None, now: float
) -> LaneRow:
    """One lane from its depth, state hash and ready score (epoch s); `now` in epoch s."""
    leased = bool(state.get("token"))
    paused = state.get("paused") or None
    paused_until = _float(state.get("paused_until"))
    next_at = _float(state.get("next_at"))
    next_slot: float | None = None
    if leased:
        status = "sending"
    elif paused:
        status = "paused"
        if paused_until is not None and depth:
            next_slot = max(paused_until, next_at or 0.0)
    elif depth == 0:
        status = "idle"
    else:
        next_slot = ready_at if ready_at is not None else max(now, next_at or 0.0)
        status = "ready" if next_slot <= now else "waiting"
    expires = _float(state.get("expires"))
    return {
        "cuit": cuit,
        "depth": depth,
        "status": status,
        "next_slot_at": iso(next_slot),
        "next_slot_in_seconds": None if next_slot is None else round(max(0.0, next_slot - now), 1),
        "paused_reason": paused,
        "paused_until": iso(paused_until),
        "leased": leased,
        "lease_owner": state.get("owner") if leased else None,
        "lease_expires_in_seconds": (
            round(expires - now, 1) if leased and expires is not None else None
        ),
        "failures": int(state.get("failures") or 0),
        "last_sent_at": iso(_float(state.get("last_sent"))),
    }


@dataclass(frozen=True)
class LaneRead:
    """What one lane holds now: its depth, state hash, ready score, and the
    (punto de venta, tipo) of its first jobs as runs of identical ones, each with its
    length (None for jobs whose record is gone)."""

    cuit: str
    depth: int
    state: dict[str, str]
    ready_at: float | None
    runs: list[tuple[tuple[str, str] | None, int]]


# Lanes per lane_heads.lua call: one call reads up to this many lanes' first jobs inside
# Redis, so it is kept short enough not to hold Redis up for others.
LANE_HEADS_CHUNK = 50


def lane_reads(store: LaneStore, cuits: list[str], *, head: int = 0) -> list[LaneRead]:
    """The lanes of `cuits` (in that order): depth, state and ready score of each, and the
    placements of each one's first `head` jobs as runs (none with 0). One script call per
    LANE_HEADS_CHUNK lanes (lane_heads.lua), not a command per job; without heads, per
    PIPELINE_CHUNK lanes."""
    out: list[LaneRead] = []
    size = LANE_HEADS_CHUNK if head else PIPELINE_CHUNK
    for start in range(0, len(cuits), size):
        chunk = cuits[start : start + size]
        replies = store.run_script("lane_heads", head, *chunk)
        for cuit, (depth, raw_state, score, flat) in zip(chunk, replies, strict=True):
            state = _texts_pairs(raw_state)
            runs: list[tuple[tuple[str, str] | None, int]] = []
            for i in range(0, len(flat), 3):
                pv, tipo = text(flat[i]), text(flat[i + 1])
                runs.append(((pv, tipo) if tipo else None, int(flat[i + 2])))
            ready = text(score)
            out.append(LaneRead(cuit, int(depth), state, float(ready) if ready else None, runs))
    return out


def _texts_pairs(flat: list[Any]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def lanes_doc(store: LaneStore, *, limit: int) -> LanesDoc:
    """Every lane, deepest first (then by CUIT), cut to `limit`; totals over all of them."""
    cuits = sorted(text(c) for c in store.r.smembers(store.keys.lanes))
    now = store.now()
    rows = [
        lane_row(lane.cuit, lane.depth, lane.state, lane.ready_at, now)
        for lane in lane_reads(store, cuits)
    ]
    rows.sort(key=lambda row: (-row["depth"], row["cuit"]))
    down = store.down()
    down_until = _float(down.get("until"))
    return {
        "now": iso(now),
        "service_down": (
            {"until": iso(down_until), "reason": down.get("reason") or None}
            if down_until is not None and down_until > now
            else None
        ),
        "lanes": len(rows),
        "with_jobs": sum(1 for row in rows if row["depth"]),
        "queued_jobs": sum(row["depth"] for row in rows),
        "paused": sum(1 for row in rows if row["paused_reason"]),
        "leased": sum(1 for row in rows if row["leased"]),
        "shown": min(limit, len(rows)),
        "rows": rows[:limit],
    }


def failed_doc(store: LaneStore, *, limit: int) -> FailedDoc:
    """Rejected and unknown jobs (the attention index), newest first, with the API's words."""
    r, keys = store.r, store.keys
    total = int(r.zcard(keys.attention))
    raw = r.zrevrange(keys.attention, 0, max(0, limit - 1), withscores=True) if limit else []
    pairs: list[tuple[Any, float]] = list(raw)  # type: ignore[arg-type]
    ids = [text(member) for member, _ in pairs]
    jobs: list[FailedJob] = []
    for (_, score), rec in zip(pairs, store.jobs(ids), strict=True):
        if rec is None:  # a finished record past its retention
            continue
        result = JobResult.from_record(rec).model_dump(mode="json")
        unknown = result["status"] == JobStatus.UNKNOWN
        jobs.append(
            {
                "job_id": result["job_id"],
                "at": iso(float(score)),
                "cuit": result["cuit"],
                "external_reference": result["external_reference"],
                "batch": result["batch"],
                "status": result["status"],
                "tipo": result["tipo"],
                "punto_venta": result["punto_venta"],
                # An unknown job keeps the number it was sent with until reconciled.
                "numero": int(rec["numero"]) if unknown and rec.get("numero") else None,
                "messages": result["errors"] or result["last_messages"],
                "last_error": result["last_error"],
                "attempts": result["attempts"],
            }
        )
    return {"total": total, "shown": len(jobs), "jobs": jobs}


def lane_position(store: LaneStore, cuit: str, job_id: str) -> int | None:
    """A job's place in its CUIT's lane, 1 at the head; None when it is not in it."""
    position = store.r.lpos(store.keys.lane(cuit), job_id)
    return int(position) + 1 if position is not None else None  # type: ignore[arg-type]


def attention_records(
    store: LaneStore, *, since: float | None = None, limit: int
) -> list[tuple[float, dict[str, Any]]]:
    """(time entered, record) of the newest `limit` jobs of the attention index (rejected
    and unknown), newest first, those since `since` (epoch s) only; a record past its
    retention is left out."""
    r, keys = store.r, store.keys
    low: float | str = "-inf" if since is None else since
    raw = r.zrevrangebyscore(keys.attention, "+inf", low, start=0, num=limit, withscores=True)
    pairs: list[tuple[Any, float]] = list(raw)  # type: ignore[arg-type]
    records = store.jobs([text(member) for member, _ in pairs])
    return [(float(score), rec) for (_, score), rec in zip(pairs, records, strict=True) if rec]


def lane_jobs(store: LaneStore, cuit: str, *, limit: int) -> list[dict[str, Any]]:
    """The records of the first `limit` jobs queued in a CUIT's lane, head first."""
    return [rec for rec in store.jobs(store.head(cuit, limit)) if rec is not None]
