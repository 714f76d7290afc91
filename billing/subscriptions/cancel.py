"""Cancelling a subscription, at period end or now (docs/subscriptions.md)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from billing.invoicing import subscription_final_invoice
from billing.models import Subscription
from billing.subscriptions.allowances import allowances_void
from billing.subscriptions.checks import (
    PERIOD_END,
    check_current,
    check_not_ended,
    check_when,
    subscription_lock,
)
from billing.subscriptions.proration import credit_unused


def subscription_cancel(*, subscription: Subscription, when: str = PERIOD_END) -> Subscription:
    """Cancel the subscription.

    - ``period_end`` (default): status ``canceled``, ``cancel_at_period_end``, ``canceled_at``
      now; it stays live (events, allowances) until the period close of a later issue ends it.
      A scheduled plan change is dropped. Cancelling a canceled subscription again is a no-op.
    - ``now``: status ``ended`` at once (``ended_at``; ``canceled_at`` unless it was set by an
      earlier period-end cancellation), with credits (negative ``proration`` items) for the
      unused time of the in-advance base fee and seats, and what remains of the period's
      allowance grants voided. The period is invoiced at once, as its close would have
      invoiced it (``subscription_final_invoice``): its in-arrears items and the credits, a
      net credit as a credit note against the period's invoice.

    An ended subscription raises ``SubscriptionEnded`` (409).
    """
    when = check_when(when)
    now = timezone.now()
    with transaction.atomic():
        sub = subscription_lock(subscription)
        check_not_ended(sub)
        if when == PERIOD_END:
            if sub.status == Subscription.Status.CANCELED:
                return sub
            sub.status = Subscription.Status.CANCELED
            sub.cancel_at_period_end = True
            sub.canceled_at = now
            sub.next_plan_version = None
            sub.save(
                update_fields=["status", "cancel_at_period_end", "canceled_at", "next_plan_version"]
            )
            return sub
        check_current(sub, now)
        credit_unused(
            subscription=sub,
            at=now,
            reason="after cancellation on",
            source=f"cancel:{sub.pk}:{now.isoformat()}",
        )
        allowances_void(sub, at=now, reason=f"subscription {sub.pk} canceled")
        sub.status = Subscription.Status.ENDED
        sub.ended_at = now
        sub.canceled_at = sub.canceled_at or now
        sub.cancel_at_period_end = False
        sub.next_plan_version = None
        sub.next_seats = None
        sub.save(
            update_fields=[
                "status",
                "ended_at",
                "canceled_at",
                "cancel_at_period_end",
                "next_plan_version",
                "next_seats",
            ]
        )
        subscription_final_invoice(subscription=sub, now=now)
    return sub
