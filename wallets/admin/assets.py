"""Assets (ISO currencies and custom units) and their money rates. Staff add custom units
through ``asset_create``; a unit's code, kind and precision are fixed once it exists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db.models import ForeignKey, Model, QuerySet
from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.admin.options import InlineModelAdmin

from core.admin.formatting import EMPTY, amount_html, format_amount
from core.admin.service_forms import ServiceFormMixin, adopt_saved
from wallets.models import Asset, AssetRate
from wallets.services.assets import asset_create


class AssetRateInline(admin.TabularInline):
    model = AssetRate
    fk_name = "asset"
    fields = ("currency", "rate", "updated_at")
    readonly_fields = ("updated_at",)
    extra = 0
    verbose_name = "rate"
    verbose_name_plural = "Rates (money value of one unit)"


class AssetAddForm(forms.ModelForm):
    class Meta:
        model = Asset
        fields = ("code", "name", "decimals")


@admin.register(Asset)
class AssetAdmin(ServiceFormMixin, admin.ModelAdmin):
    """Staff add custom units (``asset_create``); ISO currencies come with the installation.
    Rates are edited inline."""

    list_display = ("code", "name", "kind", "decimals", "rates_display", "created_at")
    list_filter = ("kind",)
    search_fields = ("code", "name")
    ordering = ("kind", "code")
    inlines = (AssetRateInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Asset]:
        return super().get_queryset(request).prefetch_related("rates")

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Any]]:
        if obj is None:
            kwargs["form"] = AssetAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Asset | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("code", "name", "decimals")
        return ("code", "name", "kind", "decimals", "created_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Asset | None = None
    ) -> tuple[str, ...]:
        # a unit's identity and precision are fixed once it can appear in the ledger
        if obj is None:
            return ()
        return ("code", "kind", "decimals", "created_at")

    def get_inlines(
        self, request: HttpRequest, obj: Asset | None
    ) -> tuple[type[InlineModelAdmin[Any, Any]], ...]:
        if obj is not None and obj.is_currency:
            return ()
        return self.inlines

    def save_model(
        self, request: HttpRequest, obj: Asset, form: forms.ModelForm[Asset], change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        asset = asset_create(code=data["code"], name=data["name"], decimals=data["decimals"])
        adopt_saved(obj, asset)  # the rates inline is saved next, onto this asset

    @admin.display(description="Rates")
    def rates_display(self, obj: Asset) -> str:
        rates = list(obj.rates.all())
        if not rates:
            return EMPTY
        return ", ".join(f"{format_amount(r.rate)} {r.currency_id}" for r in rates)


@admin.register(AssetRate)
class AssetRateAdmin(admin.ModelAdmin):
    list_display = ("asset", "one_unit_is", "updated_at")
    list_filter = ("currency",)
    search_fields = ("asset__code", "asset__name")
    autocomplete_fields = ("asset",)
    list_select_related = ("currency",)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField[Any] | None:
        if db_field.name == "asset":
            kwargs["queryset"] = Asset.objects.filter(kind=Asset.Kind.CUSTOM)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="1 unit is", ordering="rate")
    def one_unit_is(self, obj: AssetRate) -> str:
        return amount_html(obj.rate, obj.currency)
