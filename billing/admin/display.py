"""How billing rows appear on admin pages: periods and links to customers."""

from __future__ import annotations

from billing.models import Customer
from core.admin.formatting import EMPTY
from core.admin.links import link


def period_text(start, end) -> str:
    if start is None and end is None:
        return EMPTY
    fmt = "%Y-%m-%d"
    return f"{start:{fmt}} → {end:{fmt}}" if start and end else f"{start or ''} → {end or ''}"


def customer_link(customer: Customer) -> str:
    return link(Customer, customer.pk, customer.external_id)
