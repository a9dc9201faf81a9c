"""The console's operations pages: dead-lettered callback deliveries (with replay) and the
health of the queue (accounts' pacing, the outage window, gauges, API calls, audits, and a
chart of the deepest lanes drawn as SVG on the server)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from producers.cli.render import duration
from producers.console.charts import bar_chart
from producers.console.kit import ConsoleDep, Who, WhoDep, base, is_fragment, when
from worker.store.audits import FindingKind
from worker.store.callbacks import CallbackField, Callbacks
from worker.store.jobs import JobStatus
from worker.store.keys import Stat
from worker.store.ops_reads import account_next_slots, dead_lettered_at
from worker.store.queries import lanes_doc
from worker.tenants import Tenants

router = APIRouter()

DEAD_SHOWN = 200  # dead letters listed on the page
DEAD_SCAN = 5_000  # dead letters read to find the ones an operator may see
LANES_READ = 500
CHART_LANES = 20
CALLS_PREFIX = "calls:"


# --- callbacks -----------------------------------------------------------------------


def shown_url(url: str) -> str:
    """A callback URL as the page shows it: scheme, host, port and path; never userinfo,
    and a query string (which may carry the receiver's token) only as `?…`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?…" if parts.query else "")


def shown_error(error: str, url: str) -> str:
    """A delivery's last error without the URL's userinfo or query (an HTTP library's
    message may quote the address it failed to reach)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return error.replace(url, "(unreadable URL)") if url else error
    error = error.replace(url, shown_url(url)) if url else error
    if parts.query:
        error = error.replace(f"?{parts.query}", "?…")
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and userinfo:
        error = error.replace(f"{userinfo}@", "")
    return error


def _job_of(body: str) -> str:
    try:
        data = json.loads(body).get("data") or {}
        return str(data.get("job_id") or data.get("batch") or "")
    except (ValueError, AttributeError):
        return ""


def _visible_dead(callbacks: Callbacks, who: Who, limit: int) -> list[dict[str, str]]:
    deliveries = callbacks.dead(DEAD_SCAN)
    return [d for d in deliveries if who.may_see(d.get(CallbackField.CUIT, ""))][:limit]


@router.get("/callbacks", response_class=HTMLResponse)
def callbacks_page(request: Request, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    callbacks = Callbacks(console.store)
    dead = _visible_dead(callbacks, who, DEAD_SCAN)
    at = dead_lettered_at(console.store, (d[CallbackField.ID] for d in dead[:DEAD_SHOWN]))
    rows = [
        {
            "id": d[CallbackField.ID],
            "job": _job_of(d.get(CallbackField.BODY, "")),
            "cuit": d.get(CallbackField.CUIT, ""),
            "url": shown_url(d.get(CallbackField.URL, "")),
            "event": d.get(CallbackField.EVENT, ""),
            "attempts": d.get(CallbackField.ATTEMPTS, "0"),
            "error": shown_error(d.get(CallbackField.LAST_ERROR, ""), d.get(CallbackField.URL, "")),
            "when": when(at.get(d[CallbackField.ID])),
        }
        for d in dead[:DEAD_SHOWN]
    ]
    template = "callbacks_live.html" if is_fragment(request) else "callbacks.html"
    return console.page(
        request, template, who, rows=rows, visible=len(dead),
        dead_total=callbacks.dead_count(), pending=callbacks.pending_count(),
    )  # fmt: skip


@router.post("/callbacks/{delivery_id}/replay")
def replay_one(
    request: Request,
    delivery_id: str,
    who: WhoDep,
    console: ConsoleDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if forged := console.forged(request, who, csrf):
        return forged
    callbacks = Callbacks(console.store)
    delivery = callbacks.get(delivery_id)
    if delivery is None:
        return console.missing(request, who, f"callback delivery {delivery_id}")
    cuit = delivery.get(CallbackField.CUIT, "")
    if not who.may_see(cuit):
        return console.refuse(request, who, f"You may not replay callbacks of CUIT {cuit}.")
    replayed = callbacks.replay(delivery_id)
    console.act(who, "callback replay", cuit, delivery=delivery_id, replayed=replayed)
    return RedirectResponse(f"{base(request)}/callbacks", status_code=303)


@router.post("/callbacks/replay")
def replay_all(
    request: Request, who: WhoDep, console: ConsoleDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    if forged := console.forged(request, who, csrf):
        return forged
    callbacks = Callbacks(console.store)
    by_cuit: dict[str, int] = {}
    for delivery in _visible_dead(callbacks, who, DEAD_SCAN):
        if callbacks.replay(delivery[CallbackField.ID]):
            cuit = delivery.get(CallbackField.CUIT, "")
            by_cuit[cuit] = by_cuit.get(cuit, 0) + 1
    for cuit, count in sorted(by_cuit.items()):  # one entry per CUIT: each scope sees its own
        console.act(who, "callback replay all", cuit, replayed=count)
    if not by_cuit:
        console.act(who, "callback replay all", "callbacks", replayed=0)
    return RedirectResponse(f"{base(request)}/callbacks", status_code=303)


# --- health --------------------------------------------------------------------------


@dataclass
class AccountRow:
    name: str
    pdvs: list[str]  # "CUIT/PDV" the operator may see
    max_rps: float
    default_limit: bool
    interval: float
    next_slot: str


def account_rows(tenants: Tenants, who: Who, default_max_rps: float) -> dict[str, AccountRow]:
    rows: dict[str, AccountRow] = {}
    for tenant in tenants.tenants:
        if not who.may_see(tenant.cuit):
            continue
        for pdv in tenant.pdv:
            pacing = tenants.pacing(tenant.cuit, pdv.punto_venta)
            row = rows.get(pacing.account)
            if row is None:
                row = rows[pacing.account] = AccountRow(
                    name=pacing.account,
                    pdvs=[],
                    max_rps=pacing.max_rps or default_max_rps,
                    default_limit=pacing.max_rps is None,
                    interval=pacing.interval_seconds(default_max_rps),
                    next_slot="-",
                )
            row.pdvs.append(f"{tenant.cuit}/{pdv.punto_venta}")
    return rows


def _slot_text(slot: float | None, now: float) -> str:
    if slot is None:
        return "no call yet"
    if slot <= now:
        return "free now"
    return f"in {slot - now:.2f} s ({when(slot)})"


def _audits(raw: dict[str, str], who: Who) -> list[dict[str, Any]]:
    out = []
    for cuit, value in sorted(raw.items()):
        if not who.may_see(cuit):
            continue
        try:
            doc = json.loads(value)
            found = {str(k): int(v) for k, v in (doc.get("findings") or {}).items()}
            out.append({
                "cuit": cuit, "when": when(doc.get("at")),
                "period": f"{doc.get('start', '?')} to {doc.get('end', '?')}",
                "findings": {k: found.get(k, 0) for k in FindingKind},
                "total": sum(found.values()),
            })  # fmt: skip
        except (ValueError, TypeError, AttributeError):
            continue
    return out


def lane_chart(lanes: list[tuple[str, int]], title: str = "Queue depth per lane") -> Markup:
    """Horizontal bars of each lane's depth (deepest first), as an SVG with a <title>, a
    <desc> and a text label per bar; every text is escaped."""
    return bar_chart(lanes, title, "queued", chart_id="lane-chart", empty="No lane has jobs queued")


@router.get("/health", response_class=HTMLResponse)
def health(request: Request, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    store = console.store
    g = store.gauges()
    now = g.now
    accounts = account_rows(console.live.current, who, console.settings.api_max_rps)
    slots = account_next_slots(store, accounts)
    for name, row in accounts.items():
        row.next_slot = _slot_text(slots.get(name), now)
    down = store.down()
    try:
        until = float(down.get("until") or 0)
    except ValueError:
        until = 0.0
    outage = (
        {"until": when(until), "in": duration(until - now), "reason": down.get("reason") or ""}
        if until > now
        else None
    )
    stats = g.stats
    unfinished = (JobStatus.QUEUED, JobStatus.SENDING, JobStatus.UNKNOWN)
    lanes = [row for row in lanes_doc(store, limit=LANES_READ)["rows"] if who.may_see(row["cuit"])]
    deepest = [(row["cuit"], int(row["depth"])) for row in lanes if row["depth"]][:CHART_LANES]
    gauges = {
        "send_slots": g.send_slots,
        "lanes_in_flight": g.lanes_in_flight,
        "queued": sum(stats.get(Stat.jobs(s), 0) for s in unfinished),
        "oldest_age": duration(now - g.oldest_pending) if g.oldest_pending else "-",
        "unknown": stats.get(Stat.jobs(JobStatus.UNKNOWN), 0),
        "paused": g.paused_lanes,
        "archive_backlog": g.archive_backlog,
        "archive_age": duration(now - g.archive_oldest) if g.archive_oldest else "-",
        "pdf_backlog": g.pdf_backlog,
        "callbacks_pending": g.callbacks_due,
        "callbacks_dead": g.callbacks_dead,
    }
    calls = sorted(
        (key.removeprefix(CALLS_PREFIX), count)
        for key, count in stats.items()
        if key.startswith(CALLS_PREFIX) and key != Stat.INVOICING_CALLS
    )
    template = "health_live.html" if is_fragment(request) else "health.html"
    return console.page(
        request, template, who,
        now=when(now), accounts=list(accounts.values()), outage=outage, gauges=gauges,
        calls=calls, invoicing_calls=stats.get(Stat.INVOICING_CALLS, 0),
        audits=_audits(g.audits, who), chart=lane_chart(deepest, _chart_title(len(deepest))),
    )  # fmt: skip


def _chart_title(shown: int) -> str:
    return f"Queue depth per lane: the {shown} deepest you may see" if shown else "Queue depth"
