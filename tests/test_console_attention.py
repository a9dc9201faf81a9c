"""The console's "Needs attention" and "Failed" pages, a job's page and the correction of
a rejected job, over real HTTP (uvicorn) and a real Redis. Rejected and unknown jobs are
written through the store the way a worker does (a lease, then a transition)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import requests

from ops.testkit.examples import factura_b_jobs
from tests.conftest import MONO_CUIT, RI_CUIT, TENANTS_FILE
from tests.test_console import (  # noqa: F401 (the fixture)
    ANA_PASSWORD,
    BEA_PASSWORD,
    Console,
    _csrf,
    console,
)
from worker.store import admin
from worker.store.lanes import LaneStore

REJECTION = "El campo Fecha de vencimiento de pago es obligatorio"


def settle(store: LaneStore, outcomes: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Write each job's status and fields under its lane's lease, as a worker would."""
    leases = dict(store.claim(100, 30.0, 0.0, "test").leases)
    for job_id, (status, fields) in outcomes.items():
        cuit = store.job(job_id)["cuit"]  # type: ignore[index]
        packed = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
        assert store.transition(cuit, leases[cuit], job_id, status, packed)
    for cuit, token in leases.items():
        store.release(cuit, token, not_before=0, gap_seconds=0)


def rejected(messages: list[str]) -> tuple[str, dict[str, Any]]:
    log = [{"at": time.time() - 5, "endpoint": "facturacion/nuevo", "outcome": "rejected",
            "http_status": 200, "error": "; ".join(messages)}]  # fmt: skip
    return "rejected", {"errors": messages, "last_error": "rejected", "log": log}


def submit(served: Console, cuit: str, tag: str, batch: str, n: int = 1) -> list[str]:
    report = served.queue.submit_many(factura_b_jobs(cuit, n, pdv=3, tag=tag), batch=batch)
    assert len(report.accepted) == n, report.refused
    return [job_id for _, job_id in report.accepted]


def get(http: requests.Session, served: Console, path: str, **kw: Any) -> requests.Response:
    return http.get(f"{served.url}/console{path}", timeout=10, **kw)


def test_attention_shows_unknown_jobs_and_paused_lanes(console: Console) -> None:  # noqa: F811
    (unknown,) = submit(console, RI_CUIT, "UNK", "att")
    (waiting,) = submit(console, MONO_CUIT, "PAU", "att")
    log = [
        {"at": time.time() - 60, "outcome": "transient", "error": "HTTP 502 Bad Gateway"},
        {"at": time.time() - 30, "outcome": "ambiguous", "error": "ReadTimeout after 30 s"},
    ]
    story = {"last_error": "ReadTimeout", "last_messages": ["no answer in 30 s"], "log": log}
    settle(console.queue.store, {unknown: ("unknown", story)})
    console.queue.store.pause(MONO_CUIT, "checking the monotributo category")

    http, _ = console.login("ana", ANA_PASSWORD)
    page = get(http, console, "/attention")
    assert page.status_code == 200
    text = unescape(page.text)
    assert 'href="/console/attention"' in text  # in the nav
    assert f'href="/console/jobs/{unknown}"' in text
    assert "being reconciled" in text
    assert "ReadTimeout" in text
    assert "no answer in 30 s" in text
    # The attempts log, newest first.
    assert text.index("ReadTimeout after 30 s") < text.index("HTTP 502 Bad Gateway")
    assert "UNK-" in text
    assert "att" in text
    assert f"Lane {MONO_CUIT}: paused" in text
    assert "checking the monotributo category" in text
    assert f'href="/console/jobs/{waiting}"' in text
    assert 'hx-get="/console/attention"' in text
    live = get(http, console, "/attention", headers={"HX-Request": "true"})
    assert "<html" not in live.text
    assert waiting in live.text

    # bea sees MONO_CUIT only: the paused lane, not the unknown RI job.
    bea, _ = console.login("bea", BEA_PASSWORD)
    hers = get(bea, console, "/attention").text
    assert waiting in hers
    assert unknown not in hers
    assert get(bea, console, f"/jobs/{unknown}").status_code == 404


