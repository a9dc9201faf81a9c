"""The API's scalar field types as pydantic annotations: dates as dd/mm/aaaa, amounts
checked as decimals and sent as JSON numbers, S/N flags, bounded text; and how amounts are
rounded and compared (round half even, to the cent)."""

from __future__ import annotations

import contextlib
import re
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

CENT = Decimal("0.01")
TOTAL_TOLERANCE = Decimal("0.01")


def round_half_even(value: Decimal, quantum: Decimal = CENT) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN)


_API_DATE_RE = re.compile(r"\s*([0-9]{2})/([0-9]{2})/([0-9]{4})\s*")


def _parse_api_date(value: Any) -> Any:
    # Hand-parsed: strptime dominated validation time on bulk intake.
    if isinstance(value, date):
        return value
    m = _API_DATE_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError("must be a date as dd/mm/aaaa")
    try:
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        raise ValueError("not a real calendar date (dd/mm/aaaa)") from None


def digit_text(value: Any) -> Any:
    """ "1" -> 1: the API reads numeric fields sent as strings, and the docs do so."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


def int_to_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def blank_to_none(value: Any) -> Any:
    # The SDK sends "" for unused optional fields; treat them as absent.
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _number(value: Decimal) -> int | float:
    # The API wants JSON numbers. Amounts have at most 3 decimals and 13 integer digits,
    # so the float's shortest repr is the exact decimal.
    return int(value) if value == value.to_integral_value() else float(value)


def decimals_at_most(places: int) -> AfterValidator:
    quantum = Decimal(1).scaleb(-places)

    def check(value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        # Fast path (bulk intake runs this on every amount): the value is its own rounding
        # to `places` decimals exactly when it has at most that many. quantize refuses a
        # result beyond the context's precision: the slow path then decides.
        with contextlib.suppress(InvalidOperation):
            if value.quantize(quantum) == value:
                return value
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"at most {places} decimals")
        return value

    return AfterValidator(check)


def _api_date_text(value: date) -> str:
    # d.strftime("%d/%m/%Y") to the character (the year unpadded, as glibc's %Y), at a
    # third of its cost: every envelope serializes two or three dates.
    return f"{value.day:02d}/{value.month:02d}/{value.year}"


ApiDate = Annotated[
    date,
    BeforeValidator(_parse_api_date),
    PlainSerializer(_api_date_text, return_type=str),
]
OptionalApiDate = Annotated[ApiDate | None, BeforeValidator(blank_to_none)]
Number = Annotated[Decimal, Field(allow_inf_nan=False), PlainSerializer(_number, when_used="json")]
Amount = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, le=Decimal("9999999999999.99")),
    PlainSerializer(_number, when_used="json"),
]
Amount2 = Annotated[Amount, decimals_at_most(2)]
OptionalAmount2 = Annotated[Amount2 | None, BeforeValidator(blank_to_none)]
YesNo = Literal["S", "N"]
Str255 = Annotated[str, Field(max_length=255)]
