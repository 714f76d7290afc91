"""Subscribing a customer to a plan (docs/subscriptions.md, "Creating a subscription")."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.invoicing import subscription_first_invoice
from billing.models import Customer, Subscription
from billing.selectors.subscriptions import plan_version_latest
from billing.subscriptions.allowances import subscription_allowances_issue
from billing.subscriptions.checks import MAX_SEATS
from billing.subscriptions.errors import SubscriptionExists
from billing.subscriptions.start import subscription_start_errors
from core.errors import ValidationFailed
from plans.models import PlanVersion
from plans.periods import add_intervals, period_containing


def subscription_create(
    *,
    customer: Customer,
    plan: str | PlanVersion,
    start: datetime | None = None,
    seats: int = 1,
    overage: str = Subscription.Overage.WALLET,
    backdate: bool = False,
    invoice_missed_periods: bool = False,
) -> Subscription:
    """Subscribe ``customer`` to the latest version of ``plan`` (or the version given) from
    ``start`` (default now; at most a year ahead).

    A start in the past: up to ``SUBSCRIPTION_MAX_BACKDATE_PERIODS`` periods of the plan
    back (default one), the subscription begins at ``start`` and the periodic work invoices
    the periods that have ended since. Earlier needs ``backdate`` (a subscription carried
    over from elsewhere, at most ``MAX_BACKDATE_YEARS`` back): its periods are still counted
    from ``start`` (its billing anchor), but billing begins with the period that contains
    now — ``started_at`` and the first invoice are that period's, and the periods before it
    are not invoiced and take no events. With ``invoice_missed_periods`` as well, it begins at
    ``start`` and every period since is invoiced (at most ``MAX_MISSED_PERIODS``)."""
    version = plan if isinstance(plan, PlanVersion) else plan_version_latest(plan_code=plan)
    now = timezone.now()
    start = start or now
    errors = subscription_start_errors(
        start=start,
        now=now,
        interval=version.interval,
        backdate=backdate,
        invoice_missed_periods=invoice_missed_periods,
    )
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
    status = Subscription.Status.TRIALING if trial_end else Subscription.Status.ACTIVE
    period = start, add_intervals(start, version.interval, 1)
    anchor = None
    if backdate and not invoice_missed_periods:
        period = period_containing(start, version.interval, now)
        anchor = start
        if trial_end is not None and trial_end <= period[0]:
            trial_end = None  # over before billing here begins
        if trial_end is None or trial_end <= now:
            status = Subscription.Status.ACTIVE
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                customer=customer,
                plan_version=version,
                status=status,
                seats=seats,
                overage=overage,
                started_at=period[0],
                billing_anchor=anchor,
                current_period_start=period[0],
                current_period_end=period[1],
                trial_ends_at=trial_end,
            )
            subscription_allowances_issue(subscription=subscription)
            subscription_first_invoice(subscription=subscription)
    except IntegrityError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "23505":
            raise SubscriptionExists(
                f"{customer.external_id} already has a live subscription; change its plan instead."
            ) from exc
        raise
    return subscription
