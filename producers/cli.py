"""The `tfq` command line."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from producers.client import InvoiceQueue
    from producers.ops_views import EnqueueReport

app = typer.Typer(
    name="tfq",
    help="Exactly-once, per-CUIT paced AFIP/ARCA invoicing through the TusFacturas API v2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%d/%m/%Y").date()
    except ValueError:
        raise typer.BadParameter("expected dd/mm/aaaa") from None


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def sandbox(ctx: typer.Context) -> None:
    """Run the fake TusFacturas API v2 (see `tfq sandbox --help` for its flags)."""
    from ops.sandbox.__main__ import build_parser, config_from_args
    from ops.sandbox.server import run

    parser = build_parser()
    parser.prog = "tfq sandbox"
    run(config_from_args(parser.parse_args(ctx.args)))


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="JSONL (one envelope per line) or CSV file.")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto (by extension), jsonl or csv.")
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    today: Annotated[
        str | None,
        typer.Option(help="Check dates as if today were this day (dd/mm/aaaa, Argentina)."),
    ] = None,
) -> None:
    """Check every job of a bulk file without queuing anything; exit 1 if any is invalid."""
    from producers.bulkfile import validate_file

    if fmt not in ("auto", "jsonl", "csv"):
        raise typer.BadParameter("must be auto, jsonl or csv", param_hint="--format")
    code = validate_file(file, fmt=fmt, today=_parse_day(today), as_json=as_json)  # type: ignore[arg-type]
    raise typer.Exit(code)


def _logging() -> None:
    from worker.logs import configure_logging
    from worker.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)


@app.command()
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
        int, typer.Option(min=1, help="Parallel callback deliveries (with --queues all).")
    ] = 8,
) -> None:
    """Run a Celery worker (thread pool, for many slow API calls) and a dispatcher."""

    from celery import signals
    from prometheus_client import start_http_server

    from worker.celery_app import CALLBACK_QUEUE, SEND_QUEUE, make_dispatcher, runtime
    from worker.celery_app import app as celery_app
    from worker.logs import SECRET_FILTER

    _logging()
    SECRET_FILTER.add(runtime.tenants.all_secrets())  # also fails fast without a tenants file
    runtime.check_redis_durability()
    if runtime.settings.metrics_port:
        # This worker's API calls and held sends; the queue's state is the intake's.
        start_http_server(runtime.settings.metrics_port)
    if queues not in ("all", "send", "callbacks"):
        raise typer.BadParameter("must be send, callbacks or all", param_hint="--queues")
    if dispatcher:

        def start_dispatcher(**_: object) -> None:
            make_dispatcher().start_thread()

        signals.worker_ready.connect(start_dispatcher, weak=False)
    child = _callback_worker(callback_concurrency, loglevel) if queues == "all" else None
    served = {"all": SEND_QUEUE, "send": SEND_QUEUE, "callbacks": CALLBACK_QUEUE}[queues]
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
            child.wait(30)


def _callback_worker(concurrency: int, loglevel: str) -> subprocess.Popen[bytes]:
    """A child `tfq worker --queues callbacks` that dies with its parent (Linux)."""

    def die_with_parent() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    env = {**os.environ, "TFQ_METRICS_PORT": "0"}  # the parent serves this host's metrics
    cmd = [
        sys.executable, "-m", "producers.cli", "worker", "--queues", "callbacks",
        "--no-dispatcher", "--concurrency", str(concurrency), "--loglevel", loglevel,
    ]  # fmt: skip
    # Our own interpreter and fixed arguments.
    return subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent)  # noqa: S603, PLW1509


@app.command("dispatcher")
def dispatcher_command() -> None:
    """Run a dispatcher on its own (claims ready lanes and publishes send tasks)."""
    import threading

    from worker.celery_app import make_dispatcher

    _logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    make_dispatcher().run(stop)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP intake (POST /v1/invoices, /v1/batches; /metrics, /healthz)."""
    from producers.http import serve as serve_intake

    serve_intake(host, port, workers=workers)


# --- operations: enqueue, status, batch, lanes, failed ----------------------------------
#
# Read commands print one JSON document with --json; otherwise plain text on a pipe and
# rich tables and progress bars on a terminal. Errors name what is wrong and never show a
# traceback: exit 2 for a usage error, 1 for something invalid or failed.

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (for scripts), no markup.")
]
LimitOption = Annotated[int, typer.Option(min=1, help="Show at most this many rows.")]


def _console(as_json: bool) -> Console | None:
    """Rich output only on a terminal, never with --json."""
    if as_json or not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console()


def _print_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, default=str))


