"""The API's renderer writes what DRF's JSONRenderer writes, faster where it can."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections import OrderedDict
from decimal import Decimal

import pytest
from django.db import models
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from billing.api.renderers import PlainJSONRenderer, plain_json_bytes

drf = JSONRenderer()
fast = PlainJSONRenderer()

# every text (control characters, quotes, backslashes, U+2028, astral characters), integers
# of any size, booleans and null, nested
TEXT = st.text(st.characters(exclude_categories=("Cs",)))
PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=500)
@given(PLAIN)
def test_plain_values_render_to_drfs_exact_bytes(value):
    assert fast.render(value) == drf.render(value)


@settings(max_examples=300)
@given(
    st.recursive(
        st.floats(allow_nan=False, allow_infinity=False) | PLAIN,
        lambda i: st.lists(i, max_size=4),
        max_leaves=20,
    )
)
def test_floats_render_to_the_same_numbers(value):
    assert json.loads(fast.render([value])) == json.loads(drf.render([value]))


class Colour(models.TextChoices):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        {"amount": Decimal("1.50")},
        {"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        {"day": dt.date(2026, 1, 1)},
        {"status": Colour.RED},
        OrderedDict(a=1),
        {"big": 2**70},
        {1: "integer key"},
    ],
)
def test_what_orjson_would_write_differently_goes_to_drf(value):
    assert plain_json_bytes(value) is None
    assert fast.render(value) == drf.render(value)


def test_a_uuid_is_written_as_drf_writes_it():
    value = {"id": uuid.UUID(int=7)}
    assert (
        fast.render(value) == drf.render(value) == b'{"id":"00000000-0000-0000-0000-000000000007"}'
    )


def test_a_dataclass_goes_to_drf():
    assert plain_json_bytes({"p": Point(1)}) is None


def test_line_separators_are_escaped_as_drf_does():
    value = {"text": "a\u2028b\u2029c"}
    assert fast.render(value) == drf.render(value) == b'{"text":"a\\u2028b\\u2029c"}'


def test_lone_surrogates_are_refused_as_drf_refuses_them():
    with pytest.raises(UnicodeEncodeError):
        drf.render({"text": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        fast.render({"text": "\ud800"})


def test_an_indented_rendering_is_drfs():
    value = {"a": [1, 2]}
    media = "application/json; indent=2"
    assert (
        fast.render(value, media)
        == drf.render(value, media)
        == b'{\n  "a": [\n    1,\n    2\n  ]\n}'
    )


def test_nothing_renders_as_nothing():
    assert fast.render(None) == drf.render(None) == b""


def test_it_is_the_apis_renderer():
    from rest_framework.settings import api_settings

    from billing.api import fastpath

    assert api_settings.DEFAULT_RENDERER_CLASSES == [PlainJSONRenderer]
    assert fastpath._render.__self__.__class__ is PlainJSONRenderer
