"""Fault injection: what the sandbox breaks on purpose, set at start-up or via /_sandbox/faults."""

from __future__ import annotations

import copy
import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ops.sandbox.api import API_ENDPOINTS, INVOICING_ENDPOINTS, LOTES
from ops.sandbox.dates import ar_now, iso, parse_when


@dataclass
class FaultSpec:
    """A probabilistic or counted fault.

    rate: probability per eligible call (0..1).
    next: the next N eligible calls get the fault for sure (decremented as they fire).
    endpoints: endpoint paths (e.g. "facturacion/consulta") it applies to; None means the
        invoice-generating endpoints ("facturacion/nuevo", "facturacion/lotes").
    """

    rate: float = 0.0
    next: int = 0
    endpoints: list[str] | None = None

    def applies_to(self, endpoint: str) -> bool:
        return endpoint in (INVOICING_ENDPOINTS if self.endpoints is None else self.endpoints)

    def fires(self, endpoint: str, rng: random.Random) -> bool:
        if self.next <= 0 and self.rate <= 0:
            return False
        if not self.applies_to(endpoint):
            return False
        if self.next > 0:
            self.next -= 1
            return True
        return rng.random() < self.rate

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "next": self.next, "endpoints": self.endpoints}

    def merge(self, value: Any, name: str) -> None:
        """Merge a JSON value: a number (the rate) or {rate?, next?, endpoints?}."""
        if isinstance(value, bool):
            raise ValueError(f"{name}: expected a rate or an object")
        if isinstance(value, int | float):
            value = {"rate": value}
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a rate or an object with rate/next/endpoints")
        unknown = set(value) - {"rate", "next", "endpoints"}
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
        if "rate" in value:
            rate = float(value["rate"])
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}.rate must be between 0 and 1")
            self.rate = rate
        if "next" in value:
            nxt = int(value["next"])
            if nxt < 0:
                raise ValueError(f"{name}.next must be >= 0")
            self.next = nxt
        if "endpoints" in value:
            eps = value["endpoints"]
            if eps is not None:
                if not isinstance(eps, list) or not all(e in API_ENDPOINTS for e in eps):
                    raise ValueError(f"{name}.endpoints must be null or a list of {API_ENDPOINTS}")
                eps = list(eps)
            self.endpoints = eps


def _lotes_only() -> FaultSpec:
    return FaultSpec(endpoints=[LOTES])


# The standard normal's 99th percentile: sigma = ln(p99 / median) / Z99.
Z99 = 2.326


@dataclass(frozen=True)
class LatencyDist:
    """A lognormal API latency with this median and 99th percentile, capped (milliseconds):
    most calls quick, a long tail, as the real API answers."""

    median_ms: float
    p99_ms: float
    cap_ms: float

    @property
    def sigma(self) -> float:
        return math.log(self.p99_ms / self.median_ms) / Z99

    def draw_ms(self, rng: random.Random) -> float:
        return min(self.cap_ms, rng.lognormvariate(math.log(self.median_ms), self.sigma))

    def spec(self) -> str:
        return f"lognormal:{self.median_ms:g}:{self.p99_ms:g}:{self.cap_ms:g}"


def parse_latency_dist(value: str) -> LatencyDist:
    """`lognormal:MEDIAN_MS:P99_MS:CAP_MS`; ValueError on anything else."""
    kind, *numbers = value.split(":")
    if kind != "lognormal" or len(numbers) != 3:
        raise ValueError(f"expected lognormal:MEDIAN_MS:P99_MS:CAP_MS, got {value!r}")
    try:
        median, p99, cap = (float(n) for n in numbers)
    except ValueError:
        raise ValueError(f"lognormal: not numbers in {value!r}") from None
    if not 0 < median <= p99 <= cap:
        raise ValueError(f"lognormal: need 0 < median <= p99 <= cap, got {value!r}")
    return LatencyDist(median, p99, cap)


_SPEC_FIELDS = (
    "error_5xx",
    "rate_429",
    "drop_after_commit",
    "lotes_524",
    "garbage_after_commit",
    "unknown_error_after_commit",
    "sequence_error",
)
_FLOAT_FIELDS = ("latency_ms", "latency_jitter_ms", "hang_after_commit_ms")


