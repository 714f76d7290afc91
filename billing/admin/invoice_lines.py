"""Invoice lines with how each was computed: the exact amount before rounding beside the
rounded one, and the ``computation`` the billing run recorded."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from billing.admin.display import period_text
from billing.models import Invoice, InvoiceLine
from core.admin.formatting import EMPTY, amount_html, format_amount
from core.admin.links import link
from core.admin.lists import selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin, ReadOnlyInline


def computation_html(value: Any) -> SafeString | str:
    """A line's ``computation`` JSON as nested lists ("key: value"), escaped."""
    if isinstance(value, dict):
        if not value:
            return EMPTY
        items = format_html_join(
            "", "<li>{}: {}</li>", ((key, computation_html(item)) for key, item in value.items())
        )
        return format_html('<ul style="margin:0;padding-left:1.2em">{}</ul>', items)
    if isinstance(value, list):
        if not value:
            return "[]"
        items = format_html_join("", "<li>{}</li>", ((computation_html(item),) for item in value))
        return format_html('<ul style="margin:0;padding-left:1.2em">{}</ul>', items)
    return "null" if value is None else str(value)


class InvoiceLineInline(ReadOnlyInline):
    """The lines, with how each was computed: the exact amount before rounding beside the
    rounded one, and the ``computation`` the billing run recorded."""

    model = InvoiceLine
    fields = (
        "position",
        "kind",
        "description",
        "meter_display",
        "quantity_display",
        "unit_price_display",
        "amount_display",
        "exact_display",
        "period",
        "computation_display",
    )
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("meter", "invoice__currency")

    @admin.display(description="Meter")
    def meter_display(self, obj: InvoiceLine):
        return EMPTY if obj.meter_id is None else obj.meter.code

    @admin.display(description="Quantity")
    def quantity_display(self, obj: InvoiceLine):
        return format_amount(obj.quantity)

    @admin.display(description="Unit price")
    def unit_price_display(self, obj: InvoiceLine):
        return amount_html(obj.unit_price, obj.invoice.currency)

    @admin.display(description="Amount")
    def amount_display(self, obj: InvoiceLine):
        return amount_html(obj.amount, obj.invoice.currency)

    @admin.display(description="Exact, before rounding")
    def exact_display(self, obj: InvoiceLine):
        exact = format_amount(obj.amount_exact, obj.invoice.currency.decimals)
        if obj.amount_exact == obj.amount:
            return format_html('<span style="white-space:nowrap">{}</span>', exact)
        return format_html(
            '<span style="white-space:nowrap">{} → {}</span>',
            exact,
            format_amount(obj.amount, obj.invoice.currency.decimals),
        )

    @admin.display(description="Period")
    def period(self, obj: InvoiceLine):
        return period_text(obj.period_start, obj.period_end)

    @admin.display(description="How it was computed")
    def computation_display(self, obj: InvoiceLine):
        return computation_html(obj.computation)


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "invoice_display", "kind", "description", "amount_display")
    list_select_related = ("invoice__currency",)
    list_filter = ("kind", selected_object_filter("invoice", "invoice"))
    search_fields = ("=invoice__number", "description")
    fields = (
        "invoice_display",
        "position",
        "kind",
        "description",
        "meter",
        "quantity",
        "unit_price",
        "amount_display",
        "amount_exact",
        "period_start",
        "period_end",
        "computation",
    )
    readonly_fields = fields

    @admin.display(description="Invoice", ordering="invoice")
    def invoice_display(self, obj: InvoiceLine):
        return link(Invoice, obj.invoice_id, str(obj.invoice))

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: InvoiceLine):
        return amount_html(obj.amount, obj.invoice.currency)
