"""The `tfq` command line: validate and sandbox, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ops.sandbox.server import SandboxError
from ops.testkit.examples import load_examples
from producers.bulkfile.reader import FileFormatError
from producers.cli import app
from worker.errors import ConfigError, InvalidJob, TfqError
from worker.invoice.rules import argentina_today
from worker.tenants import TenantsFileError, UnknownPdv
from worker.tusfacturas.errors import TusFacturasError, UnclassifiedError
from worker.webhooks.safe_http import UnsafeCallbackURL

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


def test_a_configuration_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Library code raises ConfigError (never SystemExit); the command line says what to
    fix on one line, without a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFQ_")}
    env["TFQ_REDIS_URL"] = "redis://127.0.0.1:1/0"
    proc = subprocess.run(
        [sys.executable, "-m", "producers.cli", "doctor", "--yes"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "tfq: TFQ_TENANTS_FILE is not set: the worker needs the tenants file"
    )
    bad = tmp_path / "tenants.toml"
    bad.write_text("[[tenant]\n")
    env["TFQ_TENANTS_FILE"] = str(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "producers.cli", "doctor", "--yes"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("tfq: ")
    assert "Traceback" not in proc.stderr


def test_every_error_tfq_raises_has_one_root() -> None:
    errors = [
        InvalidJob, TusFacturasError, UnclassifiedError, UnsafeCallbackURL, TenantsFileError,
        UnknownPdv, FileFormatError, SandboxError, ConfigError,
    ]  # fmt: skip
    assert all(issubclass(e, TfqError) for e in errors)
    # ...and stay what callers caught before: ValueError, LookupError.
    assert issubclass(InvalidJob, ValueError)
    assert issubclass(UnknownPdv, LookupError)
