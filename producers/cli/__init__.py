"""The `tfq` command line: the typer app, and every command registered in one place.

Each command lives in a small module of this package and imports its heavy dependencies
only when it runs, so `tfq --help` stays fast.
"""

from __future__ import annotations

import sys

import typer

from producers.cli import (
    archive,
    audit,
    callbacks,
    console,
    dev,
    doctor,
    failed,
    invoices,
    jobs,
    lanes,
    run,
    void,
)

app = typer.Typer(
    name="tfq",
    help="Exactly-once, per-CUIT paced AFIP/ARCA invoicing through the TusFacturas API v2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# `tfq sandbox` hands its arguments, --help included, to the sandbox's own parser.
app.command(
    "sandbox",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)(dev.sandbox)
app.command("validate")(jobs.validate)
app.command("worker")(run.worker)
app.command("dispatcher")(run.dispatcher)
app.command("serve")(run.serve)
app.command("enqueue")(jobs.enqueue)
app.command("status")(jobs.status)
app.command("batch")(jobs.batch)
app.command("void")(void.void)
app.add_typer(lanes.app, name="lanes")
app.command("failed")(failed.failed)
app.command("doctor")(doctor.doctor)
app.command("audit")(audit.audit)
app.add_typer(callbacks.app, name="callbacks")
app.add_typer(archive.app, name="archive")
app.add_typer(console.app, name="console")
app.add_typer(invoices.app, name="invoices")
app.command("demo")(dev.demo)


def main() -> None:
    """`tfq`, with a configuration error as one line and exit 2 (no traceback)."""
    from worker.errors import ConfigError

    try:
        app()
    except ConfigError as exc:
        typer.echo(f"tfq: {exc}", err=True)
        sys.exit(2)
