"""List pages do the same number of queries for 3 rows as for 30 (docs/quality.md: admin query
counts independent of data size)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Customer, Invoice, Subscription, UsageEvent
from tests.factories import AssetFactory, CustomerFactory, MeterFactory, PlanVersionFactory
from wallets.models import Account, Asset, Grant, LedgerEntry, LedgerTransaction

from .test_pages import admin_url

START = datetime(2026, 1, 1, tzinfo=UTC)


def add_customers(first: int, last: int) -> None:
    usd = Asset.objects.get(code="USD")
    tokens = AssetFactory(code="tokens")
    meter = MeterFactory(llm_tokens=True, name="LLM tokens", unit=tokens)
    version = PlanVersionFactory(plan__code="pro", plan__name="Pro", version=1, base_fee=49)
    for n in range(first, last):
        currency = "USD" if n % 2 else "EUR"
        customer = CustomerFactory(external_id=f"c{n}", name=f"Customer {n}", currency=currency)
        account = Account.objects.create(
            wallet=customer.wallet, asset_id=currency, posted=Decimal(n)
        )
        subscription = Subscription.objects.create(
            customer=customer,
            plan_version=version,
            started_at=START,
            current_period_start=START,
            current_period_end=START + timedelta(days=31),
        )
        txn = LedgerTransaction.objects.create(wallet=customer.wallet, kind="grant")
        grant = Grant.objects.create(
            wallet=customer.wallet,
            asset_id=currency,
            purpose="paid",
            amount=Decimal(n + 1),
            remaining=Decimal(n + 1),
        )
        LedgerEntry.objects.create(
            transaction=txn, account=account, asset_id=currency, grant=grant, amount=n + 1
        )
        UsageEvent.objects.create(
            event_id=f"evt_{n}",
            customer=customer,
            subscription=subscription,
            meter=meter,
            quantity=Decimal(n),
            timestamp=START + timedelta(minutes=n),
            status="accepted",
            amount=Decimal("0.5"),
            asset=usd,
            ledger_transaction=txn,
        )
        Invoice.objects.create(
            customer=customer,
            subscription=subscription,
            currency_id=currency,
            period_start=START,
            period_end=START + timedelta(days=31),
            subtotal=Decimal(49),
            total=Decimal(49),
        )


def queries_for(client, url: str, rows: int) -> int:
    client.get(url)  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == rows
    return len(captured)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    [Customer, UsageEvent, Subscription, Invoice, Grant, LedgerTransaction, LedgerEntry, Account],
)
def test_changelist_query_count_does_not_grow_with_rows(superuser_client, model):
    url = admin_url(model, "changelist")
    add_customers(0, 3)
    small = queries_for(superuser_client, url, model.objects.count())
    add_customers(3, 30)
    large = queries_for(superuser_client, url, model.objects.count())
    assert model.objects.count() >= 30
    assert small == large


@pytest.mark.django_db
def test_customer_changelist_shows_the_billing_currency_balance(superuser_client):
    add_customers(0, 3)
    response = superuser_client.get(admin_url(Customer, "changelist"))
    balances = {c.external_id: c.available for c in response.context["cl"].result_list}
    assert balances == {"c0": Decimal(0), "c1": Decimal(1), "c2": Decimal(2)}
    page = response.content.decode()
    assert "1.00 USD" in page
    assert "2.00 EUR" in page


@pytest.mark.django_db
def test_large_unfiltered_lists_use_the_planner_estimate_instead_of_count(
    superuser_client, monkeypatch
):
    from core.admin.lists import EstimatedCountPaginator

    add_customers(0, 30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_usageevent")
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 20)
    url = admin_url(UsageEvent, "changelist")
    superuser_client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = superuser_client.get(url)
    assert response.context["cl"].result_count == 30  # reltuples after ANALYZE
    assert not [q for q in captured if "COUNT(" in q["sql"].upper()]
    assert any("reltuples" in q["sql"] for q in captured)

    with CaptureQueriesContext(connection) as captured:
        response = superuser_client.get(url, {"status__exact": "accepted", "q": "c7"})
    assert response.context["cl"].result_count == 1  # a filtered list is counted exactly
    assert [q for q in captured if "COUNT(" in q["sql"].upper()]

    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 31)
    response = superuser_client.get(url)
    assert response.context["cl"].result_count == 30
