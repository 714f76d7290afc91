"""Every model of the three apps has an admin page, and every page opens."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse

APPS = ("wallets", "plans", "billing")


def admin_url(obj_or_model, view: str, *args) -> str:
    opts = obj_or_model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def test_every_model_is_registered():
    models = [m for label in APPS for m in apps.get_app_config(label).get_models()]
    missing = [m._meta.label for m in models if m not in admin.site._registry]
    assert missing == []
    assert len(models) == 27


@pytest.mark.django_db
def test_superuser_opens_every_changelist_and_change_page(superuser_client, world):
    rows = world.rows()
    assert {type(r) for r in rows} == {
        m for label in APPS for m in apps.get_app_config(label).get_models()
    }
    for obj in rows:
        response = superuser_client.get(admin_url(obj, "changelist"))
        assert response.status_code == 200, obj._meta.label
        assert response.context["cl"].result_count >= 1, obj._meta.label
        response = superuser_client.get(admin_url(obj, "change", quote(obj.pk)))
        assert response.status_code == 200, obj._meta.label
        assert response.context["original"] == obj


@pytest.mark.django_db
def test_superuser_opens_every_add_page_that_exists(superuser_client, world):
    addable = {
        "wallets.asset",
        "wallets.assetrate",
        "plans.meter",
        "plans.plan",
        "billing.customer",
        "billing.spendlimit",
        "billing.apikey",
    }
    seen = set()
    for obj in world.rows():
        label = obj._meta.label_lower
        response = superuser_client.get(admin_url(obj, "add"))
        if label in addable:
            assert response.status_code == 200, label
            seen.add(label)
        else:
            assert response.status_code == 403, label
    assert seen == addable


@pytest.mark.django_db
def test_admin_index_lists_the_three_apps(superuser_client, world):
    response = superuser_client.get(reverse("admin:index"))
    assert response.status_code == 200
    labels = {app["app_label"] for app in response.context["app_list"]}
    assert {"wallets", "plans", "billing"} <= labels


@pytest.mark.django_db
def test_links_between_related_objects(superuser_client, world):
    page = superuser_client.get(admin_url(world.event, "change", world.event.pk)).content.decode()
    assert f'href="{admin_url(world.customer, "change", world.customer.pk)}">acme</a>' in page
    assert f'href="{admin_url(world.transaction, "change", world.transaction.pk)}"' in page
    assert f'href="{admin_url(world.meter, "change", world.meter.pk)}">llm_tokens</a>' in page

    page = superuser_client.get(
        admin_url(world.invoice, "change", world.invoice.pk)
    ).content.decode()
    assert f'href="{admin_url(world.customer, "change", world.customer.pk)}">acme</a>' in page
    assert "Pro, January 2026" in page

    page = superuser_client.get(admin_url(world.transaction, "change", world.transaction.pk))
    assert page.context["inline_admin_formsets"][0].formset.queryset.count() == 2


@pytest.mark.django_db
def test_amounts_show_with_asset_codes(superuser_client, world):
    page = superuser_client.get(admin_url(world.event, "changelist")).content.decode()
    assert "700,000 tokens" in page  # quantity in the meter's unit
    assert "1.00 USD" in page  # charge in USD, two places
    page = superuser_client.get(admin_url(world.invoice, "changelist")).content.decode()
    assert "49.00 USD" in page
    page = superuser_client.get(
        admin_url(world.version, "change", world.version.pk)
    ).content.decode()
    assert "Graduated: up to 10,000,000: 0.000002 USD; above: 0.0000015 USD" in page
    assert "1,000,000 tokens" in page  # included per period


@pytest.mark.django_db
def test_plan_page_shows_its_versions_with_subscription_counts(superuser_client, world):
    response = superuser_client.get(admin_url(world.plan, "change", world.plan.pk))
    formset = response.context["inline_admin_formsets"][0].formset
    versions = list(formset.queryset)
    assert [(v.version, v.subscription_count) for v in versions] == [(1, 1)]
    page = response.content.decode()
    assert "49.00 USD" in page
    assert "Monthly" in page
