"""Subscriptions: a customer on a plan version, with its current period and the allowance
grants of that period, and their lifecycle: seat changes, plan changes, cancellation and the
end of a trial (docs/subscriptions.md; docs/charging.md example B).

Every lifecycle service runs in one transaction that first locks the subscription row
(``SELECT … FOR UPDATE``), so concurrent changes of one subscription serialize. Money that a
change makes due now (a prorated seat increase, the difference of a plan change, the credit of
an immediate cancellation) is recorded as ``ChargeItem`` rows of kind ``proration``, exact at 12
decimal places; the period close of a later issue moves them onto the invoice, which rounds each
line once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from fractions import Fraction

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import ChargeItem, Customer, Subscription
from billing.services.subscription_start import (
    subscription_start_errors,
)
from core.errors import BillfoldError, NotFound, ValidationFailed
from plans.models import Plan, PlanVersion
from plans.periods import add_intervals, period_containing
from plans.pricing import PRICE_PLACES, prorate, round_half_up
from wallets.models import Grant
from wallets.services import grant_create, grant_void

MAX_SEATS = 1_000_000
WHEN = ("period_end", "now")
PERIOD_END, NOW = WHEN

_DAY = timedelta(days=1)
_WIDE = Context(prec=100)  # seat_price (≤ 30 digits) × seats (≤ 7 digits) is exact in it
_MAX_ID = 2**63 - 1


class SubscriptionExists(BillfoldError):
    code = "subscription_exists"
    status = 409
    title = "The customer already has a live subscription"


class SubscriptionEnded(BillfoldError):
    code = "subscription_ended"
    status = 409
    title = "The subscription has ended"


class SubscriptionCanceled(BillfoldError):
    code = "subscription_canceled"
    status = 409
    title = "The subscription is canceled and ends at period end"


class PeriodNotCurrent(BillfoldError):
    code = "period_not_current"
    status = 409
    title = "The subscription's current period is over and not closed yet"


def plan_version_latest(*, plan_code: str) -> PlanVersion:
    version = (
        PlanVersion.objects.filter(plan__code=plan_code, plan__archived_at__isnull=True)
        .order_by("-version")
        .first()
    )
    if version is None:
        raise NotFound(f"Unknown plan '{plan_code}'.", errors={"plan": ["Unknown plan."]})
    return version


def allowance_source(subscription: Subscription, price_id: int, period_start: datetime) -> str:
    return f"allowance:{subscription.pk}:{price_id}:{period_start.isoformat()}"


def allowance_prefix(subscription: Subscription) -> str:
    """What the source of every allowance grant of ``subscription`` starts with."""
    return f"allowance:{subscription.pk}:"


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _floor(value: Fraction, places: int) -> Decimal:
    """``value`` rounded down to ``places`` decimal places (allowances never round up)."""
    return Decimal(math.floor(value * 10**places)).scaleb(-places)


def subscription_allowances_issue(
    *, subscription: Subscription, prorate_from: datetime | None = None
) -> list[Grant]:
    """Put the current period's allowance of each real-time price into the wallet: a grant
    of the meter's unit, scoped to the meter, expiring at period end. Idempotent (each grant
    has a unique source); nothing is issued for a period that is already over.

    With ``prorate_from`` (a moment inside the current period, e.g. a plan change), each
    allowance is prorated to the rest of the period: ``included × (period end − prorate_from)
    / period length``, rounded down to the unit's decimal places; its source carries the moment,
    so a later change in the same period issues its own grants."""
    now = timezone.now()
    if subscription.current_period_end <= now:
        return []
    start, end = subscription.current_period_start, subscription.current_period_end
    fraction = Fraction(1)
    if prorate_from is not None:
        if not start <= prorate_from < end:
            raise ValueError("prorate_from must lie inside the current period")
        fraction = Fraction(_microseconds(end - prorate_from), _microseconds(end - start))
    grants = []
    prices = subscription.plan_version.prices.select_related("meter", "meter__unit")
    for price in prices:
        if price.included <= 0 or not price.meter.is_additive:
            continue
        source = allowance_source(subscription, price.pk, subscription.current_period_start)
        amount = price.included
        if prorate_from is not None:
            source += f":from:{prorate_from.isoformat()}"
            amount = _floor(Fraction(price.included) * fraction, price.meter.unit.decimals)
            if amount <= 0:
                continue
        existing = Grant.objects.filter(source=source).first()
        if existing is not None:
            grants.append(existing)
            continue
        grants.append(
            grant_create(
                wallet_id=subscription.customer.wallet_id,
                asset=price.meter.unit_id,
                amount=amount,
                purpose=Grant.Purpose.ALLOWANCE,
                priority=0,
                expires_at=subscription.current_period_end,
                meters=[price.meter.code],
                reference=f"{subscription.plan_version} allowance",
                source=source,
                idempotency_key=source,
            )
        )
    return grants


def subscription_create(
    *,
    customer: Customer,
    plan: str | PlanVersion,
    start: datetime | None = None,
    seats: int = 1,
    overage: str = Subscription.Overage.WALLET,
    backdate: bool = False,
    invoice_missed_periods: bool = False,
) -> Subscription:
    """Subscribe ``customer`` to the latest version of ``plan`` (or the version given) from
    ``start`` (default now; at most a year ahead).

    A start in the past: up to ``SUBSCRIPTION_MAX_BACKDATE_PERIODS`` periods of the plan
    back (default one), the subscription begins at ``start`` and the periodic work invoices
    the periods that have ended since. Earlier needs ``backdate`` (a subscription carried
    over from elsewhere, at most ``MAX_BACKDATE_YEARS`` back): its periods are still counted
    from ``start`` (its billing anchor), but billing begins with the period that contains
    now — ``started_at`` and the first invoice are that period's, and the periods before it
    are not invoiced and take no events. With ``invoice_missed_periods`` as well, it begins at
    ``start`` and every period since is invoiced (at most ``MAX_MISSED_PERIODS``)."""
    version = plan if isinstance(plan, PlanVersion) else plan_version_latest(plan_code=plan)
    now = timezone.now()
    start = start or now
    errors = subscription_start_errors(
        start=start,
        now=now,
        interval=version.interval,
        backdate=backdate,
        invoice_missed_periods=invoice_missed_periods,
    )
    if isinstance(seats, bool) or not isinstance(seats, int) or not 0 <= seats <= MAX_SEATS:
        errors["seats"] = [f"An integer from 0 to {MAX_SEATS}."]
    if overage not in Subscription.Overage.values:
        errors["overage"] = [f"One of {', '.join(Subscription.Overage.values)}."]
    if version.currency_id != customer.currency_id and (version.base_fee or version.seat_price):
        errors["plan"] = [
            f"The plan bills in {version.currency_id}, the customer in {customer.currency_id}."
        ]
    if errors:
        raise ValidationFailed("Invalid subscription.", errors=errors)
    trial_end = start + timedelta(days=version.trial_days) if version.trial_days else None
    status = Subscription.Status.TRIALING if trial_end else Subscription.Status.ACTIVE
    period = start, add_intervals(start, version.interval, 1)
    anchor = None
    if backdate and not invoice_missed_periods:
        period = period_containing(start, version.interval, now)
        anchor = start
        if trial_end is not None and trial_end <= period[0]:
            trial_end = None  # over before billing here begins
        if trial_end is None or trial_end <= now:
            status = Subscription.Status.ACTIVE
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                customer=customer,
                plan_version=version,
                status=status,
                seats=seats,
                overage=overage,
                started_at=period[0],
                billing_anchor=anchor,
                current_period_start=period[0],
                current_period_end=period[1],
                trial_ends_at=trial_end,
            )
            subscription_allowances_issue(subscription=subscription)
            from billing.services.billing_run import subscription_first_invoice

            subscription_first_invoice(subscription=subscription)
    except IntegrityError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "23505":
            raise SubscriptionExists(
                f"{customer.external_id} already has a live subscription; change its plan instead."
            ) from exc
        raise
    return subscription


def plan_get(*, code: str) -> Plan:
    plan = Plan.objects.filter(code=code).first()
    if plan is None:
        raise NotFound(f"Unknown plan '{code}'.")
    return plan


# --- reads --------------------------------------------------------------------------------------


def subscription_get(*, subscription_id: object) -> Subscription:
    """The subscription with this id (an int or a string of digits), with its customer and
    plan versions; ``NotFound`` for anything else, never a database error."""
    text = str(subscription_id) if isinstance(subscription_id, int | str) else ""
    if isinstance(subscription_id, bool) or not text.isascii() or not text.isdigit():
        raise NotFound(f"Unknown subscription '{subscription_id}'.")
    number = int(text)
    subscription = (
        Subscription.objects.select_related(
            "customer", "plan_version__plan", "next_plan_version__plan"
        )
        .filter(pk=number)
        .first()
        if 0 < number <= _MAX_ID
        else None
    )
    if subscription is None:
        raise NotFound(f"Unknown subscription '{subscription_id}'.")
    return subscription


# --- lifecycle helpers --------------------------------------------------------------------------


def _lock(subscription: Subscription) -> Subscription:
    """The subscription's row, locked until the end of the transaction, read afresh."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer", "plan_version__plan")
        .get(pk=subscription.pk)
    )


