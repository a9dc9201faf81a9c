"""Charts drawn on the server as SVG: no JavaScript, nothing from a CDN. Each chart has a
<title> and a <desc> that say in words what it shows (screen readers read those), and
every text in it is escaped. Pure functions: data in, markup out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

BAR_HEIGHT = 18
ROW_HEIGHT = 24
LABEL_WIDTH = 110
BAR_SPACE = 420
VALUE_SPACE = 70
CHART_TOP = 28
BAR_COLOUR = "#2e86de"

# The per-minute column chart.
PLOT_LEFT = 48
PLOT_TOP = 28
PLOT_HEIGHT = 160
AXIS_SPACE = 22
COLUMN_WIDTH = 4
TICK_MINUTES = 30


def _open(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
        f'<text x="0" y="16" fill="currentColor" font-weight="600">{escape(title)}</text>',
    ]


def _close(parts: list[str]) -> Markup:
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built from escaped text and numbers only


def bar_chart(
    rows: Sequence[tuple[str, int]],
    title: str,
    unit: str,
    *,
    chart_id: str = "bar-chart",
    empty: str = "Nothing to show",
) -> Markup:
    """Horizontal bars, one per (label, value) in the order given, each with its label
    and value as text; the longest bar is the largest value. `unit` follows each value
    in the bar's tooltip and the chart's <desc> ("3 queued")."""
    count = len(rows)
    height = CHART_TOP + max(1, count) * ROW_HEIGHT + 4
    # Room for the longest label (about 8 px a character at the page's font size).
    label_width = max([LABEL_WIDTH] + [8 * len(label) + 12 for label, _ in rows])
    width = label_width + BAR_SPACE + VALUE_SPACE
    largest = max((value for _, value in rows), default=0) or 1
    desc = "; ".join(f"{label}: {value} {unit}".rstrip() for label, value in rows) or empty
    parts = _open(escape(chart_id), title, desc, width, height)
    if not rows:
        parts.append(f'<text x="0" y="{CHART_TOP + 16}" fill="currentColor">{escape(empty)}</text>')
    for i, (name, amount) in enumerate(rows):
        y = CHART_TOP + i * ROW_HEIGHT
        bar = max(1, round(BAR_SPACE * amount / largest)) if amount > 0 else 0
        label, value = escape(name), escape(str(amount))
        parts.append(
            f"<g><title>{label}: {value} {escape(unit)}</title>"
            f'<text x="0" y="{y + 14}" fill="currentColor">{label}</text>'
            f'<rect x="{label_width}" y="{y}" width="{bar}" height="{BAR_HEIGHT}" '
            f'fill="{BAR_COLOUR}"></rect>'
            f'<text x="{label_width + bar + 6}" y="{y + 14}" fill="currentColor">{value}</text>'
            "</g>"
        )
    return _close(parts)


def per_minute(
    moments: Sequence[datetime], start: datetime, minutes: int
) -> list[tuple[datetime, int]]:
    """How many of `moments` fall in each minute from `start` (a whole minute) on, for
    `minutes` minutes; moments outside are left out."""
    counts = [0] * minutes
    for moment in moments:
        index = int((moment - start).total_seconds() // 60)
        if 0 <= index < minutes:
            counts[index] += 1
    return [(start + timedelta(minutes=i), n) for i, n in enumerate(counts)]


def column_chart(
    columns: Sequence[tuple[datetime, int]],
    title: str,
    unit: str,
    *,
    chart_id: str = "column-chart",
) -> Markup:
    """One column per minute (oldest left), an x axis labelled HH:MM at each half hour,
    the largest count as the y axis' label; the <desc> gives the total and the busiest
    minute. Times are shown as given (the caller picks the zone)."""
    total = sum(n for _, n in columns)
    largest = max((n for _, n in columns), default=0)
    width = PLOT_LEFT + max(1, len(columns)) * COLUMN_WIDTH + 8
    height = PLOT_TOP + PLOT_HEIGHT + AXIS_SPACE
    if total:
        busiest = next(t for t, n in columns if n == largest)
        desc = (
            f"{total} {unit} in {len(columns)} minutes; the busiest minute, "
            f"{busiest:%H:%M}, had {largest}."
        )
    else:
        desc = f"No {unit} in these {len(columns)} minutes."
    parts = _open(escape(chart_id), title, desc, width, height)
    base_y = PLOT_TOP + PLOT_HEIGHT
    right = PLOT_LEFT + len(columns) * COLUMN_WIDTH
    parts.append(
        f'<line x1="{PLOT_LEFT}" y1="{base_y}" x2="{right}" y2="{base_y}" '
        'stroke="currentColor"></line>'
        f'<line x1="{PLOT_LEFT}" y1="{PLOT_TOP}" x2="{PLOT_LEFT}" y2="{base_y}" '
        'stroke="currentColor"></line>'
        f'<text x="{PLOT_LEFT - 4}" y="{PLOT_TOP + 10}" text-anchor="end" '
        f'fill="currentColor">{largest}</text>'
        f'<text x="{PLOT_LEFT - 4}" y="{base_y}" text-anchor="end" fill="currentColor">0</text>'
    )
    if not total:
        parts.append(
            f'<text x="{PLOT_LEFT + 8}" y="{PLOT_TOP + PLOT_HEIGHT // 2}" '
            f'fill="currentColor">{escape(desc)}</text>'
        )
    for i, (minute, n) in enumerate(columns):
        x = PLOT_LEFT + i * COLUMN_WIDTH
        if n:
            tall = max(1, round(PLOT_HEIGHT * n / largest))
            parts.append(
                f'<rect x="{x}" y="{base_y - tall}" width="{COLUMN_WIDTH - 1}" '
                f'height="{tall}" fill="{BAR_COLOUR}">'
                f"<title>{minute:%H:%M}: {n} {escape(unit)}</title></rect>"
            )
        if minute.minute % TICK_MINUTES == 0:
            parts.append(
                f'<line x1="{x}" y1="{base_y}" x2="{x}" y2="{base_y + 4}" '
                'stroke="currentColor"></line>'
                f'<text x="{x}" y="{base_y + 17}" text-anchor="middle" '
                f'fill="currentColor">{minute:%H:%M}</text>'
            )
    return _close(parts)
