from __future__ import annotations

import copy
from decimal import Decimal as D

import pytest
import time_machine

from plans.models import Plan, PlanVersion, Price
from wallets.models import Grant

pytestmark = pytest.mark.django_db

PRO = {
    "code": "pro",
    "name": "Pro",
    "currency": "USD",
    "interval": "month",
    "base_fee": "49.00",
    "base_fee_timing": "in_advance",
    "seat_price": None,
    "trial_days": 0,
    "prices": [
        {
            "meter": "llm_tokens",
            "filter": {"model": "gpt-4o"},
            "included": "1000000",
            "model": "graduated",
            "asset": "USD",
            "tiers": [
                {"up_to": "10000000", "unit_price": "0.000002", "flat_fee": "0"},
                {"up_to": None, "unit_price": "0.0000015", "flat_fee": "0"},
            ],
        },
        {
            "meter": "ticket_resolved",
            "filter": {},
            "included": "0",
            "model": "per_unit",
            "asset": "USD",
            "unit_price": "0.99",
        },
        {
            "meter": "image",
            "filter": {},
            "included": "0",
            "model": "package",
            "asset": "USD",
            "package_size": "10",
            "package_price": "0.5",
        },
    ],
}


@pytest.fixture
def meters(api):
    for code, unit, agg in [
        ("llm_tokens", "tokens", "sum"),
        ("ticket_resolved", "outcomes", "count"),
        ("image", "images", "count"),
    ]:
        r = api.post(
            "/api/v1/meters",
            {"code": code, "name": code, "unit": unit, "aggregation": agg},
            format="json",
        )
        assert r.status_code == 201, r.content


def test_meter_api(api, meters):
    r = api.get("/api/v1/meters/llm_tokens").json()
    assert {k: r[k] for k in ("code", "unit", "aggregation", "property")} == {
        "code": "llm_tokens",
        "unit": "tokens",
        "aggregation": "sum",
        "property": None,
    }
    assert api.get("/api/v1/assets/tokens").json()["decimals"] == 0  # unknown unit created
    uc = api.post(
        "/api/v1/meters",
        {"code": "users", "unit": "users", "aggregation": "unique_count", "property": "user_id"},
        format="json",
    )
    assert uc.status_code == 201 and uc.json()["property"] == "user_id"
    bad = api.post(
        "/api/v1/meters",
        {"code": "u2", "unit": "users", "aggregation": "unique_count"},
        format="json",
    )
    assert bad.status_code == 400 and "property" in bad.json()["errors"]
    assert (
        api.post(
            "/api/v1/meters",
            {"code": "llm_tokens", "unit": "tokens", "aggregation": "sum"},
            format="json",
        ).status_code
        == 400
    )


def test_plan_round_trips_every_field(api, meters):
    r = api.post("/api/v1/plans", PRO, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["version"] == 1
    for key in (
        "code",
        "name",
        "currency",
        "interval",
        "base_fee",
        "base_fee_timing",
        "seat_price",
        "trial_days",
    ):
        assert body[key] == PRO[key], key
    for sent, got in zip(PRO["prices"], body["prices"], strict=True):
        assert {k: got[k] for k in sent} == sent
    assert body["prices"][0]["description"] == (
        "1,000,000 tokens included, then USD 0.000002 per token up to 10,000,000, "
        "then USD 0.0000015"
    )
    assert api.get("/api/v1/plans/pro").json() == body


def test_new_version_leaves_the_old_one(api, meters):
    api.post("/api/v1/plans", PRO, format="json")
    changed = copy.deepcopy(PRO)
    changed["base_fee"] = "59.00"
    r = api.post("/api/v1/plans/pro/versions", changed, format="json")
    assert r.status_code == 201 and r.json()["version"] == 2
    assert api.get("/api/v1/plans/pro").json()["base_fee"] == "59.00"
    versions = api.get("/api/v1/plans/pro/versions").json()["results"]
    assert [(v["version"], v["base_fee"]) for v in versions] == [(2, "59.00"), (1, "49.00")]


def test_versions_are_immutable_in_the_database(api, meters):
    api.post("/api/v1/plans", PRO, format="json")
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic():
        PlanVersion.objects.update(base_fee=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        Price.objects.update(included=5)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "credits"}, "currency"),
        ({"interval": "fortnight"}, "interval"),
        ({"base_fee": "-1"}, "base_fee"),
        ({"base_fee": "49.001"}, "base_fee"),
        ({"trial_days": -1}, "trial_days"),
        ({"code": "bad code!"}, "code"),
        (
            {"prices": [{"meter": "nope", "model": "per_unit", "unit_price": "1"}]},
            "prices[0].meter",
        ),
        (
            {"prices": [{"meter": "image", "model": "per_unit", "unit_price": "0.0000000000001"}]},
            "prices[0].unit_price",
        ),
        (
            {
                "prices": [
                    {
                        "meter": "image",
                        "model": "graduated",
                        "tiers": [
                            {"up_to": "10", "unit_price": "1"},
                            {"up_to": "5", "unit_price": "1"},
                            {"up_to": None, "unit_price": "1"},
                        ],
                    }
                ]
            },
            "prices[0].tiers[1].up_to",
        ),
        ({"prices": [{"meter": "image", "model": "magic"}]}, "prices[0].model"),
        (
            {
                "prices": [
                    {"meter": "image", "model": "per_unit", "unit_price": "1", "asset": "nope"}
                ]
            },
            "prices[0].asset",
        ),
        (
            {
                "prices": [
                    {"meter": "image", "model": "per_unit", "unit_price": "1", "included": "1.5"}
                ]
            },
            "prices[0].included",
        ),
    ],
)
def test_bad_plans_are_refused_and_write_nothing(api, meters, change, field):
    r = api.post("/api/v1/plans", {**PRO, **change}, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()["errors"], r.json()
    assert Plan.objects.count() == 0


TRILLION = "1000000000000"  # 10^12: the catalogue's bound on money per unit


def _price(**fields) -> dict:
    return {"prices": [{"meter": "image", **fields}]}


def _tiers(**last) -> dict:
    return _price(
        model="graduated",
        tiers=[{"up_to": "10", "unit_price": "1"}, {"up_to": None, "unit_price": "1", **last}],
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"base_fee": TRILLION}, "base_fee"),
        ({"seat_price": TRILLION}, "seat_price"),
        (_price(model="per_unit", unit_price=TRILLION), "prices[0].unit_price"),
        (
            _price(model="package", package_size="10", package_price=TRILLION),
            "prices[0].package_price",
        ),
        (_tiers(unit_price=TRILLION), "prices[0].tiers[1].unit_price"),
        (_tiers(flat_fee=TRILLION), "prices[0].tiers[1].flat_fee"),
    ],
)
def test_prices_of_a_trillion_or_more_are_refused_and_write_nothing(api, meters, change, field):
    r = api.post("/api/v1/plans", {**PRO, **change}, format="json")
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {field: ["Must be less than 10^12."]}
    assert Plan.objects.count() == PlanVersion.objects.count() == Price.objects.count() == 0
    # a new version is refused the same way, and the plan keeps its one version
    assert api.post("/api/v1/plans", PRO, format="json").status_code == 201
    r = api.post("/api/v1/plans/pro/versions", {**PRO, **change}, format="json")
    assert (r.status_code, r.json()["errors"]) == (400, {field: ["Must be less than 10^12."]})
    assert PlanVersion.objects.count() == 1


