"""Creating customers (the service and the admin form) and the customer page's wallet panel."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, LogEntry

from billing.models import Customer, UsageEvent
from billing.services.customers import EXTERNAL_ID_MAX, customer_create, customer_update
from core.errors import ValidationFailed
from tests.factories import AssetFactory, CustomerFactory
from wallets.models import Account, Grant, LedgerTransaction, Wallet

from .conftest import form_data, table_headed
from .test_pages import admin_url


def counts() -> tuple[int, int]:
    return Customer.objects.count(), Wallet.objects.count()


@pytest.mark.django_db
def test_customer_create_makes_the_customer_and_its_wallet():
    customer = customer_create(
        external_id="acme",
        name="  Acme Corp ",
        email="billing@acme.test",
        currency="JPY",
        tax_rate="8.5",
        metadata={"crm": "42"},
    )
    customer.refresh_from_db()
    assert customer.wallet.owner == "customer:acme"
    assert (customer.name, customer.currency_id, customer.tax_rate) == (
        "Acme Corp",
        "JPY",
        Decimal("8.5000"),
    )
    assert customer.metadata == {"crm": "42"}
    assert counts() == (1, 1)


@pytest.mark.django_db
def test_customer_create_rejects_a_duplicate_external_id_and_writes_nothing():
    customer_create(external_id="acme", name="Acme", currency="USD")
    with pytest.raises(ValidationFailed) as failure:
        customer_create(external_id="acme", name="Acme again", currency="EUR")
    assert failure.value.code == "invalid"
    assert failure.value.errors == {
        "external_id": ["A customer with this external_id already exists."]
    }
    assert counts() == (1, 1)


@pytest.mark.django_db
def test_customer_create_rejects_an_external_id_whose_wallet_label_is_taken():
    Wallet.objects.create(owner="customer:acme")
    with pytest.raises(ValidationFailed) as failure:
        customer_create(external_id="acme", name="Acme", currency="USD")
    assert failure.value.errors == {
        "external_id": ["A customer with this external_id already exists."]
    }
    assert counts() == (0, 1)


@pytest.mark.django_db
def test_customer_create_rejects_an_unknown_currency():
    with pytest.raises(ValidationFailed) as failure:
        customer_create(external_id="acme", name="Acme", currency="XXQ")
    assert failure.value.errors == {"currency": ["Unknown currency: 'XXQ'."]}
    assert counts() == (0, 0)


@pytest.mark.django_db
def test_customer_create_rejects_a_custom_asset_as_currency():
    AssetFactory(code="credits")
    with pytest.raises(ValidationFailed) as failure:
        customer_create(external_id="acme", name="Acme", currency="credits")
    assert failure.value.errors == {
        "currency": ["credits is a custom asset, not an ISO 4217 currency."]
    }
    assert counts() == (0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "errors"),
    [
        (
            {"external_id": "   "},
            {"external_id": [f"Required: 1 to {EXTERNAL_ID_MAX} characters, not only whitespace."]},
        ),
        (
            {"external_id": ""},
            {"external_id": [f"Required: 1 to {EXTERNAL_ID_MAX} characters, not only whitespace."]},
        ),
        (
            {"external_id": "x" * (EXTERNAL_ID_MAX + 1)},
            {"external_id": [f"At most {EXTERNAL_ID_MAX} characters."]},
        ),
        ({"external_id": " acme"}, {"external_id": ["Must not start or end with whitespace."]}),
        ({"external_id": "ac\x00me"}, {"external_id": ["Must not contain control characters."]}),
        ({"external_id": "a/b"}, {"external_id": ["Must not contain '/' (it is used in URLs)."]}),
        ({"external_id": 42}, {"external_id": ["Must be a string."]}),
        ({"name": " "}, {"name": ["Required."]}),
        ({"name": "n" * 100_000}, {"name": ["At most 255 characters."]}),
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        ({"currency": ""}, {"currency": ["Required: an ISO 4217 currency code."]}),
        (
            {"tax_rate": 0.5},
            {"tax_rate": ["Must be a decimal number (a string or an integer), never a float."]},
        ),
        ({"tax_rate": "NaN"}, {"tax_rate": ["Must be a finite number."]}),
        ({"tax_rate": "abc"}, {"tax_rate": ["Must be a decimal number."]}),
        ({"tax_rate": "-1"}, {"tax_rate": ["Must be between 0 and 100 (percent)."]}),
        ({"tax_rate": "100.5"}, {"tax_rate": ["Must be between 0 and 100 (percent)."]}),
        ({"tax_rate": "7.12345"}, {"tax_rate": ["At most 4 decimal places."]}),
        ({"metadata": ["a"]}, {"metadata": ["Must be a JSON object."]}),
        ({"metadata": {"a": "\x00"}}, {"metadata": ["Must not contain NUL characters."]}),
        ({"metadata": {"a": float("nan")}}, {"metadata": ["Must be JSON-serializable."]}),
        ({"metadata": {"a": "x" * 20_000}}, {"metadata": ["At most 16 KiB of JSON."]}),
    ],
)
def test_customer_create_rejects_bad_input_and_writes_nothing(kwargs, errors):
    args = {"external_id": "acme", "name": "Acme", "currency": "USD", **kwargs}
    with pytest.raises(ValidationFailed) as failure:
        customer_create(**args)
    assert failure.value.errors == errors
    assert counts() == (0, 0)


@pytest.mark.django_db
def test_customer_create_reports_every_bad_field_at_once():
    with pytest.raises(ValidationFailed) as failure:
        customer_create(external_id="", name="", currency="XXQ", tax_rate="200")
    assert sorted(failure.value.errors) == ["currency", "external_id", "name", "tax_rate"]


# --- the admin add form -------------------------------------------------------------------------


def add_form(client) -> dict[str, list[str]]:
    page = client.get(admin_url(Customer, "add"))
    assert page.status_code == 200
    return form_data(page.content.decode())


@pytest.mark.django_db
def test_add_form_defaults_to_usd_and_logs_the_addition(superuser_client):
    data = add_form(superuser_client)
    assert data["currency"] == ["USD"]
    data.update(external_id=["initech"], name=["Initech"], _save=["Save"])
    assert superuser_client.post(admin_url(Customer, "add"), data).status_code == 302
    customer = Customer.objects.get(external_id="initech")
    assert customer.wallet.owner == "customer:initech"
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_id) == (ADDITION, str(customer.pk))


@pytest.mark.django_db
def test_add_form_shows_a_service_rejection_on_the_field_and_writes_nothing(superuser_client):
    Wallet.objects.create(owner="customer:initech")  # the form cannot know; the service can
    data = add_form(superuser_client)
    data.update(external_id=["initech"], name=["Initech"], _save=["Save"])
    response = superuser_client.post(admin_url(Customer, "add"), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {"external_id": ["A customer with this external_id already exists."]}
    assert form["name"].value() == "Initech"  # the input is kept
    assert counts() == (0, 1)
    assert LogEntry.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currency": ["credits"]}, "currency"),
        ({"external_id": ["   "]}, "external_id"),
        ({"metadata": ["[1, 2]"]}, "metadata"),
        ({"tax_rate": ["101"]}, "tax_rate"),
        ({"external_id": ["a/b"]}, "external_id"),
        ({"name": ["<script>alert(1)</script>" * 20]}, "name"),
    ],
)
def test_add_form_rejects_bad_input(superuser_client, changes, field):
    AssetFactory(code="credits")
    data = add_form(superuser_client)
    data.update(external_id=["initech"], name=["Initech"], _save=["Save"])
    data.update(changes)
    response = superuser_client.post(admin_url(Customer, "add"), data)
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert counts() == (0, 0)


@pytest.mark.django_db
def test_add_form_rejects_a_duplicate_external_id(superuser_client):
    CustomerFactory(external_id="initech")
    data = add_form(superuser_client)
    data.update(external_id=["initech"], name=["Other"], _save=["Save"])
    response = superuser_client.post(admin_url(Customer, "add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "external_id": ["Customer with this External id already exists."]
    }
    assert counts() == (1, 1)


# --- the customer page --------------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_page_shows_balances_and_grants(superuser_client, world):
    expired = Grant.objects.create(
        id="grt_old",
        wallet=world.customer.wallet,
        asset=world.usd,
        purpose=Grant.Purpose.ALLOWANCE,
        priority=0,
        amount=Decimal("5"),
        remaining=Decimal("0"),
        status=Grant.Status.EXPIRED,
    )
    response = superuser_client.get(admin_url(world.customer, "change", world.customer.pk))
    page = response.content.decode()
    balances, grants = table_headed(page, "Asset"), table_headed(page, "Grant")
    assert balances == [
        ["Asset", "Posted", "Held", "Available"],
        ["USD", "20.00", "4.00", "16.00"],
        ["credits", "980", "0", "980"],
    ]
    assert grants == [
        [
            "Grant",
            "Asset",
            "Purpose",
            "Priority",
            "Amount",
            "Remaining",
            "Held",
            "Expires",
            "Status",
            "Action",  # the superuser may void
        ],
        # active first, then by asset and burn-down order; closed grants last
        ["grt_paid", "USD", "Paid", "10", "20.00", "20.00", "4.00", "never", "Active", "Void…"],
        [
            "grt_promo",
            "credits",
            "Promotional",
            "1",
            "1,000",
            "980",
            "0",
            "2026-01-31 00:00 UTC",
            "Active",
            "Void…",
        ],
        [expired.id, "USD", "Allowance", "0", "5.00", "0.00", "0.00", "never", "Expired", ""],
    ]
    assert admin_url(UsageEvent, "changelist") + f"?customer={world.customer.pk}" in page
    wallet_id = world.customer.wallet_id
    assert admin_url(LedgerTransaction, "changelist") + f"?wallet={wallet_id}" in page
    # the subscriptions inline is read-only and links to the subscription
    formset = response.context["inline_admin_formsets"][0]
    assert formset.opts.model._meta.model_name == "subscription"
    assert formset.has_change_permission is False
    assert admin_url(world.subscription, "change", world.subscription.pk) in page


@pytest.mark.django_db
def test_wallet_panel_trims_ledger_precision(superuser_client, world):
    Account.objects.filter(pk=world.usd_account.pk).update(
        posted=Decimal("0.000002000000"), held=Decimal("0")
    )
    page = superuser_client.get(admin_url(world.customer, "change", world.customer.pk))
    balances = table_headed(page.content.decode(), "Asset")
    assert balances[1] == ["USD", "0.000002", "0.00", "0.000002"]


@pytest.mark.django_db
def test_customer_without_balances_says_so(superuser_client):
    customer = CustomerFactory(external_id="new")
    page = superuser_client.get(admin_url(customer, "change", customer.pk)).content.decode()
    assert "No balances yet." in page
    assert "No grants." in page


@pytest.mark.django_db
def test_filtered_changelists_from_the_customer_page(superuser_client, world):
    other = CustomerFactory(external_id="other")
    UsageEvent.objects.create(
        event_id="evt_other",
        customer=other,
        meter=world.meter,
        quantity=1,
        timestamp=datetime(2026, 1, 2, tzinfo=UTC),
        status=UsageEvent.Status.DECLINED,
        decline_code="insufficient_funds",
    )
    LedgerTransaction.objects.create(wallet=other.wallet, kind=LedgerTransaction.Kind.ADJUST)

    response = superuser_client.get(
        admin_url(UsageEvent, "changelist") + f"?customer={world.customer.pk}"
    )
    assert [e.event_id for e in response.context["cl"].result_list] == ["evt_1"]
    assert "Acme Corp (acme)" in response.content.decode()  # the filter names the customer
    response = superuser_client.get(admin_url(UsageEvent, "changelist"))
    assert [e.event_id for e in response.context["cl"].result_list] == ["evt_1", "evt_other"]

    response = superuser_client.get(
        admin_url(LedgerTransaction, "changelist") + f"?wallet={other.wallet_id}"
    )
    assert [t.kind for t in response.context["cl"].result_list] == ["adjust"]

    bad = superuser_client.get(admin_url(UsageEvent, "changelist") + "?customer=abc")
    assert bad.status_code == 302
    assert bad["Location"].endswith("?e=1")


@pytest.mark.django_db
def test_usage_search_matches_exact_ids(superuser_client, world):
    url = admin_url(UsageEvent, "changelist")
    for term, expected in (("evt_1", ["evt_1"]), ("acme", ["evt_1"]), ("evt", []), ("1", [])):
        response = superuser_client.get(url, {"q": term})
        assert [e.event_id for e in response.context["cl"].result_list] == expected, term


@pytest.mark.django_db
def test_currency_is_fixed_once_the_customer_was_billed(superuser_client, world):
    response = superuser_client.get(admin_url(world.customer, "change", world.customer.pk))
    assert "currency" not in response.context["adminform"].form.fields
    fresh = CustomerFactory(external_id="fresh")
    response = superuser_client.get(admin_url(fresh, "change", fresh.pk))
    assert "currency" in response.context["adminform"].form.fields


# --- customer_update ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_update_changes_only_the_given_fields():
    customer = CustomerFactory(
        external_id="acme", name="Acme", email="a@acme.test", metadata={"k": 1}
    )
    updated = customer_update(customer=customer, name=" Acme Corp ", tax_rate="20")
    assert updated.pk == customer.pk
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.name, stored.email, stored.tax_rate, stored.metadata, stored.currency_id) == (
        "Acme Corp",
        "a@acme.test",
        Decimal("20.0000"),
        {"k": 1},
        "USD",
    )
    customer_update(customer=stored, currency="EUR", email="", metadata=None)
    stored.refresh_from_db()
    assert (stored.currency_id, stored.email, stored.metadata) == ("EUR", "", {})


@pytest.mark.django_db
def test_customer_update_rejects_bad_input_and_writes_nothing():
    AssetFactory(code="credits")
    customer = CustomerFactory(external_id="acme", name="Acme")
    before = Customer.objects.filter(pk=customer.pk).values().get()
    with pytest.raises(ValidationFailed) as failure:
        customer_update(
            customer=customer,
            name="Renamed",
            email="nope",
            currency="credits",
            tax_rate="101",
            metadata=[1],
        )
    assert failure.value.errors == {
        "email": ["Enter a valid email address."],
        "currency": ["credits is a custom asset, not an ISO 4217 currency."],
        "tax_rate": ["Must be between 0 and 100 (percent)."],
        "metadata": ["Must be a JSON object."],
    }
    assert Customer.objects.filter(pk=customer.pk).values().get() == before


@pytest.mark.django_db
def test_customer_update_keeps_the_currency_once_billed(world):
    with pytest.raises(ValidationFailed) as failure:
        customer_update(customer=world.customer, currency="EUR")
    assert failure.value.errors == {
        "currency": [
            "The billing currency cannot change once the customer has subscriptions or invoices."
        ]
    }
    customer_update(customer=world.customer, currency="USD")  # the same currency is no change
    world.customer.refresh_from_db()
    assert world.customer.currency_id == "USD"


# --- the spend-limit inline ---------------------------------------------------------------------


@pytest.mark.django_db
def test_finance_sets_the_spend_limit_on_the_customer_page(finance_client, world):
    url = admin_url(world.customer, "change", world.customer.pk)
    data = form_data(finance_client.get(url).content.decode())
    data.update(
        {
            "spend_limit-0-amount": ["250.50"],
            "spend_limit-0-mode": ["soft"],
            "spend_limit-0-alert_thresholds": ["80,50,80"],
            "_save": ["Save"],
        }
    )
    assert finance_client.post(url, data).status_code == 302
    world.spend_limit.refresh_from_db()
    assert (world.spend_limit.amount, world.spend_limit.mode) == (Decimal("250.50"), "soft")
    assert world.spend_limit.alert_thresholds == [50, 80]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "100.001", "At most 2 decimal places in USD."),
        ("amount", "0", "The limit must be greater than 0."),
        ("amount", "-5", "The limit must be greater than 0."),
        ("alert_thresholds", "50,150", "Each threshold is a percent from 1 to 100."),
    ],
)
def test_spend_limit_rejects_bad_values(finance_client, world, field, value, message):
    url = admin_url(world.customer, "change", world.customer.pk)
    data = form_data(finance_client.get(url).content.decode())
    data.update({f"spend_limit-0-{field}": [value], "_save": ["Save"]})
    response = finance_client.post(url, data)
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][1].formset.errors
    assert message in str(errors)
    world.spend_limit.refresh_from_db()
    assert (world.spend_limit.amount, world.spend_limit.alert_thresholds) == (
        Decimal("100"),
        [50, 80],
    )
