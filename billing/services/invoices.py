"""Invoices: drafts built from exact amounts, each line rounded once (PRODUCT.md §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import ChargeItem, Customer, Invoice, InvoiceLine, Subscription
from plans.pricing import round_money, tax_amount
from wallets.models import Asset

ZERO = Decimal(0)


@dataclass(frozen=True)
class LineSpec:
    """One invoice line before rounding."""

    kind: str
    description: str
    amount_exact: Decimal
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    meter_id: int | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    computation: dict[str, Any] = field(default_factory=dict)


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
) -> tuple[Invoice, bool]:
    """Write a draft invoice: each line rounded half-up once to the currency's minor unit,
    the subtotal the sum of rounded lines, tax on the subtotal. ``charge_items`` are attached
    to it. One subscription invoice per subscription and period (the database enforces it):
    when it exists already, that one is returned with ``created`` False and nothing is
    written."""
    now = now or timezone.now()
    decimals = Asset.objects.values_list("decimals", flat=True).get(code=currency)
    rounded = [(spec, round_money(spec.amount_exact, decimals)) for spec in lines]
    subtotal = sum((amount for _, amount in rounded), ZERO)
    tax = tax_amount(subtotal, customer.tax_rate, decimals)
    due_days = settings.BILLFOLD.get("INVOICE_DUE_DAYS", 14)
    if kind == Invoice.Kind.SUBSCRIPTION and subscription is not None:
        existing = Invoice.objects.filter(
            subscription=subscription, kind=kind, period_start=period_start
        ).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            invoice = Invoice.objects.create(
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
            InvoiceLine.objects.bulk_create(
                InvoiceLine(
                    invoice=invoice,
                    position=index,
                    kind=spec.kind,
                    description=spec.description[:500],
                    meter_id=spec.meter_id,
                    quantity=spec.quantity,
                    unit_price=spec.unit_price,
                    amount=amount,
                    amount_exact=spec.amount_exact,
                    period_start=spec.period_start,
                    period_end=spec.period_end,
                    computation=spec.computation,
                )
                for index, (spec, amount) in enumerate(rounded)
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
