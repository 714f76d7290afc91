"""An ``Idempotency-Key`` header belongs to the API key that sent it; client object ids
(a grant's ``id``) are global; header keys stored before they were scoped still replay."""

from __future__ import annotations

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from billing.api.idempotency import RequestKey, idempotency_key
from billing.models import Customer
from wallets.models import Grant, IdempotencyRecord

pytestmark = pytest.mark.django_db

BODY = {"external_id": "acme", "name": "Acme Inc.", "currency": "EUR"}


def post_customer(client, body, key="shared-1"):
    return client.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_header_key_from_two_api_keys_does_not_collide(make_api_client):
    a, b = make_api_client(), make_api_client()
    first_a = post_customer(a, BODY)
    first_b = post_customer(b, {**BODY, "external_id": "beta", "name": "Beta"})
    assert (first_a.status_code, first_b.status_code) == (201, 201), first_b.content
    assert "Idempotent-Replayed" not in first_b.headers
    assert (first_a.json()["external_id"], first_b.json()["external_id"]) == ("acme", "beta")
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"acme", "beta"}

    # each API key replays its own answer
    again_a = post_customer(a, BODY)
    again_b = post_customer(b, {**BODY, "external_id": "beta", "name": "Beta"})
    assert again_a.headers["Idempotent-Replayed"] == again_b.headers["Idempotent-Replayed"]
    assert (again_a.json(), again_b.json()) == (first_a.json(), first_b.json())
    assert Customer.objects.count() == 2
    assert sorted(
        IdempotencyRecord.objects.filter(key="shared-1").values_list("scope", flat=True)
    ) == sorted(f"api.customers@key{c.api_key.pk}" for c in (a, b))

    # within one API key the key still conflicts with another body
    conflict = post_customer(a, {**BODY, "name": "Other"})
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"


def test_same_header_key_and_body_from_another_api_key_is_its_own_request(make_api_client):
    a, b = make_api_client(), make_api_client()
    assert post_customer(a, BODY).status_code == 201
    second = post_customer(b, BODY)  # not A's answer: B's own attempt, refused as a duplicate
    assert second.status_code == 400 and "external_id" in second.json()["errors"]
    assert "Idempotent-Replayed" not in second.headers


def test_client_object_ids_stay_global(make_api_client, customer):
    a, b = make_api_client(), make_api_client()
    body = {"id": "g-1", "asset": "USD", "amount": "5.00"}
    url = "/api/v1/customers/acme/grants"
    first = a.post(url, body, format="json")
    replay = b.post(url, body, format="json")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    other = b.post(url, {**body, "amount": "6.00"}, format="json")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    assert Grant.objects.get().amount == 5


def test_header_key_stored_before_scoping_replays_the_same_request_once(make_api_client):
    a, b = make_api_client(), make_api_client()
    first = post_customer(a, BODY)
    # as it was stored before header keys belonged to an API key
    IdempotencyRecord.objects.filter(key="shared-1").update(scope="api.customers")

    replay = post_customer(a, BODY)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json() and Customer.objects.count() == 1
    scoped = IdempotencyRecord.objects.get(scope=f"api.customers@key{a.api_key.pk}")
    assert (scoped.status_code, scoped.response) == (201, first.json())

    # another request with that key is not a conflict: it claims the key for its API key
    other = post_customer(b, {**BODY, "external_id": "beta"})
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert Customer.objects.count() == 2


def test_idempotency_key_names_the_api_key_of_the_request(make_api_client):
    """Every view (events and holds too) reads the header through ``idempotency_key``."""
    client = make_api_client()
    request = Request(APIRequestFactory().post("/", HTTP_IDEMPOTENCY_KEY="void-1"))
    request.auth = client.api_key
    key = idempotency_key(request)
    assert (key.value, key.api_key_id) == ("void-1", client.api_key.pk)
    assert key.scope("hold-void") == f"api.hold-void@key{client.api_key.pk}"
    assert idempotency_key(request, "g-1") == RequestKey("g-1")
    assert RequestKey("g-1").scope("grants") == "api.grants"
