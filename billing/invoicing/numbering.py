"""Invoice numbers: gapless per prefix and year, taken as a draft leaves draft
(``finalize_locked``) in the finalizing transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction

from billing.models import Invoice
from core.db import columns, hot_cursor, refresh_from_row

INVOICE_PREFIX = "INV"
CREDIT_NOTE_PREFIX = "CN"

_SEQUENCE_TAKE = """
INSERT INTO billing_invoicesequence (prefix, year, last) VALUES (%s, %s, 1)
ON CONFLICT (prefix, year) DO UPDATE SET last = billing_invoicesequence.last + 1
RETURNING last
"""


def invoice_number_format(prefix: str, year: int, number: int) -> str:
    """``INV-2026-000042``: six digits at least (a seventh appears after 999,999)."""
    return f"{prefix}-{year}-{number:06d}"


def number_take(prefix: str, year: int) -> int:
    """The next number of ``prefix`` in ``year``, taken under the lock of its sequence row.

    One statement: ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` makes the row on first use
    with 1 (two first finalizations of a year race safely: the second increments) or
    increments it. Either locks the row until the caller's transaction ends, exactly like
    ``SELECT … FOR UPDATE`` followed by an update but in one round trip. A concurrent
    finalization waits for the lock; a finalization that rolls back also rolls back its
    increment, so its number is given to the next one and the sequence has no gaps."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invoice numbers are taken inside the finalizing transaction")
    with hot_cursor() as cursor:
        cursor.execute(_SEQUENCE_TAKE, [prefix, year])
        return cursor.fetchone()[0]


DRAFT = Invoice.Status.DRAFT.value
_FINALIZE_SQL = (
    "UPDATE billing_invoice SET status = %s, number = %s, finalized_at = %s "  # noqa: S608
    f"WHERE id = %s AND status = %s RETURNING {columns(Invoice)}"
)


def finalize_locked(invoice: Invoice, now: datetime) -> Invoice:
    """Number a locked draft and move it to finalized, in the caller's transaction."""
    prefix = CREDIT_NOTE_PREFIX if invoice.kind == Invoice.Kind.CREDIT_NOTE else INVOICE_PREFIX
    year = now.astimezone(UTC).year
    number = invoice_number_format(prefix, year, number_take(prefix, year))
    with hot_cursor(binary=True) as cursor:
        cursor.execute(
            _FINALIZE_SQL, [Invoice.Status.FINALIZED.value, number, now, invoice.pk, DRAFT]
        )
        row = cursor.fetchone()
    if row is None:  # the caller holds the row lock and saw a draft
        raise RuntimeError(f"invoice {invoice.pk} changed under its lock")
    refresh_from_row(invoice, row)
    return invoice
