"""Back-office pages of the catalogue: meters, plans, plan versions and prices.

A plan version and its prices are immutable (a database trigger refuses UPDATE), so their pages
are read-only. A plan is added, and a new version of it published, from a JSON spec (docs/api.md's
plan body) by ``plan_create`` and ``plan_version_publish``, the services the API calls; the plan
page shows every version's prices as sentences and how many subscriptions are on each.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.errors import ValidationFailed
from wallets.admin import (
    EMPTY,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    ServiceFormMixin,
    adopt_saved,
    amount_html,
    change_url,
    changelist_link,
    format_amount,
    has_model_perm,
    link,
)

from .models import CODE_RE, Meter, Plan, PlanVersion, Price
from .pricing import describe_price
from .services import (
    meter_create,
    plan_create,
    plan_version_as_spec,
    plan_version_publish,
    price_spec,
)

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
        if not re.fullmatch(CODE_RE, code):
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
        return subscriptions_link(obj, obj.subscription_count)


# --- plans: the spec editor ---------------------------------------------------------------------

VERSIONS_SHOWN = 10
SPEC_MAX_CHARS = 200_000
NEW_PLAN_SPEC: dict[str, Any] = {
    "currency": "USD",
    "interval": "month",
    "base_fee": "0",
    "base_fee_timing": "in_advance",
    "seat_price": None,
    "trial_days": 0,
    "prices": [],
}


def subscriptions_link(version: PlanVersion, count: int) -> SafeString:
    """``count`` subscriptions, linked to the subscription list filtered to ``version`` (the
    subscription model is reached through the relation: ``plans`` does not import
    ``billing``)."""
    subscription = PlanVersion._meta.get_field("subscriptions").related_model
    label = f"{count} subscription" + ("" if count == 1 else "s")
    return changelist_link(subscription, label, plan_version=version.pk)


def _no_constant(name: str) -> Any:
    raise ValueError(f'{name} is not a number; write decimals as strings, e.g. "0.50"')


def spec_text(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False)


class SpecField(forms.CharField):
    """A plan spec as JSON text. Numbers become exact Decimals (never floats), NaN and
    Infinity are refused; what the spec means is the service's to check."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget",
            forms.Textarea(
                attrs={"rows": 28, "cols": 90, "spellcheck": "false", "class": "vLargeTextField"}
            ),
        )
        super().__init__(max_length=SPEC_MAX_CHARS, strip=False, **kwargs)

    def clean(self, value: Any) -> dict[str, Any]:
        text = super().clean(value)
        try:
            data = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise forms.ValidationError("The spec must be a JSON object.")
        return data


class PlanAddForm(forms.Form):
    code = forms.CharField(max_length=64, help_text="Fixed once created, e.g. pro.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        max_length=10_000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    spec = SpecField(label="Version 1 (JSON)")


class PlanVersionPublishForm(forms.Form):
    name = forms.CharField(
        max_length=200, required=False, help_text="Empty: the plan's name, e.g. “Pro 2026”."
    )
    spec = SpecField(label="New version (JSON)")


def spec_errors_to_form(form: forms.Form, exc: ValidationFailed) -> None:
    """The service's errors: those naming a visible field on it, the others (keyed like
    ``prices[0].tiers[1].up_to``) above the form, each with its key."""
    placed = False
    for key, texts in exc.errors.items():
        for text in texts:
            if key in form.fields and key != "spec":
                form.add_error(key, text)
            else:
                form.add_error(None, f"{key}: {text}")
            placed = True
    if not placed:
        form.add_error(None, exc.detail)


def filter_text(value: Any) -> str:
    if not value:
        return EMPTY
    if isinstance(value, dict):
        return ", ".join(f"{k} = {v}" for k, v in value.items())
    return str(value)


def price_sentence(price: Price) -> str:
    """``describe_price`` of a stored price, e.g. "1,000,000 tokens included, then USD
    0.000002 per token up to 10,000,000, then USD 0.0000015"."""
    try:
        spec = price_spec(price)
    except ValidationFailed:  # stored under older rules: say what it holds
        return price_terms(price)
    return describe_price(
        spec,
        included=price.included,
        unit=price.meter.unit_id,
        asset=price.asset_id,
        decimals=price.asset.decimals,
    )


def prices_table(version: PlanVersion) -> SafeString:
    prices = list(version.prices.all())
    if not prices:
        return format_html("<p>{}</p>", "No usage prices.")
    return format_html(
        "<table><thead><tr><th>Meter</th><th>Filter</th><th>Included per period</th>"
        "<th>Model</th><th>Price</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    price.meter.code,
                    filter_text(price.filter),
                    amount_html(price.included, price.meter.unit),
                    price.get_model_display(),
                    price_sentence(price),
                )
                for price in prices
            ),
        ),
    )


