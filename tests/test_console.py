"""The web console over real HTTP (uvicorn) and a real Redis: login, sessions, CSRF,
security headers, the batches and lanes pages, pause and resume, CUIT scopes and the
audit log."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ops.testkit.examples import factura_b_jobs
from ops.testkit.harness import serving, unique_prefix
from producers.client import InvoiceQueue
from producers.console.passwords import check_password, hash_password
from producers.http.app import create_app
from tests.conftest import MONO_CUIT, RI_CUIT, TENANTS_FILE
from worker.errors import ConfigError
from worker.settings import Settings
from worker.store import admin
from worker.tenants import Tenants
from worker.tenants_live import LiveTenants

ANA_PASSWORD = "ana-correct-horse-42"
BEA_PASSWORD = "bea-battery-staple-7"


def _cheap(password: str) -> str:
    return hash_password(password, n=2**14)  # tests: the format, not the cost


@dataclass
class Console:
    url: str
    queue: InvoiceQueue

    def session(self) -> requests.Session:
        return requests.Session()

    def login(self, name: str, password: str, http: requests.Session | None = None) -> Any:
        http = http or self.session()
        form = http.get(f"{self.url}/console/login", timeout=10)
        csrf = _csrf(form.text)
        reply = http.post(
            f"{self.url}/console/login",
            data={"name": name, "password": password, "csrf": csrf, "next": "/batches"},
            allow_redirects=False,
            timeout=30,
        )
        return http, reply


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def operators_tenants() -> Tenants:
    """The example tenants with two operators: ana sees every CUIT, bea only MONO_CUIT's."""
    raw = {
        "tenant": [t.model_dump() for t in Tenants.load(TENANTS_FILE).data.tenant],
        "operator": [
            {"name": "ana", "password_hash": _cheap(ANA_PASSWORD), "cuits": ["*"]},
            {"name": "bea", "password_hash": _cheap(BEA_PASSWORD), "cuits": [MONO_CUIT]},
        ],
    }
    return Tenants.from_dict(_secrets_revealed(raw))


