"""A reversed event whose period is already invoiced (docs/charging.md: a reversal "refunds
exactly the event's charge"; a finalized invoice is corrected by a credit note).

``event_reverse`` refunds the part of an event's charge that
the wallet paid and takes the event out of its period's usage counter, ``accrued`` included.
The accrued part was postpaid: the billing run put it on the subscription invoice issued at
the end of the event's period (``arrears_lines``: per price a usage line and, when the
wallet paid part of it, a ``paid_from_wallet`` line, which together bill the counter's
``accrued`` rounded once). These two functions, called by ``event_reverse`` in its own
transaction, take it off that invoice too:

- invoice **draft**: its usage lines are recomputed from the counters, as finalizing does
  (``invoice_draft_refresh``), so the draft shows and later bills the period without the event;
- **finalized or paid**: a credit note against it for what the reversal takes off the invoice
  (below), with its tax at the invoice's rate (``credit_note_create``);
- **void**, or the period **not invoiced yet**: nothing — the counter already left the event
  out, so the next invoice is right.

The credit is the change of what the invoice's usage lines bill: round(accrued before) −
round(accrued after), half-up to the invoice currency's minor unit. When amounts are whole
minor units (0.99 per ticket) that is exactly the event's ``accrued``; with sub-cent amounts
it keeps the invoice plus its credit notes equal to the invoice made without the reversed
events (three reversals of 0.005 from a line of 0.015 → 0.02 credit 0.02 in all, not 0.03).

If less than that is left to credit on the invoice (earlier credit notes), the credit note is
for what is left, and none is issued when nothing is left: the customer already has it back,
and the reversal (the wallet refund, the counters) goes ahead. Each credit note is issued once
per event (idempotency key ``event-reversal:<event pk>``) and its line's ``computation``
names the event (``reversal_of_event``), which ``reversal_credit_note`` looks up.

**Locks.** ``reversal_invoice_lock`` runs first in the reversal's transaction: the invoice row,
then (in ``event_reverse``) the wallet accounts and the counter — the order of a single late
event (``check_open``) and of ``invoice_finalize``. So a finalization either waits for the
reversal (and its refresh reads the counter without the event) or is seen by it (then a
credit note is issued), and two reversals of one period serialize on the invoice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from billing.invoicing import (
    CreditLine,
    credit_note_create,
    invoice_creditable,
    invoice_draft_refresh,
)
from billing.metering import spend as spend_service
from billing.metering.answers import event_get
from billing.metering.decide import Charge
from billing.metering.errors import EventNotAccepted
from billing.models import Invoice, InvoiceLine, UsageCounter, UsageEvent
from core.text import plain
from plans.pricing import round_money
from wallets.services import accounts_lock, ledger_refund

logger = logging.getLogger(__name__)

ZERO = Decimal(0)

CREDIT_NOTE_KEY = "event-reversal:{pk}"


def event_reverse(*, event_id: str, now: datetime | None = None) -> UsageEvent:
    """Reverse an accepted event (a disputed outcome): refund exactly its charge — units back
    to the grants they came from while those have not expired, money likewise — take it out
    of the period's counter and the spend window. Once: reversing a reversed event changes
    nothing. When the period's invoice billed the event's accrued part, a draft is refreshed
    and a finalized or paid invoice gets a credit note, in the same transaction
    (``reversal_invoice_lock``, ``reversal_invoice_correct``)."""
    now = now or timezone.now()
    event = event_get(event_id=event_id)
    if event.status == UsageEvent.Status.REVERSED:
        return event
    if event.status != UsageEvent.Status.ACCEPTED:
        raise EventNotAccepted(f"Event {event_id} is {event.status}.")
    with transaction.atomic():
        invoice = reversal_invoice_lock(event=event)  # first, as a late event locks it
        txn = event.ledger_transaction
        if txn is not None:
            assets = set(
                txn.entries.filter(account__wallet__isnull=False).values_list("asset_id", flat=True)
            )
            assert txn.wallet_id is not None  # an event's charge moves its wallet's accounts
            accounts_lock(txn.wallet_id, assets)
        moved = UsageEvent.objects.filter(pk=event.pk, status=UsageEvent.Status.ACCEPTED).update(
            status=UsageEvent.Status.REVERSED, reversed_at=now
        )
        if not moved:  # reversed concurrently
            return event_get(event_id=event_id)
        refund = (
            ledger_refund(txn=txn, now=now, description=f"reversal of event {event_id}")
            if txn
            else None
        )
        if event.price_id is not None:
            counted = Charge(
                included=event.included,
                billable=event.billable,
                amount=event.amount,
                accrued=event.accrued,
            ).counted()  # what the event added to its counter
            _counter(event).update(
                quantity=F("quantity") - counted.quantity,
                included=F("included") - counted.included,
                billable=F("billable") - counted.billable,
                amount=F("amount") - counted.amount,
                accrued=F("accrued") - counted.accrued,
                events=F("events") - 1,  # the invoice line counts the events it bills
                updated_at=now,
            )
        if event.amount and event.asset_id and event.subscription_id:
            assert event.period_start is not None  # an event of a subscription has its period
            spend_service.spend_release(
                customer_id=event.customer_id,
                value=spend_service.value_in_currency(
                    event.amount, event.asset_id, event.customer.currency_id
                ),
                # a period window starts at the event's period; a day window at its day
                period=(event.period_start, event.period_start),
                at=event.timestamp,
            )
        UsageEvent.objects.filter(pk=event.pk).update(reversal_transaction=refund)
        reversal_invoice_correct(event=event, invoice=invoice, now=now)
    return event_get(event_id=event_id)


def _counter(event: UsageEvent) -> QuerySet[UsageCounter]:
    """The period counter of ``event``, a priced event (it has a subscription and period)."""
    assert event.subscription_id is not None and event.period_start is not None
    assert event.price_id is not None
    return UsageCounter.objects.filter(
        subscription_id=event.subscription_id,
        period_start=event.period_start,
        price_id=event.price_id,
    )


def reversal_invoice_lock(*, event: UsageEvent) -> Invoice | None:
    """The subscription invoice that billed the usage of ``event``'s period — the one issued
    at the period's end — locked (``FOR UPDATE``) until the transaction ends; None when the
    event accrued nothing to an invoice or its period is not invoiced yet. Call it inside
    the reversal's transaction before any other lock."""
    if not event.accrued or event.subscription_id is None or event.price_id is None:
        return None
    period_end = _counter(event).values_list("period_end", flat=True).first()
    if period_end is None:  # pragma: no cover - an accrued event always has its counter
        return None
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("currency")
        .filter(
            subscription_id=event.subscription_id,
            kind=Invoice.Kind.SUBSCRIPTION,
            period_start=period_end,
        )
        .first()
    )


