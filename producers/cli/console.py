"""`tfq console`: the web console's operators."""

from __future__ import annotations

import typer

app = typer.Typer(help="The web console (/console on the intake).", no_args_is_help=True)


@app.command("hash-password")
def hash_password() -> None:
    """Ask for an operator's password (twice, not echoed) and print the `password_hash`
    to put in the tenants file's [[operator]]."""
    from producers.console.passwords import MIN_LENGTH, hash_password

    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_LENGTH:
        typer.echo(f"error: a password of at least {MIN_LENGTH} characters", err=True)
        raise typer.Exit(2)
    typer.echo(hash_password(password))
