"""The console's queue pages: batches, a batch, lanes (with pause and resume) and the
audit log of console actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from producers.console.kit import ConsoleDep, WhoDep, base, checked_cuit, is_fragment, when
from worker.store import admin
from worker.store.queries import lane_row, lanes_doc

router = APIRouter()

BATCHES_SHOWN = 50
LANES_SHOWN = 500
BATCH_LANES_SHOWN = 200
REASON_MAX = 200


@router.get("/batches", response_class=HTMLResponse)
def batches(request: Request, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    store, rows = console.store, []
    for name, created in admin.recent_batches(store, BATCHES_SHOWN * 4):
        if who.cuits is not None and not set(store.batch_cuits(name)) <= who.cuits:
            continue
        doc = console.queue.batch(name)
        if doc is not None:
            rows.append(doc | {"created": when(created)})
        if len(rows) >= BATCHES_SHOWN:
            break
    return console.page(request, "batches.html", who, batches=rows)


@router.get("/batches/{name}", response_class=HTMLResponse)
def batch(request: Request, name: str, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    cuits = console.store.batch_cuits(name)
    found = console.queue.batch_lanes(name) if all(who.may_see(c) for c in cuits) else None
    if found is None:
        return console.missing(request, who, f"batch {name}")
    doc, reads, now = found
    # The batch's own lanes as read for its ETA, those with jobs left first (deepest
    # first, then by CUIT), cut to BATCH_LANES_SHOWN rows: a big batch has a thousand.
    reads = sorted(reads, key=lambda read: (-read.depth, read.cuit))
    lanes = [lane_row(r.cuit, r.depth, r.state, r.ready_at, now) for r in reads[:BATCH_LANES_SHOWN]]
    template = "batch_live.html" if is_fragment(request) else "batch.html"
    return console.page(
        request, template, who, batch=doc, lanes=lanes, more_lanes=len(reads) - len(lanes)
    )


@router.get("/lanes", response_class=HTMLResponse)
def lanes(request: Request, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    doc = lanes_doc(console.store, limit=LANES_SHOWN)
    rows = [row for row in doc["rows"] if who.may_see(row["cuit"])]
    template = "lanes_live.html" if is_fragment(request) else "lanes.html"
    return console.page(request, template, who, doc=doc, rows=rows)


@router.post("/lanes/{cuit}/pause")
def pause(
    request: Request,
    cuit: str,
    who: WhoDep,
    console: ConsoleDep,
    csrf: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=REASON_MAX)] = "",
) -> Response:
    if forged := console.forged(request, who, csrf):
        return forged
    checked = checked_cuit(cuit)
    if checked is None or not who.may_see(checked):
        return console.refuse(request, who, f"You may not steer CUIT {cuit}.")
    why = reason.strip() or f"paused by {who.name} in the console"
    console.store.pause(checked, why)
    console.act(who, "pause", checked, reason=why)
    return RedirectResponse(f"{base(request)}/lanes", status_code=303)


@router.post("/lanes/{cuit}/resume")
def resume(
    request: Request,
    cuit: str,
    who: WhoDep,
    console: ConsoleDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if forged := console.forged(request, who, csrf):
        return forged
    checked = checked_cuit(cuit)
    if checked is None or not who.may_see(checked):
        return console.refuse(request, who, f"You may not steer CUIT {cuit}.")
    resumed = console.store.resume(checked)
    console.act(who, "resume", checked, was_paused=resumed)
    return RedirectResponse(f"{base(request)}/lanes", status_code=303)


@router.get("/log", response_class=HTMLResponse)
def action_log(request: Request, who: WhoDep, console: ConsoleDep) -> HTMLResponse:
    entries = [
        e | {"when": when(e.get("at"))}
        for e in admin.console_actions(console.store, 200)
        if who.cuits is None or e.get("target") in who.cuits or e.get("operator") == who.name
    ]
    return console.page(request, "log.html", who, entries=entries)
