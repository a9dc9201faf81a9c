"""The console's callbacks and health pages over real HTTP (uvicorn) and a real Redis:
dead letters shown and replayed (CSRF, CUIT scopes, the audit log), the health page's
outage window, gauges, accounts and lane chart, and no secret on either page."""

from __future__ import annotations

import re
import time

import requests

from ops.testkit.examples import factura_b_jobs
from producers.console.ops_pages import lane_chart, shown_error, shown_url
from tests.conftest import MONO_CUIT, RI_CUIT, TENANTS_FILE
from tests.test_console import ANA_PASSWORD, BEA_PASSWORD, Console, _csrf, console
from worker.store import admin
from worker.store.audits import AuditSummary, record_audit
from worker.store.callbacks import Callbacks
from worker.tenants import Tenants

__all__ = ["console"]  # the fixture, used by name

RESULT = {"job_id": "job-cb-1", "cuit": RI_CUIT, "status": "issued", "cae": "75000000000001"}
SECRET_URL = "https://shopuser:shoppass@shop.example/hooks/tfq?token=sekrit-query-token"


def _dead(callbacks: Callbacks, cuit: str, url: str, error: str, data: dict[str, str]) -> str:
    """A delivery dead-lettered after one attempt, as the deliverer leaves it."""
    delivery_id = callbacks.enqueue("invoice.issued", cuit, url, data)
    assert callbacks.record_attempt(delivery_id) == 1
    assert callbacks.dead_letter(delivery_id, error)
    return delivery_id


def _page(http: requests.Session, console: Console, path: str) -> str:
    reply = http.get(f"{console.url}/console{path}", timeout=10)
    assert reply.status_code == 200, (path, reply.status_code)
    return str(reply.text)


