"""Reads of subscriptions, their charge items and the plans they subscribe to."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import ChargeItem, Customer, Subscription
from core.db import columns, hot_cursor, instances
from core.errors import NotFound
from plans.models import Plan, PlanVersion

_MAX_ID = 2**63 - 1

# a period close reads its subscription with this fixed, prepared statement (``hot_cursor``):
# the ORM built its SQL again for every close and PostgreSQL parsed and planned it again
SUBSCRIPTION_LOCK_SQL = (
    f"SELECT {columns(Subscription, 's')}, {columns(Customer, 'c')} "  # noqa: S608 - columns
    "FROM billing_subscription s JOIN billing_customer c ON c.id = s.customer_id "
    "WHERE s.id = %s FOR UPDATE OF s"
)
SUBSCRIPTION_SQL = SUBSCRIPTION_LOCK_SQL.removesuffix(" FOR UPDATE OF s")


def subscription_with_customer(*, subscription_id: int, lock: bool = False) -> Subscription | None:
    """The subscription with its customer (``select_related("customer")``), or None; with
    ``lock``, its row locked until the transaction ends (``select_for_update(of=("self",))``).
    The instances are the ones the ORM would make."""
    with hot_cursor(binary=True) as cursor:
        cursor.execute(SUBSCRIPTION_LOCK_SQL if lock else SUBSCRIPTION_SQL, [subscription_id])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(Subscription._meta.concrete_fields)
    (sub,) = instances(Subscription, [row[:n]])
    (sub.customer,) = instances(Customer, [row[n:]])
    return sub


def plan_version_latest(*, plan_code: str) -> PlanVersion:
    version = (
        PlanVersion.objects.filter(plan__code=plan_code, plan__archived_at__isnull=True)
        .order_by("-version")
        .first()
    )
    if version is None:
        raise NotFound(f"Unknown plan '{plan_code}'.", errors={"plan": ["Unknown plan."]})
    return version


def plan_get(*, code: str) -> Plan:
    plan = Plan.objects.filter(code=code).first()
    if plan is None:
        raise NotFound(f"Unknown plan '{code}'.")
    return plan


def subscription_get(*, subscription_id: object) -> Subscription:
    """The subscription with this id (an int or a string of digits), with its customer and
    plan versions; ``NotFound`` for anything else, never a database error."""
    text = str(subscription_id) if isinstance(subscription_id, int | str) else ""
    if isinstance(subscription_id, bool) or not text.isascii() or not text.isdigit():
        raise NotFound(f"Unknown subscription '{subscription_id}'.")
    number = int(text)
    subscription = (
        Subscription.objects.select_related(
            "customer", "plan_version__plan", "next_plan_version__plan"
        )
        .filter(pk=number)
        .first()
        if 0 < number <= _MAX_ID
        else None
    )
    if subscription is None:
        raise NotFound(f"Unknown subscription '{subscription_id}'.")
    return subscription


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
