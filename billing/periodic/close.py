"""Period close (docs/billing-cycle.md).

**Invoices and boundaries.** A subscription is invoiced at each period boundary B: the
invoice carries the in-arrears items of the period that ends at B (arrears base fee,
postpaid usage per price, periodically rated prices, prorations) and the in-advance items of
the period that starts at B (base fee, seats). Its ``period`` is the period starting at B
(``[B, next end)``; for a subscription that ends at B, ``[B, B]``). The first invoice is made
when the subscription is created and carries the first period's in-advance items. The
database allows one subscription invoice per subscription and period start.

**Period close** (``subscription_period_close``) runs in one transaction under the lock of
the subscription row: final rating of the closing period, the invoice, scheduled plan and
seat changes, cancellation at period end, the next period, and its allowance grants (the
unused allowance of the closing period expires through the grant-expiry job). If anything
fails nothing is written; run again, it closes exactly once; run concurrently, the second
waits for the first and finds nothing to do. ``subscriptions_close_due`` isolates each
subscription: one that fails is recorded (``billing.periodic.failures``) and left for the
next run, and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from django.db import connection, transaction
from django.db.models.functions import Mod
from django.utils import timezone

from billing.invoicing import (
    advance_lines,
    arrears_lines,
    charge_item_lines,
    plan_cache,
    plan_version,
    subscription_close_invoice,
    trialing_at,
)
from billing.models import Alert, ChargeItem, Invoice, Subscription
from billing.periodic.failures import (
    RunFailure,
    run_failure_record,
    run_failures_open,
    run_failures_resolve,
)
from billing.selectors.subscriptions import subscription_with_customer
from billing.subscriptions import subscription_allowances_issue
from core.db import columns, hot_cursor, rows_as
from plans.periods import period_containing

logger = logging.getLogger(__name__)

LIVE = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.CANCELED)

# A close's statements are fixed, run through prepared statements (``hot_cursor``): the
# ORM built each one's SQL again for every close, ~60% of a close's Python, and PostgreSQL
# parsed and planned them again. The instances are the ones the ORM would make.
CHARGE_ITEMS_SQL = (
    f"SELECT {columns(ChargeItem)} FROM billing_chargeitem "  # noqa: S608 - column names
    "WHERE subscription_id = %s AND invoice_id IS NULL AND created_at < %s "
    "ORDER BY created_at, id"
)
CLOSE_FIELDS = (
    "status",
    "ended_at",
    "plan_version",
    "seats",
    "current_period_start",
    "current_period_end",
    "billing_anchor",
    "next_plan_version",
    "next_seats",
)
_CLOSE_COLUMNS = [Subscription._meta.get_field(name) for name in CLOSE_FIELDS]
CLOSE_UPDATE_SQL = (
    "UPDATE billing_subscription SET "  # noqa: S608 - column names only
    + ", ".join(f'"{f.column}" = %s' for f in _CLOSE_COLUMNS)
    + " WHERE id = %s"
)


def _locked_for_close(subscription_id: int) -> Subscription | None:
    """The subscription, locked (``select_for_update(of=("self",))``), with its customer."""
    return subscription_with_customer(subscription_id=subscription_id, lock=True)


def _save_closed(sub: Subscription) -> None:
    """``sub.save(update_fields=CLOSE_FIELDS)`` as one prepared statement."""
    values = [f.get_db_prep_save(getattr(sub, f.attname), connection) for f in _CLOSE_COLUMNS]
    with hot_cursor() as cursor:
        cursor.execute(CLOSE_UPDATE_SQL, [*values, sub.pk])


def subscription_period_close(
    *, subscription_id: int, now: datetime | None = None
) -> Invoice | None:
    """Close the subscription's current period if it has ended by ``now``; returns the
    invoice made, or None when there was nothing to close."""
    now = now or timezone.now()
    with transaction.atomic():
        sub = _locked_for_close(subscription_id)
        if sub is None or sub.status not in LIVE or sub.current_period_end > now:
            return None
        sub.plan_version = plan_version(sub.plan_version_id)
        if sub.next_plan_version_id is not None:
            sub.next_plan_version = plan_version(sub.next_plan_version_id)
        start, boundary = sub.current_period_start, sub.current_period_end
        version = sub.plan_version
        ending = sub.cancel_at_period_end or sub.status == Subscription.Status.CANCELED
        lines = arrears_lines(subscription=sub, version=version, start=start, end=boundary)
        items = rows_as(ChargeItem, CHARGE_ITEMS_SQL, [sub.pk, now], binary=True)
        lines += charge_item_lines(items)
        next_version = sub.next_plan_version or version
        next_seats = sub.next_seats if sub.next_seats is not None else sub.seats
        if ending:
            next_end = boundary
        else:
            anchor = sub.anchor
            if next_version.interval != version.interval:
                anchor = boundary
                sub.billing_anchor = boundary
            next_end = period_containing(anchor, next_version.interval, boundary)[1]
            if not trialing_at(sub, boundary):
                lines += advance_lines(
                    version=next_version, seats=next_seats, start=boundary, end=next_end
                )
        invoice = subscription_close_invoice(
            subscription=sub,
            version=version,
            lines=lines,
            items=items,
            start=start,
            boundary=boundary,
            next_end=next_end,
            now=now,
        )
        if ending:
            sub.status = Subscription.Status.ENDED
            sub.ended_at = boundary
        else:
            sub.plan_version = next_version
            sub.seats = next_seats
            sub.current_period_start = boundary
            sub.current_period_end = next_end
            if sub.status == Subscription.Status.TRIALING and not trialing_at(sub, boundary):
                sub.status = Subscription.Status.ACTIVE
        sub.next_plan_version = None
        sub.next_seats = None
        _save_closed(sub)
        if not ending:
            subscription_allowances_issue(subscription=sub)
    logger.info(
        "closed subscription %s at %s: invoice %s", sub.pk, boundary.isoformat(), invoice.pk
    )
    return invoice


Shard = tuple[int, int]  # (k, n): the subscriptions whose id % n == k


def in_shard(query, shard: Shard | None):
    """``query`` of subscriptions narrowed to one shard: shards split a run across processes
    or workers without any two touching the same subscription."""
    if shard is None:
        return query
    k, n = shard
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"invalid shard {k} of {n}")
    return query.annotate(_shard=Mod("pk", n)).filter(_shard=k)


def _due_ids(now: datetime, batch: int, shard: Shard | None = None) -> Iterator[list[int]]:
    last = 0
    while True:
        query = Subscription.objects.filter(
            status__in=LIVE, current_period_end__lte=now, pk__gt=last
        )
        ids = list(in_shard(query, shard).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return
        yield ids
        last = ids[-1]


def subscriptions_close_due(
    *,
    now: datetime | None = None,
    batch: int = 500,
    shard: Shard | None = None,
    failures: list[RunFailure] | None = None,
) -> int:
    """Close every period that has ended by ``now`` — several per subscription when the run
    catches up. Each close is its own transaction: one that fails rolls back alone, is
    logged and recorded as an alert (``run_failure_record``; appended to ``failures`` when
    given), and is left due for the next run, while the others close. Returns how many
    periods were closed. ``shard`` limits the run to one shard of the subscriptions."""
    now = now or timezone.now()
    closed = 0
    failed: set[int] = set()
    alerted = run_failures_open(kind=Alert.Kind.CLOSE_FAILED)
    recovered: set[int] = set()
    with plan_cache():
        while True:
            round_closed = 0
            for ids in _due_ids(now, batch, shard):
                for subscription_id in ids:
                    if subscription_id in failed:
                        continue
                    try:
                        invoice = subscription_period_close(
                            subscription_id=subscription_id, now=now
                        )
                    except Exception as exc:
                        failed.add(subscription_id)
                        failure = run_failure_record(
                            kind=Alert.Kind.CLOSE_FAILED,
                            exc=exc,
                            subscription_id=subscription_id,
                        )
                        if failures is not None:
                            failures.append(failure)
                        continue
                    if invoice:
                        round_closed += 1
                        if subscription_id in alerted:
                            recovered.add(subscription_id)
            closed += round_closed
            if not round_closed:
                run_failures_resolve(kind=Alert.Kind.CLOSE_FAILED, ids=recovered)
                return closed
