"""One-off invoices (docs/invoices.md): a customer's invoice of given lines, and the invoice
of a paid grant bought with money. Drafts, finalized by the schedule once their grace period
has passed, like every other invoice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction

from billing.invoicing.drafts import invoice_draft_create
from billing.invoicing.lines import LineSpec
from billing.models import Customer, Invoice, InvoiceLine
from core.errors import NotFound, ValidationFailed
from core.text import plain
from wallets.fields import AMOUNT_PLACES
from wallets.models import Grant
from wallets.services.amounts import check_amount
from wallets.services.idempotency import idempotency_claim, idempotency_store

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
