"""Invoicing (docs/invoices.md): invoice lines and drafts, finalization with gapless numbers,
void and payment, credit notes, one-off invoices, a subscription's invoices and the net
credit of a close, monthly statements, and invoices and statements as documents.

Invoicing imports neither ``billing.subscriptions`` nor ``billing.periodic``: both build on
it."""

from billing.invoicing.credit_notes import (
    MAX_CREDIT_LINES,
    CreditLine,
    credit_note_create,
    invoice_creditable,
)
from billing.invoicing.documents import invoice_html, invoice_pdf, statement_html, statement_pdf
from billing.invoicing.drafts import invoice_draft_create, invoice_draft_refresh
from billing.invoicing.errors import (
    CreditNoteExceedsInvoice,
    InvoiceHasCreditNotes,
    InvoiceNotCreditable,
    InvoiceNotDraft,
    InvoiceNotFinalized,
    InvoicePaid,
)
from billing.invoicing.finalization import (
    invoice_finalize,
    invoice_finalize_if_due,
    invoice_mark_paid,
    invoice_void,
)
from billing.invoicing.lines import LineSpec, line_amount, spec_line
from billing.invoicing.net_credit import net_credit_settle
from billing.invoicing.numbering import (
    CREDIT_NOTE_PREFIX,
    INVOICE_PREFIX,
    invoice_number_format,
)
from billing.invoicing.one_off import invoice_credit_purchase_create, invoice_one_off_create
from billing.invoicing.period_lines import (
    RatedAmountTooLarge,
    advance_lines,
    arrears_lines,
    charge_item_lines,
    rated_price,
    trialing_at,
)
from billing.invoicing.plan_cache import plan_cache, plan_version
from billing.invoicing.statements import Statement, statement_csv, statement_for
from billing.invoicing.subscription_invoices import (
    subscription_close_invoice,
    subscription_final_invoice,
    subscription_first_invoice,
)

__all__ = [
    "CREDIT_NOTE_PREFIX",
    "INVOICE_PREFIX",
    "MAX_CREDIT_LINES",
    "CreditLine",
    "CreditNoteExceedsInvoice",
    "InvoiceHasCreditNotes",
    "InvoiceNotCreditable",
    "InvoiceNotDraft",
    "InvoiceNotFinalized",
    "InvoicePaid",
    "LineSpec",
    "RatedAmountTooLarge",
    "Statement",
    "advance_lines",
    "arrears_lines",
    "charge_item_lines",
    "credit_note_create",
    "invoice_credit_purchase_create",
    "invoice_creditable",
    "invoice_draft_create",
    "invoice_draft_refresh",
    "invoice_finalize",
    "invoice_finalize_if_due",
    "invoice_html",
    "invoice_mark_paid",
    "invoice_number_format",
    "invoice_one_off_create",
    "invoice_pdf",
    "invoice_void",
    "line_amount",
    "net_credit_settle",
    "plan_cache",
    "plan_version",
    "rated_price",
    "spec_line",
    "statement_csv",
    "statement_for",
    "statement_html",
    "statement_pdf",
    "subscription_close_invoice",
    "subscription_final_invoice",
    "subscription_first_invoice",
    "trialing_at",
]
