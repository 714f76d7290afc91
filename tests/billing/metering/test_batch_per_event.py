"""Each event of a batch succeeds or fails on its own, with its own error in the results:
one event out of range never fails the batch."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from billing.metering import decide
from billing.models import UsageCounter, UsageEvent
from tests.billing.scenario import grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(api, clock):
    """acme on tokens at USD 0.01 (with USD 100) and ``big`` at USD 10^11 a unit,
    postpaid."""
    ensure_currencies()
    setup_meter(api, "llm_tokens", "tokens")
    setup_meter(api, "big", "bigs")
    setup_plan(
        api,
        "pro",
        [
            {"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.01"},
            {"meter": "big", "model": "per_unit", "unit_price": "100000000000"},
        ],
    )
    setup_customer(api, "acme", plan="pro", overage="invoice")
    grant(api, "acme", "USD", "100", id="g1")


def ok(event_id: str, quantity: str = "10", meter: str = "llm_tokens") -> str:
    return json.dumps({"id": event_id, "customer": "acme", "meter": meter, "quantity": quantity})


BAD = {  # id → (the event's JSON, its code, the field its errors name)
    "too-big": (ok("too-big", "1000000000000000000"), "invalid", "quantity"),
    "too-precise": (ok("too-precise", "0.0000000000001"), "invalid", "quantity"),
    "nan": (ok("nan", "NaN"), "invalid", "quantity"),
    "negative": (ok("negative", "-1"), "invalid", "quantity"),
    "charge-too-large": (ok("charge-too-large", "10000000", "big"), "amount_too_large", "quantity"),
    "no-customer": (
        '{"id": "no-customer", "customer": "nobody", "meter": "llm_tokens"}',
        "unknown_customer",
        "customer",
    ),
    "no-meter": ('{"id": "no-meter", "customer": "acme", "meter": "x"}', "unknown_meter", "meter"),
    "future": (
        '{"id": "future", "customer": "acme", "meter": "llm_tokens", '
        '"timestamp": "2030-01-01T00:00:00Z"}',
        "invalid_timestamp",
        "timestamp",
    ),
    "nul": (
        '{"id": "nul", "customer": "acme", "meter": "llm_tokens", "properties": {"a": "\\u0000"}}',
        "invalid",
        "properties",
    ),
}


def test_a_batch_of_good_events_and_each_kind_of_bad_one(api, acme):
    parts = [ok("good-1")]
    for text, _, _ in BAD.values():
        parts += [text, ok(f"good-after-{len(parts)}")]
    # an id no JSON answer can carry: answered without it
    parts.append('{"id": "\\ud800", "customer": "acme\\ud800", "meter": "llm_tokens"}')
    parts.append(ok("big-1", "9000000", "big"))  # 9 × 10^17: fine
    parts.append(ok("big-2", "1000000", "big"))  # the period's amount would reach 10^18

    r = api.post(
        "/api/v1/events/batch",
        '{"events": [' + ", ".join(parts) + "]}",
        content_type="application/json",
    )

    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert len(results) == len(parts)
    by_id = {result["id"]: result for result in results}
    for event_id, (_, code, field) in BAD.items():
        result = by_id[event_id]
        assert (result["status"], result["code"]) == ("invalid", code), result
        assert field in result["errors"] or code == "unknown_customer", result
    assert (results[-3]["id"], results[-3]["status"]) == (None, "invalid")
    good = [result for result in results if str(result["id"]).startswith("good")]
    assert [g["status"] for g in good] == ["accepted"] * (len(BAD) + 1)
    assert by_id["big-1"]["status"] == "accepted"
    assert (by_id["big-2"]["status"], by_id["big-2"]["code"]) == ("invalid", "amount_too_large")
    assert UsageEvent.objects.count() == len(good) + 1
    tokens = UsageCounter.objects.get(price__meter__code="llm_tokens")
    assert (tokens.quantity, tokens.amount) == (D(10) * len(good), D("0.1") * len(good))


def test_a_value_the_database_refuses_fails_that_event_alone(api, acme, monkeypatch):
    """Were a bound check missing, PostgreSQL's refusal of one event's value (a counter
    beyond its column) would roll the batch's part back: its events are then charged one
    by one, and only that one fails."""
    monkeypatch.setattr(decide, "check_bounds", lambda charge, totals: None)
    events = [
        {"id": "a", "customer": "acme", "meter": "llm_tokens", "quantity": "10"},
        {"id": "huge", "customer": "acme", "meter": "big", "quantity": "99999999999999999"},
        {"id": "b", "customer": "acme", "meter": "llm_tokens", "quantity": "5"},
    ]

    r = api.post("/api/v1/events/batch", {"events": events}, format="json")

    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert [(e["id"], e["status"], e["code"]) for e in results] == [
        ("a", "accepted", None),
        ("huge", "invalid", "invalid"),
        ("b", "accepted", None),
    ]
    assert results[2]["balances"][0] == {"asset": "USD", "available": "99.850000000000"}
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["a", "b"]