@contextmanager
def serve_console(
    settings: Settings, prepare: Callable[[InvoiceQueue], object] = lambda queue: None
) -> Iterator[Console]:
    """The intake (and its console) over `settings` for `operators_tenants()`, served on
    a free port; `prepare(queue)` runs first (an archive to fill); the prefix's keys go
    after."""
    queue = InvoiceQueue(settings=settings, key_prefix=settings.key_prefix)
    try:
        prepare(queue)
        app = create_app(settings, queue=queue, tenants=operators_tenants())
        with serving(app) as url:
            yield Console(url, queue)
    finally:
        keys = list(queue.redis.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        if keys:
            queue.redis.unlink(*keys)


@pytest.fixture
def console(redis_url: str) -> Iterator[Console]:
    with serve_console(Settings(redis_url=redis_url, key_prefix=unique_prefix("console"))) as c:
        yield c


def _secrets_revealed(value: Any) -> Any:
    """A model dump with SecretStr values as plain text again (to build a tenants file)."""
    if isinstance(value, dict):
        return {k: _secrets_revealed(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_secrets_revealed(v) for v in value]
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    return value


def test_passwords_are_kept_as_scrypt_hashes() -> None:
    stored = _cheap(ANA_PASSWORD)
    assert stored.startswith("scrypt$16384$8$1$")
    assert ANA_PASSWORD not in stored
    assert check_password(ANA_PASSWORD, stored)
    assert not check_password("wrong-password-00", stored)
    assert not check_password(ANA_PASSWORD, "not-a-hash")
    assert _cheap(ANA_PASSWORD) != stored  # salted
    with pytest.raises(ValueError, match="12"):
        hash_password("short")


def test_pages_ask_for_a_login_and_a_login_makes_a_strict_session(console: Console) -> None:
    http = console.session()
    gone = http.get(f"{console.url}/console/batches", allow_redirects=False, timeout=10)
    assert gone.status_code == 303
    assert gone.headers["location"] == "/console/login?next=/batches"

    _, wrong = console.login("ana", "not-her-password")
    assert wrong.status_code == 401
    assert "Wrong name or password" in wrong.text
    _, nobody = console.login("zoe", ANA_PASSWORD)
    assert nobody.status_code == 401

    http, ok = console.login("ana", ANA_PASSWORD)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/console/batches"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "secure" not in cookie  # served over plain HTTP here (no https TFQ_PUBLIC_URL)
    page = http.get(f"{console.url}/console/batches", timeout=10)
    assert page.status_code == 200
    assert "ana" in page.text
    headers = page.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    script = http.get(f"{console.url}/console/static/htmx.min.js", timeout=10)
    assert script.status_code == 200
    assert "htmx" in script.text[:200]


def test_login_refuses_a_form_without_its_token_and_a_foreign_next(console: Console) -> None:
    http = console.session()
    reply = http.post(
        f"{console.url}/console/login",
        data={"name": "ana", "password": ANA_PASSWORD, "csrf": "forged"},
        allow_redirects=False,
        timeout=10,
    )
    assert reply.status_code == 200
    assert "The form expired" in reply.text
    form = http.get(f"{console.url}/console/login?next=//evil.example/x", timeout=10)
    assert 'value="/batches"' in form.text


def test_batches_and_lanes_show_what_is_queued(console: Console) -> None:
    report = console.queue.submit_many(factura_b_jobs(RI_CUIT, 3, pdv=3, tag="CON"), batch="night")
    assert len(report.accepted) == 3
    http, _ = console.login("ana", ANA_PASSWORD)
    batches = http.get(f"{console.url}/console/batches", timeout=10).text
    assert 'href="/console/batches/night"' in batches
    assert "0 / 3" in batches
    batch = http.get(f"{console.url}/console/batches/night", timeout=10)
    assert batch.status_code == 200
    assert "0 of 3 done" in batch.text
    assert 'hx-get="/console/batches/night"' in batch.text
    live = http.get(
        f"{console.url}/console/batches/night", headers={"HX-Request": "true"}, timeout=10
    )
    assert "<html" not in live.text  # htmx gets the fragment only
    assert "0 of 3 done" in live.text
    lanes = http.get(f"{console.url}/console/lanes", timeout=10).text
    assert RI_CUIT in lanes
    missing = http.get(f"{console.url}/console/batches/nope", timeout=10)
    assert missing.status_code == 404


def test_pause_and_resume_need_the_token_and_are_logged(console: Console) -> None:
    console.queue.submit_many(factura_b_jobs(RI_CUIT, 1, pdv=3, tag="PAU"), batch="p")
    http, _ = console.login("ana", ANA_PASSWORD)
    csrf = _csrf(http.get(f"{console.url}/console/lanes", timeout=10).text)
    pause = f"{console.url}/console/lanes/{RI_CUIT}/pause"

    forged = http.post(pause, data={"csrf": "forged"}, allow_redirects=False, timeout=10)
    assert forged.status_code == 403
    foreign = http.post(
        pause, data={"csrf": csrf}, headers={"Origin": "https://evil.example"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert foreign.status_code == 403
    assert not console.queue.store.lane(RI_CUIT).paused

    done = http.post(
        pause, data={"csrf": csrf, "reason": "checking prices"}, allow_redirects=False, timeout=10
    )
    assert done.status_code == 303
    assert console.queue.store.lane(RI_CUIT).paused
    assert "checking prices" in http.get(f"{console.url}/console/lanes", timeout=10).text
    resumed = http.post(
        f"{console.url}/console/lanes/{RI_CUIT}/resume", data={"csrf": csrf},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert resumed.status_code == 303
    assert not console.queue.store.lane(RI_CUIT).paused

    actions = [
        (e["operator"], e["action"], e["target"])
        for e in admin.console_actions(console.queue.store, 10)
    ]
    assert actions[:3] == [
        ("ana", "resume", RI_CUIT),
        ("ana", "pause", RI_CUIT),
        ("ana", "login", "ana"),
    ]
    log = http.get(f"{console.url}/console/log", timeout=10).text
    assert "checking prices" in log


def test_an_operator_sees_and_steers_only_their_cuits(console: Console) -> None:
    console.queue.submit_many(factura_b_jobs(RI_CUIT, 1, pdv=3, tag="SCO"), batch="ri-only")
    http, _ = console.login("bea", BEA_PASSWORD)
    assert "ri-only" not in http.get(f"{console.url}/console/batches", timeout=10).text
    assert http.get(f"{console.url}/console/batches/ri-only", timeout=10).status_code == 404
    lanes = http.get(f"{console.url}/console/lanes", timeout=10).text
    assert RI_CUIT not in lanes
    csrf = _csrf(lanes)
    refused = http.post(
        f"{console.url}/console/lanes/{RI_CUIT}/pause", data={"csrf": csrf},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert refused.status_code == 403
    assert not console.queue.store.lane(RI_CUIT).paused


def test_no_page_shows_a_secret(console: Console) -> None:
    console.queue.submit_many(factura_b_jobs(RI_CUIT, 1, pdv=3, tag="SEC"), batch="s")
    http, _ = console.login("ana", ANA_PASSWORD)
    secrets_in_file = re.findall(
        r'(?:apitoken|usertoken|apikey)\s*=\s*"([^"]+)"', TENANTS_FILE.read_text()
    )
    assert secrets_in_file
    for path in ("/batches", "/batches/s", "/lanes", "/log"):
        text = http.get(f"{console.url}/console{path}", timeout=10).text
        for secret in secrets_in_file:
            assert secret not in text, path
        assert "scrypt$" not in text


def test_logout_ends_the_session(console: Console) -> None:
    http, _ = console.login("ana", ANA_PASSWORD)
    csrf = _csrf(http.get(f"{console.url}/console/batches", timeout=10).text)
    out = http.post(
        f"{console.url}/console/logout", data={"csrf": csrf}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 303
    after = http.get(f"{console.url}/console/batches", allow_redirects=False, timeout=10)
    assert after.status_code == 303


def test_a_short_session_key_is_refused(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, console_secret="too-short")
    queue = InvoiceQueue(settings=settings)
    with pytest.raises(ConfigError, match="TFQ_CONSOLE_SECRET"):
        create_app(settings, queue=queue, tenants=Tenants.load(TENANTS_FILE))


def test_a_new_password_or_a_removed_operator_ends_their_sessions(
    redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "tenants.toml"

    def write(operators: str) -> None:
        path.write_text(TENANTS_FILE.read_text().split("[[operator]]")[0] + operators)

    entry = '[[operator]]\nname = "ana"\npassword_hash = "{}"\ncuits = ["*"]\n'
    write(entry.format(_cheap(ANA_PASSWORD)))
    live = LiveTenants(path)
    settings = Settings(redis_url=redis_url, key_prefix=unique_prefix("console-reload"))
    queue = InvoiceQueue(settings=settings, key_prefix=settings.key_prefix)
    with serving(create_app(settings, queue=queue, tenants=live)) as url:
        console = Console(url, queue)
        http, ok = console.login("ana", ANA_PASSWORD)
        assert ok.status_code == 303

        def page() -> int:
            return http.get(f"{url}/console/batches", allow_redirects=False, timeout=10).status_code

        assert page() == 200
        write(entry.format(_cheap("ana-new-password-43")))
        assert live.reload() is True
        assert page() == 303  # the old password's session is over
        http, ok = console.login("ana", "ana-new-password-43")
        assert page() == 200
        write("")
        assert live.reload() is True
        assert page() == 303  # no longer an operator
    keys = list(queue.redis.scan_iter(match=f"{settings.key_prefix}*", count=1000))
    if keys:
        queue.redis.unlink(*keys)
