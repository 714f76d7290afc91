"""Reads of spend limits and of the spend in their windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from billing.models import Customer, SpendCounter, SpendLimit, Subscription, UsageEvent
from wallets.models import AssetRate

ZERO = Decimal(0)


def value_in_currency(amount: Decimal, asset: str | None, currency: str) -> Decimal:
    """The money value of ``amount`` of ``asset`` in ``currency`` (0 when it has no rate)."""
    if not amount or asset is None:
        return ZERO
    if asset == currency:
        return amount
    rate = (
        AssetRate.objects.filter(asset_id=asset, currency_id=currency)
        .values_list("rate", flat=True)
        .first()
    )
    return amount * rate if rate is not None else ZERO


def window_bounds(
    window: str, *, at: datetime, period: tuple[datetime, datetime]
) -> tuple[datetime, datetime]:
    if window == SpendLimit.Window.DAY:
        start = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    return period


def spend_limit_for(customer_id: int) -> SpendLimit | None:
    """The customer's spend limit, or None when it has none."""
    return SpendLimit.objects.filter(customer_id=customer_id).first()


def spend_in_window(*, customer_id: int, start: datetime, end: datetime) -> Decimal:
    """Spend from the events of a window, valued in the billing currency."""
    currency = Customer.objects.values_list("currency_id", flat=True).get(pk=customer_id)
    rows = (
        UsageEvent.objects.filter(
            customer_id=customer_id,
            status=UsageEvent.Status.ACCEPTED,
            timestamp__gte=start,
            timestamp__lt=end,
            asset__isnull=False,
        )
        .values("asset_id")
        .annotate(total=Sum("amount"))
    )
    return sum((value_in_currency(r["total"], r["asset_id"], currency) for r in rows), ZERO)


def spend_summary(*, customer: Customer, at: datetime) -> dict[str, Any]:
    """Spend of the window containing ``at`` (the live subscription's period, or the UTC
    day), with the limit if there is one."""
    limit = spend_limit_for(customer.pk)
    sub = Subscription.objects.filter(
        customer=customer, status__in=("trialing", "active", "canceled")
    ).first()
    period = (sub.current_period_start, sub.current_period_end) if sub else (at, at)
    window = limit.window if limit else SpendLimit.Window.PERIOD
    start, end = window_bounds(window, at=at, period=period)
    counter = (
        SpendCounter.objects.filter(customer=customer, window=window, window_start=start)
        .values_list("spent", flat=True)
        .first()
    )
    spent = (
        counter
        if counter is not None
        else spend_in_window(customer_id=customer.pk, start=start, end=end)
    )
    return {
        "amount": spent,
        "limit": limit.amount if limit else None,
        "currency": customer.currency_id,
        "window": {"start": start, "end": end, "kind": window},
        "mode": limit.mode if limit else None,
    }
