"""`tfq doctor`: check each tenant's account without issuing anything."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from producers.cli.common import JsonOption, print_json, store_errors


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
    billed = cost(runtime.tenants.current, tipos)
    if not yes and not as_json and sys.stdin.isatty():
        typer.confirm(
            f"tfq doctor makes {billed} billed requests (numeracion, one per PDV and tipo; "
            "the newest page bills it) and free queries. Go on?",
            abort=True,
        )
    with store_errors(as_json):
        warnings = runtime.check_redis_durability()
    report = run_doctor(runtime.client, runtime.tenants.current, tipos, warnings)
    if as_json:
        print_json(report.as_dict())
    else:
        for line in render(report):
            typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)
