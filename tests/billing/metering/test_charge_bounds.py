"""What the charge path accepts, the billing run can invoice: an event whose charge, or whose
period counter's totals after it, would reach 10^18 is refused with ``422
amount_too_large`` and writes nothing, on every path — one event (the database function and
the Python path), a batch (that event alone), a hold. (The amount columns hold 26 integer
digits; nothing but these checks keeps a charge below 10^18.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import Invoice, Subscription, UsageCounter, UsageEvent
from billing.periodic import subscription_period_close
from tests.billing.scenario import setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import Hold, IdempotencyRecord, LedgerEntry

D = Decimal
pytestmark = pytest.mark.django_db
TOP_PRICE = "999999999999.999999999999"  # the largest unit price a plan accepts
MILLION = "1000000"


@pytest.fixture
def postpaid(api, clock):
    """acme, postpaid (overage "invoice"), on ``tokens`` at TOP_PRICE USD and ``calls`` at
    USD 10^11 each (a million calls cost 10^17)."""
    ensure_currencies()
    setup_meter(api, "tokens", "tokens")
    setup_meter(api, "calls", "calls")
    setup_plan(
        api,
        "big",
        [
            {"meter": "tokens", "model": "per_unit", "unit_price": TOP_PRICE},
            {"meter": "calls", "model": "per_unit", "unit_price": "100000000000"},
        ],
    )
    setup_customer(api, "acme", plan="big", overage="invoice")


def post(api, event_id, meter, quantity):
    body = {"id": event_id, "customer": "acme", "meter": meter, "quantity": quantity}
    return api.post("/api/v1/events", body, format="json")


def refused(r) -> None:
    assert r.status_code == 422, r.content
    assert r["Content-Type"] == "application/problem+json"
    problem = r.json()
    assert (problem["code"], problem["status"]) == ("amount_too_large", 422)
    assert problem["type"] == "https://billfold.dev/problems/amount_too_large"


def nothing_written() -> tuple:
    return (
        UsageEvent.objects.count(),
        LedgerEntry.objects.count(),
        list(UsageCounter.objects.values_list("quantity", "billable", "amount", "accrued")),
    )


@pytest.mark.parametrize("on", [True, False])
def test_an_event_whose_charge_would_reach_10_18(api, settings, postpaid, on):
    settings.CHARGE_IN_DATABASE = on
    assert post(api, "first", "tokens", "0.5").status_code == 201
    before = nothing_written()

    r = post(api, "huge", "tokens", "100000000")

    refused(r)
    assert nothing_written() == before
    assert not UsageEvent.objects.filter(event_id="huge").exists()
    # the same id may be sent again, and is refused again (nothing was recorded)
    refused(post(api, "huge", "tokens", "100000000"))


@pytest.mark.parametrize("on", [True, False])
def test_many_events_each_fine_until_the_counter_would_reach_10_18(
    api, settings, postpaid, in_database, on
):
    """USD 10^17 a million calls: nine millions accrue 9 × 10^17; the tenth would take the
    period's amount to 10^18. The billing run then invoices what was accepted."""
    settings.CHARGE_IN_DATABASE = on
    for i in range(9):
        assert post(api, f"c{i}", "calls", MILLION).status_code == 201
    before = nothing_written()

    refused(post(api, "c9", "calls", MILLION))

    assert nothing_written() == before
    counter = UsageCounter.objects.get()
    assert (counter.billable, counter.accrued, counter.events) == (D(9) * 10**6, D(9) * 10**17, 9)
    assert in_database == ([f"c{i}" for i in range(9)] if on else [])
    invoice = subscription_period_close(
        subscription_id=Subscription.objects.get().pk,
        now=datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC),
    )
    assert invoice.status == Invoice.Status.DRAFT
    assert invoice.subtotal == D(9) * 10**17


