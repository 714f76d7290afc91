"""Assets and meters are added through their services; plan versions are immutable here."""

from __future__ import annotations

from decimal import Decimal

import pytest

from plans.models import Meter
from tests.factories import AssetFactory
from wallets.models import Asset, AssetRate

from .conftest import form_data
from .test_pages import admin_url


def post_add(client, model, **fields):
    page = client.get(admin_url(model, "add"))
    assert page.status_code == 200
    data = form_data(page.content.decode())
    data.update({k: v if isinstance(v, list) else [v] for k, v in fields.items()})
    data["_save"] = ["Save"]
    return client.post(admin_url(model, "add"), data)


@pytest.mark.django_db
def test_finance_adds_a_custom_asset_with_a_rate(finance_client):
    response = post_add(
        finance_client,
        Asset,
        code="gpu_seconds",
        name="GPU seconds",
        decimals="3",
        **{"rates-0-currency": "USD", "rates-0-rate": "0.0004", "rates-TOTAL_FORMS": "1"},
    )
    assert response.status_code == 302
    asset = Asset.objects.get(code="gpu_seconds")
    assert (asset.name, asset.kind, asset.decimals) == ("GPU seconds", "custom", 3)
    rate = AssetRate.objects.get(asset=asset)
    assert (rate.currency_id, rate.rate) == ("USD", Decimal("0.0004"))


@pytest.mark.django_db
def test_asset_codes_are_unique_ignoring_case(finance_client):
    AssetFactory(code="credits")
    response = post_add(finance_client, Asset, code="Credits", name="Credits", decimals="0")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "code": ["An asset with this code exists."]
    }
    assert Asset.objects.filter(code__iexact="credits").count() == 1


@pytest.mark.django_db
def test_an_iso_currency_cannot_be_redefined(finance_client):
    usd = Asset.objects.get(code="USD")
    page = finance_client.get(admin_url(usd, "change", "USD"))
    assert list(page.context["adminform"].form.fields) == ["name"]
    assert page.context["inline_admin_formsets"] == []


@pytest.mark.django_db
def test_finance_adds_a_meter(finance_client):
    tokens = AssetFactory(code="tokens")
    response = post_add(
        finance_client,
        Meter,
        code="active_users",
        name="Active users",
        unit=str(tokens.pk),
        aggregation="unique_count",
        event_property="user_id",
    )
    assert response.status_code == 302
    meter = Meter.objects.get(code="active_users")
    assert (meter.unit_id, meter.aggregation, meter.event_property) == (
        "tokens",
        "unique_count",
        "user_id",
    )


@pytest.mark.django_db
def test_meter_service_errors_land_on_the_form_field(finance_client):
    tokens = AssetFactory(code="tokens")
    response = post_add(
        finance_client,
        Meter,
        code="active_users",
        name="Active users",
        unit=str(tokens.pk),
        aggregation="unique_count",
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "event_property": ["unique_count needs the event property to count."]
    }
    assert Meter.objects.count() == 0


@pytest.mark.django_db
def test_a_meter_keeps_what_it_measures(finance_client, world):
    page = finance_client.get(admin_url(world.meter, "change", world.meter.pk))
    assert list(page.context["adminform"].form.fields) == ["name"]


@pytest.mark.django_db
def test_plans_are_renamed_and_archived_on_their_page(finance_client, world):
    url = admin_url(world.plan, "change", world.plan.pk)
    page = finance_client.get(url)
    assert list(page.context["adminform"].form.fields) == ["name", "description", "archived_at"]
    data = form_data(page.content.decode())
    data.update(
        {
            "name": ["Pro (legacy)"],
            "archived_at_0": ["2026-03-01"],
            "archived_at_1": ["00:00:00"],
            "_save": ["Save"],
        }
    )
    assert finance_client.post(url, data).status_code == 302
    world.plan.refresh_from_db()
    assert world.plan.name == "Pro (legacy)"
    assert world.plan.archived_at.isoformat() == "2026-03-01T00:00:00+00:00"
    assert world.version.subscriptions.count() == 1  # versions and subscriptions untouched


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"code": "bad code!"},
            {"code": ["1–64 letters, digits, _ . : or -, starting with a letter or digit."]},
        ),
        (
            {"aggregation": "sum", "event_property": "user_id"},
            {"event_property": ["Only unique_count meters use a property."]},
        ),
    ],
)
def test_meter_add_form_explains_bad_input(finance_client, fields, errors):
    tokens = AssetFactory(code="tokens")
    base = {"code": "m1", "name": "M1", "unit": str(tokens.pk), "aggregation": "sum"}
    response = post_add(finance_client, Meter, **{**base, **fields})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert Meter.objects.count() == 0


@pytest.mark.django_db
def test_a_service_rejection_is_mapped_onto_the_form_field(finance_client, monkeypatch):
    from core.errors import ValidationFailed

    def refuse(**kwargs):
        raise ValidationFailed("Invalid meter.", errors={"property": ["Refused by the service."]})

    monkeypatch.setattr("plans.admin.meters.meter_create", refuse)
    tokens = AssetFactory(code="tokens")
    response = post_add(
        finance_client, Meter, code="m1", name="M1", unit=str(tokens.pk), aggregation="sum"
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "event_property": ["Refused by the service."]
    }
    assert Meter.objects.count() == 0
