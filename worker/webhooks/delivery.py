"""Sending callback deliveries: sign each, POST it without redirects, settle it by the answer.

Deliveries due now are claimed by the dispatcher and sent in groups by Celery tasks on
their own queue, so a slow receiver never delays invoicing; within a group they go side
by side, each claimed, retried and dead-lettered on its own. Retries wait in Redis (the callbacks
store's due set), never as Celery countdowns. The body holds the job's result, never a
credential.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter

from worker.settings import Settings
from worker.store.callbacks import CallbackField, Callbacks, DeliveryStatus
from worker.tenants_live import TenantLookup
from worker.webhooks.safe_http import (
    PublicOnlyAdapter,
    UnsafeCallbackURL,
    check_callback_url,
    refused_internal_peer,
)
from worker.webhooks.signing import sign

MAX_RETRY_AFTER_SECONDS = 86400.0
# Deliveries of one group sent at once. With the default callback timeout (connect 5 s, read
# 10 s), a group of 50 (the dispatcher's CALLBACK_GROUP_MAX) all stalling ends within
# 5 x 15 s, well inside the 120 s before its deliveries are claimed again.
GROUP_THREADS = 10
# Connections kept per receiver host: enough for every thread of every group of a callback
# worker, so the ones in use are reused, not dropped and made again.
POOL_MAXSIZE = 100

log = logging.getLogger("tfq.callbacks")


class Deliverer:
    """Sends one delivery: sign, POST without redirects, settle by the answer."""

    def __init__(self, callbacks: Callbacks, tenants: TenantLookup, settings: Settings):
        self.callbacks = callbacks
        self.tenants = tenants
        self.settings = settings
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "tfq-webhooks/1"
        adapter = HTTPAdapter
        if not settings.callbacks_allow_private:
            # Straight to the receiver, no proxy from the environment: the address checked
            # at connect time must be the receiver's own.
            self.session.trust_env = False
            adapter = PublicOnlyAdapter
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, adapter(pool_maxsize=POOL_MAXSIZE))

    def deliver_group(self, delivery_ids: list[str]) -> list[str]:
        """Attempt each delivery of a group, up to GROUP_THREADS at once, so a slow receiver
        holds up only the threads it takes; returns each one's outcome, in order (`error`
        when the attempt failed here: it is claimed again after the visibility timeout)."""
        if len(delivery_ids) <= 1:
            return [self._attempt(i) for i in delivery_ids]
        threads = min(len(delivery_ids), GROUP_THREADS)
        with ThreadPoolExecutor(threads, thread_name_prefix="tfq-callback") as pool:
            return list(pool.map(self._attempt, delivery_ids))

    def _attempt(self, delivery_id: str) -> str:
        try:
            return self.deliver(delivery_id)
        except Exception:  # the others of its group go on
            log.exception("callback delivery failed", extra={"delivery_id": delivery_id})
            return "error"

    def deliver(self, delivery_id: str) -> str:
        """Make one attempt; returns delivered, retry, dead or settled (nothing to do)."""
        rec = self.callbacks.get(delivery_id)
        if rec is None or rec.get(CallbackField.STATUS) != DeliveryStatus.PENDING:
            return "settled"
        url = rec[CallbackField.URL]
        tenant = self.tenants.tenant(rec[CallbackField.CUIT])
        if tenant is None or tenant.callback_secret is None:
            return self._dead(delivery_id, "the tenant has no callback_secret to sign with")
        try:
            check_callback_url(url, allow_private=self.settings.callbacks_allow_private)
        except UnsafeCallbackURL as exc:
            return self._dead(delivery_id, str(exc))
        body = rec[CallbackField.BODY].encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                tenant.callback_secret.get_secret_value(), delivery_id, timestamp, body
            ),
        }
        attempts = self.callbacks.record_attempt(delivery_id)
        if attempts is None:
            return "settled"  # a faster copy settled it meanwhile
        retry_after: float | None = None
        try:
            response = self.session.post(
                url,
                data=body,
                headers=headers,
                timeout=(
                    min(5.0, self.settings.callback_timeout_seconds),
                    self.settings.callback_timeout_seconds,
                ),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            if refused_internal_peer(exc):
                return self._dead(
                    delivery_id, "callback_url's host resolved to an internal address"
                )
            error = f"{type(exc).__name__} reaching the receiver"
        else:
            if 200 <= response.status_code < 300:
                self.callbacks.delivered(delivery_id, response.status_code)
                return "delivered"
            if response.status_code == 410:
                return self._dead(delivery_id, "410 Gone: the receiver asked us to stop")
            error = f"HTTP {response.status_code}"
            if 300 <= response.status_code < 400:
                error += ": redirects are not followed"
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        schedule = self.settings.callback_retry_seconds
        if attempts > len(schedule):
            return self._dead(delivery_id, f"gave up after {attempts} attempts: {error}")
        delay = schedule[attempts - 1] * self.settings.callback_retry_scale
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        if not self.callbacks.retry(delivery_id, time.time() + delay, error):
            return "settled"  # a faster copy settled it meanwhile
        return "retry"

    def _dead(self, delivery_id: str, reason: str) -> str:
        return "dead" if self.callbacks.dead_letter(delivery_id, reason) else "settled"


def _retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, when.timestamp() - time.time())
