"""Checksums of a plant database (R7, R8, C3) and the fingerprints drift compares (E8): streamed in
constant memory, equal for equal data whatever the order it was written in or the server's session
settings, a changed row named by its table; a fingerprint reads the schema only, and a fingerprint
recorded in another schema format is never reported as drift."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing

import pytest
from django.db import connection

from environments.models import Environment
from plant import evidence, plantdb
from plant.plantdb import Checksum, PlantDatabase, PostgresDatabase, SqliteDatabase

VENDORS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
POSTGRES_ONLY = pytest.mark.parametrize("new_db", [VENDORS[1]], indirect=True)

# The same plant data in both dialects: a keyed table, a table without a primary key (duplicate rows
# included), NULLs beside empty strings, bytes, unicode, floats.
SCHEMA = {
    "sqlite": (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, line TEXT NOT NULL, note TEXT, qty REAL);"
        "CREATE TABLE readings (sensor TEXT, value REAL, raw BLOB);"
        "CREATE TABLE lots (code TEXT PRIMARY KEY, grade TEXT);"
    ),
    "postgres": (
        "CREATE TABLE orders (id integer PRIMARY KEY, line text NOT NULL, note text, qty double precision);"
        "CREATE TABLE readings (sensor text, value double precision, raw bytea);"
        "CREATE TABLE lots (code text PRIMARY KEY, grade text);"
    ),
}
ORDERS = [
    (1, "Line 2", None, 40.5),
    (2, "Line 2", "", 0.1 + 0.2),
    (3, "Ligne 3 — Größe ✓", "tab\there\nnewline", -0.0),
    (4, "线 4", "quote ' and \\ backslash", 1e-300),
]
READINGS = [
    ("T1", 20.5, b"\x00\x01\xff"),
    ("T1", 20.5, b"\x00\x01\xff"),
    ("T2", None, b""),
    (None, 1.0, None),
]
LOTS = [("a-17", "A"), ("B-02", "B"), ("ä-03", None)]


def _insert(db: PlantDatabase, table: str, rows: list[tuple]) -> None:
    marks = ", ".join(["?" if db.kind == "sqlite" else "%s"] * len(rows[0]))
    sql = f"INSERT INTO {table} VALUES ({marks})"  # noqa: S608
    if db.kind == "sqlite":
        with closing(sqlite3.connect(db.target)) as conn, conn:
            conn.executemany(sql, rows)
    else:
        with db._connect() as conn, conn.cursor() as cursor:
            cursor.executemany(sql, rows)


def fill(db: PlantDatabase, *, reverse: bool = False) -> PlantDatabase:
    """The plant data, written forwards or backwards (the order rows were inserted in)."""
    db.run_script(SCHEMA[db.kind])
    for table, rows in (("orders", ORDERS), ("readings", READINGS), ("lots", LOTS)):
        _insert(db, table, rows[::-1] if reverse else rows)
    return db


def _server() -> str:
    settings_dict = connection.settings_dict
    return (
        f"postgresql://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}"
    )


@pytest.fixture(params=VENDORS)
def new_db(request, tmp_path):
    """Makes empty plant databases of the vendor under test (extra CREATE DATABASE options on
    PostgreSQL); drops them afterwards."""
    made: list[str] = []

    def make(options: str = "") -> PlantDatabase:
        if request.param == "sqlite":
            path = tmp_path / f"plant-{uuid.uuid4().hex[:8]}.sqlite3"
            sqlite3.connect(path).close()
            return SqliteDatabase(str(path))
        name = f"cc_plant_{uuid.uuid4().hex[:8]}_fp"
        with PostgresDatabase(f"{_server()}/postgres")._connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" {options}')
        made.append(name)
        return PostgresDatabase(f"{_server()}/{name}")

    make.kind = request.param
    yield make
    for name in made:
        with PostgresDatabase(f"{_server()}/postgres")._connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_equal_databases_have_equal_checksums_whatever_the_insertion_order(new_db):
    """R8, C3: the same rows written in another order (a keyed table, a table without a key with
    duplicate rows) give the same checksum: no difference to report."""
    a, b = fill(new_db()), fill(new_db(), reverse=True)
    first, second = a.checksum(), b.checksum()
    assert first == second and first.differences(second) == []
    assert first.format == plantdb.CHECKSUM_FORMAT == first.as_dict()["format"]
    assert {name: t["rows"] for name, t in first.tables.items()} == {"orders": 4, "readings": 4, "lots": 3}
    assert a.checksum() == first  # and the same again: nothing in it depends on the moment


@pytest.mark.parametrize(
    "change, table",
    [
        ("UPDATE orders SET note = 'x' WHERE id = 1", "orders"),  # NULL → text
        ("UPDATE orders SET note = NULL WHERE id = 2", "orders"),  # '' → NULL
        ("UPDATE orders SET qty = 0.30000000000000004 + 1e-16 WHERE id = 2", "orders"),  # the last digit
        ("UPDATE orders SET line = 'Ligne 3 — Grösse ✓' WHERE id = 3", "orders"),  # one unicode letter
        ("UPDATE readings SET raw = NULL WHERE sensor = 'T2'", "readings"),  # empty bytes → NULL
        ("DELETE FROM readings WHERE sensor IS NULL", "readings"),
        ("UPDATE lots SET grade = 'a' WHERE code = 'a-17'", "lots"),
    ],
)
def test_a_changed_row_is_named_by_its_table(new_db, change, table):
    """R8, C3: one changed value — NULL against an empty string, a float's last digit, one letter, one
    byte — changes that table's hash and no other's, and the difference names the table."""
    db = fill(new_db())
    before = db.checksum()
    db.run_script(change + ";")
    after = db.checksum()
    assert [name for name in before.tables if before.tables[name] != after.tables[name]] == [table]
    assert before.data != after.data and before.schema == after.schema
    differences = before.differences(after)
    assert len(differences) == 1 and differences[0].startswith(f"{table}: ")


def test_a_row_duplicated_in_a_table_without_a_key_is_a_difference(new_db):
    """A table without a primary key is hashed as a bag of rows: one duplicate more is a change."""
    db = fill(new_db())
    before = db.checksum()
    _insert(db, "readings", READINGS[:1])
    assert before.differences(db.checksum()) == ["readings: 4 → 5 rows"]


def test_sqlite_rows_that_compare_equal_hash_alike_whichever_came_first(tmp_path):
    """SQLite compares 1 with 1.0, and 'a' with 'A' in a NOCASE column, as equal: a table without a
    key holding such rows hashes alike whichever was written first."""
    rows = [(1, "a"), (1.0, "a"), (1, "A")]
    checksums = []
    for order, written in (("forwards", rows), ("backwards", rows[::-1])):
        db = SqliteDatabase(str(tmp_path / f"{order}.sqlite3"))
        sqlite3.connect(db.target).close()
        db.run_script("CREATE TABLE tags (n, label TEXT COLLATE NOCASE);")
        _insert(db, "tags", written)
        checksums.append(db.checksum())
    assert checksums[0] == checksums[1] and checksums[0].tables["tags"]["rows"] == 3


def test_the_schema_stays_covered(new_db):
    """R8: an index or a column is a schema change, even with the data unchanged."""
    db = fill(new_db())
    before = db.checksum()
    db.run_script("CREATE INDEX orders_line ON orders (line);")
    indexed = db.checksum()
    assert indexed.schema != before.schema and indexed.tables == before.tables
    assert before.differences(indexed) == ["the schema changed (columns, indexes or definitions)"]
    db.run_script("ALTER TABLE lots ADD COLUMN expires TEXT;")
    assert db.checksum().schema != indexed.schema
    assert db.structure().schema == db.checksum().schema


def test_checksums_of_different_formats_compare_rows_not_contents():
    """A checksum recorded in an older format (its hashes made another way) is not reported as
    changed content; row counts still compare."""
    tables = {"orders": {"rows": 4, "hash": "a"}, "lots": {"rows": 3, "hash": "b"}}
    old = Checksum("s", "d", tables, format=1)
    new = Checksum("s", "e", {"orders": {"rows": 4, "hash": "c"}, "lots": {"rows": 2, "hash": "b"}})
    assert old.differences(new) == [
        "lots: 3 → 2 rows",
        f"contents not compared: checksum format 1 and {plantdb.CHECKSUM_FORMAT} hash rows differently",
    ]


@POSTGRES_ONLY
def test_postgres_checksums_do_not_depend_on_the_session_or_the_collation(new_db):
    """The same data in a database with other defaults — time zone, date style, float digits, bytea
    output, an ICU collation that orders 'a-17' before 'B-02' — gives the same checksum: values'
    text is pinned for the checksum and text keys are ordered byte by byte."""
    plain = fill(new_db())
    other = new_db("TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'")
    with other._connect(autocommit=True) as conn:
        name = other.target.rsplit("/", 1)[1]
        for setting, value in [
            ("TimeZone", "Asia/Tokyo"),
            ("DateStyle", "SQL, DMY"),
            ("IntervalStyle", "sql_standard"),
            ("extra_float_digits", "0"),
            ("bytea_output", "escape"),
        ]:
            conn.execute(f"ALTER DATABASE \"{name}\" SET {setting} = '{value}'")
    fill(other, reverse=True)
    for db in (plain, other):
        db.run_script(
            "CREATE TABLE shifts (id int PRIMARY KEY, starts timestamptz, span interval, day date);"
            "INSERT INTO shifts VALUES (1, '2026-03-29 01:30+00', '1 day 02:00', '2026-03-29');"
        )
    assert plain.checksum() == other.checksum()


@POSTGRES_ONLY
def test_postgres_checksums_cover_any_column_type(new_db):
    """A table without a primary key whose columns have no ordering (json, point) is still hashed:
    its rows are ordered by their own hash."""
    db = new_db()
    db.run_script(
        "CREATE TABLE events (doc json, at point);"
        """INSERT INTO events VALUES ('{"a": 1}', '(1,2)'), ('{"a": 1}', '(1,2)'), (NULL, NULL);"""
    )
    before = db.checksum()
    assert before.tables["events"]["rows"] == 3
    db.run_script("""UPDATE events SET doc = '{"a": 2}' WHERE doc IS NULL;""")
    assert before.differences(db.checksum()) == ["events: same 3 rows, different content"]


# --- Fingerprints and drift (E8) ----------------------------------------------------------------------
@pytest.fixture
def tiers(site_a, new_db):
    """UAT and PROD of site_a on two databases with the same plant data."""
    dbs = {}
    for tier in ("UAT", "PROD"):
        dbs[tier] = fill(new_db())
        spec = (
            {"adapter": "sqlite", "database": dbs[tier].target}
            if dbs[tier].kind == "sqlite"
            else {"adapter": "postgres", "dsn": dbs[tier].target}
        )
        Environment.objects.filter(site=site_a, tier=tier).update(pipeline={"backup": spec})
    return dbs


def env(site, tier) -> Environment:
    return Environment.objects.get(site=site, tier=tier)


@pytest.mark.django_db
def test_a_fingerprint_reads_the_schema_not_the_data(site_a, tiers, monkeypatch):
    """E8: the fingerprint taken after every deployment needs the schema and the tables' names only:
    it never reads a row, so its cost does not grow with the plant's data."""

    def no_rows(*args, **kwargs):
        raise AssertionError("the fingerprint read a table's rows")

    monkeypatch.setattr(type(tiers["UAT"]), "_table_hash", no_rows)
    fingerprint = evidence.record_fingerprint(env(site_a, "UAT"))
    assert fingerprint["tables"] == ["lots", "orders", "readings"]
    assert fingerprint["schema"] == tiers["UAT"].structure().schema
    assert fingerprint["schema_format"] == plantdb.SCHEMA_FORMAT


