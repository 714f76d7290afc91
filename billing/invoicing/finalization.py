"""The lifecycle of an invoice (docs/invoices.md): ``draft`` → ``finalized`` (numbered,
immutable) → ``paid`` | ``void``. Every transition runs in one transaction under the invoice
row's lock and is idempotent: repeating it returns the invoice unchanged. The database is
the last line of defence: triggers (migration 0008) refuse any change to a finalized invoice
except the move to paid or void, and any change to the lines of an invoice that left
draft."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.invoicing.drafts import invoice_draft_refresh
from billing.invoicing.errors import (
    InvoiceHasCreditNotes,
    InvoiceNotDraft,
    InvoiceNotFinalized,
    InvoicePaid,
)
from billing.invoicing.locks import invoice_lock
from billing.invoicing.numbering import DRAFT, finalize_locked
from billing.models import Invoice
from core.db import columns, rows_as
from core.errors import ValidationFailed

_DUE_LOCK_SQL = (
    f"SELECT {columns(Invoice)} FROM billing_invoice "  # noqa: S608 - column names only
    "WHERE id = %s AND status = %s AND issued_at <= %s FOR UPDATE SKIP LOCKED"
)


def _refresh_draft(invoice: Invoice) -> Invoice:
    """Bring a subscription draft's usage lines up to date before it is numbered (events that
    arrived during the grace period)."""
    if invoice.kind != Invoice.Kind.SUBSCRIPTION or invoice.subscription_id is None:
        return invoice
    return invoice_draft_refresh(invoice=invoice)


def invoice_finalize(*, invoice_id: int | str, now: datetime | None = None) -> Invoice:
    """Draft → finalized: the invoice gets the next gapless number of its year
    (``INV-2026-000042``, credit notes ``CN-2026-000001``) and becomes immutable (the database
    refuses any later change but the move to paid or void).

    Finalizing a finalized invoice returns it unchanged; a paid or void one is
    ``InvoiceNotDraft`` (409). Concurrent calls on one invoice serialize on its row lock."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = invoice_lock(invoice_id)
        if invoice.status == Invoice.Status.FINALIZED:
            return invoice
        if invoice.status != Invoice.Status.DRAFT:
            raise InvoiceNotDraft(f"Invoice {invoice} is {invoice.status}; it cannot be finalized.")
        invoice = _refresh_draft(invoice)
        return finalize_locked(invoice, now)


def invoice_finalize_if_due(*, invoice_id: int, cutoff: datetime, now: datetime) -> Invoice | None:
    """Finalize the draft ``invoice_id`` if it was issued by ``cutoff``, in the caller's
    transaction: locked with ``SKIP LOCKED`` and re-checked under the lock, so two runs at
    once never finalize it twice. None when it was finalized meanwhile or another run holds
    it."""
    locked = rows_as(Invoice, _DUE_LOCK_SQL, [invoice_id, DRAFT, cutoff], binary=True)
    if not locked:
        return None
    return finalize_locked(_refresh_draft(locked[0]), now)


def invoice_void(*, invoice_id: int | str, now: datetime | None = None) -> Invoice:
    """Finalized → void. Voiding a void invoice returns it unchanged; a paid invoice is
    ``InvoicePaid`` (409: credit it instead), one with live credit notes
    ``InvoiceHasCreditNotes`` (void those first).

    A draft may be voided too: it is numbered and voided in the same transaction, so every
    number of the sequence stays accounted for (the register shows it as void) and a
    subscription period whose draft was voided is closed to late events, like any period
    whose invoice left draft."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = invoice_lock(invoice_id)
        if invoice.status == Invoice.Status.VOID:
            return invoice
        if invoice.status == Invoice.Status.PAID:
            raise InvoicePaid(
                f"Invoice {invoice} is paid; it cannot be voided. Issue a credit note instead."
            )
        live_notes = invoice.credit_notes.exclude(status=Invoice.Status.VOID)
        if live_notes.exists():
            numbers = ", ".join(n or "?" for n in live_notes.values_list("number", flat=True))
            raise InvoiceHasCreditNotes(
                f"Invoice {invoice} has credit notes ({numbers}); void them first."
            )
        if invoice.status == Invoice.Status.DRAFT:
            invoice = finalize_locked(invoice, now)
        Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID, voided_at=now)
        invoice.refresh_from_db()
    return invoice


def _reference_check(reference: object) -> str:
    text = reference.strip() if isinstance(reference, str) else ""
    if not text:
        raise ValidationFailed(
            "A payment reference is required.", errors={"reference": ["This field is required."]}
        )
    if len(text) > 255:
        raise ValidationFailed(
            "The payment reference is too long.", errors={"reference": ["At most 255 characters."]}
        )
    return text


def invoice_mark_paid(
    *, invoice_id: int | str, reference: str, now: datetime | None = None
) -> Invoice:
    """Finalized → paid with the payment's reference (required). Marking a paid invoice paid
    with the same reference returns it unchanged; with another reference it is
    ``InvoicePaid`` (409). Drafts and void invoices are ``InvoiceNotFinalized`` (409)."""
    reference = _reference_check(reference)
    now = now or timezone.now()
    with transaction.atomic():
        invoice = invoice_lock(invoice_id)
        if invoice.status == Invoice.Status.PAID:
            if invoice.payment_reference == reference:
                return invoice
            raise InvoicePaid(
                f"Invoice {invoice} was already paid (reference {invoice.payment_reference!r})."
            )
        if invoice.status != Invoice.Status.FINALIZED:
            hint = " Finalize it first." if invoice.status == Invoice.Status.DRAFT else ""
            raise InvoiceNotFinalized(
                f"Invoice {invoice} is {invoice.status}; only a finalized invoice can be paid."
                + hint
            )
        Invoice.objects.filter(pk=invoice.pk).update(
            status=Invoice.Status.PAID, paid_at=now, payment_reference=reference
        )
        invoice.refresh_from_db()
    return invoice
