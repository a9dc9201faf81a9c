"""The web console in a real browser (Debian's Chromium), against a live run: the
sandbox over HTTP, a worker and the intake. An operator logs in with the keyboard, watches
a batch reach 100 % as htmx refreshes it, and resumes a paused lane. The screenshots it
takes are the README's. Then a dead callback is replayed and delivered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ops.sandbox.server import SandboxProcess
from ops.testkit.browser import screenshot
from ops.testkit.examples import factura_b_jobs, load_example
from ops.testkit.harness import (
    WorkerProcess,
    data_dir_for,
    serving,
    unique_prefix,
    wait_until,
    worker_env,
)
from ops.testkit.webhook_receiver import running_receiver
from producers.client import InvoiceQueue
from producers.http.app import create_app
from tests.conftest import MONO_CUIT, RI_CUIT, TENANTS_FILE
from worker.invoice.rules import argentina_today
from worker.settings import Settings
from worker.store.callbacks import Callbacks
from worker.tenants import Tenants

OPERATOR, PASSWORD = "demo", "demo-password-please-change"  # the example tenants file's
WAIT_MS = 60_000


@pytest.fixture
def live_queue(redis_url: str) -> Iterator[InvoiceQueue]:
    prefix = unique_prefix("console-ui")
    # The worker's archive (worker_env puts it under data_dir_for(prefix)) is the intake's.
    settings = Settings(redis_url=redis_url, key_prefix=prefix, data_dir=data_dir_for(prefix))
    queue = InvoiceQueue(settings=settings, key_prefix=settings.key_prefix)
    yield queue
    keys = list(queue.redis.scan_iter(match=f"{settings.key_prefix}*", count=1000))
    if keys:
        queue.redis.unlink(*keys)


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/console/batches")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/batches$"))
    expect(page.get_by_label("Operator")).to_be_focused()  # autofocus: type at once
    page.keyboard.type(OPERATOR)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/batches$"))


def test_an_operator_watches_a_batch_finish_and_resumes_a_lane(
    page: Page, sandbox: SandboxProcess, live_queue: InvoiceQueue, tmp_path: Path
) -> None:
    queue = live_queue
    settings = queue.settings
    app = create_app(settings, queue=queue, tenants=Tenants.load(TENANTS_FILE))
    jobs = factura_b_jobs(RI_CUIT, 6, pdv=679, tag="UI")
    queue.submit_many(jobs, batch="nightly")
    queue.store.pause(MONO_CUIT, "checking the price list")  # a lane waiting for a person
    ticket = load_example("factura_c", argentina_today())
    ticket.pop("callback_url", None)
    queue.submit(ticket)
    env = worker_env(settings.redis_url, sandbox.api_url, TENANTS_FILE, prefix=settings.key_prefix)

    with serving(app) as url:
        page.goto(f"{url}/console/login")
        screenshot(page, "console-login")
        log_in(page, url)
        expect(page.get_by_role("link", name="nightly")).to_be_visible()

        with WorkerProcess(env, log_path=tmp_path / "worker.log"):
            page.get_by_role("link", name="nightly").click()
            expect(page.get_by_role("heading", name="Batch nightly")).to_be_visible()
            # htmx refreshes the page's live part; no reload.
            expect(page.locator("#live")).to_contain_text("6 of 6 done", timeout=WAIT_MS)
            expect(page.locator("#live")).to_contain_text("100.0 %")
            screenshot(page, "console-batch")

            # The charts count the issued invoices once the worker has archived them.
            page.get_by_role("link", name="Charts").click()
            for _ in range(120):
                if page.locator("#issued-total").inner_text() == "6":
                    break
                page.wait_for_timeout(250)
                page.reload()
            expect(page.locator("#issued-total")).to_have_text("6")
            screenshot(page, "console-charts")

        page.get_by_role("link", name="Lanes").click()
        row = page.get_by_role("row").filter(has_text=MONO_CUIT)
        expect(row).to_contain_text("checking the price list")
        screenshot(page, "console-lanes")
        row.get_by_role("button", name=f"Resume lane {MONO_CUIT}").click()
        expect(page).to_have_url(re.compile(r"/console/lanes$"))
        assert not queue.store.lane(MONO_CUIT).paused
        expect(page.get_by_role("row").filter(has_text=MONO_CUIT)).not_to_contain_text(
            "checking the price list"
        )

        page.get_by_role("link", name="Audit log").click()
        expect(page.get_by_role("row").filter(has_text="resume")).to_contain_text(MONO_CUIT)


def test_an_operator_replays_a_dead_callback_and_it_is_delivered(
    page: Page, sandbox: SandboxProcess, live_queue: InvoiceQueue, tmp_path: Path
) -> None:
    queue = live_queue
    settings = queue.settings
    tenants = Tenants.load(TENANTS_FILE)
    app = create_app(settings, queue=queue, tenants=tenants)
    callbacks = Callbacks(queue.store)
    env = worker_env(
        settings.redis_url, sandbox.api_url, TENANTS_FILE, prefix=settings.key_prefix,
        callbacks_allow_private=1,
    )  # fmt: skip
    with running_receiver(tenants) as receiver, serving(app) as url:
        data = {"job_id": "job-ui-cb", "cuit": RI_CUIT, "status": "issued"}
        delivery = callbacks.enqueue("invoice.issued", RI_CUIT, receiver.url, data)
        callbacks.record_attempt(delivery)
        callbacks.dead_letter(delivery, "HTTP 503 from the shop (it was down)")
        log_in(page, url)
        page.get_by_role("link", name="Callbacks").click()
        row = page.get_by_role("row").filter(has_text="job-ui-cb")
        expect(row).to_contain_text("HTTP 503 from the shop")
        screenshot(page, "console-callbacks")
        with WorkerProcess(env, log_path=tmp_path / "worker.log"):
            row.get_by_role("button", name=f"Replay delivery {delivery}").click()
            expect(page.get_by_role("row").filter(has_text="job-ui-cb")).to_have_count(0)
            assert wait_until(lambda: len(receiver.received) >= 1, 30), (
                tmp_path / "worker.log"
            ).read_text()[-3000:]
        (got,) = receiver.received
        assert got["body"]["data"]["job_id"] == "job-ui-cb"
        assert (callbacks.get(delivery) or {})["status"] == "delivered"
