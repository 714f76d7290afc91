"""``instances`` makes what the ORM makes: a plain model's rows are made without
``__init__`` (faster), and must come out the same; a model with a descriptor of its own
(Grant's money field) goes through ``__init__``."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models.signals import post_init
from django.utils import timezone

from wallets.models import Account, Grant
from wallets.services.ledger import _made_plainly, instances

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
