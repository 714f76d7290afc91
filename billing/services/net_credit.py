"""An invoice never has a negative total: negative totals are credit notes.

A period close puts the period's charge items on the boundary invoice: the credits for
unused in-advance fees of a plan change or cancellation "now" (negative ``proration``
items), the charges that came with them, the period's in-arrears items and the next
period's in-advance fees. When these net to a credit — a downgrade to a cheaper or free plan
late in the period, say — the close (``subscription_period_close``, and
``subscription_final_invoice`` for a cancellation "now") settles the net credit with
``net_credit_settle`` before writing the invoice:

- a **credit note** against the invoice that billed the closing period's in-advance fees
  (the subscription invoice whose period starts where the closing period does), for as much
  as is left to credit on it (``credit_note_create``: its tax is at that invoice's rate, as
  the fees it gives back were taxed). Only a finalized invoice can be credited: a draft is
  finalized first, as its grace job would (it is still in its grace period only when the
  change came within ``INVOICE_GRACE_HOURS`` of the period's start);
- whatever that invoice cannot take (there is none, it is void, or earlier credit notes
  left less to credit) is **carried forward**: a negative charge item of kind
  ``adjustment`` that the next close puts on the next invoice (a subscription that ended
  keeps it open, listed among the charges not yet invoiced).

The boundary invoice keeps every line it had and gets one ``adjustment`` line per part (the
credit note's number, or "carried to the next invoice") of the opposite amount, so it shows
how its credits were settled and totals zero. Everything runs in the close's transaction.
A draft's refresh (``invoice_draft_refresh``) that would leave it below zero only carries
forward (``credit_note=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from billing.models import ChargeItem, Invoice, InvoiceLine, Subscription
from billing.services.invoices import (
    CreditLine,
    LineSpec,
    credit_note_create,
    invoice_creditable,
    invoice_finalize,
    line_amount,
)

ZERO = Decimal(0)


def _dates(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"


def _paid_for(subscription: Subscription, start: datetime, now: datetime) -> Invoice | None:
    """The invoice that billed the period starting at ``start``, locked and finalized, if
    it is not void."""
    invoice = (
        Invoice.objects.select_for_update(of=("self",))
        .filter(subscription=subscription, kind=Invoice.Kind.SUBSCRIPTION, period_start=start)
        .exclude(status=Invoice.Status.VOID)
        .first()
    )
    if invoice is not None and invoice.status == Invoice.Status.DRAFT:
        invoice = invoice_finalize(invoice_id=invoice.pk, now=now)
    return invoice


def net_credit_settle(
    *,
    subscription: Subscription,
    lines: Sequence[LineSpec],
    start: datetime,
    boundary: datetime,
    decimals: int,
    now: datetime,
    credit_note: bool = True,
) -> list[LineSpec]:
    """Settle the net credit of a close's ``lines`` (the period ``[start, boundary)``); returns
    the lines to add to the boundary invoice, none when the lines do not net to a credit.

    ``credit_note=False`` (the refresh of a draft, ``invoice_draft_refresh``, whose reversed
    usage may leave it below zero) only carries forward: a refresh holds the draft's lock,
    and a reversal the wallet's too, so it takes no lock on another invoice."""
    subtotal = sum((line_amount(spec, decimals) for spec in lines), ZERO)
    if subtotal >= 0:
        return []
    credit = -subtotal
    dates = _dates(start, boundary)
    added: list[LineSpec] = []
    original = _paid_for(subscription, start, now) if credit_note else None
    if original is not None:
        left = max(invoice_creditable(invoice=original)[0], ZERO)
        credited = min(credit, left)
        if credited > 0:
            note = credit_note_create(
                invoice_id=original.pk,
                lines=[CreditLine(f"Net credit of the period {dates}", credited)],
                reason=f"The period {dates} closed with a net credit",
                line_computation={
                    "subscription": subscription.pk,
                    "net_credit": format(credit, "f"),
                },
                now=now,
            )
            added.append(
                LineSpec(
                    kind=InvoiceLine.Kind.ADJUSTMENT,
                    description=f"Net credit issued as credit note {note.number} "
                    f"against {original.number}",
                    amount_exact=credited,
                    computation={"credit_note": note.pk, "credit_note_for": original.pk},
                )
            )
            credit -= credited
    if credit > 0:
        source = f"net-credit:{subscription.pk}:{boundary.isoformat()}"
        earlier = ChargeItem.objects.filter(source__startswith=source).count()
        item = ChargeItem.objects.create(
            customer_id=subscription.customer_id,
            subscription=subscription,
            kind=ChargeItem.Kind.ADJUSTMENT,
            description=f"Net credit carried forward from the period {dates}",
            currency_id=subscription.plan_version.currency_id,
            amount=-credit,
            period_start=start,
            period_end=boundary,
            source=f"{source}:{earlier}" if earlier else source,
            computation={"rule": "net credit carried forward"},
            created_at=boundary,
        )
        added.append(
            LineSpec(
                kind=InvoiceLine.Kind.ADJUSTMENT,
                description="Net credit carried to the next invoice",
                amount_exact=credit,
                computation={"carried_forward": item.pk},
            )
        )
    return added
