"""No secret (apikey, apitoken, usertoken, callback signing secret) ever leaves the tenants
file: not into Redis, a log line, a result or a callback body, even under faults."""

from __future__ import annotations

import contextlib
import copy
import json
import zlib
from pathlib import Path
from typing import Any

import redis

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import load_example
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from ops.testkit.tenantgen import REAL_PDV, TEST_PDV, make_cuits, write_tenants
from ops.testkit.webhook_receiver import running_receiver
from producers.client import InvoiceQueue
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.tenants import Tenants


def _texts(client: redis.Redis, key: bytes) -> list[bytes]:
    """Every value stored under `key`, and decompressed forms of compressed ones."""
    kind = client.type(key)
    values: list[bytes] = []
    if kind == b"string":
        values = [client.get(key) or b""]
    elif kind == b"hash":
        for field, value in client.hgetall(key).items():
            values += [field, value]
    elif kind == b"list":
        values = client.lrange(key, 0, -1)
    elif kind == b"set":
        values = list(client.smembers(key))
    elif kind == b"zset":
        values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    out = [key, *values]
    for value in values:
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(value))
    return out


def _leaks(haystack: bytes | str, secrets: list[str]) -> list[str]:
    text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
    return [s for s in secrets if s in text]


def test_no_secret_anywhere_after_a_faulty_batch(redis_url: str, tmp_path: Path) -> None:
    cuits = make_cuits(3, prefix="27")
    tenants_path = write_tenants(tmp_path / "tenants.toml", cuits)
    tenants = Tenants.load(tenants_path)
    secrets = tenants.all_secrets()
    assert all(len(s) >= 10 for s in secrets)
    prefix = unique_prefix("sec")
    log_path = tmp_path / "worker.log"
    with (
        SandboxProcess(tenants_path, gap_seconds=0.2, block_seconds=5) as sandbox,
        running_receiver(tenants) as receiver,
    ):
        sandbox.set_faults(
            drop_after_commit={"rate": 0.2},
            error_5xx={"rate": 0.1},
            reject_ref_pattern="-002$",
        )
        env = worker_env(
            redis_url, sandbox.api_url, tenants_path, prefix=prefix, gap_seconds=0.2,
            log_format="json", log_level="DEBUG", callbacks_allow_private=1,
        )  # fmt: skip
        # The receiver listens on 127.0.0.1: private callbacks are allowed here, as for the worker.
        queue = InvoiceQueue(
            redis_url, key_prefix=prefix, settings=Settings(callbacks_allow_private=True)
        )
        base = load_example("factura_b", argentina_today())
        envelopes: list[dict[str, Any]] = []
        for cuit in cuits:
            for i in range(4):
                e = copy.deepcopy(base)
                e["cuit"] = cuit
                e["callback_url"] = receiver.url
                e["invoice"]["comprobante"]["punto_venta"] = REAL_PDV if i % 2 else TEST_PDV
                e["invoice"]["comprobante"]["external_reference"] = f"SEC-{cuit}-{i:03d}"
                envelopes.append(e)
        with WorkerProcess(env, concurrency=8, log_path=log_path, loglevel="DEBUG"):
            report = queue.submit_many(envelopes, batch="secrets")
            ids = [job_id for _, job_id in report.accepted]
            assert len(ids) == len(envelopes)

            def all_final() -> bool:
                return all(
                    (queue.status(i) or {}).get("status") in ("issued", "rejected") for i in ids
                )

            assert wait_until(all_final, 90, 0.2)
            assert wait_until(lambda: len(receiver.received) >= len(ids), 30, 0.2)
        results = [queue.status(i) for i in ids]
        assert {r["status"] for r in results if r} == {"issued", "rejected"}

        leaks: list[str] = []
        client = redis.Redis.from_url(redis_url)
        scanned = 0
        for key in client.scan_iter(count=1000):
            if not (key.startswith(prefix.encode()) or b"celery" in key or b"_kombu" in key):
                continue
            scanned += 1
            for text in _texts(client, key):
                leaks += [f"redis {key!r}: {s[:4]}…" for s in _leaks(text, secrets)]
        assert scanned > len(ids)
        log_text = log_path.read_text()
        assert '"job_id"' in log_text  # the log did talk about jobs, at DEBUG
        leaks += [f"log: {s[:4]}…" for s in _leaks(log_text, secrets)]
        leaks += [f"result: {s[:4]}…" for s in _leaks(json.dumps(results), secrets)]
        for got in receiver.received:
            leaks += [f"callback: {s[:4]}…" for s in _leaks(got["raw"], secrets)]
            leaks += [
                f"callback headers: {s[:4]}…" for s in _leaks(json.dumps(got["headers"]), secrets)
            ]
        assert leaks == []
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.unlink(key)