@dataclass
class Faults:
    """Injected faults. Durations in milliseconds say so in their names.

    latency_ms / latency_jitter_ms: added before processing an invoicing call (uniform in
        latency ± jitter); the commit happens after it even if the client gave up.
    latency_dist: when set, each invoicing call's latency is drawn from it instead.
    error_5xx: HTTP 502/503 with an HTML body, before anything is committed.
    rate_429: HTTP 429, before anything is committed.
    drop_after_commit: commit, then abort the TCP connection with no response.
    lotes_524: commit, then HTTP 524 with a Cloudflare-like HTML body (lotes by default).
    garbage_after_commit: commit, then HTTP 200 with an HTML page instead of JSON (a proxy's
        or login page): an unreadable reply to a call that did issue.
    hang_after_commit_ms: commit, then wait this long before answering.
    unknown_error_after_commit: commit, then answer an error reply in words no page
        catalogues (the newest pages warn that a reported failure may have issued).
    sequence_error: "AFIP" answers 10016 without issuing, whatever the number (a numbering
        that cannot be made to agree: the spend guard's test).
    maintenance_until: every API request gets the maintenance shape until then.
    afip_down_until: invoicing calls get the AFIP-down error; alertas reports it.
    quota: cuit -> invoicing calls still allowed; missing = unlimited; 0 -> quota error.
    reject_ref_pattern: regex; an invoice whose external_reference matches (re.search) is
        rejected by "AFIP" (10015), its number not consumed.
    reject_ref_text: the text of that refusal (default: the dialect's).
    blocked_cuits: cuit -> until; set by the gap rule or explicitly.
    cuit_errors: cuit -> an error text every invoicing call of that CUIT gets, before
        anything is committed (one tenant's certificate, its own "AFIP is down", ...).
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    latency_dist: LatencyDist | None = None
    error_5xx: FaultSpec = field(default_factory=FaultSpec)
    rate_429: FaultSpec = field(default_factory=FaultSpec)
    drop_after_commit: FaultSpec = field(default_factory=FaultSpec)
    lotes_524: FaultSpec = field(default_factory=_lotes_only)
    garbage_after_commit: FaultSpec = field(default_factory=FaultSpec)
    unknown_error_after_commit: FaultSpec = field(default_factory=FaultSpec)
    sequence_error: FaultSpec = field(default_factory=FaultSpec)
    hang_after_commit_ms: float = 0.0
    maintenance_until: datetime | None = None
    afip_down_until: datetime | None = None
    quota: dict[str, int] = field(default_factory=dict)
    reject_ref_pattern: str | None = None
    reject_ref_text: str | None = None
    blocked_cuits: dict[str, datetime] = field(default_factory=dict)
    cuit_errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "latency_jitter_ms": self.latency_jitter_ms,
            "latency_dist": self.latency_dist.spec() if self.latency_dist else None,
            "error_5xx": self.error_5xx.to_json(),
            "rate_429": self.rate_429.to_json(),
            "drop_after_commit": self.drop_after_commit.to_json(),
            "lotes_524": self.lotes_524.to_json(),
            "garbage_after_commit": self.garbage_after_commit.to_json(),
            "unknown_error_after_commit": self.unknown_error_after_commit.to_json(),
            "sequence_error": self.sequence_error.to_json(),
            "hang_after_commit_ms": self.hang_after_commit_ms,
            "maintenance_until": iso(self.maintenance_until),
            "afip_down_until": iso(self.afip_down_until),
            "quota": dict(self.quota),
            "reject_ref_pattern": self.reject_ref_pattern,
            "reject_ref_text": self.reject_ref_text,
            "blocked_cuits": {c: iso(u) for c, u in self.blocked_cuits.items()},
            "cuit_errors": dict(self.cuit_errors),
        }

    def merge(self, data: dict[str, Any], now: datetime | None = None) -> None:
        """Merge a JSON object of fields into these faults; ValueError on bad input.

        Besides the fields: `maintenance_minutes` / `afip_down_minutes` (a window from now;
        0 or null ends it) and `block_cuit` ({cuit, seconds}). In `quota` and
        `blocked_cuits` a null value removes that CUIT. Nothing changes on error.
        """
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        now = now or ar_now()
        staged = copy.deepcopy(self)
        staged._merge_into(data, now)
        self.__dict__.update(staged.__dict__)

    def _merge_into(self, data: dict[str, Any], now: datetime) -> None:
        for key, value in data.items():
            if key in _FLOAT_FIELDS:
                number = float(value)
                if number < 0:
                    raise ValueError(f"{key} must be >= 0")
                setattr(self, key, number)
            elif key in _SPEC_FIELDS:
                spec: FaultSpec = getattr(self, key)
                spec.merge(value, key)
            elif key in ("maintenance_until", "afip_down_until"):
                setattr(self, key, parse_when(value))
            elif key in ("maintenance_minutes", "afip_down_minutes"):
                target = key.replace("_minutes", "_until")
                minutes = 0.0 if value is None else float(value)
                setattr(self, target, now + timedelta(minutes=minutes) if minutes > 0 else None)
            elif key == "quota":
                if not isinstance(value, dict):
                    raise ValueError("quota must be an object cuit -> calls")
                for cuit, n in value.items():
                    if n is None:
                        self.quota.pop(str(cuit), None)
                    elif int(n) < 0:
                        raise ValueError("quota values must be >= 0")
                    else:
                        self.quota[str(cuit)] = int(n)
            elif key == "reject_ref_pattern":
                pattern = None if value is None else str(value)
                if pattern is not None:
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise ValueError(f"reject_ref_pattern: {exc}") from None
                self.reject_ref_pattern = pattern
            elif key == "reject_ref_text":
                self.reject_ref_text = None if value is None else str(value)
            elif key == "blocked_cuits":
                if not isinstance(value, dict):
                    raise ValueError("blocked_cuits must be an object cuit -> until")
                for cuit, until in value.items():
                    when = parse_when(until)
                    if when is None:
                        self.blocked_cuits.pop(str(cuit), None)
                    else:
                        self.blocked_cuits[str(cuit)] = when
            elif key == "cuit_errors":
                if not isinstance(value, dict):
                    raise ValueError("cuit_errors must be an object cuit -> text")
                for cuit, text in value.items():
                    if text is None:
                        self.cuit_errors.pop(str(cuit), None)
                    else:
                        self.cuit_errors[str(cuit)] = str(text)
            elif key == "block_cuit":
                if not isinstance(value, dict) or "cuit" not in value:
                    raise ValueError("block_cuit must be {cuit, seconds}")
                seconds = float(value.get("seconds", 120))
                if seconds > 0:
                    self.blocked_cuits[str(value["cuit"])] = now + timedelta(seconds=seconds)
                else:
                    self.blocked_cuits.pop(str(value["cuit"]), None)
            else:
                raise ValueError(f"unknown fault field {key!r}")
