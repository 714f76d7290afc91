"""The bound of periodically rated prices, checked as their events arrive.

A periodically rated price (``plans.pricing.rated_periodically``: volume, or a meter that
aggregates by max, latest or unique_count) charges nothing per event: ``rating_run`` and the
period close price the period's events. What they may price is bounded when each event is
accepted, so that every amount the billing run writes stays below 10^18, as a real-time
charge's does (``decide.check_bounds``). An event is refused (``AmountTooLarge``, 422
``amount_too_large``, nothing written) when, for a periodic price it counts toward — each
price of its meter whose filter it matches, as rating aggregates them — the period could
then price at 10^18 or more:

- sum and count meters: the period's quantity (the counter's running ``quantity``, to which
  each event adds its quantity, 1 for a count) may not reach 10^18, nor the most the price
  costs for any quantity up to it (``peak_amount``: a reversal can lower the quantity, and a
  volume price can cost more for fewer units);
- max and latest: the period's quantity is one event's, so the price of the event's own
  quantity;
- unique_count: the count of distinct values is at most the number of events (the counter's
  ``events``, to which each event adds 1), so the most the price costs for that many.

The counter rows are locked (in key order) for the check and updated in the event's
transaction, so concurrent events of a price are counted one after the other; ``rating_run``
takes the same locks before it recomputes a counter from the events (``counters_lock``).
The included quantity is taken off first, as rating does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from billing.metering.context import Context, Period, charged_quantity
from billing.metering.decide import realtime
from billing.metering.input import EventData
from billing.selectors.prices import CachedPrice, version_prices
from core.db import hot_cursor, int_array, numeric_texts
from core.errors import AmountTooLarge
from core.text import plain
from plans.models import Meter
from plans.pricing import ADDITIVE_AGGREGATIONS, peak_amount, total_amount
from wallets.services.amounts import MAX_AMOUNT

ZERO = Decimal(0)
Key = tuple[int, datetime, int]  # subscription, period start, price

COUNTERS_LOCK_SQL = """
INSERT INTO billing_usagecounter
    (subscription_id, period_start, period_end, price_id, quantity, included, billable,
     amount, accrued, events, updated_at)
SELECT k.s, k.start, k.end_, k.p, 0, 0, 0, 0, 0, 0, %s::timestamptz
FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::bigint[])
     AS k(s, start, end_, p)
ORDER BY k.s, k.start, k.p
ON CONFLICT (subscription_id, period_start, price_id)
DO UPDATE SET updated_at = billing_usagecounter.updated_at
RETURNING subscription_id, period_start, price_id, quantity, events
"""
COUNTERS_ADD_SQL = """
UPDATE billing_usagecounter c SET quantity = c.quantity + d.q, events = c.events + d.n,
    updated_at = %b::timestamptz
FROM unnest(%b::bigint[], %b::timestamptz[], %b::bigint[], %b::numeric[], %b::bigint[])
     AS d(s, start, p, q, n)
WHERE c.subscription_id = d.s AND c.period_start = d.start AND c.price_id = d.p
"""


def periodic_prices(ctx: Context, properties: dict) -> list[CachedPrice]:
    """The periodically rated prices an event of ``ctx``'s meter counts toward: each price
    of the subscription's plan version on the meter whose filter the event matches."""
    return [
        price
        for price in version_prices(ctx.version_id)
        if price.meter_id == ctx.meter_id and price.matches(properties) and not realtime(ctx, price)
    ]


