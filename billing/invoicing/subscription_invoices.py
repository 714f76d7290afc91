"""A subscription's invoices at the edges of its life: the first one, issued when it starts,
the final one of a cancellation "now", and the draft every period close writes
(docs/billing-cycle.md). The close itself is ``billing.periodic``'s."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from billing.invoicing.drafts import invoice_draft_create
from billing.invoicing.lines import LineSpec
from billing.invoicing.net_credit import net_credit_settle
from billing.invoicing.period_lines import (
    advance_lines,
    arrears_lines,
    charge_item_lines,
    trialing_at,
)
from billing.invoicing.plan_cache import plan_version
from billing.models import ChargeItem, Invoice, Subscription
from plans.models import PlanVersion


def subscription_first_invoice(
    *, subscription: Subscription, now: datetime | None = None
) -> Invoice | None:
    """The invoice issued when a subscription starts: its first period's in-advance items
    (none during a trial). Nothing is written when there is nothing to invoice."""
    start, end = subscription.current_period_start, subscription.current_period_end
    if trialing_at(subscription, start):
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


def subscription_final_invoice(
    *, subscription: Subscription, now: datetime | None = None
) -> Invoice:
    """The invoice of a subscription ended "now" (``subscription_cancel``), issued at once:
    what its period's close would have billed — the period's in-arrears items and its open
    charge items (the cancellation's credits), no next period — for the period ``[B, B]``,
    B the end of the ended period, as an ending close writes it (so a late reversal finds
    it); a net credit is settled as a close's. Call inside the cancellation's transaction."""
    now = now or timezone.now()
    version = plan_version(subscription.plan_version_id)
    start, boundary = subscription.current_period_start, subscription.current_period_end
    lines = arrears_lines(subscription=subscription, version=version, start=start, end=boundary)
    items = list(
        ChargeItem.objects.filter(subscription=subscription, invoice__isnull=True).order_by(
            "created_at", "id"
        )
    )
    lines += charge_item_lines(items)
    return subscription_close_invoice(
        subscription=subscription,
        version=version,
        lines=lines,
        items=items,
        start=start,
        boundary=boundary,
        next_end=boundary,
        now=now,
    )


def subscription_close_invoice(
    *,
    subscription: Subscription,
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
        subscription=subscription,
        lines=lines,
        start=start,
        boundary=boundary,
        decimals=decimals,
        now=now,
    )
    invoice, _ = invoice_draft_create(
        customer=subscription.customer,
        currency=version.currency_id,
        kind=Invoice.Kind.SUBSCRIPTION,
        lines=lines,
        subscription=subscription,
        period_start=boundary,
        period_end=next_end,
        charge_items=items,
        now=now,
        decimals=decimals,
    )
    return invoice
