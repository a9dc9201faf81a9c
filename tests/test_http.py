"""The HTTP intake over real HTTP (uvicorn on a free port) against a real Redis."""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from ops.bench.intake import IntakeProcess, process_tree
from ops.testkit.examples import load_examples
from ops.testkit.harness import serving, unique_prefix
from ops.testkit.localredis import free_port
from producers.client import InvoiceQueue
from producers.http.app import create_app
from producers.http.auth import Caller, find_caller, token_sha256
from producers.http.routes import _apply_idempotency_key
from tests.conftest import MONO_CUIT, RI_CUIT
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.store.callbacks import Callbacks
from worker.store.durability import check_waitaof_reply
from worker.tenants import Tenants

SHOP_TOKEN = "shop-token-0123456789"  # may invoice for RI_CUIT only
BOTH_TOKEN = "both-token-9876543210"  # RI_CUIT and MONO_CUIT
MAX_BODY = 128 * 1024
PROBLEM_REF = "#/components/schemas/ProblemDetails"
MAX_BATCH = 40
EXAMPLES = load_examples(argentina_today())
NO_TRACE = ("Traceback", 'File "', '", line ', "RuntimeError", "boom")


def tenants_with_clients() -> Tenants:
    return Tenants.from_dict(
        {
            "client": [
                {"name": "shop", "token_sha256": token_sha256(SHOP_TOKEN), "cuits": [RI_CUIT]},
                {
                    "name": "both",
                    "token_sha256": token_sha256(BOTH_TOKEN),
                    "cuits": [RI_CUIT, MONO_CUIT],
                },
            ]
        }
    )


def envelope(name: str = "factura_b", ref: str | None = None) -> dict[str, Any]:
    env = copy.deepcopy(EXAMPLES[name])
    if ref is not None:
        env["invoice"]["comprobante"]["external_reference"] = ref
    return env


def auth(token: str = SHOP_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Intake:
    url: str
    queue: InvoiceQueue
    session: requests.Session

    def post(self, path: str, body: Any = None, token: str | None = SHOP_TOKEN, **kw: Any) -> Any:
        headers = {**(auth(token) if token else {}), **kw.pop("headers", {})}
        return self.session.post(self.url + path, json=body, headers=headers, timeout=30, **kw)

    def get(self, path: str, token: str | None = SHOP_TOKEN) -> requests.Response:
        return self.session.get(self.url + path, headers=auth(token) if token else {}, timeout=30)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=unique_prefix("http"),
        intake_max_body_bytes=MAX_BODY,
        intake_max_batch=MAX_BATCH,
    )


