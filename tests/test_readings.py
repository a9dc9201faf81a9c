"""`python -m ops.readings`: its intake scenario (the others run workers for minutes and are
measured by hand, before and after a change; README, "Where the docs disagree")."""

from __future__ import annotations

from pathlib import Path

from ops.readings import SCENARIOS, intake


def test_the_intake_scenario_runs_and_refuses_none_of_the_vendors_invoices(
    tmp_path: Path,
) -> None:
    assert intake(tmp_path, None) == {"cases": 3, "refused": 0, "why": []}
    assert set(SCENARIOS) == {
        "numeracion-last", "not-found-wording", "block-data-error", "lotes-nested", "intake"
    }  # fmt: skip
