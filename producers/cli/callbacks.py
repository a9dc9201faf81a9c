"""`tfq callbacks`: dead-lettered callback deliveries, and sending them again."""

from __future__ import annotations

from typing import Annotated

import typer

from producers.cli.common import JsonOption, LimitOption, fail, open_queue, print_json, store_errors

app = typer.Typer(
    help="Callback deliveries that were dead-lettered, and sending them again.",
    no_args_is_help=True,
)


@app.command("failed")
def dead(limit: LimitOption = 50, as_json: JsonOption = False) -> None:
    """Dead-lettered callback deliveries, newest first, with the last error."""
    from worker.store.callbacks import Callbacks

    with store_errors(as_json):
        deliveries = Callbacks(open_queue().store).dead(limit)
    rows = [
        {k: d.get(k) for k in ("id", "event", "cuit", "url", "attempts", "last_error")}
        for d in deliveries
    ]
    if as_json:
        print_json({"deliveries": rows})
        return
    for row in rows:
        typer.echo(
            f"{row['id']}  {row['event']}  {row['cuit']}  {row['url']}  "
            f"attempts={row['attempts']}  {row['last_error']}"
        )
    typer.echo(f"{len(rows)} dead-lettered deliveries shown")


@app.command("replay")
def replay(
    delivery_id: Annotated[str | None, typer.Argument(help="The webhook-id to send again.")] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Every dead-lettered delivery.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Send dead-lettered deliveries again (same webhook-id; attempts start over)."""
    from worker.store.callbacks import Callbacks

    if bool(delivery_id) == replay_all:
        fail("give one delivery id or --all", as_json, code=2)
    with store_errors(as_json):
        callbacks = Callbacks(open_queue().store)
        count = callbacks.replay_all() if replay_all else int(callbacks.replay(delivery_id or ""))
    if not replay_all and not count:
        fail(f"no dead-lettered delivery {delivery_id}", as_json)
    if as_json:
        print_json({"replayed": count})
    else:
        typer.echo(f"{count} deliveries queued again")