@pytest.fixture
def intake(settings: Settings) -> Iterator[Intake]:
    queue = InvoiceQueue(settings=settings, key_prefix=settings.key_prefix)
    app = create_app(settings, queue=queue, tenants=tenants_with_clients())
    try:
        with serving(app) as url, requests.Session() as session:
            yield Intake(url, queue, session)
    finally:
        keys = list(queue.redis.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        if keys:
            queue.redis.unlink(*keys)
        queue.redis.close()


def assert_problem(resp: requests.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["type"] == (f"urn:tfq:problem:{slug}" if slug else "about:blank")
    assert body["request_id"] == resp.headers["x-request-id"]
    for marker in NO_TRACE:
        assert marker not in resp.text
    return body


def paths(problem: dict[str, Any]) -> list[str]:
    return [e["path"] for e in problem["errors"]]


# --- POST /v1/invoices ----------------------------------------------------------------------


def test_a_new_job_is_201_and_the_same_key_again_is_200_with_that_job(intake: Intake) -> None:
    first = intake.post("/v1/invoices", envelope(ref="WEB-1"))
    assert first.status_code == 201, first.text
    job = first.json()
    assert job["status"] == "queued"
    assert (job["cuit"], job["external_reference"], job["duplicate"]) == (RI_CUIT, "WEB-1", False)
    assert first.headers["location"] == f"/v1/invoices/{job['job_id']}"

    again = intake.post("/v1/invoices", envelope(ref="WEB-1"))
    assert again.status_code == 200, again.text
    assert again.json()["job_id"] == job["job_id"]
    assert again.json()["duplicate"] is True
    assert intake.queue.store.depth(RI_CUIT) == 1

    got = intake.get(f"/v1/invoices/{job['job_id']}")
    assert got.status_code == 200
    assert got.json()["job_id"] == job["job_id"]
    assert got.json()["status"] == "queued"


def test_the_idempotency_key_header_fills_in_a_missing_reference(intake: Intake) -> None:
    env = envelope()
    del env["invoice"]["comprobante"]["external_reference"]
    first = intake.post("/v1/invoices", env, headers={"Idempotency-Key": "HDR-7"})
    assert first.status_code == 201, first.text
    assert first.json()["external_reference"] == "HDR-7"

    same_key = envelope(ref="HDR-7")
    again = intake.post("/v1/invoices", same_key, headers={"Idempotency-Key": "HDR-7"})
    assert again.status_code == 200
    assert again.json()["job_id"] == first.json()["job_id"]
    assert intake.queue.job_id(RI_CUIT, "HDR-7") == first.json()["job_id"]


def test_an_idempotency_key_that_differs_from_the_reference_is_a_422(intake: Intake) -> None:
    resp = intake.post("/v1/invoices", envelope(ref="REF-1"), headers={"Idempotency-Key": "REF-2"})
    problem = assert_problem(resp, 422, "idempotency-key-mismatch")
    assert paths(problem) == ["invoice.comprobante.external_reference"]
    assert intake.queue.job_id(RI_CUIT, "REF-1") is None
    assert intake.queue.job_id(RI_CUIT, "REF-2") is None


def test_an_invalid_envelope_is_a_422_naming_every_field_path(intake: Intake) -> None:
    env = envelope(ref="BAD-1")
    env["invoice"]["comprobante"]["detalle"][0]["cantidad"] = -1
    env["invoice"]["comprobante"]["fecha"] = "31/02/2026"
    problem = assert_problem(intake.post("/v1/invoices", env), 422, "invalid-job")
    assert "invoice.comprobante.detalle[0].cantidad" in paths(problem)
    assert "invoice.comprobante.fecha" in paths(problem)
    assert all(e["reason"] for e in problem["errors"])

    env = envelope(ref="BAD-2")
    env["invoice"]["comprobante"]["total"] += 1
    problem = assert_problem(intake.post("/v1/invoices", env), 422, "invalid-job")
    assert paths(problem) == ["invoice.comprobante.total"]
    assert intake.queue.store.depth(RI_CUIT) == 0


def test_malformed_json_is_a_400_naming_the_position(intake: Intake) -> None:
    resp = intake.session.post(
        intake.url + "/v1/invoices",
        data=b'{"cuit": "20111111112",\n "invoice": {oops}}',
        headers={**auth(), "Content-Type": "application/json"},
    )
    problem = assert_problem(resp, 400, "malformed-json")
    assert "line 2 column 14" in problem["detail"]
    assert "oops" not in resp.text  # positions, never the input


def test_a_body_of_the_wrong_shape_is_a_422_with_paths(intake: Intake) -> None:
    problem = assert_problem(intake.post("/v1/invoices", [1, 2]), 422, "invalid-request")
    assert paths(problem) == [""]
    resp = intake.post("/v1/batches", {"batch": "no spaces allowed", "jobs": "x", "extra": 1})
    problem = assert_problem(resp, 422, "invalid-request")
    assert sorted(paths(problem)) == ["batch", "extra", "jobs"]
    resp = intake.post("/v1/invoices", envelope(), headers={"Idempotency-Key": "x" * 300})
    assert paths(assert_problem(resp, 422, "invalid-request")) == ["header.Idempotency-Key"]


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/invoices"),
        ("POST", "/v1/batches"),
        ("GET", "/v1/invoices/0123abcd"),
        ("GET", "/v1/batches/nightly"),
    ],
)
def test_a_missing_or_wrong_token_is_a_401_with_a_bearer_challenge(
    intake: Intake, method: str, path: str
) -> None:
    body = envelope() if path == "/v1/invoices" else {"batch": "b", "jobs": [envelope()]}
    for headers in (
        {},
        {"Authorization": "Bearer not-a-known-token"},
        {"Authorization": f"Basic {SHOP_TOKEN}"},
        {"Authorization": "Bearer "},
    ):
        resp = intake.session.request(
            method, intake.url + path, json=body if method == "POST" else None, headers=headers
        )
        assert_problem(resp, 401, "unauthorized")
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert intake.queue.store.depth(RI_CUIT) == 0


