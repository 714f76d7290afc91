"""A net credit carried forward (docs/invoices.md): what an invoice cannot take as a credit
note becomes a negative charge item of kind ``adjustment`` that the next close puts on the
next invoice. A draft's refresh (``invoice_draft_refresh``) whose reversed usage would leave
it below zero settles its net credit this way alone: it holds the draft's lock, and a
reversal the wallet's too, so it takes no lock on another invoice. ``net_credit_settle``
(``billing.invoicing.net_credit``) tries a credit note first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from billing.invoicing.lines import LineSpec, line_amount
from billing.models import ChargeItem, InvoiceLine, Subscription

ZERO = Decimal(0)


def period_dates(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"


def net_credit_of(lines: Sequence[LineSpec], decimals: int) -> Decimal:
    """How far the rounded ``lines`` total below zero (zero when they do not)."""
    subtotal = sum((line_amount(spec, decimals) for spec in lines), ZERO)
    return -subtotal if subtotal < 0 else ZERO


def credit_carry_forward(
    *, subscription: Subscription, credit: Decimal, start: datetime, boundary: datetime
) -> LineSpec:
    """Carry ``credit`` of the period ``[start, boundary)`` to the next invoice: the charge
    item that carries it, and the boundary invoice's line of the opposite amount."""
    source = f"net-credit:{subscription.pk}:{boundary.isoformat()}"
    earlier = ChargeItem.objects.filter(source__startswith=source).count()
    item = ChargeItem.objects.create(
        customer_id=subscription.customer_id,
        subscription=subscription,
        kind=ChargeItem.Kind.ADJUSTMENT,
        description=f"Net credit carried forward from the period {period_dates(start, boundary)}",
        currency_id=subscription.plan_version.currency_id,
        amount=-credit,
        period_start=start,
        period_end=boundary,
        source=f"{source}:{earlier}" if earlier else source,
        computation={"rule": "net credit carried forward"},
        created_at=boundary,
    )
    return LineSpec(
        kind=InvoiceLine.Kind.ADJUSTMENT,
        description="Net credit carried to the next invoice",
        amount_exact=credit,
        computation={"carried_forward": item.pk},
    )


def net_credit_carry(
    *,
    subscription: Subscription,
    lines: Sequence[LineSpec],
    start: datetime,
    boundary: datetime,
    decimals: int,
) -> list[LineSpec]:
    """Carry the whole net credit of ``lines`` (the period ``[start, boundary)``) forward;
    returns the lines to add to the boundary invoice, none when they do not net to a
    credit."""
    credit = net_credit_of(lines, decimals)
    if not credit:
        return []
    return [
        credit_carry_forward(
            subscription=subscription, credit=credit, start=start, boundary=boundary
        )
    ]
