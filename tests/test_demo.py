"""`tfq demo` end to end, as a user runs it: a subprocess with no configuration but Redis."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from ops.testkit.examples import load_examples
from ops.testkit.localredis import free_port, reachable

DEMO = [sys.executable, "-m", "producers.cli", "demo"]


def demo_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Our environment without any TFQ_* setting: the demo needs none (Redis aside)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFQ_")}
    env.update({"TFQ_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1", **extra})
    return env


def run_demo(args: list[str], env: dict[str, str], timeout: float = 100) -> tuple[int, str, str]:
    """Run `tfq demo`; past `timeout`, Ctrl-C it (so it stops what it started) and fail."""
    proc = subprocess.Popen(
        [*DEMO, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"tfq demo still running after {timeout} s:\n{out}\n{err}")
    return proc.returncode, out, err


def started(output: str) -> tuple[str, str]:
    """The key prefix and sandbox URL the demo announced."""
    found = re.search(r"key prefix (\S+)\), sandbox (\S+) ", output)
    assert found, output
    return found.group(1), found.group(2)


def port_closed(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) != 0


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (the demo worker's key prefix)."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


def assert_all_stopped(output: str, redis_url: str) -> None:
    prefix, sandbox_url = started(output)
    assert "stopped the worker, the sandbox" in output
    assert port_closed(sandbox_url)
    assert processes_with(f"TFQ_KEY_PREFIX={prefix}") == []
    client = redis.Redis.from_url(redis_url)
    assert list(client.scan_iter(match=f"*{prefix}*")) == []  # also Celery's queue bindings


def test_demo_issues_every_job_exactly_once(redis_url: str, tmp_path: Path) -> None:
    begin = time.monotonic()
    code, out, err = run_demo([], demo_env(redis_url, TFQ_DATA_DIR=str(tmp_path)))
    elapsed = time.monotonic() - begin
    assert code == 0, out + err
    assert "Traceback" not in err

    refs = [e["invoice"]["comprobante"]["external_reference"] for e in load_examples().values()]
    refs += [f"ORD-{2001 + i}" for i in range(20)]
    assert f"queued {len(refs)} jobs as batch demo (0 duplicates, 0 refused)" in out
    for ref in refs:  # one result row per job, each issued
        (row,) = [line for line in out.splitlines() if line.startswith(ref + " ")]
        assert row.split()[1] == "issued", row
    assert re.search(r"ORD-1001 +issued +FACTURA A +00003-00000001 +\d{14}", out)
    assert re.search(r"ORD-1002 +issued +FACTURA B +00679-00000001 +test mode", out)
    assert f"sandbox ledger: {len(refs)} invoices issued, 0 violations" in out
    lotes = re.search(r"(\d+) facturacion/lotes", out)
    assert lotes
    assert int(lotes.group(1)) >= 1  # the 21 Factura B went out in batches
    assert f"{len(refs)} of {len(refs)} jobs issued; every invoice issued exactly once" in out
    # It ends by saying where the archive and the PDFs are, and how to look at them.
    database = tmp_path / "demo" / "archive.sqlite3"
    n = len(refs)
    assert f"archive: sqlite:///{database}: {n} of {n} jobs archived with their PDF" in out
    assert f"PDFs: {tmp_path / 'demo' / 'pdfs'}" in out
    pdfs = list((tmp_path / "demo" / "pdfs").rglob("*.pdf"))
    assert len([p for p in pdfs if not p.name.endswith("-ticket.pdf")]) == n
    assert all(p.read_bytes().startswith(b"%PDF") for p in pdfs)
    assert "tfq invoices pdf" in out
    assert_all_stopped(out, redis_url)
    assert elapsed < 60


def test_demo_stops_everything_on_ctrl_c(redis_url: str) -> None:
    proc = subprocess.Popen(
        [*DEMO, "--gap", "5"],
        env=demo_env(redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("queued "):
            break
    time.sleep(1.0)  # let the worker start sending
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    out = "".join(seen) + rest
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert_all_stopped(out, redis_url)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to start")
def test_demo_starts_and_stops_a_private_redis(tmp_path: Path) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    code, out, err = run_demo(
        ["--gap", "0.5", "--extra", "0"], demo_env(nowhere, TFQ_STATE_DIR=str(tmp_path))
    )
    assert code == 0, out + err
    found = re.search(r"started a private redis-server at (\S+)", out)
    assert found, out
    assert "6 of 6 jobs issued" in out
    assert "stopped the worker, the sandbox, the private Redis" in out
    assert not reachable(found.group(1), 0.5)
