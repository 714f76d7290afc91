"""A period whose credits exceed its charges (a downgrade "now") closes into an invoice of
zero and a credit note against the invoice that billed the period — never an invoice with a
negative total; what that invoice cannot take is carried to the next invoice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.invoicing import CreditLine, credit_note_create, invoice_creditable, invoice_finalize
from billing.models import ChargeItem, Invoice
from billing.periodic import subscriptions_close_due
from billing.subscriptions import (
    subscription_cancel,
    subscription_plan_change,
)
from tests.billing.scenario import event, setup_customer, setup_example_c_plan, setup_plan
from tests.factories import CustomerFactory, PublishedPlanFactory, SubscriptionFactory
from tests.wallets.helpers import ensure_currencies

pytestmark = pytest.mark.django_db

D = Decimal


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def plan(code: str, base_fee: str, seat_price: str | None) -> None:
    PublishedPlanFactory(code=code, name=code, base_fee=base_fee, seat_price=seat_price)


@pytest.fixture
def downgraded(db):
    """``acme`` (tax 19 %) on ``scale`` (99.00 + 10.00 a seat, 1 seat) from 2026-01-01, moved
    "now" to ``team`` (20.00 a seat) on 2026-01-11, 21 of 31 days left: credits −67.06 and
    −6.77, a charge of 13.55, and February on ``team``, 20.00 — a net of −40.28."""
    ensure_currencies()
    plan("scale", "99.00", "10.00")
    plan("team", "0", "20.00")
    customer = CustomerFactory(external_id="acme", name="Acme", tax_rate="19")
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        sub = SubscriptionFactory(customer=customer, plan="scale")
    january = Invoice.objects.get(subscription=sub, period_start=at("2026-01-01"))
    assert (january.subtotal, january.tax, january.total) == (D("109"), D("20.71"), D("129.71"))
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_plan_change(subscription=sub, plan_code="team", when="now")
    return sub, january


def lines(invoice: Invoice) -> list[tuple[str, Decimal]]:
    return [(line.kind, line.amount) for line in invoice.lines.all()]


def test_a_net_credit_is_a_credit_note_against_the_period_invoice(downgraded):
    sub, january = downgraded
    january = invoice_finalize(invoice_id=january.pk, now=at("2026-01-02"))
    subscriptions_close_due(now=at("2026-02-01"))
    february = Invoice.objects.get(subscription=sub, period_start=at("2026-02-01"))
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert lines(february) == [
        ("proration", D("-67.06")),
        ("proration", D("-6.77")),
        ("proration", D("13.55")),
        ("seats", D("20.00")),
        ("adjustment", D("40.28")),
    ]
    assert february.lines.last().description == (
        f"Net credit issued as credit note {note.number} against {january.number}"
    )
    assert (february.subtotal, february.tax, february.total) == (0, 0, 0)
    # the credit note gives back the net credit with the tax it was charged at (19 %)
    assert note.credit_note_for_id == january.pk and note.status == Invoice.Status.FINALIZED
    assert (note.subtotal, note.tax, note.total) == (D("-40.28"), D("-7.65"), D("-47.93"))
    assert [(line.kind, line.amount) for line in note.lines.all()] == [("adjustment", D("-40.28"))]
    assert not ChargeItem.objects.filter(invoice__isnull=True).exists()
    assert Invoice.objects.filter(total__lt=0).exclude(kind=Invoice.Kind.CREDIT_NOTE).count() == 0


def test_a_draft_period_invoice_is_finalized_then_credited(downgraded):
    sub, january = downgraded
    subscriptions_close_due(now=at("2026-02-01"))
    january.refresh_from_db()
    assert (january.status, january.number) == ("finalized", "INV-2026-000001")
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert (note.credit_note_for_id, note.subtotal) == (january.pk, D("-40.28"))
    february = Invoice.objects.get(subscription=sub, period_start=at("2026-02-01"))
    assert february.total == 0 and february.status == Invoice.Status.DRAFT


def test_what_the_period_invoice_cannot_take_is_carried_to_the_next_invoice(downgraded):
    """A credit note of 100.00 left 9.00 to credit on January's invoice: 9.00 is credited,
    31.28 carried forward; March nets it against its 20.00 (February's invoice, 0.00, can take
    none), April against its 20.00."""
    sub, january = downgraded
    january = invoice_finalize(invoice_id=january.pk, now=at("2026-01-02"))
    credit_note_create(
        invoice_id=january.pk, lines=[CreditLine("goodwill", D("100"))], reason="goodwill"
    )
    subscriptions_close_due(now=at("2026-02-01"))
    february = Invoice.objects.get(subscription=sub, period_start=at("2026-02-01"))
    note = Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).order_by("pk").last()
    assert [(line.description, line.amount) for line in february.lines.all()][-2:] == [
        (f"Net credit issued as credit note {note.number} against {january.number}", D("9")),
        ("Net credit carried to the next invoice", D("31.28")),
    ]
    assert february.total == 0 and note.subtotal == D("-9")
    assert invoice_creditable(invoice=january) == (D("0"), D("0"))
    [carried] = ChargeItem.objects.filter(invoice__isnull=True)
    assert (carried.kind, carried.amount) == ("adjustment", D("-31.28"))

    subscriptions_close_due(now=at("2026-03-01"))
    march = Invoice.objects.get(subscription=sub, period_start=at("2026-03-01"))
    assert lines(march) == [
        ("adjustment", D("-31.28")),
        ("seats", D("20.00")),
        ("adjustment", D("11.28")),
    ]
    assert march.total == 0
    subscriptions_close_due(now=at("2026-04-01"))
    april = Invoice.objects.get(subscription=sub, period_start=at("2026-04-01"))
    assert lines(april) == [("adjustment", D("-11.28")), ("seats", D("20.00"))]
    assert (april.subtotal, april.total) == (D("8.72"), D("10.38"))  # 19 % of 8.72 = 1.6568
    assert Invoice.objects.filter(total__lt=0).exclude(kind=Invoice.Kind.CREDIT_NOTE).count() == 0


def test_cancel_now_invoices_the_period_at_once_and_credits_the_unused_fees(db):
    """``scale`` with 1 seat canceled now on 2026-01-21, 11 of 31 days left: credits −35.13
    (99 × 11/31) and −3.55 (10 × 11/31) — a credit note of 38.68 + 19 % against January."""
    ensure_currencies()
    plan("scale", "99.00", "10.00")
    customer = CustomerFactory(external_id="acme", name="Acme", tax_rate="19")
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        sub = SubscriptionFactory(customer=customer, plan="scale")
    january = Invoice.objects.get(subscription=sub)
    january = invoice_finalize(invoice_id=january.pk, now=at("2026-01-02"))
    with time_machine.travel("2026-01-21T00:00:00Z", tick=False):
        subscription_cancel(subscription=sub, when="now")
    final = Invoice.objects.get(subscription=sub, period_start=at("2026-02-01"))
    assert (final.period_end, final.issued_at) == (at("2026-02-01"), at("2026-01-21"))
    assert lines(final) == [
        ("proration", D("-35.13")),
        ("proration", D("-3.55")),
        ("adjustment", D("38.68")),
    ]
    assert final.total == 0
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert note.credit_note_for_id == january.pk
    assert (note.subtotal, note.tax, note.total) == (D("-38.68"), D("-7.35"), D("-46.03"))
    assert not ChargeItem.objects.filter(invoice__isnull=True).exists()
    # the period is invoiced once: the periodic close has nothing left to do
    assert subscriptions_close_due(now=at("2026-02-01")) == 0
    assert Invoice.objects.filter(subscription=sub).count() == 3


def test_an_upgrade_keeps_its_credit_on_the_invoice(db):
    """Credits smaller than the charges stay lines of the invoice, as they always were."""
    ensure_currencies()
    plan("team", "0", "20.00")
    plan("scale", "99.00", "10.00")
    customer = CustomerFactory(external_id="acme", name="Acme")
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        sub = SubscriptionFactory(customer=customer, plan="team")
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_plan_change(subscription=sub, plan_code="scale", when="now")
    subscriptions_close_due(now=at("2026-02-01"))
    february = Invoice.objects.get(subscription=sub, period_start=at("2026-02-01"))
    assert lines(february) == [
        ("proration", D("-13.55")),
        ("proration", D("67.06")),
        ("proration", D("6.77")),
        ("base_fee", D("99.00")),
        ("seats", D("10.00")),
    ]
    assert february.total == D("169.28")
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()


def test_usage_reversed_on_a_draft_with_a_net_credit_is_carried_forward(api):
    """``support`` (99.00 a month in advance, tickets 1.00 postpaid), 20 January tickets, moved
    "now" to ``basic`` (tickets only) on 2026-01-11: February's close nets 20.00 − 67.06, a
    credit note of 47.06. Five tickets reversed while February's invoice is a draft take
    5.00 more off it: that is carried to the next invoice, never a negative total."""
    ensure_currencies()
    tickets = [{"meter": "ticket_resolved", "model": "per_unit", "unit_price": "1.00"}]
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_example_c_plan(api, "1.00", base_fee="99.00")
        setup_plan(api, "basic", tickets)
        sub = setup_customer(api, plan="support", overage="invoice", tax_rate="0")
    january = Invoice.objects.get(subscription_id=sub["id"])
    invoice_finalize(invoice_id=january.pk, now=at("2026-01-02"))
    with time_machine.travel("2026-01-06T00:00:00Z", tick=False):
        for i in range(20):
            assert event(api, f"t{i}", "acme", "ticket_resolved").status_code == 201
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        r = api.post(
            f"/api/v1/subscriptions/{sub['id']}/change-plan",
            {"plan": "basic", "when": "now"},
            format="json",
        )
        assert r.status_code == 200, r.content
    subscriptions_close_due(now=at("2026-02-01"))
    february = Invoice.objects.get(subscription_id=sub["id"], period_start=at("2026-02-01"))
    assert lines(february) == [
        ("outcome", D("20.00")),
        ("proration", D("-67.06")),
        ("adjustment", D("47.06")),
    ]
    with time_machine.travel("2026-02-01T10:00:00Z", tick=False):
        for i in range(5):
            assert api.post(f"/api/v1/events/t{i}/reverse").status_code == 200
    february.refresh_from_db()
    # each reversal refreshed the draft and carried its 1.00 forward
    assert sorted(lines(february)) == sorted(
        [
            ("proration", D("-67.06")),
            ("adjustment", D("47.06")),
            ("outcome", D("15.00")),
            *[("adjustment", D("1.00"))] * 5,
        ]
    )
    assert (february.subtotal, february.total) == (0, 0)
    carried = ChargeItem.objects.filter(invoice__isnull=True).order_by("pk")
    source = f"net-credit:{sub['id']}:2026-02-01T00:00:00+00:00"
    assert [(c.amount, c.source) for c in carried] == [
        (D("-1"), source),
        *[(D("-1"), f"{source}:{n}") for n in range(1, 5)],
    ]
    february = invoice_finalize(invoice_id=february.pk, now=at("2026-02-02"))
    assert february.total == 0 and len(lines(february)) == 8
