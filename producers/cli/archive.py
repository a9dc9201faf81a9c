"""`tfq archive`: the SQL archive of finished jobs (migrations, what it holds)."""

from __future__ import annotations

import typer

from producers.cli.common import JsonOption, fail, print_report

app = typer.Typer(
    help="The archive of finished jobs (TFQ_ARCHIVE_URL; a SQLite file by default).",
    no_args_is_help=True,
)


@app.command("migrate")
def migrate(as_json: JsonOption = False) -> None:
    """Create or update the archive's tables (safe to run again: it does only what is due)."""
    from sqlalchemy.exc import SQLAlchemyError

    from worker.archive import db
    from worker.settings import get_settings

    url = get_settings().archive_database_url
    where = db.safe_url(url)
    try:
        before, now = db.migrate(db.engine_for(url))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's own words, without the SQL
        fail(f"archive at {where} (TFQ_ARCHIVE_URL): {type(exc).__name__}: {cause}", as_json)
    done = "already at" if before == now else f"migrated from {before or 'nothing'} to"
    doc = {"archive": where, "revision_before": before, "revision": now}
    print_report(doc, as_json, None, [f"archive {where}: {done} revision {now}"])


@app.command("status")
def status(as_json: JsonOption = False) -> None:
    """Where the archive is, its schema revision and how many jobs it holds."""
    from sqlalchemy.exc import SQLAlchemyError

    from worker.archive import db
    from worker.archive.repository import Archive
    from worker.settings import get_settings

    settings = get_settings()
    url = settings.archive_database_url
    where = db.safe_url(url)
    try:
        engine = db.engine_for(url)
        revision = db.current_revision(engine)
        jobs = Archive(engine).count() if revision else 0
    except SQLAlchemyError as exc:
        fail(f"archive at {where} (TFQ_ARCHIVE_URL): {type(exc).__name__}", as_json)
    current = revision == db.head_revision()
    doc = {
        "archive": where,
        "revision": revision,
        "current": current,
        "jobs": jobs,
        "pdfs": settings.pdf_store_url,
    }
    lines = [
        f"archive: {where}",
        f"schema: {revision or 'none'}" + ("" if current else " (run `tfq archive migrate`)"),
        f"jobs archived: {jobs}",
        f"PDFs: {settings.pdf_store_url}",
    ]
    print_report(doc, as_json, None, lines)
