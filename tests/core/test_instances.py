"""Rows read by the hot paths come out as the ORM's: ``instances`` makes a plain model's
rows without ``__init__`` (faster), and they must be the same; a model with a descriptor of
its own (Grant's money field) goes through ``__init__``. Binary rows carry JSON as text."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from django.db.models.signals import post_init
from django.utils import timezone

from core.db import JsonbTextBinaryLoader, _made_plainly, hot_cursor, instances
from wallets.models import Account, Grant

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {k: v for k, v in instance.__dict__.items() if k != "_state"}


def test_a_plain_model_made_directly_is_what_the_orm_makes():
    assert _made_plainly(Account)
    row = (7, 3, None, "USD", Decimal("1.5"), Decimal("0.25"), Decimal(0), timezone.now())
    names = [f.attname for f in Account._meta.concrete_fields]
    made = instances(Account, [row])[0]
    orm = Account.from_db("default", names, row)
    assert _fields(made) == _fields(orm)
    assert (made._state.adding, made._state.db) == (orm._state.adding, orm._state.db)
    assert made.pk == 7 and made.wallet_id == 3
    made.posted += 1  # an ordinary instance: its fields are plain attributes
    assert made.posted == Decimal("2.5")


def test_a_model_with_its_own_descriptor_or_an_init_listener_goes_through_init():
    assert not _made_plainly(Grant)  # its money field keeps amount and currency together

    def listener(**kwargs):
        pass

    post_init.connect(listener, sender=Account)
    try:
        assert not _made_plainly(Account)
    finally:
        post_init.disconnect(listener, sender=Account)
    assert _made_plainly(Account)


def test_binary_rows_carry_json_as_the_text_django_loads():
    with hot_cursor(binary=True) as cursor:
        cursor.execute("SELECT %s::jsonb, '{}'::jsonb, NULL::jsonb", ['{"a": [1, "2.50", "é"]}'])
        assert cursor.fetchone() == ('{"a": [1, "2.50", "é"]}', "{}", None)


def test_an_unknown_binary_jsonb_version_is_refused():
    with pytest.raises(psycopg.DataError):
        JsonbTextBinaryLoader(0).load(b'\x02{"a": 1}')
