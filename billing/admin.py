"""Back-office pages of the application: customers (with their wallet), subscriptions, usage,
spend limits, invoices, API keys and worker heartbeats.

Adds that need more than a row go through services: a customer is created with its wallet by
``customer_create``, an API key by ``api_key_create``. Usage events are money history and
read-only. Subscriptions and invoices are read-only here until their services (plan changes,
cancellation, finalize, void, mark paid, credit notes) are wired in as admin actions, because a
direct edit would bypass proration, allowances and invoice numbering.

Money moves from the customer page: "Top up", "Grant promotional credits", "Adjust" and "Void"
are small form pages (``CustomerAdmin.get_urls``) that call the wallet services the API calls
(``grant_create``, ``wallet_adjust``, ``grant_void``), only for Finance staff and superusers
(``can_move_money``), each written to the customer's history. The customer's ledger has a
read-only page of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import get_content_type_for_model
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from djmoney.money import Money

from billing.invoicing import (
    credit_note_create,
    invoice_creditable,
    invoice_finalize,
    invoice_html,
    invoice_mark_paid,
    invoice_pdf,
    invoice_void,
)
from billing.models import (
    Alert,
    ApiKey,
    ChargeItem,
    Customer,
    Heartbeat,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    SpendCounter,
    SpendLimit,
    Subscription,
    UsageCounter,
    UsageEvent,
)
from billing.services.api_keys import api_key_create, api_key_revoke
from billing.services.customers import customer_create, customer_update
from billing.services.grants import customer_grant_create
from billing.staff import FINANCE
from plans.models import Meter, Plan, PlanVersion
from wallets.admin import (
    EMPTY,
    EstimatedCountPaginator,
    IndexedSearchMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    ServiceFormMixin,
    adopt_saved,
    amount_html,
    change_url,
    changelist_link,
    datetime_text,
    format_amount,
    has_model_perm,
    link,
    selected_object_filter,
    wallet_links,
    wallet_panel,
)
from wallets.errors import BillfoldError, IdempotencyConflict
from wallets.models import Account, Asset, Grant, LedgerTransaction, Wallet
from wallets.selectors import wallet_transactions
from wallets.services import check_amount, grant_create, grant_void, wallet_adjust
from wallets.services.grants import MAX_PRIORITY


def period_text(start, end) -> str:
    if start is None and end is None:
        return EMPTY
    fmt = "%Y-%m-%d"
    return f"{start:{fmt}} → {end:{fmt}}" if start and end else f"{start or ''} → {end or ''}"


def customer_link(customer: Customer) -> str:
    return link(Customer, customer.pk, customer.external_id)


# --- money actions: who, the forms, and how service errors reach them -----------------------


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


# --- customers ----------------------------------------------------------------------------------


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ("external_id", "name", "email", "currency", "tax_rate", "metadata")

    def clean_metadata(self):
        value = self.cleaned_data.get("metadata")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Metadata must be a JSON object, e.g. {"plan": "pro"}.')
        return value


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
    fk_name = "customer"
    fields = ("plan_version", "status", "seats", "overage", "period", "started_at")
    readonly_fields = fields
    ordering = ("-started_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan_version__plan")

    @admin.display(description="Current period")
    def period(self, obj: Subscription):
        return period_text(obj.current_period_start, obj.current_period_end)


class SpendLimitForm(forms.ModelForm):
    class Meta:
        model = SpendLimit
        fields = ("customer", "amount", "window", "mode", "alert_thresholds")
        help_texts = {"alert_thresholds": "Percents of the limit, comma-separated, e.g. 50,80,100."}

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is not None and amount <= 0:
            raise forms.ValidationError("The limit must be greater than 0.")
        return amount

    def clean_alert_thresholds(self):
        values = self.cleaned_data.get("alert_thresholds") or []
        bad = [v for v in values if not 1 <= v <= 100]
        if bad:
            raise forms.ValidationError("Each threshold is a percent from 1 to 100.")
        return sorted(set(values))

    def clean(self):
        cleaned = super().clean()
        customer = cleaned.get("customer")
        if customer is None and self.instance.customer_id is not None:
            customer = self.instance.customer
        amount = cleaned.get("amount")
        if customer is not None and amount is not None:
            places = customer.currency.decimals
            if amount != amount.quantize(Decimal(1).scaleb(-places)):
                self.add_error(
                    "amount",
                    f"At most {places} decimal places in {customer.currency_id}.",
                )
        return cleaned


class SpendLimitInline(admin.StackedInline):
    model = SpendLimit
    form = SpendLimitForm
    fields = ("amount", "window", "mode", "alert_thresholds")
    extra = 0
    max_num = 1


LEDGER_PAGE_SIZE = 50


@admin.register(Customer)
class CustomerAdmin(ServiceFormMixin, admin.ModelAdmin):
    """Customers with their wallet. Besides the form, the wallet's money actions and the
    ledger are pages of their own (``get_urls``); they parse a form, call one wallet service
    and log what was done in the customer's history."""

    form = CustomerForm
    change_form_template = "admin/billing/customer/change_form.html"
    list_display = (
        "external_id",
        "name",
        "email",
        "currency",
        "tax_rate",
        "available_balance",
        "created_at",
    )
    list_select_related = ("currency",)
    list_filter = (
        ("currency", admin.RelatedOnlyFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("external_id", "name", "email")
    search_help_text = "External id, name or email."
    date_hierarchy = "created_at"
    inlines = (SubscriptionInline, SpendLimitInline)

    def get_queryset(self, request):
        available = Account.objects.filter(
            wallet_id=OuterRef("wallet_id"), asset_id=OuterRef("currency_id")
        ).values_list(F("posted") - F("held"))[:1]
        return super().get_queryset(request).annotate(available=Subquery(available))

    def get_changeform_initial_data(self, request):
        return {"currency": "USD", **super().get_changeform_initial_data(request)}

    def get_fieldsets(self, request, obj=None):
        main = ("external_id", "name", "email", "currency", "tax_rate", "metadata")
        if obj is None:
            return ((None, {"fields": main}),)
        return (
            (None, {"fields": main}),
            ("Wallet", {"fields": ("wallet_display", self._panel_field(request))}),
            ("Activity", {"fields": ("activity",)}),
            ("Record", {"fields": ("created_at", "updated_at")}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fixed = ["external_id"]
        # the billing currency is fixed once something was billed in it
        if obj.subscriptions.exists() or obj.invoices.exists():
            fixed.append("currency")
        return (
            *fixed,
            "wallet_display",
            self._panel_field(request),
            "activity",
            "created_at",
            "updated_at",
        )

    @staticmethod
    def _panel_field(request) -> str:
        # a display method sees no request: the page picks the panel with or without actions
        return "wallet_with_actions" if can_move_money(request.user) else "wallet_balances"

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            editable = ("name", "email", "currency", "tax_rate", "metadata")
            customer_update(customer=obj, **{f: data[f] for f in editable if f in data})
            return
        customer = customer_create(
            external_id=data["external_id"],
            name=data["name"],
            email=data.get("email") or "",
            currency=data["currency"],
            tax_rate=data["tax_rate"],
            metadata=data.get("metadata") or {},
        )
        adopt_saved(obj, customer)

    @admin.display(description="Available", ordering="available")
    def available_balance(self, obj: Customer):
        return amount_html(obj.available or Decimal(0), obj.currency)

    @admin.display(description="Wallet")
    def wallet_display(self, obj: Customer):
        return link(Wallet, obj.wallet_id, obj.wallet.owner)

    @admin.display(description="Balances and grants")
    def wallet_balances(self, obj: Customer):
        ledger = format_html('<p><a href="{}">Ledger</a></p>', self._action_url("ledger", obj.pk))
        return format_html("{}{}", ledger, wallet_panel(obj.wallet))

    @admin.display(description="Balances and grants")
    def wallet_with_actions(self, obj: Customer):
        tools = format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            (
                (self._action_url(name, obj.pk), label)
                for name, label in (
                    ("top_up", "Top up"),
                    ("grant_promotional", "Grant promotional credits"),
                    ("adjust", "Adjust"),
                    ("ledger", "Ledger"),
                )
            ),
        )

        def void_link(grant: Grant) -> SafeString | str:
            if grant.status != Grant.Status.ACTIVE:
                return ""
            url = self._action_url("void_grant", obj.pk, quote(grant.pk))
            return format_html('<a href="{}">Void…</a>', url)

        return format_html("<p>{}</p>{}", tools, wallet_panel(obj.wallet, grant_action=void_link))

    @admin.display(description="Activity")
    def activity(self, obj: Customer):
        return format_html(
            "{} · {} · {} · {} · {}<br>{}",
            changelist_link(UsageEvent, "Usage events", customer=obj.pk),
            changelist_link(Subscription, "Subscriptions", customer=obj.pk),
            changelist_link(Invoice, "Invoices", customer=obj.pk),
            changelist_link(ChargeItem, "Charges not yet invoiced", customer=obj.pk, invoiced="no"),
            changelist_link(SpendLimit, "Spend limit", customer=obj.pk),
            wallet_links(obj.wallet),
        )

    # --- the wallet's pages ---------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        pages = [
            ("top-up/", self.top_up_view, "top_up"),
            ("grant-promotional/", self.grant_promotional_view, "grant_promotional"),
            ("adjust/", self.adjust_view, "adjust"),
            ("void-grant/<str:grant_id>/", self.void_grant_view, "void_grant"),
            ("ledger/", self.ledger_view, "ledger"),
        ]
        # before the default URLs: their "<path:object_id>/" would take these paths
        return [
            path(f"<path:object_id>/{route}", wrap(view), name=f"{info[0]}_{info[1]}_{name}")
            for route, view, name in pages
        ] + super().get_urls()

    def _action_url(self, name: str, object_id: Any, *args: Any) -> str:
        opts = self.opts
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_{name}", args=[quote(object_id), *args]
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"can_move_money": can_move_money(request.user), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def _customer(self, request: HttpRequest, object_id: str) -> Customer:
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("No such customer.")
        return customer

    def _money_customer(self, request: HttpRequest, object_id: str) -> Customer:
        if not can_move_money(request.user):
            raise PermissionDenied
        return self._customer(request, object_id)

    def _audit(self, request: HttpRequest, customer: Customer, marker: str, message: str) -> bool:
        """Write ``message`` to the customer's history unless an entry with ``marker`` (the
        grant or transaction it made) is there: a replayed form returns what its first submit
        did, and that submit logged it in the same transaction as the money moved (the replay
        waits on the idempotency key until that transaction commits)."""
        logged = LogEntry.objects.filter(
            content_type_id=get_content_type_for_model(customer).pk,
            object_id=str(customer.pk),
            change_message__contains=marker,
        ).exists()
        if not logged:
            self.log_change(request, customer, message)
        return not logged

    def _operation_page(
        self,
        request: HttpRequest,
        object_id: str,
        *,
        form_class: type[forms.Form],
        title: str,
        submit: str,
        perform: Callable[[HttpRequest, Customer, dict[str, Any]], Done],
        intro: str = "",
    ) -> HttpResponse:
        """GET: a fresh form (with a new idempotency key). POST: the service runs in one
        transaction with its audit entry; its refusal is shown on the form and nothing is
        written; success goes back to the customer with a message."""
        customer = self._money_customer(request, object_id)
        if request.method == "POST":
            form = form_class(request.POST, customer=customer)
            if form.is_valid():
                try:
                    with transaction.atomic():
                        done = perform(request, customer, form.cleaned_data)
                except BillfoldError as exc:
                    service_errors_to_form(form, exc)
                else:
                    level = messages.SUCCESS if done.new else messages.INFO
                    self.message_user(request, done.message, level)
                    return HttpResponseRedirect(change_url(Customer, customer.pk))
        else:
            form = form_class(customer=customer, initial={"idempotency_key": new_form_key()})
        return self._render_page(
            request,
            customer,
            "admin/billing/customer/wallet_operation.html",
            title=title,
            form=form,
            submit=submit,
            intro=intro,
            panel=wallet_panel(customer.wallet),
        )

    def _render_page(
        self, request: HttpRequest, customer: Customer, template: str, **context: Any
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": customer,
                "customer_url": change_url(Customer, customer.pk),
                **context,
            },
        )

    def top_up_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(request: HttpRequest, customer: Customer, data: dict[str, Any]) -> Done:
            asset: Asset = data["asset"]
            grant = grant_create(
                wallet_id=customer.wallet_id,
                asset=asset.code,
                amount=data["amount"],
                purpose=Grant.Purpose.PAID,
                cost=data["cost"],
                reference=data["reference"],
                idempotency_key=data["idempotency_key"],
                metadata={"reason": data["reason"], "actor": request.user.get_username()},
            )
            amount = f"{format_amount(grant.amount, asset.decimals)} {asset.code}"
            cost = grant.cost
            details = "".join(
                (
                    f", cost {format_amount(cost.amount, asset.decimals)} {cost.currency}"
                    if cost is not None
                    else "",
                    f", reference “{grant.reference}”" if grant.reference else "",
                )
            )
            new = self._audit(
                request,
                customer,
                f"paid grant {grant.pk}.",
                f"Top up: {amount}{details} as paid grant {grant.pk}. Reason: {data['reason']}",
            )
            if not new:
                return Done(f"This top-up was already recorded: {amount} ({grant.pk}).", False)
            return Done(f"Topped up {amount} for {customer} (grant {grant.pk}).")

        return self._operation_page(
            request,
            object_id,
            form_class=TopUpForm,
            title="Top up",
            submit="Top up",
            perform=perform,
            intro="A paid grant: value the customer paid for, burned after promotional credits "
            "of lower priority.",
        )

    def grant_promotional_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(request: HttpRequest, customer: Customer, data: dict[str, Any]) -> Done:
            asset: Asset = data["asset"]
            meters = [m.code for m in data["meters"]] or None
            grant = customer_grant_create(
                customer=customer,
                asset=asset.code,
                amount=data["amount"],
                purpose=Grant.Purpose.PROMOTIONAL,
                priority=data["priority"],
                expires_at=data["expires_at"],
                meters=meters,
                reference=data["reference"],
                idempotency_key=data["idempotency_key"],
                metadata={"reason": data["reason"], "actor": request.user.get_username()},
            )
            amount = f"{format_amount(grant.amount, asset.decimals)} {asset.code}"
            terms = "".join(
                (
                    f", priority {grant.priority}",
                    f", expires {datetime_text(grant.expires_at)}" if grant.expires_at else "",
                    f", only for {', '.join(grant.meters)}" if grant.meters else "",
                )
            )
            new = self._audit(
                request,
                customer,
                f"promotional grant {grant.pk}.",
                f"Granted {amount}{terms} as promotional grant {grant.pk}. "
                f"Reason: {data['reason']}",
            )
            if not new:
                return Done(f"This grant was already recorded: {amount} ({grant.pk}).", False)
            return Done(f"Granted {amount} of promotional credit to {customer} ({grant.pk}).")

        return self._operation_page(
            request,
            object_id,
            form_class=PromotionalGrantForm,
            title="Grant promotional credits",
            submit="Grant",
            perform=perform,
            intro="Free value (goodwill, trials, campaigns), booked against the promotional "
            "account.",
        )

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(request: HttpRequest, customer: Customer, data: dict[str, Any]) -> Done:
            asset: Asset = data["asset"]
            txn = wallet_adjust(
                wallet_id=customer.wallet_id,
                asset=asset.code,
                amount=data["amount"],
                reason=data["reason"],
                idempotency_key=data["idempotency_key"],
                actor=request.user.get_username(),
            )
            # the service accepted the amount, so it is a number
            signed = Decimal(data["amount"].strip())
            amount = f"{'+' if signed > 0 else ''}{format_amount(signed, asset.decimals)}"
            new = self._audit(
                request,
                customer,
                f"transaction #{txn.pk}.",
                f"Adjusted {asset.code} by {amount} in transaction #{txn.pk}. "
                f"Reason: {data['reason']}",
            )
            if not new:
                return Done(f"This adjustment was already recorded (transaction #{txn.pk}).", False)
            return Done(
                f"Adjusted {asset.code} by {amount} for {customer} (transaction #{txn.pk})."
            )

        return self._operation_page(
            request,
            object_id,
            form_class=AdjustmentForm,
            title="Adjust the balance",
            submit="Adjust",
            perform=perform,
        )

    def void_grant_view(self, request: HttpRequest, object_id: str, grant_id: str) -> HttpResponse:
        customer = self._money_customer(request, object_id)
        grant = (
            Grant.objects.select_related("asset")
            .filter(pk=unquote(grant_id), wallet_id=customer.wallet_id)
            .first()
        )
        if grant is None:
            raise Http404("No such grant in this customer's wallet.")
        form = GrantVoidForm(request.POST if request.method == "POST" else None)
        closed = grant.status != Grant.Status.ACTIVE  # nothing to void: no form, no call
        if not closed and request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            remaining = f"{format_amount(grant.remaining, grant.asset.decimals)} {grant.asset_id}"
            try:
                with transaction.atomic():
                    grant_void(
                        grant_id=grant.pk,
                        reason=f"{reason} (by {request.user.get_username()})",
                    )
                    new = self._audit(
                        request,
                        customer,
                        f"Voided grant {grant.pk}:",
                        f"Voided grant {grant.pk}: {remaining} removed. Reason: {reason}",
                    )
            except BillfoldError as exc:
                service_errors_to_form(form, exc)
            else:
                if new:
                    self.message_user(request, f"Voided grant {grant.pk}: {remaining} removed.")
                else:
                    self.message_user(
                        request, f"Grant {grant.pk} was already voided.", messages.INFO
                    )
                return HttpResponseRedirect(change_url(Customer, customer.pk))
        return self._render_page(
            request,
            customer,
            "admin/billing/customer/void_grant.html",
            title=f"Void grant {grant.pk}",
            form=None if closed else form,
            closed=closed,
            grant=grant,
            grant_amounts={
                "amount": amount_html(grant.amount, grant.asset),
                "remaining": amount_html(grant.remaining, grant.asset),
                "held": amount_html(grant.held, grant.asset),
            },
            submit="Void the grant",
        )

    def ledger_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The wallet's transactions, newest first, 50 a page, each with all its entries
        (both sides). Five queries whatever the page holds."""
        customer = self._customer(request, object_id)
        if not self.has_view_permission(request, customer):
            raise PermissionDenied
        wallet_id = customer.wallet_id
        query = wallet_transactions(wallet_id=wallet_id).prefetch_related(
            "entries__account", "entries__asset"
        )
        page = Paginator(query, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [
            {
                "txn": txn,
                "link": link(LedgerTransaction, txn.pk, f"#{txn.pk}"),
                "reverses": link(LedgerTransaction, txn.reverses_id, f"#{txn.reverses_id}"),
                "entries": [
                    {
                        "account": entry_side(entry.account, wallet_id),
                        "asset": entry.asset_id,
                        "amount": format_amount(entry.amount, entry.asset.decimals),
                        "grant": link(Grant, entry.grant_id),
                    }
                    for entry in txn.entries.all()
                ],
            }
            for txn in page.object_list
        ]
        return self._render_page(
            request,
            customer,
            "admin/billing/customer/ledger.html",
            title=f"Ledger of {customer}",
            page_obj=page,
            rows=rows,
            can_move_money=can_move_money(request.user),
            top_up_url=self._action_url("top_up", customer.pk),
        )


def entry_side(account: Account, wallet_id: int) -> SafeString | str:
    """Which side an entry is on: this wallet, another wallet (a transfer) or a system
    account (by its code)."""
    if account.wallet_id == wallet_id:
        return "Wallet"
    if account.wallet_id is not None:
        return link(Wallet, account.wallet_id, f"Wallet #{account.wallet_id}")
    return format_html("System: {}", account.system_code)


# --- subscriptions ------------------------------------------------------------------------------


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only until subscribe / change plan / cancel run here as actions of their services."""

    list_display = (
        "id",
        "customer_display",
        "plan_display",
        "version_display",
        "status",
        "seats",
        "overage",
        "period",
        "started_at",
    )
    list_select_related = ("customer", "plan_version__plan")
    list_filter = (
        "status",
        "overage",
        ("plan_version__plan", admin.RelatedOnlyFieldListFilter),
        selected_object_filter("plan_version", "plan version"),
        selected_object_filter("customer", "customer"),
    )
    search_fields = ("=customer__external_id", "customer__name", "=plan_version__plan__code")
    search_help_text = "Exact customer external id or plan code, or customer name."
    date_hierarchy = "started_at"
    fields = (
        "customer_display",
        "plan_version_display",
        "status",
        "seats",
        "overage",
        "started_at",
        "period",
        "trial_ends_at",
        "cancel_at_period_end",
        "canceled_at",
        "ended_at",
        "next_plan_version_display",
        "next_seats",
        "created_at",
        "related",
    )
    readonly_fields = fields

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_display(self, obj: Subscription):
        return customer_link(obj.customer)

    @admin.display(description="Plan version", ordering="plan_version")
    def plan_version_display(self, obj: Subscription):
        return link(PlanVersion, obj.plan_version_id, str(obj.plan_version))

    @admin.display(description="Plan", ordering="plan_version__plan__code")
    def plan_display(self, obj: Subscription):
        return link(Plan, obj.plan_version.plan_id, obj.plan_version.plan.code)

    @admin.display(description="Version", ordering="plan_version__version")
    def version_display(self, obj: Subscription):
        return link(PlanVersion, obj.plan_version_id, f"v{obj.plan_version.version}")

    @admin.display(description="Scheduled plan version")
    def next_plan_version_display(self, obj: Subscription):
        if obj.next_plan_version_id is None:
            return EMPTY
        return link(PlanVersion, obj.next_plan_version_id, str(obj.next_plan_version))

    @admin.display(description="Current period", ordering="current_period_start")
    def period(self, obj: Subscription):
        return period_text(obj.current_period_start, obj.current_period_end)

    @admin.display(description="Related")
    def related(self, obj: Subscription):
        return format_html(
            "{} · {}",
            changelist_link(Invoice, "Invoices of this customer", customer=obj.customer_id),
            changelist_link(UsageEvent, "Usage events of this customer", customer=obj.customer_id),
        )


# --- usage --------------------------------------------------------------------------------------


@admin.register(UsageEvent)
class UsageEventAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "event_id",
        "customer_display",
        "meter_display",
        "quantity_display",
        "timestamp",
        "status",
        "decline_code",
        "included_display",
        "billable_display",
        "amount_display",
        "accrued_display",
    )
    list_select_related = ("customer", "meter__unit", "asset")
    list_filter = (
        "status",
        "meter",
        selected_object_filter("customer", "customer"),
        ("timestamp", admin.DateFieldListFilter),
    )
    exact_search_fields = ("event_id", "customer__external_id")
    search_pk = False
    search_help_text = "Exact event id or customer external id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "event_id",
        "customer_display",
        "subscription_display",
        "meter_display",
        "quantity_display",
        "timestamp",
        "properties",
        "status",
        "decline_code",
        "period_start",
        "included_display",
        "billable_display",
        "amount_display",
        "accrued_display",
        "transaction_display",
        "received_at",
        "reversed_at",
    )
    readonly_fields = fields

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_display(self, obj: UsageEvent):
        return customer_link(obj.customer)

    @admin.display(description="Subscription")
    def subscription_display(self, obj: UsageEvent):
        return link(Subscription, obj.subscription_id)

    @admin.display(description="Meter", ordering="meter__code")
    def meter_display(self, obj: UsageEvent):
        return link(Meter, obj.meter_id, obj.meter.code)

    @admin.display(description="Quantity", ordering="quantity")
    def quantity_display(self, obj: UsageEvent):
        return amount_html(obj.quantity, obj.meter.unit)

    @admin.display(description="Included")
    def included_display(self, obj: UsageEvent):
        return amount_html(obj.included, obj.meter.unit)

    @admin.display(description="Billable")
    def billable_display(self, obj: UsageEvent):
        return amount_html(obj.billable, obj.meter.unit)

    @admin.display(description="Charged", ordering="amount")
    def amount_display(self, obj: UsageEvent):
        if obj.asset_id is None:
            return format_amount(obj.amount)
        return amount_html(obj.amount, obj.asset)

    @admin.display(description="Accrued to invoice")
    def accrued_display(self, obj: UsageEvent):
        if not obj.accrued:
            return EMPTY
        return amount_html(obj.accrued, obj.asset)

    @admin.display(description="Ledger transaction")
    def transaction_display(self, obj: UsageEvent):
        return link(LedgerTransaction, obj.ledger_transaction_id)


