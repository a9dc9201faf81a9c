"""`tfq lanes`: list the per-CUIT lanes (deepest first), pause or resume one."""

from __future__ import annotations

from typing import Annotated

import typer

from producers.cli.common import (
    CuitArgument,
    JsonOption,
    LimitOption,
    open_queue,
    print_json,
    print_report,
    store_errors,
)

app = typer.Typer(
    help="Per-CUIT lanes: list them (deepest first), pause or resume one.",
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def lanes(ctx: typer.Context, limit: LimitOption = 50, as_json: JsonOption = False) -> None:
    """Per CUIT: queued jobs, state, next slot, paused reason, lease; deepest first."""
    from producers.cli.render import lanes_summary, lanes_table
    from worker.store.queries import lanes_doc

    if ctx.invoked_subcommand is not None:
        return
    with store_errors(as_json):
        doc = lanes_doc(open_queue().store, limit=limit)
    table = lanes_table(doc) if doc["rows"] else None
    print_report(doc, as_json, table, lanes_summary(doc))


@app.command("pause")
def pause(
    cuit: CuitArgument,
    reason: Annotated[
        str, typer.Option(help="Why (shown by `tfq lanes` and on the lane's queued jobs).")
    ] = "paused by an operator",
    as_json: JsonOption = False,
) -> None:
    """Stop sending for one CUIT until resumed; its jobs wait in order, nothing is dropped."""
    from producers.cli.render import jobs_count

    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise typer.BadParameter("must be 1 to 500 characters", param_hint="--reason")
    store = open_queue().store
    with store_errors(as_json):
        store.pause(cuit, reason)
        depth = store.depth(cuit)
        sending = bool(store.lane_state(cuit).get("token"))
    if as_json:
        print_json({"cuit": cuit, "paused": True, "reason": reason, "depth": depth})
        return
    typer.echo(f"paused lane {cuit} ({jobs_count(depth)} waiting): {reason}")
    if sending:
        typer.echo("  a call already in flight for it finishes first")
    typer.echo(f"  resume it with: tfq lanes resume {cuit}")


@app.command("resume")
def resume(cuit: CuitArgument, as_json: JsonOption = False) -> None:
    """Resume a paused lane: its jobs go out again, in order, from its next slot."""
    from producers.cli.render import jobs_count

    store = open_queue().store
    with store_errors(as_json):
        was_paused = store.resume(cuit)
        depth = store.depth(cuit)
    if as_json:
        print_json({"cuit": cuit, "was_paused": was_paused, "depth": depth})
        return
    if was_paused:
        typer.echo(f"resumed lane {cuit} ({jobs_count(depth)} queued)")
    else:
        typer.echo(f"lane {cuit} was not paused ({jobs_count(depth)} queued)")
