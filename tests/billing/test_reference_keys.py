"""The usage events' meter, price and asset, and the ledger entries' asset, refer to
reference rows without a foreign key in PostgreSQL (ADR 0007): every charge would otherwise
share-lock the same few rows. Deleting one of them through Billfold (the admin, the ORM)
is still refused while an event or entry refers to it."""

from __future__ import annotations

import pytest
from django.db.models import ProtectedError

from billing.models import UsageEvent
from plans.models import Meter, Price
from tests.billing.metering.test_charge_in_database import (
    token_customer_with_bonus_and_two_usd_grants,
)
from tests.wallets.helpers import ensure_currencies
from wallets.models import Asset, LedgerEntry

from .scenario import event

pytestmark = pytest.mark.django_db


@pytest.fixture
def charged(api, clock):
    ensure_currencies()
    token_customer_with_bonus_and_two_usd_grants(api)
    response = event(api, "e1", "acme", "llm_tokens", "9000", ts="2026-01-10T11:00:00Z")
    assert response.status_code == 201, response.json()
    charged = UsageEvent.objects.get(event_id="e1")
    assert charged.price_id is not None and charged.asset_id == "USD"
    return charged


@pytest.mark.parametrize(
    "row",
    [
        lambda e: Meter.objects.get(pk=e.meter_id),
        lambda e: Price.objects.get(pk=e.price_id),
        lambda e: Asset.objects.get(code=e.asset_id),
    ],
    ids=["meter", "price", "asset"],
)
def test_a_referenced_row_cannot_be_deleted(charged, row):
    target = row(charged)
    with pytest.raises(ProtectedError) as refused:
        target.delete()
    named = refused.value.protected_objects  # every protecting row, of every relation
    assert charged in named
    if isinstance(target, Asset):
        assert any(isinstance(o, LedgerEntry) and o.asset_id == "USD" for o in named)
    assert type(target).objects.filter(pk=target.pk).exists()
