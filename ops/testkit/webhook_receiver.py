"""A local webhook receiver that verifies every delivery with the `standardwebhooks` library."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from worker.tenants import Tenants


@dataclass
class Receiver:
    """`script` answers each request in turn: (status, headers, seconds to sleep first)."""

    secrets: dict[str, str]  # cuit -> whsec_ secret: each delivery is verified with its tenant's
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    @property
    def secret(self) -> str:
        return next(iter(self.secrets.values()))

    def answer(self) -> tuple[int, dict[str, str], float]:
        return self.script.pop(0) if self.script else (200, {}, 0.0)

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        try:
            cuit = json.loads(body)["data"]["cuit"]
            Webhook(self.secrets[cuit]).verify(body, headers)
        except (WebhookVerificationError, KeyError, ValueError):
            return False
        return True


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # A sender SIGKILLed mid-request leaves a half-open connection: do not wait forever.
        timeout = 10

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, sleep = receiver.answer()
            receiver.received.append(
                {
                    "headers": headers,
                    "body": json.loads(body),
                    "verified": receiver.verify(body, headers),
                    "raw": body,
                }
            )
            time.sleep(sleep)
            try:
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up (timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(tenants: Tenants) -> Iterator[Receiver]:
    secrets = {
        t.cuit: t.callback_secret.get_secret_value() for t in tenants.tenants if t.callback_secret
    }
    rec = Receiver(secrets)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    server.block_on_close = False
    rec.url = f"http://127.0.0.1:{server.server_port}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