# --- spend limits -------------------------------------------------------------------------------


@admin.register(SpendLimit)
class SpendLimitAdmin(admin.ModelAdmin):
    form = SpendLimitForm
    list_display = (
        "customer_display",
        "limit_display",
        "window",
        "mode",
        "thresholds",
        "updated_at",
    )
    list_select_related = ("customer__currency",)
    list_filter = ("window", "mode", selected_object_filter("customer", "customer"))
    search_fields = ("=customer__external_id", "customer__name")
    autocomplete_fields = ("customer",)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("customer",)

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_display(self, obj: SpendLimit):
        return customer_link(obj.customer)

    @admin.display(description="Limit", ordering="amount")
    def limit_display(self, obj: SpendLimit):
        return amount_html(obj.amount, obj.customer.currency)

    @admin.display(description="Alerts at")
    def thresholds(self, obj: SpendLimit):
        return ", ".join(f"{t} %" for t in obj.alert_thresholds) or EMPTY


# --- invoices -----------------------------------------------------------------------------------


def computation_html(value: Any) -> SafeString | str:
    """A line's ``computation`` JSON as nested lists ("key: value"), escaped."""
    if isinstance(value, dict):
        if not value:
            return EMPTY
        items = format_html_join(
            "", "<li>{}: {}</li>", ((key, computation_html(item)) for key, item in value.items())
        )
        return format_html('<ul style="margin:0;padding-left:1.2em">{}</ul>', items)
    if isinstance(value, list):
        if not value:
            return "[]"
        items = format_html_join("", "<li>{}</li>", ((computation_html(item),) for item in value))
        return format_html('<ul style="margin:0;padding-left:1.2em">{}</ul>', items)
    return "null" if value is None else str(value)