def _fail(message: str, as_json: bool, code: int = 1) -> NoReturn:
    if as_json:
        _print_json({"error": message})
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _redis_errors(as_json: bool) -> Iterator[None]:
    import redis

    from producers.ops_views import redis_where
    from worker.settings import get_settings

    try:
        yield
    except redis.RedisError as exc:
        where = redis_where(get_settings().redis_url)
        _fail(f"Redis at {where} (TFQ_REDIS_URL): {exc}", as_json)


def _queue() -> InvoiceQueue:
    from producers.client import InvoiceQueue

    return InvoiceQueue()


def _check_cuit(value: str | None) -> str | None:
    from worker.invoice.cuit import valid_cuit

    try:
        return None if value is None else valid_cuit(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


CuitArgument = Annotated[
    str, typer.Argument(help="The issuing CUIT (11 digits).", callback=_check_cuit)
]


@app.command()
def enqueue(
    file: Annotated[
        Path, typer.Argument(help="JSONL (one envelope per line) or CSV file; - reads stdin.")
    ],
    batch: Annotated[
        str | None, typer.Option(help="Name the jobs' batch, to follow it with `tfq batch`.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto (by extension), jsonl or csv.")
    ] = "auto",
    strict: Annotated[
        bool, typer.Option(help="Queue nothing unless every job of the file is valid.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate and queue every job of a bulk file; exit 1 if any job was refused.

    A refused job (LINE: PATH: REASON) never stops the others unless --strict. A job whose
    (cuit, external_reference) is already queued or issued is a duplicate: nothing new is
    queued for it.
    """
    from producers.bulkfile import FileFormatError
    from producers.ops_views import BATCH_NAME_RE, enqueue_file, regular_file

    if fmt not in ("auto", "jsonl", "csv"):
        raise typer.BadParameter("must be auto, jsonl or csv", param_hint="--format")
    if batch is not None and not BATCH_NAME_RE.match(batch):
        raise typer.BadParameter("1 to 200 letters, digits or _ . : @ / -", param_hint="--batch")
    path = None if str(file) == "-" else file
    console = _console(as_json)
    queue = _queue()
    with _redis_errors(as_json):
        queue.redis.ping()  # fail before reading the file when Redis is not there
        try:
            with regular_file(path) as source:
                progress = None if console is None else _line_progress(console, source)
                with progress or _nothing() as advance:
                    report: EnqueueReport = enqueue_file(
                        queue,
                        source,
                        fmt=fmt,  # type: ignore[arg-type]
                        batch=batch or "",
                        strict=strict,
                        progress=advance,
                    )
        except (OSError, FileFormatError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            _fail(f"cannot read {file}: {reason}", as_json, 2)
    if as_json:
        _print_json(report.doc())
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(report.exit_code)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


@contextmanager
def _line_progress(console: Console, path: Path) -> Iterator[Callable[[int], None]]:
    """A transient progress bar over the file's lines."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from producers.ops_views import count_lines

    with Progress(
        TextColumn("enqueue {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(path.name, total=count_lines(path))
        yield lambda line: bar.update(task, completed=line)


@app.command()
def status(
    job: Annotated[str | None, typer.Argument(help="The job id.")] = None,
    cuit: Annotated[
        str | None,
        typer.Option(help="Look the job up by its key: the issuing CUIT...", callback=_check_cuit),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", "--external-reference", help="...and its external_reference."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A job's status and result: CAE, number, the API's messages; exit 1 if not found."""
    from producers.ops_views import status_doc, status_lines

    if job is not None and (cuit is not None or ref is not None):
        raise typer.BadParameter("give a job id or --cuit and --ref, not both", param_hint="JOB")
    if job is None and (cuit is None or ref is None):
        missing = "--ref" if cuit is not None else "--cuit" if ref is not None else "JOB"
        raise typer.BadParameter("give a job id, or --cuit and --ref", param_hint=missing)
    queue = _queue()
    with _redis_errors(as_json):
        if job is None:
            assert cuit is not None
            assert ref is not None
            job = queue.job_id(cuit, ref)
            if job is None:
                _fail(f"no job with cuit {cuit} and external_reference {ref}", as_json)
        doc = status_doc(queue, job)
    if doc is None:
        _fail(f"no job {job} (or its record expired after its retention)", as_json)
    if as_json:
        _print_json(doc)
        return
    for line in status_lines(doc):
        typer.echo(line)


@app.command("batch")
def batch_command(
    name: Annotated[str, typer.Argument(help="The batch name given to `tfq enqueue --batch`.")],
    watch: Annotated[
        bool, typer.Option(help="Redraw until the batch is done (or Ctrl-C).")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between redraws with --watch.")
    ] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """A batch's counts by status, progress and ETA (from lane depths, gaps and batching).

    With --watch and --json, waits until the batch is done and prints its last state.
    """
    from producers.ops_views import batch_lines, watch_batch

    queue = _queue()
    console = _console(as_json)
    with _redis_errors(as_json):
        if watch:
            try:
                doc = watch_batch(
                    queue,
                    name,
                    console=console,
                    out=None if as_json else sys.stdout,
                    interval_seconds=interval,
                )
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
        else:
            doc = queue.batch(name)
    if doc is None:
        _fail(f"no batch {name}", as_json)
    if as_json:
        _print_json(doc)
    elif not watch or console is not None:
        for line in batch_lines(doc):
            typer.echo(line)


lanes_app = typer.Typer(
    help="Per-CUIT lanes: list them (deepest first), pause or resume one.",
    no_args_is_help=False,
)
app.add_typer(lanes_app, name="lanes")


@lanes_app.callback(invoke_without_command=True)
def lanes(ctx: typer.Context, limit: LimitOption = 50, as_json: JsonOption = False) -> None:
    """Per CUIT: queued jobs, state, next slot, paused reason, lease; deepest first."""
    from producers.ops_views import lanes_doc, lanes_summary, lanes_table, show

    if ctx.invoked_subcommand is not None:
        return
    with _redis_errors(as_json):
        doc = lanes_doc(_queue().store, limit=limit)
    if as_json:
        _print_json(doc)
        return
    console = _console(as_json)
    if doc["rows"]:
        show(lanes_table(doc), console, sys.stdout)
    for line in lanes_summary(doc):
        typer.echo(line)


@lanes_app.command("pause")
def lanes_pause(
    cuit: CuitArgument,
    reason: Annotated[
        str, typer.Option(help="Why (shown by `tfq lanes` and on the lane's queued jobs).")
    ] = "paused by an operator",
    as_json: JsonOption = False,
) -> None:
    """Stop sending for one CUIT until resumed; its jobs wait in order, nothing is dropped."""
    from producers.ops_views import jobs_count

    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise typer.BadParameter("must be 1 to 500 characters", param_hint="--reason")
    store = _queue().store
    with _redis_errors(as_json):
        store.pause(cuit, reason)
        depth = store.depth(cuit)
        sending = bool(store.lane_state(cuit).get("token"))
    if as_json:
        _print_json({"cuit": cuit, "paused": True, "reason": reason, "depth": depth})
        return
    typer.echo(f"paused lane {cuit} ({jobs_count(depth)} waiting): {reason}")
    if sending:
        typer.echo("  a call already in flight for it finishes first")
    typer.echo(f"  resume it with: tfq lanes resume {cuit}")


@lanes_app.command("resume")
def lanes_resume(cuit: CuitArgument, as_json: JsonOption = False) -> None:
    """Resume a paused lane: its jobs go out again, in order, from its next slot."""
    from producers.ops_views import jobs_count

    store = _queue().store
    with _redis_errors(as_json):
        was_paused = store.resume(cuit)
        depth = store.depth(cuit)
    if as_json:
        _print_json({"cuit": cuit, "was_paused": was_paused, "depth": depth})
        return
    if was_paused:
        typer.echo(f"resumed lane {cuit} ({jobs_count(depth)} queued)")
    else:
        typer.echo(f"lane {cuit} was not paused ({jobs_count(depth)} queued)")


@app.command()
def failed(limit: LimitOption = 50, as_json: JsonOption = False) -> None:
    """Rejected and unknown jobs with the API's messages, newest first."""
    from producers.ops_views import failed_doc, failed_table, jobs_count, show

    with _redis_errors(as_json):
        doc = failed_doc(_queue().store, limit=limit)
    if as_json:
        _print_json(doc)
        return
    if doc["jobs"]:
        show(failed_table(doc), _console(as_json), sys.stdout)
    more = f", the {doc['shown']} newest shown (--limit)" if doc["shown"] < doc["total"] else ""
    typer.echo(f"{jobs_count(doc['total'])} rejected or unknown{more}")


@app.command()
def doctor(
    tipo: Annotated[
        list[str] | None,
        typer.Option(help="Comprobante tipos whose numeracion to check (repeatable)."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask before the billed numeracion calls.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check each tenant's account without issuing anything: credentials and PDV, the test
    flag, which reading of numeracion it speaks, its not-found wording, clock skew, and
    Redis persistence. Exits 1 when a check fails."""
    from producers.doctor import cost, render, run_doctor
    from worker.runtime import Runtime
    from worker.settings import get_settings

    runtime = Runtime(get_settings())
    tipos = tipo or ["FACTURA B"]
    billed = cost(runtime.tenants, tipos)
    if not yes and not as_json and sys.stdin.isatty():
        typer.confirm(
            f"tfq doctor makes {billed} billed requests (numeracion, one per PDV and tipo; "
            "the newest page bills it) and free queries. Go on?",
            abort=True,
        )
    with _redis_errors(as_json):
        warnings = runtime.check_redis_durability()
    report = run_doctor(runtime.client, runtime.tenants, tipos, warnings)
    if as_json:
        _print_json(report.as_dict())
    else:
        for line in render(report):
            typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)


callbacks_app = typer.Typer(
    help="Callback deliveries that were dead-lettered, and sending them again.",
    no_args_is_help=True,
)
app.add_typer(callbacks_app, name="callbacks")


@callbacks_app.command("failed")
def callbacks_failed(limit: LimitOption = 50, as_json: JsonOption = False) -> None:
    """Dead-lettered callback deliveries, newest first, with the last error."""
    from worker.webhooks.callbacks import Callbacks

    with _redis_errors(as_json):
        dead = Callbacks(_queue().store).dead(limit)
    rows = [
        {k: d.get(k) for k in ("id", "event", "cuit", "url", "attempts", "last_error")}
        for d in dead
    ]
    if as_json:
        _print_json({"deliveries": rows})
        return
    for row in rows:
        typer.echo(
            f"{row['id']}  {row['event']}  {row['cuit']}  {row['url']}  "
            f"attempts={row['attempts']}  {row['last_error']}"
        )
    typer.echo(f"{len(rows)} dead-lettered deliveries shown")


@callbacks_app.command("replay")
def callbacks_replay(
    delivery_id: Annotated[str | None, typer.Argument(help="The webhook-id to send again.")] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Every dead-lettered delivery.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Send dead-lettered deliveries again (same webhook-id; attempts start over)."""
    from worker.webhooks.callbacks import Callbacks

    if bool(delivery_id) == replay_all:
        _fail("give one delivery id or --all", as_json, code=2)
    with _redis_errors(as_json):
        callbacks = Callbacks(_queue().store)
        count = callbacks.replay_all() if replay_all else int(callbacks.replay(delivery_id or ""))
    if not replay_all and not count:
        _fail(f"no dead-lettered delivery {delivery_id}", as_json)
    if as_json:
        _print_json({"replayed": count})
    else:
        typer.echo(f"{count} deliveries queued again")


# --- demo -----------------------------------------------------------------------------

DEMO_BATCH = "demo"
DEMO_GAP_MARGIN_SECONDS = 0.5  # the worker keeps its gap a little above the API's, as it should


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


@app.command()
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
    console = _console(False)
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
    from contextlib import ExitStack

    import redis

    from ops.sandbox.server import SandboxError, SandboxProcess
    from ops.testkit.examples import EXAMPLES_DIR
    from ops.testkit.harness import WorkerProcess, unique_prefix, worker_env
    from producers.client import InvoiceQueue
    from producers.ops_views import (
        ledger_lines,
        ledger_summary,
        redis_where,
        results_table,
        show,
        watch_batch,
    )
    from worker.invoice.models import argentina_today
    from worker.settings import Settings

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
            settings = Settings(redis_url=url, key_prefix=prefix, cuit_gap_seconds=worker_gap)
            queue = InvoiceQueue(settings=settings)
            stack.callback(_forget_demo_keys, queue)
            log_dir = Path(stack.enter_context(_tempdir()))
            env = worker_env(
                url, sandbox.api_url, tenants_file, prefix=prefix, gap_seconds=worker_gap
            )
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
        except (SandboxError, TimeoutError, RuntimeError, OSError, redis.RedisError) as exc:
            typer.echo(f"error: demo failed: {exc}", err=True)
            return 1
    issued = sum(1 for r in results if r.get("status") == "issued")
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


def _demo_redis(stack: Any, stopped: list[str]) -> str:
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


def _forget_demo_keys(queue: InvoiceQueue) -> None:
    """Leave a shared Redis as it was: the prefix's keys, Celery's results and bindings."""
    import contextlib

    import redis

    from worker.store.scripts import text

    r, prefix = queue.redis, queue.keys.prefix
    with contextlib.suppress(redis.RedisError):
        job_ids = [text(k).rsplit(":", 1)[-1] for k in r.scan_iter(match=prefix + "job:*")]
        keys = [text(k) for k in r.scan_iter(match=prefix + "*", count=1000)]
        keys += [f"celery-task-meta-{job_id}" for job_id in job_ids]
        # Celery's queues are named after the prefix; kombu keeps their bindings aside.
        keys += [text(k) for k in r.scan_iter(match=f"_kombu.binding*.{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            r.delete(*keys[start : start + 500])


@contextmanager
def _tempdir() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tfq-demo-") as path:
        yield path


def main() -> None:
    from worker.errors import ConfigError

    try:
        app()
    except ConfigError as exc:
        typer.echo(f"tfq: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
