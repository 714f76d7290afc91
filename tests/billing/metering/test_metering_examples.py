"""docs/charging.md examples A, C, D, G, H over the API, with exact amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Alert, UsageCounter, UsageEvent
from tests.billing.scenario import available, event, grant, setup_customer, setup_meter, setup_plan
from wallets.models import Grant, LedgerEntry

D = Decimal
pytestmark = pytest.mark.django_db

GRADUATED = {
    "meter": "llm_tokens",
    "included": "1000000",
    "model": "graduated",
    "tiers": [
        {"up_to": "10000000", "unit_price": "0.000002"},
        {"up_to": None, "unit_price": "0.0000015"},
    ],
}


def test_example_a_hybrid_prepaid(api, clock):
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "pro", [GRADUATED], base_fee="49.00")
    setup_customer(api)
    grant(api, "acme", "USD", "20.00", id="g1")

    r = event(api, "e1", "acme", "llm_tokens", "800000")
    assert r.status_code == 201, r.content
    charge = r.json()["charge"]
    assert (charge["included"], charge["billable"], charge["amount"]) == (
        "800000",
        "0",
        "0.000000000000",
    )

    r = event(api, "e2", "acme", "llm_tokens", "700000")
    assert r.status_code == 201
    body = r.json()
    assert body["charge"]["included"] == "200000"
    assert body["charge"]["billable"] == "500000"
    assert body["charge"]["amount"] == "1.000000000000"
    assert body["charge"]["asset"] == "USD"
    assert body["charge"]["funding"] == [
        {"grant": "g1", "asset": "USD", "amount": "1.000000000000"}
    ]
    assert {b["asset"]: b["available"] for b in body["balances"]} == {
        "USD": "19.000000000000",
        "tokens": "0",
    }

    entries_before = LedgerEntry.objects.count()
    r = event(api, "e3", "acme", "llm_tokens", "9600000")
    assert r.status_code == 402
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "insufficient_funds"
    assert r.json()["event"]["status"] == "declined"
    assert LedgerEntry.objects.count() == entries_before
    assert UsageEvent.objects.get(event_id="e3").status == "declined"
    assert available(api, "acme", "USD") == D("19")

    r = event(api, "e4", "acme", "llm_tokens", "9500000")
    assert r.status_code == 201
    assert r.json()["charge"]["amount"] == "19.000000000000"
    assert available(api, "acme", "USD") == D("0")
    counter = UsageCounter.objects.get()
    assert (counter.quantity, counter.included, counter.billable, counter.amount) == (
        D("11000000"),
        D("1000000"),
        D("10000000"),
        D("20"),
    )

    usage = api.get("/api/v1/customers/acme/usage").json()
    assert usage["period"] == {
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-02-01T00:00:00+00:00",
    }
    meter = usage["meters"][0]
    assert (
        meter["meter"],
        meter["quantity"],
        meter["included"],
        meter["included_remaining"],
        meter["billable"],
        meter["amount"],
        meter["asset"],
    ) == ("llm_tokens", "11000000", "1000000", "0", "10000000", "20", "USD")


def test_replay_and_conflict(api, clock):
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "pro", [GRADUATED])
    setup_customer(api)
    grant(api, "acme", "USD", "20.00")
    first = event(api, "e1", "acme", "llm_tokens", "1500000")
    again = event(api, "e1", "acme", "llm_tokens", "1500000")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert UsageEvent.objects.count() == 1
    conflict = event(api, "e1", "acme", "llm_tokens", "1")
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"
    assert available(api, "acme", "USD") == D("19")


def test_example_c_outcomes_postpaid_and_reversal(api, clock):
    setup_meter(api, "ticket_resolved", "outcomes", "count")
    setup_plan(
        api, "support", [{"meter": "ticket_resolved", "model": "per_unit", "unit_price": "0.99"}]
    )
    setup_customer(api, plan="support", overage="invoice")
    for i in range(130):
        r = event(api, f"t{i}", "acme", "ticket_resolved")
        assert r.status_code == 201, r.content
        assert r.json()["charge"]["accrued"] == "0.99"
    r = api.post("/api/v1/events/t7/reverse")
    assert r.status_code == 200 and r.json()["status"] == "reversed"
    again = api.post("/api/v1/events/t7/reverse")
    assert again.status_code == 200
    counter = UsageCounter.objects.get()
    assert (counter.quantity, counter.accrued, counter.amount, counter.events) == (
        D("129"),
        D("127.71"),
        D("0"),
        129,
    )
    usage = api.get("/api/v1/customers/acme/usage").json()["meters"][0]
    assert (usage["quantity"], usage["amount"], usage["accrued"]) == ("129", "127.71", "127.71")


def test_example_d_custom_asset_credits(api, clock):
    api.post(
        "/api/v1/assets",
        {
            "code": "credits",
            "name": "Credits",
            "decimals": 0,
            "rates": [{"currency": "USD", "rate": "0.01"}],
        },
        format="json",
    )
    setup_meter(api, "image", "images", "count")
    setup_plan(
        api,
        "studio",
        [{"meter": "image", "model": "per_unit", "unit_price": "4", "asset": "credits"}],
    )
    setup_customer(api, plan="studio")
    grant(
        api,
        "acme",
        "credits",
        "100",
        id="promo",
        purpose="promotional",
        priority=1,
        expires_at="2026-01-31T00:00:00Z",
    )
    grant(
        api,
        "acme",
        "credits",
        "1000",
        id="paid",
        purpose="paid",
        priority=10,
        cost={"amount": "10.00", "currency": "USD"},
    )
    for i in range(30):
        r = event(api, f"img{i}", "acme", "image")
        assert r.status_code == 201, r.content
    assert r.json()["charge"]["amount"] == "4"
    assert Grant.objects.get(pk="promo").remaining == 0
    assert Grant.objects.get(pk="paid").remaining == D("980")
    assert available(api, "acme", "credits") == D("980")


def test_example_h_spend_limit(api, clock):
    setup_meter(api, "ticket_resolved", "outcomes", "count")
    setup_plan(
        api, "support", [{"meter": "ticket_resolved", "model": "per_unit", "unit_price": "0.99"}]
    )
    setup_customer(api, plan="support", overage="invoice")
    r = api.put(
        "/api/v1/customers/acme/spend-limit",
        {"amount": "100.00", "window": "period", "mode": "hard", "alert_thresholds": [50, 80]},
        format="json",
    )
    assert r.status_code == 200, r.content
    fired = []
    for i in range(1, 103):
        r = event(api, f"t{i}", "acme", "ticket_resolved")
        fired.append(
            sorted(
                Alert.objects.filter(event_id=f"t{i}", kind=Alert.Kind.THRESHOLD).values_list(
                    "threshold", flat=True
                )
            )
        )
        if i <= 101:
            assert r.status_code == 201, (i, r.content)
    assert fired[50] == [50] and fired[80] == [80]
    assert sum(len(f) for f in fired) == 2
    assert r.status_code == 402 and r.json()["code"] == "spend_limit_exceeded"
    assert UsageEvent.objects.get(event_id="t102").decline_code == "spend_limit_exceeded"
    exceeded = Alert.objects.get(kind=Alert.Kind.EXCEEDED)
    assert (exceeded.event_id, exceeded.spent, exceeded.limit_amount) == (
        "t102",
        D("99.99"),
        D("100"),
    )
    exceeded = Alert.objects.get(kind=Alert.Kind.EXCEEDED)
    assert (exceeded.event_id, exceeded.spent, exceeded.limit_amount) == (
        "t102",
        D("99.99"),
        D("100"),
    )
    spend = api.get("/api/v1/customers/acme/usage").json()["spend"]
    assert (spend["amount"], spend["limit"], spend["currency"]) == ("99.99", "100", "USD")


def test_example_g_hold_and_capture(api, clock):
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(
        api, "metered", [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.000002"}]
    )
    setup_customer(api, plan="metered")
    grant(api, "acme", "USD", "10.00", id="g1")
    r = api.post(
        "/api/v1/holds",
        {
            "id": "h1",
            "customer": "acme",
            "meter": "llm_tokens",
            "quantity": "2000000",
            "expires_in": 600,
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "pending"
    assert r.json()["held"] == [{"asset": "USD", "amount": "4.000000000000"}]
    assert available(api, "acme", "USD") == D("6")
    r = api.post("/api/v1/holds/h1/capture", {"quantity": "1200000"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "captured"
    assert r.json()["event"]["charge"]["amount"] == "2.400000000000"
    assert available(api, "acme", "USD") == D("7.6")
    again = api.post("/api/v1/holds/h1/capture", {"quantity": "1"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "hold_not_pending"
    void = api.post("/api/v1/holds/h1/void")
    assert void.status_code == 409 and void.json()["code"] == "hold_not_pending"