def _rejected_jobs(served: Console) -> dict[str, str]:
    night = submit(served, RI_CUIT, "NIG", "night", 2)
    other = submit(served, RI_CUIT, "DAY", "day")
    mono = submit(served, MONO_CUIT, "MON", "night")
    settle(served.queue.store, {
        night[0]: rejected([REJECTION]),
        night[1]: ("issued", {"cae": "76123456789012", "numero": "41"}),
        other[0]: rejected(["Importe total no coincide"]),
        mono[0]: rejected(["Punto de venta no habilitado"]),
    })  # fmt: skip
    return {"night": night[0], "issued": night[1], "day": other[0], "mono": mono[0]}


def test_failed_lists_rejected_jobs_and_filters_them(console: Console) -> None:  # noqa: F811
    jobs = _rejected_jobs(console)
    http, _ = console.login("ana", ANA_PASSWORD)
    page = get(http, console, "/failed")
    assert page.status_code == 200
    text = unescape(page.text)
    for name in ("night", "day", "mono"):
        assert f'href="/console/jobs/{jobs[name]}"' in text
    assert jobs["issued"] not in text
    assert REJECTION in text
    for label in ("CUIT", "Batch", "Since (YYYY-MM-DD)"):
        assert re.search(rf'<label for="f-\w+">{re.escape(label)}</label>', text), label
    assert 'method="get"' in text

    by_cuit = get(http, console, "/failed", params={"cuit": MONO_CUIT}).text
    assert jobs["mono"] in by_cuit
    assert jobs["night"] not in by_cuit
    assert f'value="{MONO_CUIT}"' in by_cuit  # the form keeps the filter
    by_batch = get(http, console, "/failed", params={"batch": "night"}).text
    assert jobs["night"] in by_batch
    assert jobs["mono"] in by_batch
    assert jobs["day"] not in by_batch
    both = get(http, console, "/failed", params={"batch": "night", "cuit": RI_CUIT}).text
    assert jobs["night"] in both
    assert jobs["mono"] not in both
    today = datetime.now(UTC).date()
    assert jobs["day"] in get(http, console, "/failed", params={"since": today.isoformat()}).text
    later = (today + timedelta(days=1)).isoformat()
    none = get(http, console, "/failed", params={"since": later}).text
    assert jobs["day"] not in none
    assert "No rejected jobs match" in none
    wrong = get(http, console, "/failed", params={"since": "yesterday"})
    assert wrong.status_code == 200
    assert "a day as YYYY-MM-DD" in wrong.text

    bea, _ = console.login("bea", BEA_PASSWORD)
    hers = get(bea, console, "/failed").text
    assert jobs["mono"] in hers
    assert jobs["night"] not in hers
    assert jobs["day"] not in hers
    assert jobs["night"] not in get(bea, console, "/failed", params={"cuit": RI_CUIT}).text


