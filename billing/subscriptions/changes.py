"""Changes of a live subscription: its seats and its plan (docs/subscriptions.md)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import Subscription
from billing.selectors.subscriptions import plan_version_latest
from billing.subscriptions.allowances import allowances_void, subscription_allowances_issue
from billing.subscriptions.checks import (
    MAX_SEATS,
    PERIOD_END,
    check_current,
    check_not_ended,
    check_when,
    subscription_lock,
)
from billing.subscriptions.errors import SubscriptionCanceled
from billing.subscriptions.proration import (
    credit_unused,
    in_advance_fees,
    moment_text,
    paid_from,
    prorated_item,
    seats_text,
)
from core.errors import ValidationFailed


def subscription_seats_change(
    *, subscription: Subscription, seats: int, at: datetime | None = None
) -> Subscription:
    """Set the number of seats at ``at`` (default now, inside the current period).

    - An increase takes effect now: a ``proration`` charge item for the added seats ×
      seat price × (time left in the period / period length), e.g. docs/charging.md example B: 5 → 7
      seats on 2026-01-16 of a January period of USD 20.00 seats is 2 × 20 × 16/31 =
      20.645161290323 (stored at 12 places; 20.65 on the invoice). Trial time is free, so only
      the part of the rest of the period after the trial is charged. A plan without a seat
      price charges nothing.
    - A decrease takes effect at period end (``next_seats``), with no credit; the seats of the
      current period do not change.
    - The current number of seats again cancels a scheduled decrease; otherwise it is a no-op.
    """
    if isinstance(seats, bool) or not isinstance(seats, int) or not 0 <= seats <= MAX_SEATS:
        raise ValidationFailed(
            "Invalid seats.", errors={"seats": [f"An integer from 0 to {MAX_SEATS}."]}
        )
    now = timezone.now()
    moment = at or now
    if timezone.is_naive(moment):
        raise ValidationFailed("Invalid time.", errors={"at": ["A time with an offset (UTC)."]})
    if moment > now:
        raise ValidationFailed("Invalid time.", errors={"at": ["Not in the future."]})
    with transaction.atomic():
        sub = subscription_lock(subscription)
        check_not_ended(sub)
        if moment < sub.current_period_start:
            raise ValidationFailed(
                "Invalid time.", errors={"at": ["Not before the current period starts."]}
            )
        old = sub.seats
        if seats == old:
            if sub.next_seats is not None:
                sub.next_seats = None
                sub.save(update_fields=["next_seats"])
            return sub
        if seats < old:
            sub.next_seats = seats
            sub.save(update_fields=["next_seats"])
            return sub
        check_current(sub, moment)
        version = sub.plan_version
        added = seats - old
        if version.seat_price:
            prorated_item(
                subscription=sub,
                version=version,
                quantity=added,
                unit_price=version.seat_price,
                covered_start=paid_from(sub, moment),
                credit=False,
                description=f"{seats_text(added)} added {moment_text(moment)}",
                source=f"seats:{sub.pk}:{moment.isoformat()}:{old}->{seats}",
                computation={"rule": "seats added", "old_seats": old, "new_seats": seats},
            )
        sub.seats = seats
        sub.next_seats = None
        sub.save(update_fields=["seats", "next_seats"])
    return sub


def subscription_plan_change(
    *, subscription: Subscription, plan_code: str, when: str = PERIOD_END
) -> Subscription:
    """Move the subscription to the latest version of ``plan_code``.

    - ``period_end`` (default): store it as ``next_plan_version``; the period close (a later
      issue) applies it. Asking for the current version then cancels a scheduled change.
    - ``now``: switch at once, in the same interval (a change of interval takes effect at period
      end). For the rest of the current period: a credit (negative ``proration`` item) for the
      unused part of the old version's in-advance base fee and seats, and a charge for the new
      version's in-advance base fee and seats; trial time is never charged nor credited.
      In-arrears base fees are not touched here: the period close prorates them between the
      versions. The old version's allowance grants of the period are voided (what remains of
      them) and the new version's allowances are issued prorated to the rest of the period
      (rounded down). A scheduled change is dropped.

    The new version must bill in the customer's currency when it has a base fee or seats.
    Changing to the version the subscription is on is a ``ValidationFailed``, and so is a
    change of a canceled subscription (``SubscriptionCanceled``) or an ended one
    (``SubscriptionEnded``).
    """
    when = check_when(when)
    if not isinstance(plan_code, str) or not plan_code:
        raise ValidationFailed("Invalid plan.", errors={"plan": ["A plan code."]})
    version = plan_version_latest(plan_code=plan_code)
    now = timezone.now()
    with transaction.atomic():
        sub = subscription_lock(subscription)
        check_not_ended(sub)
        if sub.status == Subscription.Status.CANCELED:
            raise SubscriptionCanceled(
                f"Subscription {sub.pk} ends at period end; subscribe anew after it ends."
            )
        old = sub.plan_version
        if version.pk == old.pk:
            if when == PERIOD_END and sub.next_plan_version_id is not None:
                sub.next_plan_version = None
                sub.save(update_fields=["next_plan_version"])
                return sub
            raise ValidationFailed(
                f"The subscription is already on {old}.",
                errors={"plan": [f"Already on {old}."]},
            )
        if version.currency_id != sub.customer.currency_id and (
            version.base_fee or version.seat_price
        ):
            raise ValidationFailed(
                "Currency mismatch.",
                errors={
                    "plan": [
                        f"The plan bills in {version.currency_id}, "
                        f"the customer in {sub.customer.currency_id}."
                    ]
                },
            )
        if when == PERIOD_END:
            sub.next_plan_version = version
            sub.save(update_fields=["next_plan_version"])
            return sub
        if version.interval != old.interval:
            raise ValidationFailed(
                "A change of billing interval takes effect at period end.",
                errors={
                    "when": [
                        f"{version} bills per {version.interval}, the subscription per "
                        f"{old.interval}: change at period_end."
                    ]
                },
            )
        check_current(sub, now)
        source = f"plan:{sub.pk}:{now.isoformat()}:{old.pk}->{version.pk}"
        credit_unused(subscription=sub, at=now, reason="after plan change on", source=source)
        for fee in in_advance_fees(version, sub.seats):
            prorated_item(
                subscription=sub,
                version=version,
                quantity=fee.quantity,
                unit_price=fee.unit_price,
                covered_start=paid_from(sub, now),
                credit=False,
                description=f"{fee.label(version)} from plan change on {moment_text(now)}",
                source=f"{source}:{fee.part}:charge",
                computation={"rule": f"charge {fee.part}", "at": now.isoformat()},
            )
        allowances_void(sub, at=now, reason=f"plan change of subscription {sub.pk} to {version}")
        sub.plan_version = version
        sub.next_plan_version = None
        sub.save(update_fields=["plan_version", "next_plan_version"])
        subscription_allowances_issue(subscription=sub, prorate_from=now)
    return sub