def _check_not_ended(subscription: Subscription) -> None:
    if subscription.status == Subscription.Status.ENDED:
        raise SubscriptionEnded(f"Subscription {subscription.pk} has ended.")


def _check_when(when: object) -> str:
    if not isinstance(when, str) or when not in WHEN:
        raise ValidationFailed(
            "Invalid when.", errors={"when": ["One of " + ", ".join(WHEN) + "."]}
        )
    return when


def _check_current(subscription: Subscription, at: datetime) -> None:
    """Immediate changes need ``at`` inside the current period: a period whose end has passed
    is closed (and the next one opened) by the periodic work first."""
    if at >= subscription.current_period_end:
        raise PeriodNotCurrent(
            f"The current period of subscription {subscription.pk} ended at "
            f"{subscription.current_period_end.isoformat()} and has not been closed yet; "
            "retry once the periodic work has closed it."
        )


def _paid_from(subscription: Subscription, at: datetime) -> datetime:
    """In-advance fees are due from ``at``, but never for trial time."""
    trial_end = subscription.trial_ends_at
    return max(at, trial_end) if trial_end is not None else at


def _moment_text(at: datetime) -> str:
    at = at.astimezone(UTC)
    if (at.hour, at.minute, at.second, at.microsecond) == (0, 0, 0, 0):
        return at.date().isoformat()
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _span_text(covered: timedelta, period: timedelta) -> str:
    """``16/31 days`` when both are whole days, else exact seconds."""
    if not covered % _DAY and not period % _DAY:
        return f"{covered // _DAY}/{period // _DAY} days"

    def seconds(delta: timedelta) -> str:
        value = Decimal(_microseconds(delta)).scaleb(-6).normalize()
        return format(value, "f")

    return f"{seconds(covered)}/{seconds(period)} seconds"


