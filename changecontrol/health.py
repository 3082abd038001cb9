"""Dependency checks for /healthz: the database and the Celery broker."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.db import connection

from core import fsbroker


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the detail goes to the log
        return f"down: {type(exc).__name__}"
    return "ok"


def broker_status(broker_url: str | None = None, options: dict | None = None) -> str:
    url = broker_url if broker_url is not None else settings.CELERY_BROKER_URL
    options = options if options is not None else settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if url.startswith(("filesystem://", f"{fsbroker.ALIAS}://")):
        folder = Path(options["data_folder_in"])
        if folder.is_dir() and os.access(folder, os.W_OK):
            return "ok"
        return "down: queue folder missing or not writable"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"
