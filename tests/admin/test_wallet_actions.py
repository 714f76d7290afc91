"""Money actions on the customer page (top up, promotional grant, adjust, void) and the
customer's ledger page: each form calls the wallet service the API calls, refusals land on the
form with nothing written, a double submit is one operation, and every action is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from billing.models import Customer
from tests.factories import AssetFactory, CustomerFactory, GrantFactory, MeterFactory
from wallets.models import (
    Account,
    Grant,
    IdempotencyRecord,
    LedgerEntry,
    LedgerTransaction,
)
from wallets.selectors import ledger_reconcile
from wallets.services import HoldLeg, hold_create

from .conftest import form_data, table_headed
from .test_pages import admin_url

ACTIONS = ("top_up", "grant_promotional", "adjust")


@pytest.fixture
def customer(db) -> Customer:
    """A customer whose USD wallet holds one paid grant of 12.50, made by the services (so the
    ledger reconciles), a custom asset and two meters."""
    AssetFactory(code="credits")
    MeterFactory(images=True, name="Images")
    MeterFactory(llm_tokens=True, name="LLM tokens")
    customer = CustomerFactory(external_id="globex")
    GrantFactory(
        wallet=customer.wallet_id,
        amount="12.50",
        grant_id="grt_first",
        reference="first top-up",
    )
    return customer


def action_url(name: str, customer: Customer, *args) -> str:
    return reverse(f"admin:billing_customer_{name}", args=[customer.pk, *args])


def open_form(client, url: str) -> dict[str, list[str]]:
    page = client.get(url)
    assert page.status_code == 200
    return form_data(page.content.decode())


def submit(client, url: str, data: dict[str, list[str]], **changes):
    data = {**data, **{k: v if isinstance(v, list) else [v] for k, v in changes.items()}}
    return client.post(url, data)


def posted(customer: Customer, asset: str = "USD") -> Decimal:
    return Account.objects.get(wallet=customer.wallet_id, asset=asset).posted


def history(customer: Customer) -> list[tuple[str, int, str]]:
    return [
        (e.user.username, e.action_flag, e.change_message)
        for e in LogEntry.objects.filter(object_id=str(customer.pk)).order_by("id")
    ]


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def written() -> tuple[int, int, int, int]:
    return (
        Grant.objects.count(),
        LedgerTransaction.objects.count(),
        IdempotencyRecord.objects.count(),
        LogEntry.objects.count(),
    )


# --- top up -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_finance_tops_up_through_the_form(finance_client, customer):
    url = action_url("top_up", customer)
    data = open_form(finance_client, url)
    assert data["asset"] == ["USD"]  # the billing currency first
    assert data["idempotency_key"][0].startswith("admin-")
    response = submit(
        finance_client,
        url,
        data,
        amount="100.00",
        reference="INV-7",
        reason="wire received 2026-03-02",
    )
    assert response.status_code == 302
    assert response["Location"] == admin_url(customer, "change", customer.pk)

    grant = Grant.objects.get(wallet=customer.wallet_id, reference="INV-7")
    assert (grant.purpose, grant.asset_id, grant.amount, grant.remaining, grant.priority) == (
        "paid",
        "USD",
        Decimal("100"),
        Decimal("100"),
        10,
    )
    assert grant.cost is None
    assert grant.metadata == {"reason": "wire received 2026-03-02", "actor": "fiona"}
    assert posted(customer) == Decimal("112.50")
    entries = sorted(
        (e.account.system_code or "wallet", e.amount)
        for e in LedgerEntry.objects.filter(transaction__metadata__grant=grant.pk)
    )
    assert entries == [("receivables", Decimal("-100")), ("wallet", Decimal("100"))]
    assert ledger_reconcile() == []

    assert message_texts(response) == [
        f"Topped up 100.00 USD for Globex (globex) (grant {grant.pk})."
    ]
    message = (
        f"Top up: 100.00 USD, reference “INV-7” as paid grant {grant.pk}. "
        "Reason: wire received 2026-03-02"
    )
    assert history(customer) == [("fiona", CHANGE, message)]
    page = finance_client.get(admin_url(customer, "history", customer.pk)).content.decode()
    assert "Top up: 100.00 USD" in page


@pytest.mark.django_db
def test_top_up_of_a_custom_asset_records_what_was_paid(finance_client, customer):
    url = action_url("top_up", customer)
    response = submit(
        finance_client,
        url,
        open_form(finance_client, url),
        asset="credits",
        amount="1000",
        cost_amount="10.00",
        cost_currency="USD",
        reason="credit pack",
    )
    assert response.status_code == 302
    grant = Grant.objects.get(wallet=customer.wallet_id, asset="credits")
    assert (grant.amount, grant.cost) == (Decimal("1000"), Money("10.00", "USD"))
    assert posted(customer, "credits") == Decimal("1000")
    assert history(customer)[0][2] == (
        f"Top up: 1,000 credits, cost 10 USD as paid grant {grant.pk}. Reason: credit pack"
    )
    assert ledger_reconcile() == []


@pytest.mark.django_db
def test_a_double_submit_of_one_form_makes_one_grant(finance_client, customer):
    url = action_url("top_up", customer)
    data = open_form(finance_client, url)
    fields = {"amount": "50", "reason": "wire"}
    first = submit(finance_client, url, data, **fields)
    before = written()
    second = submit(finance_client, url, data, **fields)
    assert (first.status_code, second.status_code) == (302, 302)
    assert written() == before  # no grant, transaction, key or log entry more
    grant = Grant.objects.get(wallet=customer.wallet_id, amount=Decimal("50"))
    assert message_texts(second)[-1] == f"This top-up was already recorded: 50.00 USD ({grant.pk})."
    assert posted(customer) == Decimal("62.50")
    assert len(history(customer)) == 1

    # the same form sent again with another amount is refused, not a second top-up
    third = submit(finance_client, url, data, amount="60", reason="wire")
    assert third.status_code == 200
    assert third.context["form"].errors == {
        "__all__": [
            "This form was already submitted with other values. Open the form again to "
            "record another operation."
        ]
    }
    assert written() == before

    # a fresh form is a new operation
    assert submit(finance_client, url, open_form(finance_client, url), **fields).status_code == 302
    assert Grant.objects.filter(wallet=customer.wallet_id, amount=Decimal("50")).count() == 2
    assert ledger_reconcile() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("-5", "Must be greater than zero."),
        ("0", "Must be greater than zero."),
        ("1.001", "At most 2 decimal places."),
        ("abc", 'A decimal number of ASCII digits, e.g. "10.00".'),
        ("NaN", 'A decimal number of ASCII digits, e.g. "10.00".'),
        ("-Infinity", 'A decimal number of ASCII digits, e.g. "10.00".'),
        ("١٠", 'A decimal number of ASCII digits, e.g. "10.00".'),
        ("1e3", 'A decimal number of ASCII digits, e.g. "10.00".'),
        ("1000000000000000000", "Must be less than 10^18."),
        ("", "This field is required."),
        ("9" * 100_000, "Ensure this value has at most 64 characters (it has 100000)."),
    ],
)
def test_top_up_refuses_a_bad_amount_and_writes_nothing(finance_client, customer, amount, error):
    url = action_url("top_up", customer)
    before = written()
    response = submit(
        finance_client, url, open_form(finance_client, url), amount=amount, reason="wire"
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"amount": [error]}
    assert written() == before
    assert posted(customer) == Decimal("12.50")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"reason": ""}, {"reason": ["This field is required."]}),
        (
            {"reason": "x" * 501},
            {"reason": ["Ensure this value has at most 500 characters (it has 501)."]},
        ),
        (
            {"cost_amount": "abc"},
            {"cost_amount": ['A decimal number of ASCII digits, e.g. "10.00".']},
        ),
        ({"cost_amount": "10.001"}, {"cost_amount": ["At most 2 decimal places."]}),
        ({"cost_amount": "-1"}, {"cost_amount": ["Must be zero or more."]}),
        (
            {"cost_amount": "10", "cost_currency": ""},
            {"cost_currency": ["The currency of the cost."]},
        ),
        (
            {"asset": "nope"},
            {"asset": ["Select a valid choice. That choice is not one of the available choices."]},
        ),
    ],
)
def test_top_up_refuses_other_bad_input(finance_client, customer, fields, errors):
    url = action_url("top_up", customer)
    data = {"amount": "10", "reason": "wire", **fields}
    before = written()
    response = submit(finance_client, url, open_form(finance_client, url), **data)
    assert response.status_code == 200
    assert response.context["form"].errors == errors
    assert written() == before


# --- promotional credits ------------------------------------------------------------------------


@pytest.mark.django_db
def test_finance_grants_promotional_credits_with_expiry_and_meter_scope(finance_client, customer):
    url = action_url("grant_promotional", customer)
    data = open_form(finance_client, url)
    assert data["priority"] == ["1"]
    response = submit(
        finance_client,
        url,
        data,
        asset="credits",
        amount="500",
        expires_at="2030-01-31T00:00",
        meters=["images"],
        reason="launch campaign",
    )
    assert response.status_code == 302
    grant = Grant.objects.get(wallet=customer.wallet_id, asset="credits")
    assert (grant.purpose, grant.amount, grant.priority, grant.meters) == (
        "promotional",
        Decimal("500"),
        1,
        ["images"],
    )
    assert grant.expires_at == datetime(2030, 1, 31, tzinfo=UTC)
    assert grant.metadata == {"reason": "launch campaign", "actor": "fiona"}
    entries = sorted(
        (e.account.system_code or "wallet", e.amount)
        for e in LedgerEntry.objects.filter(grant=grant)
        | LedgerEntry.objects.filter(transaction__metadata__grant=grant.pk, grant__isnull=True)
    )
    assert entries == [("promotional", Decimal("-500")), ("wallet", Decimal("500"))]
    assert ledger_reconcile() == []
    assert message_texts(response) == [
        f"Granted 500 credits of promotional credit to Globex (globex) ({grant.pk})."
    ]
    assert history(customer) == [
        (
            "fiona",
            CHANGE,
            f"Granted 500 credits, priority 1, expires 2030-01-31 00:00 UTC, only for images "
            f"as promotional grant {grant.pk}. Reason: launch campaign",
        )
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"expires_at": "2020-01-01T00:00"}, {"expires_at": ["An aware time in the future."]}),
        ({"expires_at": "soon"}, {"expires_at": ["Enter a valid date/time."]}),
        (
            {"meters": ["nope"]},
            {"meters": ["Select a valid choice. nope is not one of the available choices."]},
        ),
        ({"priority": "-1"}, {"priority": ["Ensure this value is greater than or equal to 0."]}),
        ({"amount": "1.5", "asset": "credits"}, {"amount": ["At most 0 decimal places."]}),
    ],
)
def test_promotional_grant_refuses_bad_input(finance_client, customer, fields, errors):
    url = action_url("grant_promotional", customer)
    data = {"amount": "5", "reason": "goodwill", **fields}
    before = written()
    response = submit(finance_client, url, open_form(finance_client, url), **data)
    assert response.status_code == 200
    assert response.context["form"].errors == errors
    assert written() == before


# --- adjustments --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_finance_adjusts_the_balance_down_and_up(finance_client, customer):
    url = action_url("adjust", customer)
    response = submit(
        finance_client, url, open_form(finance_client, url), amount="-2.50", reason="duplicate"
    )
    assert response.status_code == 302
    down = LedgerTransaction.objects.get(kind="adjust", wallet=customer.wallet_id)
    assert down.metadata == {"reason": "duplicate", "actor": "fiona"}
    assert down.description == "adjustment by fiona: duplicate"
    assert posted(customer) == Decimal("10.00")
    assert Grant.objects.get(pk="grt_first").remaining == Decimal("10.00")
    assert message_texts(response) == [
        f"Adjusted USD by -2.50 for Globex (globex) (transaction #{down.pk})."
    ]

    response = submit(
        finance_client, url, open_form(finance_client, url), amount="5", reason="goodwill"
    )
    assert response.status_code == 302
    up = LedgerTransaction.objects.filter(kind="adjust").latest("id")
    assert posted(customer) == Decimal("15.00")
    assert history(customer) == [
        ("fiona", CHANGE, f"Adjusted USD by -2.50 in transaction #{down.pk}. Reason: duplicate"),
        ("fiona", CHANGE, f"Adjusted USD by +5.00 in transaction #{up.pk}. Reason: goodwill"),
    ]
    assert ledger_reconcile() == []


@pytest.mark.django_db
def test_an_adjustment_beyond_the_balance_is_refused_and_writes_nothing(finance_client, customer):
    url = action_url("adjust", customer)
    before = written()
    response = submit(
        finance_client, url, open_form(finance_client, url), amount="-25.00", reason="refund"
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"__all__": ["The wallet can pay 12.5 of 25 USD."]}
    assert written() == before
    assert posted(customer) == Decimal("12.50")
    assert Grant.objects.get(pk="grt_first").remaining == Decimal("12.50")
    assert ledger_reconcile() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"reason": ""}, {"reason": ["This field is required."]}),
        ({"reason": "   "}, {"reason": ["This field is required."]}),
        ({"amount": "0"}, {"amount": ["Must be greater than zero."]}),
        ({"amount": "abc"}, {"amount": ['A decimal number of ASCII digits, e.g. "10.00".']}),
        ({"amount": "1.005"}, {"amount": ["At most 2 decimal places."]}),
    ],
)
def test_adjustment_refuses_bad_input(finance_client, customer, fields, errors):
    url = action_url("adjust", customer)
    data = {"amount": "-1", "reason": "correction", **fields}
    before = written()
    response = submit(finance_client, url, open_form(finance_client, url), **data)
    assert response.status_code == 200
    assert response.context["form"].errors == errors
    assert written() == before


# --- void ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_finance_voids_a_grant_with_a_reason(finance_client, customer):
    url = action_url("void_grant", customer, "grt_first")
    page = finance_client.get(url)
    assert page.status_code == 200
    assert "12.50 USD" in page.content.decode()

    before = written()
    response = finance_client.post(url, {"reason": ""})
    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert written() == before

    response = finance_client.post(url, {"reason": "chargeback"})
    assert response.status_code == 302
    grant = Grant.objects.get(pk="grt_first")
    assert (grant.status, grant.remaining) == ("voided", Decimal("0"))
    assert posted(customer) == Decimal("0")
    void = LedgerTransaction.objects.get(kind="void")
    assert void.description == "void grt_first: chargeback (by fiona)"
    assert ledger_reconcile() == []
    assert message_texts(response) == ["Voided grant grt_first: 12.50 USD removed."]
    assert history(customer) == [
        ("fiona", CHANGE, "Voided grant grt_first: 12.50 USD removed. Reason: chargeback")
    ]

    # a voided grant offers nothing more, and a stale form does nothing
    before = written()
    page = finance_client.get(url)
    assert page.status_code == 200
    assert page.context["form"] is None
    assert "This grant is voided: there is nothing to void." in page.content.decode()
    assert finance_client.post(url, {"reason": "again"}).status_code == 200
    assert written() == before


@pytest.mark.django_db
def test_a_grant_reserved_by_a_hold_cannot_be_voided(finance_client, customer):
    hold_create(
        wallet_id=customer.wallet_id,
        hold_id="hld_1",
        legs=[HoldLeg(asset="USD", amount=Decimal("2"))],
    )
    before = written()
    response = finance_client.post(
        action_url("void_grant", customer, "grt_first"), {"reason": "chargeback"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "__all__": ["2 USD of grant grt_first is held by open holds; capture or void them first."]
    }
    assert written() == before
    assert Grant.objects.get(pk="grt_first").status == "active"


@pytest.mark.django_db
def test_void_only_reaches_the_customers_own_grants(finance_client, customer):
    other = CustomerFactory(external_id="initech")
    GrantFactory(wallet=other.wallet_id, amount="1", grant_id="grt_other")
    url = action_url("void_grant", customer, "grt_other")
    assert finance_client.get(url).status_code == 404
    assert finance_client.post(url, {"reason": "x"}).status_code == 404
    assert Grant.objects.get(pk="grt_other").status == "active"
    assert finance_client.get(action_url("void_grant", customer, "grt_nope")).status_code == 404


# --- who may do it ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_auditors_get_403_on_every_money_action(auditor_client, customer):
    urls = [action_url(name, customer) for name in ACTIONS]
    urls.append(action_url("void_grant", customer, "grt_first"))
    before = written()
    for url in urls:
        assert auditor_client.get(url).status_code == 403, url
        body = {"amount": "5", "asset": "USD", "reason": "x", "idempotency_key": "admin-1"}
        assert auditor_client.post(url, body).status_code == 403, url
    assert written() == before
    assert Grant.objects.get(pk="grt_first").status == "active"


@pytest.mark.django_db
def test_customer_page_offers_money_actions_only_to_those_who_may_use_them(
    finance_client, auditor_user, customer
):
    change = admin_url(customer, "change", customer.pk)
    void = action_url("void_grant", customer, quote("grt_first"))
    page = finance_client.get(change).content.decode()
    for name in (*ACTIONS, "ledger"):
        assert action_url(name, customer) in page, name
    assert void in page
    assert table_headed(page, "Grant")[0][-1] == "Action"

    auditor = Client()
    auditor.force_login(auditor_user)
    page = auditor.get(change).content.decode()
    for name in ACTIONS:
        assert action_url(name, customer) not in page, name
    assert void not in page
    assert table_headed(page, "Grant")[0][-1] == "Status"
    assert action_url("ledger", customer) in page  # reading the ledger is for every viewer


@pytest.mark.django_db
def test_staff_outside_finance_cannot_move_money(client, django_user_model, customer):
    user = django_user_model.objects.create_user(username="sam", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(action_url("top_up", customer)).status_code == 403


# --- the ledger page ----------------------------------------------------------------------------


def add_grants(customer: Customer, count: int) -> None:
    for n in range(count):
        GrantFactory(wallet=customer.wallet_id, amount=f"{n + 1}")


@pytest.mark.django_db
def test_ledger_page_lists_transactions_newest_first_with_their_entries(auditor_client, customer):
    url = action_url("ledger", customer)
    add_grants(customer, 1)
    other = CustomerFactory(external_id="initech")
    add_grants(other, 1)  # not this customer's
    response = auditor_client.get(url)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r["txn"].kind for r in rows] == ["grant", "grant"]
    newest, first = rows
    grant_page = admin_url(Grant, "change", quote("grt_first"))
    assert newest["txn"].pk > first["txn"].pk
    assert [
        (str(e["account"]), e["asset"], e["amount"], str(e["grant"])) for e in first["entries"]
    ] == [
        ("System: receivables", "USD", "-12.50", "—"),
        ("Wallet", "USD", "12.50", f'<a href="{grant_page}">grt_first</a>'),
    ]
    page = response.content.decode()
    assert "first top-up" in page  # the reference
    assert "Page 1 of 1 (2 transactions)" in page


@pytest.mark.django_db
def test_ledger_page_is_paginated_by_50(superuser_client, customer):
    add_grants(customer, 54)  # 55 transactions with the first top-up
    url = action_url("ledger", customer)
    first = superuser_client.get(url)
    second = superuser_client.get(url, {"page": "2"})
    assert len(first.context["rows"]) == 50
    assert [r["txn"].reference for r in second.context["rows"]][-1] == "first top-up"
    assert len(second.context["rows"]) == 5
    ids = [r["txn"].pk for r in first.context["rows"] + second.context["rows"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 55


@pytest.mark.django_db
def test_ledger_page_query_count_does_not_grow_with_rows(superuser_client, customer):
    url = action_url("ledger", customer)

    def queries(rows: int) -> int:
        superuser_client.get(url)  # warm the session and content types
        with CaptureQueriesContext(connection) as captured:
            response = superuser_client.get(url)
        assert len(response.context["rows"]) == rows
        return len(captured)

    add_grants(customer, 2)
    small = queries(3)
    add_grants(customer, 27)
    assert queries(30) == small
