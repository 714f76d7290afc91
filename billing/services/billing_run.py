"""The periodic side of billing (docs/billing-cycle.md): rating, period close and the billing run.

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
waits for the first and finds nothing to do. ``subscriptions_close_due`` and ``rating_run``
isolate each subscription: one that fails is recorded (``billing.services.run_failures``)
and left for the next run, and the others go on.

**Rating** (``rating_run``) writes each periodically rated price's standing for the open
period into its usage counter with SET (not ADD), recomputed from the period's events, so
rating twice is rating once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Mod
from django.utils import timezone

from billing.metering import counters_lock
from billing.models import (
    Alert,
    ChargeItem,
    Customer,
    Invoice,
    InvoiceLine,
    Subscription,
    UsageCounter,
)
from billing.selectors.usage import aggregate_events
from billing.services.invoices import LineSpec, invoice_draft_create, line_amount, spec_line
from billing.services.net_credit import net_credit_settle
from billing.services.run_failures import (
    RunFailure,
    run_failure_record,
    run_failures_open,
    run_failures_resolve,
)
from billing.services.subscriptions import subscription_allowances_issue
from core.db import columns, hot_cursor, insert_all, instances, refresh_from_row, rows_as
from core.errors import AmountTooLarge
from plans.models import Meter, PlanVersion, Price
from plans.periods import period_containing
from plans.pricing import rated_periodically, tax_amount, total_amount
from plans.services import price_spec
from wallets.services.amounts import MAX_AMOUNT

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
LIVE = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.CANCELED)


def _plain(value: Decimal) -> str:
    return f"{value.normalize():,f}" if value else "0"


def _dates(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"


# --- what goes on an invoice ---------------------------------------------------------------------


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
                f"rates a {name} of {value.normalize():f} for {_dates(start, end)}: "
                "amounts and quantities stay below 10^18."
            )
    return quantity, included, billable, amount


# the prices (with meters) of plan versions, kept for the length of one run of
# ``subscriptions_close_due`` (thousands of closes share a few plan versions); None outside one
_RUN_PRICES: dict[frozenset[int], list[Price]] | None = None


# the plan versions (with their currency) of the same run: a close read each with a
# five-table join, whose planning alone (1.2 ms; the ORM's statements are not prepared)
# cost more than the rest of the lock's query. Published versions never change.
_RUN_VERSIONS: dict[int, PlanVersion] | None = None


@contextmanager
def plan_cache() -> Iterator[None]:
    """Inside it, each plan version and each set of versions' prices is read once: thousands
    of closes or finalizations share a few versions, and published versions never change.
    Nested, the outer one's cache serves."""
    global _RUN_PRICES, _RUN_VERSIONS
    if _RUN_PRICES is not None:
        yield
        return
    _RUN_PRICES, _RUN_VERSIONS = {}, {}
    try:
        yield
    finally:
        _RUN_PRICES = _RUN_VERSIONS = None


def _version(version_id: int) -> PlanVersion:
    if _RUN_VERSIONS is not None and version_id in _RUN_VERSIONS:
        return _RUN_VERSIONS[version_id]
    version = PlanVersion.objects.select_related("currency").get(pk=version_id)
    if _RUN_VERSIONS is not None:
        _RUN_VERSIONS[version_id] = version
    return version


