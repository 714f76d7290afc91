"""Invoice lines before they are written: a ``LineSpec`` carries a line's exact amount, and
``line_amount`` rounds it once to the currency's minor unit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.models import Invoice, InvoiceLine
from plans.pricing import round_money


@dataclass(frozen=True)
class LineSpec:
    """One invoice line before rounding. ``offsets``: for a line that pays part of another
    (``paid_from_wallet`` under its usage line), that line's exact amount (``line_amount``)."""

    kind: str
    description: str
    amount_exact: Decimal
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    meter_id: int | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    computation: dict[str, Any] = field(default_factory=dict)
    offsets: Decimal | None = None


def line_amount(spec: LineSpec, decimals: int) -> Decimal:
    """The line's amount: its exact amount rounded half-up once to ``decimals`` places. A
    line that offsets another is the change it makes to that line's rounded amount,
    round(other + exact) − round(other), so the pair bills its net rounded once (usage of
    3.345 with 1.995 paid from the wallet: 3.35 and −2.00, billing round(1.35) = 1.35)."""
    if spec.offsets is None:
        return round_money(spec.amount_exact, decimals)
    return round_money(spec.offsets + spec.amount_exact, decimals) - round_money(
        spec.offsets, decimals
    )


def spec_line(invoice: Invoice, position: int, spec: LineSpec, amount: Decimal) -> InvoiceLine:
    """The line of ``invoice`` at ``position`` that ``spec`` describes, ``amount`` being its
    exact amount rounded to the currency's minor unit (not written yet)."""
    return InvoiceLine(
        invoice=invoice,
        position=position,
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
