"""``request_hash`` is the hash of one canonical JSON text, whichever encoder writes it:
stored hashes (a replay's check) were made with the standard library's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal

import pytest
from django.db import models
from hypothesis import given, settings
from hypothesis import strategies as st

from wallets.services.idempotency import _canonical, request_hash

pytestmark = pytest.mark.django_db  # the package's fixtures use the database


def reference(request) -> str:
    """The canonical form as it was first written."""
    body = json.dumps(_canonical(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
ASCII = st.text(st.characters(max_codepoint=127), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals(allow_nan=False)
    | TEXT
    | ASCII
    | st.datetimes(timezones=st.just(dt.UTC))
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(TEXT | ASCII, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500)
@given(st.dictionaries(ASCII | TEXT, VALUES, max_size=6))
def test_any_request_hashes_as_the_standard_librarys_canonical_json(request):
    assert request_hash(request) == reference(request)


@settings(max_examples=200)
@given(
    ASCII, ASCII, st.decimals(allow_nan=False, allow_infinity=False), st.dictionaries(ASCII, ASCII)
)
def test_an_events_request_hashes_as_before(event_id, customer, quantity, properties):
    request = {
        "id": event_id,
        "customer": customer,
        "meter": "llm_tokens",
        "quantity": quantity,
        "timestamp": None,
        "properties": properties,
    }
    assert request_hash(request) == reference(request)


class Colour(models.TextChoices):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int


def test_other_types_hash_as_the_standard_library_writes_them():
    for value in (
        uuid.UUID(int=3),
        Colour.RED,
        Point(1),
        2**64,
        -(2**70),
        "tab\\there \x7f del",
        "é",
        1e-05,
        {1: "an integer key"},
        {True: "a boolean key"},
        dt.date(2026, 1, 1),
    ):
        assert request_hash({"v": value}) == reference({"v": value}), value


def test_a_known_hash_is_unchanged():
    """The hash of a fixed request, as stored before orjson took part."""
    request = {"id": "e1", "customer": "acme", "meter": "m", "quantity": Decimal("1.50")}
    body = b'{"customer":"acme","id":"e1","meter":"m","quantity":"1.5"}'
    assert request_hash(request) == hashlib.sha256(body).hexdigest()
