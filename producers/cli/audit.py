"""`tfq audit`: what TusFacturas holds for a period against tfq's archive."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from producers.cli.common import (
    FromOption,
    JsonOption,
    ToOption,
    check_cuit,
    fail,
    parse_period,
    print_json,
    store_errors,
)


def audit(
    cuit: Annotated[
        str, typer.Option("--cuit", help="The issuing CUIT (11 digits).", callback=check_cuit)
    ],
    start: FromOption,
    end: ToOption,
    pdv: Annotated[
        int | None,
        typer.Option("--pdv", help="One punto de venta (default: the CUIT's non-test ones)."),
    ] = None,
    tipo: Annotated[
        str | None, typer.Option("--tipo", help='Only this tipo, e.g. "FACTURA B".')
    ] = None,
    max_calls: Annotated[
        int | None,
        typer.Option("--max-calls", min=1, help="Stop after this many calls (default 5000)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Run without asking (needed unattended).")] = (
        False
    ),
    as_json: JsonOption = False,
) -> None:
    """Compare the invoices TusFacturas holds for a period with tfq's archive: invoices
    missing on either side, an external_reference issued twice, holes in the numbering,
    and a total, CAE or receptor document that differ. Each finding names the invoice,
    its job and what to do.

    It asks facturacion/consulta_avanzada by date, one call per day and punto de venta
    (one more per further 1000 invoices of a day); none is billed. The calls wait for the
    account's pacing like the workers' own. The plan is stated first: on a terminal it
    asks before going on; unattended (a pipe, cron, --json) it runs only with --yes.

    Exit 0 when the period is clean, 1 with findings (or when the walk stopped on an
    error: nothing is then compared), 2 for a usage or configuration error."""
    import time

    from worker.accounting.audit import (
        DEFAULT_MAX_CALLS,
        AuditError,
        AuditPlan,
        Walk,
        check_plan,
        render,
        run_audit,
    )
    from worker.archive import db
    from worker.invoice.tables import TIPOS
    from worker.runtime import Runtime
    from worker.settings import get_settings
    from worker.store.audits import AuditSummary, record_audit
    from worker.tenants import UnknownPdv

    first, last = parse_period(start, end)
    if tipo is not None and tipo not in TIPOS:
        raise typer.BadParameter(f"unknown tipo {tipo!r}", param_hint="--tipo")
    settings = get_settings()
    runtime = Runtime(settings)
    tenants = runtime.tenants.current
    tenant = tenants.tenant(cuit)
    if tenant is None:
        fail(f"CUIT {cuit} is not in the tenants file", as_json, code=2)
    if pdv is not None:
        try:
            pdvs = [tenants.pdv(cuit, pdv)]
        except UnknownPdv as exc:
            fail(str(exc), as_json, code=2)
    else:
        # A test PDV's invoices are not AFIP's: audited only when named.
        pdvs = [p for p in tenant.pdv if not p.test]
    plan = AuditPlan(cuit, first, last, pdvs, tipo, max_calls or DEFAULT_MAX_CALLS)
    try:
        check_plan(plan)
    except ValueError as exc:
        fail(str(exc), as_json, code=2)

    if not as_json:
        typer.echo(plan.describe(), err=True)
    if not yes:
        if as_json or not sys.stdin.isatty():
            message = "not run: unattended, an audit runs only with --yes"
            if as_json:
                print_json({"plan": plan.as_dict(), "error": message})
                raise typer.Exit(2)
            fail(message, as_json, code=2)
        typer.confirm("Go on?", abort=True)

    walk = Walk(
        runtime.client,
        runtime.store,
        lambda p: tenants.pacing(cuit, p.punto_venta),
        settings.api_max_rps,
    )
    engine = db.engine_for(settings.archive_database_url)
    with store_errors(as_json):
        try:
            report = run_audit(plan, walk, engine, include_test=any(p.test for p in pdvs))
        except AuditError as exc:
            fail(f"audit stopped, nothing compared: {exc}", as_json)
        summary = AuditSummary(
            cuit, time.time(), first.isoformat(), last.isoformat(), report.counts()
        )
        record_audit(runtime.store, summary)
    if as_json:
        print_json(report.as_dict())
    else:
        for line in render(report):
            typer.echo(line)
    raise typer.Exit(0 if report.clean else 1)
