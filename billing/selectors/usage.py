"""A customer's usage in a period (``GET …/usage``): per price, the metered quantity, what the
allowance covered, what is billable and what it costs; and spend against the limit.

Real-time prices read their counters. Periodically rated prices (volume, and meters that
aggregate by max, unique_count or latest) are rated here from the period's events with the
same pure pricing functions, so the numbers are what rating will charge."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.models import Customer, Subscription, UsageCounter
from billing.selectors.spend_limits import spend_summary
from core.db import hot_cursor
from core.errors import NotFound
from core.text import plain
from plans.models import Meter, Price
from plans.periods import period_containing
from plans.pricing import total_amount
from plans.services import price_spec

ZERO = Decimal(0)


def _text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return plain(value)


def subscription_at(*, customer: Customer, at: datetime) -> Subscription:
    subs = Subscription.objects.filter(customer=customer, started_at__lte=at).select_related(
        "plan_version"
    )
    live = [s for s in subs if s.status in ("trialing", "active", "canceled")]
    for sub in live + [s for s in subs if s not in live]:
        if sub.ended_at is None or sub.ended_at > at:
            return sub
    raise NotFound(f"{customer.external_id} had no subscription at {at.isoformat()}.")


AGGREGATE_SQL = {
    "sum": "COALESCE(SUM(quantity), 0)",
    "count": "COUNT(*)",
    "max": "COALESCE(MAX(quantity), 0)",
    "latest": "COALESCE((ARRAY_AGG(quantity ORDER BY timestamp DESC, id DESC))[1], 0)",
    "unique_count": "COUNT(DISTINCT properties ->> %s)",
}


def aggregate_events(
    *, subscription: Subscription, meter: Meter, price_filter: dict, start: datetime, end: datetime
) -> Decimal:
    """The period's aggregate of a meter's accepted events matching a price filter (a
    prepared statement per aggregation: a billing run asks it for every subscription)."""
    expression = AGGREGATE_SQL[meter.aggregation]
    params: list[Any] = [meter.event_property] if meter.aggregation == "unique_count" else []
    params += [subscription.pk, meter.pk, start, end, json.dumps(price_filter or {})]
    with hot_cursor() as cursor:
        cursor.execute(
            f"SELECT {expression} FROM billing_usageevent "  # noqa: S608 - fixed expressions
            "WHERE subscription_id = %s AND meter_id = %s AND timestamp >= %s AND timestamp < %s "
            "AND status = 'accepted' AND properties @> %s::jsonb",
            params,
        )
        return Decimal(cursor.fetchone()[0] or 0)


def usage_for_period(*, customer: Customer, at: datetime) -> dict[str, Any]:
    sub = subscription_at(customer=customer, at=at)
    start, end = period_containing(sub.anchor, sub.plan_version.interval, at)
    counters = {
        c.price_id: c for c in UsageCounter.objects.filter(subscription=sub, period_start=start)
    }
    meters = []
    prices = Price.objects.filter(plan_version=sub.plan_version).select_related("meter")
    for price in prices:
        meter = price.meter
        spec = price_spec(price)
        realtime = meter.is_additive and price.model != Price.Model.VOLUME
        if realtime:
            counter = counters.get(price.pk)
            quantity = counter.quantity if counter else ZERO
            included = counter.included if counter else ZERO
            billable = counter.billable if counter else ZERO
            amount = (counter.amount + counter.accrued) if counter else ZERO
            accrued = counter.accrued if counter else ZERO
        else:
            quantity = aggregate_events(
                subscription=sub, meter=meter, price_filter=price.filter, start=start, end=end
            )
            included = min(quantity, price.included)
            billable = quantity - included
            amount = total_amount(spec, billable)
            accrued = ZERO
        meters.append(
            {
                "meter": meter.code,
                "filter": price.filter or {},
                "price": price.pk,
                "quantity": _text(quantity),
                "included": _text(included),
                "included_remaining": _text(max(price.included - included, ZERO)),
                "billable": _text(billable),
                "amount": _text(amount),
                "accrued": _text(accrued),
                "asset": price.asset_id,
                "rating": "real_time" if realtime else "periodic",
            }
        )
    spend = spend_summary(customer=customer, at=at)
    return {
        "customer": customer.external_id,
        "subscription": sub.pk,
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "meters": meters,
        "spend": {
            "amount": _text(spend["amount"]),
            "limit": _text(spend["limit"]),
            "currency": spend["currency"],
            "mode": spend["mode"],
            "window": {
                "kind": spend["window"]["kind"],
                "start": spend["window"]["start"].isoformat(),
                "end": spend["window"]["end"].isoformat(),
            },
        },
    }