@pytest.mark.parametrize("on", [True, False])
def test_the_counters_quantity_is_bounded_too(api, settings, clock, on):
    """Tokens at USD 0 (a price of zero): the charge is nothing, the period's quantity
    still may not reach 10^18."""
    settings.CHARGE_IN_DATABASE = on
    ensure_currencies()
    setup_meter(api, "tokens", "tokens")
    setup_plan(api, "free", [{"meter": "tokens", "model": "per_unit", "unit_price": "0"}])
    setup_customer(api, "acme", plan="free")
    assert post(api, "t1", "tokens", "600000000000000000").status_code == 201
    before = nothing_written()

    refused(post(api, "t2", "tokens", "400000000000000000"))

    assert nothing_written() == before


def test_a_batch_refuses_that_event_alone(api, postpaid):
    events = [
        {"id": "b1", "customer": "acme", "meter": "tokens", "quantity": "0.5"},
        {"id": "b2", "customer": "acme", "meter": "tokens", "quantity": "100000000"},
        {"id": "b3", "customer": "acme", "meter": "calls", "quantity": MILLION},
        *[
            {"id": f"c{i}", "customer": "acme", "meter": "calls", "quantity": MILLION}
            for i in range(9)
        ],
    ]

    r = api.post("/api/v1/events/batch", {"events": events}, format="json")

    assert r.status_code == 200, r.content
    results = {e["id"]: e for e in r.json()["results"]}
    assert results["b2"]["status"] == "invalid"
    assert results["b2"]["code"] == "amount_too_large"
    assert results["b2"]["errors"] == {
        "quantity": ["Its charge or its period's totals would reach 10^18."]
    }
    # b3 and c0 … c7 make nine calls; c8, the tenth, would reach 10^18
    assert [results[i]["status"] for i in ["b1", "b3", *[f"c{i}" for i in range(8)]]] == [
        "accepted"
    ] * 10
    assert (results["c8"]["status"], results["c8"]["code"]) == ("invalid", "amount_too_large")
    assert not UsageEvent.objects.filter(event_id__in=["b2", "c8"]).exists()
    calls = UsageCounter.objects.get(price__meter__code="calls")
    assert (calls.billable, calls.accrued, calls.events) == (D(9) * 10**6, D(9) * 10**17, 9)


@pytest.mark.parametrize("on", [True, False])
def test_a_hold_whose_estimate_would_reach_10_18(api, settings, postpaid, on):
    settings.CHARGE_IN_DATABASE = on
    body = {"id": "h1", "customer": "acme", "meter": "tokens", "quantity": "100000000"}

    refused(api.post("/api/v1/holds", body, format="json"))

    assert not Hold.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("on", [True, False])
def test_a_capture_that_would_reach_10_18(api, settings, postpaid, on):
    """A hold of a million calls (10^17, postpaid: nothing reserved) captured as ten
    millions: refused, the hold still pending and nothing charged."""
    settings.CHARGE_IN_DATABASE = on
    body = {"id": "h1", "customer": "acme", "meter": "calls", "quantity": MILLION}
    assert api.post("/api/v1/holds", body, format="json").status_code == 201
    before = nothing_written()

    refused(api.post("/api/v1/holds/h1/capture", {"quantity": "10000000"}, format="json"))

    assert nothing_written() == before
    assert Hold.objects.get().status == Hold.Status.PENDING
    r = api.post("/api/v1/holds/h1/capture", {"quantity": "9000000"}, format="json")
    assert r.status_code == 200, r.content


def test_the_fast_path_answers_as_the_full_stack(api, postpaid):
    from billing.api.fastpath import UsageFastPath
    from tests.api.test_fast_path import Django, call

    django = Django()
    body = {"id": "huge", "customer": "acme", "meter": "tokens", "quantity": "100000000"}
    status, headers, content = call(UsageFastPath(django), "/api/v1/events", body, api.raw_key)

    assert (status, headers["Content-Type"]) == (422, "application/problem+json")
    assert json.loads(content)["code"] == "amount_too_large"
    assert django.calls == 1  # handed to Django, which words the error
    assert not UsageEvent.objects.exists()
