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
    executed: list[str] = []

    class Conn:
        def execute(self, sql, params=()):
            executed.append(sql)

            class Result:
                @staticmethod
                def fetchone():
                    return ("4",) if params == ("random_page_cost",) else ("1.1",)

            return Result()

    embedded_pg._tune(Conn())
    assert "ALTER SYSTEM SET random_page_cost = '1.1'" in executed
    assert executed[-1] == "SELECT pg_reload_conf()"