class InvoiceLineInline(ReadOnlyInline):
    """The lines, with how each was computed: the exact amount before rounding beside the
    rounded one, and the ``computation`` the billing run recorded."""

    model = InvoiceLine
    fields = (
        "position",
        "kind",
        "description",
        "meter_display",
        "quantity_display",
        "unit_price_display",
        "amount_display",
        "exact_display",
        "period",
        "computation_display",
    )
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("meter", "invoice__currency")

    @admin.display(description="Meter")
    def meter_display(self, obj: InvoiceLine):
        return EMPTY if obj.meter_id is None else obj.meter.code

    @admin.display(description="Quantity")
    def quantity_display(self, obj: InvoiceLine):
        return format_amount(obj.quantity)

    @admin.display(description="Unit price")
    def unit_price_display(self, obj: InvoiceLine):
        return amount_html(obj.unit_price, obj.invoice.currency)

    @admin.display(description="Amount")
    def amount_display(self, obj: InvoiceLine):
        return amount_html(obj.amount, obj.invoice.currency)

    @admin.display(description="Exact, before rounding")
    def exact_display(self, obj: InvoiceLine):
        exact = format_amount(obj.amount_exact, obj.invoice.currency.decimals)
        if obj.amount_exact == obj.amount:
            return format_html('<span style="white-space:nowrap">{}</span>', exact)
        return format_html(
            '<span style="white-space:nowrap">{} → {}</span>',
            exact,
            format_amount(obj.amount, obj.invoice.currency.decimals),
        )

    @admin.display(description="Period")
    def period(self, obj: InvoiceLine):
        return period_text(obj.period_start, obj.period_end)

    @admin.display(description="How it was computed")
    def computation_display(self, obj: InvoiceLine):
        return computation_html(obj.computation)


