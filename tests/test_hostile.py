"""Hostile input: generated envelopes, valid and invalid, at the Python client and the intake.

Every envelope comes from `tests.hostile_strategies` with an independent verdict (valid,
invalid or unknown). For each one:

- `validate_envelope` returns an envelope or raises `InvalidJob`, never anything else; a
  known-valid envelope is accepted and a known-invalid one refused; every refusal has a
  reason and a path that resolves in the input (or names a missing field under it), and no
  refusal repeats an injected secret or any input string longer than 40 characters;
- `InvoiceQueue.submit_many` (real Redis) refuses exactly those, accounts for every index
  and never crashes;
- the HTTP intake (real HTTP) answers 201/200, 403 (a CUIT the caller may not use), 422 or
  400, as `application/problem+json` with paths for refusals, never 500, never a trace;
- a real worker and the sandbox: no call and no invoice for a refused job.

Fields an API block does not know pass through to the API and are listed in the job's
`unchecked_fields`, unless they misspell a known field or are credentials (refused at
their path): every verdict also checks that list, and the hint, against the model.

Eleven defects these tests found are fixed; each keeps a minimal reproduction below
(BUG-1 .. BUG-11) as a regression test, and the property runs cover their inputs again.
A newly found one goes into `OPEN_BUGS` (kept out of the property runs) with a strict xfail
reproduction, so its fix shows up as an XPASS: then drop the mark and the entry. None is
open.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ops.sandbox.server import SandboxProcess
from ops.testkit.harness import WorkerProcess, serving, unique_prefix, wait_until, worker_env
from producers.client import InvoiceQueue
from producers.http.app import create_app
from tests.conftest import TENANTS_FILE
from tests.hostile_strategies import (
    ALLOWED_CUITS,
    EXAMPLES,
    KNOWN_FIELDS,
    VALID_TIPOS,
    Hostile,
    envelopes,
    get,
    path_text,
    string_values,
    unknown_keys,
)
from worker.errors import FieldError, InvalidJob
from worker.invoice.envelope import validate_envelope
from worker.settings import Settings
from worker.tenants import Tenants

TOKEN = "demo-token-please-change"  # ops/testkit/examples/tenants.toml's client
NO_TRACE = ("Traceback", 'File "', '", line ')
PROBLEM_JSON = "application/problem+json"
ECHO_LIMIT = 40  # input strings longer than this must never come back in a refusal
INVOICING = ("facturacion/nuevo", "facturacion/lotes")

# Volumes: examples per test and envelopes per example. Lists of 40-80 are the cheapest per
# envelope to generate; together the client and intake tests judge at least 10,000. The
# draws vary with the modules loaded (Hypothesis mines their string constants), so the
# example counts leave a margin above each floor.
CLIENT_EXAMPLES, BATCH_EXAMPLES, SINGLE_EXAMPLES, SANDBOX_ROUNDS = 120, 105, 28, 6
LIST, SINGLE_LIST, SANDBOX_LIST = (40, 80), (15, 25), (40, 60)
CLIENT_MIN, BATCH_MIN, SINGLE_MIN = 5_200, 4_400, 400  # 10,000 in all

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    # Shrinking lists of large envelopes takes many minutes; each assertion names the
    # envelope and its mutations instead.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
)


# Mutation families beyond the defaults that every way in must survive.
EXTRAS = ("metadata_nonjson", "unicode_digits")


# --- open bugs: kept out of the property runs until fixed; each has an xfail reproduction ---


# Add `name: predicate` here for a newly found defect (with its strict xfail reproduction);
# remove it once fixed, so the property runs cover those inputs again.
OPEN_BUGS: dict[str, Callable[[Any], bool]] = {}


def without_open_bugs(batch: list[Hostile]) -> list[Hostile]:
    """The envelopes that reach no open bug (drop an entry of OPEN_BUGS once it is fixed)."""
    return [h for h in batch if not any(hits(h.value) for hits in OPEN_BUGS.values())]


# --- the invariants -------------------------------------------------------------------------


_SEGMENT = re.compile(r'\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([^.\[\]"]+)')


@dataclass(frozen=True)
class Quoted:
    """A quoted key of a path, as written (JSON escapes kept: a high and a low surrogate
    written apart would read back as one character)."""

    literal: str


def parse_path(path: str) -> list[int | str | Quoted] | None:
    """`a.b[0]["odd.key"]` -> ["a", "b", 0, Quoted('"odd.key"')] (format_loc's grammar)."""
    parts: list[int | str | Quoted] = []
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if m is None or m.end() == pos:
            return None
        if m[1] is not None:
            parts.append(int(m[1]))
        elif m[2] is not None:
            parts.append(Quoted(m[2]))
        else:
            parts.append(m[3])
        pos = m.end()
    return parts


def resolves(node: Any, path: str) -> bool:
    """`path` names something in `node`, or its last part is a missing known field."""
    parts = parse_path(path)
    if parts is None:
        return False
    for i, part in enumerate(parts):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False
            node = node[part]
            continue
        if isinstance(part, Quoted) and isinstance(node, dict):
            keys = [k for k in node if isinstance(k, str) and json.dumps(k) == part.literal]
            if keys:
                node = node[keys[0]]
                continue
            return False
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return isinstance(node, dict) and i == len(parts) - 1 and part in KNOWN_FIELDS
    return True


def long_strings(h: Hostile) -> list[str]:
    return [s for s in set(string_values(h.value)) if len(s) > ECHO_LIMIT and s not in VALID_TIPOS]


def check_refusal(h: Hostile, errors: list[FieldError]) -> None:
    """Every refusal: a reason, a path into the input, no secret, no echoed long value."""
    where = h.describe()
    assert errors, where
    echo = long_strings(h)
    for e in errors:
        assert isinstance(e, FieldError), where
        assert isinstance(e.reason, str), (where, e)
        assert e.reason.strip(), (where, e)
        assert isinstance(e.path, str), (where, e)
        if e.path == "":
            assert not isinstance(h.value, dict), (where, e)
        else:
            assert isinstance(h.value, dict), (where, e)
            assert resolves(h.value, e.path), (where, e.path)
        for secret in h.secrets:
            assert secret not in str(e), (where, e.path)
        for s in echo:
            assert s not in e.reason, (where, e.path, "echoes an input value")
    if not isinstance(h.value, dict):
        assert [e.path for e in errors] == [""], where


@dataclass
class Outcome:
    valid: bool
    errors: list[FieldError]


def hint(field: str) -> str:
    return f"unknown field: did you mean '{field}'?"


def check_unknown_keys(h: Hostile, outcome: Outcome, unchecked: list[str]) -> None:
    """Unknown keys of API blocks, against the model: an accepted job lists every one
    passed through (and has none misspelt); a refusal names every misspelt key with its
    hint and every credential by its path (unless it is the one for text that is not
    UTF-8, which stands alone)."""
    where = h.describe()
    keys = unknown_keys(h.value)
    if outcome.valid:
        assert not keys.refused, (where, keys.refused)
        expected = sorted(path_text(p) for p, _ in keys.passed)
        assert sorted(unchecked) == expected, (where, unchecked)
        return
    if [e.reason for e in outcome.errors] == ["not valid UTF-8 text"]:
        return
    paths = [e.path for e in outcome.errors]
    for path, field in keys.refused:
        text = path_text(path)
        if field is None:
            assert text in paths, (where, text, "credential not named")
        else:
            assert FieldError(text, hint(field)) in outcome.errors, (where, text, field)


def reference(h: Hostile) -> Outcome:
    """`validate_envelope` on one envelope, with the verdict and the invariants checked."""
    unchecked: list[str] = []
    try:
        unchecked = validate_envelope(h.value).unchecked_fields
    except InvalidJob as exc:
        outcome = Outcome(False, exc.errors)
        check_refusal(h, exc.errors)
    else:
        outcome = Outcome(True, [])
    check_unknown_keys(h, outcome, unchecked)
    if h.expect != "unknown":
        assert outcome.valid == (h.expect == "valid"), (
            f"expected {h.expect}: {h.describe()}",
            [str(e) for e in outcome.errors],
        )
    return outcome


def stamped(batch: list[Hostile]) -> list[Hostile]:
    """Unique external_references across the whole run (and the shared Redis)."""
    run = secrets.token_hex(3)
    for i, h in enumerate(batch):
        h.stamp(f"{run}{i}")
    return batch


# --- the Python client ----------------------------------------------------------------------


@pytest.fixture
def queue(redis_url: str) -> Iterator[InvoiceQueue]:
    q = InvoiceQueue(redis_url, key_prefix=unique_prefix("hostile"))
    yield q
    cleanup(q)


def cleanup(q: InvoiceQueue) -> None:
    keys = list(q.redis.scan_iter(match=f"{q.keys.prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        q.redis.unlink(*keys[start : start + 1000])
    q.redis.close()


def test_the_client_refuses_exactly_the_invalid_and_never_crashes(queue: InvoiceQueue) -> None:
    judged = [0]

    @settings(SETTINGS, max_examples=CLIENT_EXAMPLES)
    @given(st.lists(envelopes(extra=EXTRAS), min_size=LIST[0], max_size=LIST[1]))
    def run(drawn: list[Hostile]) -> None:
        batch = stamped(without_open_bugs(drawn))
        outcomes = [reference(h) for h in batch]
        report = queue.submit_many([h.value for h in batch], batch="hostile")
        assert report.total == len(batch)
        indexes = sorted(
            [i for i, _ in report.accepted]
            + [i for i, _ in report.duplicates]
            + [i for i, _ in report.refused]
        )
        assert indexes == list(range(len(batch)))
        assert {i for i, _ in report.refused} == {i for i, o in enumerate(outcomes) if not o.valid}
        for i, errors in report.refused:
            assert errors == outcomes[i].errors, batch[i].describe()
        judged[0] += len(batch)

    run()
    assert judged[0] >= CLIENT_MIN


# --- the HTTP intake ------------------------------------------------------------------------


@dataclass
class Intake:
    url: str
    queue: InvoiceQueue
    session: requests.Session

    def post(self, path: str, body: Any) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        return self.session.post(self.url + path, data=data, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def intake(redis_url: str) -> Iterator[Intake]:
    config = Settings(redis_url=redis_url, key_prefix=unique_prefix("hostile-http"))
    q = InvoiceQueue(settings=config, key_prefix=config.key_prefix)
    app = create_app(config, queue=q, tenants=Tenants.load(TENANTS_FILE))
    try:
        with serving(app) as url, requests.Session() as session:
            yield Intake(url, q, session)
    finally:
        cleanup(q)


def authorized(value: Any) -> bool:
    """The intake checks the caller's CUITs before validating (producers.http.auth.cuit_of)."""
    cuit = value.get("cuit") if isinstance(value, dict) else None
    if isinstance(cuit, int) and not isinstance(cuit, bool):
        cuit = str(cuit)
    return not isinstance(cuit, str) or cuit in ALLOWED_CUITS


def check_problem(resp: requests.Response, status: int, h: Hostile | None = None) -> Any:
    assert resp.status_code == status, (resp.status_code, resp.text[:500], h and h.describe())
    assert resp.headers["content-type"] == PROBLEM_JSON, resp.headers["content-type"]
    body = resp.json()
    assert body["status"] == status
    for marker in NO_TRACE:
        assert marker not in resp.text, resp.text[:500]
    if h is not None:
        for secret in h.secrets:
            assert secret not in resp.text, h.describe()
        texts = [body["detail"], *(e["reason"] for e in body.get("errors") or [])]
        for s in long_strings(h):
            assert not any(s in t for t in texts), (h.describe(), "echoes an input value")
    return body


def check_no_trace(resp: requests.Response) -> None:
    assert resp.status_code != 500, resp.text[:500]
    for marker in NO_TRACE:
        assert marker not in resp.text, resp.text[:500]


def as_dicts(errors: list[FieldError]) -> list[dict[str, str]]:
    return [e.as_dict() for e in errors]


def test_the_intake_batches_answer_every_envelope_by_index(intake: Intake) -> None:
    judged = [0]
    names = iter(range(10**6))

    @settings(SETTINGS, max_examples=BATCH_EXAMPLES)
    @given(st.lists(envelopes(extra=EXTRAS), min_size=LIST[0], max_size=LIST[1]))
    def run(drawn: list[Hostile]) -> None:
        batch = stamped(without_open_bugs(drawn))
        mine = [h for h in batch if authorized(h.value)]
        foreign = [h for h in batch if not authorized(h.value)]
        if mine:
            outcomes = [reference(h) for h in mine]
            resp = intake.post(
                "/v1/batches", {"batch": f"hostile-{next(names)}", "jobs": [h.value for h in mine]}
            )
            check_no_trace(resp)
            assert resp.status_code == 200, resp.text[:500]
            reply = resp.json()
            assert reply["received"] == len(mine)
            assert reply["accepted"] + reply["duplicates"] + reply["refused"] == len(mine)
            assert [r["index"] for r in reply["results"]] == list(range(len(mine)))
            for h, o, r in zip(mine, outcomes, reply["results"], strict=True):
                if o.valid:
                    assert r["status"] in ("accepted", "duplicate"), (h.describe(), r)
                    assert r["job_id"]
                else:
                    assert r["status"] == "refused", (h.describe(), r)
                    assert r["errors"] == as_dicts(o.errors), h.describe()
                    for secret in h.secrets:
                        assert secret not in json.dumps(r), h.describe()
        if foreign:
            for h in foreign:
                reference(h)
            resp = intake.post(
                "/v1/batches",
                {"batch": f"hostile-{next(names)}", "jobs": [h.value for h in foreign]},
            )
            problem = check_problem(resp, 403)
            assert [e["path"] for e in problem["errors"]] == [
                f"jobs[{i}].cuit" for i in range(len(foreign))
            ]
        judged[0] += len(batch)

    run()
    assert judged[0] >= BATCH_MIN


def test_the_intake_answers_each_envelope_with_its_status(intake: Intake) -> None:
    judged = [0]

    @settings(SETTINGS, max_examples=SINGLE_EXAMPLES)
    @given(st.lists(envelopes(extra=EXTRAS), min_size=SINGLE_LIST[0], max_size=SINGLE_LIST[1]))
    def run(drawn: list[Hostile]) -> None:
        batch = stamped(without_open_bugs(drawn))
        for h in batch:
            outcome = reference(h)
            resp = intake.post("/v1/invoices", h.value)
            check_no_trace(resp)
            if not isinstance(h.value, dict):
                problem = check_problem(resp, 422, h)
                assert problem["type"] == "urn:tfq:problem:invalid-request"
                assert [e["path"] for e in problem["errors"]] == [""]
            elif not authorized(h.value):
                problem = check_problem(resp, 403, h)
                assert [e["path"] for e in problem["errors"]] == ["cuit"]
            elif not outcome.valid:
                problem = check_problem(resp, 422, h)
                assert problem["type"] == "urn:tfq:problem:invalid-job"
                assert problem["errors"] == as_dicts(outcome.errors), h.describe()
            else:
                assert resp.status_code in (200, 201), (resp.text[:500], h.describe())
                job = resp.json()
                assert job["duplicate"] is (resp.status_code == 200)
                assert job["status"] == "queued" or job["duplicate"]
        judged[0] += len(batch)

    run()
    assert judged[0] >= SINGLE_MIN


RAW_BODIES = [
    b"",
    b"{",
    b"nul",
    b"{'cuit': 1}",
    b"\xff\xfe\x00{",
    b'{"cuit": "\xff"}',
    b"\x00",
    b"[" * 100_000,
    b"[" * 5_000 + b"]" * 5_000,
    b'{"a":' * 3_000 + b"1" + b"}" * 3_000,
    b"NaN",
    b"-Infinity",
    b"1e999999",
    b"1" * 5_000,
    b'{"cuit": ' + b"7" * 5_000 + b', "invoice": {}}',
    b'"\\ud800"',
    b'{"cuit": "20111111112", "invoice": {"cliente": {}, "comprobante": {}},}',
    b'{"cuit": "20111111112"} trailing',
    json.dumps(EXAMPLES["factura_b"]).encode()[:-5],
]


@pytest.mark.parametrize("path", ["/v1/invoices", "/v1/batches"])
def test_bodies_that_are_not_json_are_400_or_422_never_500(intake: Intake, path: str) -> None:
    for raw in RAW_BODIES:
        resp = intake.post(path, raw)
        check_no_trace(resp)
        assert resp.status_code in (400, 422), (raw[:40], resp.status_code, resp.text[:300])
        assert resp.headers["content-type"] == PROBLEM_JSON
        assert "errors" in resp.json() or resp.status_code == 400, resp.text[:300]


# --- a real worker and the sandbox: no call for a refused job -------------------------------


def test_the_sandbox_gets_no_call_for_a_refused_job(
    sandbox: SandboxProcess, redis_url: str, tmp_path: Any
) -> None:
    rounds: list[list[Hostile]] = []

    @settings(SETTINGS, max_examples=SANDBOX_ROUNDS)
    @given(st.lists(envelopes(extra=EXTRAS), min_size=SANDBOX_LIST[0], max_size=SANDBOX_LIST[1]))
    def draw(drawn: list[Hostile]) -> None:
        rounds.append(drawn)

    draw()
    prefix = unique_prefix("hostile-e2e")
    queue = InvoiceQueue(redis_url, key_prefix=prefix)
    env = worker_env(redis_url, sandbox.api_url, TENANTS_FILE, prefix=prefix, gap_seconds=0)
    accepted: dict[tuple[str, str], str] = {}
    refused: set[tuple[str, str]] = set()
    submitted = 0
    try:
        with WorkerProcess(env, concurrency=8, log_path=tmp_path / "worker.log"):
            for drawn in rounds:
                batch = stamped(without_open_bugs(drawn))
                report = queue.submit_many([h.value for h in batch], batch="hostile-e2e")
                submitted += len(batch)
                for i, job_id in report.accepted:
                    accepted[job_key(batch[i].value)] = job_id
                for i, _ in report.refused:
                    refused.add(job_key(batch[i].value))
                time.sleep(0.2)  # the worker is already sending while the next round comes
            assert submitted >= 200, submitted
            assert accepted, "no envelope was accepted"
            assert refused, "no envelope was refused"

            def settled() -> bool:
                states = [queue.status(j) for j in accepted.values()]
                return all(s and s["status"] in ("issued", "rejected", "paused") for s in states)

            assert wait_until(settled, 150, interval=0.25), [
                (k, (queue.status(j) or {}).get("status")) for k, j in accepted.items()
            ][:20]
        ledger = sandbox.ledger()
    finally:
        cleanup(queue)
        client = redis.Redis.from_url(redis_url)
        client.delete(f"{prefix}send")
        for key in client.scan_iter(match=f"_kombu.binding*.{prefix}*", count=1000):
            client.unlink(key)
        client.close()
    refused -= set(accepted)  # a refused envelope may repeat an accepted key: not refused then
    issued = {(i["cuit"], i["external_reference"]) for i in ledger["issued"]}
    assert issued <= set(accepted), issued - set(accepted)
    assert not issued & refused
    calls = [c for c in ledger["calls"] if c["endpoint"] in INVOICING]
    assert len(calls) <= len(accepted)


def job_key(value: Any) -> tuple[str, str]:
    """(cuit, external_reference) as the queue keys it, or a placeholder for non-jobs."""
    if not isinstance(value, dict):
        return ("-", repr(value)[:80])
    cuit = value.get("cuit")
    ref = get(value, ("invoice", "comprobante", "external_reference"))
    return (str(cuit), str(ref))


# --- fixed defects: minimal reproductions, kept as regression tests -------------------------


def example(name: str, ref: str | None = None) -> dict[str, Any]:
    env = json.loads(json.dumps(EXAMPLES[name]))
    if ref is not None:
        env["invoice"]["comprobante"]["external_reference"] = ref
    return env


def refusal(env: Any) -> list[FieldError]:
    with pytest.raises(InvalidJob) as info:
        validate_envelope(env)
    return info.value.errors


BUG_1 = (
    "BUG-1: business_errors calls int() on documento_nro, which only passed str.isdigit(): "
    "'²' or '①' (OTRO, CUIT or CUIL) raise ValueError: submit_many crashes, the intake says 500"
)


@pytest.mark.parametrize(
    ("name", "tipo", "nro"), [("factura_c", "OTRO", "²"), ("factura_a", "CUIT", "3071229384²")]
)
def test_bug1_a_superscript_digit_in_documento_nro_is_a_refusal(
    queue: InvoiceQueue, name: str, tipo: str, nro: str
) -> None:
    env = example(name, "BUG1")
    env["invoice"]["cliente"].update(documento_tipo=tipo, documento_nro=nro)
    assert [e.path for e in refusal(env)] == ["invoice.cliente.documento_nro"]
    report = queue.submit_many([example("factura_b", "BUG1-OK"), env])
    assert [i for i, _ in report.refused] == [1]


BUG_2 = (
    "BUG-2: CUITs and document numbers are checked with str.isdigit() and int(), so non-ASCII "
    "digits pass: issuer '20１１１１１１１１２' and DNI '٢٨٧٦٥٤٣٢' are accepted as is, and "
    "'2011111111²' is refused with Python's 'invalid literal for int()' text echoing the value"
)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("cuit",), "20１１１１１１１１２"),
        (("invoice", "cliente", "documento_nro"), "٢٨٧٦٥٤٣٢"),
        (("cuit",), "2011111111²"),
    ],
)
def test_bug2_non_ascii_digits_are_not_a_cuit_nor_a_document(
    path: tuple[str, ...], value: str
) -> None:
    env = example("factura_b")
    holder = get(env, path[:-1])
    holder[path[-1]] = value
    errors = refusal(env)
    assert ".".join(path) in [e.path for e in errors]
    assert not any("invalid literal" in e.reason or value in e.reason for e in errors)


def test_bug1_bug2_property_unicode_digits_in_cuits_and_documents(queue: InvoiceQueue) -> None:
    @settings(SETTINGS, max_examples=10)
    @given(st.lists(envelopes(force="unicode_digits"), min_size=5, max_size=10))
    def run(drawn: list[Hostile]) -> None:
        batch = stamped(without_open_bugs(drawn))
        outcomes = [reference(h) for h in batch]
        report = queue.submit_many([h.value for h in batch])
        assert {i for i, _ in report.refused} == {i for i, o in enumerate(outcomes) if not o.valid}

    run()


BUG_3 = (
    "BUG-3: POST /v1/invoices queues a job whose metadata holds NaN/Infinity or a lone "
    "surrogate (JSON can carry both), then answers 500 rendering it (allow_nan=False, UTF-8); "
    "every retry is a duplicate that answers 500 again"
)


@pytest.mark.parametrize(
    "metadata", [{"x": math.nan}, {"x": -math.inf}, {"x": "a\ud800"}, {"\udc00": 1}]
)
def test_bug3_an_accepted_job_never_gets_a_500(intake: Intake, metadata: dict[str, Any]) -> None:
    env = example("factura_b", f"BUG3-{secrets.token_hex(4)}")
    env["metadata"] = metadata
    resp = intake.post("/v1/invoices", env)
    assert resp.status_code in (201, 422), resp.text[:300]


def test_bug3_property_metadata_that_is_not_strict_json(intake: Intake) -> None:
    @settings(SETTINGS, max_examples=10)
    @given(st.lists(envelopes(force="metadata_nonjson"), min_size=5, max_size=10))
    def run(drawn: list[Hostile]) -> None:
        for h in stamped(without_open_bugs(drawn)):
            check_no_trace(intake.post("/v1/invoices", h.value))

    run()


BUG_4 = (
    "BUG-4: the 403 for a CUIT the caller may not use puts the raw `cuit` in its detail "
    "(/v1/invoices) or reason (/v1/batches): any string is echoed, and a lone surrogate "
    "turns the 403 into a 500"
)


@pytest.mark.parametrize("cuit", ["not-a-cuit-" + "x" * 50, "2011111111\ud800"])
@pytest.mark.parametrize("path", ["/v1/invoices", "/v1/batches"])
def test_bug4_a_refused_cuit_is_never_echoed(intake: Intake, cuit: str, path: str) -> None:
    env = example("factura_b")
    env["cuit"] = cuit
    body = env if path == "/v1/invoices" else {"batch": "bug4", "jobs": [env]}
    resp = intake.post(path, body)
    assert resp.status_code in (403, 422), resp.text[:300]
    assert cuit not in resp.text
    assert json.dumps(cuit)[1:-1] not in resp.text


BUG_5 = (
    "BUG-5: an unknown key named '', 'zz[0]', 'function-x' or holding a lone surrogate "
    "vanishes from its refusal's path (worker.errors._is_union_tag, pydantic's key error): at "
    "the top level the path is '', the marker of a job that is not an object"
)


@pytest.mark.parametrize("key", ["", "zz[0]", "function-x", "\ud800"])
def test_bug5_an_unknown_key_is_named_by_its_path(key: str) -> None:
    env = example("factura_b")
    env[key] = 1
    assert "" not in [e.path for e in refusal(env)]
    env = example("factura_b")
    env["invoice"]["cliente"][key] = 1
    path = path_text(("invoice", "cliente", key))
    if key == "\ud800":  # not a key JSON can send on as UTF-8: refused, by its path
        assert [e.path for e in refusal(env)] == [path]
    else:  # passes through, listed by its path
        assert validate_envelope(env).unchecked_fields == [path]


# Unknown keys of API blocks: passed through (listed) unless they misspell a known field of
# their block (difflib, cutoff 0.85) or are credentials, at any depth.
CLIENTE = ("invoice", "cliente")
ITEM = ("invoice", "comprobante", "detalle", 1)
PRODUCTO = (*ITEM, "producto")
TRIBUTO = ("invoice", "comprobante", "tributos", 0)
ASOCIADO = ("invoice", "comprobante", "comprobantes_asociados", 0)
RG = ("invoice", "comprobante", "rg_especiales")


@pytest.mark.parametrize(
    ("name", "where", "key", "field"),
    [
        ("factura_b", CLIENTE, "razon_socail", "razon_social"),
        ("factura_b", CLIENTE, "documento_nr", "documento_nro"),
        ("factura_b", ("invoice",), "client", "cliente"),
        ("factura_b", ("invoice", "comprobante"), "external-reference", "external_reference"),
        ("factura_b", ("invoice", "comprobante"), "detalle ", "detalle"),
        ("factura_b", ITEM, "cantidadd", "cantidad"),
        ("factura_b", PRODUCTO, "precio_unitario_sin_ivaa", "precio_unitario_sin_iva"),
        ("factura_a", TRIBUTO, "regimenn", "regimen"),
        ("nota_credito_b", ASOCIADO, "comprobante_fech", "comprobante_fecha"),
        ("nota_credito_fce_a", (*RG, "datos", 0), "valr", "valor"),
    ],
)
def test_a_misspelt_field_is_refused_at_its_path_with_a_hint(
    name: str, where: tuple[str | int, ...], key: str, field: str
) -> None:
    env = example(name)
    get(env, where)[key] = 1
    assert refusal(env) == [FieldError(path_text((*where, key)), hint(field))]


@pytest.mark.parametrize(
    ("name", "where", "key"),
    [
        ("factura_b", CLIENTE, "Total"),
        ("factura_b", CLIENTE, "apiKey"),  # not a credential's name: names are exact
        ("factura_b", ("invoice",), "numero_factura"),
        ("factura_b", ITEM, "incluir_lista_precios_venta"),
        ("factura_b", PRODUCTO, "zz.dotted"),
        ("factura_a", TRIBUTO, "codigo_afip"),
        ("nota_credito_b", ASOCIADO, "CUIT"),
        ("nota_credito_fce_a", RG, "extra"),
    ],
)
def test_an_unknown_field_passes_through_and_is_listed(
    queue: InvoiceQueue, name: str, where: tuple[str | int, ...], key: str
) -> None:
    env = example(name, f"PASS-{secrets.token_hex(4)}")
    get(env, where)[key] = {"any": ["json", 1]}
    path = path_text((*where, key))
    job = validate_envelope(env)
    assert job.unchecked_fields == [path]
    assert get(job.invoice_body(), (*where[1:], key)) == {"any": ["json", 1]}
    report = queue.submit_many([env])
    assert [i for i, _ in report.accepted] == [0]


@pytest.mark.parametrize(
    ("name", "where"),
    [("factura_b", CLIENTE), ("factura_b", PRODUCTO), ("factura_a", TRIBUTO), ("factura_b", ())],
)
@pytest.mark.parametrize("credential", ["apikey", "apitoken", "usertoken"])
def test_credentials_are_refused_at_any_depth(
    name: str, where: tuple[str | int, ...], credential: str
) -> None:
    env = example(name)
    secret = "sk_" + secrets.token_hex(12)
    get(env, where)[credential] = secret
    errors = refusal(env)
    assert path_text((*where, credential)) in [e.path for e in errors]
    assert not any(secret in str(e) for e in errors)


BUG_6 = (
    "BUG-6: JobEnvelope._metadata takes repr() of the metadata: a Python object nested deeper "
    "than the recursion limit raises RecursionError instead of InvalidJob, and submit_many "
    "stops there (the jobs after it are never looked at)"
)


def test_bug6_deeply_nested_metadata_is_refused_not_a_crash(queue: InvoiceQueue) -> None:
    deep: Any = []
    for _ in range(5_000):
        deep = [deep]
    env = example("factura_b", "BUG6")
    env["metadata"] = {"deep": deep}
    report = queue.submit_many([env, example("factura_c", "BUG6-OK")])
    assert [i for i, _ in report.refused] == [0]
    assert [i for i, _ in report.accepted] == [1]


BUG_7 = (
    "BUG-7: cantidad and cotizacion have no upper bound, and expected_total rounds in the "
    "default 28-digit decimal context: a cantidad of 1e22 (x 24793.39) raises "
    "decimal.InvalidOperation, a cotizacion of '1e999999999' decimal.Overflow; submit_many "
    "crashes (the whole batch) and the intake answers 500 (the whole /v1/batches request)"
)


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("factura_b", ("invoice", "comprobante", "detalle", 0, "cantidad"), 1e22),
        ("factura_b", ("invoice", "comprobante", "detalle", 0, "cantidad"), "1e999999999"),
        ("factura_dolares", ("invoice", "comprobante", "cotizacion"), "1e999999999"),
    ],
)
def test_bug7_astronomic_amounts_are_refused_not_a_crash(
    intake: Intake, queue: InvoiceQueue, name: str, path: tuple[str | int, ...], value: Any
) -> None:
    env = example(name, f"BUG7-{secrets.token_hex(4)}")
    holder = get(env, path[:-1])
    holder[path[-1]] = value
    resp = intake.post("/v1/batches", {"batch": "bug7", "jobs": [env]})
    assert resp.status_code == 200, resp.text[:300]
    report = queue.submit_many([env, example("factura_c", "BUG7-OK")])
    assert [i for i, _ in report.refused] == [0]


