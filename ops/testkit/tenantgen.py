"""Generate tenants files with many CUITs, for tests, benchmarks and chaos runs."""

from __future__ import annotations

import base64
from pathlib import Path

from worker.invoice.cuit import check_digit

TEST_PDV = 1  # "punto de venta irreal": empty CAE is success
REAL_PDV = 2


def make_cuits(
    count: int, prefix: str = "30", *, start: int = 10_000_000, step: int = 7
) -> list[str]:
    """`count` distinct valid CUITs (modulo 11 check digit): `prefix` + 8 digits from `start`."""
    cuits: list[str] = []
    body = start
    while len(cuits) < count:
        first_ten = f"{prefix}{body:08d}"
        digit = check_digit(first_ten)
        if digit is not None:
            cuits.append(first_ten + str(digit))
        body += step
    return cuits


def write_tenants(
    path: Path,
    cuits: list[str],
    *,
    gap_seconds: float | None = None,
    accounts: dict[str, str] | None = None,
    account_max_rps: dict[str, float] | None = None,
    pdvs: tuple[tuple[int, bool], ...] = ((TEST_PDV, True), (REAL_PDV, False)),
) -> Path:
    """Each CUIT gets `pdvs` (punto de venta, test?), by default a test PDV (1) and a real
    PDV (2), with their own credentials, and so each PDV its own TusFacturas account, unless
    `accounts` names the account of a CUIT's PDVs (CUIT -> account name); `account_max_rps`
    gives accounts their limits."""
    lines: list[str] = []
    for n, cuit in enumerate(cuits):
        secret = base64.b64encode(f"tfq-generated-secret-{n:06d}".encode()).decode()
        lines += ["[[tenant]]", f'cuit = "{cuit}"', f'callback_secret = "whsec_{secret}"']
        if gap_seconds is not None:
            lines.append(f"gap_seconds = {gap_seconds}")
        if accounts and cuit in accounts:
            lines.append(f'account = "{accounts[cuit]}"')
        for pdv, test in pdvs:
            lines += [
                "[[tenant.pdv]]",
                f"punto_venta = {pdv}",
                # Long and distinctive, so a scan for leaked secrets cannot hit an amount.
                f'apikey = "{4_700_000_000 + n * 7919 + pdv}"',
                f'apitoken = "gen-{cuit}-{pdv}-apitoken"',
                f'usertoken = "gen-{cuit}-{pdv}-usertoken"',
                f"test = {'true' if test else 'false'}",
            ]
        lines.append("")
    for name, max_rps in (account_max_rps or {}).items():
        lines += ["[[account]]", f'name = "{name}"', f"max_rps = {max_rps}", ""]
    path.write_text("\n".join(lines))
    return path
