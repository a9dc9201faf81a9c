"""How the sandbox runs: `SandboxConfig` and the command line that builds one.

`python -m ops.sandbox` and `tfq sandbox` share `build_parser` and `config_from_args`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ops.sandbox.dates import ar_now
from ops.sandbox.dialect import PRESETS, Dialect, parse_dialect
from ops.sandbox.faults import Faults, LatencyDist, parse_latency_dist

# The vendor's per-account limit ("429: demasiadas solicitudes por segundo").
DEFAULT_ACCOUNT_MAX_RPS = 10.0
DEFAULT_TENANTS_FILE = (
    Path(__file__).resolve().parent.parent / "testkit" / "examples" / "tenants.toml"
)


@dataclass
class SandboxConfig:
    """How the sandbox runs. Durations in seconds."""

    host: str = "127.0.0.1"
    port: int = 8099
    tenants_file: Path = DEFAULT_TENANTS_FILE
    gap_seconds: float = 60.0
    block_seconds: float = 120.0
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    dialect: Dialect = field(default_factory=Dialect)
    # TusFacturas' PDF links work only on the day they are given: here, this many seconds.
    pdf_link_seconds: float = 86_400.0
    # Calls per second an account may make (its `[[account]]` max_rps overrides); 0: no limit.
    account_max_rps: float = DEFAULT_ACCOUNT_MAX_RPS


def _quota(value: str) -> tuple[str, int]:
    cuit, sep, count = value.partition("=")
    if not sep or not cuit.strip() or not count.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected CUIT=N, got {value!r}")
    return cuit.strip(), int(count)


def _dialect(value: str) -> Dialect:
    try:
        return parse_dialect(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _latency_dist(value: str) -> LatencyDist:
    try:
        return parse_latency_dist(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("a rate is a probability between 0 and 1")
    return rate


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ops.sandbox",
        description="A fake TusFacturas API v2 over HTTP, with AFIP rules and fault injection.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8099)
    p.add_argument("--tenants", type=Path, default=DEFAULT_TENANTS_FILE, help="tenants TOML file")
    p.add_argument(
        "--gap",
        type=_non_negative,
        default=60.0,
        help="per-CUIT minimum seconds between invoicing calls (0 disables)",
    )
    p.add_argument(
        "--block",
        type=_non_negative,
        default=120.0,
        help="seconds a CUIT stays blocked after breaking the gap",
    )
    p.add_argument(
        "--account-max-rps",
        type=_non_negative,
        default=DEFAULT_ACCOUNT_MAX_RPS,
        help=(
            "calls an account may make in any one second, every endpoint counted; beyond it, "
            "HTTP 429 (an [[account]] max_rps in the tenants file overrides; 0 disables)"
        ),
    )
    p.add_argument("--seed", type=int, default=None, help="RNG seed for rate-based faults")
    p.add_argument(
        "--pdf-link-seconds",
        type=_non_negative,
        default=86_400.0,
        help="seconds a comprobante_pdf_url keeps serving the PDF (the real ones: that day)",
    )
    p.add_argument(
        "--dialect",
        type=_dialect,
        default=Dialect(),
        help=(
            "how to read the vendor's pages where they disagree: a preset "
            f"({', '.join(PRESETS)}) and/or axis=value pairs, e.g. "
            "numeracion=last,not_found=0,lotes=nested,texts=catalogue (see ops/sandbox/dialect.py)"
        ),
    )
    f = p.add_argument_group("faults")
    f.add_argument("--latency-ms", type=_non_negative, default=0.0)
    f.add_argument("--latency-jitter-ms", type=_non_negative, default=0.0)
    f.add_argument(
        "--latency-dist",
        type=_latency_dist,
        default=None,
        metavar="lognormal:MEDIAN_MS:P99_MS:CAP_MS",
        help="draw each invoicing call's latency from a capped lognormal (overrides --latency-ms)",
    )
    f.add_argument("--error-5xx-rate", type=_rate, default=0.0, help="HTTP 502/503 before commit")
    f.add_argument("--rate-429", type=_rate, default=0.0, help="HTTP 429 before commit")
    f.add_argument(
        "--drop-after-commit-rate",
        type=_rate,
        default=0.0,
        help="commit, then drop the connection with no response",
    )
    f.add_argument("--lotes-524-rate", type=_rate, default=0.0, help="lotes: commit, then 524")
    f.add_argument(
        "--garbage-after-commit-rate",
        type=_rate,
        default=0.0,
        help="commit, then HTTP 200 with an HTML page instead of JSON",
    )
    f.add_argument(
        "--unknown-error-after-commit-rate",
        type=_rate,
        default=0.0,
        help="commit, then an error reply in words no page catalogues",
    )
    f.add_argument(
        "--hang-after-commit-ms",
        type=_non_negative,
        default=0.0,
        help="commit, then wait this long before answering",
    )
    f.add_argument(
        "--maintenance-minutes",
        type=_non_negative,
        default=0.0,
        help="maintenance window from now (every API request refused)",
    )
    f.add_argument(
        "--afip-down-minutes",
        type=_non_negative,
        default=0.0,
        help="AFIP down from now (invoicing refused)",
    )
    f.add_argument(
        "--quota",
        type=_quota,
        action="append",
        default=[],
        metavar="CUIT=N",
        help="invoicing calls still allowed for CUIT (repeatable)",
    )
    f.add_argument(
        "--reject-ref",
        default=None,
        metavar="REGEX",
        help="AFIP rejects (10015) invoices whose external_reference matches",
    )
    return p


def config_from_args(ns: argparse.Namespace) -> SandboxConfig:
    now = ar_now()
    faults = Faults(
        latency_ms=ns.latency_ms,
        latency_jitter_ms=ns.latency_jitter_ms,
        latency_dist=ns.latency_dist,
        hang_after_commit_ms=ns.hang_after_commit_ms,
        maintenance_until=(
            now + timedelta(minutes=ns.maintenance_minutes) if ns.maintenance_minutes else None
        ),
        afip_down_until=(
            now + timedelta(minutes=ns.afip_down_minutes) if ns.afip_down_minutes else None
        ),
        quota=dict(ns.quota),
        reject_ref_pattern=ns.reject_ref,
    )
    faults.error_5xx.rate = ns.error_5xx_rate
    faults.rate_429.rate = ns.rate_429
    faults.drop_after_commit.rate = ns.drop_after_commit_rate
    faults.lotes_524.rate = ns.lotes_524_rate
    faults.garbage_after_commit.rate = ns.garbage_after_commit_rate
    faults.unknown_error_after_commit.rate = ns.unknown_error_after_commit_rate
    return SandboxConfig(
        host=ns.host,
        port=ns.port,
        tenants_file=Path(ns.tenants),
        gap_seconds=ns.gap,
        block_seconds=ns.block,
        faults=faults,
        seed=ns.seed,
        dialect=ns.dialect,
        pdf_link_seconds=ns.pdf_link_seconds,
        account_max_rps=ns.account_max_rps,
    )
