"""Running the intake (`tfq serve`): uvicorn with one app, or several worker processes
that each build their own app from TFQ_* and share their metrics through files. Each
app re-reads a changed tenants file (its `[[client]]` tokens) without a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI

from producers.http.app import MULTIPROC_ENV, create_app
from worker.logs import configure_logging
from worker.settings import Settings, get_settings
from worker.tenants_live import LiveTenants


def settings_environment(settings: Settings) -> dict[str, str]:
    """`settings` as TFQ_* variables, for worker processes that build their own app."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"TFQ_{name.upper()}"] = text
    return env


def watched_tenants(settings: Settings) -> LiveTenants | None:
    """The tenants file, re-read when it changes or on SIGHUP (None without one: the app
    says why). Under several workers uvicorn's supervisor owns SIGHUP (it restarts them);
    each worker's watcher still notices a new file."""
    if settings.tenants_file is None:
        return None
    live = LiveTenants(settings.tenants_file)
    live.current  # noqa: B018  (a bad file stops the start here)
    if threading.current_thread() is threading.main_thread():
        live.reload_on_sighup()
    live.watch()
    return live


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker process (`factory=True`): TFQ_* settings."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings, tenants=watched_tenants(settings))


def serve(host: str, port: int, settings: Settings | None = None, *, workers: int = 1) -> None:
    """Run the intake with uvicorn until interrupted; `workers` > 1 forks that many."""
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,  # our own line per request: no query strings, no tokens
        "server_header": False,
    }
    if workers <= 1:
        uvicorn.run(create_app(settings, tenants=watched_tenants(settings)), **options)
        return
    # Each worker process builds its own app from TFQ_* and counts into shared files.
    os.environ.update(settings_environment(settings))
    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="tfq-intake-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    try:
        uvicorn.run(
            "producers.http.serve:app_from_environment", factory=True, workers=workers, **options
        )
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
