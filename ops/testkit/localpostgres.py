"""Make sure a PostgreSQL is reachable for the archive's tests; start a private one from
the installed binaries when none is (installing them with apt-get on a fresh machine).

    python -m ops.testkit.localpostgres ensure  # prints the URL (TFQ_TEST_POSTGRES_URL or private)
    python -m ops.testkit.localpostgres stop    # stops the private server `ensure` started

PostgreSQL refuses to run as root, so as root the private server runs as the `postgres`
user that Debian's package creates. The private server trusts local connections and
lives under `.tfq/` until stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

from ops.testkit.localredis import STATE_DIR, free_port, service_main
from worker.errors import ConfigError

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATA_FILE = STATE_DIR / "postgres.datadir"


def reachable(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


def bindir() -> Path:
    """Where pg_ctl and initdb are; installs PostgreSQL when it is missing and allowed."""
    for attempt in range(2):
        pg_config = shutil.which("pg_config")
        if pg_config:
            found = Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
            if (found / "pg_ctl").exists():
                return found
        if attempt == 0 and shutil.which("apt-get") and os.geteuid() == 0:
            print("PostgreSQL not found; installing it with apt-get", file=sys.stderr)
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True)
    raise ConfigError("no PostgreSQL reachable and none to start: install postgresql")


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start_private(port: int | None = None) -> tuple[str, Path]:
    """initdb and start a server on a free port; returns (url, data directory)."""
    port = port or free_port()
    data = (STATE_DIR / f"postgres-{port}").resolve()
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        _as_server_user([str(bindir() / "initdb"), "-D", str(data), "-U", "postgres",
                         "--auth=trust", "--no-sync"]),
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return start(data, port), data


def start(data: Path, port: int) -> str:
    """Start the server of an existing data directory on `port`; returns its URL."""
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user([str(bindir() / "pg_ctl"), "-D", str(data), "-o", options,
                         "-l", str(data / "server.log"), "-w", "start"]),
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def stop_server(data: Path, mode: str = "fast") -> None:
    """Stop the server and keep its data directory: `mode` is pg_ctl's (`immediate` is a
    crash: no checkpoint, recovery at the next start)."""
    with contextlib.suppress(subprocess.CalledProcessError, ConfigError):
        subprocess.run(
            _as_server_user([str(bindir() / "pg_ctl"), "-D", str(data), "-m", mode, "stop"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )


def stop_private(data: Path) -> None:
    """Stop the server and remove its data directory."""
    stop_server(data)
    shutil.rmtree(data, ignore_errors=True)


def ensure(url: str | None = None) -> str:
    url = url or os.environ.get("TFQ_TEST_POSTGRES_URL") or DEFAULT_URL
    if reachable(url):
        return url
    private, data = start_private()
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    DATA_FILE.write_text(str(data))
    print(f"no PostgreSQL at {url}; started a private one at {private}", file=sys.stderr)
    return private


def stop() -> None:
    if DATA_FILE.exists():
        stop_private(Path(DATA_FILE.read_text().strip()))
        DATA_FILE.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    service_main("ops.testkit.localpostgres", ensure, stop, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
