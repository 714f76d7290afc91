"""The embedded PostgreSQL is tuned for Billfold's workload when it starts."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from config import embedded_pg


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="a server of your own")
def test_the_embedded_server_plans_for_data_on_an_ssd_or_in_memory(db):
    embedded_pg.ensure_running()
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone()[0] == embedded_pg.SETTINGS["random_page_cost"]
        # so the small, hot tables are read by their keys: a foreign-key check of an asset
        cursor.execute(
            "EXPLAIN SELECT 1 FROM ONLY wallets_asset x WHERE code = %s FOR KEY SHARE OF x",
            ["USD"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan" in plan, plan


def test_settings_are_applied_only_where_they_differ():
    class Conn:
        def __init__(self, current: str):
            self.current = current
            self.executed: list[str] = []

        def execute(self, sql, params=()):
            self.executed.append(sql)
            current = self.current

            class Result:
                @staticmethod
                def fetchone():
                    return (current,)

            return Result()

    stale = Conn("4")
    embedded_pg._tune(stale)
    assert stale.executed[1:] == [
        "ALTER SYSTEM SET random_page_cost = '1.1'",
        "SELECT pg_reload_conf()",
    ]
    tuned = Conn("1.1")
    embedded_pg._tune(tuned)
    assert len(tuned.executed) == 1  # the read of the setting: no ALTER SYSTEM, no reload
