"""Reads of usage events: the list the API pages through."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from billing.models import Customer, UsageEvent


def usage_event_list(
    *,
    customer: Customer | None = None,
    meter: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[UsageEvent]:
    """Events with their customer and meter, narrowed by what is given: one customer, a
    meter's code, a status, a time at or after ``since`` and before ``until``."""
    query = UsageEvent.objects.select_related("customer", "meter")
    if customer is not None:
        query = query.filter(customer=customer)
    if meter is not None:
        query = query.filter(meter__code=meter)
    if status is not None:
        query = query.filter(status=status)
    if since is not None:
        query = query.filter(timestamp__gte=since)
    if until is not None:
        query = query.filter(timestamp__lt=until)
    return query
