"""The errors of invoice transitions (409s of the API)."""

from __future__ import annotations

from core.errors import BillfoldError


class InvoiceNotDraft(BillfoldError):
    code = "invoice_not_draft"
    status = 409
    title = "The invoice is not a draft"


class InvoiceNotFinalized(BillfoldError):
    code = "invoice_not_finalized"
    status = 409
    title = "The invoice is not finalized"


class InvoicePaid(BillfoldError):
    code = "invoice_paid"
    status = 409
    title = "The invoice is paid"


class InvoiceHasCreditNotes(BillfoldError):
    code = "invoice_has_credit_notes"
    status = 409
    title = "The invoice has credit notes"


class InvoiceNotCreditable(BillfoldError):
    code = "invoice_not_creditable"
    status = 409
    title = "The invoice cannot be credited"


class CreditNoteExceedsInvoice(BillfoldError):
    code = "credit_note_exceeds_invoice"
    status = 409
    title = "The credit note exceeds what is left of the invoice"