class InvoiceMarkPaidForm(forms.Form):
    reference = forms.CharField(
        max_length=255,
        help_text="The payment's reference (bank transfer id, card charge, …); required.",
    )


class CreditNoteForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=255)
    description = forms.CharField(
        max_length=500, help_text="What is credited, as the customer reads it."
    )
    amount = amount_field("A positive amount in whole minor units of the invoice's currency.")
    reason = reason_field("Why the invoice is corrected (shown on the credit note).")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Invoices are written by services only, so the page has no edit form. Finance staff and
    superusers (``can_move_money``) finalize, void and mark paid through the list's actions
    and issue credit notes from the invoice's page; each calls the invoice service the API
    calls and is written to the invoice's history. Everyone who may view invoices downloads
    their PDF."""

    change_form_template = "admin/billing/invoice/change_form.html"
    list_display = (
        "number_display",
        "customer_display",
        "status",
        "kind",
        "period",
        "total_display",
        "currency",
        "issued_at",
        "due_at",
    )
    list_select_related = ("customer", "currency")
    list_filter = (
        "status",
        "kind",
        ("currency", admin.RelatedOnlyFieldListFilter),
        selected_object_filter("customer", "customer"),
    )
    search_fields = ("number", "=customer__external_id")
    search_help_text = "Invoice number or exact customer external id."
    date_hierarchy = "period_start"
    actions = ("finalize_invoices", "void_invoices", "mark_invoices_paid")
    fields = (
        "number_display",
        "customer_display",
        "subscription_display",
        "kind",
        "status",
        "currency",
        "period",
        "subtotal_display",
        "tax_rate",
        "tax_display",
        "total_display",
        "created_at",
        "issued_at",
        "due_at",
        "finalized_at",
        "paid_at",
        "payment_reference",
        "voided_at",
        "credit_note_for_display",
        "credit_notes_display",
        "reason",
    )
    readonly_fields = fields
    inlines = (InvoiceLineInline,)

    def has_money_permission(self, request: HttpRequest) -> bool:
        return can_move_money(request.user)

    # --- columns --------------------------------------------------------------------------------

    @admin.display(description="Number", ordering="number")
    def number_display(self, obj: Invoice):
        return str(obj)

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_display(self, obj: Invoice):
        return customer_link(obj.customer)

    @admin.display(description="Subscription")
    def subscription_display(self, obj: Invoice):
        return link(Subscription, obj.subscription_id)

    @admin.display(description="Period", ordering="period_start")
    def period(self, obj: Invoice):
        return period_text(obj.period_start, obj.period_end)

    @admin.display(description="Subtotal")
    def subtotal_display(self, obj: Invoice):
        return amount_html(obj.subtotal, obj.currency)

    @admin.display(description="Tax")
    def tax_display(self, obj: Invoice):
        return amount_html(obj.tax, obj.currency)

    @admin.display(description="Total", ordering="total")
    def total_display(self, obj: Invoice):
        return amount_html(obj.total, obj.currency)

    @admin.display(description="Credit note for")
    def credit_note_for_display(self, obj: Invoice):
        return link(Invoice, obj.credit_note_for_id, str(obj.credit_note_for or ""))

    @admin.display(description="Credit notes")
    def credit_notes_display(self, obj: Invoice):
        notes = obj.credit_notes.select_related("currency").order_by("pk")
        if not notes:
            return EMPTY
        return format_html_join(
            ", ",
            "{} ({}, {})",
            (
                (link(Invoice, n.pk, str(n)), amount_html(n.total, n.currency), n.status)
                for n in notes
            ),
        )

    # --- actions (Finance and superusers) -------------------------------------------------------

    def _apply(
        self,
        request: HttpRequest,
        queryset,
        *,
        verb: str,
        call: Callable[[Invoice], Invoice],
        target: str,
    ) -> None:
        """Call the service for each selected invoice in its own transaction, with its history
        entry; report what changed, what already was so, and what was refused (and why)."""
        changed: list[str] = []
        already: list[str] = []
        refused: list[str] = []
        for invoice in queryset.order_by("pk"):
            label = str(invoice)
            try:
                with transaction.atomic():
                    result = call(invoice)
                    if result.status == target and invoice.status != target:
                        self.log_change(request, result, f"{verb} ({label} → {result}).")
                        changed.append(str(result))
                    else:
                        already.append(str(result))
            except BillfoldError as exc:
                refused.append(f"{label}: {exc.detail}")
        if changed:
            self.message_user(request, f"{verb}: {', '.join(changed)}.", messages.SUCCESS)
        if already:
            self.message_user(request, f"Already {target}: {', '.join(already)}.", messages.INFO)
        for text in refused:
            self.message_user(request, f"Not {target}: {text}", messages.ERROR)

    def _confirm_page(
        self, request: HttpRequest, queryset, *, action: str, title: str, intro: str, form=None
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/billing/invoice/action.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "intro": intro,
                "invoices": list(queryset.select_related("customer", "currency").order_by("pk")),
                "form": form,
                "action": action,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "select_across": request.POST.get("select_across", "0"),
            },
        )

    @admin.action(description="Finalize the selected drafts", permissions=["money"])
    def finalize_invoices(self, request: HttpRequest, queryset) -> None:
        self._apply(
            request,
            queryset,
            verb="Finalized",
            target=Invoice.Status.FINALIZED,
            call=lambda invoice: invoice_finalize(invoice_id=invoice.pk),
        )

    @admin.action(description="Void the selected invoices…", permissions=["money"])
    def void_invoices(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        if "apply" in request.POST:
            self._apply(
                request,
                queryset,
                verb="Voided",
                target=Invoice.Status.VOID,
                call=lambda invoice: invoice_void(invoice_id=invoice.pk),
            )
            return None
        return self._confirm_page(
            request,
            queryset,
            action="void_invoices",
            title="Void invoices",
            intro="A void invoice stays in the register with its number and is owed no more. "
            "A draft is numbered and voided. Paid invoices are corrected with credit notes.",
        )

    @admin.action(description="Mark the selected invoices paid…", permissions=["money"])
    def mark_invoices_paid(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        form = InvoiceMarkPaidForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            reference = form.cleaned_data["reference"]
            self._apply(
                request,
                queryset,
                verb=f"Marked paid with reference “{reference}”",
                target=Invoice.Status.PAID,
                call=lambda invoice: invoice_mark_paid(invoice_id=invoice.pk, reference=reference),
            )
            return None
        return self._confirm_page(
            request,
            queryset,
            action="mark_invoices_paid",
            title="Mark invoices paid",
            intro="Records the payment of finalized invoices; the reference is kept with each.",
            form=form,
        )

    # --- the invoice's pages: PDF, printable HTML, credit note ---------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        pages = [
            ("pdf/", self.pdf_view, "pdf"),
            ("html/", self.html_view, "html"),
            ("credit-note/", self.credit_note_view, "credit_note"),
        ]
        # before the default URLs: their "<path:object_id>/" would take these paths
        return [
            path(f"<path:object_id>/{route}", wrap(view), name=f"{info[0]}_{info[1]}_{name}")
            for route, view, name in pages
        ] + super().get_urls()

    def _invoice(self, request: HttpRequest, object_id: str) -> Invoice:
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404("No such invoice.")
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        return invoice

    @staticmethod
    def _creditable(invoice: Invoice) -> bool:
        return invoice.kind != Invoice.Kind.CREDIT_NOTE and invoice.status in (
            Invoice.Status.FINALIZED,
            Invoice.Status.PAID,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if invoice is not None:
            opts = self.opts
            name = f"admin:{opts.app_label}_{opts.model_name}"
            extra["pdf_url"] = reverse(f"{name}_pdf", args=[quote(invoice.pk)])
            extra["html_url"] = reverse(f"{name}_html", args=[quote(invoice.pk)])
            if can_move_money(request.user) and self._creditable(invoice):
                extra["credit_note_url"] = reverse(f"{name}_credit_note", args=[quote(invoice.pk)])
        return super().change_view(request, object_id, form_url, extra)

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        invoice = self._invoice(request, object_id)
        name = (invoice.number or f"draft-{invoice.pk}").replace('"', "")
        return HttpResponse(
            invoice_pdf(invoice),
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )

    def html_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponse(invoice_html(self._invoice(request, object_id)))

    def credit_note_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not can_move_money(request.user):
            raise PermissionDenied
        invoice = self._invoice(request, object_id)
        back = change_url(Invoice, invoice.pk)
        if not self._creditable(invoice):
            self.message_user(
                request, f"{invoice} cannot be credited (it is {invoice.status}).", messages.ERROR
            )
            return HttpResponseRedirect(back)
        if request.method == "POST":
            form = CreditNoteForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    with transaction.atomic():
                        note = credit_note_create(
                            invoice_id=invoice.pk,
                            lines=[{"description": data["description"], "amount": data["amount"]}],
                            reason=data["reason"],
                            idempotency_key=data["idempotency_key"],
                        )
                        logged = LogEntry.objects.filter(
                            content_type_id=get_content_type_for_model(note).pk,
                            object_id=str(note.pk),
                        ).exists()
                        if not logged:
                            self.log_addition(
                                request, note, f"Credit note {note} for {invoice}: {note.reason}"
                            )
                except BillfoldError as exc:
                    exc.errors = {
                        ("amount" if key.endswith(".amount") else key.split(".")[-1]): texts
                        for key, texts in exc.errors.items()
                    }
                    service_errors_to_form(form, exc)
                else:
                    self.message_user(
                        request,
                        f"Credit note {note} issued for {invoice}: "
                        f"{format_amount(note.total, invoice.currency.decimals)} "
                        f"{invoice.currency_id}.",
                    )
                    return HttpResponseRedirect(change_url(Invoice, note.pk))
        else:
            form = CreditNoteForm(initial={"idempotency_key": new_form_key()})
        left_subtotal, left_tax = invoice_creditable(invoice=invoice)
        return TemplateResponse(
            request,
            "admin/billing/invoice/credit_note.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": invoice,
                "title": f"Credit note for {invoice}",
                "form": form,
                "invoice_url": back,
                "creditable": amount_html(left_subtotal, invoice.currency),
                "creditable_tax": amount_html(left_tax, invoice.currency),
                "tax_rate": format_amount(invoice.tax_rate),
            },
        )


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "invoice_display", "kind", "description", "amount_display")
    list_select_related = ("invoice__currency",)
    list_filter = ("kind", selected_object_filter("invoice", "invoice"))
    search_fields = ("=invoice__number", "description")
    fields = (
        "invoice_display",
        "position",
        "kind",
        "description",
        "meter",
        "quantity",
        "unit_price",
        "amount_display",
        "amount_exact",
        "period_start",
        "period_end",
        "computation",
    )
    readonly_fields = fields

    @admin.display(description="Invoice", ordering="invoice")
    def invoice_display(self, obj: InvoiceLine):
        return link(Invoice, obj.invoice_id, str(obj.invoice))

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: InvoiceLine):
        return amount_html(obj.amount, obj.invoice.currency)


class ChargeItemInvoicedFilter(admin.SimpleListFilter):
    title = "invoiced"
    parameter_name = "invoiced"

    def lookups(self, request, model_admin):
        return (("no", "Open (not invoiced yet)"), ("yes", "On an invoice"))

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(invoice__isnull=True)
        if self.value() == "yes":
            return queryset.filter(invoice__isnull=False)
        return queryset


@admin.register(ChargeItem)
class ChargeItemAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: prorations, credits and accruals are written by the subscription and billing
    services and moved onto invoices at period close."""

    list_display = (
        "id",
        "customer_display",
        "kind",
        "description",
        "amount_display",
        "period",
        "invoice_display",
        "created_at",
    )
    list_select_related = ("customer", "currency", "invoice")
    list_filter = (
        ChargeItemInvoicedFilter,
        "kind",
        selected_object_filter("customer", "customer"),
        selected_object_filter("invoice", "invoice"),
    )
    exact_search_fields = ("source", "customer__external_id")
    search_help_text = "Item id, exact source or exact customer external id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "customer_display",
        "subscription_display",
        "kind",
        "description",
        "quantity",
        "unit_price_display",
        "amount_display",
        "period",
        "source",
        "invoice_display",
        "computation",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_display(self, obj: ChargeItem):
        return customer_link(obj.customer)

    @admin.display(description="Subscription")
    def subscription_display(self, obj: ChargeItem):
        return link(Subscription, obj.subscription_id)

    @admin.display(description="Unit price")
    def unit_price_display(self, obj: ChargeItem):
        return amount_html(obj.unit_price, obj.currency)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: ChargeItem):
        return amount_html(obj.amount, obj.currency)

    @admin.display(description="Period", ordering="period_start")
    def period(self, obj: ChargeItem):
        return period_text(obj.period_start, obj.period_end)

    @admin.display(description="Invoice")
    def invoice_display(self, obj: ChargeItem):
        if obj.invoice_id is None:
            return "open"
        return link(Invoice, obj.invoice_id, str(obj.invoice))


