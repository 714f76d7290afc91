"""Meters: added by ``meter_create``; afterwards only the name changes."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from core.admin.service_forms import ServiceFormMixin, adopt_saved
from plans.models import CODE_RE, Meter
from plans.services import meter_create


class MeterAddForm(forms.ModelForm):
    """Field-level messages for what the table's check constraints would only report as
    "constraint violated"; ``meter_create`` validates again when it saves."""

    class Meta:
        model = Meter
        fields = ("code", "name", "unit", "aggregation", "event_property")

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        if not re.fullmatch(CODE_RE, code):
            raise forms.ValidationError(
                "1–64 letters, digits, _ . : or -, starting with a letter or digit."
            )
        return code

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
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

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Any]]:
        if obj is None:
            kwargs["form"] = MeterAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Meter | None = None) -> tuple[str, ...]:
        return ("code", "name", "unit", "aggregation", "event_property") + (
            ("created_at",) if obj is not None else ()
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Meter | None = None
    ) -> tuple[str, ...]:
        # events and prices refer to a meter by code and rely on what it measures
        if obj is None:
            return ()
        return ("code", "unit", "aggregation", "event_property", "created_at")

    def save_model(
        self, request: HttpRequest, obj: Meter, form: forms.ModelForm[Meter], change: bool
    ) -> None:
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