@pytest.mark.django_db
def test_a_fingerprint_recorded_before_the_schema_format_still_compares(site_a, tiers):
    """E8: a fingerprint stored before fingerprints named their schema format (no "schema_format")
    holds the same schema digest: no false drift against a new one, and a real schema change is
    still drift."""
    evidence.record_fingerprint(env(site_a, "UAT"))
    evidence.record_fingerprint(env(site_a, "PROD"))
    stored = {k: v for k, v in env(site_a, "UAT").fingerprint.items() if k != "schema_format"}
    Environment.objects.filter(site=site_a, tier="UAT").update(fingerprint=stored)
    assert evidence.drift(env(site_a, "UAT"), env(site_a, "PROD")) == []
    tiers["PROD"].run_script("CREATE INDEX orders_line ON orders (line);")
    evidence.record_fingerprint(env(site_a, "PROD"))
    assert evidence.drift(env(site_a, "UAT"), env(site_a, "PROD")) == ["database schema differ"]


@pytest.mark.django_db
def test_a_fingerprint_in_another_schema_format_is_not_drift_until_recorded_again(site_a, tiers, monkeypatch):
    """E8: when the schema digest's format changes, a fingerprint of the old format is not compared
    with a new one (their digests differ whatever the schemas): no drift is reported, and none
    forever — once both are recorded in the new format, they compare again."""
    evidence.record_fingerprint(env(site_a, "UAT"))
    monkeypatch.setattr(evidence, "SCHEMA_FORMAT", plantdb.SCHEMA_FORMAT + 1)
    recorded = evidence.record_fingerprint(env(site_a, "PROD"))
    recorded["schema"] = "a digest made another way"
    Environment.objects.filter(site=site_a, tier="PROD").update(fingerprint=recorded)
    assert evidence.drift(env(site_a, "UAT"), env(site_a, "PROD")) == []
    tiers["PROD"].run_script("CREATE INDEX orders_line ON orders (line);")
    evidence.record_fingerprint(env(site_a, "PROD"))
    evidence.record_fingerprint(env(site_a, "UAT"))
    assert evidence.drift(env(site_a, "UAT"), env(site_a, "PROD")) == ["database schema differ"]
