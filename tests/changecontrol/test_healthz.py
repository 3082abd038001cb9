"""GET /healthz: 200 with database, broker and version; 503 when a dependency is down."""

import pytest

from core.version import __version__


def test_healthz_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "version": __version__}
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_broker_down_file_system(client, db, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["broker"].startswith("down")


def test_healthz_broker_down_redis(client, db, settings):
    # Nothing listens on port 1: a Redis that is down, for real.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("down: ")


@pytest.mark.redis
def test_healthz_reports_the_real_redis(client, db, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert client.get("/healthz").json()["broker"] == "ok"


def test_healthz_database_down(tmp_path):
    """A real unreachable PostgreSQL (nothing listens on port 1), in a fresh process."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import django, json; django.setup();"
        "from django.test import RequestFactory; from changecontrol.views import healthz;"
        "r = healthz(RequestFactory().get('/healthz'));"
        "print(json.dumps({'status': r.status_code, 'body': json.loads(r.content)}))"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/none",
        "VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "changecontrol.settings",
    }
    env.pop("REDIS_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 503
    assert result["body"]["database"] == "down: OperationalError"
    assert result["body"]["broker"] == "ok"


def test_the_favicon_is_the_portals_mark(client):
    """Browsers ask for /favicon.ico whatever the page links: a redirect to the portal's mark, not a 404."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    page = client.get("/accounts/login/").content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
