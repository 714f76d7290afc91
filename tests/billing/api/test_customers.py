from __future__ import annotations

import pytest

from billing.models import Customer
from wallets.models import Wallet

pytestmark = pytest.mark.django_db

BODY = {
    "external_id": "acme",
    "name": "Acme Inc.",
    "email": "billing@acme.example",
    "currency": "EUR",
    "tax_rate": "19",
    "metadata": {"segment": "enterprise", "seats": 12, "ratio": 0.5},
}


def test_create_get_patch_list(api):
    r = api.post("/api/v1/customers", BODY, format="json")
    assert r.status_code == 201, r.content
    created = r.json()
    assert {k: created[k] for k in BODY} == {**BODY, "metadata": BODY["metadata"]}
    assert Wallet.objects.get(owner="customer:acme") == Customer.objects.get().wallet

    assert api.get("/api/v1/customers/acme").json() == created
    r = api.patch("/api/v1/customers/acme", {"name": "Acme GmbH", "tax_rate": "7.5"}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["name"], r.json()["tax_rate"], r.json()["currency"]) == (
        "Acme GmbH",
        "7.5",
        "EUR",
    )

    api.post("/api/v1/customers", {**BODY, "external_id": "beta"}, format="json")
    page = api.get("/api/v1/customers?limit=1").json()
    assert len(page["results"]) == 1 and page["next"]
    rest = api.get(page["next"]).json()
    assert {page["results"][0]["external_id"], rest["results"][0]["external_id"]} == {
        "acme",
        "beta",
    }
    assert rest["next"] is None


def test_external_id_cannot_change_and_unknown_fields_refused(api):
    api.post("/api/v1/customers", BODY, format="json")
    r = api.patch("/api/v1/customers/acme", {"external_id": "other"}, format="json")
    assert r.status_code == 400 and "external_id" in r.json()["errors"]
    assert Customer.objects.get().external_id == "acme"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"external_id": ""}, "external_id"),
        ({"external_id": "a/b"}, "external_id"),
        ({"external_id": "x" * 300}, "external_id"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "credits"}, "currency"),
        ({"tax_rate": "101"}, "tax_rate"),
        ({"tax_rate": "-1"}, "tax_rate"),
        ({"tax_rate": "NaN"}, "tax_rate"),
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"name": "<script>" + "x" * 100_000}, "name"),
        ({"metadata": "text"}, "metadata"),
    ],
)
def test_bad_customer_input(api, change, field):
    r = api.post("/api/v1/customers", {**BODY, **change}, format="json")
    assert r.status_code == 400, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert field in r.json()["errors"]
    assert Customer.objects.count() == 0 and Wallet.objects.count() == 0


def test_duplicate_external_id(api):
    assert api.post("/api/v1/customers", BODY, format="json").status_code == 201
    r = api.post("/api/v1/customers", BODY, format="json")
    assert r.status_code == 400 and "external_id" in r.json()["errors"]
    assert Customer.objects.count() == 1


def test_idempotency_key_replays_customer_create(api):
    first = api.post("/api/v1/customers", BODY, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    again = api.post("/api/v1/customers", BODY, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    conflict = api.post(
        "/api/v1/customers", {**BODY, "name": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"


def test_missing_customer(api):
    assert api.get("/api/v1/customers/ghost").status_code == 404
    assert api.patch("/api/v1/customers/ghost", {"name": "x"}, format="json").status_code == 404
