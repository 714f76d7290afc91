"""How numbers, amounts and periods read as text (``core.text``): tables of the forms
the documents and answers show, and properties that hold for every decimal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import (
    bounds_text,
    fixed_text,
    money_text,
    number_text,
    period_text,
    plain,
    plain_decimals,
    stripped,
)

D = Decimal
amounts = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**18), max_value=10**18)
ledger_amounts = amounts.map(lambda d: d.quantize(D("1E-12")))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("100"), "100"),
        (D("1E+2"), "100"),
        (D("0.000002000000"), "0.000002"),
        (D("0E-12"), "0"),
        (D("-0"), "0"),
        (D("-0.00"), "0"),
        (D("-1.50"), "-1.5"),
        (D("10000000"), "10000000"),
        (D("123456789012345678.123456789012"), "123456789012345678.123456789012"),
    ],
)
def test_plain(value, text):
    assert plain(value) == text


@given(amounts)
def test_plain_is_exact_without_exponent_or_trailing_zeros(value):
    text = plain(value)
    assert D(text) == value
    assert "E" not in text and "e" not in text
    assert not text.startswith("-0") or ("." in text and D(text) != 0)
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")


def test_plain_decimals_keeps_the_stored_places_in_nested_values():
    assert plain_decimals({"a": [D("0E-12"), (D("1.50"), "x")], "b": 3}) == {
        "a": ["0.000000000000", ["1.50", "x"]],
        "b": 3,
    }


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (D("10.5"), 2, "10.50"),
        (D("0.000002"), 12, "0.000002000000"),
        (D("0.005"), 2, "0.01"),
        (D("-0.005"), 2, "-0.01"),
        (D("0.0049"), 2, "0.00"),
        (D("-0.0049"), 2, "0.00"),
        (D("1E+3"), 0, "1000"),
        (D("999999999999999999.999999999999"), 12, "999999999999999999.999999999999"),
    ],
)
def test_fixed_text(value, places, text):
    assert fixed_text(value, places) == text


@given(ledger_amounts)
def test_fixed_text_at_the_ledger_places_is_the_stored_value(value):
    assert D(fixed_text(value, 12)) == value
    assert len(fixed_text(value, 12).split(".")[1]) == 12


@pytest.mark.parametrize(
    ("value", "min_places", "text"),
    [
        (D("19.000000000000"), 2, "19.00"),
        (D("0.000002000000"), 2, "0.000002"),
        (D("800000.000000000000"), 0, "800,000"),
        (D("1E+6"), 0, "1,000,000"),
        (D("-1.5"), 2, "-1.50"),
        (D("0E-12"), 3, "0.000"),
        (D("-0E-12"), 2, "0.00"),
        (D("1234567.123456789012"), 2, "1,234,567.123456789012"),
        (D("49"), 0, "49"),
        (D("NaN"), 2, "NaN"),
    ],
)
def test_number_text(value, min_places, text):
    assert number_text(value, min_places) == text


def test_number_text_without_grouping_is_a_csv_cell():
    assert number_text(D("1234567.5"), 2, grouping=False) == "1234567.50"
    assert number_text(D("-0.000002000000"), 2, grouping=False) == "-0.000002"


@given(amounts, st.integers(0, 4))
def test_number_text_never_rounds(value, min_places):
    text = number_text(value, min_places)
    assert D(text.replace(",", "")) == value
    assert len(text.partition(".")[2]) >= min_places


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (D("1234.5"), 2, "1,234.50"),
        (D("1234.5"), 0, "1,235"),
        (D("0.1245"), 3, "0.125"),
        (D("-0.004"), 2, "0.00"),
        (D("-20.645"), 2, "-20.65"),
    ],
)
def test_money_text(value, decimals, text):
    assert money_text(value, decimals) == text


@given(amounts, st.sampled_from([0, 2, 3]))
def test_money_text_is_fixed_text_with_separators(value, decimals):
    assert money_text(value, decimals).replace(",", "") == fixed_text(value, decimals)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        # a half-open period shows the days it covers: January ends on the 31st
        ("2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00", "2026-01-01 – 2026-01-31"),
        ("2026-03-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00", "2026-03-01 – 2026-03-31"),
        # ending within a day: that day is covered
        ("2026-01-16T00:00:00+00:00", "2026-01-20T14:00:00+00:00", "2026-01-16 – 2026-01-20"),
        # a bound in another zone reads as its UTC date
        ("2026-01-01T01:00:00+02:00", "2026-02-01T00:00:00+00:00", "2025-12-31 – 2026-01-31"),
        ("2026-01-01T00:00:00+00:00", None, "2026-01-01"),
        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00", "2026-01-01"),
        (None, None, ""),
    ],
)
def test_period_text(start, end, text):
    assert period_text(start and at(start), end and at(end)) == text


def test_bounds_text_names_the_exclusive_end():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert bounds_text(start, datetime(2026, 2, 1, tzinfo=UTC)) == "2026-01-01 – 2026-02-01"
    assert bounds_text(datetime(2026, 1, 1), datetime(2026, 2, 1)) == "2026-01-01 – 2026-02-01"


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=400)),
)
def test_period_text_ends_on_the_day_of_the_last_covered_moment(start, length):
    start = start.replace(tzinfo=UTC)
    end = start + length
    last = (end - timedelta(microseconds=1)).date().isoformat()
    assert period_text(start, end) == f"{start.date().isoformat()} – {last}"
    assert bounds_text(start, end).endswith(end.date().isoformat())


@given(amounts)
def test_stripped_is_the_same_number(value):
    assert stripped(value) == value
    exponent = stripped(value).as_tuple().exponent
    assert isinstance(exponent, int) and exponent <= 0


@given(amounts | st.sampled_from([D("-0"), D("-0E-12"), D("0E+3"), D("1E+5")]))
def test_plain_is_the_text_of_stripped(value):
    """``plain`` writes in C what ``stripped`` computes digit by digit: the same text."""
    assert plain(value) == format(stripped(value), "f")


@given(amounts, st.integers(0, 14))
def test_fixed_text_rounds_half_up_and_writes_no_negative_zero(value, places):
    rounded = value.quantize(
        D(1).scaleb(-places), rounding=ROUND_HALF_UP, context=Context(prec=200)
    )
    expected = format(abs(rounded) if rounded.is_zero() else rounded, "f")
    assert fixed_text(value, places) == expected
