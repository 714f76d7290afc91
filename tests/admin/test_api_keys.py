"""API keys in the admin: made by the service, the secret shown once, only its hash stored."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.admin.models import LogEntry

from billing.models import ApiKey
from billing.services.api_keys import api_key_authenticate
from tests.factories import ApiKeyFactory

from .conftest import form_data
from .test_pages import admin_url

# "bf_<hex prefix>_<url-safe secret>"
RAW_KEY = re.compile(r"bf_[0-9a-f]{6,}_[A-Za-z0-9_-]{32,}")


def add(client, **fields) -> tuple:
    page = client.get(admin_url(ApiKey, "add"))
    assert page.status_code == 200
    data = form_data(page.content.decode())
    data.update({k: v if isinstance(v, list) else [v] for k, v in fields.items()})
    data["_save"] = ["Save"]
    return client.post(admin_url(ApiKey, "add"), data)


@pytest.mark.django_db
def test_add_form_asks_for_a_name_and_scope_checkboxes(finance_client):
    page = finance_client.get(admin_url(ApiKey, "add")).content.decode()
    form = finance_client.get(admin_url(ApiKey, "add")).context["adminform"].form
    assert list(form.fields) == ["name", "scopes"]
    for scope in ("events", "read", "manage"):
        assert f'type="checkbox" name="scopes" value="{scope}"' in page
    assert "key_hash" not in page


@pytest.mark.django_db
def test_adding_a_key_shows_it_once_and_stores_only_its_hash(finance_client, finance_user):
    response = add(finance_client, name="Production ingest", scopes=["events", "read"])
    assert response.status_code == 200
    page = response.content.decode()
    keys = RAW_KEY.findall(page)
    assert len(keys) == 1
    raw = keys[0]
    assert page.count(raw) == 1
    # shown on this response itself: the secret never travels in a message cookie
    assert raw not in response.cookies.get("messages", "").__str__()

    key = ApiKey.objects.get()
    assert (key.name, key.scopes, key.created_by) == (
        "Production ingest",
        ["events", "read"],
        finance_user,
    )
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw.split("_")[1]
    stored = [str(getattr(key, f.attname)) for f in ApiKey._meta.concrete_fields]
    assert not any(raw in value for value in stored)
    assert api_key_authenticate(raw) == key
    assert LogEntry.objects.filter(object_id=str(key.pk)).count() == 1

    for url in (admin_url(ApiKey, "changelist"), admin_url(ApiKey, "change", key.pk)):
        later = finance_client.get(url).content.decode()
        assert raw not in later
        assert key.key_hash not in later
        assert key.prefix in later


@pytest.mark.django_db
def test_add_form_rejects_a_key_without_scopes_or_name(finance_client):
    response = add(finance_client, name="No scopes")
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["scopes"]
    response = add(finance_client, name="   ", scopes=["read"])
    assert list(response.context["adminform"].form.errors) == ["name"]
    response = add(finance_client, name="Odd", scopes=["read", "admin"])
    assert list(response.context["adminform"].form.errors) == ["scopes"]
    assert ApiKey.objects.count() == 0


@pytest.mark.django_db
def test_changing_a_key_renames_it_only(finance_client):
    key = ApiKeyFactory(name="Old", scopes=["read"])
    url = admin_url(ApiKey, "change", key.pk)
    page = finance_client.get(url)
    assert list(page.context["adminform"].form.fields) == ["name"]
    data = form_data(page.content.decode())
    data.update(name=["New"], scopes=["manage"], _save=["Save"])
    assert finance_client.post(url, data).status_code == 302
    key.refresh_from_db()
    assert (key.name, key.scopes) == ("New", ["read"])


@pytest.mark.django_db
def test_revoke_action(finance_client):
    first, second, keep = (ApiKeyFactory(name=n, scopes=["read"]) for n in ("One", "Two", "Keep"))
    response = finance_client.post(
        admin_url(ApiKey, "changelist"),
        {"action": "revoke_selected", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Revoked 2 key(s)." in [str(m) for m in response.context["messages"]]
    assert api_key_authenticate(first.raw) is None
    assert api_key_authenticate(second.raw) is None
    assert api_key_authenticate(keep.raw) == keep
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 2
    assert LogEntry.objects.filter(change_message="Revoked.").count() == 2


@pytest.mark.django_db
def test_auditor_cannot_revoke_or_add(auditor_client):
    key = ApiKeyFactory(name="One", scopes=["read"])
    changelist = auditor_client.get(admin_url(ApiKey, "changelist"))
    assert changelist.status_code == 200
    assert "revoke_selected" not in changelist.context["cl"].model_admin.get_actions(
        changelist.wsgi_request
    )
    auditor_client.post(
        admin_url(ApiKey, "changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )
    assert api_key_authenticate(key.raw) == key
    assert auditor_client.get(admin_url(ApiKey, "add")).status_code == 403
    response = auditor_client.post(admin_url(ApiKey, "add"), {"name": "x", "scopes": ["read"]})
    assert response.status_code == 403
    assert ApiKey.objects.count() == 1
