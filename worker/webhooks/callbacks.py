"""Signed callback webhooks (Standard Webhooks) with retries, dead letters and replay.

Each event becomes a delivery record in Redis; deliveries due now are claimed by the
dispatcher and sent by Celery tasks on their own queue, so a slow receiver never delays
invoicing. Retries wait in a Redis sorted set, never as Celery countdowns. The body holds
the job's result, never a credential; the signing secret is read from the tenants file
at send time and never stored with the delivery.

Headers: `webhook-id` (stable across retries), `webhook-timestamp` (epoch seconds),
`webhook-signature` = `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
where the secret is the base64 part of the tenant's `whsec_...` value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from worker.errors import TfqError
from worker.settings import Settings
from worker.store.jobs import JobResult
from worker.store.keys import Keys
from worker.store.lanes import LaneStore
from worker.store.scripts import text
from worker.tenants import Tenants

log = logging.getLogger("tfq.callbacks")

EVENTS = ("invoice.issued", "invoice.rejected", "invoice.attention", "batch.completed")
VISIBILITY_SECONDS = 120.0  # default: a claimed delivery is taken again after this
RETENTION_SECONDS = 90 * 86400  # default: a delivered one is kept this long, like its job
MAX_RETRY_AFTER_SECONDS = 86400.0


class UnsafeCallbackURL(TfqError, ValueError):
    """The URL points at a private, loopback, link-local or otherwise internal address."""


# --- signing ------------------------------------------------------------------------------


def secret_bytes(secret: str) -> bytes:
    """The key of a `whsec_<base64>` secret (other secrets are used as their UTF-8 bytes)."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            pass
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# --- SSRF -----------------------------------------------------------------------------------


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return _internal(mapped)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_callback_url(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Refuse URLs that are not http(s) or that reach internal addresses (also via DNS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallbackURL("callback_url must be an http or https URL with a host")
    if allow_private:
        return
    host = parts.hostname
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        raise UnsafeCallbackURL("callback_url points at localhost")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if _internal(literal):
            raise UnsafeCallbackURL("callback_url points at an internal address")
        return
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise UnsafeCallbackURL("callback_url's host does not resolve") from None
    for info in infos:
        if _internal(ipaddress.ip_address(info[4][0])):
            raise UnsafeCallbackURL("callback_url's host resolves to an internal address")


class InternalPeerError(NewConnectionError):
    """The connection reached an internal address (DNS answered differently at connect time)."""


def _public_peer(conn: HTTPConnection, sock: socket.socket) -> socket.socket:
    """Check the address actually connected to, before a byte is sent: the URL check above
    resolves the name once, and a DNS answer that changes in between (rebinding) would
    otherwise carry the request inside."""
    peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
    if _internal(peer):
        sock.close()
        raise InternalPeerError(conn, "the receiver's address is internal")
    return sock


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _public_peer(self, super()._new_conn())


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _public_peer(self, super()._new_conn())


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """requests' adapter whose connections refuse internal peers."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


def _internal_peer(exc: requests.RequestException) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, InternalPeerError)


# --- the deliveries -------------------------------------------------------------------------


class Callbacks:
    """Delivery records in Redis: create, claim, settle, dead-letter, replay."""

    def __init__(
        self,
        store: LaneStore,
        visibility_seconds: float = VISIBILITY_SECONDS,
        retention_seconds: int = RETENTION_SECONDS,
    ):
        self.store = store
        self.r = store.r
        self.keys: Keys = store.keys
        self.visibility_seconds = visibility_seconds
        self.retention_seconds = retention_seconds

    def enqueue(
        self,
        event: str,
        cuit: str,
        url: str,
        data: dict[str, Any],
        *,
        delivery_id: str | None = None,
        outbox_entry: str = "",
    ) -> str:
        """A delivery of `event` with `data` to `url`; returns its id (the webhook-id).

        With a `delivery_id` (derived from an outbox entry) a second call for the same
        event creates nothing: publishing an event twice never delivers it twice. The
        delivery and the removal of its `outbox_entry` are one script.
        """
        delivery_id = delivery_id or f"msg_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"
        body = json.dumps(
            {"type": event, "timestamp": datetime.now(UTC).isoformat(), "data": data},
            separators=(",", ":"),
            default=str,
        )
        self.store.run_script("callback_new", delivery_id, event, cuit, url, body, outbox_entry)
        return delivery_id

    def claim_due(self, max_items: int = 200) -> list[str]:
        return [
            text(x)
            for x in self.store.run_script(
                "due_claim", "callbacks_due", max_items, self.visibility_seconds
            )
        ]

    def claim_events(self, max_items: int = 200) -> list[str]:
        """Outbox entries to publish (taken again after a while if not settled)."""
        return [
            text(x)
            for x in self.store.run_script(
                "due_claim", "outbox", max_items, self.visibility_seconds
            )
        ]

    def event_done(self, entry: str) -> None:
        self.r.zrem(self.keys.outbox, entry)

    def get(self, delivery_id: str) -> dict[str, str] | None:
        raw = self.r.hgetall(self.keys.callback(delivery_id))
        return {text(k): text(v) for k, v in raw.items()} if raw else None

    # Settling is conditional on the delivery still being pending (see callback_settle.lua):
    # each returns whether it applied.

    def delivered(self, delivery_id: str, status_code: int) -> bool:
        return self._settle(delivery_id, "delivered", status_code, self.retention_seconds)

    def retry(self, delivery_id: str, at: float, error: str) -> bool:
        return self._settle(delivery_id, "retry", error, at)

    def dead_letter(self, delivery_id: str, reason: str) -> bool:
        settled = self._settle(delivery_id, "dead", reason, 0)
        if settled:
            log.warning(
                "callback dead-lettered", extra={"delivery_id": delivery_id, "reason": reason}
            )
        return settled

    def _settle(self, delivery_id: str, outcome: str, detail: object, number: float) -> bool:
        return bool(self.store.run_script("callback_settle", delivery_id, outcome, detail, number))

    def dead(self, limit: int = 100) -> list[dict[str, str]]:
        ids = [text(x) for x in self.r.zrevrange(self.keys.callbacks_dead, 0, limit - 1)]
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def replay(self, delivery_id: str) -> bool:
        """Send a dead-lettered delivery again (same webhook-id, attempts start over)."""
        if not self.r.zrem(self.keys.callbacks_dead, delivery_id):
            return False
        self.r.hset(self.keys.callback(delivery_id), mapping={"status": "pending", "attempts": 0})
        self.r.zadd(self.keys.callbacks_due, {delivery_id: 0})
        return True

    def replay_all(self) -> int:
        return sum(self.replay(text(i)) for i in self.r.zrange(self.keys.callbacks_dead, 0, -1))

    def pending_count(self) -> int:
        return int(self.r.zcard(self.keys.callbacks_due))

    def dead_count(self) -> int:
        return int(self.r.zcard(self.keys.callbacks_dead))


ResultSink = Callable[[str, dict[str, Any]], None]


def publish_events(store: LaneStore, callbacks: Callbacks, store_result: ResultSink) -> int:
    """Turn outbox entries into results in Celery's backend and callback deliveries.

    Entries are written by the status scripts, atomically with the change they report,
    so no final job goes without its result and callback, whatever crashes in between.
    Publishing is idempotent: the delivery id is derived from the entry.
    """
    done = 0
    for entry in callbacks.claim_events():
        _publish_one(store, callbacks, store_result, entry)
        done += 1
    return done


def _publish_one(
    store: LaneStore, callbacks: Callbacks, store_result: ResultSink, entry: str
) -> None:
    event, _, rest = entry.partition("|")
    parts = rest.split("|")
    job_id = parts[-1] if event == "batch.completed" else parts[0]
    rec = store.job(job_id)
    if rec is None:  # expired long ago: nothing left to report
        callbacks.event_done(entry)
        return
    result = JobResult.from_record(rec).model_dump(mode="json")
    if event == "batch.completed":
        data: dict[str, Any] = {
            **(
                counts.as_dict()
                if (counts := store.batch_counts(parts[0]))
                else {"batch": parts[0]}
            ),
            "cuit": result["cuit"],
        }
    else:
        data = result
        if event == "invoice.attention":
            data["reason"] = rec.get("attention") or ""
        else:
            store_result(job_id, result)
    url = result["callback_url"]
    if not url:
        callbacks.event_done(entry)
        return
    callbacks.enqueue(
        event, result["cuit"], url, data, delivery_id=delivery_id_for(entry), outbox_entry=entry
    )


def delivery_id_for(entry: str) -> str:
    """The webhook-id of the delivery published from an outbox entry (stable, so idempotent)."""
    return "msg_" + hashlib.sha256(entry.encode()).hexdigest()[:24]


class Deliverer:
    """Sends one delivery: sign, POST without redirects, settle by the answer."""

    def __init__(self, callbacks: Callbacks, tenants: Tenants, settings: Settings):
        self.callbacks = callbacks
        self.tenants = tenants
        self.settings = settings
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "tfq-webhooks/1"
        if not settings.callbacks_allow_private:
            # Straight to the receiver, no proxy from the environment: the address checked
            # at connect time must be the receiver's own.
            self.session.trust_env = False
            for scheme in ("http://", "https://"):
                self.session.mount(scheme, PublicOnlyAdapter())

    def deliver(self, delivery_id: str) -> str:
        rec = self.callbacks.get(delivery_id)
        if rec is None or rec.get("status") != "pending":
            return "settled"
        tenant = self.tenants.tenant(rec["cuit"])
        if tenant is None or tenant.callback_secret is None:
            return self._dead(delivery_id, "the tenant has no callback_secret to sign with")
        try:
            check_callback_url(rec["url"], allow_private=self.settings.callbacks_allow_private)
        except UnsafeCallbackURL as exc:
            return self._dead(delivery_id, str(exc))
        body = rec["body"].encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                tenant.callback_secret.get_secret_value(), delivery_id, timestamp, body
            ),
        }
        attempts = int(rec.get("attempts") or 0) + 1
        self.callbacks.r.hset(self.callbacks.keys.callback(delivery_id), "attempts", attempts)
        retry_after: float | None = None
        try:
            response = self.session.post(
                rec["url"],
                data=body,
                headers=headers,
                timeout=(
                    min(5.0, self.settings.callback_timeout_seconds),
                    self.settings.callback_timeout_seconds,
                ),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            if _internal_peer(exc):
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
            retry_after = _retry_after(response.headers.get("Retry-After"))
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


def _retry_after(value: str | None) -> float | None:
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
