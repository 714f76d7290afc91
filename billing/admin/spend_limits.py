"""Spend limits (edited on their own page and inline on the customer page) and the spend
counters the charging service keeps per window."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin

from billing.admin.display import customer_link
from billing.models import SpendCounter, SpendLimit
from core.admin.formatting import EMPTY, amount_html
from core.admin.lists import selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin


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


@admin.register(SpendCounter)
class SpendCounterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("customer", "window", "window_start", "window_end", "spent")
    list_select_related = ("customer",)
    list_filter = ("window",)
    search_fields = ("=customer__external_id",)
