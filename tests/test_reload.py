"""Onboarding without restarts: running workers and the intake re-read a changed tenants
file; a bad file keeps the old one in force and says why."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY

from ops.sandbox.server import SandboxProcess, free_port
from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import WorkerProcess, serving, unique_prefix, wait_until, worker_env
from producers.client import InvoiceQueue
from producers.http.app import create_app
from producers.http.auth import token_sha256
from tests.conftest import MONO_CUIT, RI_CUIT, TENANTS_FILE
from worker.logs import SECRET_FILTER
from worker.settings import Settings
from worker.store.jobs import JobStatus
from worker.tenants import Tenants, TenantsFileError
from worker.tenants_live import LiveTenants

# The sandbox's own credentials.
EXAMPLE = Tenants.load(TENANTS_FILE)
RI_679 = EXAMPLE.pdv(RI_CUIT, 679).credentials()
MONO_2 = EXAMPLE.pdv(MONO_CUIT, 2).credentials()
OLD_TOKEN = "reload-old-token-0123"
NEW_TOKEN = "reload-new-token-4567"


def tenants_toml(
    ri: dict[str, str] | None = None, *, tokens: tuple[str, ...] = (OLD_TOKEN,), pdv: int = 679
) -> str:
    """A tenants file: the Monotributista always, the RI (test PDV) with `ri`'s credentials."""
    text = ""
    for cuit, point, creds in ((MONO_CUIT, 2, MONO_2), (RI_CUIT, pdv, ri)):
        if creds is None:
            continue
        text += f'[[tenant]]\ncuit = "{cuit}"\n[[tenant.pdv]]\npunto_venta = {point}\n'
        text += "".join(f'{k} = "{v}"\n' for k, v in creds.items()) + "test = true\n"
    for i, token in enumerate(tokens):
        text += f'[[client]]\nname = "c{i}"\ntoken_sha256 = "{token_sha256(token)}"\n'
        text += f'cuits = ["{RI_CUIT}", "{MONO_CUIT}"]\n'
    return text


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def replace_file(path: Path, text: str) -> None:
    """What an operator's deploy does: a new file renamed over the old one."""
    tmp = path.with_suffix(".new")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- the holder ---------------------------------------------------------------------------


def test_a_changed_file_is_taken_and_its_secrets_are_filtered_first(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(tenants_toml(None))
    live = LiveTenants(path)
    assert live.tenant(RI_CUIT) is None
    assert live.reload() is None  # unchanged: nothing to do
    seen: list[Any] = []
    live.subscribe(seen.append)
    rotated = {**RI_679, "apitoken": "rotated-apitoken-for-ri"}
    replace_file(path, tenants_toml(rotated))
    assert live.reload() is True
    assert live.pdv(RI_CUIT, 679).apitoken.get_secret_value() == "rotated-apitoken-for-ri"
    assert seen == [live.current]
    assert "rotated-apitoken-for-ri" in SECRET_FILTER.secrets
    assert sample("tfq_tenants_file_valid") == 1
    # The secrets of a file no longer in force stay filtered (late lines of old calls).
    replace_file(path, tenants_toml(RI_679))
    assert live.reload() is True
    assert "rotated-apitoken-for-ri" in SECRET_FILTER.secrets


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[[tenant]\ncuit = ", "not valid TOML"),
        (tenants_toml(RI_679, pdv=0), "tenant[1].pdv[0].punto_venta"),
        ("", "no [[tenant]] and no [[client]]"),
    ],
)
def test_a_bad_file_keeps_the_old_one_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, reason: str
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(tenants_toml(RI_679))
    live = LiveTenants(path)
    before = live.current
    refused = sample("tfq_tenants_reloads_total", outcome="invalid") or 0
    replace_file(path, text)
    with caplog.at_level(logging.ERROR, logger="tfq.tenants"):
        assert live.reload() is False
        assert live.reload() is None  # said once, not every second
    assert live.current is before
    assert sample("tfq_tenants_file_valid") == 0
    assert sample("tfq_tenants_reloads_total", outcome="invalid") == refused + 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert str(path) in line
    assert reason in line
    assert RI_679["apitoken"] not in line
    replace_file(path, tenants_toml(RI_679))
    assert live.reload() is True
    assert sample("tfq_tenants_file_valid") == 1


