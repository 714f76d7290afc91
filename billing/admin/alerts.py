"""Alerts: spend-limit thresholds reached and limits exceeded, and what the billing run could
not process, until a later run resolves it."""

from __future__ import annotations

from django.contrib import admin

from billing.models import Alert, Invoice, Subscription
from core.admin.formatting import EMPTY
from core.admin.links import link
from core.admin.permissions import ReadOnlyAdminMixin


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
