"""The console's Charts page: invoices issued per minute (from the SQL archive), jobs by
status and API calls by endpoint (Redis' counters), and the queue's depth and oldest
job's age with the deepest lanes. Every chart is SVG drawn on the server (`charts`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from producers.cli.render import duration
from producers.console.charts import bar_chart, column_chart, per_minute
from producers.console.kit import ConsoleDep, Who, WhoDep, is_fragment, when
from producers.console.ops_pages import CALLS_PREFIX, CHART_LANES, LANES_READ, lane_chart
from worker.archive import db
from worker.archive.schema import ArchivedJob
from worker.errors import ConfigError
from worker.store.jobs import JobStatus
from worker.store.keys import FAILED_PREFIX, Stat
from worker.store.queries import lanes_doc

router = APIRouter()

DEFAULT_HOURS = 3
MAX_HOURS = 24
STATUSES = (
    JobStatus.ISSUED,
    JobStatus.REJECTED,
    JobStatus.UNKNOWN,
    JobStatus.QUEUED,
    JobStatus.SENDING,
)
UNFINISHED = (JobStatus.QUEUED, JobStatus.SENDING, JobStatus.UNKNOWN)


def hours_of(text: str | None) -> int:
    """The window asked for, in whole hours from 1 to 24 (the default when unreadable)."""
    try:
        return min(MAX_HOURS, max(1, int(text or DEFAULT_HOURS)))
    except ValueError:
        return DEFAULT_HOURS


def _utc(moment: datetime) -> datetime:
    # SQLite gives back the naive UTC time it was given; PostgreSQL an aware one.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def issued_moments(engine: Engine, who: Who, since: datetime) -> list[datetime]:
    """When each issued job the operator may see finished, from `since` on (UTC), as
    archived: one query, the CUIT scope in SQL; the minutes are counted in Python, which
    needs no date function that SQLite and PostgreSQL spell differently."""
    query = select(ArchivedJob.finished_at).where(
        ArchivedJob.status == JobStatus.ISSUED.value, ArchivedJob.finished_at >= since
    )
    if who.cuits is not None:
        query = query.where(ArchivedJob.cuit.in_(sorted(who.cuits)))
    with engine.connect() as conn:
        return [_utc(moment) for (moment,) in conn.execute(query) if moment is not None]


@router.get("/charts", response_class=HTMLResponse)
def charts(
    request: Request, who: WhoDep, console: ConsoleDep, hours: str | None = None
) -> HTMLResponse:
    store = console.store
    g = store.gauges()
    span = hours_of(hours)
    now = datetime.fromtimestamp(g.now, UTC)
    minutes = span * 60
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    archive_error = None
    try:
        engine = console.queue.archive.engine
        db.ensure_schema(engine)
        moments = issued_moments(engine, who, start)
    except ConfigError as exc:
        archive_error, moments = str(exc), []
    except SQLAlchemyError as exc:
        archive_error, moments = f"the archive: {type(exc).__name__}", []
    columns = per_minute(moments, start, minutes)
    issued = column_chart(
        columns,
        f"Invoices issued per minute, last {span} h (UTC, as archived)",
        "issued",
        chart_id="issued-chart",
    )
    stats = g.stats
    statuses = bar_chart(
        [(str(s), stats.get(Stat.jobs(s), 0)) for s in STATUSES],
        "Jobs by status (all CUITs)",
        "jobs",
        chart_id="status-chart",
    )
    calls = sorted(
        ((key.removeprefix(CALLS_PREFIX), n) for key, n in stats.items()
         if key.startswith(CALLS_PREFIX)),
        key=lambda row: (-row[1], row[0]),
    )  # fmt: skip
    failures = sorted(
        ((key.removeprefix(FAILED_PREFIX), n) for key, n in stats.items()
         if key.startswith(FAILED_PREFIX)),
        key=lambda row: (-row[1], row[0]),
    )  # fmt: skip
    outcomes = bar_chart(
        [("invoicing calls", stats.get(Stat.INVOICING_CALLS, 0)), *failures],
        "Invoicing calls, and the failed ones by class (all CUITs)", "calls",
        chart_id="outcome-chart",
    )  # fmt: skip
    endpoints = bar_chart(
        calls, "TusFacturas API calls by endpoint (all CUITs)", "calls",
        chart_id="calls-chart", empty="No API call counted yet",
    )  # fmt: skip
    lanes = [row for row in lanes_doc(store, limit=LANES_READ)["rows"] if who.may_see(row["cuit"])]
    deepest = [(row["cuit"], int(row["depth"])) for row in lanes if row["depth"]][:CHART_LANES]
    template = "charts_live.html" if is_fragment(request) else "charts.html"
    return console.page(
        request, template, who,
        now=when(g.now), hours=span, max_hours=MAX_HOURS, issued=issued,
        issued_total=sum(n for _, n in columns), archive_error=archive_error,
        statuses=statuses, outcomes=outcomes, endpoints=endpoints,
        queued=sum(stats.get(Stat.jobs(s), 0) for s in UNFINISHED),
        oldest_age=duration(g.now - g.oldest_pending) if g.oldest_pending else "-",
        lanes=lane_chart(deepest, f"The {len(deepest)} deepest lanes you may see"
                         if deepest else "Queue depth per lane"),
    )  # fmt: skip
