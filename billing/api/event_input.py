"""A usage event as the API receives it (``POST /events``, a batch's items, ``POST /holds``):
the serializer that words every error, a cheaper check of the common well-formed event that the
views and the usage fast path share, and the answer a charging outcome becomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers
from rest_framework.response import Response

from billing.api.errors import CONTENT_TYPE
from billing.api.fields import (
    AwareDateTimeField,
    ClientId,
    DecimalString,
    JSONObject,
    StrictCharField,
)
from billing.api.idempotency import REPLAYED
from billing.metering import EventData, Outcome, event_data
from core.errors import ValidationFailed
from core.ids import id_problems


class EventInputSerializer(serializers.Serializer):
    id = ClientId()
    customer = StrictCharField(max_length=255)
    meter = StrictCharField(max_length=64)
    quantity = DecimalString(allow_zero=True, required=False, default=None, places=None)
    timestamp = AwareDateTimeField(required=False, default=None)
    properties = JSONObject(required=False, default=dict)

    def to_event(self, now: datetime | None = None) -> EventData:
        """``now``: the time of receipt, an event's time when it gives none."""
        v = self.validated_data
        return event_data(
            id=v["id"],
            customer=v["customer"],
            meter=v["meter"],
            quantity=v["quantity"] if v["quantity"] is not None else "1",
            timestamp=v["timestamp"],
            properties=v["properties"],
            now=now,
        )


def outcome_response(outcome: Outcome) -> Response:
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    content_type = CONTENT_TYPE if outcome.status_code >= 400 else None
    return Response(
        outcome.body, status=outcome.status_code, headers=headers, content_type=content_type
    )


EVENT_FIELDS = frozenset(EventInputSerializer._declared_fields)


def plain_text(value: Any, max_length: int) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isprintable()
        and (value.isascii() and value == value.strip())
    )


def parse_plain_event(payload: Any, now: datetime | None = None) -> EventData | None:
    """The common well-formed event (ASCII ids, quantity as a string or an integer, no
    timestamp) checked without the serializer, which costs more than charging it. Anything
    else returns None and goes through the serializer, which words the errors."""
    if type(payload) is not dict or not payload.keys() <= EVENT_FIELDS or "timestamp" in payload:
        return None
    event_id, customer, meter = payload.get("id"), payload.get("customer"), payload.get("meter")
    if not (plain_text(event_id, 255) and plain_text(customer, 255) and plain_text(meter, 64)):
        return None
    if id_problems(event_id, slash=True):
        return None  # the serializer's ClientId words the error
    quantity = payload.get("quantity", "1")
    properties = payload.get("properties", {})
    if type(quantity) not in (str, int) or type(properties) is not dict:
        return None
    if properties:
        from billing.api.parsers import free_form_too_deep, plain_json

        if free_form_too_deep(properties):
            return None  # the serializer's JSONObject words the error
        properties = plain_json(properties)  # as the serializer's JSONObject does
    try:
        return event_data(
            id=event_id,
            customer=customer,
            meter=meter,
            quantity=quantity,
            properties=properties,
            now=now,
        )
    except ValidationFailed:
        return None


def parse_event(payload: Any, now: datetime | None = None) -> EventData:
    plain = parse_plain_event(payload, now)
    if plain is not None:
        return plain
    data = EventInputSerializer(data=payload)
    data.is_valid(raise_exception=True)
    return data.to_event(now)


class BalanceAvailableSerializer(serializers.Serializer):
    asset = serializers.CharField()
    available = DecimalString(signed=True)
