"""The tenants file's errors and secrecy, and the log redaction safety net."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from worker.logs import JsonFormatter, SecretFilter
from worker.tenants import Pdv, Tenants, TenantsFileError, UnknownPdv

SECRET = "very-secret-apitoken-value"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenants.toml"
    path.write_text(text)
    return path


def test_example_file_loads(tenants: Tenants) -> None:
    assert [t.cuit for t in tenants.tenants] == ["20111111112", "20267565393"]
    assert tenants.pdv("20111111112", 679).test is True
    assert tenants.gap_seconds("20111111112", 60) == 60
    with pytest.raises(UnknownPdv):
        tenants.pdv("20111111112", 99)


def test_errors_name_the_path_and_hide_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[[tenant]]
cuit = "20111111113"
gap_seconds = -1
[[tenant.pdv]]
punto_venta = 0
apikey = 1134
apitoken = "{SECRET}"
usertoken = ""
colour = "{SECRET}"
""",
    )
    with pytest.raises(TenantsFileError) as info:
        Tenants.load(path)
    paths = {e.path for e in info.value.errors}
    assert {
        "tenant[0].cuit",
        "tenant[0].gap_seconds",
        "tenant[0].pdv[0].punto_venta",
        "tenant[0].pdv[0].usertoken",
        "tenant[0].pdv[0].colour",
    } <= paths
    assert SECRET not in str(info.value)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TenantsFileError, match="not valid TOML"):
        Tenants.load(write(tmp_path, f'apitoken = "{SECRET}'))
    with pytest.raises(TenantsFileError, match="file not found"):
        Tenants.load(tmp_path / "nope.toml")


def test_duplicates_refused(tmp_path: Path) -> None:
    pdv = '[[tenant.pdv]]\npunto_venta = 1\napikey = "1"\napitoken = "a"\nusertoken = "b"\n'
    text = '[[tenant]]\ncuit = "20111111112"\n' + pdv + pdv
    with pytest.raises(TenantsFileError, match="punto_venta listed twice"):
        Tenants.load(write(tmp_path, text))


def test_account_errors_name_the_file_and_the_path(tmp_path: Path) -> None:
    pdv = f'[[tenant.pdv]]\npunto_venta = 1\napikey = "1"\napitoken = "{SECRET}"\nusertoken = "b"\n'
    text = (
        '[[tenant]]\ncuit = "20111111112"\naccount = "shop"\n' + pdv
        + '[[account]]\nname = "shop"\nmax_rps = 5\n'
        + '[[account]]\nname = "shop"\nmax_rps = 4\n'
        + f'[[account]]\nname = "{SECRET}"\nmax_rps = 1\n'
    )  # fmt: skip
    path = write(tmp_path, text)
    with pytest.raises(TenantsFileError) as info:
        Tenants.load(path)
    assert [e.path for e in info.value.errors] == ["account[1].max_rps", "account[2].name"]
    assert str(path) in str(info.value)
    assert SECRET not in str(info.value)


def test_example_file_has_an_account_per_usertoken(tenants: Tenants) -> None:
    names = {tenants.pacing(c, p).account for c, p in [("20111111112", 679), ("20111111112", 3)]}
    assert len(names) == 2
    assert all(n.startswith("u-") and len(n) == 18 for n in names)


def test_secrets_never_in_repr(tenants: Tenants) -> None:
    pdv = tenants.pdv("20111111112", 3)
    shown = repr(pdv) + str(pdv) + repr(tenants) + repr(tenants.tenants)
    for secret in tenants.all_secrets():
        assert secret not in shown


def test_log_filter_redacts_message_args_extras_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretFilter([SECRET]))
    log = logging.getLogger("tfq.test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("token %s leaked", SECRET, extra={"body": {"apitoken": SECRET}})
        try:
            raise ValueError(f"bad {SECRET}")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert "[redacted]" in text
    first = json.loads(text.splitlines()[0])
    assert first["body"] == {"apitoken": "[redacted]"}


def test_pdv_credentials_only_on_request() -> None:
    pdv = Pdv(punto_venta=1, apikey=1134, apitoken=SECRET, usertoken="u-token")  # type: ignore[arg-type]
    assert pdv.credentials()["apikey"] == "1134"
    assert SECRET not in repr(pdv)