BUG_8 = (
    "BUG-8: EXTERNAL_REFERENCE_RE and EMAIL_RE end in `$` and are used with re.match, which "
    "matches before a final newline: external_reference 'ORD-1\\n' (a key with a newline) "
    "and email 'a@b.example\\n' are accepted (use re.fullmatch or \\Z)"
)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("invoice", "comprobante", "external_reference"), "ORD-1\n"),
        (("invoice", "cliente", "email"), "a@b.example\n"),
    ],
)
def test_bug8_a_trailing_newline_is_refused(path: tuple[str, ...], value: str) -> None:
    env = example("factura_b")
    holder = get(env, path[:-1])
    holder[path[-1]] = value
    assert ".".join(path) in [e.path for e in refusal(env)]


BUG_9 = (
    "BUG-9: `fex` (type E) is a free dict that is not checked like metadata: a lone "
    "surrogate in one of its strings (JSON '\\ud800') or nesting deeper than ~255 levels "
    "passes validation, then pack_envelope's model_dump_json raises "
    "PydanticSerializationError: submit_many crashes (whole batch), the intake answers 500"
)


def _deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"d": value}
    return value


@pytest.mark.parametrize("fex_value", ["FOB\ud800", _deep_dict(300)], ids=["surrogate", "deep"])
def test_bug9_fex_that_is_not_plain_json_is_refused_not_a_crash(
    intake: Intake, queue: InvoiceQueue, fex_value: Any
) -> None:
    env = example("factura_e", f"BUG9-{secrets.token_hex(4)}")
    env["invoice"]["comprobante"]["fex"]["incoterms"] = fex_value
    resp = intake.post("/v1/batches", {"batch": "bug9", "jobs": [env]})
    assert resp.status_code == 200, resp.text[:300]
    (result,) = resp.json()["results"]
    assert result["status"] == "refused"
    assert [e["path"] for e in result["errors"]] == ["invoice.comprobante.fex"]
    report = queue.submit_many([env])
    assert [i for i, _ in report.refused] == [0]


