"""Pacing per TusFacturas account: the tenants file's accounts and limits, the sandbox's 429
per account over real HTTP, and a worker keeping two accounts apart end to end (each
account's pacing key itself is tested with the other lane scripts, in test_lanes.py)."""

from __future__ import annotations

import hashlib
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import redis

from ops.sandbox.server import SandboxProcess
from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import WorkerProcess, unique_prefix, wait_until, worker_env
from ops.testkit.tenantgen import TEST_PDV, make_cuits, write_tenants
from producers.client import InvoiceQueue
from worker.tenants import PACING_MARGIN, Tenants, TenantsFileError
from worker.tusfacturas.client import TusFacturasClient
from worker.tusfacturas.errors import RateLimitedError

CUIT_A = "20111111112"
CUIT_B = "20267565393"


def tenants_from(text: str) -> Tenants:
    return Tenants.from_dict(tomllib.loads(text))


def pdv(punto_venta: int, usertoken: str, account: str | None = None) -> str:
    named = f'account = "{account}"\n' if account else ""
    return (
        f"[[tenant.pdv]]\npunto_venta = {punto_venta}\napikey = 4700{punto_venta}\n"
        f'apitoken = "tok-{usertoken}"\nusertoken = "{usertoken}"\n{named}'
    )


def refused(text: str) -> TenantsFileError:
    with pytest.raises(TenantsFileError) as info:
        tenants_from(text)
    return info.value


# --- the tenants file ---------------------------------------------------------------------


def test_default_account_is_one_per_usertoken_named_by_its_hash() -> None:
    shared, other = "ut-shared-secret-0001", "ut-other-secret-0002"
    tenants = tenants_from(
        f'[[tenant]]\ncuit = "{CUIT_A}"\n{pdv(1, shared)}{pdv(2, shared)}'
        f'[[tenant]]\ncuit = "{CUIT_B}"\n{pdv(1, other)}'
    )
    expected = "u-" + hashlib.sha256(shared.encode()).hexdigest()[:16]
    assert tenants.pacing(CUIT_A, 1).account == expected
    assert tenants.pacing(CUIT_A, 2).account == expected  # same usertoken, same account
    assert tenants.pacing(CUIT_B, 1).account != expected
    assert tenants.pacing(CUIT_A, 1).max_rps is None
    assert tenants.pacing(CUIT_A, 1).interval_seconds(10) == pytest.approx(0.1 * PACING_MARGIN)
    for secret in tenants.all_secrets():
        assert secret not in tenants.pacing(CUIT_A, 1).account


def test_a_pdvs_account_overrides_its_tenants_and_account_tables_set_limits() -> None:
    tenants = tenants_from(
        f'[[tenant]]\ncuit = "{CUIT_A}"\naccount = "shop"\n'
        f"{pdv(1, 'ut-1')}{pdv(2, 'ut-2', account='other')}"
        '[[account]]\nname = "shop"\nmax_rps = 2\n'
        '[[account]]\nname = "shop"\nmax_rps = 2.0\n'  # the same limit twice is no conflict
    )
    shop, other = tenants.pacing(CUIT_A, 1), tenants.pacing(CUIT_A, 2)
    assert (shop.account, shop.max_rps) == ("shop", 2.0)
    assert (other.account, other.max_rps) == ("other", None)
    assert shop.interval_seconds(10) == pytest.approx(0.5 * PACING_MARGIN)
    assert other.interval_seconds(10) == pytest.approx(0.1 * PACING_MARGIN)


def test_an_account_given_two_limits_is_refused_naming_the_field() -> None:
    exc = refused(
        f'[[tenant]]\ncuit = "{CUIT_A}"\naccount = "shop"\n{pdv(1, "ut-1")}'
        '[[account]]\nname = "shop"\nmax_rps = 2\n[[account]]\nname = "shop"\nmax_rps = 3\n'
    )
    assert [e.path for e in exc.errors] == ["account[1].max_rps"]
    assert "two limits (2 and 3)" in str(exc)


def test_an_account_named_like_a_credential_is_refused_without_showing_it() -> None:
    secret = "ut-very-secret-usertoken"
    exc = refused(f'[[tenant]]\ncuit = "{CUIT_A}"\n{pdv(1, secret, account=secret)}')
    assert [e.path for e in exc.errors] == ["tenant[0].pdv[0].account"]
    assert secret not in str(exc)


@pytest.mark.parametrize("name", ["a b", "-lead", "x" * 65, "ñandú", "a:b", ""])
def test_account_names_are_safe_for_keys_logs_and_labels(name: str) -> None:
    exc = refused(f'[[tenant]]\ncuit = "{CUIT_A}"\naccount = "{name}"\n{pdv(1, "ut-1")}')
    assert [e.path for e in exc.errors] == ["tenant[0].account"]


def test_an_account_limit_must_be_positive() -> None:
    exc = refused('[[account]]\nname = "shop"\nmax_rps = 0\n')
    assert [e.path for e in exc.errors] == ["account[0].max_rps"]


# --- the sandbox's 429 per account ------------------------------------------------------------


