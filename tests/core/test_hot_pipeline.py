"""``hot_pipeline`` begins a transaction in the round trip of its first statements and may
commit it in the round trip of its last ones; Django's transaction handling must see no
difference (real transactions: ``transaction=True``)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from core.db import IDLE, hot_cursor, hot_pipeline
from wallets.models import IdempotencyRecord

pytestmark = pytest.mark.django_db(transaction=True)

INSERT = (
    "INSERT INTO wallets_idempotencyrecord (scope, key, request_hash, status_code, response, "
    "created_at) VALUES ('test', %s, '', 200, '{}'::jsonb, now())"
)


class Boom(Exception):
    pass


def keys() -> set[str]:
    return set(IdempotencyRecord.objects.filter(scope="test").values_list("key", flat=True))


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_transaction_begun_in_a_pipeline_rolls_back_whole():
    with pytest.raises(Boom), transaction.atomic():
        with hot_pipeline(2) as (first, second):
            first.execute(INSERT, ["a"])
            second.execute(INSERT, ["b"])
        with hot_cursor() as cursor:  # a later statement joins the same transaction
            cursor.execute(INSERT, ["c"])
        raise Boom
    assert keys() == set()
    assert connection.get_autocommit() and connection.connection.autocommit


def test_a_transaction_begun_in_a_pipeline_commits_with_django():
    hooks = []
    with transaction.atomic():
        with hot_pipeline(1) as (cursor,):
            cursor.execute(INSERT, ["a"])
        transaction.on_commit(lambda: hooks.append(keys()))
        with transaction.atomic():  # a savepoint inside it
            with hot_cursor() as cursor:
                cursor.execute(INSERT, ["b"])
    assert keys() == {"a", "b"} and hooks == [{"a", "b"}]
    assert connection.get_autocommit() and connection.connection.autocommit


def test_a_failed_statement_in_a_committing_pipeline_commits_nothing():
    with pytest.raises(IntegrityError), transaction.atomic():
        with hot_pipeline(2, commit=True) as (first, second):
            first.execute(INSERT, ["a"])
            second.execute(INSERT, ["a"])  # the unique (scope, key) fails it
    assert keys() == set()
    with transaction.atomic():  # the connection is clean for the next transaction
        with hot_pipeline(1, commit=True) as (cursor,):
            cursor.execute(INSERT, ["b"])
    assert keys() == {"b"}


def test_a_committing_pipeline_commits_in_its_round_trip_and_django_finds_nothing_left():
    pid = backend_pid()
    hooks = []
    with transaction.atomic():
        transaction.on_commit(lambda: hooks.append("ran"))
        with hot_pipeline(1, commit=True) as (cursor,):
            cursor.execute(INSERT, ["a"])
        assert connection.connection.info.transaction_status == IDLE  # committed
        assert hooks == []  # Django runs its hooks when the block ends, as always
    assert hooks == ["ran"] and keys() == {"a"} and backend_pid() == pid
    assert connection.get_autocommit() and connection.connection.autocommit


def test_commit_is_ignored_inside_a_savepoint():
    with pytest.raises(Boom), transaction.atomic():
        with transaction.atomic():
            with hot_pipeline(1, commit=True) as (cursor,):
                cursor.execute(INSERT, ["a"])
        raise Boom
    assert keys() == set()


def test_outside_a_transaction_each_statement_commits_alone():
    with hot_pipeline(1) as (cursor,):
        cursor.execute(INSERT, ["a"])
    assert keys() == {"a"}
    assert connection.get_autocommit() and connection.connection.autocommit
