"""Prorated charges and credits of a change inside a period: ``proration`` charge items for
the part of the period a fee covers, exact at 12 decimal places."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal

from billing.models import ChargeItem, Subscription
from core.text import plain
from plans.models import PlanVersion
from plans.pricing import PRICE_PLACES, prorate, round_half_up

_DAY = timedelta(days=1)
_WIDE = Context(prec=100)  # seat_price (≤ 30 digits) × seats (≤ 7 digits) is exact in it


def microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def paid_from(subscription: Subscription, at: datetime) -> datetime:
    """In-advance fees are due from ``at``, but never for trial time."""
    trial_end = subscription.trial_ends_at
    return max(at, trial_end) if trial_end is not None else at


def moment_text(at: datetime) -> str:
    at = at.astimezone(UTC)
    if (at.hour, at.minute, at.second, at.microsecond) == (0, 0, 0, 0):
        return at.date().isoformat()
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _span_text(covered: timedelta, period: timedelta) -> str:
    """``16/31 days`` when both are whole days, else exact seconds."""
    if not covered % _DAY and not period % _DAY:
        return f"{covered // _DAY}/{period // _DAY} days"

    def seconds(delta: timedelta) -> str:
        return plain(Decimal(microseconds(delta)).scaleb(-6))

    return f"{seconds(covered)}/{seconds(period)} seconds"


def seats_text(seats: int) -> str:
    return f"{seats:,} seat" + ("" if seats == 1 else "s")


@dataclass(frozen=True)
class _Fee:
    """An in-advance fee of a version for a whole period: ``quantity × unit_price``."""

    part: str  # "base_fee" or "seats"
    quantity: int
    unit_price: Decimal

    def label(self, version: PlanVersion) -> str:
        if self.part == "base_fee":
            return f"{version} base fee"
        return f"{seats_text(self.quantity)} on {version}"


def in_advance_fees(version: PlanVersion, seats: int) -> list[_Fee]:
    """What ``version`` charges in advance for a period with ``seats`` seats. In-arrears base
    fees are not here: they are charged (prorated) when the period closes."""
    fees = []
    if version.base_fee_timing == PlanVersion.Timing.IN_ADVANCE and version.base_fee > 0:
        fees.append(_Fee("base_fee", 1, version.base_fee))
    if version.seat_price and seats > 0:
        fees.append(_Fee("seats", seats, version.seat_price))
    return fees


def prorated_item(
    *,
    subscription: Subscription,
    version: PlanVersion,
    quantity: int,
    unit_price: Decimal,
    covered_start: datetime,
    credit: bool,
    description: str,
    source: str,
    computation: dict,
) -> ChargeItem | None:
    """A ``proration`` item for ``quantity × unit_price`` over ``[covered_start, period end)``
    of the current period: exact, stored at 12 places half-up, negative for a credit. Nothing
    when the covered time is empty or the amount is zero."""
    start, end = subscription.current_period_start, subscription.current_period_end
    if covered_start >= end:
        return None
    full = _WIDE.multiply(unit_price, Decimal(quantity))
    exact = prorate(
        full, covered_start=covered_start, covered_end=end, period_start=start, period_end=end
    )
    amount = round_half_up(exact, PRICE_PLACES)
    if amount.is_zero():
        return None
    if credit:
        amount, exact = -amount, -exact
    span = _span_text(end - covered_start, end - start)
    return ChargeItem.objects.create(
        customer_id=subscription.customer_id,
        subscription=subscription,
        kind=ChargeItem.Kind.PRORATION,
        description=f"{description}, prorated {span}"[:500],
        currency_id=version.currency_id,
        quantity=Decimal(quantity),
        unit_price=unit_price,
        amount=amount,
        period_start=covered_start,
        period_end=end,
        source=source,
        computation={
            **computation,
            "plan_version": str(version),
            "full_amount": format(full, "f"),
            "covered": {"start": covered_start.isoformat(), "end": end.isoformat()},
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "covered_microseconds": microseconds(end - covered_start),
            "period_microseconds": microseconds(end - start),
            "exact": format(exact, "f"),
            "rounding": f"half-up to {PRICE_PLACES} places",
        },
    )


def credit_unused(
    *, subscription: Subscription, at: datetime, reason: str, source: str
) -> list[ChargeItem]:
    """Credits for the in-advance fees of the subscription's version for ``[at, period end)``
    (trial time excepted: it was never charged)."""
    version = subscription.plan_version
    items = []
    for fee in in_advance_fees(version, subscription.seats):
        item = prorated_item(
            subscription=subscription,
            version=version,
            quantity=fee.quantity,
            unit_price=fee.unit_price,
            covered_start=paid_from(subscription, at),
            credit=True,
            description=f"Unused {fee.label(version)} {reason} {moment_text(at)}",
            source=f"{source}:{fee.part}:credit",
            computation={"rule": f"credit unused {fee.part}", "at": at.isoformat()},
        )
        if item is not None:
            items.append(item)
    return items
