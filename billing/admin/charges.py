"""Charge items (prorations, credits and accruals), read-only: written by the subscription
and billing services and moved onto invoices at period close."""

from __future__ import annotations

from django.contrib import admin

from billing.admin.display import customer_link, period_text
from billing.models import ChargeItem, Invoice, Subscription
from core.admin.formatting import amount_html
from core.admin.links import link
from core.admin.lists import EstimatedCountPaginator, IndexedSearchMixin, selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin


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
