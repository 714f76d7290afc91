"""Usage events and the running usage counters: money history written by the charging
service, read-only. The events table is large: search is on exact indexed values and an
unfiltered list is counted from PostgreSQL's estimate."""

from __future__ import annotations

from django.contrib import admin

from billing.admin.display import customer_link
from billing.models import Subscription, UsageCounter, UsageEvent
from core.admin.formatting import EMPTY, amount_html, format_amount
from core.admin.links import link
from core.admin.lists import EstimatedCountPaginator, IndexedSearchMixin, selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin
from plans.models import Meter
from wallets.models import LedgerTransaction


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
