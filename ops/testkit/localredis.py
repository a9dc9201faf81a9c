"""Make sure a Redis is reachable; start a private `redis-server` when none is.

    python -m ops.testkit.localredis ensure  # prints the URL (TFQ_REDIS_URL or a private one)
    python -m ops.testkit.localredis stop    # stops the private server `ensure` started, if any

Used by `make test`, `.ci/run` and `tfq demo`. The private server keeps nothing on disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from worker.errors import ConfigError

DEFAULT_URL = "redis://127.0.0.1:6379/0"
STATE_DIR = Path(os.environ.get("TFQ_STATE_DIR", ".tfq"))
PIDFILE = STATE_DIR / "redis.pid"


def reachable(url: str, timeout_seconds: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_seconds)
        return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    # A fresh Debian machine: install it when we are allowed to.
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("redis-server not found; installing it with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True)
        found = shutil.which("redis-server")
        if found:
            return found
    raise ConfigError("no Redis reachable and no redis-server to start: install redis-server")


def start_private(port: int | None = None, appendonly: bool = False) -> tuple[str, int]:
    """Start a daemonized redis-server on a free port; returns (url, pid).

    Each port has its own data directory, so calling this again with the same port and
    `appendonly=True` restarts that server with its data (the chaos runner does).
    """
    port = port or free_port()
    data_dir = (STATE_DIR / f"redis-{port}").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pidfile = data_dir / "redis.pid"
    cmd = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--dir", str(data_dir),
        "--daemonize", "yes",
        "--pidfile", str(pidfile),
        "--logfile", str(data_dir / "redis.log"),
        "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not reachable(url, 0.2) or not pidfile.exists():
        if time.monotonic() > deadline:
            raise ConfigError(f"redis-server did not answer on port {port}")
        time.sleep(0.05)
    # With AOF, wait until the data is loaded before anyone writes.
    client = redis.Redis.from_url(url)
    while client.info("persistence").get("loading"):
        time.sleep(0.05)
    return url, int(pidfile.read_text().strip())


def stop_pid(pid: int, timeout_seconds: float = 10.0) -> None:
    """SIGTERM a redis-server (it flushes its AOF) and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def ensure(url: str | None = None) -> str:
    url = url or os.environ.get("TFQ_REDIS_URL") or DEFAULT_URL
    if reachable(url):
        return url
    private, pid = start_private()
    PIDFILE.parent.mkdir(parents=True, exist_ok=True)
    PIDFILE.write_text(str(pid))
    print(f"no Redis at {url}; started a private one at {private}", file=sys.stderr)
    return private


def stop() -> None:
    if not PIDFILE.exists():
        return
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.kill(int(PIDFILE.read_text().strip()), 15)
    PIDFILE.unlink(missing_ok=True)


def service_main(
    module: str, ensure: Callable[[], str], stop: Callable[[], None], argv: list[str]
) -> None:
    """`python -m MODULE ensure|stop` for a local service: `ensure` prints the URL to use."""
    action = argv[0] if argv else "ensure"
    try:
        if action == "ensure":
            print(ensure())
        elif action == "stop":
            stop()
        else:
            raise SystemExit(f"usage: python -m {module} ensure|stop")
    except ConfigError as exc:
        raise SystemExit(f"{module}: {exc}") from None


def main(argv: list[str]) -> None:
    service_main("ops.testkit.localredis", ensure, stop, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
