"""The arithmetic of the load scenarios of `python -m ops.bench` (no processes started)."""

from __future__ import annotations

import pytest

from ops.bench.kit import middle_rate
from ops.bench.scenarios import RUNNERS, SCENARIOS
from ops.bench.scenarios_load import gap_rule_times, jain_index


def test_the_load_scenarios_are_registered_after_capacity() -> None:
    for name in ("realistic", "accounts", "overload"):
        assert name in RUNNERS
    assert SCENARIOS.index("capacity") < SCENARIOS.index("overload")


def test_jain_index() -> None:
    assert jain_index([5, 5, 5, 5]) == 1.0
    assert jain_index([8, 0, 0, 0]) == pytest.approx(0.25)
    assert jain_index([0, 0]) == 0.0


def test_middle_rate_ignores_the_ramps() -> None:
    steady = [i * 0.1 for i in range(100)]  # 10 events/s
    assert middle_rate(steady) == pytest.approx(10.0)
    assert middle_rate([0.0, 1.0]) == 0.0


def issued(cuit: str, arrival: float, duration: float) -> dict[str, object]:
    return {
        "cuit": cuit,
        "endpoint": "facturacion/nuevo",
        "arrival": arrival,
        "issued_at": arrival + duration,
    }


def test_gap_rule_ideal_counts_each_calls_duration_and_the_gap() -> None:
    ledger = {
        "issued": [
            # A: calls of 0.5 s and 2 s, then the last; ideal (0.5 + 6) + (2 + 6) = 14.5.
            issued("A", 100.0, 0.5),
            issued("A", 106.5, 2.0),
            issued("A", 116.0, 0.3),
            # B: one call only, nothing to measure; C: not asked about.
            issued("B", 100.0, 0.2),
            issued("C", 100.0, 0.2),
            issued("C", 101.0, 0.2),
        ]
    }
    ideal, measured = gap_rule_times(ledger, {"A", "B"}, 6.0)
    assert ideal == pytest.approx(14.5)
    assert measured == pytest.approx(16.0)
