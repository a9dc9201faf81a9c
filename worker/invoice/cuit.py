"""CUIT/CUIL check digit (modulo 11, weights 5 4 3 2 7 6 5 4 3 2; afip_rules.md §4.2)."""

from __future__ import annotations

from functools import lru_cache

_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_PREFIXES = frozenset({"20", "23", "24", "27", "30", "33", "34", "50", "51", "55"})


def check_digit(first_ten: str) -> int | None:
    """The check digit of the first 10 digits; None when none is valid (11 - s == 10)."""
    total = sum(int(d) * w for d, w in zip(first_ten, _WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


@lru_cache(maxsize=65536)  # a bulk run names the same few CUITs thousands of times
def cuit_problem(value: str) -> str | None:
    """Why `value` is not a valid CUIT/CUIL, or None when it is."""
    # isascii(): str.isdigit() also takes '²', '①' or Arabic-Indic digits.
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return "must be 11 digits (0-9), without dots or dashes"
    if value[:2] not in _PREFIXES:
        return f"prefix {value[:2]} is not a CUIT/CUIL prefix"
    expected = check_digit(value[:10])
    if expected is None or int(value[10]) != expected:
        return "check digit does not match (modulo 11)"
    return None


def valid_cuit(value: str) -> str:
    """`value` when it is a valid CUIT/CUIL; ValueError with the reason otherwise (for
    pydantic validators and command-line options)."""
    problem = cuit_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def is_valid_cuit(value: str) -> bool:
    return cuit_problem(value) is None