def test_tokens_are_compared_by_their_sha256() -> None:
    callers = tenants_with_clients().intake_callers
    table = [Caller(c.name, c.token_sha256, frozenset(c.cuits)) for c in callers]
    found = find_caller(table, BOTH_TOKEN)
    assert found is not None
    assert found.name == "both"
    assert find_caller(table, BOTH_TOKEN + "x") is None
    assert find_caller(table, token_sha256(BOTH_TOKEN)) is None  # the hash is not a token


def test_a_cuit_outside_the_clients_list_is_a_403_on_post(intake: Intake) -> None:
    mono = envelope("factura_c", ref="MONO-1")
    assert mono["cuit"] == MONO_CUIT
    problem = assert_problem(intake.post("/v1/invoices", mono), 403, "forbidden-cuit")
    assert paths(problem) == ["cuit"]

    jobs = [envelope(ref="OK-1"), envelope("factura_c", ref="MONO-2"), envelope(ref="OK-2")]
    resp = intake.post("/v1/batches", {"batch": "mixed-cuits", "jobs": jobs})
    problem = assert_problem(resp, 403, "forbidden-cuit")
    assert paths(problem) == ["jobs[1].cuit"]
    assert intake.queue.store.depth(RI_CUIT) == 0  # nothing of that request was queued
    assert intake.queue.batch("mixed-cuits") is None

    assert intake.post("/v1/invoices", mono, token=BOTH_TOKEN).status_code == 201


def test_a_job_or_batch_of_another_cuit_is_a_403_on_get(intake: Intake) -> None:
    mono = intake.post("/v1/invoices", envelope("factura_c", ref="M-1"), token=BOTH_TOKEN)
    job_id = mono.json()["job_id"]
    assert_problem(intake.get(f"/v1/invoices/{job_id}"), 403, "forbidden-cuit")
    assert intake.get(f"/v1/invoices/{job_id}", token=BOTH_TOKEN).status_code == 200

    jobs = [envelope(ref="B-1"), envelope("factura_c", ref="B-2")]
    resp = intake.post("/v1/batches", {"batch": "two-cuits", "jobs": jobs}, token=BOTH_TOKEN)
    assert resp.status_code == 200, resp.text
    # A batch is visible only when every CUIT in it is the client's.
    assert_problem(intake.get("/v1/batches/two-cuits"), 403, "forbidden-batch")
    assert intake.get("/v1/batches/two-cuits", token=BOTH_TOKEN).status_code == 200
    # Nor can another client add jobs to it.
    resp = intake.post("/v1/batches", {"batch": "two-cuits", "jobs": [envelope(ref="B-3")]})
    assert paths(assert_problem(resp, 403, "forbidden-batch")) == ["batch"]


# --- 404, 405, 413 ----------------------------------------------------------------------------


def test_unknown_things_are_404_problems(intake: Intake) -> None:
    assert_problem(intake.get("/v1/invoices/0123456789abcdef"), 404, "no-such-job")
    assert_problem(intake.get("/v1/invoices/not..an..id"), 404, "no-such-job")
    assert_problem(intake.get("/v1/batches/never-made"), 404, "no-such-batch")
    assert_problem(intake.get("/nothing/here", token=None), 404)
    resp = intake.session.delete(intake.url + "/healthz")
    assert_problem(resp, 405)
    assert resp.headers["allow"] == "GET"


