"""The serializer-free parse of plain events agrees with the serializer, and leaves every
other payload to it (so error messages are the serializer's)."""

from decimal import Decimal as D

import pytest

from billing.api.event_input import EventInputSerializer, parse_plain_event
from core.numbers import JsonFraction

PLAIN = [
    {"id": "e1", "customer": "acme", "meter": "llm_tokens"},
    {"id": "e2", "customer": "acme", "meter": "llm_tokens", "quantity": "1000"},
    {"id": "e3", "customer": "acme", "meter": "m", "quantity": 2, "properties": {}},
    {"id": "e4", "customer": "c", "meter": "m", "quantity": "0", "properties": {"model": "x"}},
    {"id": "e5", "customer": "c", "meter": "m", "properties": {"n": D("3"), "f": D("1.5")}},
]

ELSEWHERE = [
    "not an object",
    {"id": " e1", "customer": "acme", "meter": "m"},  # the serializer trims
    {"id": "e1", "customer": "acme", "meter": "m" * 65},
    {"id": "e\x001", "customer": "acme", "meter": "m"},
    {"id": "é", "customer": "acme", "meter": "m"},
    {"id": "e1", "customer": "acme", "meter": "m", "quantity": True},
    {"id": "e1", "customer": "acme", "meter": "m", "quantity": None},
    {"id": "e1", "customer": "acme", "meter": "m", "quantity": "-1"},
    {"id": "e1", "customer": "acme", "meter": "m", "quantity": "abc"},
    {"id": "e1", "customer": "acme", "meter": "m", "quantity": JsonFraction("0.5")},
    {"id": "e1", "customer": "acme", "meter": "m", "quantity": "١٠"},
    {"id": "e1", "customer": "acme", "meter": "m", "quantity": "1e3"},
    {"id": "e1", "customer": "acme", "meter": "m", "properties": []},
    {"id": "e1", "customer": "acme", "meter": "m", "timestamp": "2026-01-01T00:00:00Z"},
    {"id": "e1", "customer": "acme", "meter": "m", "extra": 1},
    {"id": 5, "customer": "acme", "meter": "m"},
    {"customer": "acme", "meter": "m"},
]


def _fields(event):
    return (event.id, event.customer, event.meter, event.quantity, event.properties)


@pytest.mark.parametrize("payload", PLAIN)
def test_plain_events_parse_as_the_serializer_parses_them(payload):
    plain = parse_plain_event(payload)
    serializer = EventInputSerializer(data=payload)
    assert serializer.is_valid(), serializer.errors
    assert plain is not None
    assert _fields(plain) == _fields(serializer.to_event())
    assert plain.timestamp_given is False


@pytest.mark.parametrize("payload", ELSEWHERE)
def test_other_payloads_are_left_to_the_serializer(payload):
    assert parse_plain_event(payload) is None