def _seats_text(seats: int) -> str:
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
        return f"{_seats_text(self.quantity)} on {version}"


def _in_advance_fees(version: PlanVersion, seats: int) -> list[_Fee]:
    """What ``version`` charges in advance for a period with ``seats`` seats. In-arrears base
    fees are not here: they are charged (prorated) when the period closes."""
    fees = []
    if version.base_fee_timing == PlanVersion.Timing.IN_ADVANCE and version.base_fee > 0:
        fees.append(_Fee("base_fee", 1, version.base_fee))
    if version.seat_price and seats > 0:
        fees.append(_Fee("seats", seats, version.seat_price))
    return fees


def _prorated_item(
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
            "covered_microseconds": _microseconds(end - covered_start),
            "period_microseconds": _microseconds(end - start),
            "exact": format(exact, "f"),
            "rounding": f"half-up to {PRICE_PLACES} places",
        },
    )


def _allowances_void(subscription: Subscription, *, at: datetime, reason: str) -> list[Grant]:
    """Void what remains of the subscription's allowance grants of the current period (active,
    expiring after ``at``), in id order. A grant with open holds raises ``GrantHeld``."""
    grant_ids = (
        Grant.objects.filter(
            source__startswith=allowance_prefix(subscription),
            status=Grant.Status.ACTIVE,
            expires_at__gt=at,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return [grant_void(grant_id=grant_id, reason=reason) for grant_id in list(grant_ids)]


def _credit_unused(
    *, subscription: Subscription, at: datetime, reason: str, source: str
) -> list[ChargeItem]:
    """Credits for the in-advance fees of the subscription's version for ``[at, period end)``
    (trial time excepted: it was never charged)."""
    version = subscription.plan_version
    items = []
    for fee in _in_advance_fees(version, subscription.seats):
        item = _prorated_item(
            subscription=subscription,
            version=version,
            quantity=fee.quantity,
            unit_price=fee.unit_price,
            covered_start=_paid_from(subscription, at),
            credit=True,
            description=f"Unused {fee.label(version)} {reason} {_moment_text(at)}",
            source=f"{source}:{fee.part}:credit",
            computation={"rule": f"credit unused {fee.part}", "at": at.isoformat()},
        )
        if item is not None:
            items.append(item)
    return items


# --- lifecycle ----------------------------------------------------------------------------------


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
        sub = _lock(subscription)
        _check_not_ended(sub)
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
        _check_current(sub, moment)
        version = sub.plan_version
        added = seats - old
        if version.seat_price:
            _prorated_item(
                subscription=sub,
                version=version,
                quantity=added,
                unit_price=version.seat_price,
                covered_start=_paid_from(sub, moment),
                credit=False,
                description=f"{_seats_text(added)} added {_moment_text(moment)}",
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
    when = _check_when(when)
    if not isinstance(plan_code, str) or not plan_code:
        raise ValidationFailed("Invalid plan.", errors={"plan": ["A plan code."]})
    version = plan_version_latest(plan_code=plan_code)
    now = timezone.now()
    with transaction.atomic():
        sub = _lock(subscription)
        _check_not_ended(sub)
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
        _check_current(sub, now)
        source = f"plan:{sub.pk}:{now.isoformat()}:{old.pk}->{version.pk}"
        _credit_unused(subscription=sub, at=now, reason="after plan change on", source=source)
        for fee in _in_advance_fees(version, sub.seats):
            _prorated_item(
                subscription=sub,
                version=version,
                quantity=fee.quantity,
                unit_price=fee.unit_price,
                covered_start=_paid_from(sub, now),
                credit=False,
                description=f"{fee.label(version)} from plan change on {_moment_text(now)}",
                source=f"{source}:{fee.part}:charge",
                computation={"rule": f"charge {fee.part}", "at": now.isoformat()},
            )
        _allowances_void(sub, at=now, reason=f"plan change of subscription {sub.pk} to {version}")
        sub.plan_version = version
        sub.next_plan_version = None
        sub.save(update_fields=["plan_version", "next_plan_version"])
        subscription_allowances_issue(subscription=sub, prorate_from=now)
    return sub


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
    when = _check_when(when)
    now = timezone.now()
    with transaction.atomic():
        sub = _lock(subscription)
        _check_not_ended(sub)
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
        _check_current(sub, now)
        _credit_unused(
            subscription=sub,
            at=now,
            reason="after cancellation on",
            source=f"cancel:{sub.pk}:{now.isoformat()}",
        )
        _allowances_void(sub, at=now, reason=f"subscription {sub.pk} canceled")
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
        from billing.services.billing_run import subscription_final_invoice

        subscription_final_invoice(subscription=sub, now=now)
    return sub


def subscription_trial_end_due(*, now: datetime | None = None, batch: int = 1000) -> list[int]:
    """Move trialing subscriptions whose trial has ended (``trial_ends_at <= now``) to
    ``active``; returns their ids, sorted. Batches of rows locked with ``SKIP LOCKED`` and a
    conditional ``UPDATE … WHERE status = 'trialing'``: idempotent, and safe to run
    concurrently (a row another run holds is left to it)."""
    now = now or timezone.now()
    ended: list[int] = []
    while True:
        with transaction.atomic():
            ids = list(
                Subscription.objects.select_for_update(skip_locked=True)
                .filter(status=Subscription.Status.TRIALING, trial_ends_at__lte=now)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            Subscription.objects.filter(pk__in=ids, status=Subscription.Status.TRIALING).update(
                status=Subscription.Status.ACTIVE
            )
        ended.extend(ids)
        if len(ids) < batch:
            return sorted(ended)
