"""Back-office pages of the catalogue: meters, plans, plan versions and prices.

A plan version and its prices are immutable (a database trigger refuses UPDATE), so their pages
are read-only; publishing a new version from the admin comes with the plan-version service.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin
from django.db.models import Count, Max, Q
from django.utils.html import format_html, format_html_join

from wallets.admin import (
    EMPTY,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    ServiceFormMixin,
    adopt_saved,
    amount_html,
    format_amount,
    link,
)

from .models import CODE_RE, Meter, Plan, PlanVersion, Price
from .services import meter_create

# subscriptions that still bill: canceled ones run to their period end
LIVE_STATUSES = ("trialing", "active", "canceled")


class MeterAddForm(forms.ModelForm):
    """Field-level messages for what the table's check constraints would only report as
    "constraint violated"; ``meter_create`` validates again when it saves."""

    class Meta:
        model = Meter
        fields = ("code", "name", "unit", "aggregation", "event_property")

    def clean_code(self):
        code = self.cleaned_data["code"]
        if not re.match(CODE_RE, code):
            raise forms.ValidationError(
                "1–64 letters, digits, _ . : or -, starting with a letter or digit."
            )
        return code

    def clean(self):
        cleaned = super().clean()
        unique_count = cleaned.get("aggregation") == Meter.Aggregation.UNIQUE_COUNT
        prop = cleaned.get("event_property")
        if unique_count and not prop:
            self.add_error("event_property", "unique_count needs the event property to count.")
        elif prop and not unique_count:
            self.add_error("event_property", "Only unique_count meters use a property.")
        return cleaned


@admin.register(Meter)
class MeterAdmin(ServiceFormMixin, admin.ModelAdmin):
    """Meters are added by ``meter_create``; afterwards only the name changes."""

    service_error_fields = {"property": "event_property"}
    list_display = ("code", "name", "unit", "aggregation", "event_property", "created_at")
    list_filter = ("aggregation",)
    search_fields = ("code", "name")
    autocomplete_fields = ("unit",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MeterAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ("code", "name", "unit", "aggregation", "event_property") + (
            ("created_at",) if obj is not None else ()
        )

    def get_readonly_fields(self, request, obj=None):
        # events and prices refer to a meter by code and rely on what it measures
        if obj is None:
            return ()
        return ("code", "unit", "aggregation", "event_property", "created_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        meter = meter_create(
            code=data["code"],
            name=data["name"],
            unit=data["unit"].code,
            aggregation=data["aggregation"],
            event_property=data.get("event_property"),
        )
        adopt_saved(obj, meter)


# --- plans and versions -------------------------------------------------------------------------


class PlanVersionInline(ReadOnlyInline):
    model = PlanVersion
    fields = (
        "version",
        "name",
        "currency",
        "interval",
        "base_fee_display",
        "subscriptions_count",
        "created_at",
    )
    readonly_fields = fields
    ordering = ("-version",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("plan", "currency")
            .annotate(subscription_count=Count("subscriptions"))
        )

    @admin.display(description="Base fee")
    def base_fee_display(self, obj: PlanVersion):
        return amount_html(obj.base_fee, obj.currency)

    @admin.display(description="Subscriptions")
    def subscriptions_count(self, obj: PlanVersion):
        return obj.subscription_count


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """A plan is created together with its version 1 (``plans.services.plan_create``, through
    the API for now); adding plans here comes with the version editor. Name, description and
    archiving are edited here."""

    list_display = (
        "code",
        "name",
        "latest_version",
        "versions_count",
        "live_subscriptions",
        "created_at",
        "archived_at",
    )
    list_filter = (("archived_at", admin.EmptyFieldListFilter),)
    search_fields = ("code", "name")
    inlines = (PlanVersionInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest=Max("versions__version"),
                version_count=Count("versions", distinct=True),
                live_count=Count(
                    "versions__subscriptions",
                    filter=Q(versions__subscriptions__status__in=LIVE_STATUSES),
                ),
            )
        )

    fields = ("code", "name", "description", "archived_at", "created_at")
    readonly_fields = ("code", "created_at")

    def has_add_permission(self, request):
        return False

    @admin.display(description="Latest version", ordering="latest")
    def latest_version(self, obj: Plan):
        return EMPTY if obj.latest is None else f"v{obj.latest}"

    @admin.display(description="Versions", ordering="version_count")
    def versions_count(self, obj: Plan):
        return obj.version_count

    @admin.display(description="Live subscriptions", ordering="live_count")
    def live_subscriptions(self, obj: Plan):
        return obj.live_count


def _decimal(value) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def price_terms(price: Price) -> str:
    """What a price charges, in words: ``0.000002 USD per unit``, ``0.50 USD per 10 units``,
    ``up to 10,000,000: 0.000002 USD; above: 0.0000015 USD``."""
    asset = price.asset
    code = asset.code
    if price.model == Price.Model.PER_UNIT:
        return f"{format_amount(price.unit_price, asset.decimals)} {code} per unit"
    if price.model == Price.Model.PACKAGE:
        return (
            f"{format_amount(price.package_price, asset.decimals)} {code} "
            f"per {format_amount(price.package_size)} units"
        )
    parts = []
    for tier in price.tiers or []:
        if not isinstance(tier, dict):
            continue
        up_to = _decimal(tier.get("up_to"))
        unit_price = _decimal(tier.get("unit_price"))
        flat_fee = _decimal(tier.get("flat_fee"))
        bound = "above" if up_to is None else f"up to {format_amount(up_to)}"
        text = f"{bound}: {format_amount(unit_price, asset.decimals)} {code}"
        if flat_fee:
            text += f" + {format_amount(flat_fee, asset.decimals)} {code} flat"
        parts.append(text)
    return f"{price.get_model_display()}: " + "; ".join(parts)


class PriceInline(ReadOnlyInline):
    model = Price
    fields = ("position", "meter", "filter", "included_display", "model", "terms")
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("meter__unit", "asset", "plan_version__plan")
        )

    @admin.display(description="Included per period")
    def included_display(self, obj: Price):
        return amount_html(obj.included, obj.meter.unit)

    @admin.display(description="Terms")
    def terms(self, obj: Price):
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

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(subscription_count=Count("subscriptions"))

    @admin.display(description="Plan")
    def plan_display(self, obj: PlanVersion):
        return link(Plan, obj.plan_id, obj.plan.code)

    @admin.display(description="Base fee", ordering="base_fee")
    def base_fee_display(self, obj: PlanVersion):
        return amount_html(obj.base_fee, obj.currency)

    @admin.display(description="Seat price", ordering="seat_price")
    def seat_price_display(self, obj: PlanVersion):
        return amount_html(obj.seat_price, obj.currency)

    @admin.display(description="Subscriptions", ordering="subscription_count")
    def subscriptions_count(self, obj: PlanVersion):
        return obj.subscription_count


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
    def version_display(self, obj: Price):
        return link(PlanVersion, obj.plan_version_id, str(obj.plan_version))

    @admin.display(description="Included per period", ordering="included")
    def included_display(self, obj: Price):
        return amount_html(obj.included, obj.meter.unit)

    @admin.display(description="Terms")
    def terms(self, obj: Price):
        return price_terms(obj)

    @admin.display(description="Tiers")
    def tiers_table(self, obj: Price):
        if not obj.tiers:
            return EMPTY
        rows = [
            (
                "∞" if t.get("up_to") is None else format_amount(_decimal(t.get("up_to"))),
                format_amount(_decimal(t.get("unit_price")), obj.asset.decimals),
                format_amount(_decimal(t.get("flat_fee") or "0"), obj.asset.decimals),
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