def test_the_first_load_of_a_bad_file_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text("not = [toml")
    with pytest.raises(TenantsFileError):
        LiveTenants(path).current  # noqa: B018


def test_the_watcher_notices_a_new_file_and_a_reload_request(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(tenants_toml(None))
    live = LiveTenants(path)
    first = live.current
    stop = threading.Event()
    live.watch(poll_seconds=0.05, stop=stop)
    try:
        replace_file(path, tenants_toml(RI_679))
        assert wait_until(lambda: live.tenant(RI_CUIT) is not None, 5)
        second = live.current
        live.request_reload()  # what SIGHUP does: re-read even if unchanged
        assert wait_until(lambda: live.current is not second, 5)
        assert first is not second
    finally:
        stop.set()


# --- the intake ---------------------------------------------------------------------------


@pytest.fixture
def queue(redis_url: str) -> Iterator[InvoiceQueue]:
    prefix = unique_prefix("reload")
    q = InvoiceQueue(settings=Settings(redis_url=redis_url, key_prefix=prefix))
    yield q
    keys = list(q.redis.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        q.redis.unlink(*keys)


def test_the_intake_takes_added_tokens_and_drops_removed_ones(
    tmp_path: Path, queue: InvoiceQueue
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(tenants_toml(RI_679, tokens=(OLD_TOKEN,)))
    live = LiveTenants(path)
    app = create_app(queue.settings, queue=queue, tenants=live)

    def status(token: str) -> int:
        auth = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{url}/v1/invoices/no-such-job", headers=auth, timeout=5).status_code

    with serving(app) as url:
        assert (status(OLD_TOKEN), status(NEW_TOKEN)) == (404, 401)
        replace_file(path, tenants_toml(RI_679, tokens=(NEW_TOKEN,)))
        assert live.reload() is True
        assert (status(OLD_TOKEN), status(NEW_TOKEN)) == (401, 404)
        metrics = requests.get(f"{url}/metrics", timeout=5).text
        assert "tfq_tenants_file_valid 1.0" in metrics
        assert 'tfq_tenants_reloads_total{outcome="ok"}' in metrics


# --- SIGHUP ---------------------------------------------------------------------------------


@pytest.fixture
def hup_process(queue: InvoiceQueue, tmp_path: Path) -> Iterator[Any]:
    """Starts `tfq ARGS` with a tenants file of its own; stops it after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
        path, log_path = tmp_path / "tenants.toml", tmp_path / "tfq.log"
        path.write_text(tenants_toml(RI_679, tokens=(OLD_TOKEN,)))
        env = worker_env(
            queue.settings.redis_url, "http://127.0.0.1:9", path, prefix=queue.settings.key_prefix
        )
        with log_path.open("ab") as out:
            cmd = [sys.executable, "-m", "producers.cli", *args]
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        return procs[-1], path, log_path

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(20)


def test_sighup_makes_a_dispatcher_reread_the_file(hup_process: Any) -> None:
    proc, path, log_path = hup_process("dispatcher")
    assert wait_until(lambda: "dispatcher running" in log_path.read_text(), 30)
    proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: f"tenants file {path} reloaded" in log_path.read_text(), 10)
    path.write_text("[[tenant]\n")  # in place, as under compose
    assert wait_until(lambda: f"tenants file {path} refused" in log_path.read_text(), 10)
    assert proc.poll() is None


def test_sighup_and_a_new_file_reach_a_running_intake(hup_process: Any) -> None:
    port = free_port()
    proc, path, log_path = hup_process("serve", "--port", str(port))
    url = f"http://127.0.0.1:{port}"

    def status(token: str) -> int:
        auth = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{url}/v1/invoices/no-such-job", headers=auth, timeout=5).status_code

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=1).ok
        except requests.ConnectionError:
            return False

    assert wait_until(up, 30, 0.1), log_path.read_text()
    proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: f"tenants file {path} reloaded" in log_path.read_text(), 10)
    replace_file(path, tenants_toml(RI_679, tokens=(NEW_TOKEN,)))
    assert wait_until(lambda: status(NEW_TOKEN) == 404, 10, 0.1)
    assert status(OLD_TOKEN) == 401
    assert proc.poll() is None


# --- a running worker ---------------------------------------------------------------------


def test_a_running_worker_takes_a_new_cuit_rotated_credentials_and_refuses_a_bad_file(
    sandbox: SandboxProcess, queue: InvoiceQueue, tmp_path: Path
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(tenants_toml(None))  # the RI is not a tenant yet
    log_path = tmp_path / "worker.log"
    metrics_port = free_port()
    env = worker_env(
        queue.settings.redis_url, sandbox.api_url, path, prefix=queue.settings.key_prefix,
        metrics_port=metrics_port,
    )  # fmt: skip
    jobs = iter(factura_b_jobs(RI_CUIT, 5, pdv=679, tag="RLD"))

    def issue_next(timeout: float = 30) -> str:
        job_id = queue.submit(next(jobs)).job_id
        assert wait_until(lambda: state(job_id) == JobStatus.ISSUED, timeout, 0.1), (
            state(job_id),
            queue.store.lane(RI_CUIT).paused,
            log_path.read_text()[-3000:],
        )
        return job_id

    def state(job_id: str) -> str | None:
        found = queue.status(job_id)
        return None if found is None else found["status"]

    def metric(line: str) -> bool:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        return line in requests.get(url, timeout=5).text

    with WorkerProcess(env, log_path=log_path, loglevel="INFO"):
        # A job for a CUIT the file does not know waits: its lane pauses.
        waiting = queue.submit(next(jobs)).job_id
        assert wait_until(lambda: queue.store.lane(RI_CUIT).paused is not None, 30, 0.1)
        assert "in the tenants file" in (queue.store.lane(RI_CUIT).paused or "")
        # The CUIT joins: the lane resumes by itself and the job is issued.
        replace_file(path, tenants_toml(RI_679))
        assert wait_until(lambda: state(waiting) == JobStatus.ISSUED, 30, 0.1), (
            queue.store.lane(RI_CUIT).paused,
            log_path.read_text()[-3000:],
        )

        # A broken file: refused and reported; the old tenants stay in force.
        replace_file(path, "[[tenant]\n")
        assert wait_until(lambda: metric("tfq_tenants_file_valid 0.0"), 10, 0.2)
        assert wait_until(lambda: "tenants file" in log_path.read_text(), 5)
        assert f"tenants file {path} refused" in log_path.read_text()
        issue_next()

        # Rotated credentials are used by the next call: the sandbox refuses a retired one.
        retired = {**RI_679, "apitoken": "retired-apitoken-of-ri"}
        replace_file(path, tenants_toml(retired))
        assert wait_until(lambda: metric("tfq_tenants_file_valid 1.0"), 10, 0.2)
        refused = queue.submit(next(jobs)).job_id
        assert wait_until(lambda: queue.store.lane(RI_CUIT).paused is not None, 30, 0.1)
        assert state(refused) != JobStatus.ISSUED
        replace_file(path, tenants_toml(RI_679))
        assert wait_until(lambda: metric('tfq_tenants_reloads_total{outcome="ok"} 3.0'), 10, 0.2)
        queue.store.resume(RI_CUIT)  # an operator's `tfq resume` after a refusal
        assert wait_until(lambda: state(refused) == JobStatus.ISSUED, 30, 0.1)
        issue_next()
    log = log_path.read_text()
    assert "retired-apitoken-of-ri" not in log
    assert RI_679["apitoken"] not in log
