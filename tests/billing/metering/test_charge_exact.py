"""A charge is exact to the ledger's 12 places in every asset: an amount is rounded only
where it is shown (at the asset's decimals, in answers) or invoiced (once per line). Five
events worth 0.00265 credits each, in an asset of 2 decimals, take 0.01325 credits, on every
path: one event (the database function and the Python path), a batch, a hold and its
capture."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import UsageCounter, UsageEvent
from tests.billing.scenario import grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import Grant

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def credits_customer(api, clock):
    """acme, prepaid, on tokens at 0.000265 credits each (an asset of 2 decimals), with a
    grant of 1 credit: 10 tokens are worth 0.00265 credits."""
    ensure_currencies()
    r = api.post(
        "/api/v1/assets",
        {"code": "credits", "name": "Credits", "decimals": 2, "rates": []},
        format="json",
    )
    assert r.status_code == 201, r.content
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(
        api,
        "credits",
        [
            {
                "meter": "llm_tokens",
                "model": "per_unit",
                "unit_price": "0.000265",
                "asset": "credits",
            }
        ],
    )
    setup_customer(api, "acme", plan="credits")
    grant(api, "acme", "credits", "1", id="c1")


def ledger_took(total: str) -> None:
    """The grant, the events and the period's counter all say ``total`` credits."""
    assert Grant.objects.get(pk="c1").remaining == D(1) - D(total)
    assert sum(UsageEvent.objects.values_list("amount", flat=True), D(0)) == D(total)
    counter = UsageCounter.objects.get()
    assert (counter.amount, counter.billable, counter.events) == (D(total), D(50), 5)


@pytest.mark.parametrize("on", [True, False])
def test_five_single_events(api, settings, credits_customer, in_database, on):
    settings.CHARGE_IN_DATABASE = on
    answers = []
    for i in range(5):
        r = api.post(
            "/api/v1/events",
            {"id": f"e{i}", "customer": "acme", "meter": "llm_tokens", "quantity": "10"},
            format="json",
        )
        assert r.status_code == 201, r.content
        answers.append(r.json())

    ledger_took("0.01325")
    # the answers show credits at their 2 decimals
    assert [a["charge"]["amount"] for a in answers] == ["0.00"] * 5
    assert [a["charge"]["funding"][0]["amount"] for a in answers] == ["0.00"] * 5
    assert answers[-1]["balances"] == [
        {"asset": "credits", "available": "0.99"},  # 0.98675
        {"asset": "tokens", "available": "0"},
    ]
    # the first one makes the revenue account (the Python path); the function the rest
    assert in_database == (["e1", "e2", "e3", "e4"] if on else [])


def test_a_batch(api, credits_customer):
    events = [
        {"id": f"e{i}", "customer": "acme", "meter": "llm_tokens", "quantity": "10"}
        for i in range(5)
    ]
    r = api.post("/api/v1/events/batch", {"events": events}, format="json")

    assert [e["status"] for e in r.json()["results"]] == ["accepted"] * 5
    ledger_took("0.01325")


@pytest.mark.parametrize("on", [True, False])
def test_holds_and_their_captures(
    api, settings, credits_customer, in_database, reserved_in_database, on
):
    settings.CHARGE_IN_DATABASE = on
    for i in range(5):
        r = api.post(
            "/api/v1/holds",
            {"id": f"h{i}", "customer": "acme", "meter": "llm_tokens", "quantity": "10"},
            format="json",
        )
        assert r.status_code == 201, r.content
        assert r.json()["held"] == [{"asset": "credits", "amount": "0.00"}]  # 0.00265
        r = api.post(f"/api/v1/holds/h{i}/capture", {"quantity": "10"}, format="json")
        assert r.status_code == 200, r.content

    ledger_took("0.01325")
    assert Grant.objects.get(pk="c1").held == 0
    assert len(reserved_in_database) == (5 if on else 0)
    assert in_database == (["h1", "h2", "h3", "h4"] if on else [])


@pytest.mark.parametrize("on", [True, False])
def test_a_price_in_the_meters_own_custom_unit(api, settings, clock, in_database, on):
    """A meter counted in credits (2 decimals) priced in credits: the units are the
    payment, drawn exactly (0.00265 credits for 0.01 units at 0.265)."""
    settings.CHARGE_IN_DATABASE = on
    ensure_currencies()
    api.post(
        "/api/v1/assets",
        {"code": "credits", "name": "Credits", "decimals": 2, "rates": []},
        format="json",
    )
    setup_meter(api, "spend", "credits")
    setup_plan(
        api,
        "own",
        [{"meter": "spend", "model": "per_unit", "unit_price": "0.265", "asset": "credits"}],
    )
    setup_customer(api, "acme", plan="own")
    grant(api, "acme", "credits", "1", id="c1")
    for i in range(5):
        body = {"id": f"e{i}", "customer": "acme", "meter": "spend", "quantity": "0.01"}
        assert api.post("/api/v1/events", body, format="json").status_code == 201

    assert Grant.objects.get(pk="c1").remaining == D("0.98675")
    assert sum(UsageEvent.objects.values_list("amount", flat=True), D(0)) == D("0.01325")
    assert in_database == (["e1", "e2", "e3", "e4"] if on else [])
