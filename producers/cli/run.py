"""The long-running processes: `tfq worker`, `tfq dispatcher` and `tfq serve`.

Each only parses its options: running them is `worker.main`'s and `producers.http`'s.
"""

from __future__ import annotations

from typing import Annotated

import typer


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Parallel API calls (threads); default TFQ_WORKER_CONCURRENCY."),
    ] = None,
    dispatcher: Annotated[
        bool, typer.Option(help="Also run a dispatcher in this process (several are safe).")
    ] = True,
    loglevel: Annotated[str, typer.Option(help="Celery's log level.")] = "INFO",
    queues: Annotated[
        str,
        typer.Option(
            help="send, callbacks, or all: sends here and callbacks in a child process with "
            "its own pool, so a slow receiver never holds up invoicing."
        ),
    ] = "all",
    callback_concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            help="Parallel callback tasks, each a group of deliveries sent ten at a time "
            "(with --queues all).",
        ),
    ] = 8,
) -> None:
    """Run a Celery worker (thread pool, for many slow API calls) and a dispatcher."""
    from worker.main import QUEUES, run_worker

    if queues not in QUEUES:
        raise typer.BadParameter("must be send, callbacks or all", param_hint="--queues")
    run_worker(
        concurrency=concurrency,
        dispatcher=dispatcher,
        loglevel=loglevel,
        queues=queues,
        callback_concurrency=callback_concurrency,
    )


def dispatcher() -> None:
    """Run a dispatcher on its own (claims ready lanes and publishes send tasks)."""
    from worker.main import run_dispatcher

    run_dispatcher()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP intake (POST /v1/invoices, /v1/batches; /metrics, /healthz)."""
    from producers.http.serve import serve as serve_intake

    serve_intake(host, port, workers=workers)
