"""How billing rows appear on admin pages: periods and links to customers."""

from __future__ import annotations

from datetime import datetime

from billing.models import Customer
from core import text
from core.admin.formatting import EMPTY
from core.admin.links import link


def period_text(start: datetime | None, end: datetime | None) -> str:
    """A period's days as invoices show them (``core.text.period_text``: the end inclusive),
    ``EMPTY`` without a start."""
    return text.period_text(start, end) or EMPTY


def customer_link(customer: Customer) -> str:
    return link(Customer, customer.pk, customer.external_id)
