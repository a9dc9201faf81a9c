"""Acknowledged means durable and deliverable (issue 11, item 5).

Durable: an enqueue answers only once Redis has the job on disk (WAITAOF on Redis 7.2+,
else `appendfsync always`, else a warning at start). Deliverable: a `callback_url` that
delivery would refuse is refused at the Python API, with its field path.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from ops.testkit.examples import load_example
from ops.testkit.harness import unique_prefix
from ops.testkit.localredis import free_port
from producers.cli.enqueue import enqueue_file
from producers.client import InvoiceQueue
from producers.http.app import create_app
from worker.errors import InvalidJob
from worker.invoice.rules import argentina_today
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import jobs
from worker.store.durability import (
    NotOnDisk,
    ServerDurability,
    check_waitaof_reply,
    server_durability,
    waitaof_command,
)
from worker.tenants import Tenants
from worker.webhooks import safe_http
from worker.webhooks.safe_http import callback_url_refusal, literal_address

# Every spelling of an address no delivery may reach, and a URL with credentials in it.
UNDELIVERABLE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://[::ffff:127.0.0.1]/",
    "http://[::1]:8080/hook",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://10.0.0.7/hook",
    "http://192.168.1.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
]
NOT_HTTP = ["ftp://8.8.8.8/hook", "https://user:pass@8.8.8.8/hook", "https://user@8.8.8.8/x"]
PUBLIC = "https://8.8.8.8/hook"


def envelope(callback_url: str | None = None, ref: str = "DUR-1") -> dict[str, Any]:
    env = copy.deepcopy(load_example("factura_b", argentina_today()))
    env["invoice"]["comprobante"]["external_reference"] = ref
    if callback_url is not None:
        env["callback_url"] = callback_url
    return env


@pytest.fixture
def queue(redis_url: str) -> Iterator[InvoiceQueue]:
    settings = Settings(redis_url=redis_url, key_prefix=unique_prefix("durable"))
    q = InvoiceQueue(settings=settings, key_prefix=settings.key_prefix)
    yield q
    keys = list(q.redis.scan_iter(match=f"{settings.key_prefix}*", count=1000))
    if keys:
        q.redis.unlink(*keys)
    q.redis.close()


# --- deliverable: the callback URL -------------------------------------------------------------


@pytest.mark.parametrize("url", UNDELIVERABLE + NOT_HTTP)
def test_an_undeliverable_callback_is_refused_with_its_field_path(
    queue: InvoiceQueue, url: str
) -> None:
    with pytest.raises(InvalidJob) as refused:
        queue.submit(envelope(url))
    assert [e.path for e in refused.value.errors] == ["callback_url"], refused.value.errors
    assert refused.value.errors[0].reason
    assert queue.job_id(envelope()["cuit"], "DUR-1") is None  # nothing was queued


def test_submit_many_refuses_each_undeliverable_callback_and_takes_the_others(
    queue: InvoiceQueue,
) -> None:
    urls = [PUBLIC, *UNDELIVERABLE, None, *NOT_HTTP]
    report = queue.submit_many(envelope(u, ref=f"DUR-M{i}") for i, u in enumerate(urls))
    assert [i for i, _ in report.accepted] == [0, len(UNDELIVERABLE) + 1]
    assert len(report.refused) == len(urls) - 2
    for _, errors in report.refused:
        assert [e.path for e in errors] == ["callback_url"]


def test_a_public_address_and_a_name_that_does_not_resolve_are_taken(
    queue: InvoiceQueue,
) -> None:
    """A name that does not resolve now may resolve later (DNS down, a hook not yet
    published): delivery retries for hours, so the intake takes it."""
    assert queue.validate(envelope(PUBLIC)).callback_url is not None
    assert queue.validate(envelope("https://hooks.shop.invalid/tfq")).callback_url is not None


def test_a_name_that_resolves_to_an_internal_address_is_refused() -> None:
    name = socket.gethostname()  # resolves to one of this machine's own addresses
    assert callback_url_refusal(f"http://{name}/hook", allow_private=False)


def test_allow_private_lets_internal_addresses_through(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, callbacks_allow_private=True)
    q = InvoiceQueue(settings=settings)
    for url in UNDELIVERABLE:
        assert q.validate(envelope(url)).callback_url is not None, url
    for url in NOT_HTTP:  # no address makes these deliverable
        with pytest.raises(InvalidJob):
            q.validate(envelope(url))
    q.redis.close()


def test_bulk_intake_resolves_each_host_once(
    queue: InvoiceQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.bulk-once.example":  # Redis' own connections
            return real_getaddrinfo(host, *args, **kwargs)
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.4.4", 443))]

    safe_http.clear_caches()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = "https://hooks.bulk-once.example/tfq"
    report = queue.submit_many(envelope(url, ref=f"DUR-B{i}") for i in range(60))
    assert len(report.accepted) == 60
    assert calls == ["hooks.bulk-once.example"]


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0x0A.0.0.1", "10.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("8.8.8.8", "8.8.8.8"),
        ("hooks.example", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("08.1.1.1", None),  # 8 is no octal digit: a name to getaddrinfo
    ],
)
def test_literal_addresses_in_every_spelling(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == address


# --- durable: WAITAOF, appendfsync and the warnings ---------------------------------------------


@contextmanager
def private_redis(binary: str, tmp_path: Path, *args: str) -> Iterator[redis.Redis]:
    """A redis-server of ours on a free port with AOF in `tmp_path`; its client."""
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(tmp_path), "--maxmemory-policy", "noeviction", *args],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def redis_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], check=False, capture_output=True, text=True)
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out.stdout)
    return tuple(int(n) for n in found.groups()) if found else (0,)


SYSTEM_REDIS = shutil.which("redis-server") or ""
# A Redis with WAITAOF, when this machine has one (e.g. TFQ_TEST_REDIS72_SERVER=/path).
REDIS_72 = next(
    (
        b
        for b in (os.environ.get("TFQ_TEST_REDIS72_SERVER", ""), SYSTEM_REDIS)
        if b and redis_version(b) >= (7, 2)
    ),
    "",
)


def durability(client: redis.Redis, **settings: Any) -> list[str]:
    """The start's warnings, over a fresh pool (the server is asked once per pool)."""
    kwargs = client.connection_pool.connection_kwargs
    runtime = Runtime(Settings(redis_url=f"redis://127.0.0.1:{kwargs['port']}/0", **settings))
    try:
        return runtime.check_redis_durability()
    finally:
        runtime.redis.close()


