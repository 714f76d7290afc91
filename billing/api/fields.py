"""Serializer fields for decimals as docs/api.md wants them: strings out, strings or integers in
(JSON numbers arrive as exact Decimals, never floats), checked by the same rules as the
services (finite, < 10^18, at most 12 places)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import ValidationFailed
from core.ids import CONTROL_MESSAGE, has_control_characters, id_problems
from core.numbers import WHOLE_TEXT
from core.text import fixed_text
from wallets.fields import AMOUNT_PLACES
from wallets.models import ASSET_CODE_RE
from wallets.services.amounts import check_amount, to_decimal


def decimal_str(value: Decimal | None, places: int | None = AMOUNT_PLACES) -> str | None:
    """A Decimal as API text: fixed ``places`` (12 for ledger amounts, an invoice's currency
    places for its money; ``fixed_text``), or at its stored places."""
    if value is None:
        return None
    if places is None:
        return format(Decimal(value), "f")
    return fixed_text(value, places)


@extend_schema_field({"type": "string", "format": "decimal", "example": "10.00"})
class DecimalString(serializers.Field):
    default_error_messages = {"invalid": 'A decimal number as a string, e.g. "10.00".'}

    def __init__(
        self,
        *,
        positive: bool = True,
        allow_zero: bool = False,
        signed: bool = False,
        places: int | None = AMOUNT_PLACES,
        **kwargs,
    ):
        self.positive = positive
        self.allow_zero = allow_zero
        self.signed = signed
        self.places = places
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> Decimal:
        try:
            if self.signed:
                number = to_decimal(data, field=self.field_name or "value")
                check_amount(abs(number), field=self.field_name or "value", allow_zero=True)
                return number
            return check_amount(
                data,
                field=self.field_name or "value",
                positive=self.positive,
                allow_zero=self.allow_zero,
            )
        except ValidationFailed as exc:
            messages = [m for ms in exc.errors.values() for m in ms] or [exc.detail]
            raise serializers.ValidationError(messages) from None

    def to_representation(self, value) -> str | None:
        return decimal_str(value, self.places)


OpenApiDecimal = OpenApiTypes.DECIMAL

CURRENCY_PATTERN = r"^[A-Z]{3}$"


@extend_schema_field(
    {
        "type": "string",
        "pattern": CURRENCY_PATTERN,
        "description": "An ISO 4217 currency code.",
        "example": "USD",
    }
)
class CurrencyCode(serializers.CharField):
    """An ISO 4217 code (``USD``). The services check that the currency exists; this field
    only says so in the schema."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)


@extend_schema_field(
    {
        "type": "string",
        "pattern": ASSET_CODE_RE,
        "description": "An asset's code: an ISO 4217 currency or a custom asset (`credits`).",
        "example": "credits",
    }
)
class AssetCode(serializers.CharField):
    """An asset's code, as ``wallets.models.ASSET_CODE_RE`` allows (in the schema)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with an offset, the API's every input time (events' ``timestamp``,
    grants' ``expires_at``...). DRF would read a naive time as UTC; here it is refused,
    since the sender's clock may not be."""

    default_error_messages = {"naive": "A time with an offset, e.g. 2026-01-05T10:00:00Z."}

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        return super().to_internal_value(value)


def parse_time(value: str, name: str) -> datetime:
    """A query parameter ``name`` (``since``, ``until``, ``at``) as an aware time:
    ``ValidationFailed`` unless it is ISO 8601 with an offset."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or timezone.is_naive(parsed):
        raise ValidationFailed(
            f"{name} must be an ISO 8601 time with an offset.", errors={name: ["Invalid time."]}
        )
    return parsed


class WholeNumber(serializers.IntegerField):
    """An integer as a JSON integer or a string of ASCII digits (``"10"``): like DRF's
    ``IntegerField``, which would also read other scripts' digits (``"١٠"``, ``"１０"``)
    through Python's ``int``. The same rule as decimal strings (``core.numbers``)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not WHOLE_TEXT.fullmatch(data.strip()):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string: a number or a boolean is refused, not turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ClientId(StrictCharField):
    """An id the client chooses, refused unless its URL can address it (``core.ids``):
    ``slash`` for ids routed as paths (events, holds, grants)."""

    def __init__(self, *, slash: bool = True, **kwargs) -> None:
        self.slash = slash
        kwargs.setdefault("max_length", 255)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        value = super().to_internal_value(data)  # without surrounding whitespace
        problems = id_problems(value, slash=self.slash)
        if not problems and has_control_characters(data):  # a trailing newline, say
            problems = [CONTROL_MESSAGE]
        if problems:
            raise serializers.ValidationError(problems)
        return value


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObject(serializers.Field):
    """A free-form JSON object (metadata, event properties). Numbers in it are the
    integrator's data: integers stay exact, other numbers become JSON floats."""

    default_error_messages = {"invalid": "A JSON object."}

    def to_internal_value(self, data) -> dict:
        from billing.api.parsers import FREE_FORM_DEPTH_MESSAGE, free_form_too_deep, plain_json

        if not isinstance(data, dict):
            self.fail("invalid")
        if free_form_too_deep(data):
            raise serializers.ValidationError(FREE_FORM_DEPTH_MESSAGE)
        return plain_json(data)

    def to_representation(self, value) -> dict:
        return value
