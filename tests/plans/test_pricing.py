"""The pricing engine on docs/charging.md's worked examples, hand-computed tables, validation and
descriptions. Pure functions: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.errors import ValidationFailed
from core.numbers import JsonFraction
from plans.describe import describe_price
from plans.pricing import (
    PRICE_PLACES,
    PriceSpec,
    Tier,
    increment_amount,
    price_spec_as_data,
    price_spec_parse,
    prorate,
    round_half_up,
    round_money,
    tax_amount,
    total_amount,
)

D = Decimal


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- specs of the worked examples -----------------------------------------------------------

EXAMPLE_A = price_spec_parse(
    {
        "model": "graduated",
        "tiers": [
            {"up_to": "10000000", "unit_price": "0.000002"},
            {"up_to": None, "unit_price": "0.0000015"},
        ],
    }
)
EXAMPLE_E = price_spec_parse(
    {
        "model": "volume",
        "tiers": [
            {"up_to": 10000, "unit_price": "0.01"},
            {"up_to": 100000, "unit_price": "0.008"},
            {"up_to": None, "unit_price": "0.005"},
        ],
    }
)
FEES = price_spec_parse(
    {
        "model": "graduated",
        "tiers": [
            {"up_to": "100", "unit_price": "0.10", "flat_fee": "2.00"},
            {"up_to": "1000", "unit_price": "0.05", "flat_fee": "10"},
            {"up_to": None, "unit_price": "0.01", "flat_fee": "0"},
        ],
    }
)
PACKAGE = price_spec_parse({"model": "package", "package_size": "10", "package_price": "0.50"})


def test_parse_builds_the_exact_spec() -> None:
    assert EXAMPLE_A == PriceSpec(
        model="graduated",
        tiers=(
            Tier(up_to=D("10000000"), unit_price=D("0.000002"), flat_fee=D(0)),
            Tier(up_to=None, unit_price=D("0.0000015"), flat_fee=D(0)),
        ),
    )
    assert PACKAGE == PriceSpec(model="package", package_size=D(10), package_price=D("0.5"))
    assert price_spec_parse({"model": "per_unit", "unit_price": D("0.000000075")}) == PriceSpec(
        model="per_unit", unit_price=D("0.000000075")
    )


def test_parse_accepts_database_shaped_rows_and_ignores_other_keys() -> None:
    # A Price row gives every column (null where unused) plus fields of its own.
    row = {
        "model": "per_unit",
        "unit_price": D("0.990000000000"),
        "package_size": None,
        "package_price": None,
        "tiers": None,
        "included": D("0"),
        "asset": "USD",
    }
    assert price_spec_parse(row) == PriceSpec(model="per_unit", unit_price=D("0.99"))
    assert price_spec_parse({"model": "per_unit", "unit_price": "1000", "tiers": []}) == PriceSpec(
        model="per_unit", unit_price=D(1000)
    )


def test_as_data_round_trips() -> None:
    for spec in (EXAMPLE_A, EXAMPLE_E, FEES, PACKAGE):
        assert price_spec_parse(price_spec_as_data(spec)) == spec
    assert price_spec_as_data(EXAMPLE_A) == {
        "model": "graduated",
        "unit_price": None,
        "package_size": None,
        "package_price": None,
        "tiers": [
            {"up_to": "10000000", "unit_price": "0.000002", "flat_fee": "0"},
            {"up_to": None, "unit_price": "0.0000015", "flat_fee": "0"},
        ],
    }


# --- Example A: graduated, charged in real time -----------------------------------------------


def test_example_a_graduated_increments() -> None:
    # e1 (800,000) is all included: the allowance is drawn from grants, not priced here.
    # e2: 500,000 billable → 1.00
    e2 = increment_amount(EXAMPLE_A, before=D(0), quantity=D(500_000))
    assert e2 == D("1.00")
    assert str(e2) == "1.000000000000"  # ledger amounts carry 12 places
    # e3 (declined): 9,600,000 more from 500,000 crosses 10,000,000: 19.00 + 0.15
    assert increment_amount(EXAMPLE_A, before=D(500_000), quantity=D(9_600_000)) == D("19.15")
    # e4: 9,500,000 more fills the first tier exactly → 19.00
    e4 = increment_amount(EXAMPLE_A, before=D(500_000), quantity=D(9_500_000))
    assert e4 == D("19.00")
    assert e2 + e4 == round_half_up(total_amount(EXAMPLE_A, D(10_000_000)), 12) == D(20)


def test_example_a_tier_boundaries() -> None:
    assert total_amount(EXAMPLE_A, D(0)) == 0
    assert total_amount(EXAMPLE_A, D(1)) == D("0.000002")
    assert total_amount(EXAMPLE_A, D(10_000_000)) == D("20")
    assert total_amount(EXAMPLE_A, D(10_000_001)) == D("20.0000015")
    assert total_amount(EXAMPLE_A, D(10_100_000)) == D("20.15")
    # the unit crossing the boundary is split at the boundary
    assert total_amount(EXAMPLE_A, D("10000000.5")) == D("20.00000075")


# --- graduated with flat fees: a hand-computed table ------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0"),
        ("1", "2.10"),  # enters tier 1: fee 2 + 0.10
        ("100", "12.00"),  # 100 * 0.10 + 2
        ("100.5", "22.025"),  # + 0.5 * 0.05 + fee 10 on entering tier 2
        ("1000", "67.00"),  # 12 + 900 * 0.05 + 10
        ("1001", "67.01"),  # tier 3 has no fee
        ("2000", "77.00"),
    ],
)
def test_graduated_with_flat_fees_table(quantity: str, expected: str) -> None:
    assert total_amount(FEES, D(quantity)) == D(expected)


def test_graduated_flat_fee_is_charged_by_the_increment_entering_the_tier() -> None:
    assert increment_amount(FEES, before=D(0), quantity=D(1)) == D("2.10")
    assert increment_amount(FEES, before=D(1), quantity=D(99)) == D("9.90")
    assert increment_amount(FEES, before=D(100), quantity=D("0.5")) == D("10.025")
    assert increment_amount(FEES, before=D("100.5"), quantity=D("0.5")) == D("0.025")
    assert increment_amount(FEES, before=D(0), quantity=D(0)) == 0


# --- Example E: volume, rated periodically ----------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0"),
        ("0.5", "0.005"),
        ("1", "0.01"),
        ("10000", "100.00"),
        ("10001", "80.008"),  # the whole period drops to 0.008
        ("25000", "200.00"),  # docs/charging.md example E
        ("100000", "800.000"),
        ("100001", "500.005"),
    ],
)
def test_example_e_volume_table(quantity: str, expected: str) -> None:
    assert total_amount(EXAMPLE_E, D(quantity)) == D(expected)


def test_volume_invoice_lines() -> None:
    assert round_money(total_amount(EXAMPLE_E, D(10_001)), 2) == D("80.01")
    assert round_money(total_amount(EXAMPLE_E, D(100_001)), 2) == D("500.01")


def test_volume_flat_fee_of_the_tier_landed_in() -> None:
    spec = price_spec_parse(
        {
            "model": "volume",
            "tiers": [
                {"up_to": "10", "unit_price": "1.00", "flat_fee": "5"},
                {"up_to": None, "unit_price": "0.50", "flat_fee": "20"},
            ],
        }
    )
    assert total_amount(spec, D(0)) == 0
    assert total_amount(spec, D(1)) == D(6)
    assert total_amount(spec, D(10)) == D(15)
    assert total_amount(spec, D(11)) == D("25.50")


def test_volume_is_never_charged_in_real_time() -> None:
    with pytest.raises(ValidationFailed) as caught:
        increment_amount(EXAMPLE_E, before=D(0), quantity=D(1))
    assert caught.value.code == "invalid"
    assert "rated periodically" in caught.value.detail
    assert list(caught.value.errors) == ["model"]


# --- per unit and package ----------------------------------------------------------------------


def test_per_unit_examples() -> None:
    five = price_spec_parse({"model": "per_unit", "unit_price": "5.00"})
    assert total_amount(five, D(3)) == D("15.00")  # example F: 3 active users
    outcome = price_spec_parse({"model": "per_unit", "unit_price": "0.99"})
    assert total_amount(outcome, D(129)) == D("127.71")  # example C
    tiny = price_spec_parse({"model": "per_unit", "unit_price": "0.000000075"})
    assert total_amount(tiny, D(1_000_000)) == D("0.075")  # $0.075 per million tokens
    assert increment_amount(tiny, before=D(0), quantity=D(1)) == D("0.000000075")


def test_increments_telescope_where_each_alone_rounds() -> None:
    # 0.0000004 tokens at 0.000002 cost 8e-13 each: single increments round to 1e-12 or 0, but
    # their sum is always the rounded total.
    spec = price_spec_parse({"model": "per_unit", "unit_price": "0.000002"})
    step = D("0.0000004")
    increments = [increment_amount(spec, before=step * i, quantity=step) for i in range(4)]
    assert increments == [D("1E-12"), D("1E-12"), D(0), D("1E-12")]
    assert sum(increments) == round_half_up(total_amount(spec, step * 4), 12) == D("3E-12")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("0", "0"), ("1", "0.50"), ("10", "0.50"), ("10.000000000001", "1.00"), ("25", "1.50")],
)
def test_package_started_package_is_whole(quantity: str, expected: str) -> None:
    assert total_amount(PACKAGE, D(quantity)) == D(expected)


def test_package_increments() -> None:
    assert increment_amount(PACKAGE, before=D(0), quantity=D(1)) == D("0.50")
    assert increment_amount(PACKAGE, before=D(1), quantity=D(9)) == 0
    assert increment_amount(PACKAGE, before=D(10), quantity=D(1)) == D("0.50")


def test_negative_or_non_decimal_quantities_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        total_amount(PACKAGE, D(-1))
    assert list(caught.value.errors) == ["quantity"]
    with pytest.raises(ValidationFailed) as caught:
        increment_amount(PACKAGE, before=D("NaN"), quantity=D(1))
    assert list(caught.value.errors) == ["before"]
    with pytest.raises(TypeError):
        total_amount(PACKAGE, 1.5)  # type: ignore[arg-type]


# --- rounding and tax --------------------------------------------------------------------------


def test_round_half_up() -> None:
    assert str(round_half_up(D("0.125"), 2)) == "0.13"  # banker's rounding would give 0.12
    assert str(round_half_up(D("-0.125"), 2)) == "-0.13"  # ties go away from zero
    assert str(round_half_up(D("0.0000000000005"), PRICE_PLACES)) == "1E-12"
    assert str(round_half_up(D("0.00000000000049"), PRICE_PLACES)) == "0E-12"
    assert str(round_half_up(D("999999999999999999.9999999999995"), 12)) == (
        "1000000000000000000.000000000000"
    )


@pytest.mark.parametrize(
    ("amount", "decimals", "expected"),
    [
        ("20.645161290322580645", 2, "20.65"),  # USD
        ("1234.5", 0, "1235"),  # JPY
        ("1.2345", 3, "1.235"),  # KWD
        ("0.005", 2, "0.01"),
        ("0.0049999", 2, "0.00"),
        ("140", 2, "140.00"),
    ],
)
def test_round_money(amount: str, decimals: int, expected: str) -> None:
    assert str(round_money(D(amount), decimals)) == expected


@pytest.mark.parametrize(
    ("subtotal", "rate", "decimals", "expected"),
    [
        ("127.71", "8.25", 2, "10.54"),  # 10.536075
        ("10.00", "7.5", 2, "0.75"),
        ("0.10", "5", 2, "0.01"),  # 0.005 rounds up
        ("1001", "10", 0, "100"),  # JPY: 100.1
        ("160.65", "0", 2, "0.00"),
        ("160.65", "10", 2, "16.07"),  # 16.065: half-up (docs/pricing.md, example B at 10 %)
    ],
)
def test_tax_amount(subtotal: str, rate: str, decimals: int, expected: str) -> None:
    assert str(tax_amount(D(subtotal), D(rate), decimals)) == expected


# --- Example B: seat proration -----------------------------------------------------------------

JANUARY = {"period_start": utc(2026, 1, 1), "period_end": utc(2026, 2, 1)}


def test_example_b_prorated_seats() -> None:
    two_seats = prorate(
        D("40.00"), covered_start=utc(2026, 1, 16), covered_end=utc(2026, 2, 1), **JANUARY
    )
    # 40 * 16 / 31 to 50 significant digits
    assert str(two_seats) == "20.645161290322580645161290322580645161290322580645"
    assert round_money(two_seats, 2) == D("20.65")
    one_seat = prorate(
        D("20.00"), covered_start=utc(2026, 1, 16), covered_end=utc(2026, 2, 1), **JANUARY
    )
    assert round_money(2 * one_seat, 2) == D("20.65")
    # February's 7 seats, a full period: exactly the amount
    full = prorate(
        D("140.00"),
        covered_start=utc(2026, 2, 1),
        covered_end=utc(2026, 3, 1),
        period_start=utc(2026, 2, 1),
        period_end=utc(2026, 3, 1),
    )
    assert str(full) == "140.00"
    lines = [round_money(two_seats, 2), round_money(full, 2)]
    assert sum(lines) == D("160.65")


def test_prorate_uses_exact_seconds() -> None:
    # one second and one microsecond of a day
    covered_end = utc(2026, 1, 1) + timedelta(seconds=1, microseconds=1)
    part = prorate(
        D("86400"),
        covered_start=utc(2026, 1, 1),
        covered_end=covered_end,
        period_start=utc(2026, 1, 1),
        period_end=utc(2026, 1, 2),
    )
    assert part == D("1.000001")
    nothing = prorate(D("5"), covered_start=utc(2026, 1, 9), covered_end=utc(2026, 1, 9), **JANUARY)
    assert nothing == 0


def test_prorate_refuses_time_outside_the_period() -> None:
    with pytest.raises(ValidationFailed) as caught:
        prorate(D(1), covered_start=utc(2025, 12, 31), covered_end=utc(2026, 1, 2), **JANUARY)
    assert list(caught.value.errors) == ["covered_start"]
    with pytest.raises(ValidationFailed) as caught:
        prorate(D(1), covered_start=utc(2026, 1, 2), covered_end=utc(2026, 2, 2), **JANUARY)
    assert list(caught.value.errors) == ["covered_end"]
    with pytest.raises(ValidationFailed) as caught:
        prorate(D(1), covered_start=utc(2026, 1, 5), covered_end=utc(2026, 1, 4), **JANUARY)
    assert list(caught.value.errors) == ["covered_end"]
    with pytest.raises(ValueError, match="aware"):
        prorate(
            D(1),
            covered_start=datetime(2026, 1, 5),  # naive: refused
            covered_end=utc(2026, 1, 6),
            **JANUARY,
        )


# --- describe_price ------------------------------------------------------------------------------


def test_describe_example_a() -> None:
    assert (
        describe_price(EXAMPLE_A, included=D(1_000_000), unit="tokens", asset="USD")
        == "1,000,000 tokens included, then USD 0.000002 per token up to 10,000,000, "
        "then USD 0.0000015"
    )


def test_describe_other_models() -> None:
    per_unit = price_spec_parse({"model": "per_unit", "unit_price": "0.990000000000"})
    assert (
        describe_price(per_unit, included=D(0), unit="tickets", asset="USD", decimals=2)
        == "USD 0.99 per ticket"
    )
    assert (
        describe_price(PACKAGE, included=D(0), unit="images", asset="USD", decimals=2)
        == "USD 0.50 per 10 images (a started package is charged whole)"
    )
    assert (
        describe_price(EXAMPLE_E, included=D(1000), unit="api_calls", asset="USD")
        == "1,000 api calls included, then all units at the price of the tier the period total "
        "reaches: USD 0.01 per api call up to 10,000, then USD 0.008 up to 100,000, "
        "then USD 0.005"
    )
    assert (
        describe_price(FEES, included=D(1), unit="requests", asset="EUR", decimals=2)
        == "1 request included, then EUR 0.10 per request up to 100 plus EUR 2.00 once on "
        "entering the tier, then EUR 0.05 up to 1,000 plus EUR 10.00 once on entering the "
        "tier, then EUR 0.01"
    )
    credits = price_spec_parse({"model": "per_unit", "unit_price": "4"})
    assert (
        describe_price(credits, included=D(0), unit="images", asset="credits")
        == "4 credits per image"
    )


# --- validation ----------------------------------------------------------------------------------


def tiers(*rows: tuple[Any, Any]) -> list[dict[str, Any]]:
    return [{"up_to": up_to, "unit_price": price} for up_to, price in rows]


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"model": "per_unit", "unit_price": 0.5}, "unit_price", "not floating-point"),
        ({"model": "per_unit", "unit_price": True}, "unit_price", "not a boolean"),
        ({"model": "per_unit", "unit_price": "NaN"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": "Infinity"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": D("NaN")}, "unit_price", "finite"),
        ({"model": "per_unit", "unit_price": D("-Infinity")}, "unit_price", "finite"),
        ({"model": "per_unit", "unit_price": "-0.01"}, "unit_price", "negative"),
        ({"model": "per_unit", "unit_price": -1}, "unit_price", "negative"),
        ({"model": "per_unit", "unit_price": "0.0000000000001"}, "unit_price", "12 decimal"),
        ({"model": "per_unit", "unit_price": "1e-13"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": "1e3"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": "١٠"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": "1\n"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": JsonFraction("0.5")}, "unit_price", "not floating"),
        ({"model": "per_unit", "unit_price": "1000000000000000000"}, "unit_price", "10^18"),
        ({"model": "per_unit", "unit_price": 10**18}, "unit_price", "10^18"),
        ({"model": "per_unit", "unit_price": "1e18"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": "abc"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": " 1"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": "1_000"}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": "9" * 65}, "unit_price", "not a decimal number"),
        ({"model": "per_unit", "unit_price": ["1"]}, "unit_price", "string or an integer"),
        ({"model": "per_unit"}, "unit_price", "required"),
        ({"model": "per_unit", "unit_price": None}, "unit_price", "required"),
        ({"model": "package", "package_price": "1"}, "package_size", "required"),
        ({"model": "package", "package_size": "10"}, "package_price", "required"),
        (
            {"model": "package", "package_size": "0", "package_price": "1"},
            "package_size",
            "greater than 0",
        ),
        (
            {"model": "package", "package_size": "-5", "package_price": "1"},
            "package_size",
            "negative",
        ),
        ({"model": "graduated"}, "tiers", "required"),
        ({"model": "volume", "tiers": None}, "tiers", "required"),
        ({"model": "graduated", "tiers": []}, "tiers", "At least one tier"),
        ({"model": "volume", "tiers": "[]"}, "tiers", "list of tiers"),
        (
            {"model": "graduated", "tiers": [{"up_to": None, "unit_price": "1"}] * 101},
            "tiers",
            "100",
        ),
        ({"model": "flat"}, "model", "Unknown price model"),
        ({"model": 3}, "model", "Unknown price model"),
        ({"unit_price": "1"}, "model", "required"),
        ({"model": "per_unit", "unit_price": "1", "package_size": "5"}, "package_size", "Not used"),
        (
            {"model": "per_unit", "unit_price": "1", "tiers": tiers((None, "1"))},
            "tiers",
            "Not used",
        ),
        (
            {"model": "graduated", "tiers": tiers((None, "1")), "unit_price": "1"},
            "unit_price",
            "Not used",
        ),
    ],
)
def test_rejections(data: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        price_spec_parse(data)
    assert caught.value.code == "invalid"
    assert list(caught.value.errors) == [path]
    assert len(caught.value.errors[path]) == 1
    assert message in caught.value.errors[path][0]


@pytest.mark.parametrize(
    ("rows", "path", "message"),
    [
        (((10, "1"), (5, "1"), (None, "1")), "tiers[1].up_to", "greater than the previous"),
        (((10, "1"), (10, "1"), (None, "1")), "tiers[1].up_to", "strictly increase"),
        (((0, "1"), (None, "1")), "tiers[0].up_to", "greater than 0"),
        (((None, "1"), (10, "1"), (None, "1")), "tiers[0].up_to", "Only the last tier"),
        (((10, "1"), (20, "1")), "tiers[1].up_to", "last tier must have up_to null"),
        (((10, "1"),), "tiers[0].up_to", "last tier must have up_to null"),
        (((10, "1"), (None, 0.5)), "tiers[1].unit_price", "floating-point"),
        (((10, None), (None, "1")), "tiers[0].unit_price", "required"),
        (((10.5, "1"), (None, "1")), "tiers[0].up_to", "floating-point"),
        ((("0.0000000000001", "1"), (None, "1")), "tiers[0].up_to", "12 decimal"),
        ((("-3", "1"), (None, "1")), "tiers[0].up_to", "negative"),
    ],
)
@pytest.mark.parametrize("model", ["graduated", "volume"])
def test_tier_rejections(model: str, rows: tuple, path: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        price_spec_parse({"model": model, "tiers": tiers(*rows)})
    assert list(caught.value.errors) == [path]
    assert message in caught.value.errors[path][0]


def test_tier_shape_rejections() -> None:
    with pytest.raises(ValidationFailed) as caught:
        price_spec_parse(
            {
                "model": "graduated",
                "tiers": [
                    {"unit_price": "1"},
                    "10",
                    {"up_to": "30", "unit_price": "1", "flat_fee": "-1", "price": "2"},
                    {"up_to": None, "unit_price": "1"},
                ],
            }
        )
    assert caught.value.errors == {
        "tiers[0].up_to": ["This field is required (null for the last tier)."],
        "tiers[1]": ["Each tier must be an object with up_to, unit_price and flat_fee."],
        "tiers[2].price": ["Unknown tier field."],
        "tiers[2].flat_fee": ["Must not be negative."],
    }


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        price_spec_parse(
            {
                "model": "volume",
                "unit_price": "1",
                "tiers": [
                    {"up_to": "100", "unit_price": "x"},
                    {"up_to": "50", "unit_price": "1"},
                    {"up_to": "70", "unit_price": "1"},
                ],
            }
        )
    assert set(caught.value.errors) == {
        "unit_price",
        "tiers[0].unit_price",
        "tiers[1].up_to",
        "tiers[2].up_to",
    }
    assert caught.value.errors["tiers[1].up_to"] == [
        "Must be greater than the previous tier's up_to (100); up_to must strictly increase."
    ]


def test_not_a_mapping() -> None:
    with pytest.raises(ValidationFailed) as caught:
        price_spec_parse(["per_unit"])  # type: ignore[arg-type]
    assert list(caught.value.errors) == ["non_field_errors"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.000000000001", D("0.000000000001")),
        ("1.0000000000000", D(1)),  # trailing zeros do not count as places
        ("999999999999999999.999999999999", D("999999999999999999.999999999999")),
        ("-0", D(0)),
        (0, D(0)),
        ("+7", D(7)),
        ("0.00000025", D("0.00000025")),
        (".5", D("0.5")),
        (D("0.990000000000"), D("0.99")),
    ],
)
def test_accepted_numbers(value: Any, expected: Decimal) -> None:
    spec = price_spec_parse({"model": "per_unit", "unit_price": value})
    assert spec.unit_price == expected
    assert spec.unit_price.as_tuple() == expected.as_tuple()  # canonical: no trailing zeros
    assert not spec.unit_price.is_signed()
