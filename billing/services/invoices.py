"""Invoices (docs/invoices.md): drafts built from exact amounts with each line rounded once,
and their lifecycle — finalize (gapless numbers), void, mark paid, credit notes — plus one-off
invoices for credit purchases. docs/invoices.md explains the rules.

``draft`` → ``finalized`` (numbered, immutable) → ``paid`` | ``void``. Every transition runs in
one transaction under the invoice row's lock and is idempotent: repeating it returns the
invoice unchanged. The database is the last line of defence: triggers (migration 0008) refuse
any change to a finalized invoice except the move to paid or void, and any change to the
lines of an invoice that left draft."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import Alert, ChargeItem, Customer, Invoice, InvoiceLine, Subscription
from billing.services.run_failures import (
    RunFailure,
    run_failure_record,
    run_failures_open,
    run_failures_resolve,
)
from core.db import columns, hot_cursor, insert_all, refresh_from_row, rows_as
from core.errors import BillfoldError, NotFound, ValidationFailed
from core.text import plain
from plans.pricing import round_money, tax_amount
from wallets.fields import AMOUNT_PLACES
from wallets.models import Asset, Grant
from wallets.services.amounts import check_amount
from wallets.services.idempotency import idempotency_claim, idempotency_store

ZERO = Decimal(0)


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


# --- errors ---------------------------------------------------------------------------------------


class InvoiceNotDraft(BillfoldError):
    code = "invoice_not_draft"
    status = 409
    title = "The invoice is not a draft"


class InvoiceNotFinalized(BillfoldError):
    code = "invoice_not_finalized"
    status = 409
    title = "The invoice is not finalized"


class InvoicePaid(BillfoldError):
    code = "invoice_paid"
    status = 409
    title = "The invoice is paid"


class InvoiceHasCreditNotes(BillfoldError):
    code = "invoice_has_credit_notes"
    status = 409
    title = "The invoice has credit notes"


class InvoiceNotCreditable(BillfoldError):
    code = "invoice_not_creditable"
    status = 409
    title = "The invoice cannot be credited"


class CreditNoteExceedsInvoice(BillfoldError):
    code = "credit_note_exceeds_invoice"
    status = 409
    title = "The credit note exceeds what is left of the invoice"


# --- numbering ------------------------------------------------------------------------------------

INVOICE_PREFIX = "INV"
CREDIT_NOTE_PREFIX = "CN"
MAX_CREDIT_LINES = 100

_SEQUENCE_TAKE = """
INSERT INTO billing_invoicesequence (prefix, year, last) VALUES (%s, %s, 1)
ON CONFLICT (prefix, year) DO UPDATE SET last = billing_invoicesequence.last + 1
RETURNING last
"""


def invoice_number_format(prefix: str, year: int, number: int) -> str:
    """``INV-2026-000042``: six digits at least (a seventh appears after 999,999)."""
    return f"{prefix}-{year}-{number:06d}"


def _number_take(prefix: str, year: int) -> int:
    """The next number of ``prefix`` in ``year``, taken under the lock of its sequence row.

    One statement: ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` makes the row on first use
    with 1 (two first finalizations of a year race safely: the second increments) or
    increments it. Either locks the row until the caller's transaction ends, exactly like
    ``SELECT … FOR UPDATE`` followed by an update but in one round trip. A concurrent
    finalization waits for the lock; a finalization that rolls back also rolls back its
    increment, so its number is given to the next one and the sequence has no gaps."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invoice numbers are taken inside the finalizing transaction")
    with hot_cursor() as cursor:
        cursor.execute(_SEQUENCE_TAKE, [prefix, year])
        return cursor.fetchone()[0]


# --- lifecycle --------------------------------------------------------------------------------


def _invoice_pk(invoice_id: object) -> int:
    """An invoice id from an int or a string of digits; anything else is an unknown invoice."""
    if isinstance(invoice_id, bool):
        raise NotFound("Unknown invoice.")
    if isinstance(invoice_id, int):
        value = invoice_id
    elif isinstance(invoice_id, str) and invoice_id.isascii() and invoice_id.isdigit():
        value = int(invoice_id) if len(invoice_id) <= 18 else -1
    else:
        shown = str(invoice_id)[:40]
        raise NotFound(f"Unknown invoice '{shown}'.")
    if not 0 < value < 2**63:
        raise NotFound(f"Unknown invoice '{invoice_id}'.")
    return value


def _invoice_lock(invoice_id: object) -> Invoice:
    """The invoice row, locked until the transaction ends."""
    pk = _invoice_pk(invoice_id)
    invoice = Invoice.objects.select_for_update().filter(pk=pk).first()
    if invoice is None:
        raise NotFound(f"Unknown invoice {pk}.")
    return invoice


def _refresh_draft(invoice: Invoice) -> Invoice:
    """Bring a subscription draft's usage lines up to date before it is numbered (events that
    arrived during the grace period)."""
    if invoice.kind != Invoice.Kind.SUBSCRIPTION or invoice.subscription_id is None:
        return invoice
    from billing.services.billing_run import invoice_draft_refresh  # it imports this module

    return invoice_draft_refresh(invoice=invoice)


DRAFT = Invoice.Status.DRAFT.value
_FINALIZE_SQL = (
    "UPDATE billing_invoice SET status = %s, number = %s, finalized_at = %s "  # noqa: S608
    f"WHERE id = %s AND status = %s RETURNING {columns(Invoice)}"
)
_DUE_LOCK_SQL = (
    f"SELECT {columns(Invoice)} FROM billing_invoice "  # noqa: S608 - column names only
    "WHERE id = %s AND status = %s AND issued_at <= %s FOR UPDATE SKIP LOCKED"
)


def _finalize_locked(invoice: Invoice, now: datetime) -> Invoice:
    """Number a locked draft and move it to finalized, in the caller's transaction."""
    prefix = CREDIT_NOTE_PREFIX if invoice.kind == Invoice.Kind.CREDIT_NOTE else INVOICE_PREFIX
    year = now.astimezone(UTC).year
    number = invoice_number_format(prefix, year, _number_take(prefix, year))
    with hot_cursor(binary=True) as cursor:
        cursor.execute(
            _FINALIZE_SQL, [Invoice.Status.FINALIZED.value, number, now, invoice.pk, DRAFT]
        )
        row = cursor.fetchone()
    if row is None:  # the caller holds the row lock and saw a draft
        raise RuntimeError(f"invoice {invoice.pk} changed under its lock")
    refresh_from_row(invoice, row)
    return invoice


def invoice_finalize(*, invoice_id: int | str, now: datetime | None = None) -> Invoice:
    """Draft → finalized: the invoice gets the next gapless number of its year
    (``INV-2026-000042``, credit notes ``CN-2026-000001``) and becomes immutable (the database
    refuses any later change but the move to paid or void).

    Finalizing a finalized invoice returns it unchanged; a paid or void one is
    ``InvoiceNotDraft`` (409). Concurrent calls on one invoice serialize on its row lock."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = _invoice_lock(invoice_id)
        if invoice.status == Invoice.Status.FINALIZED:
            return invoice
        if invoice.status != Invoice.Status.DRAFT:
            raise InvoiceNotDraft(f"Invoice {invoice} is {invoice.status}; it cannot be finalized.")
        invoice = _refresh_draft(invoice)
        return _finalize_locked(invoice, now)


def invoices_finalize_due(
    *, now: datetime | None = None, batch: int = 500, failures: list[RunFailure] | None = None
) -> list[int]:
    """Finalize every draft whose grace period (``INVOICE_GRACE_HOURS`` after ``issued_at``)
    has passed, oldest first; returns the ids it finalized.

    Each invoice is finalized in its own transaction, locked with ``SKIP LOCKED`` and
    re-checked under the lock: two runs at once never finalize one invoice twice (one skips
    what the other holds), a crash loses at most the invoice in flight, and running again
    finalizes what is left. One whose finalization fails stays a draft, is logged and
    recorded as an alert (appended to ``failures`` when given), and the others go on."""
    from billing.services.billing_run import plan_cache  # it imports this module

    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.BILLFOLD.get("INVOICE_GRACE_HOURS", 24))
    finalized: list[int] = []
    last = 0
    alerted = run_failures_open(kind=Alert.Kind.FINALIZE_FAILED)
    with plan_cache():  # plan versions and prices read once for all of them
        while True:
            ids = list(
                Invoice.objects.filter(
                    status=Invoice.Status.DRAFT, issued_at__lte=cutoff, pk__gt=last
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                run_failures_resolve(
                    kind=Alert.Kind.FINALIZE_FAILED, ids=alerted.intersection(finalized)
                )
                return finalized
            for pk in ids:
                try:
                    with transaction.atomic():
                        locked = rows_as(Invoice, _DUE_LOCK_SQL, [pk, DRAFT, cutoff], binary=True)
                        if not locked:  # finalized meanwhile, or another run holds it
                            continue
                        _finalize_locked(_refresh_draft(locked[0]), now)
                except Exception as exc:
                    failure = run_failure_record(
                        kind=Alert.Kind.FINALIZE_FAILED, exc=exc, invoice_id=pk
                    )
                    if failures is not None:
                        failures.append(failure)
                    continue
                finalized.append(pk)
            last = ids[-1]


def invoice_void(*, invoice_id: int | str, now: datetime | None = None) -> Invoice:
    """Finalized → void. Voiding a void invoice returns it unchanged; a paid invoice is
    ``InvoicePaid`` (409: credit it instead), one with live credit notes
    ``InvoiceHasCreditNotes`` (void those first).

    A draft may be voided too: it is numbered and voided in the same transaction, so every
    number of the sequence stays accounted for (the register shows it as void) and a
    subscription period whose draft was voided is closed to late events, like any period
    whose invoice left draft."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = _invoice_lock(invoice_id)
        if invoice.status == Invoice.Status.VOID:
            return invoice
        if invoice.status == Invoice.Status.PAID:
            raise InvoicePaid(
                f"Invoice {invoice} is paid; it cannot be voided. Issue a credit note instead."
            )
        live_notes = invoice.credit_notes.exclude(status=Invoice.Status.VOID)
        if live_notes.exists():
            numbers = ", ".join(n or "?" for n in live_notes.values_list("number", flat=True))
            raise InvoiceHasCreditNotes(
                f"Invoice {invoice} has credit notes ({numbers}); void them first."
            )
        if invoice.status == Invoice.Status.DRAFT:
            invoice = _finalize_locked(invoice, now)
        Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID, voided_at=now)
        invoice.refresh_from_db()
    return invoice


def _reference_check(reference: object) -> str:
    text = reference.strip() if isinstance(reference, str) else ""
    if not text:
        raise ValidationFailed(
            "A payment reference is required.", errors={"reference": ["This field is required."]}
        )
    if len(text) > 255:
        raise ValidationFailed(
            "The payment reference is too long.", errors={"reference": ["At most 255 characters."]}
        )
    return text


def invoice_mark_paid(
    *, invoice_id: int | str, reference: str, now: datetime | None = None
) -> Invoice:
    """Finalized → paid with the payment's reference (required). Marking a paid invoice paid
    with the same reference returns it unchanged; with another reference it is
    ``InvoicePaid`` (409). Drafts and void invoices are ``InvoiceNotFinalized`` (409)."""
    reference = _reference_check(reference)
    now = now or timezone.now()
    with transaction.atomic():
        invoice = _invoice_lock(invoice_id)
        if invoice.status == Invoice.Status.PAID:
            if invoice.payment_reference == reference:
                return invoice
            raise InvoicePaid(
                f"Invoice {invoice} was already paid (reference {invoice.payment_reference!r})."
            )
        if invoice.status != Invoice.Status.FINALIZED:
            hint = " Finalize it first." if invoice.status == Invoice.Status.DRAFT else ""
            raise InvoiceNotFinalized(
                f"Invoice {invoice} is {invoice.status}; only a finalized invoice can be paid."
                + hint
            )
        Invoice.objects.filter(pk=invoice.pk).update(
            status=Invoice.Status.PAID, paid_at=now, payment_reference=reference
        )
        invoice.refresh_from_db()
    return invoice


# --- credit notes ---------------------------------------------------------------------------------


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
    pk = _invoice_pk(invoice_id)
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
        original = _invoice_lock(pk)
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
        note = _finalize_locked(note, now)
        if slot is not None:
            idempotency_store(slot, result={"invoice": note.pk}, status_code=201)
    return note


# --- one-off invoices -----------------------------------------------------------------------------

# a wallet payment only ever offsets a subscription's usage line (``arrears_lines``)
_ONE_OFF_LINE_KINDS = frozenset(InvoiceLine.Kind.values) - {InvoiceLine.Kind.PAID_FROM_WALLET}


def _line_spec(raw: LineSpec | Mapping[str, Any], index: int, decimals: int) -> LineSpec:
    if isinstance(raw, LineSpec):
        return raw
    where = f"lines[{index}]"
    if not isinstance(raw, Mapping):
        raise ValidationFailed("Invalid line.", errors={where: ["An object."]})
    errors: dict[str, list[str]] = {}
    kind = raw.get("kind", InvoiceLine.Kind.CREDIT_PURCHASE)
    if kind not in _ONE_OFF_LINE_KINDS:
        errors[f"{where}.kind"] = [f"One of {', '.join(sorted(_ONE_OFF_LINE_KINDS))}."]
    description = raw.get("description")
    text = description.strip() if isinstance(description, str) else ""
    if not text or len(text) > 500:
        errors[f"{where}.description"] = ["1–500 characters."]
    values: dict[str, Decimal | None] = {}
    for name, required in (("amount", True), ("quantity", False), ("unit_price", False)):
        value = raw.get(name)
        if value is None and not required:
            values[name] = None
            continue
        # a line's amount is money: at most the currency's places (a unit price may be finer)
        places = decimals if name == "amount" else AMOUNT_PLACES
        try:
            values[name] = check_amount(
                value, field=name, allow_zero=name != "amount", max_places=places
            )
        except ValidationFailed as exc:
            errors[f"{where}.{name}"] = [m for ms in exc.errors.values() for m in ms]
    if errors:
        raise ValidationFailed("Invalid line.", errors=errors)
    amount = values["amount"]
    assert amount is not None
    return LineSpec(
        kind=kind,
        description=text,
        amount_exact=amount,
        quantity=values["quantity"],
        unit_price=values["unit_price"],
        computation=dict(raw.get("computation") or {}),
    )


def invoice_one_off_create(
    *,
    customer: Customer,
    lines: Sequence[LineSpec | Mapping[str, Any]],
    kind: str = Invoice.Kind.ONE_OFF,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Invoice:
    """A one-off invoice (e.g. a credit purchase) in the customer's billing currency, as a
    draft that the schedule finalizes once its grace period has passed, like every other
    invoice. Lines are ``LineSpec``s or ``{"kind", "description", "amount", "quantity",
    "unit_price"}`` (kind defaults to ``credit_purchase``; an amount given as input has at most the
    currency's places, a ``LineSpec``'s exact amount is rounded once), tax is on the
    subtotal at the customer's rate. ``idempotency_key`` makes a retry return the same
    invoice."""
    if kind != Invoice.Kind.ONE_OFF:
        raise ValidationFailed(
            "Only one-off invoices are made here.", errors={"kind": ["Must be one_off."]}
        )
    if not isinstance(lines, list | tuple) or not lines:
        raise ValidationFailed("An invoice needs lines.", errors={"lines": ["At least one."]})
    decimals = customer.currency.decimals
    specs = [_line_spec(raw, index, decimals) for index, raw in enumerate(lines)]
    with transaction.atomic():
        slot = None
        if idempotency_key is not None:
            slot = idempotency_claim(
                scope="billing.one_off_invoice",
                key=idempotency_key,
                request={
                    "customer": customer.pk,
                    "lines": [
                        [s.kind, s.description, s.amount_exact, s.quantity, s.unit_price]
                        for s in specs
                    ],
                },
            )
            if slot.replay:
                return Invoice.objects.get(pk=slot.result["invoice"])
        invoice, _ = invoice_draft_create(
            customer=customer,
            currency=customer.currency_id,
            kind=Invoice.Kind.ONE_OFF,
            lines=specs,
            now=now,
        )
        if slot is not None:
            idempotency_store(slot, result={"invoice": invoice.pk}, status_code=201)
    return invoice


def invoice_credit_purchase_create(*, grant_id: str, now: datetime | None = None) -> Invoice:
    """The one-off invoice of a paid grant bought with money: one ``credit_purchase`` line of
    the grant's cost, in the cost's currency. Once per grant (a second call returns the same
    invoice)."""
    grant = Grant.objects.select_related("asset").filter(pk=grant_id).first()
    if grant is None:
        raise NotFound(f"Unknown grant '{grant_id}'.")
    if grant.purpose != Grant.Purpose.PAID or grant.cost is None:
        raise ValidationFailed(
            f"Grant {grant.pk} has no cost to invoice.",
            errors={"grant": ["Only a paid grant with a cost is invoiced."]},
        )
    customer = Customer.objects.select_related("currency").filter(wallet_id=grant.wallet_id).first()
    if customer is None:
        raise NotFound(f"Grant {grant.pk} belongs to no customer.")
    cost = grant.cost.amount
    currency = str(grant.cost.currency)
    unit_price = (cost / grant.amount).quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP)
    spec = LineSpec(
        kind=InvoiceLine.Kind.CREDIT_PURCHASE,
        description=f"{plain(grant.amount)} {grant.asset_id} (grant {grant.pk})"[:500],
        amount_exact=cost,
        quantity=grant.amount,
        unit_price=unit_price,
        computation={
            "grant": grant.pk,
            "asset": grant.asset_id,
            "quantity": plain(grant.amount),
            "cost": f"{plain(cost)} {currency}",
            "reference": grant.reference,
        },
    )
    with transaction.atomic():
        slot = idempotency_claim(
            scope="billing.credit_purchase", key=grant.pk, request={"grant": grant.pk}
        )
        if slot.replay:
            return Invoice.objects.get(pk=slot.result["invoice"])
        invoice, _ = invoice_draft_create(
            customer=customer,
            currency=currency,
            kind=Invoice.Kind.ONE_OFF,
            lines=[spec],
            now=now,
        )
        idempotency_store(slot, result={"invoice": invoice.pk}, status_code=201)
    return invoice
