"""Jobs in and out: `tfq validate`, `enqueue`, `status` and `batch`."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from producers.cli.common import (
    FormatOption,
    JsonOption,
    check_cuit,
    check_format,
    console,
    fail,
    open_queue,
    parse_day,
    print_json,
    print_report,
    store_errors,
)


def validate(
    file: Annotated[Path, typer.Argument(help="JSONL (one envelope per line) or CSV file.")],
    fmt: FormatOption = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    today: Annotated[
        str | None,
        typer.Option(help="Check dates as if today were this day (dd/mm/aaaa, Argentina)."),
    ] = None,
) -> None:
    """Check every job of a bulk file without queuing anything; exit 1 if any is invalid."""
    from producers.bulkfile.reader import validate_file

    check_format(fmt)
    code = validate_file(file, fmt=fmt, today=parse_day(today), as_json=as_json)  # type: ignore[arg-type]
    raise typer.Exit(code)


def enqueue(
    file: Annotated[
        Path, typer.Argument(help="JSONL (one envelope per line) or CSV file; - reads stdin.")
    ],
    batch: Annotated[
        str | None, typer.Option(help="Name the jobs' batch, to follow it with `tfq batch`.")
    ] = None,
    fmt: FormatOption = "auto",
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
    from producers.bulkfile.reader import FileFormatError
    from producers.cli.enqueue import enqueue_file, line_progress, regular_file
    from worker.store.admin import ping
    from worker.store.jobs import BATCH_NAME_RULE, InvalidBatchName, check_batch_name

    check_format(fmt)
    try:
        check_batch_name(batch or "")
    except InvalidBatchName:
        raise typer.BadParameter(BATCH_NAME_RULE, param_hint="--batch") from None
    path = None if str(file) == "-" else file
    rich_console = console(as_json)
    queue = open_queue()
    with store_errors(as_json):
        ping(queue.store)  # fail before reading the file when Redis is not there
        try:
            with regular_file(path) as source:
                progress = None if rich_console is None else line_progress(rich_console, source)
                with progress or nullcontext() as advance:
                    report = enqueue_file(
                        queue,
                        source,
                        fmt=fmt,  # type: ignore[arg-type]
                        batch=batch or "",
                        strict=strict,
                        progress=advance,
                    )
        except (OSError, FileFormatError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            fail(f"cannot read {file}: {reason}", as_json, 2)
    print_report(report.doc(), as_json, None, report.lines())
    raise typer.Exit(report.exit_code)


def status(
    job: Annotated[str | None, typer.Argument(help="The job id.")] = None,
    cuit: Annotated[
        str | None,
        typer.Option(help="Look the job up by its key: the issuing CUIT...", callback=check_cuit),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", "--external-reference", help="...and its external_reference."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A job's status and result: CAE, number, the API's messages; exit 1 if not found."""
    from producers.cli.render import status_lines
    from worker.store.jobs import FINAL
    from worker.store.queries import lane_position

    if job is not None and (cuit is not None or ref is not None):
        raise typer.BadParameter("give a job id or --cuit and --ref, not both", param_hint="JOB")
    if job is None and (cuit is None or ref is None):
        missing = "--ref" if cuit is not None else "--cuit" if ref is not None else "JOB"
        raise typer.BadParameter("give a job id, or --cuit and --ref", param_hint=missing)
    queue = open_queue()
    with store_errors(as_json):
        if job is None:
            assert cuit is not None
            assert ref is not None
            job = queue.job_id(cuit, ref)
            if job is None:
                fail(f"no job with cuit {cuit} and external_reference {ref}", as_json)
        doc = queue.status(job)
        if doc is not None and doc["status"] not in FINAL:  # its place in its lane
            doc["lane_position"] = lane_position(queue.store, doc["cuit"], job)
            doc["lane_depth"] = queue.store.depth(doc["cuit"])
    if doc is None:
        fail(f"no job {job}", as_json)
    print_report(doc, as_json, None, status_lines(doc))


def batch(
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
    from producers.cli.render import batch_lines
    from producers.cli.watch import watch_batch

    queue = open_queue()
    rich_console = console(as_json)
    with store_errors(as_json):
        if watch:
            try:
                doc = watch_batch(
                    queue,
                    name,
                    console=rich_console,
                    out=None if as_json else sys.stdout,
                    interval_seconds=interval,
                )
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
        else:
            doc = queue.batch(name)
    if doc is None:
        fail(f"no batch {name}", as_json)
    if as_json:
        print_json(doc)
    elif not watch or rich_console is not None:
        for line in batch_lines(doc):
            typer.echo(line)
