"""Credit notes: negative amounts, their own CN numbers, tax at the original rate, and never
more than what is left of the invoice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.invoicing import (
    CreditNoteExceedsInvoice,
    InvoiceNotCreditable,
    InvoiceNotFinalized,
    credit_note_create,
    invoice_creditable,
    invoice_finalize,
    invoice_mark_paid,
    invoice_void,
)
from billing.models import Invoice, InvoiceSequence
from core.errors import IdempotencyConflict, ValidationFailed

from .conftest import T0

pytestmark = pytest.mark.django_db


def totals(invoice: Invoice) -> tuple[str, str, str]:
    return str(invoice.subtotal), str(invoice.tax), str(invoice.total)


@pytest.fixture
def invoice(customer, make_draft):
    # 100.00 + 20.65 = 120.65; 19 % = 22.9235 → 22.92; total 143.57
    draft = make_draft(customer, ["100", "20.645161290323"])
    final = invoice_finalize(invoice_id=draft.pk, now=T0)
    assert totals(final) == ("120.6500", "22.9200", "143.5700")
    return final


def test_credit_notes_are_negative_numbered_and_add_up_to_the_invoice(invoice):
    first = credit_note_create(
        invoice_id=invoice.pk,
        lines=[{"description": "Seat proration refund", "amount": "20.65"}],
        reason="Seats were added by mistake",
        now=T0 + timedelta(days=1),
    )
    assert (first.kind, first.status, first.number) == (
        "credit_note",
        "finalized",
        "CN-2026-000001",
    )
    assert first.credit_note_for_id == invoice.pk
    assert (first.customer_id, first.currency_id, first.tax_rate) == (
        invoice.customer_id,
        "USD",
        Decimal("19.0000"),
    )
    assert first.reason == "Seats were added by mistake"
    # tax 19 % of 20.65 = 3.9235 → 3.92
    assert totals(first) == ("-20.6500", "-3.9200", "-24.5700")
    assert [
        (x.kind, x.description, str(x.amount), str(x.amount_exact)) for x in first.lines.all()
    ] == [("adjustment", "Seat proration refund", "-20.6500", "-20.650000000000")]
    assert invoice_creditable(invoice=invoice) == (Decimal("100.0000"), Decimal("19.0000"))

    # the rest: exactly what is left, tax included
    rest = credit_note_create(
        invoice_id=invoice.pk,
        lines=[
            {"description": "Base fee", "amount": "60"},
            {"description": "Base fee (rest)", "amount": "40.00"},
        ],
        reason="Account closed",
    )
    assert rest.number == "CN-2026-000002"
    assert totals(rest) == ("-100.0000", "-19.0000", "-119.0000")
    assert invoice.total + first.total + rest.total == 0
    assert invoice_creditable(invoice=invoice) == (Decimal("0.0000"), Decimal("0.0000"))
    # invoice numbers and credit-note numbers are separate sequences
    assert InvoiceSequence.objects.get(prefix="INV", year=2026).last == 1
    assert InvoiceSequence.objects.get(prefix="CN", year=2026).last == 2


def test_over_credit_is_refused_and_writes_nothing(invoice):
    credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Part", "amount": "20.65"}], reason="r"
    )
    before = Invoice.objects.count()
    with pytest.raises(CreditNoteExceedsInvoice) as info:
        credit_note_create(
            invoice_id=invoice.pk,
            lines=[{"description": "A", "amount": "50"}, {"description": "B", "amount": "50.01"}],
            reason="too much",
        )
    assert (info.value.code, info.value.status) == ("credit_note_exceeds_invoice", 409)
    assert info.value.extra == {"creditable": "100.0000"}
    assert Invoice.objects.count() == before
    assert InvoiceSequence.objects.get(prefix="CN", year=2026).last == 1


def test_a_voided_credit_note_no_longer_counts(invoice):
    note = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "All", "amount": "120.65"}], reason="r"
    )
    assert totals(note) == ("-120.6500", "-22.9200", "-143.5700")
    with pytest.raises(CreditNoteExceedsInvoice):
        credit_note_create(
            invoice_id=invoice.pk, lines=[{"description": "More", "amount": "0.01"}], reason="r"
        )
    invoice_void(invoice_id=note.pk)
    again = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Again", "amount": "0.01"}], reason="r"
    )
    assert (again.number, totals(again)) == ("CN-2026-000002", ("-0.0100", "0.0000", "-0.0100"))


def test_tax_of_pieces_never_exceeds_the_invoice_tax(make_customer, make_draft):
    # 50 %: 0.02 → tax 0.01. Two credits of 0.01 would each round their tax 0.005 up to 0.01;
    # the second gets only the tax that is left, so the pieces add up to 0.03 exactly.
    customer = make_customer("halves", tax_rate="50")
    invoice = invoice_finalize(invoice_id=make_draft(customer, ["0.02"]).pk)
    assert totals(invoice) == ("0.0200", "0.0100", "0.0300")
    one = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "1", "amount": "0.01"}], reason="r"
    )
    two = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "2", "amount": "0.01"}], reason="r"
    )
    assert (totals(one), totals(two)) == (
        ("-0.0100", "-0.0100", "-0.0200"),
        ("-0.0100", "0.0000", "-0.0100"),
    )
    assert invoice.total + one.total + two.total == 0


def test_jpy_and_kwd_credit_notes(make_customer, make_draft):
    yen = make_customer("yen", currency="JPY", tax_rate="10")
    invoice = invoice_finalize(invoice_id=make_draft(yen, ["1000"]).pk)
    note = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Partial", "amount": "155"}], reason="r"
    )
    assert totals(note) == ("-155.0000", "-16.0000", "-171.0000")  # 15.5 → 16
    with pytest.raises(ValidationFailed) as info:
        credit_note_create(
            invoice_id=invoice.pk, lines=[{"description": "x", "amount": "1.5"}], reason="r"
        )
    assert info.value.errors == {"lines[0].amount": ["At most 0 decimal places."]}

    dinar = make_customer("dinar", currency="KWD", tax_rate="5")
    invoice = invoice_finalize(invoice_id=make_draft(dinar, ["10"]).pk)
    note = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Partial", "amount": "1.235"}], reason="r"
    )
    assert totals(note) == ("-1.2350", "-0.0620", "-1.2970")  # 0.06175 → 0.062


AMOUNT = "lines[0].amount"
DESCRIPTION = "lines[0].description"


def one(amount: object = "1", description: object = "x") -> list[dict]:
    return [{"description": description, "amount": amount}]


@pytest.mark.parametrize(
    ("lines", "reason", "errors"),
    [
        ([], "r", {"lines": ["At least one line."]}),
        (one("-5"), "r", {AMOUNT: ["Must be greater than zero."]}),
        (one("0"), "r", {AMOUNT: ["Must be greater than zero."]}),
        (one("1.001"), "r", {AMOUNT: ["At most 2 decimal places."]}),
        (one("NaN"), "r", {AMOUNT: ['A decimal number of ASCII digits, e.g. "10.00".']}),
        (one(1.5), "r", {AMOUNT: ['Send decimals as strings, e.g. "10.00".']}),
        (one("1000000000000000000"), "r", {AMOUNT: ["Must be less than 10^18."]}),
        (one(description=" "), "r", {DESCRIPTION: ["This field is required."]}),
        (one(description="x" * 501), "r", {DESCRIPTION: ["At most 500 characters."]}),
        (["x"], "r", {"lines[0]": ["An object with description and amount."]}),
        (one(), "", {"reason": ["This field is required."]}),
        (one(), "r" * 100_000, {"reason": ["At most 500 characters."]}),
    ],
)
def test_bad_credit_notes_are_refused_and_write_nothing(invoice, lines, reason, errors):
    before = Invoice.objects.count()
    with pytest.raises(ValidationFailed) as info:
        credit_note_create(invoice_id=invoice.pk, lines=lines, reason=reason)
    assert info.value.errors == errors
    assert Invoice.objects.count() == before


def test_only_finalized_or_paid_invoices_can_be_credited(customer, make_draft, invoice):
    draft = make_draft(customer)
    void = invoice_void(invoice_id=make_draft(customer).pk)
    for target in (draft, void):
        with pytest.raises(InvoiceNotFinalized):
            credit_note_create(
                invoice_id=target.pk, lines=[{"description": "x", "amount": "1"}], reason="r"
            )
    invoice_mark_paid(invoice_id=invoice.pk, reference="wire")
    note = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Refund", "amount": "1"}], reason="r"
    )
    with pytest.raises(InvoiceNotCreditable) as info:
        credit_note_create(
            invoice_id=note.pk, lines=[{"description": "x", "amount": "1"}], reason="r"
        )
    assert info.value.code == "invoice_not_creditable"


def test_credit_note_idempotency_key(invoice):
    lines = [{"description": "Goodwill", "amount": "5.00"}]
    one = credit_note_create(invoice_id=invoice.pk, lines=lines, reason="r", idempotency_key="k1")
    two = credit_note_create(invoice_id=invoice.pk, lines=lines, reason="r", idempotency_key="k1")
    assert one.pk == two.pk
    with pytest.raises(IdempotencyConflict):
        credit_note_create(
            invoice_id=invoice.pk,
            lines=[{"description": "Goodwill", "amount": "6"}],
            reason="r",
            idempotency_key="k1",
        )
    assert Invoice.objects.filter(kind="credit_note").count() == 1


def test_the_worked_example_of_the_docs(customer, make_draft):
    # docs/invoices.md: example B's February invoice at 19 %, credited in two pieces
    invoice = invoice_finalize(invoice_id=make_draft(customer, ["20.645161290323", "140"]).pk)
    assert totals(invoice) == ("160.6500", "30.5200", "191.1700")
    one = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Seat refund", "amount": "20.65"}], reason="r"
    )
    two = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "February", "amount": "140"}], reason="r"
    )
    assert (totals(one), totals(two)) == (
        ("-20.6500", "-3.9200", "-24.5700"),
        ("-140.0000", "-26.6000", "-166.6000"),
    )
