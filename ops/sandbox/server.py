"""Serving the sandbox (`run`) and driving it from tests and benchmarks (`SandboxProcess`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ops.sandbox.app import API_PREFIX, create_app
from ops.sandbox.config import DEFAULT_TENANTS_FILE, SandboxConfig
from ops.sandbox.engine import Sandbox
from worker.errors import TfqError

_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def _install_uvloop() -> None:
    try:
        import uvloop  # optional speed-up, not a declared dependency
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(config: SandboxConfig, sandbox: Sandbox) -> None:
    runner = web.AppRunner(
        create_app(sandbox),
        handler_cancellation=False,  # a disconnecting client never cancels a commit
        access_log=None,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=2048, reuse_address=True)
    await site.start()
    print(f"sandbox listening on http://{config.host}:{config.port}{API_PREFIX}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(config: SandboxConfig) -> None:
    """Serve the sandbox until SIGINT/SIGTERM (blocking)."""
    sandbox = Sandbox(config)
    _install_uvloop()
    asyncio.run(_serve(config, sandbox))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class SandboxError(TfqError, RuntimeError):
    """The sandbox process did not start, or a control call failed."""


class SandboxProcess:
    """A sandbox in a child process (`python -m ops.sandbox`), for tests, benchmarks and demos.

    Use as a context manager; `url` is the base, `api_url` the API base
    (`.../app/api/v2/`). The control helpers talk to the `/_sandbox/*` routes.

    Unlike the command line (10), the per-account limit is off unless `account_max_rps`
    asks for it: tests and benchmarks that fire calls faster than a worker paces them
    opt in where the limit is under test.
    """

    def __init__(
        self,
        tenants_file: Path | str = DEFAULT_TENANTS_FILE,
        gap_seconds: float = 60.0,
        block_seconds: float = 120.0,
        port: int | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        *,
        dialect: str = "classic",
        account_max_rps: float = 0.0,
        host: str = "127.0.0.1",
        start_timeout_seconds: float = 10.0,
    ):
        self.tenants_file = Path(tenants_file)
        self.gap_seconds = gap_seconds
        self.block_seconds = block_seconds
        self.dialect = dialect
        self.account_max_rps = account_max_rps
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.extra_args = list(extra_args or [])
        self.env = env
        self.start_timeout_seconds = start_timeout_seconds
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.last_output = ""  # what the process printed, kept after stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ops.sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--tenants",
            str(self.tenants_file),
            "--gap",
            str(self.gap_seconds),
            "--block",
            str(self.block_seconds),
            "--dialect",
            self.dialect,
            "--account-max-rps",
            str(self.account_max_rps),
            *self.extra_args,
        ]

    def start(self) -> SandboxProcess:
        if self.proc is not None:
            return self
        env = dict(os.environ if self.env is None else self.env)
        paths = [str(_REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=_REPO_ROOT
        )
        deadline = time.monotonic() + self.start_timeout_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.output()
                self.stop()
                raise SandboxError(f"sandbox exited with {self.proc.returncode}: {output}")
            try:
                self._request("GET", "/_sandbox/health", timeout=0.5)
                return self
            except (OSError, SandboxError):
                time.sleep(0.05)
        output = self.output()
        self.stop()
        raise SandboxError(f"sandbox not healthy after {self.start_timeout_seconds}s: {output}")

    def output(self) -> str:
        """What the process printed so far (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        text: str = self._log.read().decode(errors="replace")
        return text

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None and proc is not None:
            self.last_output = self.output()
            self._log.close()
            self._log = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- control ---------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, data: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> Any:
        body = None if data is None else json.dumps(_jsonable(data)).encode()
        req = urllib.request.Request(
            self.url + path, data=body, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise SandboxError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode()}") from None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/_sandbox/health")
        return result

    def ledger(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/_sandbox/ledger")
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/_sandbox/faults")
        return result

    def set_faults(self, **fields: Any) -> dict[str, Any]:
        """Merge fault fields (see `Faults.merge`); returns the faults now in force."""
        result: dict[str, Any] = self._request("POST", "/_sandbox/faults", fields)
        return result

    def reset(self) -> None:
        self._request("POST", "/_sandbox/reset", {})

    def set_config(
        self,
        gap_seconds: float | None = None,
        block_seconds: float | None = None,
        dialect: str | None = None,
        pdf_link_seconds: float | None = None,
        account_max_rps: float | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if gap_seconds is not None:
            data["gap_seconds"] = gap_seconds
        if block_seconds is not None:
            data["block_seconds"] = block_seconds
        if dialect is not None:
            data["dialect"] = dialect
        if pdf_link_seconds is not None:
            data["pdf_link_seconds"] = pdf_link_seconds
        if account_max_rps is not None:
            data["account_max_rps"] = account_max_rps
        result: dict[str, Any] = self._request("POST", "/_sandbox/config", data)
        return result
