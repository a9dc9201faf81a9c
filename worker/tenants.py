"""The tenants file (TOML): issuing CUITs, their puntos de venta and credentials.

Credentials are `SecretStr`: no repr, log line or exception shows them. They never enter a
job, a result or a callback; the worker reads them from here at the moment it sends.

Each PDV's credentials belong to a TusFacturas account, which has its own per-second limit:
the PDV's `account`, else its tenant's `account`, else one account per distinct `usertoken`,
named `u-` + the first 16 hex digits of its SHA-256 (account names go into Redis keys, logs
and metrics, so they are never a credential). `[[account]]` tables set an account's
`max_rps`; without one, the installation's default applies.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from worker.errors import ConfigError, FieldError, TfqError, field_errors
from worker.invoice.cuit import valid_cuit


class TenantsFileError(ConfigError, ValueError):
    """The tenants file is missing, not TOML, or not of the expected shape."""

    def __init__(self, path: Path | str, errors: list[FieldError]):
        self.path = str(path)
        self.errors = errors
        super().__init__(f"{path}: " + "; ".join(str(e) for e in errors))


class UnknownPdv(TfqError, LookupError):
    """No credentials for this CUIT + punto de venta in the tenants file."""


def _no_pdv(cuit: str, punto_venta: int) -> UnknownPdv:
    return UnknownPdv(
        f"no credentials for CUIT {cuit} punto de venta {punto_venta} in the tenants file"
    )


def _coerce_secret(value: Any) -> Any:
    # The API's apikey is numeric; TOML files carry it as a string or an integer.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Account names go into Redis keys, log lines and metric labels.
ACCOUNT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def default_account_name(usertoken: str) -> str:
    """The account of credentials that name none: one per usertoken, named by a hash of it
    (never the token itself)."""
    return "u-" + hashlib.sha256(usertoken.encode()).hexdigest()[:16]


def _no_repeats(values: list[Any], name: str) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{name} listed twice: {dupes}")


class Pdv(BaseModel):
    """One punto de venta with its own API credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    punto_venta: int = Field(ge=1, le=99998)
    apikey: SecretStr
    apitoken: SecretStr
    usertoken: SecretStr
    test: bool = False
    account: str | None = Field(None, pattern=ACCOUNT_NAME_PATTERN)

    _coerce = field_validator("apikey", "apitoken", "usertoken", mode="before")(
        classmethod(lambda cls, v: _coerce_secret(v))
    )

    @field_validator("apikey", "apitoken", "usertoken")
    @classmethod
    def _not_empty(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().strip():
            raise ValueError("must not be empty")
        return v

    def credentials(self) -> dict[str, str]:
        """The three credential fields as the API wants them at the top of a request body."""
        return {
            "apikey": self.apikey.get_secret_value(),
            "apitoken": self.apitoken.get_secret_value(),
            "usertoken": self.usertoken.get_secret_value(),
        }

    def secrets(self) -> list[str]:
        return list(self.credentials().values())


class IntakeCaller(BaseModel):
    """A caller of the HTTP intake (a `[[client]]` of the file): a bearer token, stored only
    as its SHA-256, and the CUITs it may invoice for and read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    cuits: list[str] = Field(min_length=1)


class Operator(BaseModel):
    """A person who may use the web console (an `[[operator]]` of the file): a password,
    stored only as its scrypt hash (`tfq console hash-password`), and the CUITs they may
    see and steer ("*": all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    password_hash: str = Field(pattern=r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")
    cuits: list[str] = Field(min_length=1)

    @field_validator("cuits")
    @classmethod
    def _cuits(cls, v: list[str]) -> list[str]:
        return [c if c == "*" else valid_cuit(c) for c in v]


class Account(BaseModel):
    """A TusFacturas account's per-second limit (an `[[account]]` of the file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ACCOUNT_NAME_PATTERN)
    max_rps: float = Field(gt=0, le=10_000)


class Tenant(BaseModel):
    """An issuing CUIT."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cuit: str
    name: str | None = None
    account: str | None = Field(None, pattern=ACCOUNT_NAME_PATTERN)  # its PDVs' default
    gap_seconds: float | None = Field(None, ge=0)
    callback_secret: SecretStr | None = None
    pdv: list[Pdv] = Field(min_length=1)

    @field_validator("cuit")
    @classmethod
    def _cuit(cls, v: str) -> str:
        return valid_cuit(v)

    @field_validator("pdv")
    @classmethod
    def _unique_pdv(cls, v: list[Pdv]) -> list[Pdv]:
        _no_repeats([p.punto_venta for p in v], "punto_venta")
        return v


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: list[Tenant] = Field(default_factory=list)
    client: list[IntakeCaller] = Field(default_factory=list)
    operator: list[Operator] = Field(default_factory=list)
    account: list[Account] = Field(default_factory=list)

    @field_validator("tenant")
    @classmethod
    def _unique_cuit(cls, v: list[Tenant]) -> list[Tenant]:
        _no_repeats([t.cuit for t in v], "cuit")
        return v

    @field_validator("operator")
    @classmethod
    def _unique_operator(cls, v: list[Operator]) -> list[Operator]:
        _no_repeats([o.name for o in v], "name")
        return v


def account_of(tenant: Tenant, pdv: Pdv) -> str:
    """The account a PDV's calls count against: the PDV's, its tenant's, or its usertoken's."""
    return pdv.account or tenant.account or default_account_name(pdv.usertoken.get_secret_value())


def _account_errors(data: TenantsFile) -> list[FieldError]:
    """Rules across tables: one limit per account; no account named like a credential."""
    errors: list[FieldError] = []
    limits: dict[str, float] = {}
    for i, acct in enumerate(data.account):
        seen = limits.setdefault(acct.name, acct.max_rps)
        if seen != acct.max_rps:
            errors.append(
                FieldError(
                    f"account[{i}].max_rps",
                    f"account {acct.name} is given two limits ({seen:g} and {acct.max_rps:g})",
                )
            )
    secrets = {s for t in data.tenant for p in t.pdv for s in p.secrets()}
    named: list[tuple[str, str | None]] = [
        (f"account[{i}].name", a.name) for i, a in enumerate(data.account)
    ]
    for ti, t in enumerate(data.tenant):
        named.append((f"tenant[{ti}].account", t.account))
        named += [(f"tenant[{ti}].pdv[{pi}].account", p.account) for pi, p in enumerate(t.pdv)]
    errors += [
        FieldError(path, "an account name must not be a credential")
        for path, name in named
        if name is not None and name in secrets
    ]
    return errors


# Calls are spaced a little wider than the limit: the account's counter sees arrivals, and
# jitter between the send and its arrival would otherwise put max_rps + 1 calls in one
# second. 4 % leaves max_rps + 1 calls 40 ms more than a second apart (at 10/s); the bench's
# `accounts_tightest_window_s` shows the headroom a run kept.
PACING_MARGIN = 1.04


@dataclass(frozen=True, slots=True)
class Pacing:
    """The account a PDV's calls count against, and its limit (None: the default)."""

    account: str
    max_rps: float | None

    def interval_seconds(self, default_max_rps: float) -> float:
        """The least time between two of the account's calls (with a margin)."""
        return PACING_MARGIN / (self.max_rps or default_max_rps)


class Tenants:
    """Lookup of tenants and their PDVs, loaded once from the file."""

    def __init__(self, data: TenantsFile):
        self.data = data
        self._by_cuit = {t.cuit: t for t in data.tenant}
        self._pdvs = {(t.cuit, p.punto_venta): p for t in data.tenant for p in t.pdv}
        limits = {a.name: a.max_rps for a in data.account}
        self._pacing: dict[tuple[str, int], Pacing] = {}
        for t in data.tenant:
            for p in t.pdv:
                name = account_of(t, p)
                self._pacing[(t.cuit, p.punto_venta)] = Pacing(name, limits.get(name))

    @classmethod
    def load(cls, path: Path | str) -> Tenants:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TenantsFileError(path, [FieldError("", "file not found")]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            # TOMLDecodeError names the line and column, never the value.
            raise TenantsFileError(path, [FieldError("", f"not valid TOML: {exc}")]) from None
        return cls.from_dict(raw, source=path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: Path | str = "<tenants>") -> Tenants:
        try:
            data = TenantsFile.model_validate(raw)
        except ValidationError as exc:
            raise TenantsFileError(source, field_errors(exc)) from None
        errors = _account_errors(data)
        if errors:
            raise TenantsFileError(source, errors)
        return cls(data)

    def __repr__(self) -> str:
        return f"Tenants({len(self._by_cuit)} tenants, {len(self._pdvs)} pdvs)"

    @property
    def tenants(self) -> list[Tenant]:
        return list(self.data.tenant)

    @property
    def intake_callers(self) -> list[IntakeCaller]:
        return list(self.data.client)

    @property
    def operators(self) -> list[Operator]:
        return list(self.data.operator)

    def tenant(self, cuit: str) -> Tenant | None:
        return self._by_cuit.get(cuit)

    def pdv(self, cuit: str, punto_venta: int) -> Pdv:
        try:
            return self._pdvs[(cuit, punto_venta)]
        except KeyError:
            raise _no_pdv(cuit, punto_venta) from None

    def pacing(self, cuit: str, punto_venta: int) -> Pacing:
        """The account (and its limit) that a PDV's calls count against."""
        try:
            return self._pacing[(cuit, punto_venta)]
        except KeyError:
            raise _no_pdv(cuit, punto_venta) from None

    def find_by_credentials(self, apikey: str, apitoken: str, usertoken: str) -> tuple[str, Pdv]:
        """The (cuit, pdv) whose credentials these are; used by the sandbox."""
        wanted = {"apikey": apikey, "apitoken": apitoken, "usertoken": usertoken}
        for (cuit, _), pdv in self._pdvs.items():
            if pdv.credentials() == wanted:
                return cuit, pdv
        raise UnknownPdv("no punto de venta has these credentials")

    def gap_seconds(self, cuit: str, default: float) -> float:
        tenant = self._by_cuit.get(cuit)
        if tenant is None or tenant.gap_seconds is None:
            return default
        return tenant.gap_seconds

    def all_secrets(self) -> list[str]:
        """Every secret in the file; tests scan logs and Redis for these."""
        out = [s for p in self._pdvs.values() for s in p.secrets()]
        out += [t.callback_secret.get_secret_value() for t in self.data.tenant if t.callback_secret]
        return out
