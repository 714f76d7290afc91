"""Reads of spend limits."""

from __future__ import annotations

from billing.models import Customer, SpendLimit


def spend_limit_of(*, customer: Customer) -> SpendLimit | None:
    """The customer's spend limit, or None when it has none."""
    return SpendLimit.objects.filter(customer=customer).first()