@pytest.mark.skipif(not SYSTEM_REDIS or REDIS_72 == SYSTEM_REDIS, reason="needs Redis < 7.2")
def test_before_7_2_only_appendfsync_always_is_durable_and_the_start_says_so(
    tmp_path: Path,
) -> None:
    with private_redis(SYSTEM_REDIS, tmp_path, "--appendonly", "yes") as client:
        client.config_set("appendfsync", "everysec")
        warnings = durability(client)
        assert any("no WAITAOF" in w and "appendfsync everysec" in w for w in warnings), warnings
        client.config_set("appendfsync", "always")
        assert durability(client) == []
        assert durability(client, ack_durability="off") == []  # always: on disk anyway
        client.config_set("appendfsync", "no")
        assert any("appendfsync no" in w for w in durability(client))
        client.config_set("appendfsync", "everysec")
        assert any("TFQ_ACK_DURABILITY=off" in w for w in durability(client, ack_durability="off"))
        client.config_set("appendonly", "no")
        assert any("without appendonly" in w for w in durability(client))


@pytest.mark.skipif(not SYSTEM_REDIS or REDIS_72 == SYSTEM_REDIS, reason="needs Redis < 7.2")
def test_before_7_2_an_enqueue_does_not_wait(tmp_path: Path) -> None:
    with private_redis(SYSTEM_REDIS, tmp_path, "--appendonly", "yes") as client:
        port = client.connection_pool.connection_kwargs["port"]
        q = InvoiceQueue(settings=Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
        assert not server_durability(q.redis).waitaof
        assert not q.submit(envelope()).duplicate  # no WAITAOF sent (it would be refused)
        q.redis.close()


def test_a_waitaof_reply_without_the_local_fsync_is_not_an_acknowledgement() -> None:
    assert waitaof_command(2.5) == ("WAITAOF", 1, 0, 2500)
    check_waitaof_reply([1, 0], 1.0)
    for reply in ([0, 0], None, []):
        with pytest.raises(NotOnDisk, match="queued"):
            check_waitaof_reply(reply, 1.0)


@pytest.mark.skipif(not REDIS_72, reason="no redis-server 7.2+ here (TFQ_TEST_REDIS72_SERVER)")
@pytest.mark.parametrize("fsync", ["everysec", "always", "no"])
def test_with_waitaof_an_acknowledged_job_is_on_disk(tmp_path: Path, fsync: str) -> None:
    with private_redis(REDIS_72, tmp_path, "--appendonly", "yes", "--appendfsync", fsync) as client:
        port = client.connection_pool.connection_kwargs["port"]
        q = InvoiceQueue(settings=Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
        assert server_durability(q.redis).waitaof
        assert durability(client) == []
        submitted = q.submit(envelope())
        report = q.submit_many(envelope(ref=f"DUR-W{i}") for i in range(600))
        assert len(report.accepted) == 600
        assert q.status(submitted.job_id) is not None
        q.redis.close()


def test_an_unconfirmed_fsync_fails_the_submit_and_a_retry_returns_the_same_job(
    queue: InvoiceQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store raises NotOnDisk after the job is queued; submitting again is safe."""
    enqueue = queue.store.enqueue

    def unconfirmed(*args: Any, **kwargs: Any) -> Any:
        enqueue(*args, **kwargs)
        check_waitaof_reply([0, 0], 1.0)

    monkeypatch.setattr(queue.store, "enqueue", unconfirmed)
    with pytest.raises(NotOnDisk):
        queue.submit(envelope())
    monkeypatch.undo()
    again = queue.submit(envelope())
    assert again.duplicate


@pytest.mark.skipif(not SYSTEM_REDIS or REDIS_72 == SYSTEM_REDIS, reason="needs Redis < 7.2")
def test_the_intake_warns_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with private_redis(SYSTEM_REDIS, tmp_path, "--appendonly", "yes") as client:
        port = client.connection_pool.connection_kwargs["port"]
        settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0")
        with caplog.at_level(logging.WARNING):
            create_app(settings, tenants=Tenants.from_dict({}))
    assert any("no WAITAOF" in r.getMessage() for r in caplog.records), caplog.records


def test_a_bulk_file_refuses_an_undeliverable_callback_at_its_line(
    queue: InvoiceQueue, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.jsonl"
    lines = [envelope(PUBLIC, ref="DUR-F1"), envelope("http://0x7f.1/", ref="DUR-F2")]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    strict = enqueue_file(queue, path, strict=True)
    assert strict.queued_nothing
    assert [(line, [e.path for e in errors]) for line, errors in strict.refused] == [
        (2, ["callback_url"])
    ]
    report = enqueue_file(queue, path)
    assert [line for line, _ in report.accepted] == [1]
    assert [line for line, _ in report.refused] == [2]


def test_the_wait_runs_in_the_enqueues_own_pipeline(
    queue: InvoiceQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On this Redis (no WAITAOF) a script stands in for it, answering as WAITAOF does: the
    enqueue script and the wait go down one connection, and the reply decides."""
    monkeypatch.setattr(jobs, "server_durability", lambda r: ServerDurability((7, 4), True, "no"))
    monkeypatch.setattr(jobs, "waitaof_command", lambda t: ("EVAL", "return {0, 0}", 0))
    with pytest.raises(NotOnDisk):
        queue.submit(envelope(ref="DUR-P1"))
    first = queue.job_id(envelope()["cuit"], "DUR-P1")
    assert first is not None  # queued, only not confirmed on disk
    monkeypatch.setattr(jobs, "waitaof_command", lambda t: ("EVAL", "return {1, 0}", 0))
    again = queue.submit(envelope(ref="DUR-P1"))
    assert (again.job_id, again.duplicate) == (first, True)
    report = queue.submit_many(envelope(ref=f"DUR-P{i}") for i in range(2, 700))
    assert len(report.accepted) == 698
