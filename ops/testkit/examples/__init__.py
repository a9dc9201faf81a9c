"""Realistic sample jobs, used by the tests and the demo.

The files are dated around `EXAMPLES_DATE`. AFIP only accepts dates a few days around
the day of sending, so `load_examples(today)` shifts every dd/mm/aaaa date by the same
number of days, keeping each invoice's own date relations intact.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

EXAMPLES_DIR = Path(__file__).parent
EXAMPLES_DATE = date(2026, 11, 20)
_DATE_RE = re.compile(r"^\d{2}/\d{2}/\d{4}$")
_ARGENTINA = timezone(timedelta(hours=-3))


def example_names() -> list[str]:
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.json"))


def shift_dates(value: Any, delta: timedelta) -> Any:
    """A copy of `value` with every dd/mm/aaaa string moved by `delta`."""
    if isinstance(value, dict):
        return {k: shift_dates(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shift_dates(v, delta) for v in value]
    if isinstance(value, str) and _DATE_RE.match(value):
        moved = datetime.strptime(value, "%d/%m/%Y").date() + delta
        return moved.strftime("%d/%m/%Y")
    return value


def load_example(name: str, today: date | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES_DIR / f"{name}.json").read_text("utf-8"))
    if today is None:
        return data
    shifted: dict[str, Any] = shift_dates(data, today - EXAMPLES_DATE)
    return shifted


def load_examples(today: date | None = None) -> dict[str, dict[str, Any]]:
    """Every example envelope by name, dated around `today` when given."""
    return {name: load_example(name, today) for name in example_names()}


def factura_b_jobs(cuit: str, count: int, *, pdv: int, tag: str) -> list[dict[str, Any]]:
    """`count` Factura B envelopes for `cuit` at `pdv`, dated today (Argentina), with the
    external references `{tag}-{last 4 of the CUIT}-{pdv}-{i:03d}`."""
    base = load_example("factura_b", datetime.now(_ARGENTINA).date())
    out = []
    for i in range(count):
        env = copy.deepcopy(base)
        env["cuit"] = cuit
        comp = env["invoice"]["comprobante"]
        comp["punto_venta"] = pdv
        comp["external_reference"] = f"{tag}-{cuit[-4:]}-{pdv}-{i:03d}"
        out.append(env)
    return out
