"""What a periodically rated price may price is bounded as its events arrive: an event after
which the period could price at 10^18 or more is refused with ``422 amount_too_large`` and
writes nothing — one event (whatever ``CHARGE_IN_DATABASE``), a batch (that event alone), a
hold, a capture. Rating refuses such a period cleanly as a backstop, and a wallet's debt stays
below 10^18."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import Alert, Subscription, UsageCounter, UsageEvent
from billing.periodic import rating_run, subscription_period_close
from plans.models import Price
from tests.billing.scenario import setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import Account, Hold, LedgerEntry

D = Decimal
pytestmark = pytest.mark.django_db
BIG = "100000000000"  # 10^11 per unit: 10^7 units price at 10^18
TOP = "999999999999"  # the largest unit price the catalogue accepts


def plan(api, aggregation, price, overage="invoice", prop=None):
    ensure_currencies()
    setup_meter(api, "gpus", "gpus", aggregation, prop=prop)
    setup_plan(api, "big", [{"meter": "gpus", **price}])
    setup_customer(api, "acme", plan="big", overage=overage)


def post(api, event_id, quantity, **properties):
    body = {"id": event_id, "customer": "acme", "meter": "gpus", "quantity": quantity}
    if properties:
        body["properties"] = properties
    return api.post("/api/v1/events", body, format="json")


def refused(r) -> None:
    assert r.status_code == 422, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert (r.json()["code"], r.json()["status"]) == ("amount_too_large", 422)


def written() -> tuple:
    return (
        sorted(UsageEvent.objects.values_list("event_id", flat=True)),
        LedgerEntry.objects.count(),
        sorted(UsageCounter.objects.values_list("price_id", "quantity", "events")),
    )


def close() -> None:
    invoice = subscription_period_close(
        subscription_id=Subscription.objects.get().pk,
        now=datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC),
    )
    assert invoice is not None


@pytest.mark.parametrize("aggregation", ["max", "latest"])
@pytest.mark.parametrize("on", [True, False])
def test_max_and_latest_bound_the_price_of_the_events_own_quantity(
    api, settings, clock, aggregation, on
):
    settings.CHARGE_IN_DATABASE = on
    plan(api, aggregation, {"model": "per_unit", "unit_price": BIG})
    assert post(api, "e1", "9999999").status_code == 201  # 9.999999 × 10^17
    before = written()

    refused(post(api, "huge", "10000000000000000"))  # 10^16 units: 10^27

    assert written() == before
    refused(post(api, "huge", "10000000"))  # 10^7: exactly 10^18; the id is still free
    assert post(api, "e2", "9999999").status_code == 201
    report = rating_run()
    assert report.failures == []
    counter = UsageCounter.objects.get()
    assert (counter.quantity, counter.accrued) == (D(9999999), D(9999999) * 10**11)
    close()


@pytest.mark.parametrize("on", [True, False])
def test_a_volume_price_bounds_the_periods_running_quantity(api, settings, clock, on):
    settings.CHARGE_IN_DATABASE = on
    plan(api, "sum", {"model": "volume", "tiers": [{"up_to": None, "unit_price": BIG}]})
    assert post(api, "e1", "5000000").status_code == 201
    assert post(api, "e2", "4000000").status_code == 201
    before = written()

    refused(post(api, "e3", "1000000"))  # the period's 10^7 would price at 10^18

    assert written() == before
    counter = UsageCounter.objects.get()
    assert (counter.quantity, counter.events) == (D(9000000), 2)
    assert post(api, "e3", "999999").status_code == 201
    assert rating_run().failures == []
    counter.refresh_from_db()
    assert (counter.quantity, counter.accrued) == (D(9999999), D(9999999) * 10**11)
    refused(post(api, "e4", "1"))  # the counter rating set, plus one: 10^18
    close()


def test_a_count_meter_with_a_volume_price_counts_its_events(api, clock):
    plan(api, "count", {"model": "volume", "tiers": [{"up_to": None, "unit_price": TOP}]})
    Subscription.objects.get()
    UsageCounter.objects.create(
        subscription=Subscription.objects.get(),
        period_start=datetime(2026, 1, 1, tzinfo=UTC),
        period_end=datetime(2026, 2, 1, tzinfo=UTC),
        price=Price.objects.get(),
        quantity=D(999999),  # as if that many events were counted
        events=999999,
    )
    assert post(api, "e1", "1").status_code == 201  # 10^6 × TOP < 10^18

    refused(post(api, "e2", "1"))


def test_a_volume_price_is_held_to_the_most_it_costs_below_the_periods_quantity(api, clock):
    """3 × 10^6 units price at 3 × 10^6, but a reversal could leave the period at 1.9 × 10^6,
    in the first tier: 1.9 × 10^18."""
    from plans.pricing import peak_amount, price_spec_parse, total_amount

    tiers = [{"up_to": "2000000", "unit_price": TOP}, {"up_to": None, "unit_price": "1"}]
    plan(api, "sum", {"model": "volume", "tiers": tiers})
    spec = price_spec_parse({"model": "volume", "tiers": tiers})
    assert total_amount(spec, D(3000000)) == D(3000000)
    assert peak_amount(spec, D(3000000)) == D(2000000) * D(TOP)

    refused(post(api, "e1", "3000000"))

    assert post(api, "e2", "1000000").status_code == 201  # 10^6 × TOP < 10^18


def test_unique_count_bounds_the_number_of_events(api, clock):
    """The distinct values are at most the events: a period of 10^6 events at TOP each may
    price at 9.99999999999 × 10^17; one more may not, whatever its value."""
    plan(api, "unique_count", {"model": "per_unit", "unit_price": TOP}, prop="user")
    UsageCounter.objects.create(
        subscription=Subscription.objects.get(),
        period_start=datetime(2026, 1, 1, tzinfo=UTC),
        period_end=datetime(2026, 2, 1, tzinfo=UTC),
        price=Price.objects.get(),
        events=999999,
    )
    assert post(api, "u1", "1", user="ann").status_code == 201

    refused(post(api, "u2", "1", user="ann"))

    assert UsageCounter.objects.get().events == 1000000


def test_a_batch_refuses_that_event_alone(api, clock):
    plan(api, "max", {"model": "per_unit", "unit_price": BIG})
    events = [
        {"id": "b1", "customer": "acme", "meter": "gpus", "quantity": "5"},
        {"id": "b2", "customer": "acme", "meter": "gpus", "quantity": "10000000000000000"},
        {"id": "b3", "customer": "acme", "meter": "gpus", "quantity": "7"},
    ]

    r = api.post("/api/v1/events/batch", {"events": events}, format="json")

    assert r.status_code == 200, r.content
    results = {e["id"]: e for e in r.json()["results"]}
    assert (results["b2"]["status"], results["b2"]["code"]) == ("invalid", "amount_too_large")
    assert results["b1"]["status"] == results["b3"]["status"] == "accepted"
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["b1", "b3"]


def test_a_batch_counts_its_events_toward_the_running_quantity(api, clock):
    plan(api, "sum", {"model": "volume", "tiers": [{"up_to": None, "unit_price": BIG}]})
    events = [
        {"id": f"b{i}", "customer": "acme", "meter": "gpus", "quantity": "3000000"}
        for i in range(4)
    ]

    r = api.post("/api/v1/events/batch", {"events": events}, format="json")

    statuses = [e["status"] for e in r.json()["results"]]
    assert statuses == ["accepted", "accepted", "accepted", "invalid"]
    counter = UsageCounter.objects.get()
    assert (counter.quantity, counter.events) == (D(9000000), 3)


@pytest.mark.parametrize("on", [True, False])
def test_a_hold_and_a_capture_are_bounded_as_an_event(api, settings, clock, on):
    settings.CHARGE_IN_DATABASE = on
    plan(api, "max", {"model": "per_unit", "unit_price": BIG})
    huge = {"id": "h0", "customer": "acme", "meter": "gpus", "quantity": "10000000000000000"}
    refused(api.post("/api/v1/holds", huge, format="json"))
    assert not Hold.objects.exists()
    body = {"id": "h1", "customer": "acme", "meter": "gpus", "quantity": "1"}
    assert api.post("/api/v1/holds", body, format="json").status_code == 201
    before = written()

    refused(api.post("/api/v1/holds/h1/capture", {"quantity": "10000000"}, format="json"))

    assert written() == before
    assert Hold.objects.get().status == Hold.Status.PENDING
    r = api.post("/api/v1/holds/h1/capture", {"quantity": "9999999"}, format="json")
    assert r.status_code == 200, r.content
    assert UsageCounter.objects.get().events == 1


def test_rating_refuses_a_period_priced_past_10_18_cleanly(api, clock):
    """Data written around the checks (here by hand) is recorded as the subscription's
    rating and close failure, with nothing written for it."""
    plan(api, "max", {"model": "per_unit", "unit_price": BIG})
    assert post(api, "e1", "5").status_code == 201
    UsageEvent.objects.filter(event_id="e1").update(quantity=D(10) ** 16)

    report = rating_run()

    assert len(report.failures) == 1
    assert "RatedAmountTooLarge" in report.failures[0].reason
    assert "10^18" in report.failures[0].reason
    assert Alert.objects.get().kind == Alert.Kind.RATING_FAILED
    assert UsageCounter.objects.get().accrued == 0  # as the event left it
    with pytest.raises(Exception, match="10\\^18"):
        close()


@pytest.mark.parametrize("on", [True, False])
def test_captures_cannot_take_a_wallets_debt_to_10_18(api, settings, clock, on):
    """Prepaid, nothing in the wallet: holds of nothing on two prices of USD 10^11 a call,
    made before any debt; each capture stays within its period's bounds, but together
    they would owe 1.1 × 10^18."""
    settings.CHARGE_IN_DATABASE = on
    ensure_currencies()
    for meter in ("a", "b"):
        setup_meter(api, meter, "calls")
    price = {"model": "per_unit", "unit_price": BIG}
    setup_plan(api, "big", [{"meter": "a", **price}, {"meter": "b", **price}])
    setup_customer(api, "acme", plan="big", overage="wallet")
    for meter in ("a", "b"):
        body = {"id": f"h{meter}", "customer": "acme", "meter": meter, "quantity": "0"}
        assert api.post("/api/v1/holds", body, format="json").status_code == 201
    r = api.post("/api/v1/holds/ha/capture", {"quantity": "9000000"}, format="json")
    assert r.status_code == 200, r.content
    account = Account.objects.get(asset_id="USD", wallet__isnull=False)
    assert account.debt == D(9) * 10**17
    before = written()

    refused(api.post("/api/v1/holds/hb/capture", {"quantity": "2000000"}, format="json"))

    assert written() == before
    assert Hold.objects.get(pk="hb").status == Hold.Status.PENDING
    r = api.post("/api/v1/holds/hb/capture", {"quantity": "990000"}, format="json")
    assert r.status_code == 200, r.content
    account.refresh_from_db()
    assert account.debt == D("9.99") * 10**17
