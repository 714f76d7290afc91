"""The database functions stand in the tree once each, in ``<app>/sql/*.sql``, and the
database holds exactly them (see ``wallets.sql``).

- Every file's function, created from the file in a scratch schema, has the same
  ``pg_get_functiondef`` (signature, result, language, volatility, body) as the function the
  migrations installed in the test database, and no other ``billfold_`` function exists.
- The newest migration installing a file recorded the sha256 of the file as it is: a file
  changed without a migration that installs it again fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from wallets import sql as loader
from wallets.sql import InstallFunctions, sql_hash, sql_text

SCRATCH = "billfold_sql_check"
FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class SqlFile:
    package: str  # e.g. "wallets.sql"
    name: str  # e.g. "accounts_lock.sql"

    @property
    def label(self) -> str:
        return f"{self.package.replace('.', '/')}/{self.name}"


def sql_files() -> list[SqlFile]:
    found = []
    for app in apps.get_app_configs():
        folder = Path(app.path) / "sql"
        for path in sorted(folder.glob("*.sql")):
            found.append(SqlFile(f"{app.name}.sql", path.name))
    return found


def function_name(file: SqlFile) -> str:
    names = FUNCTION.findall(sql_text(file.package, file.name))
    assert len(names) == 1, f"{file.label}: one CREATE OR REPLACE FUNCTION per file, not {names}"
    return names[0]


def test_the_files_are_found():
    labels = {file.label for file in sql_files()}
    assert {
        "wallets/sql/accounts_lock.sql",
        "wallets/sql/grants_to_draw.sql",
        "plans/sql/price_total.sql",
        "billing/sql/event_charge.sql",
    } <= labels


@pytest.mark.django_db
def test_each_installed_function_is_its_file():
    files = sql_files()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {SCRATCH}")
        cursor.execute(f"SET LOCAL search_path = {SCRATCH}, public")
        for file in files:
            cursor.execute(sql_text(file.package, file.name), None)
        cursor.execute(
            "SELECT n.nspname, p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname IN (%s, 'public') AND p.proname LIKE 'billfold\\_%%'",
            [SCRATCH],
        )
        rows = cursor.fetchall()
    installed: dict[str, list[str]] = {}
    from_files: dict[str, list[str]] = {}
    for schema, name, definition in rows:
        if schema == SCRATCH:
            from_files.setdefault(name, []).append(
                definition.replace(f"FUNCTION {SCRATCH}.", "FUNCTION public.", 1)
            )
        else:
            installed.setdefault(name, []).append(definition)
    names = [function_name(file) for file in files]
    assert len(names) == len(set(names)), "a function defined by two files"
    assert sorted(installed) == sorted(names), "functions installed without a file, or missing"
    for file, name in zip(files, names, strict=True):
        assert len(installed[name]) == 1, f"{name}: {len(installed[name])} overloads installed"
        assert installed[name] == from_files[name], (
            f"{name} as installed differs from {file.label}: add a migration installing it "
            "(wallets.sql.install), then re-create the test database (--create-db)"
        )


def recorded_hashes() -> dict[SqlFile, list[tuple[tuple[str, str], str]]]:
    """file → [(migration, the sha256 it recorded)] over every migration on disk."""
    migrations = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    found: dict[SqlFile, list[tuple[tuple[str, str], str]]] = {}
    for key, migration in migrations.items():
        for operation in migration.operations:
            if isinstance(operation, InstallFunctions):
                for name, digest in operation.files.items():
                    found.setdefault(SqlFile(operation.package, name), []).append((key, digest))
    return found


def hash_problems() -> list[str]:
    """What is wrong between the files and the hashes their migrations recorded."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    recorded = recorded_hashes()
    problems = []
    for file in sql_files():
        if file not in recorded:
            problems.append(f"{file.label}: no migration installs it")
    for file, installs in sorted(recorded.items(), key=lambda item: item[0].label):
        # the newest: the one every other installing migration runs before
        newest = [
            (key, digest)
            for key, digest in installs
            if all(other in graph.forwards_plan(key) for other, _ in installs)
        ]
        if len(newest) != 1:
            problems.append(f"{file.label}: its installing migrations are not in one line")
            continue
        key, digest = newest[0]
        try:
            current = sql_hash(file.package, file.name)
        except FileNotFoundError:
            problems.append(f"{file.label}: installed by {key} but missing")
            continue
        if digest != current:
            problems.append(
                f"{file.label} changed since {key[0]} {key[1]} installed it: add a migration "
                f"with wallets.sql.install recording {current}"
            )
    return problems


def test_the_newest_installing_migration_recorded_each_file():
    assert hash_problems() == []


def test_a_file_changed_without_a_migration_is_named(monkeypatch):
    real = loader.sql_bytes

    def changed(package: str, name: str) -> bytes:
        data = real(package, name)
        return data + b"-- changed\n" if name == "grants_to_draw.sql" else data

    monkeypatch.setattr(loader, "sql_bytes", changed)
    problems = hash_problems()
    assert len(problems) == 1
    assert problems[0].startswith("wallets/sql/grants_to_draw.sql changed since wallets")
