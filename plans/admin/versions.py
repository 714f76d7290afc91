"""Plan versions and their prices, read-only: a database trigger refuses to change them once
published."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from core.admin.formatting import EMPTY, amount_html, format_amount
from core.admin.links import link
from core.admin.permissions import ReadOnlyAdminMixin, ReadOnlyInline
from plans.admin.display import (
    VersionCounts,
    decimal_or_none,
    price_terms,
    subscriptions_link,
)
from plans.models import Plan, PlanVersion, Price

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class PriceInline(ReadOnlyInline):
    model = Price
    fields = ("position", "meter", "filter", "included_display", "model", "terms")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Price]:
        return (
            super()
            .get_queryset(request)
            .select_related("meter__unit", "asset", "plan_version__plan")
        )

    @admin.display(description="Included per period")
    def included_display(self, obj: Price) -> str:
        return amount_html(obj.included, obj.meter.unit)

    @admin.display(description="Terms")
    def terms(self, obj: Price) -> str:
        return price_terms(obj)


@admin.register(PlanVersion)
class PlanVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "name",
        "currency",
        "interval",
        "base_fee_display",
        "base_fee_timing",
        "seat_price_display",
        "trial_days",
        "subscriptions_count",
        "created_at",
    )
    list_select_related = ("plan", "currency")
    list_filter = (
        "interval",
        ("currency", admin.RelatedOnlyFieldListFilter),
        ("plan", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("plan__code", "plan__name", "name")
    fields = (
        "plan_display",
        "version",
        "name",
        "currency",
        "interval",
        "base_fee_display",
        "base_fee_timing",
        "seat_price_display",
        "trial_days",
        "subscriptions_count",
        "created_at",
    )
    readonly_fields = fields
    inlines = (PriceInline,)

    def get_queryset(
        self, request: HttpRequest
    ) -> QuerySet[PlanVersion, WithAnnotations[PlanVersion, VersionCounts]]:
        return super().get_queryset(request).annotate(subscription_count=Count("subscriptions"))

    @admin.display(description="Plan")
    def plan_display(self, obj: PlanVersion) -> str:
        return link(Plan, obj.plan_id, obj.plan.code)

    @admin.display(description="Base fee", ordering="base_fee")
    def base_fee_display(self, obj: PlanVersion) -> str:
        return amount_html(obj.base_fee, obj.currency)

    @admin.display(description="Seat price", ordering="seat_price")
    def seat_price_display(self, obj: PlanVersion) -> str:
        return amount_html(obj.seat_price, obj.currency)

    @admin.display(description="Subscriptions", ordering="subscription_count")
    def subscriptions_count(self, obj: WithAnnotations[PlanVersion, VersionCounts]) -> str:
        return subscriptions_link(obj, obj.subscription_count)


@admin.register(Price)
class PriceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "version_display", "meter", "filter", "included_display", "terms")
    list_select_related = ("plan_version__plan", "meter__unit", "asset")
    list_filter = ("model", ("meter", admin.RelatedOnlyFieldListFilter))
    search_fields = ("plan_version__plan__code", "meter__code")
    fields = (
        "version_display",
        "position",
        "meter",
        "filter",
        "included_display",
        "model",
        "asset",
        "terms",
        "tiers_table",
    )
    readonly_fields = fields

    @admin.display(description="Plan version", ordering="plan_version")
    def version_display(self, obj: Price) -> str:
        return link(PlanVersion, obj.plan_version_id, str(obj.plan_version))

    @admin.display(description="Included per period", ordering="included")
    def included_display(self, obj: Price) -> str:
        return amount_html(obj.included, obj.meter.unit)

    @admin.display(description="Terms")
    def terms(self, obj: Price) -> str:
        return price_terms(obj)

    @admin.display(description="Tiers")
    def tiers_table(self, obj: Price) -> str:
        if not obj.tiers:
            return EMPTY
        rows = [
            (
                "∞" if t.get("up_to") is None else format_amount(decimal_or_none(t.get("up_to"))),
                format_amount(decimal_or_none(t.get("unit_price")), obj.asset.decimals),
                format_amount(decimal_or_none(t.get("flat_fee") or "0"), obj.asset.decimals),
            )
            for t in obj.tiers
            if isinstance(t, dict)
        ]
        return format_html(
            "<table><thead><tr><th>Up to</th><th>Unit price ({})</th><th>Flat fee ({})</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            obj.asset.code,
            obj.asset.code,
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )
