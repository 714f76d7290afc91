"""Subscriptions, read-only until subscribe / change plan / cancel run here as actions of
their services: a direct edit would bypass proration and allowances."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from billing.admin.display import customer_link, period_text
from billing.models import Invoice, Subscription, UsageEvent
from core.admin.formatting import EMPTY
from core.admin.links import changelist_link, link
from core.admin.lists import selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin, ReadOnlyInline
from plans.models import Plan, PlanVersion


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
