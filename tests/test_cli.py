"""The `tfq` command line: validate and sandbox, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ops.examples import load_examples
from producers.cli import app
from worker.models import argentina_today

runner = CliRunner()


def jsonl(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_validate_all_good(tmp_path: Path) -> None:
    lines = [json.dumps(e) for e in load_examples(argentina_today()).values()]
    result = runner.invoke(app, ["validate", str(jsonl(tmp_path, lines))])
    assert result.exit_code == 0, result.output
    assert "6 jobs: 6 valid, 0 invalid" in result.output


def test_validate_reports_line_path_reason(tmp_path: Path) -> None:
    good = list(load_examples(argentina_today()).values())
    bad = json.loads(json.dumps(good[1]))
    bad["invoice"]["comprobante"]["moneda"] = "XXX"
    path = jsonl(tmp_path, [json.dumps(good[0]), "{not json", json.dumps(bad)])
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "2: " in result.output
    assert "3: invoice.comprobante.moneda: " in result.output
    result = runner.invoke(app, ["validate", str(path), "--json"])
    problems = [json.loads(line) for line in result.output.splitlines()]
    assert {"line": 3, "path": "invoice.comprobante.moneda"}.items() <= problems[1].items()


def test_validate_bad_format_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "x.jsonl"), "--format", "xml"])
    assert result.exit_code == 2


def test_tfq_sandbox_help_lists_fault_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "producers.cli", "sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in ("--gap", "--block", "--drop-after-commit-rate", "--maintenance-minutes"):
        assert flag in out
