"""Dates as AFIP and the API see them: Argentina time, `dd/mm/aaaa`, ISO 8601 for the controls."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

AR_TZ = timezone(timedelta(hours=-3), "ART")
"""Argentina time (UTC-3, no DST): AFIP's "N" and every date the API shows."""


def ar_now() -> datetime:
    return datetime.now(AR_TZ)


def ar_today() -> date:
    return datetime.now(AR_TZ).date()


def parse_date(value: Any) -> date | None:
    """`dd/mm/aaaa` -> date, or None when it is not such a date."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split("/")
    if len(parts) != 3 or len(parts[2]) != 4:
        return None
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        return None


def fmt_date(d: date) -> str:
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def parse_when(value: Any) -> datetime | None:
    """An ISO 8601 string (naive = Argentina time) or None -> aware datetime or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value)
    else:
        raise ValueError(f"expected an ISO 8601 datetime or null, got {value!r}")
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=AR_TZ)


def iso(dt: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 in Argentina time (what the control routes show)."""
    return None if dt is None else dt.astimezone(AR_TZ).isoformat()
