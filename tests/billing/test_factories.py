"""The shared factories make what their docstrings say, through the services, and the ledger
reconciles after them (the billing conftest checks it after every test)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine

from tests.factories import (
    ApiKeyFactory,
    AssetFactory,
    CustomerFactory,
    GrantFactory,
    MeterFactory,
    PriceFactory,
    PublishedPlanFactory,
    SubscriptionFactory,
)
from tests.wallets.helpers import D, balance
from wallets.models import AssetRate

pytestmark = pytest.mark.django_db


def test_credits_asset_has_its_usd_rate_once():
    credits = AssetFactory(credits=True)
    assert AssetFactory(credits=True) == credits
    assert (credits.code, credits.name, credits.decimals) == ("credits", "Credits", 0)
    assert AssetRate.objects.get(asset=credits, currency_id="USD").rate == Decimal("0.01")


def test_grants_fund_the_customer_wallet():
    customer = CustomerFactory(acme=True)
    GrantFactory(wallet=customer.wallet, grant_id="g1")
    GrantFactory(wallet=customer.wallet_id, prepaid_credits=True, promotional=True)
    assert balance(customer.wallet_id) == (D("10.00"), 0, 0, D("10.00"))
    assert balance(customer.wallet_id, "credits") == (D("1000"), 0, 0, D("1000"))


def test_hybrid_plan_includes_tokens_and_a_base_fee():
    version = PublishedPlanFactory(code="pro", name="Pro", hybrid=True)
    (price,) = version.prices.all()
    assert (version.plan.code, version.version, version.base_fee) == ("pro", 1, Decimal("49"))
    assert (price.meter.code, price.included, price.unit_price) == (
        "llm_tokens",
        Decimal("1000000"),
        Decimal("0.000002"),
    )
    assert PublishedPlanFactory(plan=version.plan, seats=True).version == 2
    assert MeterFactory(llm_tokens=True) == price.meter


def test_subscription_and_key():
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        sub = SubscriptionFactory(plan=PublishedPlanFactory(trial=True, seats=True), seats=3)
    assert (sub.status, sub.seats) == ("trialing", 3)
    key = ApiKeyFactory(scopes=["read"])
    assert (key.scopes, key.prefix in key.raw) == (["read"], True)


def test_price_rows_share_the_version_currency():
    price = PriceFactory(graduated=True)
    assert (price.asset_id, price.model, price.unit_price) == ("USD", "graduated", None)
