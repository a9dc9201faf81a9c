"""Running the intake (`tfq serve`): uvicorn with one app, or several worker processes
that each build their own app from TFQ_* and share their metrics through files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import uvicorn
from fastapi import FastAPI

from producers.http.app import MULTIPROC_ENV, create_app
from worker.logs import configure_logging
from worker.settings import Settings, get_settings


def settings_environment(settings: Settings) -> dict[str, str]:
    """`settings` as TFQ_* variables, for worker processes that build their own app."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"TFQ_{name.upper()}"] = text
    return env


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker process (`factory=True`): TFQ_* settings."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)


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
        uvicorn.run(create_app(settings), **options)
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
