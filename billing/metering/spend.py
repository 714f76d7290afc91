"""Spend limits (docs/charging.md): spend is the value in the billing currency of a
window's usage charges — events and captures, whatever paid for them, custom assets valued
at their rate; base fees and seats do not count.

A customer with a limit has a spend counter per window. A hard limit is enforced by a
conditional UPDATE (``spent + v <= limit``), so concurrent events never pass it; thresholds
fire once per window each (a unique row per threshold and window)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from billing.models import Alert, Customer, SpendCounter, SpendLimit
from billing.selectors.spend_limits import (
    spend_in_window,
    spend_limit_for,
    value_in_currency,
    window_bounds,
)
from core.errors import AmountTooLarge, Declined, NotFound, ValidationFailed
from core.text import plain
from wallets.models import Hold
from wallets.services.amounts import MAX_AMOUNT, check_amount

ZERO = Decimal(0)
MAX_THRESHOLDS = 10


class SpendLimitExceeded(Declined):
    code = "spend_limit_exceeded"
    title = "Spend limit exceeded"


def spend_record(
    *,
    customer_id: int,
    currency: str,
    value: Decimal,
    period: tuple[datetime, datetime],
    now: datetime,
    event_id: str = "",
    enforce: bool = True,
    at: datetime | None = None,
    wallet_id: int | None = None,
) -> Decimal | None:
    """Add ``value`` to the customer's spend in the window of ``at`` (default now). With a
    hard limit and ``enforce``, raise ``SpendLimitExceeded`` instead of passing it (nothing
    recorded); what the live holds of ``wallet_id`` are expected to spend counts as spent
    (their captures cannot be declined). ``AmountTooLarge`` when the window's spend would
    reach 10^18. Returns the window's spend, or None without a limit."""
    limit = spend_limit_for(customer_id)
    if limit is None or value <= 0:
        return None
    start, end = window_bounds(limit.window, at=at or now, period=period)
    counter_id = _counter(customer_id, limit.window, start, end)
    hard = enforce and limit.mode == SpendLimit.Mode.HARD
    held = ZERO
    if hard and wallet_id is not None:
        held = holds_expected_spend(wallet_id=wallet_id, currency=currency, now=now)
    with connection.cursor() as cursor:
        if hard:
            cursor.execute(
                "UPDATE billing_spendcounter SET spent = spent + %s "
                "WHERE id = %s AND spent + %s <= %s RETURNING spent",
                [value, counter_id, value + held, limit.amount],
            )
        else:  # a hard limit keeps spend below 10^18 (a limit is); without, the check does
            cursor.execute(
                "UPDATE billing_spendcounter SET spent = spent + %s "
                "WHERE id = %s AND spent + %s < %s RETURNING spent",
                [value, counter_id, value, MAX_AMOUNT],
            )
        row = cursor.fetchone()
    if row is None and not hard:
        raise AmountTooLarge(
            f"The charge of {plain(value)} {currency} would take the window's spend to 10^18 "
            "or more: amounts stay below 10^18."
        )
    if row is None:
        spent = SpendCounter.objects.get(pk=counter_id).spent
        _alert_exceeded(customer_id, limit, start, spent, currency, event_id)
        raise SpendLimitExceeded(
            f"The charge of {plain(value)} {currency} would take spend from {plain(spent)} "
            f"above the limit of {plain(limit.amount)} {currency}.",
            extra={
                "limit": limit.amount,
                "spent": spent,
                "held": held,
                "currency": currency,
            },
        )
    spent = row[0]
    _thresholds(customer_id, limit, start, spent - value, spent, currency, event_id)
    if limit.mode == SpendLimit.Mode.SOFT and spent > limit.amount >= spent - value:
        _alert_exceeded(customer_id, limit, start, spent, currency, event_id)
    return spent


def holds_expected_spend(*, wallet_id: int, currency: str, now: datetime) -> Decimal:
    """What the wallet's live holds are expected to spend (their estimates), in
    ``currency``. A hard limit counts it as spent: a capture cannot be declined. Callers
    hold the wallet's account locks, which every hold takes too, so none is missed."""
    estimates = Hold.objects.filter(
        wallet_id=wallet_id, status=Hold.Status.PENDING, expires_at__gt=now
    ).values_list("metadata__estimate__amount", "metadata__estimate__asset")
    return sum(
        (
            value_in_currency(Decimal(amount), asset, currency)
            for amount, asset in estimates
            if amount is not None
        ),
        ZERO,
    )


