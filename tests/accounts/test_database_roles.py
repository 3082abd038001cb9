"""The least-privilege database role (accounts/dbroles.py): migrations run as an owner role, the app
connects as a role that owns nothing, and that role cannot change the audit trail.

The PostgreSQL test makes its own two roles and database, with a random suffix (roles are
cluster-wide and another run may be going on beside this one), migrates as the owner in a
subprocess, exactly as `manage.py migrate` runs in production, and drops all three at the end."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def _url(user: str, password: str, database: str) -> str:
    default = settings.DATABASES["default"]
    host = default.get("HOST") or "127.0.0.1"
    port = default.get("PORT") or 5432
    return f"postgres://{user}:{quote(password)}@{host}:{port}/{database}"


def _connect(user: str, password: str, database: str, **kwargs):
    import psycopg

    default = settings.DATABASES["default"]
    return psycopg.connect(
        host=default.get("HOST") or "127.0.0.1",
        port=default.get("PORT") or 5432,
        user=user,
        password=password,
        dbname=database,
        **kwargs,
    )


def _superuser():
    default = settings.DATABASES["default"]
    return _connect(default["USER"], default.get("PASSWORD") or "", "postgres", autocommit=True)


@pytest.fixture
def two_roles(tmp_path):
    """An owner role, an app role and a database owned by the owner; all dropped afterwards."""
    suffix = secrets.token_hex(5)
    owner, app, database = f"pcc_owner_{suffix}", f"pcc_app_{suffix}", f"pcc_roles_{suffix}"
    owner_pw, app_pw = secrets.token_hex(16), secrets.token_hex(16)
    with _superuser() as admin:
        admin.execute(
            f"CREATE ROLE \"{owner}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{owner_pw}'"
        )
        admin.execute(f"CREATE ROLE \"{app}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{app_pw}'")
        admin.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
        admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
    env = {
        **{key: value for key, value in os.environ.items() if key not in ("DATABASE_APP_ROLE",)},
        "DATABASE_URL": _url(app, app_pw, database),
        "DATABASE_OWNER_URL": _url(owner, owner_pw, database),
        "VAR_DIR": str(tmp_path / "var"),
    }
    try:
        yield {"owner": owner, "app": app, "app_pw": app_pw, "database": database, "env": env}
    finally:
        with _superuser() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{app}"')
            admin.execute(f'DROP ROLE IF EXISTS "{owner}"')


# What the app role does through the portal's own code: an audit event (the chain head is locked and
# moved) and an ordinary write (a site, with its default calendar).
APP_SCRIPT = """
import json
from django.db import connection
from audit.models import AuditEvent, ChainHead
from audit.services import record, verify
from environments.models import Site
site = Site.objects.create(code="ROLE1", name="Plant under the app role", timezone="Europe/Berlin")
first = record("environments.site.created", site, reason="as the app role")
second = record("environments.site.updated", site, reason="again")
with connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    user = cursor.fetchone()[0]
print(json.dumps({"user": user, "seqs": [first.seq, second.seq], "events": AuditEvent.objects.count(),
                  "head": ChainHead.objects.get(id=1).seq, "ok": verify().ok,
                  "windows": site.windows.count()}))
"""


@pytest.mark.postgres
def test_the_app_role_cannot_change_the_audit_trail(two_roles):
    from psycopg import errors

    env, app, owner, database = two_roles["env"], two_roles["app"], two_roles["owner"], two_roles["database"]

    migrated = _manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"Granted the app role '{app}' its privileges." in migrated.stdout
    # The grants are idempotent: once more, by hand.
    again = _manage(env, "grant_app_privileges")
    assert again.returncode == 0, again.stderr
    assert (
        f'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON "public"."audit_auditevent" FROM "{app}"'
        in (again.stdout)
    )

    # Through the portal's own code, as the app role: audit events and an ordinary write work.
    shell = _manage(env, "shell", "-c", APP_SCRIPT)
    assert shell.returncode == 0, shell.stdout + shell.stderr
    done = json.loads(shell.stdout.strip().splitlines()[-1])
    assert done["user"] == app
    assert done["seqs"] == [done["head"] - 1, done["head"]] and done["events"] == done["head"]
    assert done["ok"] is True and done["windows"] > 0

    with _connect(app, two_roles["app_pw"], database, autocommit=True) as conn:
        # INSERT and SELECT on the audit table are granted; the rest is refused by privilege,
        # before any trigger is reached.
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == done["events"]
        assert conn.execute("SELECT has_table_privilege('audit_auditevent', 'INSERT')").fetchone()[0]
        for statement in (
            "UPDATE audit_auditevent SET reason = 'rewritten'",
            "DELETE FROM audit_auditevent",
            "TRUNCATE audit_auditevent",
            "SET session_replication_role = replica",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_event_no_update_delete ON audit_auditevent",
            "CREATE TABLE audit_shadow (id int)",
            "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
        assert conn.execute("SHOW session_replication_role").fetchone()[0] == "origin"
        # The app role owns nothing in the database; the owner owns every table.
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            [app],
        ).fetchone()[0]
        assert owned == 0
        owners = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        assert owners == {owner}
        # Ordinary tables are writable (the chain head too: every event moves it).
        conn.execute("UPDATE environments_site SET name = 'Renamed' WHERE code = 'ROLE1'")
        assert conn.execute("SELECT has_table_privilege('audit_chainhead', 'UPDATE')").fetchone()[0]

    # The deploy check, as the app role, is clean; nothing stayed half-written.
    checked = _manage(env, "check", "--deploy", "--database", "default")
    assert "accounts.W00" not in checked.stdout + checked.stderr
    with _connect(app, two_roles["app_pw"], database) as conn:
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == done["events"]


@pytest.mark.postgres
def test_migrate_refuses_an_app_role_that_is_the_owner(two_roles):
    env = {**two_roles["env"], "DATABASE_URL": two_roles["env"]["DATABASE_OWNER_URL"]}
    result = _manage(env, "migrate", "--noinput")
    assert result.returncode != 0
    assert "the app must connect as a role that owns nothing" in result.stderr


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_deploy_check_warns_about_a_superuser():
    from accounts.checks import database_role

    assert database_role(databases=None) == []
    # The test suite itself connects as a superuser.
    superuser = settings.DATABASES["default"]["USER"]
    with _superuser() as admin:
        is_super = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [superuser]).fetchone()[
            0
        ]
    if not is_super:
        pytest.skip("the test database role is not a superuser")
    warnings = database_role(databases=["default"])
    assert [warning.id for warning in warnings] == ["accounts.W001"]
    assert "superuser" in warnings[0].msg


def test_an_owner_url_for_another_database_is_refused(tmp_path):
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": "postgres://app@127.0.0.1:5432/one",
        "DATABASE_OWNER_URL": "postgres://owner@127.0.0.1:5432/other",
    }
    result = _manage(env, "check")
    assert result.returncode != 0
    assert "they must name the same database" in result.stderr
