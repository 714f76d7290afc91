"""Credit notes (docs/invoices.md): a finalized or paid invoice credited in whole or in
parts, each credit note finalized at once with its own number (``CN-2026-000001``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.invoicing.errors import (
    CreditNoteExceedsInvoice,
    InvoiceNotCreditable,
    InvoiceNotFinalized,
)
from billing.invoicing.locks import invoice_lock, invoice_pk
from billing.invoicing.numbering import finalize_locked
from billing.models import Invoice, InvoiceLine
from core.errors import NotFound, ValidationFailed
from plans.pricing import round_money, tax_amount
from wallets.services.amounts import check_amount
from wallets.services.idempotency import idempotency_claim, idempotency_store

ZERO = Decimal(0)
MAX_CREDIT_LINES = 100


@dataclass(frozen=True)
class CreditLine:
    description: str
    amount: Decimal


def _credit_lines_check(lines: object, decimals: int) -> list[CreditLine]:
    """``[{"description", "amount"}, …]``: 1–100 lines, each a non-empty description of at
    most 500 characters and a positive amount in whole minor units of the currency."""
    if not isinstance(lines, list | tuple) or not lines:
        raise ValidationFailed(
            "A credit note needs at least one line.", errors={"lines": ["At least one line."]}
        )
    if len(lines) > MAX_CREDIT_LINES:
        raise ValidationFailed(
            "Too many lines.", errors={"lines": [f"At most {MAX_CREDIT_LINES} lines."]}
        )
    errors: dict[str, list[str]] = {}
    checked: list[CreditLine] = []
    for index, raw in enumerate(lines):
        where = f"lines[{index}]"
        if isinstance(raw, CreditLine):
            raw = {"description": raw.description, "amount": raw.amount}
        if not isinstance(raw, Mapping):
            errors[where] = ["An object with description and amount."]
            continue
        description = raw.get("description")
        text = description.strip() if isinstance(description, str) else ""
        if not text:
            errors[f"{where}.description"] = ["This field is required."]
        elif len(text) > 500:
            errors[f"{where}.description"] = ["At most 500 characters."]
        try:
            amount = check_amount(raw.get("amount"), field="amount", max_places=decimals)
        except ValidationFailed as exc:
            errors[f"{where}.amount"] = [m for ms in exc.errors.values() for m in ms] or [
                exc.detail
            ]
            continue
        if text and len(text) <= 500:
            checked.append(CreditLine(text, round_money(amount, decimals)))
    if errors:
        raise ValidationFailed("Invalid credit note.", errors=errors)
    return checked


def _reason_check(reason: object) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed(
            "A credit note needs a reason.", errors={"reason": ["This field is required."]}
        )
    if len(text) > 500:
        raise ValidationFailed(
            "The reason is too long.", errors={"reason": ["At most 500 characters."]}
        )
    return text


def invoice_creditable(*, invoice: Invoice) -> tuple[Decimal, Decimal]:
    """What is left to credit on ``invoice``: (subtotal, tax), i.e. its own minus those of its
    credit notes that are not void (credit notes carry negative amounts)."""
    credited = (
        Invoice.objects.filter(credit_note_for=invoice)
        .exclude(status=Invoice.Status.VOID)
        .aggregate(subtotal=Sum("subtotal"), tax=Sum("tax"))
    )
    return (
        invoice.subtotal + (credited["subtotal"] or ZERO),
        invoice.tax + (credited["tax"] or ZERO),
    )


def credit_note_create(
    *,
    invoice_id: int | str,
    lines: Sequence[Mapping[str, Any] | CreditLine],
    reason: str,
    idempotency_key: str | None = None,
    line_computation: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Invoice:
    """A credit note against a finalized or paid invoice, finalized at once with its own
    number (``CN-2026-000001``).

    Each line ``{"description", "amount"}`` credits a positive amount in whole minor units of
    the invoice's currency (a USD line of 10.005 is refused rather than rounded); the credit
    note stores them negative, as lines of kind ``adjustment``. Its tax is at the original
    invoice's rate on the credited subtotal, rounded half-up, but never more than the tax left
    on the invoice — and exactly that when the credit empties the invoice — so credits in
    several pieces add up to the invoice's total, not a cent more.

    Refused: a credit beyond what is left of the invoice (its subtotal minus earlier credit
    notes that are not void) with ``CreditNoteExceedsInvoice``; a draft or void invoice with
    ``InvoiceNotFinalized``; a credit note with ``InvoiceNotCreditable``. The original
    invoice's row is locked, so concurrent credit notes cannot together exceed it.
    ``idempotency_key`` makes a retry return the same credit note. ``line_computation`` is
    added to each line's ``computation`` (what the credit was made from, e.g. the reversed
    event of ``billing.metering.reversal``)."""
    now = now or timezone.now()
    reason = _reason_check(reason)
    pk = invoice_pk(invoice_id)
    currency = Invoice.objects.filter(pk=pk).values_list("currency__decimals", flat=True).first()
    if currency is None:
        raise NotFound(f"Unknown invoice {pk}.")
    checked = _credit_lines_check(lines, currency)
    with transaction.atomic():
        slot = None
        if idempotency_key is not None:
            slot = idempotency_claim(
                scope="billing.credit_note",
                key=idempotency_key,
                request={
                    "invoice": pk,
                    "lines": [[c.description, c.amount] for c in checked],
                    "reason": reason,
                },
            )
            if slot.replay:
                return Invoice.objects.get(pk=slot.result["invoice"])
        original = invoice_lock(pk)
        if original.kind == Invoice.Kind.CREDIT_NOTE:
            raise InvoiceNotCreditable(f"{original} is a credit note; it cannot be credited.")
        if original.status not in (Invoice.Status.FINALIZED, Invoice.Status.PAID):
            raise InvoiceNotFinalized(
                f"Invoice {original} is {original.status}; only finalized or paid invoices "
                "can be credited."
            )
        decimals = currency
        left_subtotal, left_tax = invoice_creditable(invoice=original)
        subtotal = sum((c.amount for c in checked), ZERO)
        if subtotal > left_subtotal:
            left = max(left_subtotal, ZERO)
            raise CreditNoteExceedsInvoice(
                f"The credit of {subtotal} {original.currency_id} exceeds the "
                f"{left} {original.currency_id} left to credit on {original}.",
                errors={"lines": [f"At most {left} {original.currency_id} in total."]},
                extra={"creditable": format(left, "f")},
            )
        if subtotal == left_subtotal:
            tax = max(left_tax, ZERO)
        else:
            tax = min(tax_amount(subtotal, original.tax_rate, decimals), max(left_tax, ZERO))
        note = Invoice.objects.create(
            customer_id=original.customer_id,
            subscription_id=original.subscription_id,
            kind=Invoice.Kind.CREDIT_NOTE,
            currency_id=original.currency_id,
            period_start=original.period_start,
            period_end=original.period_end,
            subtotal=-subtotal,
            tax_rate=original.tax_rate,
            tax=-tax,
            total=-(subtotal + tax),
            issued_at=now,
            due_at=now,
            credit_note_for=original,
            reason=reason,
        )
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=note,
                position=index,
                kind=InvoiceLine.Kind.ADJUSTMENT,
                description=line.description,
                quantity=Decimal(1),
                unit_price=-line.amount,
                amount=-line.amount,
                amount_exact=-line.amount,
                computation={
                    **(line_computation or {}),
                    "credit_note_for": original.number,
                    "credited": format(line.amount, "f"),
                    "reason": reason,
                },
            )
            for index, line in enumerate(checked)
        )
        note = finalize_locked(note, now)
        if slot is not None:
            idempotency_store(slot, result={"invoice": note.pk}, status_code=201)
    return note
