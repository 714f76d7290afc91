"""Property-based tests of the pricing engine against brute-force references written here
independently, in exact fractions: random tiers, prices and quantities with up to 12 decimal
places, random splits of a period's quantity into events."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from plans.pricing import (
    PRICE_PLACES,
    PRORATE_PRECISION,
    PriceSpec,
    increment_amount,
    price_spec_parse,
    prorate,
    round_half_up,
    total_amount,
)
from tests.strategies.pricing import (
    REALTIME,
    decimals,
    quantities,
    spec_and_quantity,
    specs,
    tier_data,
)

WIDE = Context(prec=200)  # exact sums in the test itself


# --- references ---------------------------------------------------------------------------------


def bounds_of(spec: PriceSpec) -> list[Fraction]:
    return [Fraction(t.up_to) for t in spec.tiers if t.up_to is not None]


def tier_index(bounds: list[Fraction], x: Fraction) -> int:
    """The tier holding position x: how many bounds lie strictly below it."""
    return sum(1 for b in bounds if b < x)


def reference_total(spec: PriceSpec, quantity: Decimal) -> Fraction:
    q = Fraction(quantity)
    if q == 0:
        return Fraction(0)
    if spec.model == "per_unit":
        return q * Fraction(spec.unit_price)
    if spec.model == "package":
        return math.ceil(q / Fraction(spec.package_size)) * Fraction(spec.package_price)
    bounds = bounds_of(spec)
    if spec.model == "volume":
        tier = spec.tiers[tier_index(bounds, q)]
        return q * Fraction(tier.unit_price) + Fraction(tier.flat_fee)
    # graduated: walk the segments between breakpoints; the tier of a segment is the tier of its
    # midpoint; a tier's flat fee counts once if any segment falls in it.
    points = sorted({Fraction(0), q, *(b for b in bounds if b < q)})
    total = Fraction(0)
    entered: set[int] = set()
    for low, high in itertools.pairwise(points):
        index = tier_index(bounds, (low + high) / 2)
        total += (high - low) * Fraction(spec.tiers[index].unit_price)
        entered.add(index)
    return total + sum(Fraction(spec.tiers[i].flat_fee) for i in entered)


def unit_by_unit_total(spec: PriceSpec, quantity: int) -> Fraction:
    """Graduated, integer bounds and quantity: price every unit on its own."""
    bounds = bounds_of(spec)
    total = Fraction(0)
    entered: set[int] = set()
    for unit in range(1, quantity + 1):
        index = tier_index(bounds, Fraction(unit))
        total += Fraction(spec.tiers[index].unit_price)
        entered.add(index)
    return total + sum(Fraction(spec.tiers[i].flat_fee) for i in entered)


def reference_round(value: Fraction, places: int) -> Fraction:
    scale = 10**places
    return Fraction(math.floor(value * scale + Fraction(1, 2)), scale)


# --- totals ------------------------------------------------------------------------------------


@given(case=spec_and_quantity(models=(*REALTIME, "volume")))
def test_total_matches_reference(case: tuple[PriceSpec, Decimal]) -> None:
    spec, quantity = case
    assert Fraction(total_amount(spec, quantity)) == reference_total(spec, quantity)


@given(data=tier_data(integer=True), quantity=st.integers(0, 400))
def test_graduated_unit_by_unit(data: list, quantity: int) -> None:
    spec = price_spec_parse({"model": "graduated", "tiers": data})
    assert Fraction(total_amount(spec, Decimal(quantity))) == unit_by_unit_total(spec, quantity)


@given(case=spec_and_quantity(models=("volume",)))
def test_volume_prices_every_unit_at_the_landing_tier(case: tuple[PriceSpec, Decimal]) -> None:
    volume, quantity = case
    total = total_amount(volume, quantity)
    if quantity == 0:
        assert total == 0
        return
    # the landing tier is the first whose up_to is null or reaches the quantity
    landing = next(t for t in volume.tiers if t.up_to is None or quantity <= t.up_to)
    assert total == WIDE.add(WIDE.multiply(quantity, landing.unit_price), landing.flat_fee)


# --- real-time increments ------------------------------------------------------------------------


@given(
    case=spec_and_quantity(models=REALTIME),
    parts=st.lists(quantities, max_size=12),
)
def test_increments_over_any_split_telescope(
    case: tuple[PriceSpec, Decimal], parts: list[Decimal]
) -> None:
    spec, start = case
    before = start
    charged = Decimal(0)
    for part in parts:
        amount = increment_amount(spec, before=before, quantity=part)
        assert amount >= 0
        assert amount.as_tuple().exponent == -PRICE_PLACES
        charged = WIDE.add(charged, amount)
        before = WIDE.add(before, part)
    end = before
    assert Fraction(charged) == reference_round(
        reference_total(spec, end), PRICE_PLACES
    ) - reference_round(reference_total(spec, start), PRICE_PLACES)
    if start == 0:
        assert charged == round_half_up(total_amount(spec, end), PRICE_PLACES)


@given(spec=specs(models=REALTIME), quantity=quantities)
def test_one_increment_from_zero_is_the_rounded_total(spec: PriceSpec, quantity: Decimal) -> None:
    assert increment_amount(spec, before=Decimal(0), quantity=quantity) == round_half_up(
        total_amount(spec, quantity), PRICE_PLACES
    )


# --- rounding ------------------------------------------------------------------------------------


@given(
    value=st.integers(0, 10**30).map(lambda i: Decimal(f"{i}E-16")),
    places=st.integers(0, 14),
)
def test_round_half_up_matches_reference(value: Decimal, places: int) -> None:
    rounded = round_half_up(value, places)
    assert Fraction(rounded) == reference_round(Fraction(value), places)
    assert rounded.as_tuple().exponent == -places


# --- proration -----------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
spans = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=400))
amounts = decimals(max_digits=9)


@given(amount=amounts, start=moments, length=spans)
def test_prorating_a_full_period_returns_the_amount(
    amount: Decimal, start: datetime, length: timedelta
) -> None:
    end = start + length
    full = prorate(amount, covered_start=start, covered_end=end, period_start=start, period_end=end)
    assert full == amount
    assert str(full) == str(amount)


MICRO = timedelta(microseconds=1)


@given(amount=amounts, start=moments, length=spans, cut=st.integers(0, 10**6))
def test_prorated_halves_sum_to_the_amount(
    amount: Decimal, start: datetime, length: timedelta, cut: int
) -> None:
    end = start + length
    middle = start + length * cut // 10**6
    period = {"period_start": start, "period_end": end}
    first = prorate(amount, covered_start=start, covered_end=middle, **period)
    second = prorate(amount, covered_start=middle, covered_end=end, **period)
    # each part is the exact fraction rounded to 50 significant digits
    for part, (a, b) in ((first, (start, middle)), (second, (middle, end))):
        exact = Fraction(amount) * Fraction((b - a) // MICRO, length // MICRO)
        if part:
            ulp = Fraction(10) ** (Decimal(part).adjusted() - PRORATE_PRECISION + 1)
            assert abs(Fraction(part) - exact) <= ulp / 2
        else:
            assert exact == 0
    # so the halves miss the amount by at most one unit in its 50th digit, and for amounts below
    # 10^9 by less than 1e-40
    drift = abs(Fraction(WIDE.add(first, second)) - Fraction(amount))
    if amount:
        assert drift <= Fraction(10) ** (amount.adjusted() - PRORATE_PRECISION + 1)
    assert drift < Fraction(1, 10**40)
