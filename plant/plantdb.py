"""An environment's own database (the MES database the pipeline's backup adapter names), for the
computed evidence: copy, scratch copies, scripts in one transaction, checksums, masking.

Two kinds: SQLite (a file path) and PostgreSQL (a DSN). Both are real: PostgreSQL goes through
pg_dump/pg_restore and psycopg, SQLite through its backup API.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class PlantDbError(Exception):
    """The database is not configured or an operation on it failed; the message says which."""


def sqlite_statements(script: str) -> list[str]:
    """Split a script at the semicolons that end complete statements (not those inside strings or
    triggers), as sqlite3.complete_statement judges them."""
    statements, start = [], 0
    for index, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : index + 1]):
            statement = script[start : index + 1].strip()
            if statement.strip(";").strip():
                statements.append(statement)
            start = index + 1
    rest = script[start:].strip()
    if rest:
        statements.append(rest)
    return statements


def _run(argv: list[str], timeout: int = 3600) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    except FileNotFoundError:
        raise PlantDbError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise PlantDbError(f"{argv[0]} did not finish within {timeout} s") from None
    if done.returncode:
        raise PlantDbError(f"{argv[0]} failed: {done.stderr.strip()}")
    return done


# What a table's hash is made of. 1: every row read into memory, sorted, hashed as JSON. 2: rows
# streamed in primary-key order (else a whole-row order) and folded into SHA-256 as they arrive —
# PostgreSQL's COPY text output (or each row's MD5 for a table without a key), SQLite's rows as
# Python literals. Hashes of different formats are not comparable; row counts and the schema are.
CHECKSUM_FORMAT = 2
# What the schema digest is made of (columns and indexes; SQLite: sqlite_master). Unchanged since
# the first fingerprints, so fingerprints recorded before this field existed count as format 1; bump
# it when the digest changes, and drift stops comparing a fingerprint with one of another format.
SCHEMA_FORMAT = 1
BATCH_ROWS = 5000  # SQLite rows fetched at a time: memory stays flat whatever the table's size


@dataclass(frozen=True)
class Structure:
    """The database's shape without its data: the schema digest and the tables' names."""

    schema: str
    tables: list[str]


@dataclass(frozen=True)
class Checksum:
    schema: str
    data: str
    tables: dict  # name → {"rows": n, "hash": sha256}
    format: int = CHECKSUM_FORMAT

    def as_dict(self) -> dict:
        return {"schema": self.schema, "data": self.data, "tables": self.tables, "format": self.format}

    def differences(self, other: Checksum) -> list[str]:
        """What changed from self to other, in words a reviewer reads."""
        lines = []
        if self.schema != other.schema:
            added = sorted(set(other.tables) - set(self.tables))
            dropped = sorted(set(self.tables) - set(other.tables))
            lines += [f"table {name} appeared" for name in added] + [
                f"table {name} disappeared" for name in dropped
            ]
            if not added and not dropped:
                lines.append("the schema changed (columns, indexes or definitions)")
        comparable = self.format == other.format
        for name in sorted(set(self.tables) & set(other.tables)):
            a, b = self.tables[name], other.tables[name]
            if a["rows"] != b["rows"]:
                lines.append(f"{name}: {a['rows']} → {b['rows']} rows")
            elif comparable and a["hash"] != b["hash"]:
                lines.append(f"{name}: same {a['rows']} rows, different content")
        if not comparable:
            lines.append(
                f"contents not compared: checksum format {self.format} and {other.format} hash rows differently"
            )
        return lines


def quote(name: str) -> str:
    """An identifier (a table or column name from the catalog or a validated masking rule), quoted."""
    return '"' + str(name).replace('"', '""') + '"'


def _digest(rows) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, default=str, sort_keys=True).encode())
    return digest.hexdigest()


def _tables_digest(tables: dict) -> str:
    return _digest(sorted((name, table["hash"]) for name, table in tables.items()))


# A value's text depends on the session (dates, time zones, floats, bytea, money, encoding): pinned
# for the checksum's transaction, so equal data gives equal text whatever the database's defaults.
_PINNED_OUTPUT = (
    "SELECT set_config('DateStyle', 'ISO, MDY', true), set_config('IntervalStyle', 'postgres', true), "
    "set_config('TimeZone', 'UTC', true), set_config('extra_float_digits', '1', true), "
    "set_config('bytea_output', 'hex', true), set_config('lc_monetary', 'C', true), "
    "set_config('client_encoding', 'UTF8', true)"
)


def _plain(rows) -> list[list]:
    """Rows as JSON values (a CheckRun's result keeps them): numbers and text as they are, the rest as text."""
    return [[v if v is None or isinstance(v, int | float | str) else str(v) for v in row] for row in rows]


def _recorded(rows) -> list[tuple]:
    """The messages query's rows: (key, interface, payload) each, as text."""
    if any(len(row) < 3 for row in rows):
        raise PlantDbError(
            "the replay's messages query must return key, interface and payload (three columns)"
        )
    return [tuple("" if v is None else str(v) for v in row[:3]) for row in rows]


# Replayed statements name a message's parts :key, :interface, :payload (SQLite's style); PostgreSQL's
# driver takes %(key)s, so a literal % is doubled first.
_PARAM = re.compile(r"(?<!:):(key|interface|payload)\b")


class PlantDatabase:
    kind = ""

    def __init__(self, target: str):
        self.target = target

    # implemented per kind
    def copy_into(self, other: PlantDatabase) -> int: ...
    def run_script(self, script: str) -> None: ...
    def checksum(self) -> Checksum: ...
    def structure(self) -> Structure: ...
    def apply_masks(self, rules) -> dict: ...
    def size(self) -> int: ...
    def rows(self, query: str) -> list[list]: ...
    def replay(self, messages: str, statements: list[str], output: str) -> list[dict]: ...

    @contextlib.contextmanager
    def scratch(self) -> Iterator[PlantDatabase]: ...


class SqliteDatabase(PlantDatabase):
    kind = "sqlite"
    VERIFY_METHOD = "PRAGMA integrity_check"

    def _connect(self) -> sqlite3.Connection:
        if not Path(self.target).exists():
            raise PlantDbError(f"database {self.target} does not exist")
        connection = sqlite3.connect(self.target, isolation_level=None)
        connection.create_function(
            "pcc_hash",
            1,
            lambda v: None if v is None else hashlib.sha256(str(v).encode()).hexdigest()[:16],
            deterministic=True,
        )
        return connection

    def size(self) -> int:
        return Path(self.target).stat().st_size

    def copy_into(self, other: PlantDatabase) -> int:
        if not isinstance(other, SqliteDatabase):
            raise PlantDbError("a SQLite database copies into SQLite only")
        if not Path(self.target).exists():  # sqlite3.connect would create an empty one and copy that
            raise PlantDbError(f"database {self.target} does not exist")
        src, dst = sqlite3.connect(self.target), sqlite3.connect(other.target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return other.size()

    def verify_backup(self) -> None:
        """A copy is usable: not empty, and SQLite's integrity check says ok."""
        path = Path(self.target)
        if not path.exists() or path.stat().st_size == 0:
            raise PlantDbError(f"{path} is empty")
        try:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = connection.execute("PRAGMA integrity_check").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise PlantDbError(f"{self.VERIFY_METHOD} could not read it: {exc}") from None
        if rows != [("ok",)]:
            raise PlantDbError(f"{self.VERIFY_METHOD}: " + "; ".join(str(r[0]) for r in rows[:5]))

    def first_row(self, query: str, timeout: float) -> tuple | None:
        """The first row of `query`, in a transaction that is rolled back, stopped after `timeout` s."""
        connection = self._connect()
        deadline = time.monotonic() + timeout
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            connection.execute("BEGIN")
            try:
                rows = connection.execute(query).fetchall()
            finally:
                connection.execute("ROLLBACK")
        except sqlite3.Error as exc:
            late = time.monotonic() > deadline
            raise PlantDbError(f"timed out after {timeout} s" if late else str(exc)) from None
        finally:
            connection.close()
        return tuple(rows[0]) if rows else None

    def run_script(self, script: str) -> None:
        connection = self._connect()
        try:
            connection.execute("BEGIN")
            for statement in sqlite_statements(script):
                connection.execute(statement)
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK")
            raise PlantDbError(str(exc)) from None
        finally:
            connection.close()

    def rows(self, query: str) -> list[list]:
        connection = self._connect()
        try:
            return _plain(connection.execute(query).fetchall())
        except sqlite3.Error as exc:
            raise PlantDbError(str(exc)) from None
        finally:
            connection.close()

    def replay(self, messages: str, statements: list[str], output: str) -> list[dict]:
        """Each recorded message in order (each in a savepoint of its own): its statements, then its
        output rows (or the error)."""
        connection = self._connect()
        try:
            try:
                recorded = _recorded(connection.execute(messages).fetchall())
            except sqlite3.Error as exc:
                raise PlantDbError(f"the messages query fails: {exc}") from None
            done = []
            for key, interface, payload in recorded:
                params = {"key": key, "interface": interface, "payload": payload}
                connection.execute("SAVEPOINT pcc_message")  # a message that fails leaves nothing behind
                try:
                    for statement in statements:
                        connection.execute(statement, params)
                    rows = _plain(connection.execute(output, params).fetchall())
                except sqlite3.Error as exc:
                    connection.execute("ROLLBACK TO pcc_message")
                    rows = [[f"error: {exc}"]]
                connection.execute("RELEASE pcc_message")
                done.append({"key": key, "interface": interface, "output": rows})
            return done
        finally:
            connection.close()

    @staticmethod
    def _structure(connection: sqlite3.Connection) -> Structure:
        schema = connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        names = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return Structure(_digest(schema), names)

    def structure(self) -> Structure:
        connection = self._connect()
        try:
            return self._structure(connection)
        except sqlite3.Error as exc:
            raise PlantDbError(str(exc)) from None
        finally:
            connection.close()

    @staticmethod
    def _table_hash(connection: sqlite3.Connection, name: str) -> dict:
        """The table's rows in primary-key order (else ordered by every column, its value's type and
        bytes breaking SQLite's ties: 1 = 1.0, and 'a' = 'A' in a NOCASE column), fetched BATCH_ROWS
        at a time and folded into SHA-256 as Python literals (repr tells 1, 1.0, '1' and b'1' apart,
        and escapes newlines, so one line is one row)."""
        info = connection.execute(f"PRAGMA table_info({quote(name)})").fetchall()
        key = [quote(row[1]) for row in sorted((row for row in info if row[5]), key=lambda row: row[5])]
        order = ", ".join(key or [f"{quote(row[1])} COLLATE BINARY, typeof({quote(row[1])})" for row in info])
        cursor = connection.execute(f"SELECT * FROM {quote(name)} ORDER BY {order}")  # noqa: S608
        digest, rows = hashlib.sha256(), 0
        while batch := cursor.fetchmany(BATCH_ROWS):
            rows += len(batch)
            digest.update("".join([f"{row!r}\n" for row in batch]).encode())
        return {"rows": rows, "hash": digest.hexdigest()}

    def checksum(self) -> Checksum:
        connection = self._connect()
        try:
            connection.execute("BEGIN")  # one read transaction: every table as of the same moment
            try:
                structure = self._structure(connection)
                tables = {name: self._table_hash(connection, name) for name in structure.tables}
            finally:
                connection.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise PlantDbError(str(exc)) from None
        finally:
            connection.close()
        return Checksum(structure.schema, _tables_digest(tables), tables)

    def apply_masks(self, rules) -> dict:
        connection = self._connect()
        done = {}
        try:
            connection.execute("BEGIN")
            for rule in rules:
                sql = f"UPDATE {quote(rule.table)} SET {quote(rule.column)} = {rule.sql_expression('sqlite')}"  # noqa: S608
                count = connection.execute(sql, rule.params()).rowcount
                done[f"{rule.table}.{rule.column}"] = {"method": rule.method, "rows": count}
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK")
            raise PlantDbError(f"masking failed, nothing kept: {exc}") from None
        finally:
            connection.close()
        return done

    @contextlib.contextmanager
    def scratch(self) -> Iterator[SqliteDatabase]:
        folder = Path(tempfile.mkdtemp(prefix="pcc-scratch-"))
        try:
            copy = SqliteDatabase(str(folder / "scratch.sqlite3"))
            self.copy_into(copy)
            yield copy
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class PostgresDatabase(PlantDatabase):
    kind = "postgres"
    VERIFY_METHOD = "pg_restore --list"

    def _connect(self, dsn: str | None = None, autocommit: bool = False):
        import psycopg

        try:
            return psycopg.connect(dsn or self.target, autocommit=autocommit)
        except psycopg.Error as exc:
            raise PlantDbError(f"cannot connect: {exc}") from None

    def size(self) -> int:
        with self._connect() as connection:
            return connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    def dump_to(self, path: Path) -> int:
        """pg_dump in the custom format: what a backup and a copy start from."""
        _run(["pg_dump", "-Fc", "-f", str(path), self.target])
        return path.stat().st_size

    @classmethod
    def verify_dump(cls, path: Path) -> None:
        """A dump is usable: not empty, and pg_restore can read its table of contents."""
        if not path.exists() or path.stat().st_size == 0:
            raise PlantDbError(f"{path} is empty")
        _run(["pg_restore", "--list", str(path)], timeout=600)

    def first_row(self, query: str, timeout: float) -> tuple | None:
        """The first row of `query`, in a transaction that is rolled back, stopped after `timeout` s."""
        import psycopg

        connection = self._connect()
        try:
            connection.execute(
                "SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout * 1000)}ms",)
            )
            cursor = connection.execute(query)
            row = cursor.fetchone() if cursor.description else None
        except psycopg.Error as exc:
            raise PlantDbError(str(exc).strip()) from None
        finally:
            connection.rollback()
            connection.close()
        return tuple(row) if row is not None else None

    def restore_from(self, path: Path) -> None:
        """pg_restore in one transaction, replacing what is there."""
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "-d",
                self.target,
                str(path),
            ]
        )

    def copy_into(self, other: PlantDatabase) -> int:
        if not isinstance(other, PostgresDatabase):
            raise PlantDbError("a PostgreSQL database copies into PostgreSQL only")
        with tempfile.TemporaryDirectory(prefix="pcc-copy-") as folder:
            dump = Path(folder) / "copy.dump"
            size = self.dump_to(dump)
            other.restore_from(dump)
            return size

    def run_script(self, script: str) -> None:
        import psycopg

        try:
            with self._connect() as connection:  # one transaction; rolled back on error
                connection.execute(script)
        except psycopg.Error as exc:
            raise PlantDbError(str(exc).strip()) from None

    def rows(self, query: str) -> list[list]:
        import psycopg

        try:
            with self._connect() as connection:
                return _plain(connection.execute(query).fetchall())
        except psycopg.Error as exc:
            raise PlantDbError(str(exc).strip()) from None

    def replay(self, messages: str, statements: list[str], output: str) -> list[dict]:
        """Each recorded message in order (each in its own transaction): its statements, then its
        output rows (or the error)."""
        import psycopg

        def bound(sql: str) -> str:
            return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))

        statements, output = [bound(s) for s in statements], bound(output)
        with self._connect(autocommit=True) as connection:
            try:
                recorded = _recorded(connection.execute(messages).fetchall())
            except psycopg.Error as exc:
                raise PlantDbError(f"the messages query fails: {str(exc).strip()}") from None
            done = []
            for key, interface, payload in recorded:
                params = {"key": key, "interface": interface, "payload": payload}
                try:
                    with connection.transaction():
                        for statement in statements:
                            connection.execute(statement, params)
                        rows = _plain(connection.execute(output, params).fetchall())
                except psycopg.Error as exc:
                    rows = [[f"error: {str(exc).strip()}"]]
                done.append({"key": key, "interface": interface, "output": rows})
            return done

    @staticmethod
    def _structure(connection) -> Structure:
        schema = connection.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM "
            "information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        indexes = connection.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
        ).fetchall()
        names = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return Structure(_digest([*schema, *indexes]), names)

    def structure(self) -> Structure:
        import psycopg

        try:
            with self._connect() as connection:
                connection.execute(_PINNED_OUTPUT)  # column defaults are written out as text too
                structure = self._structure(connection)
                connection.rollback()
                return structure
        except psycopg.Error as exc:
            raise PlantDbError(str(exc).strip()) from None

    @staticmethod
    def _keys(connection) -> dict[str, str]:
        """Each public table's primary key as an ORDER BY, text columns in the "C" collation (two
        databases with different collations order their rows alike)."""
        keys: dict[str, list[str]] = {}
        for table, column, collatable in connection.execute(
            "SELECT c.relname, a.attname, a.attcollation <> 0 FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
            "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            "WHERE i.indisprimary ORDER BY c.relname, k.position"
        ):
            keys.setdefault(table, []).append(quote(column) + (' COLLATE "C"' if collatable else ""))
        return {table: ", ".join(columns) for table, columns in keys.items()}

    @staticmethod
    def _table_hash(connection, name: str, key: str) -> dict:
        """The table streamed through COPY (text format, settings pinned by checksum()) and folded
        into SHA-256 as it arrives: neither this process nor the server holds the table — the server
        reads it in key order through the primary key's index, or sorts within work_mem, spilling to
        disk. With a primary key: the rows as COPY writes them, in key order. Without one: each row's
        MD5 (of its text), in the order of those MD5s — a whole-row order that any column type has and
        that ties only identical rows (ordering by the columns would tie 1.0 and 1.00 in a numeric)."""
        table = f"public.{quote(name)}"
        if key:
            sql = f"COPY (SELECT * FROM {table} ORDER BY {key}) TO STDOUT"  # noqa: S608
        else:
            sql = (
                'COPY (SELECT pcc_md5 FROM (SELECT md5((pcc_row.*)::text) COLLATE "C" AS pcc_md5 '  # noqa: S608
                f"FROM {table} AS pcc_row) AS hashed ORDER BY pcc_md5) TO STDOUT"
            )
        digest = hashlib.sha256()
        with connection.cursor() as cursor:
            with cursor.copy(sql) as copy:
                for chunk in copy:
                    digest.update(chunk)
            return {"rows": cursor.rowcount, "hash": digest.hexdigest()}

    def checksum(self) -> Checksum:
        import psycopg

        try:
            with self._connect() as connection:
                # One snapshot for every table; writes nothing, so a standby can be checksummed too.
                connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                connection.read_only = True
                connection.execute(_PINNED_OUTPUT)
                structure = self._structure(connection)
                keys = self._keys(connection)
                tables = {
                    name: self._table_hash(connection, name, keys.get(name, "")) for name in structure.tables
                }
                connection.rollback()
        except psycopg.Error as exc:
            raise PlantDbError(str(exc).strip()) from None
        return Checksum(structure.schema, _tables_digest(tables), tables)

    def apply_masks(self, rules) -> dict:
        import psycopg

        done = {}
        try:
            with self._connect() as connection:
                for rule in rules:
                    sql = (
                        f"UPDATE {quote(rule.table)} SET {quote(rule.column)} = "  # noqa: S608
                        f"{rule.sql_expression('postgres')}"
                    )
                    cursor = connection.execute(sql, rule.params())
                    done[f"{rule.table}.{rule.column}"] = {"method": rule.method, "rows": cursor.rowcount}
        except psycopg.Error as exc:
            raise PlantDbError(f"masking failed, nothing kept: {str(exc).strip()}") from None
        return done

    def _admin_dsn(self) -> tuple[str, str]:
        parts = urlsplit(self.target)
        return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")

    @contextlib.contextmanager
    def scratch(self) -> Iterator[PostgresDatabase]:
        admin, _ = self._admin_dsn()
        name = f"pcc_scratch_{uuid.uuid4().hex[:12]}"
        with self._connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(self.target)
        copy = PostgresDatabase(urlunsplit(parts._replace(path=f"/{name}")))
        try:
            self.copy_into(copy)
            yield copy
        finally:
            with self._connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_from_url(url: str) -> PlantDatabase:
    """sqlite:///path or postgres://… (the SQL apply adapter's setting)."""
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url.removeprefix("sqlite:///"))
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresDatabase(url)
    raise PlantDbError(f"unsupported database URL {url!r}; use sqlite:///path or postgres://…")


def database_of(environment) -> PlantDatabase:
    """The environment's database, from its pipeline's backup adapter."""
    spec = (environment.pipeline or {}).get("backup") or {}
    if spec.get("adapter") == "sqlite" and spec.get("database"):
        return SqliteDatabase(spec["database"])
    if spec.get("adapter") == "postgres" and spec.get("dsn"):
        return PostgresDatabase(spec["dsn"])
    raise PlantDbError(
        f"{environment} has no database configured (its pipeline names no sqlite or postgres backup adapter)."
    )


def has_database(environment) -> bool:
    try:
        database_of(environment)
    except PlantDbError:
        return False
    return True
