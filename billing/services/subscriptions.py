"""Subscriptions: a customer on a plan version, with its current period and the allowance
grants of that period."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Customer, Subscription
from plans.models import Plan, PlanVersion
from plans.periods import add_intervals
from wallets.errors import BillfoldError, NotFound, ValidationFailed
from wallets.models import Grant
from wallets.services import grant_create

MAX_SEATS = 1_000_000


class SubscriptionExists(BillfoldError):
    code = "subscription_exists"
    status = 409
    title = "The customer already has a live subscription"


def plan_version_latest(*, plan_code: str) -> PlanVersion:
    version = (
        PlanVersion.objects.filter(plan__code=plan_code, plan__archived_at__isnull=True)
        .order_by("-version")
        .first()
    )
    if version is None:
        raise NotFound(f"Unknown plan '{plan_code}'.", errors={"plan": ["Unknown plan."]})
    return version


def allowance_source(subscription: Subscription, price_id: int, period_start: datetime) -> str:
    return f"allowance:{subscription.pk}:{price_id}:{period_start.isoformat()}"


def subscription_allowances_issue(*, subscription: Subscription) -> list[Grant]:
    """Put the current period's allowance of each real-time price into the wallet: a grant
    of the meter's unit, scoped to the meter, expiring at period end. Idempotent (each grant
    has a unique source); nothing is issued for a period that is already over."""
    now = timezone.now()
    if subscription.current_period_end <= now:
        return []
    grants = []
    prices = subscription.plan_version.prices.select_related("meter", "meter__unit")
    for price in prices:
        if price.included <= 0 or not price.meter.is_additive:
            continue
        source = allowance_source(subscription, price.pk, subscription.current_period_start)
        existing = Grant.objects.filter(source=source).first()
        if existing is not None:
            grants.append(existing)
            continue
        grants.append(
            grant_create(
                wallet_id=subscription.customer.wallet_id,
                asset=price.meter.unit_id,
                amount=price.included,
                purpose=Grant.Purpose.ALLOWANCE,
                priority=0,
                expires_at=subscription.current_period_end,
                meters=[price.meter.code],
                reference=f"{subscription.plan_version} allowance",
                source=source,
                idempotency_key=source,
            )
        )
    return grants


def subscription_create(
    *,
    customer: Customer,
    plan: str | PlanVersion,
    start: datetime | None = None,
    seats: int = 1,
    overage: str = Subscription.Overage.WALLET,
) -> Subscription:
    """Subscribe ``customer`` to the latest version of ``plan`` (or the version given) from
    ``start`` (default now; a past start back-dates it, and the periodic work catches up)."""
    version = plan if isinstance(plan, PlanVersion) else plan_version_latest(plan_code=plan)
    errors: dict[str, list[str]] = {}
    start = start or timezone.now()
    if timezone.is_naive(start):
        errors["start"] = ["A time with an offset (UTC)."]
    elif start > timezone.now() + timedelta(days=366):
        errors["start"] = ["At most a year ahead."]
    if isinstance(seats, bool) or not isinstance(seats, int) or not 0 <= seats <= MAX_SEATS:
        errors["seats"] = [f"An integer from 0 to {MAX_SEATS}."]
    if overage not in Subscription.Overage.values:
        errors["overage"] = [f"One of {', '.join(Subscription.Overage.values)}."]
    if version.currency_id != customer.currency_id and (version.base_fee or version.seat_price):
        errors["plan"] = [
            f"The plan bills in {version.currency_id}, the customer in {customer.currency_id}."
        ]
    if errors:
        raise ValidationFailed("Invalid subscription.", errors=errors)
    trial_end = start + timedelta(days=version.trial_days) if version.trial_days else None
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                customer=customer,
                plan_version=version,
                status=Subscription.Status.TRIALING if trial_end else Subscription.Status.ACTIVE,
                seats=seats,
                overage=overage,
                started_at=start,
                current_period_start=start,
                current_period_end=add_intervals(start, version.interval, 1),
                trial_ends_at=trial_end,
            )
            subscription_allowances_issue(subscription=subscription)
    except IntegrityError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "23505":
            raise SubscriptionExists(
                f"{customer.external_id} already has a live subscription; change its plan instead."
            ) from exc
        raise
    return subscription


def plan_get(*, code: str) -> Plan:
    plan = Plan.objects.filter(code=code).first()
    if plan is None:
        raise NotFound(f"Unknown plan '{code}'.")
    return plan
