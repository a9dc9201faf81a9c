"""The sandbox's aiohttp application: API routes, transport-level faults, control routes.

Run it with `web.AppRunner(app, handler_cancellation=False)` (see `ops.sandbox.server`): a
handler must never be cancelled half-way when the client disconnects, because a real server
commits the invoice even if the caller timed out. The latency + commit path is also wrapped
in `asyncio.shield`, so the commit survives even a runner that does cancel handlers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ops.sandbox.api import (
    API_ENDPOINTS,
    INVOICING_ENDPOINTS,
    QUERY_ENDPOINTS,
    Reply,
    error_body,
)
from ops.sandbox.engine import Admission, Sandbox

API_PREFIX = "/app/api/v2/"
SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
TASKS_KEY = web.AppKey("tasks", set)  # strong refs to shielded commit tasks

log = logging.getLogger("ops.sandbox")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What an expired PDF link answers: the file is gone (the real links die the next day).
HTML_PDF_GONE = "<html><body><h1>404</h1><p>El archivo solicitado no existe.</p></body></html>"


def one_page_pdf(text: str) -> bytes:
    """A valid one-page A4 PDF that prints `text` (ASCII): every invoice its own file."""
    safe = "".join(c for c in text if 32 <= ord(c) < 127 and c not in "()\\")
    stream = f"BT /F1 14 Tf 72 770 Td ({safe}) Tj ET".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]"
        b"/Resources<</Font<</F1 4 0 R>>>>/Contents 5 0 R>>",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
        b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _render(reply: Reply) -> web.Response:
    if isinstance(reply.body, str):
        return web.Response(
            status=reply.status, text=reply.body, content_type="text/html", headers=reply.headers
        )
    return web.Response(
        status=reply.status,
        body=json.dumps(reply.body).encode(),
        content_type="application/json",
        headers=reply.headers,
    )


def _internal_error(exc: BaseException) -> web.Response:
    log.exception("sandbox bug", exc_info=exc)
    body = error_body(["Error interno del sandbox. Reintente mas tarde."], "SANDBOX-500")
    return web.Response(status=500, body=json.dumps(body).encode(), content_type="application/json")


async def _deliver(request: web.Request, reply: Reply) -> web.StreamResponse:
    if reply.post == "drop":
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=200)  # never reaches the client: the socket is gone
    if reply.post == "hang":
        await asyncio.sleep(reply.hang_seconds)
    return _render(reply)


async def _commit_later(sandbox: Sandbox, admission: Admission, base_url: str) -> Reply:
    await asyncio.sleep(admission.latency_seconds)
    return sandbox.commit(admission, base_url)


def _invoicing_handler(endpoint: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        arrival = time.time()
        try:
            raw = await request.read()
            sandbox = request.app[SANDBOX_KEY]
            admitted = sandbox.admit(endpoint, raw, arrival)
            if isinstance(admitted, Reply):
                return _render(admitted)
            base_url = f"{request.scheme}://{request.host}"
            if admitted.latency_seconds > 0:
                task = asyncio.ensure_future(_commit_later(sandbox, admitted, base_url))
                tasks = request.app[TASKS_KEY]
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                reply = await asyncio.shield(task)
            else:
                reply = sandbox.commit(admitted, base_url)
            return await _deliver(request, reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _internal_error(exc)

    handler.__name__ = "api_" + endpoint.replace("/", "_")
    return handler


def _query_handler(endpoint: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        arrival = time.time()
        try:
            raw = await request.read()
            base_url = f"{request.scheme}://{request.host}"
            reply = request.app[SANDBOX_KEY].query(endpoint, raw, arrival, base_url)
            return await _deliver(request, reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _internal_error(exc)

    handler.__name__ = "api_" + endpoint.replace("/", "_")
    return handler


async def _unknown_api(request: web.Request) -> web.Response:
    tail = request.match_info.get("tail", "")
    if tail in API_ENDPOINTS:
        body = error_body([f"Metodo {request.method} no permitido: use POST."], "TFC-8405")
        status = 405
    else:
        body = error_body([f"El recurso {tail} no existe."], "TFC-8404")
        status = 404
    return web.json_response(body, status=status)


# --- control routes (no credentials) --------------------------------------------------------


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data).encode(), content_type="application/json"
    )


async def _read_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


async def health(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    return _json(
        {
            "status": "ok",
            "tenants": len(sandbox.tenants.tenants),
            "issued": len(sandbox.issued),
            **sandbox.config_json(),
        }
    )


async def ledger(request: web.Request) -> web.Response:
    return _json(request.app[SANDBOX_KEY].ledger())


async def get_faults(request: web.Request) -> web.Response:
    return _json(request.app[SANDBOX_KEY].faults.to_json())


async def post_faults(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        sandbox.faults.merge(await _read_object(request))
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(sandbox.faults.to_json())


async def get_config(request: web.Request) -> web.Response:
    return _json(request.app[SANDBOX_KEY].config_json())


async def post_config(request: web.Request) -> web.Response:
    try:
        data = await _read_object(request)
        return _json(request.app[SANDBOX_KEY].set_config(data))
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, status=400)


async def reset(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    sandbox.reset()
    return _json({"status": "reset", **sandbox.config_json()})


async def pdf(request: web.Request) -> web.Response:
    """An invoice's PDF at the link `nuevo`, `lotes` or `regenerar_pdf` gave, while the
    link lives; a 404 page after (links carry when they were given: `?t=`)."""
    try:
        given_at = float(request.query.get("t", ""))
    except ValueError:
        given_at = 0.0
    if not request.app[SANDBOX_KEY].pdf_link_alive(given_at, time.time()):
        return web.Response(status=404, text=HTML_PDF_GONE, content_type="text/html")
    name = request.match_info["name"].removesuffix(".pdf")
    return web.Response(body=one_page_pdf(f"Sandbox {name}"), content_type="application/pdf")


def create_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[SANDBOX_KEY] = sandbox
    app[TASKS_KEY] = set()
    for endpoint in INVOICING_ENDPOINTS:
        app.router.add_post(API_PREFIX + endpoint, _invoicing_handler(endpoint))
    for endpoint in QUERY_ENDPOINTS:
        app.router.add_post(API_PREFIX + endpoint, _query_handler(endpoint))
    app.router.add_route("*", API_PREFIX + "{tail:.*}", _unknown_api)
    app.router.add_get("/_sandbox/health", health)
    app.router.add_get("/_sandbox/ledger", ledger)
    app.router.add_get("/_sandbox/faults", get_faults)
    app.router.add_post("/_sandbox/faults", post_faults)
    app.router.add_get("/_sandbox/config", get_config)
    app.router.add_post("/_sandbox/config", post_config)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_get("/_sandbox/pdf/{name}", pdf)
    return app
