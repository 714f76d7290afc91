"""Draft invoices: written from exact amounts with each line rounded once
(``invoice_draft_create``), and a subscription draft's usage lines kept current until it is
finalized (``invoice_draft_refresh``: late events may arrive after the close)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.invoicing.carry_forward import net_credit_carry
from billing.invoicing.lines import LineSpec, line_amount, spec_line
from billing.invoicing.period_lines import arrears_lines
from billing.invoicing.plan_cache import plan_version
from billing.models import ChargeItem, Customer, Invoice, InvoiceLine, Subscription
from billing.selectors.subscriptions import subscription_with_customer
from core.db import columns, hot_cursor, insert_all, refresh_from_row, rows_as
from plans.pricing import tax_amount
from wallets.models import Asset

ZERO = Decimal(0)


def invoice_draft_create(
    *,
    customer: Customer,
    currency: str,
    kind: str,
    lines: Sequence[LineSpec],
    subscription: Subscription | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    charge_items: Sequence[ChargeItem] = (),
    now: datetime | None = None,
    decimals: int | None = None,
) -> tuple[Invoice, bool]:
    """Write a draft invoice: each line rounded half-up once to the currency's minor unit,
    the subtotal the sum of rounded lines, tax on the subtotal. ``charge_items`` are attached
    to it. One subscription invoice per subscription and period (the database enforces it):
    when it exists already, that one is returned with ``created`` False and nothing is
    written. ``decimals``: the currency's minor-unit places, when the caller has read them."""
    now = now or timezone.now()
    if decimals is None:
        decimals = Asset.objects.values_list("decimals", flat=True).get(code=currency)
    rounded = [(spec, line_amount(spec, decimals)) for spec in lines]
    subtotal = sum((amount for _, amount in rounded), ZERO)
    tax = tax_amount(subtotal, customer.tax_rate, decimals)
    due_days = settings.BILLFOLD.get("INVOICE_DUE_DAYS", 14)
    # an existing subscription invoice of the period is found by the unique constraint
    # (below), not by a read first: closing a period makes a new one nearly always
    try:
        with transaction.atomic():
            invoice = Invoice(
                customer=customer,
                subscription=subscription,
                kind=kind,
                currency_id=currency,
                period_start=period_start,
                period_end=period_end,
                subtotal=subtotal,
                tax_rate=customer.tax_rate,
                tax=tax,
                total=subtotal + tax,
                issued_at=now,
                due_at=now + timedelta(days=due_days),
            )
            insert_all([invoice])
            insert_all(
                [
                    spec_line(invoice, index, spec, amount)
                    for index, (spec, amount) in enumerate(rounded)
                ]
            )
            if charge_items:
                ChargeItem.objects.filter(
                    pk__in=[c.pk for c in charge_items], invoice__isnull=True
                ).update(invoice=invoice)
    except IntegrityError:
        if kind != Invoice.Kind.SUBSCRIPTION or subscription is None:
            raise
        # a concurrent close wrote it first
        return (
            Invoice.objects.get(subscription=subscription, kind=kind, period_start=period_start),
            False,
        )
    return invoice, True


# --- drafts stay current until they are finalized -------------------------------------------------

PREVIOUS_START_SQL = (
    "SELECT max(period_start) FROM billing_invoice "
    "WHERE subscription_id = %s AND kind = %s AND period_start < %s"
)
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
    sub = subscription_with_customer(subscription_id=invoice.subscription_id)
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
        version=plan_version(sub.plan_version_id),
        start=start,
        end=boundary,
        extra_versions=versions,
    )
    usage = [spec for spec in fresh if spec.kind in USAGE_KINDS]
    kept = [line for line in lines if line.kind not in USAGE_KINDS]
    (decimals,) = _one(DECIMALS_SQL, [invoice.currency_id])
    # usage reversed since the close may leave the draft below zero: never an invoice's total
    usage += net_credit_carry(
        subscription=sub,
        lines=[*usage, *(LineSpec(line.kind, line.description, line.amount) for line in kept)],
        start=start,
        boundary=boundary,
        decimals=decimals,
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