def test_a_dead_letter_shows_and_replay_puts_it_back_to_pending(console: Console) -> None:
    callbacks = Callbacks(console.queue.store)
    error = f"gave up after 8 attempts: HTTP 500 from {SECRET_URL}"
    delivery_id = _dead(callbacks, RI_CUIT, SECRET_URL, error, RESULT)
    http, _ = console.login("ana", ANA_PASSWORD)
    page = _page(http, console, "/callbacks")
    assert delivery_id in page
    assert "job-cb-1" in page
    assert "https://shop.example/hooks/tfq?…" in page
    assert "gave up after 8 attempts: HTTP 500" in page
    assert "UTC" in page  # when it was dead-lettered
    for hidden in ("shoppass", "shopuser", "sekrit-query-token"):
        assert hidden not in page
    live = http.get(f"{console.url}/console/callbacks", headers={"HX-Request": "true"}, timeout=10)
    assert "<html" not in live.text
    assert delivery_id in live.text

    url = f"{console.url}/console/callbacks/{delivery_id}/replay"
    forged = http.post(url, data={"csrf": "forged"}, allow_redirects=False, timeout=10)
    assert forged.status_code == 403
    assert (callbacks.get(delivery_id) or {})["status"] == "dead"

    csrf = _csrf(page)
    done = http.post(url, data={"csrf": csrf}, allow_redirects=False, timeout=10)
    assert done.status_code == 303
    assert done.headers["location"] == "/console/callbacks"
    record = callbacks.get(delivery_id) or {}
    assert (record["status"], record["attempts"]) == ("pending", "0")
    assert callbacks.dead_count() == 0
    assert callbacks.pending_count() == 1
    assert delivery_id not in _page(http, console, "/callbacks")
    entry = admin.console_actions(console.queue.store, 1)[0]
    assert (entry["operator"], entry["action"], entry["target"]) == (
        "ana", "callback replay", RI_CUIT,
    )  # fmt: skip
    assert entry["delivery"] == delivery_id
    assert entry["replayed"] is True
    gone = http.post(
        f"{console.url}/console/callbacks/msg_never/replay", data={"csrf": csrf},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert gone.status_code == 404


def test_replay_all_replays_only_what_the_operator_may_see(console: Console) -> None:
    callbacks = Callbacks(console.queue.store)
    ri = _dead(callbacks, RI_CUIT, "https://ri.example/h", "HTTP 410", RESULT)
    mono = [
        _dead(callbacks, MONO_CUIT, "https://mono.example/h", "timed out", RESULT | {"cuit": c})
        for c in (MONO_CUIT, MONO_CUIT)
    ]
    http, _ = console.login("bea", BEA_PASSWORD)
    page = _page(http, console, "/callbacks")
    assert ri not in page
    assert "ri.example" not in page
    assert all(m in page for m in mono)
    assert "Replay all 2 you may see" in page
    csrf = _csrf(page)

    refused = http.post(
        f"{console.url}/console/callbacks/{ri}/replay", data={"csrf": csrf},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert refused.status_code == 403
    assert (callbacks.get(ri) or {})["status"] == "dead"
    forged = http.post(
        f"{console.url}/console/callbacks/replay", data={"csrf": "x"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert forged.status_code == 403
    assert callbacks.dead_count() == 3

    done = http.post(
        f"{console.url}/console/callbacks/replay", data={"csrf": csrf},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert done.status_code == 303
    assert [(callbacks.get(m) or {})["status"] for m in mono] == ["pending", "pending"]
    assert (callbacks.get(ri) or {})["status"] == "dead"
    entry = admin.console_actions(console.queue.store, 1)[0]
    assert (entry["operator"], entry["action"], entry["target"], entry["replayed"]) == (
        "bea", "callback replay all", MONO_CUIT, 2,
    )  # fmt: skip


def test_health_shows_the_outage_paused_lanes_accounts_and_the_lane_chart(
    console: Console,
) -> None:
    store = console.queue.store
    tenants = Tenants.load(TENANTS_FILE)
    console.queue.submit_many(factura_b_jobs(RI_CUIT, 3, pdv=3, tag="HEA"), batch="h")
    store.pause(RI_CUIT, "checking prices")
    store.set_down(time.time() + 600, "AFIP maintenance window")
    record_audit(store, AuditSummary(RI_CUIT, time.time(), "2025-01-01", "2025-01-31",
                                     {"numbering_gap": 2}))  # fmt: skip
    busy = tenants.pacing(RI_CUIT, 3).account  # its next slot, as a call leaves it
    console.queue.redis.hset(store.keys.account(busy), "next", store.now() + 30)
    http, _ = console.login("ana", ANA_PASSWORD)
    page = _page(http, console, "/health")
    assert re.search(r"in (29|30)\.\d\d s \(", page)
    assert "no call yet" in page  # the other accounts
    assert 'hx-get="/console/health"' in page
    assert 'hx-trigger="every 5s"' in page
    assert re.search(r'<td id="paused-lanes">1</td>', page)
    assert "AFIP maintenance window" in page
    assert "Outage window" in page
    for cuit, pdv in ((RI_CUIT, 679), (RI_CUIT, 3), (MONO_CUIT, 2)):
        assert tenants.pacing(cuit, pdv).account in page
        assert f"{cuit}/{pdv}" in page
    assert "10 calls/s (default)" in page
    assert "not asked" in page
    assert "numbering_gap: 2" in page
    svg = re.search(r"<svg.*?</svg>", page, re.S)
    assert svg, page
    chart = svg.group(0)
    assert "<title" in chart
    assert 'role="img"' in chart
    assert re.search(rf"<text[^>]*>{RI_CUIT}</text>", chart)
    assert re.search(r"<text[^>]*>3</text>", chart)  # the lane's depth, as text
    live = http.get(f"{console.url}/console/health", headers={"HX-Request": "true"}, timeout=10)
    assert "<html" not in live.text
    assert "<svg" in live.text

    store.clear_down()
    assert "No outage window" in _page(http, console, "/health")


def test_health_shows_only_the_operators_accounts_and_lanes(console: Console) -> None:
    console.queue.submit_many(factura_b_jobs(RI_CUIT, 2, pdv=3, tag="HSC"), batch="hs")
    tenants = Tenants.load(TENANTS_FILE)
    http, _ = console.login("bea", BEA_PASSWORD)
    page = _page(http, console, "/health")
    assert tenants.pacing(MONO_CUIT, 2).account in page
    assert tenants.pacing(RI_CUIT, 3).account not in page
    assert RI_CUIT not in page


def test_neither_page_shows_a_secret(console: Console) -> None:
    tenants = Tenants.load(TENANTS_FILE)
    secrets = tenants.all_secrets()
    assert any(s.startswith("whsec_") for s in secrets)  # callback secrets are checked too
    callbacks = Callbacks(console.queue.store)
    _dead(callbacks, RI_CUIT, "https://shop.example/h", "HTTP 500", RESULT)
    console.queue.submit_many(factura_b_jobs(RI_CUIT, 1, pdv=3, tag="SEK"), batch="s")
    http, _ = console.login("ana", ANA_PASSWORD)
    for path in ("/callbacks", "/health"):
        text = _page(http, console, path)
        for secret in secrets:
            assert secret not in text, path
        assert "scrypt$" not in text


def test_urls_errors_and_the_chart_are_escaped() -> None:
    assert shown_url("https://u:p@h.example:8443/a/b?k=v#f") == "https://h.example:8443/a/b?…"
    assert shown_url("http://[::1]/x") == "http://[::1]/x"
    url = "https://u:pw@h.example/x?tok=abc"
    assert shown_error(f"failed: {url}", url) == "failed: https://h.example/x?…"
    assert shown_error("pool(host='h.example'): url: /x?tok=abc (u:pw@)", url) == (
        "pool(host='h.example'): url: /x?… ()"
    )
    chart = str(lane_chart([("<script>", 5), ("b&c", 0)], title="t<x>"))
    assert "<script>" not in chart
    assert "&lt;script&gt;" in chart
    assert "b&amp;c" in chart
    assert "t&lt;x&gt;" in chart
    assert "No lane has jobs queued" in str(lane_chart([]))
