"""What goes on a subscription's invoice for a period: in-arrears items (base fee, postpaid
usage, periodically rated prices), in-advance items (base fee, seats) and charge items
(docs/billing-cycle.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from billing.invoicing.lines import LineSpec
from billing.invoicing.plan_cache import prices_of
from billing.models import ChargeItem, InvoiceLine, Subscription, UsageCounter
from billing.selectors.usage import aggregate_events
from core.db import columns, rows_as
from core.errors import AmountTooLarge
from core.text import bounds_text, number_text, plain
from plans.models import Meter, PlanVersion, Price
from plans.pricing import rated_periodically, total_amount
from plans.services import price_spec
from wallets.services.amounts import MAX_AMOUNT


def _periodic(price: Price) -> bool:
    return rated_periodically(aggregation=price.meter.aggregation, model=price.model)


class RatedAmountTooLarge(AmountTooLarge):
    """A periodically rated price whose period prices at 10^18 or more: beyond what an
    invoice holds. Events are bounded as they arrive (``periodic_bounds``), so only data
    written around those checks gets here; the run records it as the subscription's
    failure and writes nothing of it."""


def rated_price(
    *, subscription: Subscription, price: Price, start: datetime, end: datetime
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(quantity, included, billable, amount) of a periodically rated price for a period,
    recomputed from its events."""
    quantity = aggregate_events(
        subscription=subscription,
        meter=price.meter,
        price_filter=price.filter,
        start=start,
        end=end,
    )
    included = min(quantity, price.included)
    billable = quantity - included
    amount = total_amount(price_spec(price), billable)
    for name, value in (("quantity", quantity), ("amount", amount)):
        if value >= MAX_AMOUNT:
            raise RatedAmountTooLarge(
                f"Price {price.pk} ({price.meter.code}) of subscription {subscription.pk} "
                f"rates a {name} of {plain(value)} for {bounds_text(start, end)}: "
                "amounts and quantities stay below 10^18."
            )
    return quantity, included, billable, amount


# the period's usage counters, through a prepared statement (``hot_cursor``), as every
# statement of a close: the instances are the ones the ORM would make
COUNTERS_SQL = (
    f"SELECT {columns(UsageCounter)} FROM billing_usagecounter "  # noqa: S608 - column names
    "WHERE subscription_id = %s AND period_start = %s"
)


def _base_fee_line(version: PlanVersion, start: datetime, end: datetime) -> LineSpec:
    """The base fee of the period ``[start, end)``, in advance or in arrears as the version
    bills it."""
    return LineSpec(
        kind=InvoiceLine.Kind.BASE_FEE,
        description=f"{version.name} base fee, {bounds_text(start, end)}",
        amount_exact=version.base_fee,
        quantity=Decimal(1),
        unit_price=version.base_fee,
        period_start=start,
        period_end=end,
        computation={
            "timing": str(version.base_fee_timing),
            "base_fee": format(version.base_fee, "f"),
        },
    )


def arrears_lines(
    *,
    subscription: Subscription,
    version: PlanVersion,
    start: datetime,
    end: datetime,
    extra_versions: set[int] = frozenset(),
) -> list[LineSpec]:
    """The in-arrears items of the period ``[start, end)``: arrears base fee, postpaid usage
    accrued by real-time prices, periodically rated prices (in the billing currency) of
    ``version`` and ``extra_versions``."""
    lines: list[LineSpec] = []
    if version.base_fee and version.base_fee_timing == PlanVersion.Timing.IN_ARREARS:
        lines.append(_base_fee_line(version, start, end))
    counters = {
        c.price_id: c
        for c in rows_as(UsageCounter, COUNTERS_SQL, [subscription.pk, start], binary=True)
    }
    prices = prices_of({version.pk, *extra_versions, *_versions_used(counters)})
    currency = subscription.customer.currency_id
    for price in prices:
        meter = price.meter
        kind = (
            InvoiceLine.Kind.OUTCOME
            if meter.aggregation == Meter.Aggregation.COUNT
            else InvoiceLine.Kind.USAGE
        )
        label = meter.name + (
            " (" + ", ".join(f"{k}={v}" for k, v in sorted(price.filter.items())) + ")"
            if price.filter
            else ""
        )
        if _periodic(price):
            if price.asset_id != currency or price.plan_version_id not in {
                version.pk,
                *extra_versions,
            }:
                continue
            quantity, included, billable, amount = rated_price(
                subscription=subscription, price=price, start=start, end=end
            )
            if not quantity:
                continue
            lines.append(
                LineSpec(
                    kind=kind,
                    description=(
                        f"{label}: {number_text(billable)} {meter.unit_id}, "
                        f"{bounds_text(start, end)}"
                    ),
                    amount_exact=amount,
                    quantity=billable,
                    unit_price=price.unit_price,
                    meter_id=meter.pk,
                    period_start=start,
                    period_end=end,
                    computation={
                        "price": price.pk,
                        "rating": "periodic",
                        "aggregation": meter.aggregation,
                        "quantity": format(quantity, "f"),
                        "included": format(included, "f"),
                        "billable": format(billable, "f"),
                        "model": price.model,
                        "amount": format(amount, "f"),
                    },
                )
            )
            continue
        counter = counters.get(price.pk)
        if counter is None or not counter.accrued:
            continue
        lines += _real_time_lines(counter, price, kind, label, start, end)
    return lines


