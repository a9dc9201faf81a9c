"""The Lua scripts of `worker/store/lua/`: loading, registering, and one typed reader per
script reply, so no caller indexes a reply by position.

Each script's header lists its keys, arguments and reply; the readers here follow it.
A new script is one more name in `SCRIPTS` (and a reader, when its reply is not a number).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

from worker.store.keys import lua_prelude

# Every script's name: worker/store/lua/<name>.lua.
SCRIPTS: tuple[str, ...] = (
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
    "solo",
    "failed_call",
    "attention",
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
    "register",
    "lane_heads",
)


def load(name: str) -> str:
    """A script's source: the generated key table, the shared helpers, then the script."""
    lua = resources.files("worker.store") / "lua"
    return lua_prelude() + (lua / "lib.lua").read_text() + (lua / f"{name}.lua").read_text()


def register(client: redis.Redis) -> dict[str, Script]:
    return {name: client.register_script(load(name)) for name in SCRIPTS}


def text(value: Any) -> str:
    """A Redis reply as text (replies are bytes unless the client decodes them)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _texts(raw: Any) -> list[str]:
    return [text(x) for x in raw]


@dataclass(frozen=True)
class Enqueued:
    """enqueue.lua, per job in the order given."""

    outcome: str  # 'created' or 'duplicate' (the key's live job is `job_id`)
    job_id: str
    previous_job_id: str  # '' unless this job replaces a rejected one

    @property
    def duplicate(self) -> bool:
        return self.outcome == "duplicate"


def read_enqueue(raw: Any, job_ids: list[str]) -> list[Enqueued]:
    """The outcome of each of `job_ids` (the ids sent, in order): created as sent, unless
    the reply names it (its position, outcome, job id and previous job id)."""
    out = [Enqueued("created", job_id, "") for job_id in job_ids]
    flat = _texts(raw)
    for i in range(0, len(flat), 4):
        out[int(flat[i]) - 1] = Enqueued(*flat[i + 1 : i + 4])
    return out


@dataclass(frozen=True)
class Claims:
    """claim.lua."""

    leases: list[tuple[str, str]]  # (cuit, fencing token)
    next_ready: float | None  # earliest ready score (epoch s) after this claim
    down_until: float | None  # the service is down until then: nothing was claimed
    now: float  # Redis' clock when claiming
    full: bool = False  # due lanes wait for a free sending slot (a release wakes us)


def read_claim(raw: Any) -> Claims:
    next_ready, down_until, now, full, *pairs = _texts(raw)
    return Claims(
        leases=list(zip(pairs[::2], pairs[1::2], strict=True)),
        next_ready=float(next_ready) if next_ready else None,
        down_until=float(down_until) if down_until else None,
        now=float(now),
        full=full == "1",
    )


class Verdict(StrEnum):
    """Whether a call may go now (presend.lua, query.lua)."""

    GO = "go"
    WAIT = "wait"  # a short wait, then ask again
    EARLY = "early"  # its slot is far off: release the lane until then
    DOWN = "down"  # the service is down (presend only)
    SPENT = "spent"  # the spend guard's bound is reached: nothing is sent
    STALE = "stale"  # the lease is gone


@dataclass(frozen=True)
class Turn:
    """presend.lua, query.lua and account_turn.lua: whether a call may go now."""

    verdict: Verdict
    value: float | None = None  # go: send time; wait: seconds; early/down: epoch s
    why: str = ""  # wait/early: "gap" (this CUIT's) or "account" (pacing of all calls)
    spent_index: int = 0  # presend's spent: the batch's first job that has had its bound
    spent_sends: int = 0  # spent: how many paid calls that job (or the lane) has had

    @property
    def go(self) -> bool:
        return self.verdict is Verdict.GO


def read_presend(raw: Any) -> Turn:
    first, *rest = _texts(raw)
    verdict = Verdict(first)
    if verdict is Verdict.SPENT:
        return Turn(verdict, spent_index=int(rest[0]), spent_sends=int(rest[1]))
    value, why = [*rest, "", ""][:2]
    return Turn(verdict, float(value) if value else None, why)


def read_schedule_claim(raw: Any) -> list[tuple[str, str]]:
    """schedule_claim.lua: (job id, the claim's deadline as written) per due job."""
    flat = _texts(raw)
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def read_query(raw: Any) -> Turn:
    first, *rest = _texts(raw)
    verdict = Verdict(first)
    if verdict is Verdict.SPENT:
        return Turn(verdict, spent_sends=int(rest[0]))
    return Turn(verdict, float(rest[0]) if rest else None)


@dataclass(frozen=True)
class Released:
    """release.lua, when the lease was still the caller's."""

    depth: int  # jobs left in the lane
    next_at: float  # the lane's next slot (epoch s)


def read_release(raw: Any) -> Released | None:
    flat = _texts(raw)
    if flat[0] == "stale":
        return None
    return Released(depth=int(flat[0]), next_at=float(flat[1]))


@dataclass(frozen=True)
class DownWindow:
    """down.lua."""

    strikes: int  # probing rounds of this outage
    until: float  # the window's end (epoch s)


def read_down(raw: Any) -> DownWindow:
    strikes, until = _texts(raw)
    return DownWindow(int(strikes), float(until))
