"""docs/charging.md, rounding: each line rounded once, half-up, to the currency's minor unit;
the subtotal is the sum of rounded lines; tax is on the subtotal, rounded half-up."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.django_db


def amounts(invoice) -> tuple[list[str], str, str, str]:
    lines = [str(line.amount) for line in invoice.lines.order_by("position")]
    invoice.refresh_from_db()
    return lines, str(invoice.subtotal), str(invoice.tax), str(invoice.total)


@pytest.mark.parametrize(
    ("currency", "tax_rate", "exact", "lines", "subtotal", "tax", "total"),
    [
        # example B: 2 seats × 20 × 16/31 = 20.645161… → 20.65; tax 19 % of 120.65 = 22.9235
        (
            "USD",
            "19",
            ["20.645161290323", "100", "0.005", "0.004999999999"],
            ["20.6500", "100.0000", "0.0100", "0.0000"],
            "120.6600",
            "22.9300",  # 22.9254
            "143.5900",
        ),
        # tax 19 % of 20.65 = 3.9235 → 3.92
        ("EUR", "19", ["20.645"], ["20.6500"], "20.6500", "3.9200", "24.5700"),
        # JPY has no minor unit: 20.5 → 21, 1.4999 → 1, 99.5 → 100; 8 % of 122 = 9.76 → 10
        (
            "JPY",
            "8",
            ["20.5", "1.4999", "99.5"],
            ["21.0000", "1.0000", "100.0000"],
            "122.0000",
            "10.0000",
            "132.0000",
        ),
        # KWD has three places: 1.2345 → 1.235, 0.0004 → 0, 10.0005 → 10.001; 5 % = 0.5618
        (
            "KWD",
            "5",
            ["1.2345", "0.0004", "10.0005"],
            ["1.2350", "0.0000", "10.0010"],
            "11.2360",
            "0.5620",
            "11.7980",
        ),
        # a credit line rounds away from zero too: -0.005 → -0.01
        ("USD", "0", ["10", "-0.005"], ["10.0000", "-0.0100"], "9.9900", "0.0000", "9.9900"),
    ],
)
def test_each_line_rounds_once_and_tax_is_on_the_subtotal(
    make_customer, make_draft, currency, tax_rate, exact, lines, subtotal, tax, total
):
    customer = make_customer(f"c-{currency.lower()}", currency=currency, tax_rate=tax_rate)
    invoice = make_draft(customer, exact)
    assert amounts(invoice) == (lines, subtotal, tax, total)
    assert [str(x.amount_exact.normalize()) for x in invoice.lines.order_by("position")] == [
        str(Decimal(e).normalize()) for e in exact
    ]


def test_subtotal_is_the_sum_of_rounded_lines_not_the_rounded_sum(make_customer, make_draft):
    # three lines of 0.004 round to 0.00 each: the subtotal is 0.00, not round(0.012) = 0.01
    customer = make_customer("tiny", currency="USD", tax_rate="0")
    invoice = make_draft(customer, ["0.004", "0.004", "0.004"])
    assert amounts(invoice) == (["0.0000", "0.0000", "0.0000"], "0.0000", "0.0000", "0.0000")


def test_example_c_outcome_line(make_customer, make_draft):
    # 129 × 0.99 = 127.71 (docs/charging.md example C), tax 19 % = 24.2649 → 24.26
    customer = make_customer("support", currency="USD", tax_rate="19")
    invoice = make_draft(customer, ["127.71"])
    assert amounts(invoice) == (["127.7100"], "127.7100", "24.2600", "151.9700")
