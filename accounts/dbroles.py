"""The least-privilege database role (PostgreSQL).

Two roles share one database: the *owner* owns every table and runs `manage.py migrate`
(DATABASE_OWNER_URL); the *app* role (DATABASE_URL, or DATABASE_APP_ROLE) owns nothing and is
granted, after every migrate, SELECT/INSERT/UPDATE/DELETE on the tables, except on the audit
table, where it may only INSERT and SELECT. Not owning the audit table, the app role cannot drop
its append-only triggers, and not being a superuser it cannot `SET session_replication_role` to
switch them off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dj_database_url
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

# Tables the app may only add to and read.
APPEND_ONLY_TABLES = ("audit_auditevent",)
# Tables the app only reads (migrate writes them).
READ_ONLY_TABLES = ("django_migrations",)
_CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


@contextmanager
def as_owner(alias: str = "default") -> Iterator[None]:
    """Inside the block the connection `alias` logs in as DATABASE_OWNER_URL's role: migrations,
    their data steps and every post_migrate handler run as the owner, whichever alias they use."""
    owner = dj_database_url.parse(settings.DATABASE_OWNER_URL)
    connection = connections[alias]
    saved = {key: connection.settings_dict.get(key) for key in _CREDENTIALS}
    connection.close()
    connection.settings_dict.update({key: owner.get(key) for key in _CREDENTIALS})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def app_role() -> str:
    role = settings.DATABASE_APP_ROLE
    if not role:
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL is set but the app's role is unknown: put the user in DATABASE_URL "
            "or set DATABASE_APP_ROLE"
        )
    return role


def _fetch(cursor, sql: str, params=()) -> list[tuple]:
    cursor.execute(sql, params)
    return cursor.fetchall()


def grant_statements(quote, database: str, schema: str, role: str) -> list[str]:
    """The grants, in order; each is idempotent. `quote` quotes an identifier."""
    r, s = quote(role), quote(schema)
    statements = [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        # Tables created by later migrations (run by this same owner) get the same.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ]
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {s}.{quote(table)} FROM {r}"
        )
        statements.append(f"GRANT SELECT, INSERT ON {s}.{quote(table)} TO {r}")
    for table in READ_ONLY_TABLES:
        statements.append(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.{quote(table)} FROM {r}")
    return statements


def grant_app_privileges(alias: str = "default", role: str | None = None) -> list[str]:
    """Grant the app role its privileges on the connection `alias` (logged in as the owner).

    Refuses, rather than grant, when the app role would still be able to bypass the audit
    table's protection: it is the owner itself, a superuser, or owns tables in the schema.
    Returns the statements run."""
    role = role or app_role()
    connection = connections[alias]
    if connection.vendor != "postgresql":
        raise ImproperlyConfigured("the database roles are a PostgreSQL feature")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        current, database, schema = _fetch(
            cursor, "SELECT current_user, current_database(), current_schema()"
        )[0]
        if role == current:
            raise ImproperlyConfigured(
                f"DATABASE_OWNER_URL and the app role are both {role!r}: the app must connect as a role "
                "that owns nothing (README.md, The database roles)"
            )
        found = _fetch(cursor, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
        if not found:
            raise ImproperlyConfigured(
                f"the app role {role!r} does not exist: CREATE ROLE {quote(role)} LOGIN PASSWORD '...'"
            )
        if found[0][0]:
            raise ImproperlyConfigured(
                f"the app role {role!r} is a superuser and could switch off the audit triggers: "
                f"ALTER ROLE {quote(role)} NOSUPERUSER"
            )
        owned = _fetch(
            cursor,
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND pg_get_userbyid(c.relowner) = %s ORDER BY 1 LIMIT 5",
            [schema, role],
        )
        if owned:
            raise ImproperlyConfigured(
                f"the app role {role!r} owns {', '.join(name for (name,) in owned)}: give them to the owner "
                f"(REASSIGN OWNED BY {quote(role)} TO {quote(current)}) and migrate again"
            )
        statements = grant_statements(quote, database, schema, role)
        for statement in statements:
            cursor.execute(statement)
    return statements


def role_problems(alias: str = "default") -> list[tuple[str, str]]:
    """What lets the connected role change the audit trail: [(check id, message)]."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return []
    problems = []
    with connection.cursor() as cursor:
        user, superuser = _fetch(
            cursor, "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        )[0]
        if superuser:
            problems.append(
                (
                    "accounts.W001",
                    f"The portal connects to PostgreSQL as {user!r}, a superuser: it can switch off the "
                    "audit table's append-only triggers. Connect as a role that owns nothing "
                    "(DATABASE_URL) and migrate with DATABASE_OWNER_URL.",
                )
            )
            return problems
        if (
            connection.pg_version >= 150000
            and _fetch(cursor, "SELECT has_parameter_privilege('session_replication_role', 'SET')")[0][0]
        ):
            problems.append(
                (
                    "accounts.W003",
                    f"The portal's database role {user!r} may SET session_replication_role, which switches "
                    f"off the audit table's triggers: REVOKE SET ON PARAMETER session_replication_role FROM {user}.",
                )
            )
        for table in APPEND_ONLY_TABLES:
            rows = _fetch(
                cursor,
                "SELECT pg_get_userbyid(c.relowner) = current_user, "
                "has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE') "
                "OR has_table_privilege(c.oid, 'TRUNCATE') "
                "FROM pg_class c WHERE c.oid = to_regclass(%s)",
                [table],
            )
            if rows and (rows[0][0] or rows[0][1]):
                problems.append(
                    (
                        "accounts.W002",
                        f"The portal's database role {user!r} "
                        + ("owns" if rows[0][0] else "may update, delete or truncate")
                        + f" {table}: run migrations with DATABASE_OWNER_URL so the app role gets INSERT "
                        "and SELECT only.",
                    )
                )
    return problems