def spend_release(
    *, customer_id: int, value: Decimal, period: tuple[datetime, datetime], at: datetime
) -> None:
    """Take back the spend of a reversed charge."""
    limit = spend_limit_for(customer_id)
    if limit is None or value <= 0:
        return
    start, _ = window_bounds(limit.window, at=at, period=period)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_spendcounter SET spent = GREATEST(spent - %s, 0) "
            'WHERE customer_id = %s AND "window" = %s AND window_start = %s',
            [value, customer_id, limit.window, start],
        )


def _counter(customer_id: int, window: str, start: datetime, end: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_spendcounter "
            '(customer_id, "window", window_start, window_end, spent) '
            'VALUES (%s, %s, %s, %s, 0) ON CONFLICT (customer_id, "window", window_start) '
            "DO NOTHING RETURNING id",
            [customer_id, window, start, end],
        )
        row = cursor.fetchone()
        if row is not None:
            # a new window: start from what was already spent in it (a limit set mid-window)
            spent = spend_in_window(customer_id=customer_id, start=start, end=end)
            if spent:
                cursor.execute(
                    "UPDATE billing_spendcounter SET spent = %s WHERE id = %s", [spent, row[0]]
                )
            return row[0]
        cursor.execute(
            'SELECT id FROM billing_spendcounter WHERE customer_id = %s AND "window" = %s '
            "AND window_start = %s",
            [customer_id, window, start],
        )
        return cursor.fetchone()[0]


def _thresholds(
    customer_id: int,
    limit: SpendLimit,
    start: datetime,
    before: Decimal,
    after: Decimal,
    currency: str,
    event_id: str,
) -> None:
    crossed = [t for t in limit.alert_thresholds if before < limit.amount * t / 100 <= after]
    if not crossed:
        return
    Alert.objects.bulk_create(
        [
            Alert(
                customer_id=customer_id,
                kind=Alert.Kind.THRESHOLD,
                threshold=t,
                window_start=start,
                limit_amount=limit.amount,
                spent=after,
                currency=currency,
                event_id=event_id,
            )
            for t in sorted(crossed)
        ],
        ignore_conflicts=True,
    )


def _alert_exceeded(
    customer_id: int,
    limit: SpendLimit,
    start: datetime,
    spent: Decimal,
    currency: str,
    event_id: str,
) -> None:
    if Alert.objects.filter(
        customer_id=customer_id, kind=Alert.Kind.EXCEEDED, window_start=start
    ).exists():
        return
    Alert.objects.create(
        customer_id=customer_id,
        kind=Alert.Kind.EXCEEDED,
        window_start=start,
        limit_amount=limit.amount,
        spent=spent,
        currency=currency,
        event_id=event_id,
    )


def spend_limit_set(
    *,
    customer: Customer,
    amount: Any,
    window: str = SpendLimit.Window.PERIOD,
    mode: str = SpendLimit.Mode.HARD,
    alert_thresholds: list[int] | None = None,
) -> SpendLimit:
    """Create or replace the customer's spend limit. Its window's spend is recomputed from
    the events (so a limit set mid-window counts what was already spent)."""
    errors: dict[str, list[str]] = {}
    try:
        value = check_amount(amount, max_places=customer.currency.decimals)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        value = None
    if window not in SpendLimit.Window.values:
        errors["window"] = [f"One of {', '.join(SpendLimit.Window.values)}."]
    if mode not in SpendLimit.Mode.values:
        errors["mode"] = [f"One of {', '.join(SpendLimit.Mode.values)}."]
    thresholds = alert_thresholds if alert_thresholds is not None else []
    if (
        not isinstance(thresholds, list)
        or len(thresholds) > MAX_THRESHOLDS
        or not all(
            isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= 100 for t in thresholds
        )
    ):
        errors["alert_thresholds"] = [f"At most {MAX_THRESHOLDS} integers from 1 to 100."]
    if errors:
        raise ValidationFailed("Invalid spend limit.", errors=errors)
    with transaction.atomic():
        limit, _ = SpendLimit.objects.update_or_create(
            customer=customer,
            defaults={
                "amount": value,
                "window": window,
                "mode": mode,
                "alert_thresholds": sorted(set(thresholds)),
            },
        )
        # counters of other windows no longer apply; the current one is rebuilt on next use
        SpendCounter.objects.filter(customer=customer).delete()
    return limit


def spend_limit_delete(*, customer: Customer) -> None:
    with transaction.atomic():
        deleted, _ = SpendLimit.objects.filter(customer=customer).delete()
        SpendCounter.objects.filter(customer=customer).delete()
    if not deleted:
        raise NotFound(f"{customer.external_id} has no spend limit.")
