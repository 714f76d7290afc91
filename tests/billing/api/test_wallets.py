"""Grants, wallet and transactions over the API (docs/api.md), with exact amounts."""

from __future__ import annotations

import pytest

from wallets.models import Asset, Grant, IdempotencyRecord, LedgerEntry
from wallets.services import wallet_draw

pytestmark = pytest.mark.django_db


def post_grant(api, body, customer="acme", **headers):
    return api.post(f"/api/v1/customers/{customer}/grants", body, format="json", **headers)


def test_grant_top_up_shows_in_wallet_and_ledger(api, customer):
    r = post_grant(
        api,
        {
            "id": "g-1",
            "asset": "USD",
            "amount": "20.00",
            "purpose": "paid",
            "cost": {"amount": "20.00", "currency": "USD"},
            "reference": "card 4242",
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["id"] == "g-1"
    assert body["remaining"] == "20.000000000000"
    assert body["cost"] == {"amount": "20", "currency": "USD"}
    assert body["purpose"] == "paid" and body["priority"] == 10 and body["status"] == "active"

    wallet = api.get("/api/v1/customers/acme/wallet").json()
    assert wallet["customer"] == "acme"
    assert wallet["balances"] == [
        {
            "asset": "USD",
            "posted": "20.000000000000",
            "held": "0.000000000000",
            "available": "20.000000000000",
            "debt": "0.000000000000",
        }
    ]
    assert [(g["id"], g["remaining"]) for g in wallet["grants"]] == [("g-1", "20.000000000000")]

    wallet_draw(wallet_id=customer.wallet_id, asset="USD", amount="1.25", idempotency_key="d1")
    txns = api.get("/api/v1/customers/acme/transactions").json()
    assert [t["kind"] for t in txns["results"]] == ["draw", "grant"]  # newest first
    assert txns["results"][0]["entries"] == [
        {"asset": "USD", "amount": "-1.250000000000", "grant": "g-1"}
    ]
    assert txns["next"] is None
    listed = api.get("/api/v1/customers/acme/grants").json()["results"]
    assert [(g["id"], g["remaining"]) for g in listed] == [("g-1", "18.750000000000")]


def test_grant_replay_returns_original_and_conflict_on_other_body(api, customer):
    body = {"id": "g-2", "asset": "USD", "amount": "5.00"}
    first = post_grant(api, body)
    wallet_draw(wallet_id=customer.wallet_id, asset="USD", amount="1", idempotency_key="d2")
    again = post_grant(api, body)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # the original body, though 1.00 was spent since
    assert Grant.objects.filter(pk="g-2").count() == 1
    other = post_grant(api, {**body, "amount": "6.00"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert Grant.objects.get(pk="g-2").amount == 5


def test_grant_idempotency_key_header(api, customer):
    body = {"asset": "USD", "amount": "3.00", "purpose": "promotional", "priority": 1}
    first = post_grant(api, body, HTTP_IDEMPOTENCY_KEY="topup-7")
    second = post_grant(api, body, HTTP_IDEMPOTENCY_KEY="topup-7")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert Grant.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"asset": "USD", "amount": "-1"}, "amount"),
        ({"asset": "USD", "amount": "NaN"}, "amount"),
        ({"asset": "USD", "amount": "Infinity"}, "amount"),
        ({"asset": "USD", "amount": "1e19"}, "amount"),
        ({"asset": "USD", "amount": "0.0000000000001"}, "amount"),
        ({"asset": "USD", "amount": "1.001"}, "amount"),  # USD has 2 decimals
        ({"asset": "USD", "amount": "0"}, "amount"),
        ({"asset": "USD", "amount": True}, "amount"),
        ({"asset": "USD"}, "amount"),
        ({"asset": "NOPE", "amount": "1"}, "asset"),
        ({"asset": "USD", "amount": "1", "purpose": "allowance"}, "purpose"),
        ({"asset": "USD", "amount": "1", "priority": -1}, "priority"),
        ({"asset": "USD", "amount": "1", "priority": "x"}, "priority"),
        ({"asset": "USD", "amount": "1", "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"asset": "USD", "amount": "1", "expires_at": "yesterday"}, "expires_at"),
        ({"asset": "USD", "amount": "1", "meters": "llm"}, "meters"),
        (
            {"asset": "USD", "amount": "1", "cost": {"amount": "1", "currency": "XYZ"}},
            "cost.currency",
        ),
        ({"asset": "USD", "amount": "1", "reference": "x" * 100_000}, "reference"),
        ({"id": "", "asset": "USD", "amount": "1"}, "id"),
    ],
)
def test_bad_grant_input_is_a_clear_400_and_writes_nothing(api, customer, body, field):
    r = post_grant(api, body)
    assert r.status_code in (400, 404), r.content
    assert r["Content-Type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] in ("invalid", "not_found")
    assert field in problem["errors"], problem
    assert Grant.objects.count() == 0
    assert LedgerEntry.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


def test_a_json_number_with_a_fraction_is_refused_as_an_amount(api, customer):
    r = api.post(
        "/api/v1/customers/acme/grants",
        data='{"asset": "USD", "amount": 0.10}',
        content_type="application/json",
    )
    assert r.status_code == 400
    assert r.json()["errors"] == {"amount": ['Send decimals as strings, e.g. "10.00".']}
    assert Grant.objects.count() == 0


def test_unknown_customer_is_404(api, db):
    r = post_grant(api, {"asset": "USD", "amount": "1"}, customer="nobody")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api.get("/api/v1/customers/nobody/wallet").status_code == 404


def test_void_grant(api, customer):
    post_grant(api, {"id": "g-3", "asset": "USD", "amount": "7.00"})
    r = api.post("/api/v1/grants/g-3/void")
    assert r.status_code == 200
    assert r.json()["status"] == "voided" and r.json()["remaining"] == "0.000000000000"
    wallet = api.get("/api/v1/customers/acme/wallet").json()
    assert wallet["balances"][0]["posted"] == "0.000000000000"
    assert wallet["grants"] == []
    assert api.post("/api/v1/grants/missing/void").status_code == 404


def test_scopes(make_api_client, customer):
    reader = make_api_client(["read"])
    assert reader.get("/api/v1/customers/acme/wallet").status_code == 200
    r = post_grant(reader, {"asset": "USD", "amount": "1"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    events_only = make_api_client(["events"])
    assert events_only.get("/api/v1/customers/acme/wallet").status_code == 403
    assert Grant.objects.count() == 0


def test_assets_create_list_and_get(api, db):
    r = api.post(
        "/api/v1/assets",
        {
            "code": "credits",
            "name": "Credits",
            "decimals": 0,
            "rates": [{"currency": "USD", "rate": "0.01"}],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json() == {
        "code": "credits",
        "name": "Credits",
        "kind": "custom",
        "decimals": 0,
        "rates": [{"currency": "USD", "rate": "0.01"}],
    }
    assert api.get("/api/v1/assets/credits").json()["rates"] == [
        {"currency": "USD", "rate": "0.01"}
    ]
    usd = api.get("/api/v1/assets/USD").json()
    assert (usd["kind"], usd["decimals"]) == ("currency", 2)
    assert api.get("/api/v1/assets/JPY").json()["decimals"] == 0
    assert api.get("/api/v1/assets/KWD").json()["decimals"] == 3
    custom = api.get("/api/v1/assets?kind=custom").json()["results"]
    assert [a["code"] for a in custom] == ["credits"]
    dup = api.post("/api/v1/assets", {"code": "credits"}, format="json")
    assert dup.status_code == 400 and "code" in dup.json()["errors"]
    iso = api.post("/api/v1/assets", {"code": "usd"}, format="json")
    assert iso.status_code == 400
    bad = api.post("/api/v1/assets", {"code": "x", "decimals": 13}, format="json")
    assert bad.status_code == 400 and "decimals" in bad.json()["errors"]
    badrate = api.post(
        "/api/v1/assets", {"code": "y", "rates": [{"currency": "USD", "rate": "-1"}]}, format="json"
    )
    assert badrate.status_code == 400
    assert Asset.objects.filter(kind="custom").count() == 1
    assert api.get("/api/v1/assets/nothing").status_code == 404
