"""The console's Charts page: the SVG functions on their own (escaping, empty data,
scaling, a title and a description, well-formed XML), and the page over real HTTP with a
SQLite archive: invoices issued per minute, the operator's CUIT scope, the htmx fragment."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops.testkit.harness import unique_prefix
from producers.console.charts import bar_chart, column_chart, per_minute
from producers.console.charts_pages import hours_of
from producers.console.ops_pages import lane_chart
from tests.conftest import RI_CUIT
from tests.test_accounting_export import issued_record
from tests.test_console import ANA_PASSWORD, BEA_PASSWORD, Console, serve_console
from worker.archive import db
from worker.archive.repository import Archive, row_from_record
from worker.settings import Settings
from worker.store.keys import Stat

SVG = "{http://www.w3.org/2000/svg}"


def _xml(markup: object) -> ET.Element:
    return ET.fromstring(str(markup))  # raises on anything that is not well-formed


# --- the SVG functions -------------------------------------------------------------------


def test_a_bar_chart_is_escaped_titled_and_scaled() -> None:
    chart = str(bar_chart([("<b>&", 10), ("half", 5), ("none", 0)], 'T"<x>', "jobs"))
    root = _xml(chart)
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None
    assert root.find(f"{SVG}desc") is not None
    assert root.find(f"{SVG}title").text == 'T"<x>'  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "<b>&: 10 jobs; half: 5 jobs; none: 0 jobs"  # type: ignore[union-attr]
    assert "<b>" not in chart
    assert "&lt;b&gt;&amp;" in chart
    widths = [int(r.get("width", "")) for r in root.iter(f"{SVG}rect")]
    assert widths == [420, 210, 0]  # the largest fills the space; the others in proportion
    empty = str(bar_chart([], "Empty", "jobs", empty="Nothing <here>"))
    assert _xml(empty).find(f"{SVG}desc").text == "Nothing <here>"  # type: ignore[union-attr]
    assert "<rect" not in empty


def test_lane_chart_is_a_bar_chart_and_keeps_its_ids() -> None:
    chart = str(lane_chart([("20111111112", 3)]))
    root = _xml(chart)
    assert root.get("aria-labelledby") == "lane-chart-title lane-chart-desc"
    assert "20111111112: 3 queued" in chart
    assert "No lane has jobs queued" in str(lane_chart([]))


def test_minutes_are_counted_and_drawn_as_columns() -> None:
    start = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    moments = [start + timedelta(minutes=m, seconds=s) for m, s in ((1, 5), (1, 59), (30, 0))]
    moments += [start - timedelta(seconds=1), start + timedelta(minutes=60)]  # outside
    columns = per_minute(moments, start, 60)
    assert len(columns) == 60
    assert columns[1] == (start + timedelta(minutes=1), 2)
    assert columns[30][1] == 1
    assert sum(n for _, n in columns) == 3
    chart = str(column_chart(columns, "Issued <per> minute", "issued", chart_id="c"))
    root = _xml(chart)
    desc = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert desc == "3 issued in 60 minutes; the busiest minute, 10:01, had 2."
    assert "Issued &lt;per&gt; minute" in chart
    rects = list(root.iter(f"{SVG}rect"))
    assert [int(r.get("height", "")) for r in rects] == [160, 80]  # scaled to the busiest
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "10:00" in labels
    assert "10:30" in labels
    assert "2" in labels  # the y axis' largest value
    empty = column_chart(per_minute([], start, 60), "None", "issued")
    assert "No issued in these 60 minutes." in str(empty)
    assert not list(_xml(empty).iter(f"{SVG}rect"))


def test_the_window_is_one_to_twenty_four_hours() -> None:
    assert [hours_of(t) for t in (None, "", "1", "24", "0", "99", "x")] == [3, 3, 1, 24, 1, 24, 3]


# --- the page ----------------------------------------------------------------------------


@pytest.fixture
def charted(redis_url: str, tmp_path: Path) -> Iterator[tuple[Console, float]]:
    """A console with a SQLite archive holding issued invoices of the last hours."""
    archive_url = f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    engine = db.engine_for(archive_url)
    db.migrate(engine)
    minute = (time.time() // 60 - 10) * 60 + 30  # the middle of the minute 10 minutes ago
    rows = [
        ("factura_a", "a1", 12, minute),
        ("factura_b", "b1", 40, minute),
        ("factura_b", "b2", 41, minute - 90 * 60),
        ("factura_b", "b3", 42, minute - 4 * 3600),  # older than 3 hours
        ("factura_c", "c1", 7, minute),  # MONO_CUIT's
    ]
    Archive(engine).upsert(
        [
            row_from_record(issued_record(n, j, num, finished=str(at), updated=str(at)))
            for n, j, num, at in rows
        ]
    )
    settings = Settings(
        redis_url=redis_url, key_prefix=unique_prefix("charts"), archive_url=archive_url
    )
    with serve_console(settings) as console:
        yield console, minute


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def _total(html: str) -> int:
    found = re.search(r'<span id="issued-total">(\d+)</span>', html)
    assert found, html
    return int(found.group(1))


def test_the_charts_page_counts_issued_invoices_per_minute(
    charted: tuple[Console, float],
) -> None:
    console, minute = charted
    http, _ = console.login("ana", ANA_PASSWORD)
    page = http.get(f"{console.url}/console/charts", timeout=10)
    assert page.status_code == 200
    html = page.text
    assert 'href="/console/charts">Charts</a>' in html
    assert _total(html) == 4  # three in one minute, one 90 minutes before; not 4 h ago
    assert f"<title>{_hhmm(minute)}: 3 issued</title>" in html
    assert f"<title>{_hhmm(minute - 90 * 60)}: 1 issued</title>" in html
    assert f"the busiest minute, {_hhmm(minute)}, had 3." in html
    assert "as archived" in html
    for chart_id in ("issued-chart", "status-chart", "calls-chart", "lane-chart"):
        svg = re.search(rf'<svg[^>]*aria-labelledby="{chart_id}-title.*?</svg>', html, re.S)
        assert svg, chart_id
        _xml(svg.group(0))
    assert 'id="queued">0<' in html
    assert "<script" not in html.replace('<script src="/console/static/htmx.min.js"', "")

    wider = http.get(f"{console.url}/console/charts?hours=5", timeout=10).text
    assert _total(wider) == 5
    assert 'value="5"' in wider
    clamped = http.get(f"{console.url}/console/charts?hours=100", timeout=10).text
    assert "last 24 h" in clamped


def test_an_operator_sees_only_their_cuits_invoices(charted: tuple[Console, float]) -> None:
    console, minute = charted
    http, _ = console.login("bea", BEA_PASSWORD)
    html = http.get(f"{console.url}/console/charts", timeout=10).text
    assert _total(html) == 1  # MONO_CUIT's invoice; RI_CUIT's three are not counted
    assert f"<title>{_hhmm(minute)}: 1 issued</title>" in html
    assert RI_CUIT not in html


def test_the_live_part_refreshes_as_an_htmx_fragment(charted: tuple[Console, float]) -> None:
    console, _ = charted
    http, _ = console.login("ana", ANA_PASSWORD)
    page = http.get(f"{console.url}/console/charts?hours=2", timeout=10).text
    assert 'hx-get="/console/charts?hours=2" hx-trigger="every 30s"' in page
    part = http.get(
        f"{console.url}/console/charts?hours=2", headers={"HX-Request": "true"}, timeout=10
    )
    assert part.status_code == 200
    assert "<html" not in part.text
    assert "<nav" not in part.text
    assert _total(part.text) == 4
    assert 'aria-labelledby="issued-chart-title' in part.text


def test_outcomes_show_failed_calls_by_class(charted: tuple[Console, float]) -> None:
    console, _ = charted
    store = console.queue.store
    store.r.hset(store.keys.stats, mapping={Stat.INVOICING_CALLS: 10, Stat.failed("transient"): 3})
    http, _ = console.login("ana", ANA_PASSWORD)
    html = http.get(f"{console.url}/console/charts", timeout=10).text
    chart = html[html.index('id="outcome-chart-title"') :]
    assert "<title>invoicing calls: 10 calls</title>" in chart
    assert "<title>transient: 3 calls</title>" in chart
