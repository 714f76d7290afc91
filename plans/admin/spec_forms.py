"""The plan spec editor's forms: a plan spec as JSON text (numbers as exact Decimals) and
the service's errors placed on the form."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms

from core.errors import ValidationFailed

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
