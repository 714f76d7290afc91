"""One-off invoices: a paid grant bought with money gets a credit-purchase invoice, finalized
by the grace schedule like any other."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from billing.invoicing import LineSpec, invoice_credit_purchase_create, invoice_one_off_create
from billing.models import Invoice
from billing.periodic import invoices_finalize_due
from core.errors import ValidationFailed
from tests.factories import GrantFactory

from .conftest import T0

pytestmark = pytest.mark.django_db


def test_credit_purchase_invoice_from_a_paid_grant(customer):
    with time_machine.travel(T0, tick=False):
        grant = GrantFactory(
            wallet=customer.wallet_id,
            prepaid_credits=True,
            cost=Money("10.00", "USD"),
            reference="card 4242",
        )
        invoice = invoice_credit_purchase_create(grant_id=grant.pk)
    assert invoice_credit_purchase_create(grant_id=grant.pk).pk == invoice.pk  # once per grant
    assert (invoice.kind, invoice.status, invoice.currency_id, invoice.number) == (
        "one_off",
        "draft",
        "USD",
        None,
    )
    assert (invoice.issued_at, invoice.due_at) == (T0, T0 + timedelta(days=14))
    # 19 % tax on 10.00
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("10.0000"),
        Decimal("1.9000"),
        Decimal("11.9000"),
    )
    line = invoice.lines.get()
    assert (line.kind, line.description, line.quantity, line.unit_price, line.amount) == (
        "credit_purchase",
        f"1000 credits (grant {grant.pk})",
        Decimal("1000"),
        Decimal("0.01"),
        Decimal("10.0000"),
    )
    assert line.computation["reference"] == "card 4242"

    assert invoices_finalize_due(now=T0 + timedelta(hours=23)) == []
    assert invoices_finalize_due(now=T0 + timedelta(hours=24)) == [invoice.pk]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("finalized", "INV-2026-000001")


def test_a_grant_without_cost_is_not_invoiced(customer):
    grant = GrantFactory(wallet=customer.wallet_id, amount="5", promotional=True)
    with pytest.raises(ValidationFailed):
        invoice_credit_purchase_create(grant_id=grant.pk)
    assert Invoice.objects.count() == 0


def test_one_off_invoice_from_lines(customer):
    invoice = invoice_one_off_create(
        customer=customer,
        lines=[
            {"description": "Credit pack", "amount": "20.65", "quantity": "1"},
            LineSpec(kind="adjustment", description="Setup", amount_exact=Decimal("5")),
        ],
        idempotency_key="order-7",
        now=T0,
    )
    again = invoice_one_off_create(
        customer=customer,
        lines=[
            {"description": "Credit pack", "amount": "20.65", "quantity": "1"},
            LineSpec(kind="adjustment", description="Setup", amount_exact=Decimal("5")),
        ],
        idempotency_key="order-7",
    )
    assert again.pk == invoice.pk
    invoice.refresh_from_db()
    assert [(x.kind, str(x.amount)) for x in invoice.lines.order_by("position")] == [
        ("credit_purchase", "20.6500"),
        ("adjustment", "5.0000"),
    ]
    # 25.65 × 19 % = 4.8735 → 4.87
    assert (str(invoice.subtotal), str(invoice.tax), str(invoice.total)) == (
        "25.6500",
        "4.8700",
        "30.5200",
    )


KINDS = "adjustment, base_fee, credit_purchase, outcome, proration, seats, usage"


@pytest.mark.parametrize(
    ("lines", "kind", "errors"),
    [
        ([], "one_off", {"lines": ["At least one."]}),
        (
            [{"description": "x", "amount": "-1"}],
            "one_off",
            {"lines[0].amount": ["Must be greater than zero."]},
        ),
        (
            [{"description": "x", "amount": "20.645"}],
            "one_off",
            {"lines[0].amount": ["At most 2 decimal places."]},
        ),
        (
            [{"description": "", "amount": "1"}],
            "one_off",
            {"lines[0].description": ["1–500 characters."]},
        ),
        (
            [{"description": "x", "amount": "1", "kind": "bogus"}],
            "one_off",
            {"lines[0].kind": [f"One of {KINDS}."]},
        ),
        ([{"description": "x", "amount": "1"}], "subscription", {"kind": ["Must be one_off."]}),
    ],
)
def test_bad_one_off_invoices_write_nothing(customer, lines, kind, errors):
    with pytest.raises(ValidationFailed) as info:
        invoice_one_off_create(customer=customer, lines=lines, kind=kind)
    assert info.value.errors == errors
    assert Invoice.objects.count() == 0
