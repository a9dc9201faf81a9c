"""A real browser for the tests: Debian's Chromium, driven by Playwright's sync API.

Playwright never downloads a browser here (nothing runs `playwright install`): the wheel
brings its Node.js driver, and the driver starts /usr/bin/chromium from Debian's chromium
package (`make test` installs it when it is missing). This machine's network is closed, so
Chromium runs headless with its background networking off (else its connections to Google's
hosts are refused, many at a time) and, as root, without its sandbox. Each launch gets a
fresh, empty profile: Playwright makes a new --user-data-dir in the temp folder for every
launch and removes it when the browser closes (it refuses one passed in `args`).

Nothing here depends on how the tests were started: the driver is stopped by closing its
pipe, never by a signal, which a child may inherit ignored; when it does not go, it and the
processes it started are killed, and every one is waited for.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
# How long a step may take before the tests give up on it (milliseconds, as Playwright counts).
LAUNCH_TIMEOUT_MS = 60_000
ACTION_TIMEOUT_MS = 15_000
# How long the driver may take to exit once its pipe is closed, before it is killed.
STOP_SECONDS = 20.0
SCREENSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ChromiumMissing(RuntimeError):
    """/usr/bin/chromium is not installed."""


@dataclass(frozen=True)
class Proc:
    """A process, told apart from a later one with the same pid by its start time."""

    pid: int
    started: int

    @staticmethod
    def stat(pid: int) -> tuple[str, int, int] | None:
        """State, parent pid and start time from /proc/PID/stat; None when it is gone."""
        try:
            text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        fields = text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
        return fields[0], int(fields[1]), int(fields[19])

    def running(self) -> bool:
        """Still there: a zombie is not (it has ended and waits to be reaped)."""
        stat = Proc.stat(self.pid)
        return stat is not None and stat[2] == self.started and stat[0] != "Z"

    def cmdline(self) -> list[str]:
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return []
        return raw.decode(errors="replace").split("\0")[:-1] if self.running() else []

    def kill(self) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def descendants(pid: int | None = None) -> list[Proc]:
    """The processes below `pid` (this one by default), read from /proc."""
    children: dict[int, list[Proc]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := Proc.stat(int(entry.name))) and stat[0] != "Z":
            children.setdefault(stat[1], []).append(Proc(int(entry.name), stat[2]))
    found, todo = [], [os.getpid() if pid is None else pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def _wait_gone(procs: list[Proc], timeout: float) -> list[Proc]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [proc for proc in procs if proc.running()]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _reap(procs: list[Proc], timeout: float) -> None:
    """Wait for the processes to end, killing those still there after `timeout`."""
    for proc in _wait_gone(procs, timeout):
        proc.kill()
    _wait_gone(procs, 10)


@contextlib.contextmanager
def playwright_driver(stop_seconds: float = STOP_SECONDS) -> Iterator[Playwright]:
    """Playwright's driver, started for the block and stopped after it: its pipe is closed
    and it exits; if it has not within `stop_seconds`, it and what it started are killed."""
    before = set(descendants())
    playwright = sync_playwright().start()
    drivers = [p for p in descendants() if p not in before and "run-driver" in p.cmdline()]
    try:
        yield playwright
    finally:
        tree = list(drivers)
        for driver in drivers:
            tree += descendants(driver.pid)
        # stop() returns once the driver has exited; the watchdog makes sure it does.
        watchdog = threading.Timer(stop_seconds, _reap, args=(tree, 0))
        watchdog.daemon = True
        watchdog.start()
        try:
            playwright.stop()
        finally:
            watchdog.cancel()
            _reap(tree, timeout=stop_seconds)


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with the flags this closed network needs."""
    if not os.access(CHROMIUM, os.X_OK):
        raise ChromiumMissing(
            f"{CHROMIUM} is not installed: `make test` installs Debian's chromium and "
            "chromium-driver (apt-get install chromium chromium-driver)"
        )
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=list(CHROMIUM_FLAGS),
        headless=True,
        timeout=LAUNCH_TIMEOUT_MS,
    )


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A running Chromium and its own driver, both gone after the block."""
    with playwright_driver() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):  # the driver may be gone already
                browser.close()


@contextlib.contextmanager
def new_page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own (no cookies or storage shared), closed after."""
    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str, folder: Path = SCREENSHOTS) -> Path:
    """The whole page as `folder/NAME.png` (docs/screenshots by default, for the README)."""
    if not SCREENSHOT_NAME.fullmatch(name):
        raise ValueError(f"screenshot name {name!r}: letters, digits, '_', '-', '.' only")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
