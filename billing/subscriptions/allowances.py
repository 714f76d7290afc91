"""Allowance grants: the included quantity of each real-time price of a subscription's plan,
put into its wallet for the current period."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.utils import timezone

from billing.metering import allowance_prefix, allowance_source
from billing.models import Subscription
from billing.subscriptions.proration import microseconds
from wallets.models import Grant
from wallets.services import grant_create, grant_void


def _floor(value: Fraction, places: int) -> Decimal:
    """``value`` rounded down to ``places`` decimal places (allowances never round up)."""
    return Decimal(math.floor(value * 10**places)).scaleb(-places)


def subscription_allowances_issue(
    *, subscription: Subscription, prorate_from: datetime | None = None
) -> list[Grant]:
    """Put the current period's allowance of each real-time price into the wallet: a grant
    of the meter's unit, scoped to the meter, expiring at period end. Idempotent (each grant
    has a unique source); nothing is issued for a period that is already over.

    With ``prorate_from`` (a moment inside the current period, e.g. a plan change), each
    allowance is prorated to the rest of the period: ``included × (period end − prorate_from)
    / period length``, rounded down to the unit's decimal places; its source carries the moment,
    so a later change in the same period issues its own grants."""
    now = timezone.now()
    if subscription.current_period_end <= now:
        return []
    start, end = subscription.current_period_start, subscription.current_period_end
    fraction = Fraction(1)
    if prorate_from is not None:
        if not start <= prorate_from < end:
            raise ValueError("prorate_from must lie inside the current period")
        fraction = Fraction(microseconds(end - prorate_from), microseconds(end - start))
    grants = []
    prices = subscription.plan_version.prices.select_related("meter", "meter__unit")
    for price in prices:
        if price.included <= 0 or not price.meter.is_additive:
            continue
        source = allowance_source(subscription.pk, price.pk, subscription.current_period_start)
        amount = price.included
        if prorate_from is not None:
            source += f":from:{prorate_from.isoformat()}"
            amount = _floor(Fraction(price.included) * fraction, price.meter.unit.decimals)
            if amount <= 0:
                continue
        existing = Grant.objects.filter(source=source).first()
        if existing is not None:
            grants.append(existing)
            continue
        grants.append(
            grant_create(
                wallet_id=subscription.customer.wallet_id,
                asset=price.meter.unit_id,
                amount=amount,
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


def allowances_void(subscription: Subscription, *, at: datetime, reason: str) -> list[Grant]:
    """Void what remains of the subscription's allowance grants of the current period (active,
    expiring after ``at``), in id order. A grant with open holds raises ``GrantHeld``."""
    grant_ids = (
        Grant.objects.filter(
            source__startswith=allowance_prefix(subscription.pk),
            status=Grant.Status.ACTIVE,
            expires_at__gt=at,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return [grant_void(grant_id=grant_id, reason=reason) for grant_id in list(grant_ids)]
