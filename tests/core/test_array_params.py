"""The cheaper parameter forms of the batch statements (``numeric_texts``, ``json_array`` with
``JSONB_ARRAY``, ``int_array``, ``text_array``) must reach PostgreSQL as exactly what
psycopg's own dumpers would send."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.db import JSONB_ARRAY, hot_cursor, int_array, json_array, numeric_texts, text_array

pytestmark = pytest.mark.django_db

decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20)
# what jsonb stores: text without NUL or lone surrogates (``event_data`` refuses the rest)
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def test_decimal_texts_keep_every_digit_and_scale():
    values = [
        Decimal("1E+3"),
        Decimal("0E-12"),
        Decimal("-0.000000000001"),
        Decimal("123456789012345678.123456789012"),
        None,
        Decimal("1.50"),
    ]
    with hot_cursor() as cursor:
        cursor.execute("SELECT %b::numeric[], %b::numeric[]", [numeric_texts(values), values])
        as_text, as_decimal = cursor.fetchone()
    assert as_text == as_decimal
    assert [str(v) if v is not None else None for v in as_text] == [
        "1000",
        "0E-12",
        "-1E-12",
        "123456789012345678.123456789012",
        None,
        "1.50",
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(decimals, max_size=20))
def test_any_decimal_arrives_equal(values):
    with hot_cursor() as cursor:
        cursor.execute("SELECT %b::numeric[] = %b::numeric[]", [numeric_texts(values), values])
        assert cursor.fetchone()[0] is True


@settings(max_examples=40, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=20))
def test_json_values_arrive_in_order(values):
    with hot_cursor() as cursor:
        cursor.execute(
            f"SELECT n, v FROM unnest(%b::int[], {JSONB_ARRAY}) AS u(n, v)",
            [list(range(len(values))), json_array(values)],
        )
        rows = cursor.fetchall()
    assert [n for n, _ in rows] == list(range(len(values)))
    assert [json.loads(v) for _, v in rows] == values  # Django's connection loads jsonb as text


finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_with_floats = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_floats | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(json_with_floats, min_size=1, max_size=10))
def test_json_array_is_the_jsonb_the_standard_library_text_makes(values):
    """orjson spells some floats differently (0.00001 against 1e-05): the same jsonb."""
    with hot_cursor() as cursor:
        cursor.execute("SELECT %b::jsonb = %b::jsonb", [json_array(values), json.dumps(values)])
        assert cursor.fetchone()[0] is True


def test_json_array_takes_integers_beyond_64_bits():
    values = [2**70, {"n": -(2**80)}]
    assert json_array(values) == json.dumps(values)


def test_array_texts_keep_nulls_quotes_backslashes_and_the_word_null():
    strings = ['a"b', "c\\d", "NULL", None, "", " x ", "{,}", "é€😀"]
    ints = [1, None, -(2**63), 2**63 - 1, 0]
    with hot_cursor() as cursor:
        cursor.execute("SELECT %b::varchar[], %b::bigint[]", [text_array(strings), int_array(ints)])
        assert cursor.fetchone() == (strings, ints)


def test_an_int_array_takes_only_integers():
    with pytest.raises(ValueError):
        int_array(["1},{2"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.none() | texts, max_size=20),
    st.lists(st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=20),
)
def test_any_strings_and_integers_arrive_equal(strings, ints):
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT %b::varchar[] IS NOT DISTINCT FROM %b::varchar[], "
            "%b::bigint[] IS NOT DISTINCT FROM %b::bigint[], %b::varchar[]",
            [text_array(strings), strings, int_array(ints), ints, text_array(strings)],
        )
        same_strings, same_ints, arrived = cursor.fetchone()
    assert same_strings is True and same_ints is True
    assert arrived == strings