def _real_time_lines(
    counter: UsageCounter, price: Price, kind: str, label: str, start: datetime, end: datetime
) -> list[LineSpec]:
    """A postpaid price's usage of the period: what it charged (the counter's ``amount``,
    paid from the wallet as events came, plus its ``accrued``), then a ``paid_from_wallet``
    line of minus the wallet's part, so quantity × unit price − paid = what accrued."""
    meter = price.meter
    usage = counter.amount + counter.accrued
    lines = [
        LineSpec(
            kind=kind,
            description=(
                f"{label}: {number_text(counter.billable)} {meter.unit_id} billable, "
                f"{bounds_text(start, end)}"
            ),
            amount_exact=usage,
            quantity=counter.billable,
            unit_price=price.unit_price if price.model == Price.Model.PER_UNIT else None,
            meter_id=meter.pk,
            period_start=start,
            period_end=end,
            computation={
                "price": price.pk,
                "rating": "real_time",
                "quantity": format(counter.quantity, "f"),
                "included": format(counter.included, "f"),
                "billable": format(counter.billable, "f"),
                "paid_from_wallet": format(counter.amount, "f"),
                "accrued": format(counter.accrued, "f"),
                "events": counter.events,
            },
        )
    ]
    if counter.amount:
        lines.append(
            LineSpec(
                kind=InvoiceLine.Kind.PAID_FROM_WALLET,
                description=f"{label}: paid from wallet, {bounds_text(start, end)}",
                amount_exact=-counter.amount,
                meter_id=meter.pk,
                period_start=start,
                period_end=end,
                computation={
                    "price": price.pk,
                    "usage": format(usage, "f"),
                    "paid_from_wallet": format(counter.amount, "f"),
                    "accrued": format(counter.accrued, "f"),
                },
                offsets=usage,
            )
        )
    return lines


def _versions_used(counters: dict[int, UsageCounter]) -> set[int]:
    """Versions whose prices charged in the period (a plan change now keeps their accruals)."""
    if not counters:
        return set()
    return set(
        Price.objects.filter(pk__in=list(counters)).values_list("plan_version_id", flat=True)
    )


def advance_lines(
    *, version: PlanVersion, seats: int, start: datetime, end: datetime
) -> list[LineSpec]:
    """The in-advance items of the period ``[start, end)``: base fee and seats."""
    lines = []
    if version.base_fee and version.base_fee_timing == PlanVersion.Timing.IN_ADVANCE:
        lines.append(_base_fee_line(version, start, end))
    if version.seat_price and seats:
        amount = version.seat_price * seats
        lines.append(
            LineSpec(
                kind=InvoiceLine.Kind.SEATS,
                description=(
                    f"{seats} seats × {number_text(version.seat_price)}, {bounds_text(start, end)}"
                ),
                amount_exact=amount,
                quantity=Decimal(seats),
                unit_price=version.seat_price,
                period_start=start,
                period_end=end,
                computation={"seats": seats, "seat_price": format(version.seat_price, "f")},
            )
        )
    return lines


def charge_item_lines(items: list[ChargeItem]) -> list[LineSpec]:
    return [
        LineSpec(
            kind=item.kind if item.kind in InvoiceLine.Kind.values else InvoiceLine.Kind.PRORATION,
            description=item.description,
            amount_exact=item.amount,
            quantity=item.quantity,
            unit_price=item.unit_price,
            period_start=item.period_start,
            period_end=item.period_end,
            computation={"charge_item": item.pk, **(item.computation or {})},
        )
        for item in items
    ]


def trialing_at(subscription: Subscription, moment: datetime) -> bool:
    return subscription.trial_ends_at is not None and subscription.trial_ends_at > moment