@pytest.fixture(scope="module")
def two_accounts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two CUITs on the account "slow" (2 calls/s); two on accounts of their own (the
    default: one per usertoken)."""
    cuits = make_cuits(4, prefix="27")
    path = write_tenants(
        tmp_path_factory.mktemp("accounts") / "tenants.toml",
        cuits,
        accounts={cuits[0]: "slow", cuits[1]: "slow"},
        account_max_rps={"slow": 2},
    )
    return path, cuits


def test_the_sandbox_refuses_an_accounts_calls_beyond_its_limit(
    two_accounts: tuple[Path, list[str]],
) -> None:
    path, cuits = two_accounts
    tenants = Tenants.load(path)
    with SandboxProcess(path, gap_seconds=0, account_max_rps=10) as sb:
        client = TusFacturasClient(sb.api_url, timeout_seconds=5)
        outcomes: dict[str, list[str]] = {"slow": [], "own": []}
        for _ in range(4):
            for label, cuit in (("slow", cuits[0]), ("slow", cuits[1]), ("own", cuits[2])):
                try:
                    client.numeracion(tenants.pdv(cuit, TEST_PDV), "FACTURA B")
                    outcomes[label].append("ok")
                except RateLimitedError:
                    outcomes[label].append("429")
        # Both CUITs of "slow" count against its 2 calls/s; the other account is not slowed.
        assert outcomes["slow"].count("ok") == 2
        assert outcomes["own"] == ["ok"] * 4
        ledger = sb.ledger()
        own = tenants.pacing(cuits[2], TEST_PDV).account
        assert ledger["accounts"]["slow"] == {"calls": 2, "too_fast": 6, "max_rps": 2}
        assert ledger["accounts"][own] == {"calls": 4, "too_fast": 0, "max_rps": 10}
        too_fast = [v for v in ledger["violations"] if v["rule"] == "account_rate"]
        assert {v["account"] for v in too_fast} == {"slow"}
        assert len(too_fast) == 6
        text = json.dumps(ledger)
        assert not [s for s in tenants.all_secrets() if s in text]
        time.sleep(1.05)  # the window has passed: the account may call again
        client.numeracion(tenants.pdv(cuits[0], TEST_PDV), "FACTURA B")
        # Off (0) lets every call through, as old tests need.
        sb.set_config(account_max_rps=0)
        for _ in range(5):
            client.numeracion(tenants.pdv(cuits[0], TEST_PDV), "FACTURA B")
        client.close()


# --- a worker keeps the accounts apart, end to end ----------------------------------------------


def _secrets_in_redis(client: redis.Redis, prefix: str, secrets: list[str]) -> list[str]:
    found = []
    for key in client.scan_iter(f"{prefix}*", count=1000):
        parts = [key]
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                parts += [field, value]
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"zset":
            parts += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"set":
            parts += list(client.smembers(key))
        blob = b"\0".join(parts)
        found += [s for s in secrets if s.encode() in blob]
    return found


def test_two_accounts_are_paced_apart_by_a_worker(
    two_accounts: tuple[Path, list[str]], redis_url: str, tmp_path: Path
) -> None:
    path, cuits = two_accounts
    tenants = Tenants.load(path)
    prefix = unique_prefix("acct")
    queue = InvoiceQueue(redis_url, key_prefix=prefix)
    per_cuit = 5
    envelopes = [e for c in cuits for e in factura_b_jobs(c, per_cuit, pdv=TEST_PDV, tag="A")]
    client = redis.Redis.from_url(redis_url)
    # The sandbox allows 10 calls/s to accounts the file gives no limit; the worker keeps
    # them to 5, so jitter between the two clocks cannot read as too fast.
    env = worker_env(redis_url, "", path, prefix=prefix, batch_max=1, api_max_rps=5)
    try:
        with SandboxProcess(path, gap_seconds=0, account_max_rps=10) as sb:
            env["TFQ_API_URL"] = sb.api_url
            report = queue.submit_many(envelopes)
            assert not report.refused, report.refused
            done_at: dict[str, float] = {}

            def final(cuit: str) -> bool:
                if cuit not in done_at:
                    refs = [f"A-{cuit[-4:]}-{TEST_PDV}-{i:03d}" for i in range(per_cuit)]
                    statuses = [queue.status(queue.job_id(cuit, r) or "") for r in refs]
                    if all(s and s["status"] == "issued" for s in statuses):
                        done_at[cuit] = time.monotonic()
                return cuit in done_at

            with WorkerProcess(env, log_path=tmp_path / "worker.log"):
                assert wait_until(lambda: all([final(c) for c in cuits]), 60, interval=0.1)
            ledger = sb.ledger()
        # Each account's pacing key is named by the account, never by a credential.
        assert client.exists(f"{prefix}account:slow")
        own = [tenants.pacing(c, TEST_PDV).account for c in cuits[2:]]
        assert all(name.startswith("u-") for name in own)
        assert client.exists(*[f"{prefix}account:{name}" for name in own]) == 2
        assert _secrets_in_redis(client, prefix, tenants.all_secrets()) == []
    finally:
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.unlink(key)
        client.delete(f"{prefix}send")
    # The accounts of their own finished while "slow" (2 calls/s for two CUITs) still
    # worked: it never held them back.
    slow_done = min(done_at[cuits[0]], done_at[cuits[1]])
    assert max(done_at[cuits[2]], done_at[cuits[3]]) < slow_done
    accounts: dict[str, Any] = ledger["accounts"]
    assert all(accounts[name]["too_fast"] == 0 for name in own)
    # Every call of "slow" (sends and queries) was paced at its limit: 2 calls/s.
    arrivals = sorted(
        c["arrival"]
        for c in ledger["calls"]
        if c["cuit"] in cuits[:2] and c["outcome"] != "account_rate"
    )
    assert len(arrivals) >= 2 * per_cuit
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) <= 2.2
