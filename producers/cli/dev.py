"""The commands that run tfq against its own test kit: `tfq sandbox` and `tfq demo`.

The only module of worker/ and producers/ that imports `ops` (a ruff rule keeps it so):
the product never depends on its tools.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from producers.cli.common import console as terminal_console

if TYPE_CHECKING:
    from rich.console import Console

    from producers.cli.render import Table
    from producers.client import InvoiceQueue
    from worker.settings import Settings

DEMO_BATCH = "demo"
ARCHIVE_WAIT_SECONDS = 30.0  # how long the demo waits for the keeper to archive and keep PDFs
DEMO_GAP_MARGIN_SECONDS = 0.5  # the worker keeps its gap a little above the API's, as it should


def sandbox(ctx: typer.Context) -> None:
    """Run the fake TusFacturas API v2 (see `tfq sandbox --help` for its flags)."""
    from ops.sandbox.config import build_parser, config_from_args
    from ops.sandbox.server import run

    parser = build_parser()
    parser.prog = "tfq sandbox"
    run(config_from_args(parser.parse_args(ctx.args)))


def demo_jobs(today: date, extra: int) -> list[dict[str, Any]]:
    """The examples, with `extra` copies of `factura_b` (PDV 679) right after it.

    Same CUIT, PDV and tipo next to each other in the lane: they go out in
    `facturacion/lotes` calls of up to 20. Without callback URLs: the examples' point at
    a shop that does not exist, and the demo talks to nothing outside this machine.
    """
    from ops.testkit.examples import load_examples

    jobs: list[dict[str, Any]] = []
    for name, envelope in load_examples(today).items():
        envelope.pop("callback_url", None)
        jobs.append(envelope)
        if name == "factura_b":
            for i in range(extra):
                copy = json.loads(json.dumps(envelope))
                copy["invoice"]["comprobante"]["external_reference"] = f"ORD-{2001 + i}"
                jobs.append(copy)
    return jobs


def demo(
    gap: Annotated[
        float, typer.Option(min=0.5, help="The sandbox's per-CUIT gap in seconds (AFIP's: 60).")
    ] = 2.0,
    extra: Annotated[
        int,
        typer.Option(min=0, max=200, help="Extra Factura B jobs (PDV 679), to show lotes."),
    ] = 20,
    timeout: Annotated[
        float, typer.Option(min=5, help="Give up when the batch is not done after this (s).")
    ] = 60.0,
) -> None:
    """Issue the example invoices end to end, with no configuration, then stop everything.

    Uses TFQ_REDIS_URL or a local Redis (a private redis-server when none answers),
    starts the sandbox and a worker under a fresh key prefix, queues the examples as a
    batch, shows its progress and each invoice's result, checks the sandbox's ledger
    (every job issued once, 0 rule violations), and stops what it started, also on
    Ctrl-C. Exit 0 only when all of that holds.
    """

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(143)  # unwinds like Ctrl-C, so everything started is stopped

    previous = signal.signal(signal.SIGTERM, terminate)
    console = terminal_console(False)
    stopped: list[str] = []
    try:
        code = _run_demo(console, gap, extra, timeout, stopped)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped:
        typer.echo(f"stopped {', '.join(stopped)}")
    raise typer.Exit(code)


def _run_demo(
    console: Console | None, gap: float, extra: int, timeout: float, stopped: list[str]
) -> int:
    from ops.sandbox.server import SandboxError, SandboxProcess
    from ops.testkit.examples import EXAMPLES_DIR
    from ops.testkit.harness import WorkerProcess, unique_prefix, worker_env
    from producers.cli.render import redis_where, show
    from producers.cli.watch import watch_batch
    from producers.client import InvoiceQueue
    from worker.invoice.rules import argentina_today
    from worker.settings import Settings, get_settings
    from worker.store.admin import forget_prefix
    from worker.store.errors import StoreError
    from worker.store.jobs import JobStatus

    tenants_file = EXAMPLES_DIR / "tenants.toml"
    worker_gap = gap + DEMO_GAP_MARGIN_SECONDS
    with ExitStack() as stack:
        try:
            url = _demo_redis(stack, stopped)
            prefix = unique_prefix("demo")
            sandbox = stack.enter_context(
                SandboxProcess(tenants_file, gap_seconds=gap, block_seconds=60)
            )
            stack.callback(stopped.append, "the sandbox")
            # The demo's archive (SQLite) and PDFs, afresh each run: the sandbox numbers
            # from 1 again, and an archive refuses a number issued twice.
            data_dir = (get_settings().data_dir / "demo").resolve()
            shutil.rmtree(data_dir, ignore_errors=True)
            settings = Settings(
                redis_url=url,
                key_prefix=prefix,
                cuit_gap_seconds=worker_gap,
                data_dir=data_dir,
                archive_url=None,
                pdf_dir=None,
            )
            queue = InvoiceQueue(settings=settings)

            def forget_demo_keys() -> None:
                """Leave a shared Redis as it was (best effort: it may be gone)."""
                with contextlib.suppress(StoreError):
                    forget_prefix(queue.store)

            stack.callback(forget_demo_keys)
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tfq-demo-")))
            env = worker_env(
                url,
                sandbox.api_url,
                tenants_file,
                prefix=prefix,
                gap_seconds=worker_gap,
                data_dir=str(data_dir),
            )
            for own_setting in ("TFQ_ARCHIVE_URL", "TFQ_PDF_DIR"):
                env.pop(own_setting, None)  # the demo's archive, not one set for production
            worker = stack.enter_context(
                WorkerProcess(env, concurrency=4, log_path=log_dir / "worker.log")
            )
            stack.callback(stopped.append, "the worker")
            typer.echo(
                f"tfq demo: Redis {redis_where(url)} (key prefix {prefix}), sandbox "
                f"{sandbox.api_url} (gap {gap:g} s), 1 worker (gap {worker_gap:g} s)"
            )

            jobs = demo_jobs(argentina_today(), extra)
            report = queue.submit_many(jobs, batch=DEMO_BATCH)
            typer.echo(
                f"queued {len(report.accepted)} jobs as batch {DEMO_BATCH} "
                f"({len(report.duplicates)} duplicates, {len(report.refused)} refused)"
            )
            for index, errors in report.refused:
                for err in errors:
                    typer.echo(f"  job {index + 1}: {err}", err=True)

            def worker_log() -> str:
                log = (log_dir / "worker.log").read_text(errors="replace").splitlines()
                return "\n".join(["the worker's last log lines:", *log[-15:]])

            def worker_alive() -> None:
                if not worker.alive:
                    raise RuntimeError(f"the worker exited; {worker_log()}")

            try:
                watch_batch(
                    queue,
                    DEMO_BATCH,
                    console=console,
                    out=sys.stdout,
                    interval_seconds=0.25 if console is not None else 1.0,
                    timeout_seconds=timeout,
                    check=worker_alive,
                )
            except TimeoutError as exc:
                raise TimeoutError(f"{exc} ({timeout:g} s); {worker_log()}") from None
            results = [queue.status(job_id) or {} for _, job_id in report.accepted]
            show(results_table(results), console, sys.stdout)
            refs = {str(r["external_reference"]) for r in results}
            summary = ledger_summary(sandbox.ledger(), refs)
            for line in ledger_lines(summary):
                typer.echo(line)
            ids = [job_id for _, job_id in report.accepted]
            for line in archive_lines(queue, settings, ids, ARCHIVE_WAIT_SECONDS):
                typer.echo(line)
        except (SandboxError, TimeoutError, RuntimeError, OSError, StoreError) as exc:
            typer.echo(f"error: demo failed: {exc}", err=True)
            return 1
    issued = sum(1 for r in results if r.get("status") == JobStatus.ISSUED)
    ok = (
        not report.refused
        and issued == len(jobs)
        and summary["issued"] == len(jobs)
        and not summary["issued_twice"]
        and summary["violations"] == 0
    )
    verdict = "every invoice issued exactly once" if ok else "NOT all issued exactly once"
    typer.echo(
        f"{issued} of {len(jobs)} jobs issued; {verdict}; {summary['violations']} violations"
    )
    return 0 if ok else 1


# What the demo suggests running to look into its archive (a fixed query, for sqlite3).
LOOK_QUERY = "select external_reference, numero, cae, pdf_sha256 from archived_jobs"


def archive_lines(
    queue: InvoiceQueue, settings: Settings, job_ids: list[str], wait_seconds: float
) -> list[str]:
    """Where the demo's archive and PDFs are, once the keeper has them (bounded wait), and
    how to look at them."""
    from worker.archive import db

    archive = queue.archive

    def kept() -> int:
        rows = [archive.get(job_id) for job_id in job_ids]
        return sum(1 for row in rows if row is not None and row.pdf_sha256)

    deadline = time.monotonic() + wait_seconds
    with contextlib.suppress(Exception):  # the file may not exist until the first write
        while kept() < len(job_ids) and time.monotonic() < deadline:
            time.sleep(0.2)
    count = 0
    with contextlib.suppress(Exception):
        count = kept()
    where = db.safe_url(settings.archive_database_url)
    database = settings.archive_database_url.removeprefix("sqlite:///")
    first = job_ids[0] if job_ids else "JOB"
    env = f"TFQ_DATA_DIR={settings.data_dir}"
    return [
        f"archive: {where}: {count} of {len(job_ids)} jobs archived with their PDF",
        f"PDFs: {settings.pdf_store_url}",
        "look at them:",
        f"  {env} tfq status {first}",
        f"  {env} tfq invoices pdf {first} -o invoice.pdf",
        f"  sqlite3 {database} '{LOOK_QUERY}'",
    ]


def _demo_redis(stack: ExitStack, stopped: list[str]) -> str:
    """TFQ_REDIS_URL (or the default) when it answers, else a private redis-server."""

    from ops.testkit import localredis
    from worker.settings import get_settings

    url = get_settings().redis_url
    if localredis.reachable(url):
        return url
    private, pid = localredis.start_private()
    typer.echo(f"no Redis at {url}: started a private redis-server at {private}")

    def stop_private() -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        stopped.append("the private Redis")

    stack.callback(stop_private)
    return private


def results_table(results: list[dict[str, Any]]) -> Table:
    """Each demo job's outcome, one row per job."""
    from producers.cli.render import Table, invoice_number

    table = Table(["external_reference", "status", "tipo", "numero", "CAE", "errors"])
    for res in results:
        table.rows.append(
            [
                str(res["external_reference"]),
                str(res["status"]),
                str(res["tipo"]),
                invoice_number(res.get("punto_venta"), res.get("numero")),
                res["cae"] or ("test mode" if res.get("test_mode") else "-"),
                "; ".join(str(e) for e in res.get("errors") or []) or "-",
            ]
        )
    return table


