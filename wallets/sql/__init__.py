"""The database functions of the wallets, and the loader every app's migrations install
their functions with.

Each ``<app>/sql/<name>.sql`` file holds one ``CREATE OR REPLACE FUNCTION`` statement, owned
by the app whose tables it writes or whose decision it is: ``wallets/sql`` locks accounts,
lists the grants that may pay (eligibility and burn-down order, as ``services/draws.py``),
posts a draw's ledger transaction (entries, grants, balances) and places, locks and captures
holds; ``plans/sql`` prices a quantity (as ``plans/pricing.py``); ``billing/sql`` decides an
event's charge and a hold's reservation and writes billing's rows, calling the wallets' and
plans' functions for everything they own.

``install`` makes the migration operation that runs the files: a migration names each file
it installs with the sha256 of the text it was written for. The operation always runs the
file as it is now, so a fresh database and an upgraded one end with the same functions
whichever migration last installed them; the recorded hashes are what
``tests/test_database_functions.py`` holds the files to: the newest hash recorded for a file
must be the file's, so a changed file without a migration that installs it fails CI.

Migrations billing 0012, 0013 and 0015, which introduced the charge path's functions, install
nothing: every function they name is replaced wholesale by the migrations that install these
files (wallets 0008, plans 0003, billing 0018), which run after them on every database, and no
migration between them calls the functions, so one body of each function stands in the tree.
Going back past the installing migrations leaves the functions in place (their reverse does
nothing): the code before them calls the same functions with the same arguments and answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib.resources import files as package_files
from typing import Any

from django.db import router
from django.db.migrations.operations.base import Operation


def sql_bytes(package: str, name: str) -> bytes:
    """The file ``<package>/<name>`` (e.g. ``wallets.sql``, ``accounts_lock.sql``)."""
    return package_files(package).joinpath(name).read_bytes()


def sql_text(package: str, name: str) -> str:
    return sql_bytes(package, name).decode("utf-8")


def sql_hash(package: str, name: str) -> str:
    """The sha256 of the file, as a migration records it (and ``sha256sum`` prints it)."""
    return hashlib.sha256(sql_bytes(package, name)).hexdigest()


class InstallFunctions(Operation):
    """Run ``drop`` (statements removing what the files no longer define, e.g. an old
    overload), then every file of ``package`` named in ``files`` (name → the sha256 this
    migration was written for). Backwards it does nothing: see the module docstring."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, package: str, files: dict[str, str], drop: Sequence[str] = ()) -> None:
        self.package = package
        self.files = dict(files)
        self.drop = list(drop)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            self.__class__.__qualname__,
            [self.package, self.files],
            {"drop": self.drop} if self.drop else {},
        )

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if not router.allow_migrate(schema_editor.connection.alias, app_label):
            return
        for statement in self.drop:
            schema_editor.execute(statement, params=None)
        for name in self.files:
            # params=None: the text is sent as it is (a ``%`` is not a placeholder)
            schema_editor.execute(sql_text(self.package, name), params=None)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        pass

    def describe(self) -> str:
        return f"Install the database functions {', '.join(self.files)} of {self.package}"


def install(package: str, files: dict[str, str], drop: Sequence[str] = ()) -> InstallFunctions:
    """The migration operation installing ``files`` of ``package`` (see ``InstallFunctions``)."""
    return InstallFunctions(package, files, drop)
