"""The invoice row lock every transition takes, and the ids it accepts."""

from __future__ import annotations

from billing.models import Invoice
from core.errors import NotFound


def invoice_pk(invoice_id: object) -> int:
    """An invoice id from an int or a string of digits; anything else is an unknown invoice."""
    if isinstance(invoice_id, bool):
        raise NotFound("Unknown invoice.")
    if isinstance(invoice_id, int):
        value = invoice_id
    elif isinstance(invoice_id, str) and invoice_id.isascii() and invoice_id.isdigit():
        value = int(invoice_id) if len(invoice_id) <= 18 else -1
    else:
        shown = str(invoice_id)[:40]
        raise NotFound(f"Unknown invoice '{shown}'.")
    if not 0 < value < 2**63:
        raise NotFound(f"Unknown invoice '{invoice_id}'.")
    return value


def invoice_lock(invoice_id: object) -> Invoice:
    """The invoice row, locked until the transaction ends."""
    pk = invoice_pk(invoice_id)
    invoice = Invoice.objects.select_for_update().filter(pk=pk).first()
    if invoice is None:
        raise NotFound(f"Unknown invoice {pk}.")
    return invoice
