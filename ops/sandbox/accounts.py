"""The vendor's per-account rate limit, as the sandbox enforces it.

TusFacturas answers "429: demasiadas solicitudes por segundo" per account, every endpoint
counted. The sandbox reads that as a count over a sliding one-second window: a call is
refused when the account's last `max_rps` admitted calls all arrived within the second
before it. (A sliding window is the strict reading of "per second": it also catches a burst
that straddles two calendar seconds.) Refused calls do not count, so a client that waits
gets through.

Accounts are named from the tenants file by the sandbox's own reading of it: a PDV's
`account`, else its tenant's `account`, else one account per usertoken, named `u-` and the
first 16 hex digits of the token's SHA-256, so a ledger never shows a credential.
"""

from __future__ import annotations

import hashlib
from collections import deque

from worker.tenants import Tenants

WINDOW_SECONDS = 1.0


def account_names(tenants: Tenants) -> dict[tuple[str, int], str]:
    """The account of each (CUIT, punto de venta) in the file."""
    names: dict[tuple[str, int], str] = {}
    for tenant in tenants.tenants:
        for pdv in tenant.pdv:
            token = pdv.usertoken.get_secret_value().encode()
            by_token = "u-" + hashlib.sha256(token).hexdigest()[:16]
            names[(tenant.cuit, pdv.punto_venta)] = pdv.account or tenant.account or by_token
    return names


class AccountLimits:
    """Admits or refuses each call of an account by its per-second limit; counts both."""

    def __init__(self, tenants: Tenants, default_max_rps: float):
        self.default_max_rps = default_max_rps  # 0: no limit at all
        self._names = account_names(tenants)
        self._limits = {a.name: a.max_rps for a in tenants.data.account}
        self._recent: dict[str, deque[float]] = {}
        self.calls: dict[str, int] = {}
        self.too_fast: dict[str, int] = {}

    def reset(self) -> None:
        self._recent.clear()
        self.calls.clear()
        self.too_fast.clear()

    def account(self, cuit: str, punto_venta: int) -> str:
        return self._names[(cuit, punto_venta)]

    def max_rps(self, account: str) -> float:
        """The account's limit; 0 when the sandbox enforces none."""
        if self.default_max_rps <= 0:
            return 0.0
        return self._limits.get(account, self.default_max_rps)

    def admit(self, account: str, arrival: float) -> bool:
        """Whether a call of `account` arriving at `arrival` (epoch s) is within its limit."""
        limit = self.max_rps(account)
        if limit <= 0:
            self.calls[account] = self.calls.get(account, 0) + 1
            return True
        # A fractional limit (0.5/s) still lets one call in, then waits out its share.
        allowed = max(1, int(limit))
        window = WINDOW_SECONDS * allowed / limit
        recent = self._recent.setdefault(account, deque())
        while recent and arrival - recent[0] >= window:
            recent.popleft()
        if len(recent) >= allowed:
            self.too_fast[account] = self.too_fast.get(account, 0) + 1
            return False
        recent.append(arrival)
        self.calls[account] = self.calls.get(account, 0) + 1
        return True

    def to_json(self) -> dict[str, dict[str, float]]:
        """Per account: admitted calls, calls refused as too fast, and the limit."""
        return {
            name: {
                "calls": self.calls.get(name, 0),
                "too_fast": self.too_fast.get(name, 0),
                "max_rps": self.max_rps(name),
            }
            for name in sorted(self.calls.keys() | self.too_fast.keys())
        }
