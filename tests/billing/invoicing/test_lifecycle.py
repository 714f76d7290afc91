"""Finalize (gapless numbers per year), void, mark paid, the grace schedule, and the database
refusing changes to finalized invoices and their lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from billing.invoicing import (
    InvoiceHasCreditNotes,
    InvoiceNotDraft,
    InvoiceNotFinalized,
    InvoicePaid,
    credit_note_create,
    invoice_finalize,
    invoice_mark_paid,
    invoice_void,
)
from billing.models import Invoice, InvoiceLine, InvoiceSequence
from billing.periodic import invoices_finalize_due
from core.errors import NotFound, ValidationFailed

from .conftest import T0

pytestmark = pytest.mark.django_db


def sequence(prefix: str = "INV", year: int = 2026) -> int | None:
    row = InvoiceSequence.objects.filter(prefix=prefix, year=year).first()
    return None if row is None else row.last


def test_finalize_numbers_drafts_in_order_and_per_year(customer, make_draft):
    a, b, c = (make_draft(customer) for _ in range(3))
    first = invoice_finalize(invoice_id=a.pk, now=T0)
    second = invoice_finalize(invoice_id=str(b.pk), now=T0 + timedelta(hours=1))
    assert (first.number, first.status, first.finalized_at) == ("INV-2026-000001", "finalized", T0)
    assert second.number == "INV-2026-000002"
    # a new year starts again at 1
    third = invoice_finalize(invoice_id=c.pk, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert third.number == "INV-2027-000001"
    assert (sequence(), sequence(year=2027)) == (2, 1)


def test_finalizing_twice_returns_the_invoice_unchanged(customer, make_draft):
    invoice = make_draft(customer)
    once = invoice_finalize(invoice_id=invoice.pk, now=T0)
    again = invoice_finalize(invoice_id=invoice.pk, now=T0 + timedelta(days=1))
    assert (again.number, again.finalized_at) == (once.number, T0)
    assert sequence() == 1


def test_finalizing_paid_or_void_invoices_is_refused(customer, make_draft):
    paid = invoice_finalize(invoice_id=make_draft(customer).pk, now=T0)
    invoice_mark_paid(invoice_id=paid.pk, reference="wire 1")
    void = invoice_void(invoice_id=make_draft(customer).pk)
    for invoice in (paid, void):
        with pytest.raises(InvoiceNotDraft) as info:
            invoice_finalize(invoice_id=invoice.pk)
        assert (info.value.code, info.value.status) == ("invoice_not_draft", 409)


@pytest.mark.parametrize("bad", [0, -1, "abc", "12a", "", "1.5", "²", 2**70, None, True])
def test_unknown_invoice_ids_are_not_found(bad):
    for call in (
        lambda: invoice_finalize(invoice_id=bad),
        lambda: invoice_void(invoice_id=bad),
        lambda: invoice_mark_paid(invoice_id=bad, reference="r"),
    ):
        with pytest.raises(NotFound):
            call()


def test_rolled_back_finalization_gives_its_number_back(customer, make_draft):
    a, b = make_draft(customer), make_draft(customer)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert invoice_finalize(invoice_id=a.pk, now=T0).number == "INV-2026-000001"
        raise RuntimeError("crash after numbering")
    a.refresh_from_db()
    assert (a.status, a.number) == ("draft", None)
    assert invoice_finalize(invoice_id=b.pk, now=T0).number == "INV-2026-000001"
    assert invoice_finalize(invoice_id=a.pk, now=T0).number == "INV-2026-000002"


def test_void_and_mark_paid(customer, make_draft):
    invoice = invoice_finalize(invoice_id=make_draft(customer).pk, now=T0)
    paid = invoice_mark_paid(invoice_id=invoice.pk, reference="  wire 2026-03-05  ", now=T0)
    assert (paid.status, paid.payment_reference, paid.paid_at) == ("paid", "wire 2026-03-05", T0)
    # the same again is a no-op; another reference is a conflict
    assert invoice_mark_paid(invoice_id=invoice.pk, reference="wire 2026-03-05").paid_at == T0
    with pytest.raises(InvoicePaid) as info:
        invoice_mark_paid(invoice_id=invoice.pk, reference="card 4242")
    assert info.value.code == "invoice_paid"
    with pytest.raises(InvoicePaid):
        invoice_void(invoice_id=invoice.pk)

    other = invoice_finalize(invoice_id=make_draft(customer).pk, now=T0)
    voided = invoice_void(invoice_id=other.pk, now=T0 + timedelta(hours=2))
    assert (voided.status, voided.voided_at, voided.number) == (
        "void",
        T0 + timedelta(hours=2),
        "INV-2026-000002",
    )
    assert invoice_void(invoice_id=other.pk).voided_at == T0 + timedelta(hours=2)
    with pytest.raises(InvoiceNotFinalized) as info:
        invoice_mark_paid(invoice_id=other.pk, reference="late wire")
    assert (info.value.code, info.value.status) == ("invoice_not_finalized", 409)


def test_mark_paid_needs_a_finalized_invoice_and_a_reference(customer, make_draft):
    draft = make_draft(customer)
    with pytest.raises(InvoiceNotFinalized):
        invoice_mark_paid(invoice_id=draft.pk, reference="wire")
    final = invoice_finalize(invoice_id=make_draft(customer).pk)
    for reference in ("", "   ", None, "x" * 256):
        with pytest.raises(ValidationFailed) as info:
            invoice_mark_paid(invoice_id=final.pk, reference=reference)
        assert list(info.value.errors) == ["reference"]
    final.refresh_from_db()
    assert (final.status, final.payment_reference, final.paid_at) == ("finalized", "", None)


def test_voiding_a_draft_numbers_it_so_no_number_is_missing(customer, make_draft):
    draft = make_draft(customer)
    voided = invoice_void(invoice_id=draft.pk, now=T0)
    assert (voided.status, voided.number, voided.finalized_at, voided.voided_at) == (
        "void",
        "INV-2026-000001",
        T0,
        T0,
    )


def test_an_invoice_with_live_credit_notes_cannot_be_voided(customer, make_draft):
    invoice = invoice_finalize(invoice_id=make_draft(customer).pk, now=T0)
    note = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Goodwill", "amount": "5"}], reason="r"
    )
    with pytest.raises(InvoiceHasCreditNotes):
        invoice_void(invoice_id=invoice.pk)
    invoice_void(invoice_id=note.pk)
    assert invoice_void(invoice_id=invoice.pk).status == "void"


def test_grace_period_finalization(customer, make_draft):
    with time_machine.travel(T0, tick=False):
        early = make_draft(customer)
    with time_machine.travel(T0 + timedelta(hours=6), tick=False):
        late = make_draft(customer)
    assert invoices_finalize_due(now=T0 + timedelta(hours=23, minutes=59)) == []
    with time_machine.travel(T0 + timedelta(hours=24), tick=False):
        assert invoices_finalize_due() == [early.pk]
        assert invoices_finalize_due() == []  # idempotent
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.status, early.number, early.finalized_at) == (
        "finalized",
        "INV-2026-000001",
        T0 + timedelta(hours=24),
    )
    assert (late.status, late.number) == ("draft", None)
    assert invoices_finalize_due(now=T0 + timedelta(hours=30)) == [late.pk]
    late.refresh_from_db()
    assert late.number == "INV-2026-000002"


def test_grace_hours_come_from_settings(customer, make_draft, settings):
    settings.BILLFOLD = {**settings.BILLFOLD, "INVOICE_GRACE_HOURS": 1}
    invoice = make_draft(customer, now=T0)
    assert invoices_finalize_due(now=T0 + timedelta(minutes=59)) == []
    assert invoices_finalize_due(now=T0 + timedelta(hours=1)) == [invoice.pk]


# --- the database as the last line of defence ---------------------------------------------


def refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    return str(info.value)


def run(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def test_finalized_invoice_rows_and_lines_refuse_changes_in_the_database(customer, make_draft):
    invoice = invoice_finalize(invoice_id=make_draft(customer, ["10", "5"]).pk, now=T0)
    line = invoice.lines.first()
    assert "immutable" in refused(
        "UPDATE billing_invoice SET subtotal = subtotal + 1, total = total + 1 WHERE id = %s",
        [invoice.pk],
    )
    assert "immutable" in refused(
        "UPDATE billing_invoice SET number = 'INV-2026-999999' WHERE id = %s", [invoice.pk]
    )
    assert "cannot go from finalized to draft" in refused(
        "UPDATE billing_invoice SET status = 'draft' WHERE id = %s", [invoice.pk]
    )
    assert "cannot be deleted" in refused("DELETE FROM billing_invoice WHERE id = %s", [invoice.pk])
    assert "immutable" in refused(
        "UPDATE billing_invoiceline SET amount = 0 WHERE id = %s", [line.pk]
    )
    assert "immutable" in refused("DELETE FROM billing_invoiceline WHERE id = %s", [line.pk])
    assert "immutable" in refused(
        "INSERT INTO billing_invoiceline (invoice_id, position, kind, description, amount,"
        " amount_exact, computation) VALUES (%s, 9, 'adjustment', 'sneaky', 1, 1, '{}')",
        [invoice.pk],
    )
    # the allowed move: finalized → paid with the payment fields
    assert (
        run(
            "UPDATE billing_invoice SET status = 'paid', paid_at = now(),"
            " payment_reference = 'wire' WHERE id = %s",
            [invoice.pk],
        )
        == 1
    )
    assert "cannot go from paid to void" in refused(
        "UPDATE billing_invoice SET status = 'void' WHERE id = %s", [invoice.pk]
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total, invoice.number) == (
        "paid",
        Decimal("17.8500"),  # 15.00 + 19 % tax 2.85
        "INV-2026-000001",
    )
    assert InvoiceLine.objects.filter(invoice=invoice).count() == 2


def test_finalized_to_void_is_allowed_and_then_frozen(customer, make_draft):
    invoice = invoice_finalize(invoice_id=make_draft(customer).pk, now=T0)
    assert (
        run(
            "UPDATE billing_invoice SET status = 'void', voided_at = now() WHERE id = %s",
            [invoice.pk],
        )
        == 1
    )
    assert "cannot go from void to paid" in refused(
        "UPDATE billing_invoice SET status = 'paid' WHERE id = %s", [invoice.pk]
    )
    assert Invoice.objects.get(pk=invoice.pk).status == "void"
