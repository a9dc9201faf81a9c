"""Running tfq's processes: a Celery worker with its dispatcher, or a dispatcher alone.

The composition root (arq's `run_worker`): `tfq worker` and `tfq dispatcher` only parse
their options and call `run_worker` / `run_dispatcher`. Run as `python -m worker.main`,
this module is the callback worker that `run_worker` starts beside the send worker.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from typing import Literal, get_args

from celery import signals
from prometheus_client import start_http_server

from worker.celery_app import CALLBACK_QUEUE, SEND_QUEUE, make_dispatcher, runtime
from worker.celery_app import app as celery_app
from worker.logs import configure_logging
from worker.settings import get_settings

Queues = Literal["all", "send", "callbacks"]
QUEUES: tuple[Queues, ...] = get_args(Queues)
CALLBACK_STOP_SECONDS = 30  # how long the callback worker gets to finish on shutdown


def setup_logging() -> None:
    """Logging as TFQ_LOG_FORMAT and TFQ_LOG_LEVEL say."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)


def run_worker(
    *,
    concurrency: int | None = None,
    dispatcher: bool = True,
    loglevel: str = "INFO",
    queues: Queues = "all",
    callback_concurrency: int = 8,
) -> None:
    """Run a Celery worker (thread pool, for many slow API calls) until it is stopped.

    `queues`: "send", "callbacks", or "all": sends here and callbacks in a child process
    with its own pool of `callback_concurrency` threads, so a slow receiver never holds up
    invoicing. `concurrency` defaults to TFQ_WORKER_CONCURRENCY. With `dispatcher`, a
    dispatcher thread and a keeper thread (the archive and the PDFs) start once
    the worker is ready (several of each at once are safe).
    """
    if queues not in QUEUES:
        raise ValueError(f"queues must be one of {', '.join(QUEUES)}, not {queues!r}")
    setup_logging()
    # Fails fast without a good tenants file; its secrets join the log filter on loading.
    # Celery owns SIGHUP here (a restart, when detached): the watcher notices a new file.
    runtime.tenants.current  # noqa: B018
    runtime.tenants.watch()
    runtime.check_redis_durability()
    if runtime.settings.metrics_port:
        # This worker's API calls and held sends; the queue's state is the intake's.
        start_http_server(runtime.settings.metrics_port)
    if dispatcher:

        def start_dispatcher(**_: object) -> None:
            make_dispatcher().start_thread()
            runtime.keeper_loop().start_thread()

        signals.worker_ready.connect(start_dispatcher, weak=False)
    child = _callback_worker(callback_concurrency, loglevel) if queues == "all" else None
    served = CALLBACK_QUEUE if queues == "callbacks" else SEND_QUEUE
    try:
        celery_app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency or runtime.settings.worker_concurrency}",
                f"--queues={served}",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
                f"--hostname=tfq-{queues}-{os.getpid()}@%h",
            ]
        )
    finally:
        if child is not None:
            child.terminate()
            child.wait(CALLBACK_STOP_SECONDS)


def _callback_worker(concurrency: int, loglevel: str) -> subprocess.Popen[bytes]:
    """A child callback worker (this module run as a script) that dies with its parent."""

    def die_with_parent() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)

    env = {**os.environ, "TFQ_METRICS_PORT": "0"}  # the parent serves this host's metrics
    cmd = [
        sys.executable, "-m", "worker.main",
        "--concurrency", str(concurrency), "--loglevel", loglevel,
    ]  # fmt: skip
    # Our own interpreter and fixed arguments.
    return subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent)  # noqa: S603, PLW1509


def run_dispatcher() -> None:
    """Run a dispatcher on its own until SIGTERM or Ctrl-C: it claims ready lanes and
    publishes their send tasks. SIGHUP re-reads the tenants file."""
    setup_logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if runtime.settings.tenants_file is not None:  # the PDF keeper and health probes use it
        runtime.tenants.reload_on_sighup()
        runtime.tenants.watch()
    runtime.keeper_loop().start_thread()
    make_dispatcher().run(stop)


def _run_callback_worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m worker.main", description="A callback worker (run_worker starts it)."
    )
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    run_worker(
        concurrency=args.concurrency, dispatcher=False, loglevel=args.loglevel, queues="callbacks"
    )


if __name__ == "__main__":
    _run_callback_worker(sys.argv[1:])