def _prices_of(version_ids: set[int]) -> list[Price]:
    key = frozenset(version_ids)
    if _RUN_PRICES is not None and key in _RUN_PRICES:
        return _RUN_PRICES[key]
    prices = list(
        Price.objects.filter(plan_version_id__in=key)
        .select_related("meter", "meter__unit")
        .order_by("position", "id")
    )
    if _RUN_PRICES is not None:
        _RUN_PRICES[key] = prices
    return prices


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
        lines.append(
            LineSpec(
                kind=InvoiceLine.Kind.BASE_FEE,
                description=f"{version.name} base fee, {_dates(start, end)}",
                amount_exact=version.base_fee,
                quantity=Decimal(1),
                unit_price=version.base_fee,
                period_start=start,
                period_end=end,
                computation={"timing": "in_arrears", "base_fee": format(version.base_fee, "f")},
            )
        )
    counters = {
        c.price_id: c
        for c in rows_as(UsageCounter, COUNTERS_SQL, [subscription.pk, start], binary=True)
    }
    prices = _prices_of({version.pk, *extra_versions, *_versions_used(counters)})
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
                        f"{label}: {_plain(billable)} {meter.unit_id}, {_dates(start, end)}"
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
                f"{label}: {_plain(counter.billable)} {meter.unit_id} billable, "
                f"{_dates(start, end)}"
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
                description=f"{label}: paid from wallet, {_dates(start, end)}",
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
        lines.append(
            LineSpec(
                kind=InvoiceLine.Kind.BASE_FEE,
                description=f"{version.name} base fee, {_dates(start, end)}",
                amount_exact=version.base_fee,
                quantity=Decimal(1),
                unit_price=version.base_fee,
                period_start=start,
                period_end=end,
                computation={"timing": "in_advance", "base_fee": format(version.base_fee, "f")},
            )
        )
    if version.seat_price and seats:
        amount = version.seat_price * seats
        lines.append(
            LineSpec(
                kind=InvoiceLine.Kind.SEATS,
                description=f"{seats} seats × {_plain(version.seat_price)}, {_dates(start, end)}",
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


def _trialing_at(subscription: Subscription, moment: datetime) -> bool:
    return subscription.trial_ends_at is not None and subscription.trial_ends_at > moment


# --- the first invoice and period close -----------------------------------------------------------


def subscription_first_invoice(*, subscription: Subscription, now: datetime | None = None):
    """The invoice issued when a subscription starts: its first period's in-advance items
    (none during a trial). Nothing is written when there is nothing to invoice."""
    start, end = subscription.current_period_start, subscription.current_period_end
    if _trialing_at(subscription, start):
        return None
    lines = advance_lines(
        version=subscription.plan_version, seats=subscription.seats, start=start, end=end
    )
    if not lines:
        return None
    invoice, _ = invoice_draft_create(
        customer=subscription.customer,
        currency=subscription.plan_version.currency_id,
        kind=Invoice.Kind.SUBSCRIPTION,
        lines=lines,
        subscription=subscription,
        period_start=start,
        period_end=end,
        now=now,
    )
    return invoice


def subscription_final_invoice(*, subscription: Subscription, now: datetime | None = None):
    """The invoice of a subscription ended "now" (``subscription_cancel``), issued at once:
    what its period's close would have billed — the period's in-arrears items and its open
    charge items (the cancellation's credits), no next period — for the period ``[B, B]``,
    B the end of the ended period, as an ending close writes it (so a late reversal finds
    it); a net credit is settled as a close's. Call inside the cancellation's transaction."""
    now = now or timezone.now()
    version = _version(subscription.plan_version_id)
    start, boundary = subscription.current_period_start, subscription.current_period_end
    lines = arrears_lines(subscription=subscription, version=version, start=start, end=boundary)
    items = list(
        ChargeItem.objects.filter(subscription=subscription, invoice__isnull=True).order_by(
            "created_at", "id"
        )
    )
    lines += charge_item_lines(items)
    return _close_invoice(subscription, version, lines, items, start, boundary, boundary, now)


def _close_invoice(
    sub: Subscription,
    version: PlanVersion,
    lines: list[LineSpec],
    items: list[ChargeItem],
    start: datetime,
    boundary: datetime,
    next_end: datetime,
    now: datetime,
) -> Invoice:
    """The draft a close writes at ``boundary`` for the period ``[start, boundary)``, with
    its charge items: a net credit is settled first (``net_credit_settle``), so the draft
    never totals below zero."""
    decimals = version.currency.decimals
    lines = lines + net_credit_settle(
        subscription=sub,
        lines=lines,
        start=start,
        boundary=boundary,
        decimals=decimals,
        now=now,
    )
    invoice, _ = invoice_draft_create(
        customer=sub.customer,
        currency=version.currency_id,
        kind=Invoice.Kind.SUBSCRIPTION,
        lines=lines,
        subscription=sub,
        period_start=boundary,
        period_end=next_end,
        charge_items=items,
        now=now,
        decimals=decimals,
    )
    return invoice


# A close's statements are fixed, run through prepared statements (``hot_cursor``): the
# ORM built each one's SQL again for every close, ~60% of a close's Python, and PostgreSQL
# parsed and planned them again. The instances are the ones the ORM would make.
COUNTERS_SQL = (
    f"SELECT {columns(UsageCounter)} FROM billing_usagecounter "  # noqa: S608 - column names
    "WHERE subscription_id = %s AND period_start = %s"
)
CLOSE_LOCK_SQL = (
    f"SELECT {columns(Subscription, 's')}, {columns(Customer, 'c')} "  # noqa: S608 - columns
    "FROM billing_subscription s JOIN billing_customer c ON c.id = s.customer_id "
    "WHERE s.id = %s FOR UPDATE OF s"
)
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


def _with_customer(sql: str, subscription_id: int) -> Subscription | None:
    """The subscription with its customer (``select_related("customer")``), read by ``sql``
    (``CLOSE_LOCK_SQL``, ``SUBSCRIPTION_SQL``)."""
    with hot_cursor(binary=True) as cursor:
        cursor.execute(sql, [subscription_id])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(Subscription._meta.concrete_fields)
    (sub,) = instances(Subscription, [row[:n]])
    (sub.customer,) = instances(Customer, [row[n:]])
    return sub


def _locked_for_close(subscription_id: int) -> Subscription | None:
    """The subscription, locked (``select_for_update(of=("self",))``), with its customer."""
    return _with_customer(CLOSE_LOCK_SQL, subscription_id)


def _save_closed(sub: Subscription) -> None:
    """``sub.save(update_fields=CLOSE_FIELDS)`` as one prepared statement."""
    values = [f.get_db_prep_save(getattr(sub, f.attname), connection) for f in _CLOSE_COLUMNS]
    with hot_cursor() as cursor:
        cursor.execute(CLOSE_UPDATE_SQL, [*values, sub.pk])


def subscription_period_close(*, subscription_id: int, now: datetime | None = None):
    """Close the subscription's current period if it has ended by ``now``; returns the
    invoice made, or None when there was nothing to close."""
    now = now or timezone.now()
    with transaction.atomic():
        sub = _locked_for_close(subscription_id)
        if sub is None or sub.status not in LIVE or sub.current_period_end > now:
            return None
        sub.plan_version = _version(sub.plan_version_id)
        if sub.next_plan_version_id is not None:
            sub.next_plan_version = _version(sub.next_plan_version_id)
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
            if not _trialing_at(sub, boundary):
                lines += advance_lines(
                    version=next_version, seats=next_seats, start=boundary, end=next_end
                )
        invoice = _close_invoice(sub, version, lines, items, start, boundary, next_end, now)
        if ending:
            sub.status = Subscription.Status.ENDED
            sub.ended_at = boundary
        else:
            sub.plan_version = next_version
            sub.seats = next_seats
            sub.current_period_start = boundary
            sub.current_period_end = next_end
            if sub.status == Subscription.Status.TRIALING and not _trialing_at(sub, boundary):
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


# --- drafts stay current until they are finalized -------------------------------------------------


PREVIOUS_START_SQL = (
    "SELECT max(period_start) FROM billing_invoice "
    "WHERE subscription_id = %s AND kind = %s AND period_start < %s"
)
SUBSCRIPTION_SQL = CLOSE_LOCK_SQL.removesuffix(" FOR UPDATE OF s")
LINES_SQL = (
    f"SELECT {columns(InvoiceLine)} FROM billing_invoiceline "  # noqa: S608 - column names
    "WHERE invoice_id = %s ORDER BY position, id"
)
PRICE_VERSIONS_SQL = "SELECT DISTINCT plan_version_id FROM plans_price WHERE id = ANY(%s)"
LINES_DELETE_SQL = "DELETE FROM billing_invoiceline WHERE invoice_id = %s AND kind = ANY(%s)"
DECIMALS_SQL = "SELECT decimals FROM wallets_asset WHERE code = %s"
TOTALS_SQL = (
    "UPDATE billing_invoice SET subtotal = %s, tax = %s, total = %s "  # noqa: S608 - columns
    f"WHERE id = %s RETURNING {columns(Invoice)}"
)
# the lines a refresh rebuilds from the period's counters
USAGE_KINDS = [
    InvoiceLine.Kind.USAGE.value,
    InvoiceLine.Kind.OUTCOME.value,
    InvoiceLine.Kind.PAID_FROM_WALLET.value,
]


def _one(sql: str, params: list):
    with hot_cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def invoice_draft_refresh(*, invoice: Invoice) -> Invoice:
    """Recompute a draft subscription invoice's usage lines from the period's data (late
    events may have arrived since the close). Call with the invoice row locked; finalized
    invoices are returned unchanged. Fixed, prepared statements as the close's: a billing
    run finalizes every draft of the month through here."""
    if invoice.status != Invoice.Status.DRAFT or invoice.kind != Invoice.Kind.SUBSCRIPTION:
        return invoice
    if invoice.subscription_id is None:
        return invoice
    sub = _with_customer(SUBSCRIPTION_SQL, invoice.subscription_id)
    boundary = invoice.period_start
    (previous,) = _one(PREVIOUS_START_SQL, [sub.pk, Invoice.Kind.SUBSCRIPTION.value, boundary])
    start = previous or sub.started_at  # the first period billed ends at the first close
    if start >= boundary:
        return invoice
    lines = rows_as(InvoiceLine, LINES_SQL, [invoice.pk], binary=True)
    priced = sorted(
        {
            int(line.computation["price"])
            for line in lines
            if isinstance(line.computation, dict) and line.computation.get("price")
        }
    )
    versions = set()
    if priced:
        with hot_cursor() as cursor:
            cursor.execute(PRICE_VERSIONS_SQL, [priced])
            versions = {version for (version,) in cursor.fetchall()}
    fresh = arrears_lines(
        subscription=sub,
        version=_version(sub.plan_version_id),
        start=start,
        end=boundary,
        extra_versions=versions,
    )
    usage = [spec for spec in fresh if spec.kind in USAGE_KINDS]
    kept = [line for line in lines if line.kind not in USAGE_KINDS]
    (decimals,) = _one(DECIMALS_SQL, [invoice.currency_id])
    # usage reversed since the close may leave the draft below zero: never an invoice's total
    usage += net_credit_settle(
        subscription=sub,
        lines=[*usage, *(LineSpec(line.kind, line.description, line.amount) for line in kept)],
        start=start,
        boundary=boundary,
        decimals=decimals,
        now=timezone.now(),
        credit_note=False,
    )
    with transaction.atomic():
        with hot_cursor() as cursor:
            cursor.execute(LINES_DELETE_SQL, [invoice.pk, USAGE_KINDS])
        position = max((line.position for line in kept), default=-1) + 1
        added = [
            spec_line(invoice, position + index, spec, line_amount(spec, decimals))
            for index, spec in enumerate(usage)
        ]
        insert_all(added)
        subtotal = sum((line.amount for line in [*kept, *added]), ZERO)
        tax = tax_amount(subtotal, invoice.tax_rate, decimals)
        refresh_from_row(invoice, _one(TOTALS_SQL, [subtotal, tax, subtotal + tax, invoice.pk]))
    return invoice


# --- rating ------------------------------------------------------------------------------


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
