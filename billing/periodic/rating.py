"""Rating (docs/billing-cycle.md): ``rating_run`` writes each periodically rated price's
standing for the open period into its usage counter with SET (not ADD), recomputed from the
period's events, so rating twice is rating once. Each subscription is rated on its own: one
that fails is recorded (``billing.periodic.failures``) and left for the next run, and the
others go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.invoicing import rated_price
from billing.metering import counters_lock
from billing.models import Alert, Subscription
from billing.periodic.close import LIVE, Shard, in_shard
from billing.periodic.failures import (
    RunFailure,
    run_failure_record,
    run_failures_open,
    run_failures_resolve,
)
from core.db import hot_cursor
from plans.models import Meter, Price


@dataclass
class RatingReport:
    counters: int = 0
    subscriptions: int = 0
    failures: list[RunFailure] = field(default_factory=list)


def rating_run(
    *, now: datetime | None = None, batch: int = 500, shard: Shard | None = None
) -> RatingReport:
    """Write the standing of every periodically rated price of every open period into its
    usage counter (SET, from the period's events): rating twice equals rating once. Each
    subscription is rated in its own transaction: one that fails rolls back alone, is
    recorded as an alert and in ``failures``, and is rated again by the next run."""
    now = now or timezone.now()
    report = RatingReport()
    periodic = Q(model=Price.Model.VOLUME) | ~Q(meter__aggregation__in=Meter.ADDITIVE)
    versions = set(Price.objects.filter(periodic).values_list("plan_version_id", flat=True))
    if not versions:
        return report
    alerted = run_failures_open(kind=Alert.Kind.RATING_FAILED)
    recovered: list[int] = []
    last = 0
    prices: dict[int, list[Price]] = {}
    while True:
        query = Subscription.objects.filter(
            status__in=LIVE, plan_version_id__in=versions, pk__gt=last
        )
        subs = list(in_shard(query, shard).select_related("customer").order_by("pk")[:batch])
        if not subs:
            run_failures_resolve(kind=Alert.Kind.RATING_FAILED, ids=recovered)
            return report
        for sub in subs:
            report.subscriptions += 1
            if sub.plan_version_id not in prices:  # versions are immutable: read once a run
                prices[sub.plan_version_id] = list(
                    Price.objects.filter(periodic, plan_version_id=sub.plan_version_id)
                    .select_related("meter")
                    .order_by("position", "pk")
                )
            try:
                with transaction.atomic():
                    rated = _rate(sub, prices[sub.plan_version_id], now)
            except Exception as exc:
                report.failures.append(
                    run_failure_record(
                        kind=Alert.Kind.RATING_FAILED, exc=exc, subscription_id=sub.pk
                    )
                )
                continue
            report.counters += rated
            if sub.pk in alerted:
                recovered.append(sub.pk)
        last = subs[-1].pk


def _rate(sub: Subscription, prices: list[Price], now: datetime) -> int:
    """Rate one subscription's periodic prices for its current period; returns how many."""
    start, end = sub.current_period_start, sub.current_period_end
    # first the counters' locks, as an event counting toward them takes them: the events
    # are read once the ones in flight have committed, and none adds in between
    counters_lock(((sub.pk, start, end, price.pk) for price in prices), now)
    for price in prices:
        quantity, included, billable, amount = rated_price(
            subscription=sub, price=price, start=start, end=end
        )
        _counter_set(sub, price, start, end, quantity, included, billable, amount, now)
    return len(prices)


def _counter_set(sub, price, start, end, quantity, included, billable, amount, now) -> None:
    with hot_cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO billing_usagecounter
                (subscription_id, period_start, period_end, price_id, quantity, included,
                 billable, amount, accrued, events, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, 0, %s)
            ON CONFLICT (subscription_id, period_start, price_id) DO UPDATE SET
                quantity = EXCLUDED.quantity, included = EXCLUDED.included,
                billable = EXCLUDED.billable, accrued = EXCLUDED.accrued,
                updated_at = EXCLUDED.updated_at
            """,
            [sub.pk, start, end, price.pk, quantity, included, billable, amount, now],
        )
