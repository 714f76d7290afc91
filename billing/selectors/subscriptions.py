"""Reads of subscriptions and their charge items: the lists the API pages through."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import ChargeItem, Customer, Subscription


def subscription_list(*, customer: Customer | None = None) -> QuerySet[Subscription]:
    """Subscriptions with their customer and plan versions, of one customer when given."""
    query = Subscription.objects.select_related(
        "customer", "plan_version__plan", "next_plan_version__plan"
    )
    if customer is not None:
        query = query.filter(customer=customer)
    return query


def subscription_charges(*, subscription: Subscription) -> QuerySet[ChargeItem]:
    """The subscription's charge items (prorations, credits, accruals), invoiced or not."""
    return ChargeItem.objects.filter(subscription=subscription)
