"""Finance edits, Auditor reads, and nobody writes money history through the admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote

from billing.models import Customer, UsageEvent
from wallets.models import LedgerEntry, LedgerTransaction, Wallet

from .conftest import form_data
from .test_pages import admin_url

READ_ONLY = (
    "entry",
    "transaction",
    "usd_account",
    "allocation",
    "idempotency",
    "event",
    "heartbeat",
    "paid_grant",
    "hold",
    "version",
    "price",
    "charge_item",
)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["finance_client", "auditor_client"])
def test_staff_groups_open_every_changelist_and_change_page(request, who, world):
    client = request.getfixturevalue(who)
    for obj in world.rows():
        assert client.get(admin_url(obj, "changelist")).status_code == 200, obj._meta.label
        change = client.get(admin_url(obj, "change", quote(obj.pk)))
        assert change.status_code == 200, obj._meta.label


@pytest.mark.django_db
def test_finance_adds_a_customer_through_the_add_form(finance_client, world):
    page = finance_client.get(admin_url(Customer, "add"))
    assert page.status_code == 200
    assert "wallet" not in page.context["adminform"].form.fields
    data = form_data(page.content.decode())
    data.update(
        external_id=["globex"],
        name=["Globex Inc."],
        email=["ap@globex.test"],
        currency=["EUR"],
        tax_rate=["19"],
        metadata=['{"segment": "enterprise"}'],
        _save=["Save"],
    )
    response = finance_client.post(admin_url(Customer, "add"), data)
    assert response.status_code == 302
    customer = Customer.objects.get(external_id="globex")
    assert response["Location"] == admin_url(Customer, "changelist")
    assert (customer.name, customer.email, customer.currency_id) == (
        "Globex Inc.",
        "ap@globex.test",
        "EUR",
    )
    assert str(customer.tax_rate) == "19.0000"
    assert customer.metadata == {"segment": "enterprise"}
    assert customer.wallet.owner == "customer:globex"
    assert Wallet.objects.filter(owner="customer:globex").count() == 1


@pytest.mark.django_db
def test_finance_changes_a_customer_but_not_its_external_id(finance_client, world):
    url = admin_url(world.customer, "change", world.customer.pk)
    page = finance_client.get(url)
    assert "external_id" not in page.context["adminform"].form.fields
    data = form_data(page.content.decode())
    data.update(name=["Acme Corporation"], external_id=["hijacked"], _save=["Save"])
    response = finance_client.post(url, data)
    assert response.status_code == 302
    world.customer.refresh_from_db()
    assert (world.customer.external_id, world.customer.name) == ("acme", "Acme Corporation")


@pytest.mark.django_db
def test_auditor_views_but_cannot_add_or_change(auditor_client, world):
    url = admin_url(world.customer, "change", world.customer.pk)
    page = auditor_client.get(url)
    assert page.status_code == 200
    assert page.context["title"] == "View customer"
    assert auditor_client.get(admin_url(Customer, "add")).status_code == 403
    data = {"external_id": "x", "name": "X", "currency": "USD", "tax_rate": "0", "metadata": "{}"}
    assert auditor_client.post(admin_url(Customer, "add"), data).status_code == 403
    assert auditor_client.post(url, {**data, "name": "Renamed"}).status_code == 403
    assert (
        auditor_client.post(
            admin_url(world.spend_limit, "change", world.spend_limit.pk), {"amount": "1"}
        ).status_code
        == 403
    )
    world.customer.refresh_from_db()
    world.spend_limit.refresh_from_db()
    assert world.customer.name == "Acme Corp"
    assert str(world.spend_limit.amount.normalize()) == "1E+2"
    assert Customer.objects.count() == 1
    changelist = auditor_client.get(admin_url(Customer, "changelist")).content.decode()
    assert admin_url(Customer, "add") not in changelist


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser_client", "finance_client"])
@pytest.mark.parametrize("name", READ_ONLY)
def test_nobody_writes_money_history(request, who, name, world):
    client = request.getfixturevalue(who)
    obj = getattr(world, name)
    changelist = client.get(admin_url(obj, "changelist"))
    assert changelist.status_code == 200
    assert admin_url(obj, "add") not in changelist.content.decode()
    assert changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request) == {}
    assert client.get(admin_url(obj, "add")).status_code == 403
    assert client.post(admin_url(obj, "add"), {}).status_code == 403
    change = client.get(admin_url(obj, "change", quote(obj.pk)))
    assert change.status_code == 200
    assert change.context["has_change_permission"] is False
    assert client.post(admin_url(obj, "change", quote(obj.pk)), {}).status_code == 403
    assert client.get(admin_url(obj, "delete", quote(obj.pk))).status_code == 403
    assert client.post(admin_url(obj, "delete", quote(obj.pk)), {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


@pytest.mark.django_db
def test_bulk_delete_is_not_offered_for_the_ledger_or_usage(superuser_client, world):
    for model, obj in (
        (LedgerEntry, world.entry),
        (UsageEvent, world.event),
        (LedgerTransaction, world.transaction),
    ):
        response = superuser_client.post(
            admin_url(model, "changelist"),
            {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
        )
        assert response.status_code == 200  # no actions at all: the list is shown again
        assert response.context["action_form"] is None
        assert model.objects.filter(pk=obj.pk).exists()