def test_the_job_page_shows_the_result_attempts_and_invoice(console: Console) -> None:  # noqa: F811
    jobs = _rejected_jobs(console)
    http, _ = console.login("ana", ANA_PASSWORD)
    page = get(http, console, f"/jobs/{jobs['night']}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "rejected" in text
    assert REJECTION in text
    assert "NIG-" in text
    assert "facturacion/nuevo" in text  # the attempts log
    assert '"comprobante": {' in text  # the invoice, pretty-printed
    assert '<label for="envelope">' in text
    assert "<textarea" in text
    issued = unescape(get(http, console, f"/jobs/{jobs['issued']}").text)
    assert "76123456789012" in issued
    assert "<textarea" not in issued  # only a rejected job is corrected
    assert get(http, console, "/jobs/nope").status_code == 404


def _envelope(html: str) -> dict[str, Any]:
    found = re.search(r'<textarea id="envelope"[^>]*>(.*?)</textarea>', html, re.S)
    assert found, html
    envelope: dict[str, Any] = json.loads(unescape(found.group(1)))
    return envelope


def test_a_correction_is_queued_linked_and_logged(console: Console) -> None:  # noqa: F811
    jobs = _rejected_jobs(console)
    old = jobs["night"]
    http, _ = console.login("ana", ANA_PASSWORD)
    page = get(http, console, f"/jobs/{old}").text
    csrf, envelope = _csrf(page), _envelope(page)
    assert envelope["cuit"] == RI_CUIT
    envelope["metadata"] = {"corrected": "by hand"}
    url = f"{console.url}/console/jobs/{old}/correct"

    forged = http.post(url, data={"csrf": "forged", "envelope": json.dumps(envelope)},
                       allow_redirects=False, timeout=10)  # fmt: skip
    assert forged.status_code == 403
    assert not console.queue.store.job(old).get("next")  # type: ignore[union-attr]

    bea, _ = console.login("bea", BEA_PASSWORD)
    bea_csrf = _csrf(get(bea, console, "/failed").text)
    foreign = bea.post(url, data={"csrf": bea_csrf, "envelope": json.dumps(envelope)},
                       allow_redirects=False, timeout=10)  # fmt: skip
    assert foreign.status_code == 404
    assert not console.queue.store.job(old).get("next")  # type: ignore[union-attr]

    done = http.post(url, data={"csrf": csrf, "envelope": json.dumps(envelope)},
                     allow_redirects=False, timeout=30)  # fmt: skip
    assert done.status_code == 303, done.text
    new = done.headers["location"].removeprefix("/console/jobs/")
    assert new != old
    result = console.queue.status(new)
    assert result is not None
    assert result["status"] == "queued"
    assert result["previous_job_id"] == old
    assert console.queue.status(old)["next_job_id"] == new  # type: ignore[index]
    shown = get(http, console, f"/jobs/{new}").text
    assert f'href="/console/jobs/{old}"' in shown
    old_page = get(http, console, f"/jobs/{old}").text
    assert f'href="/console/jobs/{new}"' in old_page
    assert "<textarea" not in old_page  # corrected once
    again = http.post(url, data={"csrf": csrf, "envelope": json.dumps(envelope)},
                      allow_redirects=False, timeout=10)  # fmt: skip
    assert again.status_code == 409

    (last, *_) = admin.console_actions(console.queue.store, 5)
    assert (last["operator"], last["action"], last["target"]) == ("ana", "correct", RI_CUIT)
    assert (last["job"], last["corrected_by"]) == (old, new)


def test_a_bad_correction_shows_its_field_errors(console: Console) -> None:  # noqa: F811
    jobs = _rejected_jobs(console)
    old = jobs["day"]
    http, _ = console.login("ana", ANA_PASSWORD)
    page = get(http, console, f"/jobs/{old}").text
    csrf, envelope = _csrf(page), _envelope(page)
    url = f"{console.url}/console/jobs/{old}/correct"

    def post(body: str) -> requests.Response:
        return http.post(url, data={"csrf": csrf, "envelope": body}, allow_redirects=False,
                         timeout=10)  # fmt: skip

    not_json = post("{ not json")
    assert not_json.status_code == 422
    assert "not JSON" in not_json.text
    assert "{ not json" in not_json.text  # the draft is kept for another try

    bad = json.loads(json.dumps(envelope))
    bad["invoice"]["comprobante"]["punto_venta"] = "abc"
    del bad["invoice"]["cliente"]
    refused = post(json.dumps(bad))
    assert refused.status_code == 422
    text = unescape(refused.text)
    assert "invoice.comprobante.punto_venta" in text
    assert "invoice.cliente" in text
    assert 'role="alert"' in text

    other_key = json.loads(json.dumps(envelope))
    other_key["invoice"]["comprobante"]["external_reference"] = "SOMETHING-ELSE"
    moved = post(json.dumps(other_key))
    assert moved.status_code == 422
    assert "the rejected job's: DAY-" in unescape(moved.text)
    assert not console.queue.store.job(old).get("next")  # type: ignore[union-attr]
    assert console.queue.job_id(RI_CUIT, "SOMETHING-ELSE") is None


def test_no_secret_on_these_pages(console: Console) -> None:  # noqa: F811
    jobs = _rejected_jobs(console)
    console.queue.store.pause(MONO_CUIT, "held")
    http, _ = console.login("ana", ANA_PASSWORD)
    secrets_in_file = re.findall(
        r'(?:apitoken|usertoken|apikey)\s*=\s*"([^"]+)"', TENANTS_FILE.read_text()
    )
    assert secrets_in_file
    paths = ["/attention", "/failed", *(f"/jobs/{job_id}" for job_id in jobs.values())]
    for path in paths:
        text = get(http, console, path).text
        for secret in secrets_in_file:
            assert secret not in text, path
        assert "scrypt$" not in text
        for word in ("apitoken", "usertoken", "apikey"):
            assert word not in text.lower(), path