# --- BUG-10, BUG-11: found by the pass-through rules, fixed ------------------------------


# BUG-10: a field an API block does not know passed through unchecked, but its value was
# not checked as plain JSON as fex and metadata are: a lone surrogate or nesting deeper than
# pydantic serializes passed validate_envelope, then pack_envelope raised
# PydanticSerializationError (submit_many crashed, the whole batch); NaN was sent as null.


@pytest.mark.parametrize(
    "value", ["a\ud800", _deep_dict(300), math.nan], ids=["surrogate", "deep", "nan"]
)
def test_bug10_an_unknown_field_that_is_not_plain_json_is_refused(
    queue: InvoiceQueue, value: Any
) -> None:
    env = example("factura_b", f"BUG10-{secrets.token_hex(4)}")
    env["invoice"]["cliente"]["zz"] = value
    report = queue.submit_many([env, example("factura_c", f"BUG10-OK-{secrets.token_hex(4)}")])
    assert [i for i, _ in report.accepted] == [1]
    ((index, errors),) = report.refused
    assert index == 0
    assert [e.path for e in errors] == ["invoice.cliente.zz"]


# BUG-11: worker.invoice.passthrough.unknown_fields read a dict where a list of blocks belongs
# (detalle, tributos, comprobantes_asociados...) as the list's item 0: a misspelt or credential
# key in it was refused at `invoice.comprobante.detalle[0].<key>`, a path not in the input.


@pytest.mark.parametrize("key", ["cantidadd", "apikey"])
def test_bug11_a_refusal_under_a_dict_for_a_list_names_a_real_path(key: str) -> None:
    env = example("factura_b")
    env["invoice"]["comprobante"]["detalle"] = {key: 1}
    for e in refusal(env):
        assert e.path in ("invoice.comprobante.detalle", f"invoice.comprobante.detalle.{key}")