def test_a_body_over_the_limit_is_a_413_by_length_and_while_streaming(intake: Intake) -> None:
    big = b"[" + b" " * (MAX_BODY + 10) + b"]"
    headers = {**auth(), "Content-Type": "application/json"}
    resp = intake.session.post(intake.url + "/v1/batches", data=big, headers=headers)
    assert_problem(resp, 413, "body-too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"["
        for _ in range(20):
            yield b" " * 10_000
        yield b"]"

    resp = intake.session.post(intake.url + "/v1/batches", data=chunks(), headers=headers)
    assert "content-length" not in resp.request.headers
    assert_problem(resp, 413, "body-too-large")
    # The connection still serves the next request.
    assert intake.session.get(intake.url + "/healthz").status_code == 200


def test_a_40_mb_body_gets_its_413_from_a_real_tfq_serve(tmp_path: Path, redis_url: str) -> None:
    """Refused by its Content-Length before it is read, and the client, still writing,
    reads the 413 problem rather than a connection reset (uvicorn discards the rest)."""
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(
        f'[[client]]\nname = "shop"\ntoken_sha256 = "{token_sha256(SHOP_TOKEN)}"\n'
        f'cuits = ["{RI_CUIT}"]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "TFQ_REDIS_URL": redis_url, "TFQ_TENANTS_FILE": str(tenants)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    served = IntakeProcess(env, workers=1, log_path=tmp_path / "intake.log")
    big = b" " * (40 * 1000 * 1000)  # over the default 32 MiB
    try:
        served.wait_ready()
        for headers in (auth(), {}):  # the size is refused before the token is looked at
            resp = requests.post(served.url + "/v1/batches", data=big, headers=headers, timeout=60)
            problem = assert_problem(resp, 413, "body-too-large")
            assert str(32 * 1024 * 1024) in problem["detail"]
    finally:
        served.stop()


def test_a_batch_over_the_job_limit_is_a_413(intake: Intake) -> None:
    jobs = [envelope("factura_dolares", ref=f"MANY-{i}") for i in range(MAX_BATCH + 1)]
    resp = intake.post("/v1/batches", {"batch": "too-many", "jobs": jobs})
    assert paths(assert_problem(resp, 413, "batch-too-large")) == ["jobs"]
    assert intake.queue.batch("too-many") is None


# --- POST /v1/batches and GET /v1/batches/{name} ---------------------------------------------


def test_a_batch_reports_each_envelope_accepted_duplicate_or_refused(intake: Intake) -> None:
    existing = intake.post("/v1/invoices", envelope(ref="OLD-1")).json()["job_id"]
    bad_total = envelope(ref="N-3")
    bad_total["invoice"]["comprobante"]["total"] += 5
    no_cuit = envelope(ref="N-5")
    del no_cuit["cuit"]
    jobs: list[Any] = [
        envelope(ref="N-1"),
        envelope("factura_a", ref="N-2"),
        bad_total,
        envelope(ref="OLD-1"),  # queued before this batch
        no_cuit,
        envelope(ref="N-1"),  # repeats index 0
        "not an object",
    ]
    resp = intake.post("/v1/batches", {"batch": "nightly-1", "jobs": jobs})
    assert resp.status_code == 200, resp.text
    reply = resp.json()
    assert (reply["received"], reply["accepted"], reply["duplicates"], reply["refused"]) == (
        7,
        2,
        2,
        3,
    )
    results = reply["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == [
        "accepted",
        "accepted",
        "refused",
        "duplicate",
        "refused",
        "duplicate",
        "refused",
    ]
    assert results[3]["job_id"] == existing
    assert results[5]["job_id"] == results[0]["job_id"]
    assert [e["path"] for e in results[2]["errors"]] == ["invoice.comprobante.total"]
    assert "cuit" in [e["path"] for e in results[4]["errors"]]
    assert results[6]["errors"] == [{"path": "", "reason": "a job must be a JSON object"}]

    status = intake.get("/v1/batches/nightly-1")
    assert status.status_code == 200
    summary = status.json()
    assert summary["batch"] == "nightly-1"
    assert summary["total"] == 2
    assert summary["counts"]["queued"] == 2
    assert summary["progress"] == 0.0
    assert summary["eta_seconds"] >= 0
    job = intake.get(f"/v1/invoices/{results[1]['job_id']}").json()
    assert job["batch"] == "nightly-1"


# --- /healthz, /metrics, /openapi.json -------------------------------------------------------


def test_healthz_answers_ok_without_auth(intake: Intake) -> None:
    resp = intake.get("/healthz", token=None)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "redis": "ok"}
    assert intake.session.head(intake.url + "/healthz").status_code == 200


def samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = list(family.samples)
    return out


def value(found: dict[str, list[Any]], family: str, **labels: str) -> float:
    for s in found[family]:
        if all(s.labels.get(k) == v for k, v in labels.items()) and not s.name.endswith("_created"):
            return float(s.value)
    raise AssertionError(f"no {family} {labels}")


def test_metrics_hold_the_queue_state_and_the_intakes_requests(intake: Intake) -> None:
    for i in range(3):
        assert intake.post("/v1/invoices", envelope(ref=f"MET-{i}")).status_code == 201
    reply = intake.post(
        "/v1/batches", {"batch": "met", "jobs": [envelope("factura_c", ref="MET-9")]}, BOTH_TOKEN
    )
    assert reply.json()["accepted"] == 1
    intake.queue.store.pause(RI_CUIT, "x")
    callbacks = Callbacks(intake.queue.store)
    callbacks.enqueue("invoice.issued", RI_CUIT, "https://shop.example/h", {"n": 1})
    callbacks.dead_letter(
        callbacks.enqueue("invoice.issued", RI_CUIT, "https://shop.example/h", {"n": 2}), "gone"
    )

    resp = intake.get("/metrics", token=None)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    found = samples(resp.text)
    assert value(found, "tfq_jobs", status="queued") == 4
    assert value(found, "tfq_jobs", status="issued") == 0
    assert value(found, "tfq_queued_jobs") == 4
    assert value(found, "tfq_oldest_queued_job_age_seconds") >= 0
    assert value(found, "tfq_paused_lanes") == 1
    assert value(found, "tfq_callbacks_pending") == 1
    assert value(found, "tfq_callbacks_dead") == 1
    assert (
        value(found, "tfq_intake_requests", method="POST", route="/v1/invoices", status="201") == 3
    )
    assert (
        value(found, "tfq_intake_requests", method="POST", route="/v1/batches", status="200") == 1
    )
    assert value(found, "tfq_intake_envelopes", outcome="accepted") == 4
    assert (
        value(found, "tfq_intake_request_seconds", method="POST", route="/v1/invoices") >= 0
    )  # the histogram's first bucket


def test_openapi_lists_every_route_with_the_envelope_schema(intake: Intake) -> None:
    resp = intake.get("/openapi.json", token=None)
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/v1/invoices",
        "/v1/batches",
        "/v1/invoices/{job_id}",
        "/v1/invoices/{job_id}/pdf",
        "/v1/invoices/{job_id}/credit-note",
        "/v1/batches/{name}",
        "/healthz",
        "/metrics",
    }
    schemas = doc["components"]["schemas"]
    post = doc["paths"]["/v1/invoices"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobEnvelope"
    }
    assert {"201", "200", "401", "403", "413", "422"} <= set(post["responses"])
    problem = post["responses"]["422"]["content"]
    assert problem == {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}
    assert "HTTPValidationError" not in schemas  # every 4xx is documented as a problem
    assert schemas["BatchIn"]["properties"]["jobs"]["items"]["$ref"].endswith("/JobEnvelope")
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert post["security"] == [{"HTTPBearer": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref


def test_serve_with_two_workers_sums_their_counters(settings: Settings, tmp_path: Path) -> None:
    """`serve(workers=2)`: each scrape reaches one worker and still counts every request."""
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(
        f'[[client]]\nname = "shop"\ntoken_sha256 = "{token_sha256(SHOP_TOKEN)}"\n'
        f'cuits = ["{RI_CUIT}"]\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "TFQ_REDIS_URL": settings.redis_url,
        "TFQ_KEY_PREFIX": settings.key_prefix,
        "TFQ_TENANTS_FILE": str(tenants),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    intake = IntakeProcess(env, workers=2, log_path=tmp_path / "intake.log")
    client = redis.Redis.from_url(settings.redis_url)
    try:
        intake.wait_ready()
        assert len(process_tree(intake.proc.pid)) >= 3  # the supervisor and two workers
        with requests.Session() as session:
            for i in range(3):
                resp = session.post(
                    intake.url + "/v1/invoices", json=envelope(ref=f"W-{i}"), headers=auth()
                )
                assert resp.status_code == 201, resp.text
            for _ in range(6):  # new connections: they land on either worker
                found = samples(requests.get(intake.url + "/metrics", timeout=30).text)
                assert value(found, "tfq_jobs", status="queued") == 3
                posted = value(found, "tfq_intake_requests", route="/v1/invoices", status="201")
                assert posted == 3
    finally:
        intake.stop()
        keys = list(client.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()
    assert "Traceback" not in (tmp_path / "intake.log").read_text()


# --- acknowledged means deliverable and durable -----------------------------------------------

UNDELIVERABLE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost/hook",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "https://user:pass@8.8.8.8/hook",
    "ftp://8.8.8.8/hook",
]


def test_an_undeliverable_callback_url_is_a_422_naming_callback_url(intake: Intake) -> None:
    for i, url in enumerate(UNDELIVERABLE):
        env = envelope(ref=f"CB-{i}")
        env["callback_url"] = url
        problem = assert_problem(intake.post("/v1/invoices", env), 422, "invalid-job")
        assert paths(problem) == ["callback_url"], url
    env = envelope(ref="CB-public")
    env["callback_url"] = "https://8.8.8.8/hook"
    assert intake.post("/v1/invoices", env).status_code == 201


def test_a_batch_refuses_each_undeliverable_callback_url_and_queues_the_others(
    intake: Intake,
) -> None:
    jobs = []
    for i, url in enumerate(["https://8.8.8.8/hook", *UNDELIVERABLE, None]):
        env = envelope(ref=f"CBB-{i}")
        if url:
            env["callback_url"] = url
        jobs.append(env)
    resp = intake.post("/v1/batches", {"batch": "callbacks", "jobs": jobs})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] + ["refused"] * len(UNDELIVERABLE) + [
        "accepted"
    ]
    for r in results[1:-1]:
        assert [e["path"] for e in r["errors"]] == ["callback_url"]


def test_allow_private_takes_a_local_callback_over_http(settings: Settings) -> None:
    settings = settings.model_copy(update={"callbacks_allow_private": True})
    queue = InvoiceQueue(settings=settings, key_prefix=settings.key_prefix)
    app = create_app(settings, queue=queue, tenants=tenants_with_clients())
    env = envelope(ref="CB-private")
    env["callback_url"] = "http://127.0.0.1:8080/hook"
    try:
        with serving(app) as url:
            resp = requests.post(url + "/v1/invoices", json=env, headers=auth(), timeout=30)
            assert resp.status_code == 201, resp.text
    finally:
        queue.redis.delete(*queue.redis.keys(f"{settings.key_prefix}*"))
        queue.redis.close()


def test_an_unconfirmed_fsync_is_a_503_that_says_the_job_is_queued(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue = intake.queue.store.enqueue

    def unconfirmed(*args: Any, **kwargs: Any) -> Any:
        enqueue(*args, **kwargs)
        check_waitaof_reply([0, 0], 5.0)

    monkeypatch.setattr(intake.queue.store, "enqueue", unconfirmed)
    for path, body in (
        ("/v1/invoices", envelope(ref="FS-1")),
        ("/v1/batches", {"batch": "fsync", "jobs": [envelope(ref="FS-2")]}),
    ):
        resp = intake.post(path, body)
        problem = assert_problem(resp, 503, "not-on-disk")
        assert resp.headers["retry-after"]
        assert "queued" in problem["detail"]
        assert "same job" in problem["detail"]
    monkeypatch.undo()
    resp = intake.post("/v1/invoices", envelope(ref="FS-1"))  # the retry: the same job
    assert resp.status_code == 200, resp.text
    assert resp.json()["duplicate"]


# --- failures: Redis down, an unexpected error ------------------------------------------------


def test_redis_down_is_a_503_problem_without_a_stack_trace(settings: Settings) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    queue = InvoiceQueue(dead, settings=settings, key_prefix=settings.key_prefix)
    app = create_app(settings, queue=queue, tenants=tenants_with_clients())
    with serving(app) as url:
        resp = requests.get(url + "/healthz", timeout=30)
        assert_problem(resp, 503, "redis-down")
        assert resp.headers["retry-after"]
        resp = requests.post(url + "/v1/invoices", json=envelope(), headers=auth(), timeout=30)
        assert_problem(resp, 503, "queue-unavailable")
        resp = requests.get(url + "/metrics", timeout=30)
        assert_problem(resp, 503, "queue-unavailable")


class BrokenQueue(InvoiceQueue):
    def status(self, job_id: str) -> dict[str, Any] | None:
        raise RuntimeError("boom: " + SHOP_TOKEN)


def test_an_unexpected_error_is_a_500_problem_without_a_stack_trace(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    queue = BrokenQueue(settings=settings, key_prefix=settings.key_prefix)
    app = create_app(settings, queue=queue, tenants=tenants_with_clients())
    try:
        with serving(app) as url, caplog.at_level(logging.INFO, logger="tfq.intake"):
            resp = requests.get(url + "/v1/invoices/0123456789abcdef", headers=auth(), timeout=30)
            problem = assert_problem(resp, 500)
            assert problem["request_id"] in problem["detail"]
            assert SHOP_TOKEN not in resp.text
            # The POST queued its job; only reading it back failed.
            resp = requests.post(url + "/v1/invoices", json=envelope(), headers=auth(), timeout=30)
            assert_problem(resp, 500)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors
        assert errors[0].exc_info is not None  # the trace goes to the log, not the body
    finally:
        keys = list(queue.redis.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        if keys:
            queue.redis.unlink(*keys)


# --- logs -------------------------------------------------------------------------------------


def test_one_log_line_per_request_without_bodies_or_tokens(
    intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    env = envelope(ref="LOG-1")
    env["invoice"]["cliente"]["razon_social"] = "Marker Razon Social"
    with caplog.at_level(logging.INFO, logger="tfq.intake"):
        assert intake.post("/v1/invoices", env).status_code == 201
        assert intake.post("/v1/invoices", env, token="wrong-token-xyz").status_code == 401
        assert intake.get("/healthz", token=None).status_code == 200
        deadline = time.monotonic() + 5
        while len([r for r in caplog.records if r.msg == "request"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    lines = [r for r in caplog.records if r.msg == "request"]
    got = [(r.method, r.path, r.status, r.client) for r in lines]  # type: ignore[attr-defined]
    assert got == [
        ("POST", "/v1/invoices", 201, "shop"),
        ("POST", "/v1/invoices", 401, "-"),
        ("GET", "/healthz", 200, "-"),
    ]
    assert all(r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (SHOP_TOKEN, "wrong-token-xyz", "Marker Razon Social", "LOG-1"):
        assert secret not in everything


# --- unit: the Idempotency-Key rules without HTTP -------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda e: e["invoice"]["comprobante"].pop("external_reference"), "filled"),
        (lambda e: e["invoice"]["comprobante"].update(external_reference="K-1"), "same"),
        (lambda e: e["invoice"].pop("comprobante"), "untouched"),
    ],
)
def test_idempotency_key_rules(mutate: Callable[[dict[str, Any]], object], expect: str) -> None:
    env = envelope()
    mutate(env)
    _apply_idempotency_key(env, "K-1")
    if expect == "untouched":
        assert "comprobante" not in env["invoice"]
    else:
        assert env["invoice"]["comprobante"]["external_reference"] == "K-1"