def ledger_summary(ledger: dict[str, Any], refs: set[str]) -> dict[str, Any]:
    """The sandbox's ledger, for our jobs: issued once each? any rule broken?"""
    issued = [i for i in ledger.get("issued", []) if i.get("external_reference") in refs]
    per_ref: dict[str, int] = {}
    for item in issued:
        per_ref[item["external_reference"]] = per_ref.get(item["external_reference"], 0) + 1
    calls: dict[str, int] = {}
    for call in ledger.get("calls", []):
        calls[call["endpoint"]] = calls.get(call["endpoint"], 0) + 1
    return {
        "issued": len(issued),
        "issued_twice": sorted(ref for ref, n in per_ref.items() if n > 1),
        "not_issued": sorted(refs - per_ref.keys()),
        "violations": len(ledger.get("violations", [])),
        "violation_rules": sorted({v.get("rule", "?") for v in ledger.get("violations", [])}),
        "calls": calls,
    }


def ledger_lines(summary: dict[str, Any]) -> list[str]:
    calls = summary["calls"]
    invoicing = {k: v for k, v in calls.items() if k.startswith("facturacion/") and v}
    by_endpoint = ", ".join(f"{n} {endpoint}" for endpoint, n in sorted(invoicing.items()))
    lines = [
        f"sandbox ledger: {summary['issued']} invoices issued, {summary['violations']} violations"
        + (f" ({', '.join(summary['violation_rules'])})" if summary["violations"] else ""),
        f"  API calls: {sum(calls.values())} in all ({by_endpoint or 'none'})",
    ]
    if summary["issued_twice"]:
        lines.append(f"  issued more than once: {', '.join(summary['issued_twice'])}")
    if summary["not_issued"]:
        lines.append(f"  not issued: {', '.join(summary['not_issued'])}")
    return lines
