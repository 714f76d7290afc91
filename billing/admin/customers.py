"""Customers with their wallet. A customer is created with its wallet by ``customer_create``
and edited through ``customer_update``; the page shows the wallet's balances and grants and,
for Finance staff and superusers (``can_move_money``), links to the wallet's money actions
(``billing.admin.customer_wallet``)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import F, OuterRef, Subquery
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from billing.admin.customer_wallet import CustomerWalletPages
from billing.admin.money import can_move_money
from billing.admin.spend_limits import SpendLimitInline
from billing.admin.subscriptions import SubscriptionInline
from billing.models import ChargeItem, Customer, Invoice, SpendLimit, Subscription, UsageEvent
from billing.services.customers import customer_create, customer_update
from core.admin.formatting import amount_html
from core.admin.links import changelist_link, link
from core.admin.service_forms import ServiceFormMixin, adopt_saved
from wallets.admin.panels import wallet_links, wallet_panel
from wallets.models import Account, Grant, Wallet


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


@admin.register(Customer)
class CustomerAdmin(CustomerWalletPages, ServiceFormMixin, admin.ModelAdmin):
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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"can_move_money": can_move_money(request.user), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)