def version_heading(version: PlanVersion) -> SafeString:
    currency = version.currency
    terms = [
        version.get_interval_display(),
        format_html(
            "base fee {} {}",
            amount_html(version.base_fee, currency),
            version.get_base_fee_timing_display().lower(),
        ),
    ]
    if version.seat_price is not None:
        terms.append(format_html("{} per seat", amount_html(version.seat_price, currency)))
    if version.trial_days:
        terms.append(f"{version.trial_days}-day trial")
    return format_html(
        "<h4>{} · {} · {} · {}</h4>",
        link(PlanVersion, version.pk, f"v{version.version}"),
        version.name,
        format_html_join(", ", "{}", ((t,) for t in terms)),
        subscriptions_link(version, version.subscription_count),
    )


def versions_with_prices(plan: Plan):
    """The plan's versions, newest first, with their subscription counts and prices (three
    queries however many versions and prices)."""
    return (
        PlanVersion.objects.filter(plan=plan)
        .select_related("plan", "currency")
        .annotate(subscription_count=Count("subscriptions"))
        .prefetch_related(
            Prefetch(
                "prices",
                queryset=Price.objects.select_related("meter__unit", "asset").order_by(
                    "position", "id"
                ),
            )
        )
        .order_by("-version")
    )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """A plan is created together with its version 1 (``plan_create``) from the add page, and
    changed by publishing a new version (``plan_version_publish``) from its page; versions are
    never edited and subscriptions stay on theirs. Name, description and archiving are edited
    here."""

    change_form_template = "admin/plans/plan/change_form.html"

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

    fields = ("code", "name", "description", "archived_at", "created_at", "prices_by_version")
    readonly_fields = ("code", "created_at", "prices_by_version")

    def get_fields(self, request, obj=None):
        return self.fields if obj is not None else ("code", "name", "description")

    @admin.display(description="Prices by version")
    def prices_by_version(self, obj: Plan):
        versions = list(versions_with_prices(obj)[:VERSIONS_SHOWN])
        if not versions:
            return EMPTY
        total = obj.version_count if hasattr(obj, "version_count") else len(versions)
        more = (
            format_html(
                "<p>Showing the latest {} of {} versions: {}</p>",
                len(versions),
                total,
                changelist_link(PlanVersion, "all versions", plan__id__exact=obj.pk),
            )
            if total > len(versions)
            else ""
        )
        return format_html(
            "{}{}",
            format_html_join("", "{}{}", ((version_heading(v), prices_table(v)) for v in versions)),
            more,
        )

    # --- adding a plan and publishing versions --------------------------------------------------

    def get_urls(self):
        opts = self.opts
        publish = path(
            "<path:object_id>/publish/",
            self.admin_site.admin_view(self.publish_view),
            name=f"{opts.app_label}_{opts.model_name}_publish",
        )
        # before the default URLs: their "<path:object_id>/" would take this path
        return [publish, *super().get_urls()]

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(request, PlanVersion, "add")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"can_publish": self.has_publish_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def _page(self, request: HttpRequest, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/plans/plan/spec_form.html",
            {**self.admin_site.each_context(request), "opts": self.opts, **context},
        )

    def add_view(self, request, form_url="", extra_context=None):
        """Code, name, description and version 1 as a JSON spec → ``plan_create``."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PlanAddForm(request.POST or None, initial={"spec": spec_text(NEW_PLAN_SPEC)})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                version = plan_create(
                    code=data["code"],
                    name=data["name"],
                    description=data["description"],
                    spec=data["spec"],
                )
            except ValidationFailed as exc:
                spec_errors_to_form(form, exc)
            else:
                plan = version.plan
                self.log_addition(request, plan, "Added with version 1.")
                self.message_user(request, f"Plan {plan.code} added with version 1.")
                return HttpResponseRedirect(change_url(Plan, plan.pk))
        return self._page(
            request,
            title="Add plan",
            form=form,
            submit="Add plan",
            cancel_url=reverse("admin:plans_plan_changelist"),
            add=True,
        )

    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The latest version's spec, pre-filled, edited and published as the next version by
        ``plan_version_publish``; existing subscriptions stay on their version."""
        if not self.has_publish_permission(request):
            raise PermissionDenied
        plan = self.get_object(request, unquote(object_id))
        if plan is None:
            raise Http404("No such plan.")
        latest = versions_with_prices(plan).first()
        initial = plan_version_as_spec(latest) if latest is not None else NEW_PLAN_SPEC
        form = PlanVersionPublishForm(request.POST or None, initial={"spec": spec_text(initial)})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                version = plan_version_publish(plan=plan, spec=data["spec"], name=data["name"])
            except ValidationFailed as exc:
                spec_errors_to_form(form, exc)
            else:
                self.log_change(
                    request, plan, f"Published version {version.version} ({version.name})."
                )
                self.message_user(
                    request,
                    f"Published {plan.code} v{version.version}. Existing subscriptions stay on "
                    "their version.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url(Plan, plan.pk))
        return self._page(
            request,
            title=f"Publish a new version of {plan.code}",
            form=form,
            submit="Publish",
            original=plan,
            plan_url=change_url(Plan, plan.pk),
            cancel_url=change_url(Plan, plan.pk),
            latest=latest,
            latest_heading=version_heading(latest) if latest is not None else "",
            latest_prices=prices_table(latest) if latest is not None else "",
        )

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