def test_the_largest_prices_the_catalogue_accepts_can_be_invoiced(api, meters):
    """Base fee and seat price just under 10^12 with the most seats: the first invoice's
    lines and total fit its columns."""
    from billing.models import Invoice
    from billing.subscriptions import MAX_SEATS

    largest = "999999999999.99"
    plan = {**PRO, "base_fee": largest, "seat_price": largest, "prices": []}
    plan["prices"] = [
        {"meter": "image", "model": "per_unit", "unit_price": "999999999999.999999999999"},
        {
            "meter": "ticket_resolved",
            "model": "graduated",
            "tiers": [
                {"up_to": "999999999999999999", "unit_price": "1", "flat_fee": largest},
                {"up_to": None, "unit_price": largest, "flat_fee": largest},
            ],
        },
    ]
    assert api.post("/api/v1/plans", plan, format="json").status_code == 201
    r = api.post(
        "/api/v1/customers",
        {"external_id": "acme", "name": "Acme", "currency": "USD", "tax_rate": "100"},
        format="json",
    )
    assert r.status_code == 201, r.content
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        r = api.post(
            "/api/v1/subscriptions",
            {"customer": "acme", "plan": "pro", "seats": MAX_SEATS},
            format="json",
        )
    assert r.status_code == 201, r.content
    invoice = Invoice.objects.get()
    assert invoice.subtotal == D(largest) * (MAX_SEATS + 1)
    assert invoice.total == 2 * invoice.subtotal


def test_subscription_create_issues_allowance(api, meters):
    api.post("/api/v1/plans", PRO, format="json")
    api.post(
        "/api/v1/customers",
        {"external_id": "acme", "name": "Acme", "currency": "USD"},
        format="json",
    )
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        r = api.post(
            "/api/v1/subscriptions",
            {"customer": "acme", "plan": "pro", "start": "2026-01-01T00:00:00Z"},
            format="json",
        )
        assert r.status_code == 201, r.content
        body = r.json()
        assert (
            body["plan"],
            body["plan_version"],
            body["status"],
            body["seats"],
            body["overage"],
        ) == ("pro", 1, "active", 1, "wallet")
        assert body["current_period"] == {
            "start": "2026-01-01T00:00:00+00:00",
            "end": "2026-02-01T00:00:00+00:00",
        }
        grant = Grant.objects.get(purpose="allowance")
        assert (grant.asset_id, grant.amount, grant.meters, grant.expires_at.isoformat()) == (
            "tokens",
            1_000_000,
            ["llm_tokens"],
            "2026-02-01T00:00:00+00:00",
        )
        again = api.post(
            "/api/v1/subscriptions", {"customer": "acme", "plan": "pro"}, format="json"
        )
        assert again.status_code == 409 and again.json()["code"] == "subscription_exists"
        listed = api.get("/api/v1/subscriptions?customer=acme").json()["results"]
        assert [s["id"] for s in listed] == [body["id"]]
