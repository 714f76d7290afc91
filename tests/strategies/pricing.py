"""Strategies for prices: exact decimals with up to 12 places, tiers, parsed price specs and
quantities that land on or beside a tier bound or a package multiple."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from plans.pricing import PRICE_PLACES, PriceSpec, price_spec_parse


@st.composite
def decimals(
    draw: st.DrawFn, *, max_digits: int, positive: bool = False, max_places: int = PRICE_PLACES
) -> Decimal:
    """A non-negative decimal below 10^max_digits with 0..max_places decimal places."""
    places = draw(st.integers(0, max_places))
    scaled = draw(st.integers(1 if positive else 0, 10 ** (max_digits + places) - 1))
    return Decimal(f"{scaled}E-{places}")


prices = decimals(max_digits=3)


def text(value: Decimal) -> str:
    """A decimal as the API takes it: plain digits, never an exponent."""
    return format(value, "f")


quantities = decimals(max_digits=7)


@st.composite
def tier_data(
    draw: st.DrawFn, *, integer: bool = False, price: st.SearchStrategy[Decimal] = prices
) -> list[dict[str, str | None]]:
    """Tiers with ascending bounds, the last unbounded; ``price``: their unit prices and
    flat fees."""
    if integer:
        bounds = draw(st.lists(st.integers(1, 300), max_size=4, unique=True))
        bounds_text = [str(b) for b in sorted(bounds)]
    else:
        bounds_dec = draw(st.lists(decimals(max_digits=7, positive=True), max_size=4, unique=True))
        bounds_text = [format(b, "f") for b in sorted(bounds_dec)]
    ups: list[str | None] = [*bounds_text, None]
    return [
        {"up_to": up_to, "unit_price": text(draw(price)), "flat_fee": text(draw(price))}
        for up_to in ups
    ]


@st.composite
def spec_data(
    draw: st.DrawFn, *, models: tuple[str, ...], price: st.SearchStrategy[Decimal] = prices
) -> dict:
    """A price model as the API takes it, in JSON-ish strings; ``price``: its money per unit
    (unit and package prices, tiers' unit prices and flat fees)."""
    model = draw(st.sampled_from(models))
    if model == "per_unit":
        return {"model": model, "unit_price": text(draw(price))}
    if model == "package":
        return {
            "model": model,
            "package_size": text(draw(decimals(max_digits=4, positive=True))),
            "package_price": text(draw(price)),
        }
    return {"model": model, "tiers": draw(tier_data(price=price))}


def specs(*, models: tuple[str, ...]) -> st.SearchStrategy[PriceSpec]:
    """A spec built through the parser from JSON-ish strings."""
    return spec_data(models=models).map(price_spec_parse)


REALTIME = ("per_unit", "package", "graduated")
ONE_PLACE = Decimal("1E-12")


@st.composite
def near_bounds(draw: st.DrawFn, spec: PriceSpec) -> Decimal:
    """A quantity, often exactly on a tier bound or a package multiple, or one place beside."""
    marks = [t.up_to for t in spec.tiers if t.up_to is not None]
    if spec.package_size is not None:
        marks.append(spec.package_size * draw(st.integers(1, 5)))
    if not marks or draw(st.booleans()):
        return draw(quantities)
    mark = draw(st.sampled_from(marks))
    return max(Decimal(0), mark + draw(st.sampled_from([-ONE_PLACE, Decimal(0), ONE_PLACE])))


@st.composite
def spec_and_quantity(draw: st.DrawFn, *, models: tuple[str, ...]) -> tuple[PriceSpec, Decimal]:
    spec = draw(specs(models=models))
    return spec, draw(near_bounds(spec))
