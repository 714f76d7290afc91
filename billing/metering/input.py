"""An event as the charge path takes it: ``event_data`` checks the fields an integrator
sends (``ValidationFailed`` names each bad one) and makes an ``EventData``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from core.errors import ValidationFailed
from wallets.services import request_hash

ZERO = Decimal(0)
PROPERTIES_MAX_CHARS = 16 * 1024  # as a customer's metadata


@dataclass(frozen=True)
class EventData:
    id: str
    customer: str
    meter: str
    quantity: Decimal
    timestamp: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    # False when the sender left the timestamp out (it defaulted to the time of receipt):
    # a retry of that body is the same request, so the default time is not part of its hash
    timestamp_given: bool = True

    def hash(self) -> str:
        return request_hash(
            {
                "id": self.id,
                "customer": self.customer,
                "meter": self.meter,
                "quantity": self.quantity,
                "timestamp": self.timestamp.isoformat() if self.timestamp_given else None,
                "properties": self.properties,
            }
        )


def event_data(
    *,
    id: str,
    customer: str,
    meter: str,
    quantity: Any = "1",
    timestamp: datetime | None = None,
    properties: dict | None = None,
    now: datetime | None = None,
) -> EventData:
    """Check an event's fields (``ValidationFailed`` names each bad one)."""
    from wallets.services.amounts import check_amount

    errors: dict[str, list[str]] = {}
    for name, value in (("id", id), ("customer", customer), ("meter", meter)):
        if not isinstance(value, str) or not value or len(value) > 255:
            errors[name] = ["1–255 characters."]
    try:
        qty = check_amount(quantity, field="quantity", allow_zero=True)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        qty = ZERO
    if timestamp is not None and timezone.is_naive(timestamp):
        errors["timestamp"] = ["A time with an offset."]
    if properties is not None and not isinstance(properties, dict):
        errors["properties"] = ["A JSON object."]
    elif properties and (problem := _properties_problem(properties)):
        errors["properties"] = [problem]
    elif properties and not _storable_text(properties):
        # PostgreSQL's jsonb refuses NUL and lone surrogates: say so here rather than fail
        # at the insert (a batch would stop half-way there)
        errors["properties"] = ["Text without NUL characters or lone surrogates."]
    if errors:
        raise ValidationFailed("Invalid event.", errors=errors)
    return EventData(
        id=id,
        customer=customer,
        meter=meter,
        quantity=qty,
        timestamp=timestamp or now or timezone.now(),
        properties=properties or {},
        timestamp_given=timestamp is not None,
    )


def _properties_problem(properties: dict) -> str | None:
    try:  # a number beyond a double's range became infinity (``plain_json``): JSON has none
        text = json.dumps(properties, default=str, allow_nan=False)
    except ValueError:
        return "Numbers within the range of a double (at most about 1.8e308)."
    if len(text) > PROPERTIES_MAX_CHARS:
        return f"At most {PROPERTIES_MAX_CHARS} characters of JSON."
    return None


def _storable_text(value: Any) -> bool:
    """Every string in ``value`` (keys included) is valid UTF-8 text without NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable_text(k) and _storable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable_text(v) for v in value)
    return True
