"""Reads of invoices: one invoice with its lines, and filtered lists (API, admin, portal)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from billing.models import Customer, Invoice, InvoiceLine
from core.errors import NotFound, ValidationFailed


def _lines() -> Prefetch:
    return Prefetch(
        "lines", queryset=InvoiceLine.objects.select_related("meter").order_by("position", "id")
    )


def invoice_queryset() -> QuerySet[Invoice]:
    """Invoices with what rendering them needs (customer, currency, credited invoice, lines
    with their meters) in a constant number of queries."""
    return Invoice.objects.select_related(
        "customer", "currency", "credit_note_for"
    ).prefetch_related(_lines())


def invoice_get(*, invoice_id: object, customer: Customer | None = None) -> Invoice:
    """One invoice by id (an int or a string of digits). Anything else, an unknown id, or an
    invoice of another customer than ``customer`` (when given) is ``NotFound``."""
    text = str(invoice_id)
    if isinstance(invoice_id, bool) or not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise NotFound(f"Unknown invoice '{text[:40]}'.")
    query = invoice_queryset().filter(pk=int(text))
    if customer is not None:
        query = query.filter(customer=customer)
    invoice = query.first()
    if invoice is None:
        raise NotFound(f"Unknown invoice '{text}'.")
    return invoice


def invoice_list(
    *, customer: Customer | None = None, status: str | None = None
) -> QuerySet[Invoice]:
    """Invoices, newest first, optionally of one customer and in one status (an unknown status
    is ``ValidationFailed``)."""
    query = invoice_queryset()
    if customer is not None:
        query = query.filter(customer=customer)
    if status is not None:
        if status not in Invoice.Status.values:
            raise ValidationFailed(
                "Unknown invoice status.",
                errors={"status": [f"One of {', '.join(Invoice.Status.values)}."]},
            )
        query = query.filter(status=status)
    return query.order_by("-id")
