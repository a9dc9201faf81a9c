"""Signing callback deliveries per Standard Webhooks.

Headers: `webhook-id` (stable across retries), `webhook-timestamp` (epoch seconds),
`webhook-signature` = `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
where the secret is the base64 part of the tenant's `whsec_...` value. The secret is read
from the tenants file at send time and never stored with the delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def secret_bytes(secret: str) -> bytes:
    """The key of a `whsec_<base64>` secret (other secrets are used as their UTF-8 bytes)."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            pass
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` of `body` sent as `msg_id` at `timestamp` (epoch seconds)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()