# --- API keys -----------------------------------------------------------------------------------


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes")


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("active", "Active"), ("revoked", "Revoked"))

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceFormMixin, admin.ModelAdmin):
    """Keys are made by ``api_key_create``; the secret is shown once, on the page that answers
    the add form, and only its hash is stored. The hash is never shown."""

    list_display = (
        "name",
        "prefix",
        "scopes_display",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (ApiKeyStatusFilter,)
    search_fields = ("name", "=prefix")
    actions = ("revoke_selected",)
    readonly_fields = (
        "prefix",
        "scopes_display",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scopes")
        return ("name", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
        )
        adopt_saved(obj, key)
        request._api_key_raw = raw

    def response_add(self, request, obj, post_url_continue=None):
        """Show the key on this response itself (no redirect), so the secret never sits in a
        message cookie or the session waiting for the next page."""
        raw = getattr(request, "_api_key_raw", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        messages.success(
            request,
            format_html(
                "API key “{}” created. Copy it now, it will not be shown again: <code>{}</code>",
                obj.name,
                raw,
            ),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": obj,
            "scopes": self.scopes_display(obj),
        }
        return TemplateResponse(request, "admin/billing/apikey/created.html", context)

    @admin.action(description="Revoke selected keys", permissions=("revoke",))
    def revoke_selected(self, request, queryset):
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True).order_by("pk"):
            api_key_revoke(key=key)
            self.log_change(request, key, "Revoked.")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)

    def has_revoke_permission(self, request) -> bool:
        return has_model_perm(request, ApiKey, "change")

    @admin.display(description="Scopes")
    def scopes_display(self, obj: ApiKey):
        return ", ".join(obj.scopes) or EMPTY


# --- workers ------------------------------------------------------------------------------------


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "hostname", "last_seen_at", "age", "runs")
    fields = ("name", "hostname", "last_seen_at", "age", "runs")
    readonly_fields = fields

    @admin.display(description="Last seen")
    def age(self, obj: Heartbeat):
        seconds = max(0, int((timezone.now() - obj.last_seen_at).total_seconds()))
        if seconds < 120:
            return f"{seconds} s ago"
        if seconds < 7200:
            return f"{seconds // 60} min ago"
        return f"{seconds // 3600} h ago ({datetime_text(obj.last_seen_at)})"