def counters_lock(
    keys: Iterable[tuple[int, datetime, datetime, int]], now: datetime
) -> dict[Key, list]:
    """Lock the counters of ``keys`` (subscription, period start, period end, price), made
    empty when missing, in key order; returns each one's [quantity, events]."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    with hot_cursor() as cursor:
        cursor.execute(
            COUNTERS_LOCK_SQL,
            [
                now,
                [k[0] for k in ordered],
                [k[1] for k in ordered],
                [k[2] for k in ordered],
                [k[3] for k in ordered],
            ],
        )
        return {(s, start, p): [q, n] for s, start, p, q, n in cursor.fetchall()}


def _refused(price: CachedPrice, what: str, value: Decimal) -> AmountTooLarge:
    return AmountTooLarge(
        f"The period's {what} for price {price.id} could be {plain(value)}: amounts "
        "and quantities stay below 10^18.",
        errors={"quantity": ["Its charge or its period's totals would reach 10^18."]},
    )


def periodic_bound_check(
    ctx: Context,
    quantity: Decimal,
    price: CachedPrice,
    quantity_before: Decimal,
    events_before: int,
) -> None:
    """``AmountTooLarge`` when an event of ``quantity`` (as charged: 1 for a count meter)
    would let the period of ``price`` price at 10^18 or more, the counter holding
    ``quantity_before`` and ``events_before`` (see the module docstring)."""
    if ctx.aggregation in ADDITIVE_AGGREGATIONS:
        after = quantity_before + quantity
        if after >= MAX_AMOUNT:
            raise _refused(price, "quantity", after)
        amount = peak_amount(price.spec, max(after - price.included, ZERO))
    elif ctx.aggregation == Meter.Aggregation.UNIQUE_COUNT:
        amount = peak_amount(price.spec, max(events_before + 1 - price.included, ZERO))
    else:  # max, latest: the period's quantity is one event's
        amount = total_amount(price.spec, max(quantity - price.included, ZERO))
    if amount >= MAX_AMOUNT:
        raise _refused(price, "amount", amount)


class PeriodicCounters:
    """The counters of periodically rated prices that some events count toward, locked and
    read at once; ``take`` checks one event and counts it in memory, ``write`` adds what the
    events that were written took."""

    def __init__(
        self, items: Iterable[tuple[Context, Period, list[CachedPrice]]], now: datetime
    ) -> None:
        self.now = now
        self.totals = counters_lock(
            (
                (ctx.subscription_id, period[0], period[1], price.id)
                for ctx, period, prices in items
                for price in prices
            ),
            now,
        )
        self.taken: dict[str, list[tuple[Key, Decimal]]] = {}

    def take(
        self, ctx: Context, data: EventData, period: Period, prices: list[CachedPrice]
    ) -> None:
        quantity = charged_quantity(ctx, data)
        keys = [(ctx.subscription_id, period[0], price.id) for price in prices]
        for key, price in zip(keys, prices, strict=True):
            periodic_bound_check(ctx, quantity, price, *self.totals[key])
        added = quantity if ctx.aggregation in ADDITIVE_AGGREGATIONS else ZERO
        for key in keys:
            self.totals[key][0] += added
            self.totals[key][1] += 1
        self.taken[data.id] = [(key, added) for key in keys]

    def write(self, ids: Iterable[str] | None = None) -> None:
        """Add to the counters what the events ``ids`` (default: all taken) took."""
        sums: dict[Key, list] = {}
        for event_id in self.taken if ids is None else ids:
            for key, added in self.taken.get(event_id, ()):
                total = sums.setdefault(key, [ZERO, 0])
                total[0] += added
                total[1] += 1
        if not sums:
            return
        keys = sorted(sums)
        with hot_cursor() as cursor:
            cursor.execute(
                COUNTERS_ADD_SQL,
                [
                    self.now,
                    int_array(k[0] for k in keys),
                    [k[1] for k in keys],
                    int_array(k[2] for k in keys),
                    numeric_texts(sums[k][0] for k in keys),
                    int_array(sums[k][1] for k in keys),
                ],
            )


def periodic_estimate_check(
    ctx: Context, data: EventData, period: Period, prices: list[CachedPrice]
) -> None:
    """A hold's estimate checked as its capture will be (``AmountTooLarge``), from the
    counters as they stand (read without locks: the capture checks again)."""
    if not prices:
        return
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT price_id, quantity, events FROM billing_usagecounter "
            "WHERE subscription_id = %s AND period_start = %s AND price_id = ANY(%s)",
            [ctx.subscription_id, period[0], [p.id for p in prices]],
        )
        totals = {p: (q, n) for p, q, n in cursor.fetchall()}
    quantity = charged_quantity(ctx, data)
    for price in prices:
        periodic_bound_check(ctx, quantity, price, *totals.get(price.id, (ZERO, 0)))
