"""A subscription's start: with an offset, at most a year ahead, and in the past at most one
billing period unless backdated explicitly — then without invoicing the missed periods,
unless asked to, and never further back than the hard floor."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import Invoice, Subscription
from billing.periodic import billing_run, invoices_finalize_due
from billing.subscriptions import subscription_create
from core.errors import ValidationFailed
from tests.billing.scenario import event
from tests.factories import CustomerFactory, MeterFactory, PublishedPlanFactory
from wallets.models import Grant

pytestmark = pytest.mark.django_db

D = Decimal
NOW = "2026-03-10T12:00:00Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture
def plans(db):
    PublishedPlanFactory(code="pro", name="Pro", base_fee="10.00")
    PublishedPlanFactory(code="daily", name="Daily", interval="day", base_fee="1.00")
    MeterFactory(code="tickets", unit="outcomes", counted=True)
    PublishedPlanFactory(
        code="support",
        name="Support",
        prices=[{"meter": "tickets", "model": "per_unit", "unit_price": "0.99"}],
    )
    CustomerFactory(external_id="acme", name="Acme")


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def subscribe(api, **body):
    return api.post(
        "/api/v1/subscriptions", {"customer": "acme", "plan": "pro", **body}, format="json"
    )


def refused(response, field: str) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == [field], body
    assert Subscription.objects.count() == Invoice.objects.count() == Grant.objects.count() == 0
    return body["errors"][field][0]


@pytest.mark.parametrize("start", ["1990-01-01T00:00:00Z", "0008-01-01T00:00:00Z"])
def test_a_start_long_ago_is_refused_naming_the_earliest_allowed(api, plans, clock, start):
    message = refused(subscribe(api, start=start), "start")
    assert message == (
        "At most 1 month in the past: the earliest allowed start is 2026-02-10T12:00:00+00:00. "
        'An earlier start needs "backdate": true.'
    )


def test_a_start_within_one_period_back_is_invoiced_from_the_start(api, plans, clock):
    r = subscribe(api, start="2026-02-10T12:00:00Z")
    assert r.status_code == 201, r.content
    assert r.json()["current_period"] == {
        "start": "2026-02-10T12:00:00+00:00",
        "end": "2026-03-10T12:00:00+00:00",
    }
    assert billing_run(as_of=at(NOW)).steps["periods closed"] == 1
    assert Invoice.objects.count() == 2


def test_the_setting_widens_the_bound(api, plans, clock, settings):
    settings.BILLFOLD = {**settings.BILLFOLD, "SUBSCRIPTION_MAX_BACKDATE_PERIODS": 3}
    assert subscribe(api, start="2025-12-10T12:00:00Z").status_code == 201
    Subscription.objects.update(status="ended")
    message = refused_after_one(subscribe(api, start="2025-12-10T11:59:59Z"), "start")
    assert "At most 3 months in the past" in message


def refused_after_one(response, field: str) -> str:
    assert response.status_code == 400, response.content
    assert Subscription.objects.count() == 1
    return response.json()["errors"][field][0]


def test_backdated_subscription_bills_from_the_current_period_only(api, plans, clock):
    r = subscribe(api, start="2019-01-31T00:00:00Z", backdate=True)
    assert r.status_code == 201, r.content
    body = r.json()
    # periods are counted from January 31 (month ends stick), billing begins with the one
    # containing now
    assert body["current_period"] == {
        "start": "2026-02-28T00:00:00+00:00",
        "end": "2026-03-31T00:00:00+00:00",
    }
    assert body["started_at"] == "2026-02-28T00:00:00+00:00"
    assert "backdate" not in body
    sub = Subscription.objects.get()
    assert sub.billing_anchor == at("2019-01-31T00:00:00Z")
    (first,) = Invoice.objects.all()
    assert (first.period_start, first.total) == (at("2026-02-28T00:00:00Z"), D("10.00"))
    assert billing_run(as_of=at(NOW)).steps["periods closed"] == 0
    assert billing_run(as_of=at("2026-03-31T00:00:00Z")).steps["periods closed"] == 1
    assert list(
        Invoice.objects.order_by("period_start").values_list("period_start", flat=True)
    ) == [
        at("2026-02-28T00:00:00Z"),
        at("2026-03-31T00:00:00Z"),
    ]
    sub.refresh_from_db()
    assert sub.current_period_end == at("2026-04-30T00:00:00Z")  # the anchor's day, clamped


def test_backdated_subscription_takes_no_events_of_the_periods_not_billed(api, plans, clock):
    r = subscribe(
        api, plan="support", start="2020-06-05T00:00:00Z", backdate=True, overage="invoice"
    )
    assert r.status_code == 201, r.content
    assert Invoice.objects.count() == 0  # nothing in advance
    old = event(api, "e0", "acme", "tickets", ts="2026-02-01T00:00:00Z")
    assert old.status_code == 422, old.content
    assert event(api, "e1", "acme", "tickets", ts="2026-03-06T00:00:00Z").status_code == 201
    assert event(api, "e2", "acme", "tickets", ts="2026-03-07T00:00:00Z").status_code == 201


def test_a_backdated_usage_plan_keeps_its_usage_when_the_invoice_is_finalized(api, plans, clock):
    """The first invoice of a backdated subscription without in-advance fees covers the
    period billing began with, not the years since its anchor."""
    customer = CustomerFactory(external_id="beta")
    sub = subscription_create(
        customer=customer,
        plan="support",
        start=at("2020-06-05T00:00:00Z"),
        overage="invoice",
        backdate=True,
    )
    for n in range(3):
        r = event(api, f"t{n}", "beta", "tickets", ts="2026-03-06T00:00:00Z")
        assert r.status_code == 201, r.content
    assert billing_run(as_of=sub.current_period_end).steps["periods closed"] == 1
    invoice = Invoice.objects.get()
    assert invoice.total == D("2.97")
    clock.move_to("2026-04-07T00:00:00Z")
    assert invoices_finalize_due() == [invoice.pk]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total) == ("finalized", D("2.97"))
    assert [(line.kind, line.amount) for line in invoice.lines.all()] == [("outcome", D("2.97"))]


def test_backdating_with_missed_periods_invoices_each_of_them(api, plans, clock):
    r = subscribe(api, start="2025-03-10T12:00:00Z", backdate=True, invoice_missed_periods=True)
    assert r.status_code == 201, r.content
    assert r.json()["current_period"]["start"] == "2025-03-10T12:00:00+00:00"
    assert billing_run(as_of=at(NOW)).steps["periods closed"] == 12
    assert Invoice.objects.count() == 13
    assert Invoice.objects.filter(total=D("10.00")).count() == 13


def test_backdating_has_a_hard_floor(api, plans, clock):
    message = refused(subscribe(api, start="1990-01-01T00:00:00Z", backdate=True), "start")
    assert message == ("The earliest allowed start is 2016-03-10T12:00:00+00:00 (10 years back).")
    assert subscribe(api, start="2016-03-10T12:00:00Z", backdate=True).status_code == 201


def test_invoicing_missed_periods_is_bounded_in_periods(api, plans, clock):
    r = subscribe(
        api,
        plan="daily",
        start="2025-11-09T12:00:00Z",
        backdate=True,
        invoice_missed_periods=True,
    )
    message = refused(r, "start")
    assert message == (
        "The earliest allowed start is 2025-11-10T12:00:00+00:00 (120 missed days to invoice)."
    )
    r = subscribe(
        api,
        plan="daily",
        start="2025-11-10T12:00:00Z",
        backdate=True,
        invoice_missed_periods=True,
    )
    assert r.status_code == 201, r.content


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"start": "2026-01-01T00:00:00"}, "start", "A time with an offset"),
        ({"start": "2026-01-01 00:00:00"}, "start", "A time with an offset"),
        ({"start": "2027-03-12T00:00:00Z"}, "start", "At most a year ahead."),
        (
            {"start": "2025-01-01T00:00:00Z", "invoice_missed_periods": True},
            "invoice_missed_periods",
            'Only with "backdate": true.',
        ),
        ({"backdate": True}, "backdate", "Only for a start in the past."),
        (
            {"start": "2026-04-01T00:00:00Z", "backdate": True},
            "backdate",
            "Only for a start in the past.",
        ),
    ],
)
def test_bad_starts_are_refused_and_write_nothing(api, plans, clock, body, field, message):
    assert refused(subscribe(api, **body), field).startswith(message)


def test_the_rule_lives_in_the_service(plans, clock):
    customer = CustomerFactory(external_id="beta")
    with pytest.raises(ValidationFailed) as raised:
        subscription_create(customer=customer, plan="pro", start=at("1990-01-01T00:00:00Z"))
    assert "earliest allowed start is 2026-02-10T12:00:00+00:00" in raised.value.errors["start"][0]
    with pytest.raises(ValidationFailed) as raised:
        subscription_create(customer=customer, plan="pro", start=datetime(2026, 3, 1))
    assert list(raised.value.errors) == ["start"]
    with pytest.raises(ValidationFailed) as raised:
        subscription_create(
            customer=customer, plan="pro", start=at("2026-01-01T00:00:00Z"), backdate="yes"
        )
    assert list(raised.value.errors) == ["backdate"]
    assert Subscription.objects.count() == 0


def test_a_backdated_trial_that_is_over_is_not_a_trial(api, clock):
    PublishedPlanFactory(code="trial", name="Trial", base_fee="10.00", trial=True)
    CustomerFactory(external_id="acme", name="Acme")
    r = subscribe(api, plan="trial", start="2025-01-10T00:00:00Z", backdate=True)
    assert r.status_code == 201, r.content
    assert (r.json()["status"], r.json()["trial_ends_at"]) == ("active", None)
    assert Invoice.objects.get().total == D("10.00")
    Subscription.objects.update(status="ended")
    r = subscribe(api, plan="trial", start="2026-03-01T00:00:00Z", backdate=True)
    assert r.status_code == 201, r.content
    assert (r.json()["status"], r.json()["trial_ends_at"]) == (
        "trialing",
        "2026-03-15T00:00:00+00:00",
    )
