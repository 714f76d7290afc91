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
forward (``billing.invoicing.carry_forward``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from billing.invoicing.carry_forward import credit_carry_forward, net_credit_of, period_dates
from billing.invoicing.credit_notes import CreditLine, credit_note_create, invoice_creditable
from billing.invoicing.finalization import invoice_finalize
from billing.invoicing.lines import LineSpec
from billing.models import Invoice, InvoiceLine, Subscription

ZERO = Decimal(0)


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
) -> list[LineSpec]:
    """Settle the net credit of a close's ``lines`` (the period ``[start, boundary)``); returns
    the lines to add to the boundary invoice, none when the lines do not net to a credit."""
    credit = net_credit_of(lines, decimals)
    if not credit:
        return []
    dates = period_dates(start, boundary)
    added: list[LineSpec] = []
    original = _paid_for(subscription, start, now)
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
        added.append(
            credit_carry_forward(
                subscription=subscription, credit=credit, start=start, boundary=boundary
            )
        )
    return added
