"""Back-office pages of the application: customers (with their wallet), subscriptions, usage,
spend limits, invoices, API keys and worker heartbeats.

Adds that need more than a row go through services: a customer is created with its wallet by
``customer_create``, an API key by ``api_key_create``. Usage events are money history and
read-only. Subscriptions and invoices are read-only here until their services (plan changes,
cancellation, finalize, void, mark paid, credit notes) are wired in as admin actions, because a
direct edit would bypass proration, allowances and invoice numbering.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import F, OuterRef, Subquery
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from billing.models import (
    ApiKey,
    ChargeItem,
    Customer,
    Heartbeat,
    Invoice,
    InvoiceLine,
    SpendLimit,
    Subscription,
    UsageEvent,
)
from billing.services.api_keys import api_key_create, api_key_revoke
from billing.services.customers import customer_create, customer_update
from plans.models import Meter, PlanVersion
from wallets.admin import (
    EMPTY,
    EstimatedCountPaginator,
    IndexedSearchMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    ServiceFormMixin,
    adopt_saved,
    amount_html,
    changelist_link,
    datetime_text,
    format_amount,
    has_model_perm,
    link,
    selected_object_filter,
    wallet_links,
    wallet_panel,
)
from wallets.models import Account, LedgerTransaction, Wallet


def period_text(start, end) -> str:
    if start is None and end is None:
        return EMPTY
    fmt = "%Y-%m-%d"
    return f"{start:{fmt}} → {end:{fmt}}" if start and end else f"{start or ''} → {end or ''}"


def customer_link(customer: Customer) -> str:
    return link(Customer, customer.pk, customer.external_id)


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


@admin.register(Customer)
class CustomerAdmin(ServiceFormMixin, admin.ModelAdmin):
    form = CustomerForm
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
            ("Wallet", {"fields": ("wallet_display", "wallet_balances")}),
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
        return (*fixed, "wallet_display", "wallet_balances", "activity", "created_at", "updated_at")

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
        return wallet_panel(obj.wallet)

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


# --- subscriptions ------------------------------------------------------------------------------


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only until subscribe / change plan / cancel run here as actions of their services."""

    list_display = (
        "id",
        "customer_display",
        "plan_version_display",
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


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = (
        "position",
        "kind",
        "description",
        "meter_display",
        "quantity_display",
        "unit_price_display",
        "amount_display",
        "period",
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

    @admin.display(description="Period")
    def period(self, obj: InvoiceLine):
        return period_text(obj.period_start, obj.period_end)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: invoices are generated by the billing run; finalize, void, mark paid and
    credit notes will be admin actions calling the invoice services, allowed by
    ``has_model_perm(request, Invoice, "change")``."""

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
    date_hierarchy = "created_at"
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
        "reason",
    )
    readonly_fields = fields
    inlines = (InvoiceLineInline,)

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
        return link(Invoice, obj.credit_note_for_id)


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