@admin.register(UsageCounter)
class UsageCounterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Running totals per subscription, period and price (written by the charging service)."""

    list_display = (
        "subscription",
        "period_start",
        "price",
        "quantity",
        "included",
        "billable",
        "amount",
        "accrued",
        "events",
    )
    list_select_related = (
        "subscription__customer",
        "subscription__plan_version__plan",
        "price__meter",
    )
    list_filter = ("period_start",)
    search_fields = ("=subscription__customer__external_id",)
    date_hierarchy = "period_start"


@admin.register(SpendCounter)
class SpendCounterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("customer", "window", "window_start", "window_end", "spent")
    list_select_related = ("customer",)
    list_filter = ("window",)
    search_fields = ("=customer__external_id",)


class AlertOpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return (("yes", "Open (a run failure not resolved yet)"), ("no", "Resolved"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(kind__in=Alert.RUN_FAILURES, resolved_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Spend-limit thresholds reached and limits exceeded, once per window each; and what
    the billing run could not process (a period close, a rating, a finalization), with the
    reason, until a later run resolves it."""

    list_display = (
        "created_at",
        "customer",
        "kind",
        "threshold",
        "spent",
        "limit_amount",
        "currency",
        "event_id",
        "subscription_display",
        "invoice_display",
        "period_start",
        "reason_display",
        "attempts",
        "resolved_at",
    )
    list_select_related = ("customer",)
    list_filter = ("kind", AlertOpenFilter, "threshold")
    search_fields = ("=customer__external_id", "=event_id")
    date_hierarchy = "created_at"

    @admin.display(description="Subscription", ordering="subscription")
    def subscription_display(self, obj: Alert):
        return link(Subscription, obj.subscription_id)

    @admin.display(description="Invoice", ordering="invoice")
    def invoice_display(self, obj: Alert):
        return link(Invoice, obj.invoice_id)

    @admin.display(description="Reason")
    def reason_display(self, obj: Alert):
        if not obj.reason:
            return EMPTY
        first = obj.reason.splitlines()[0]
        return first if len(first) <= 120 else first[:119] + "…"


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("prefix", "year", "last")
    ordering = ("prefix", "-year")