def _description(event: UsageEvent, invoice: Invoice) -> str:
    meter = event.meter
    quantity = event.included + event.billable
    text = (
        f"Reversal of usage event {event.event_id}: {plain(quantity)} {meter.unit_id} of "
        f"{meter.name} on {event.timestamp:%Y-%m-%d %H:%M} UTC (invoice {invoice})"
    )
    return text[:500]


def reversal_invoice_correct(
    *, event: UsageEvent, invoice: Invoice | None, now: datetime
) -> Invoice | None:
    """Take a reversed event's accrued charge off ``invoice`` (from ``reversal_invoice_lock``,
    still locked), after the reversal took the event out of its counter, in the same
    transaction. Returns the credit note issued, if any."""
    if invoice is None:
        return None
    if invoice.status == Invoice.Status.DRAFT:
        invoice_draft_refresh(invoice=invoice)
        return None
    if invoice.status == Invoice.Status.VOID:
        return None
    decimals = invoice.currency.decimals
    after = _counter(event).values_list("accrued", flat=True).get()
    before = after + event.accrued
    billed_before, billed_after = round_money(before, decimals), round_money(after, decimals)
    amount = billed_before - billed_after
    if amount <= 0:  # under half a minor unit: the rounded line did not change
        return None
    left = max(invoice_creditable(invoice=invoice)[0], ZERO)
    credit = round_money(min(amount, left), decimals)
    computation = {
        "reversal_of_event": event.event_id,
        "price": event.price_id,
        "event_accrued": plain(event.accrued),
        "line_before": format(billed_before, "f"),
        "line_after": format(billed_after, "f"),
    }
    if credit < amount:
        logger.warning(
            "reversal of event %s: %s %s to credit on %s, only %s left",
            event.event_id,
            amount,
            invoice.currency_id,
            invoice,
            left,
        )
        if credit <= 0:
            return None
        computation["capped_to_creditable"] = format(amount, "f")
    note = credit_note_create(
        invoice_id=invoice.pk,
        lines=[CreditLine(_description(event, invoice), credit)],
        reason=f"Usage event {event.event_id} reversed",
        idempotency_key=CREDIT_NOTE_KEY.format(pk=event.pk),
        line_computation=computation,
        now=now,
    )
    logger.info(
        "reversal of event %s: credit note %s of %s %s against %s",
        event.event_id,
        note,
        credit,
        invoice.currency_id,
        invoice,
    )
    return note


def reversal_credit_note(*, event_id: str) -> Invoice | None:
    """The credit note issued for the reversal of event ``event_id``, if any."""
    line = (
        InvoiceLine.objects.filter(
            invoice__kind=Invoice.Kind.CREDIT_NOTE,
            computation__reversal_of_event=event_id,
        )
        .select_related("invoice")
        .first()
    )
    return line.invoice if line is not None else None
