"""The browser chain: Debian's Chromium, driven by Playwright, on a FastAPI page served over
real HTTP. A form filled and sent with the mouse and with the keyboard, a screenshot, the
flags Chromium runs with, and nothing left running after a run however it was started."""

from __future__ import annotations

import html
import json
import struct
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Browser, Page, expect

from ops.testkit.browser import CHROMIUM_FLAGS, ROOT, Proc, descendants, screenshot
from ops.testkit.harness import serving

FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Queue an invoice</title></head>
<body>
  <h1>Queue an invoice</h1>
  <form action="/queued" method="get">
    <label for="customer">Customer</label>
    <input id="customer" name="customer" required>
    <button id="send" type="submit">Queue it</button>
  </form>
</body></html>
"""


def form_app() -> FastAPI:
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def form() -> str:
        return FORM

    @app.get("/queued", response_class=HTMLResponse)
    def queued(customer: str) -> str:
        return (
            '<!doctype html><html lang="en"><head><title>Queued</title></head><body>'
            f'<p id="result">Queued an invoice for {html.escape(customer)}</p></body></html>'
        )

    return app


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serving(form_app()) as url:
        yield url


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_form_is_sent_with_the_mouse(page: Page, site: str, tmp_path: Path) -> None:
    page.goto(site + "/")
    expect(page.get_by_role("heading", name="Queue an invoice")).to_be_visible()
    page.get_by_label("Customer").fill("Almacén <Don> Pepe")
    page.get_by_role("button", name="Queue it").click()
    page.wait_for_url("**/queued?*")
    expect(page.locator("#result")).to_have_text("Queued an invoice for Almacén <Don> Pepe")

    shot = screenshot(page, "browser-smoke", folder=tmp_path / "shots")
    assert shot == tmp_path / "shots" / "browser-smoke.png"
    width, height = png_size(shot)
    assert width > 100
    assert height > 50


def test_the_form_is_sent_with_the_keyboard(page: Page, site: str) -> None:
    page.goto(site + "/")
    field = page.get_by_label("Customer")
    field.focus()
    page.keyboard.type("Kiosco 24")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Queue it")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/queued?*")
    expect(page.locator("#result")).to_have_text("Queued an invoice for Kiosco 24")


def test_each_test_gets_a_fresh_context(page: Page, site: str) -> None:
    """Nothing a test stored in its browser context is seen by the next."""
    page.goto(site + "/")
    assert page.evaluate("window.localStorage.getItem('seen')") is None
    assert page.context.cookies() == []
    page.evaluate("window.localStorage.setItem('seen', 'yes')")
    page.context.add_cookies([{"name": "seen", "value": "yes", "url": site}])


def test_the_next_test_does_not_see_it(page: Page, site: str) -> None:
    test_each_test_gets_a_fresh_context(page, site)


def test_screenshot_names_stay_in_their_folder(page: Page, tmp_path: Path) -> None:
    for name in ("../up", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="screenshot name"):
            screenshot(page, name, folder=tmp_path)
    assert not any(tmp_path.iterdir())


def test_chromium_is_debians_with_the_flags_and_a_fresh_profile(browser: Browser) -> None:
    assert browser.browser_type.name == "chromium"
    mains = [
        cmd
        for cmd in (proc.cmdline() for proc in descendants())
        if cmd and cmd[0].startswith("/usr/lib/chromium/") and "--remote-debugging-pipe" in cmd
    ]
    assert len(mains) == 1, mains
    (cmd,) = mains
    missing = [flag for flag in CHROMIUM_FLAGS if flag not in cmd]
    assert not missing, f"Chromium runs without {missing}: {cmd}"
    (profile,) = [arg.split("=", 1)[1] for arg in cmd if arg.startswith("--user-data-dir=")]
    assert Path(profile).parent == Path(tempfile.gettempdir()), profile
    assert Path(profile).is_dir()


CHILD = textwrap.dedent(
    """
    import json, signal
    from ops.testkit.browser import chromium, descendants, new_page

    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "SIGINT is not ignored"
    with chromium() as browser, new_page(browser) as page:
        page.set_content("<p id=x>up</p>")
        text = page.text_content("#x")
        seen = [[p.pid, p.started, " ".join(p.cmdline())] for p in descendants()]
    left = [p.cmdline() for p in descendants()]
    print(json.dumps({"text": text, "seen": seen, "left": left}))
    """
)


def test_a_run_started_with_sigint_ignored_leaves_nothing_running() -> None:
    """A child inherits SIGINT ignored (as from a shell's background job): the browser still
    runs, and Playwright's driver, Chromium and its helpers are all gone after the block."""
    done = subprocess.run(
        ["sh", "-c", 'trap "" INT; exec "$0" -c "$1"', sys.executable, CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["text"] == "up"
    commands = [cmd for _, _, cmd in report["seen"]]
    assert any("run-driver" in cmd for cmd in commands), commands
    assert any(cmd.startswith("/usr/lib/chromium/") for cmd in commands), commands
    assert report["left"] == [], "still running after the block"
    still = [p for p in (Proc(pid, started) for pid, started, _ in report["seen"]) if p.running()]
    assert still == [], f"still running after the run: {[p.cmdline() for p in still]}"
