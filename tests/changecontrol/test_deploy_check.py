"""Production set-up: `check --deploy` is clean with .env.example's values; the compose file
runs the five services the way DESIGN.md describes; .env.example names only real settings."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (ROOT / "changecontrol" / "settings.py").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
COMPOSE_SOURCE = (ROOT / "docker-compose.yml").read_text()

# Names settings.py reads through the envconfig helpers.
SETTINGS_VARS = set(re.findall(r'env_(?:str|bool|int|list|url)\(\s*"([A-Z][A-Z0-9_]*)"', SETTINGS_SOURCE))
# Names docker compose interpolates (${NAME}, ${NAME:-x}, ${NAME:?x}); $$ is a literal dollar.
COMPOSE_VARS = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", COMPOSE_SOURCE))


def _env_example(*, commented: bool) -> dict[str, str]:
    """Assignments in .env.example; with `commented`, also the commented-out `# NAME=...` ones."""
    pattern = r"^#\s*([A-Z][A-Z0-9_]*)=(.*)$" if commented else r"^([A-Z][A-Z0-9_]*)=(.*)$"
    found = {name: value.strip() for name, value in re.findall(pattern, ENV_EXAMPLE, flags=re.M)}
    if commented:
        found.update(_env_example(commented=False))
    return found


def _production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    # Nothing from the caller's shell that settings read (a developer's DEBUG=1, say) leaks in,
    # nor DJANGO_* switches such as conftest's DJANGO_ALLOW_ASYNC_UNSAFE (async.E001 in deploy).
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTINGS_VARS and not name.startswith("DJANGO_")
    }
    env.update(
        {name: value for name, value in _env_example(commented=False).items() if name in SETTINGS_VARS}
    )
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "changecontrol.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "change.plant.example",
            "CSRF_TRUSTED_ORIGINS": "https://change.plant.example",
            "SITE_URL": "https://change.plant.example",
            "SECURE_PROXY_SSL_HEADER": "1",
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_COOKIES": "1",
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "SECURE_HSTS_PRELOAD": "1",
            "VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
        }
    )
    env.update(overrides)
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_the_production_environment(tmp_path):
    result = _manage(_production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert not [line for line in output.splitlines() if line.startswith("?: (security")], output


def test_the_placeholder_secret_key_in_env_example_is_refused(tmp_path):
    placeholder = _env_example(commented=False)["SECRET_KEY"]
    assert "REPLACE" in placeholder.upper()
    result = _manage(_production_env(tmp_path, SECRET_KEY=placeholder), "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters long" in result.stderr


def test_compose_runs_the_five_services():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load(COMPOSE_SOURCE)
    services = compose["services"]
    assert {"db", "redis", "web", "worker", "beat"} <= set(services)
    # One-shot services (migrate) run to completion and stay down; the rest are long-running.
    one_shot = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_shot == {"migrate"}
    for name, service in services.items():
        if name in one_shot:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    for name in ("web", "worker", "beat"):
        env_file = services[name].get("env_file")
        assert env_file == ".env" or env_file == [".env"], f"{name} does not read .env"
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://") and "@db:" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"].startswith("redis://redis:")
    # Exactly one beat: two schedulers send every periodic task twice (CELERY.md item 5).
    assert int(services["beat"].get("deploy", {}).get("replicas", 1)) <= 1
    assert "beat" in " ".join(services["beat"]["command"])
    # Migrations run as the owner role in their own service, which alone is given the owner's URL;
    # web starts after it. The portal's processes connect as the app role (README.md).
    assert "migrate --noinput" in " ".join(services["migrate"]["command"])
    assert "migrate" not in " ".join(services["web"]["command"])
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    owner_url = services["migrate"]["environment"]["DATABASE_OWNER_URL"]
    assert owner_url.startswith("postgres://changecontrol_owner:") and "@db:" in owner_url
    for name in ("web", "worker", "beat", "migrate"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://changecontrol_app:"), name
        if name != "migrate":
            assert "DATABASE_OWNER_URL" not in environment, name
    assert services["db"]["environment"]["POSTGRES_USER"] not in ("changecontrol_app", "changecontrol_owner")
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in services["db"]["volumes"]
    init = (ROOT / "docker" / "postgres-init" / "10-roles.sh").read_text()
    assert "CREATE ROLE changecontrol_owner" in init and "CREATE ROLE changecontrol_app" in init
    assert "SUPERUSER" in init and "NOSUPERUSER" in init
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_env_example_names_only_variables_the_settings_read():
    named = set(_env_example(commented=True))
    # POSTGRES_PASSWORD and the like are for docker compose itself, not for the portal.
    unknown = sorted(name for name in named - COMPOSE_VARS if f'"{name}"' not in SETTINGS_SOURCE)
    assert not unknown, f".env.example names variables settings.py does not read: {unknown}"
    assert not (COMPOSE_VARS - named), "docker-compose.yml interpolates variables .env.example lacks"


def test_env_example_documents_every_variable_the_settings_read():
    missing = sorted(SETTINGS_VARS - set(_env_example(commented=True)))
    assert not missing, f"settings.py reads variables .env.example does not mention: {missing}"
