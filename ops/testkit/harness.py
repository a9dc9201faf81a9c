"""Real worker processes for tests, benchmarks, chaos runs and the demo.

    env = worker_env(redis_url, sandbox.api_url, tenants_file, prefix=unique_prefix())
    with WorkerProcess(env, concurrency=16) as w:
        ...
        w.kill()       # SIGKILL, as a crash would
        w.start()      # and back

Each run uses its own key prefix (and so its own Celery queue), so runs never see each
other's jobs on a shared Redis.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import uvicorn


def unique_prefix(label: str = "t") -> str:
    return f"tfq-{label}-{secrets.token_hex(4)}:"


def data_dir_for(prefix: str) -> Path:
    """Where a test queue's archive and PDFs go: one directory per key prefix."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in prefix)
    return Path(tempfile.gettempdir()) / "tfq-test-data" / name


def worker_env(
    redis_url: str,
    api_url: str,
    tenants_file: Path | str,
    *,
    prefix: str,
    gap_seconds: float = 0.0,
    **extra: str | float | int,
) -> dict[str, str]:
    """The environment of a worker process: TFQ_* settings on top of ours."""
    env = dict(os.environ)
    env.update(
        {
            "TFQ_REDIS_URL": redis_url,
            "TFQ_API_URL": api_url,
            "TFQ_TENANTS_FILE": str(tenants_file),
            "TFQ_KEY_PREFIX": prefix,
            "TFQ_CUIT_GAP_SECONDS": str(gap_seconds),
            "TFQ_API_TIMEOUT_SECONDS": "3",
            "TFQ_API_CONNECT_TIMEOUT_SECONDS": "2",
            "TFQ_LEASE_SECONDS": "6",
            # Several workers share this machine: no fixed metrics port unless asked.
            "TFQ_METRICS_PORT": "0",
            # Each queue its own archive and PDFs (a SQLite file and a directory).
            "TFQ_DATA_DIR": str(data_dir_for(prefix)),
        }
    )
    env.update({f"TFQ_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def from_tree(tree: Path | str, code: str) -> list[str]:
    """`python -c` arguments that run `code` with another checkout's packages: the
    editable install's finder would import this one's, so it is taken out first."""
    prelude = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]"
        f"; sys.path.insert(0, {str(tree)!r})\n"
    )
    return ["-c", prelude + code]


class WorkerProcess:
    """`tfq worker` as a child process (its own dispatcher included unless told not to)."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        concurrency: int = 16,
        dispatcher: bool = True,
        log_path: Path | str | None = None,
        loglevel: str = "WARNING",
        tree: Path | str | None = None,
    ):
        """`tree`: run the worker code of another checkout (before/after comparisons)."""
        self.env = env
        self.tree = Path(tree) if tree else None
        self.concurrency = concurrency
        self.dispatcher = dispatcher
        self.log_path = Path(log_path) if log_path else None
        self.loglevel = loglevel
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> WorkerProcess:
        if self.tree is None:
            entry = ["-m", "producers.cli"]
        else:
            # Another checkout's code: the editable install's finder would import this one's.
            entry = from_tree(
                self.tree, "sys.argv[0] = 'tfq'\nfrom producers.cli import main\nmain()"
            )
        cmd = [
            sys.executable, *entry, "worker",
            "--concurrency", str(self.concurrency),
            "--dispatcher" if self.dispatcher else "--no-dispatcher",
            "--loglevel", self.loglevel,
        ]  # fmt: skip
        if self.log_path:
            self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker (no warm shutdown, no acks)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate()` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """An ASGI app under uvicorn in a thread on a free port; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
