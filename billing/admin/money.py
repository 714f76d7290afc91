"""Money actions of the admin: who may move money (``can_move_money``), the forms of the
customer's wallet actions and the fields they share with the credit note form, and how a
service's refusal reaches a form."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from djmoney.money import Money

from billing.models import Customer
from billing.staff import FINANCE
from core.errors import BillfoldError, IdempotencyConflict
from plans.models import Meter
from wallets.models import Asset
from wallets.services import check_amount
from wallets.services.grants import MAX_PRIORITY


def can_move_money(user) -> bool:
    """Whether ``user`` may top up, grant, adjust and void from the admin: Finance staff and
    superusers. Auditors (and any other staff) read only. Cached on the user object, which
    lives for one request."""
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_billfold_can_move_money", None)
    if cached is None:
        cached = user.groups.filter(name=FINANCE).exists()
        user._billfold_can_move_money = cached
    return cached


def new_form_key() -> str:
    """A fresh idempotency key for one rendering of a money form: submitting that form twice
    (a double click, a resubmit after "back") replays the first result instead of repeating
    it. The prefix keeps admin keys apart from any other caller's."""
    return f"admin-{uuid.uuid4().hex}"


def service_errors_to_form(form: forms.Form, exc: BillfoldError) -> None:
    """Show a service's refusal on the form: ``errors`` keyed by a form field land on that
    field, the rest (and a refusal without field errors, e.g. insufficient funds) above it."""
    if isinstance(exc, IdempotencyConflict):
        form.add_error(
            None,
            "This form was already submitted with other values. Open the form again to "
            "record another operation.",
        )
        return
    placed = False
    for key, texts in exc.errors.items():
        visible = key in form.fields and not form.fields[key].widget.is_hidden
        for text in texts:
            form.add_error(key if visible else None, text)
            placed = True
    if not placed:
        form.add_error(None, exc.detail)


class AssetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Asset) -> str:
        return f"{obj.code} — {obj.name}"


def asset_choices() -> forms.ModelChoiceField:
    # custom units first (a handful), then the ISO currencies
    return AssetChoiceField(queryset=Asset.objects.order_by("-kind", "code"), empty_label=None)


def amount_field(help_text: str) -> forms.CharField:
    """Amounts are text here and checked by the service (``check_amount``): one rule for the
    admin and the API, and no float on the way."""
    return forms.CharField(max_length=64, help_text=help_text)


def reason_field(help_text: str) -> forms.CharField:
    return forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=help_text,
    )


class WalletOperationForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=255)

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        self.customer = customer
        super().__init__(*args, **kwargs)
        if "asset" in self.fields:
            self.fields["asset"].initial = customer.currency_id


class TopUpForm(WalletOperationForm):
    asset = asset_choices()
    amount = amount_field("Paid value put into the wallet, in the asset's unit, e.g. 100.00.")
    cost_amount = forms.CharField(
        max_length=64,
        required=False,
        label="Cost",
        help_text="What the customer paid, if it differs from the amount (e.g. for credits).",
    )
    cost_currency = forms.ModelChoiceField(
        queryset=Asset.objects.filter(kind=Asset.Kind.CURRENCY).order_by("code"),
        required=False,
        label="Cost currency",
    )
    reference = forms.CharField(
        max_length=255, required=False, help_text="Payment or invoice reference, optional."
    )
    reason = reason_field("Why, for the audit trail (e.g. “wire transfer received 2026-03-02”).")

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        super().__init__(*args, customer=customer, **kwargs)
        self.fields["cost_currency"].initial = customer.currency_id

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        raw = (cleaned.get("cost_amount") or "").strip()
        currency: Asset | None = cleaned.get("cost_currency")
        cleaned["cost"] = None
        if raw:
            if currency is None:
                self.add_error("cost_currency", "The currency of the cost.")
                return cleaned
            try:
                value = check_amount(
                    raw, field="cost_amount", allow_zero=True, max_places=currency.decimals
                )
            except BillfoldError as exc:
                service_errors_to_form(self, exc)
                return cleaned
            cleaned["cost"] = Money(value, currency.code)
        return cleaned


class PromotionalGrantForm(WalletOperationForm):
    asset = asset_choices()
    amount = amount_field("Value granted, in the asset's unit.")
    priority = forms.IntegerField(
        min_value=0,
        max_value=MAX_PRIORITY,
        initial=1,
        help_text="Lower burns first; paid top-ups have 10.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="UTC. Empty: never expires.",
    )
    meters = forms.ModelMultipleChoiceField(
        queryset=Meter.objects.order_by("code"),
        to_field_name="code",
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        label="Only for meters",
        help_text="Empty: the credit pays for every meter.",
    )
    reference = forms.CharField(max_length=255, required=False, help_text="Optional.")
    reason = reason_field("Why, for the audit trail (e.g. “goodwill after the 2026-03 outage”).")


class AdjustmentForm(WalletOperationForm):
    asset = asset_choices()
    amount = amount_field(
        "Signed: a positive amount adds value (from the adjustments account); a negative one "
        "takes it out of the wallet's grants in burn-down order, all or nothing."
    )
    reason = reason_field("Required: why the balance is corrected.")


class GrantVoidForm(forms.Form):
    reason = reason_field("Required: why the grant is voided.")


@dataclass(frozen=True)
class Done:
    """What a money action did: the message for the user and whether it was new (a replayed
    form reports the first result again and is not audited twice)."""

    message: str
    new: bool = True
