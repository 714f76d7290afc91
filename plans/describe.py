"""Prices in words: the sentence finance staff read in the admin and integrators in the
catalogue's ``description`` (``describe_price``)."""

from __future__ import annotations

from decimal import Decimal

from core.text import number_text
from plans.pricing import GRADUATED, PACKAGE, PER_UNIT, VOLUME, PriceSpec, required


def _singular(unit: str) -> str:
    if unit.endswith("ies") and len(unit) > 3:
        return unit[:-3] + "y"
    if unit.endswith("s") and not unit.endswith("ss"):
        return unit[:-1]
    return unit


def _plural(unit: str) -> str:
    if unit.endswith("s"):
        return unit
    if unit.endswith("y") and len(unit) > 1 and unit[-2] not in "aeiou":
        return unit[:-1] + "ies"
    return unit + "s"


def _units(quantity: Decimal, unit: str, *, min_places: int = 0) -> str:
    noun = _singular(unit) if quantity == 1 else _plural(unit)
    return f"{number_text(quantity, min_places)} {noun}"


def _is_currency_code(asset: str) -> bool:
    """ISO 4217 codes are three capital letters; custom assets (credits, ...) are not."""
    return len(asset) == 3 and asset.isalpha() and asset.isupper()


def describe_price(
    spec: PriceSpec,
    *,
    included: Decimal,
    unit: str,
    asset: str,
    decimals: int | None = None,
) -> str:
    """A sentence finance staff can read, e.g. ``"1,000,000 tokens included, then USD 0.000002
    per token up to 10,000,000, then USD 0.0000015"``.

    ``unit`` is the unit's name (``tokens``, ``api_calls``; singular or plural), ``asset`` the
    code of what is charged: a currency reads "USD 0.5", a custom asset "4 credits".
    ``decimals``, when given (the asset's minor unit, USD 2), shows
    amounts with at least that many places ("USD 0.50"); numbers otherwise lose trailing zeros.
    Tier bounds count the period's billable quantity, after the included quantity.
    """
    name = unit.replace("_", " ").strip() or "unit"
    one = _singular(name)
    places = decimals or 0

    def money(value: Decimal) -> str:
        if _is_currency_code(asset):
            return f"{asset} {number_text(value, places)}"
        return _units(value, asset.replace("_", " "), min_places=places)  # "4 credits"

    def tiers_text(fee_rule: str) -> str:
        parts = []
        for index, tier in enumerate(spec.tiers):
            text = money(tier.unit_price) + (f" per {one}" if index == 0 else "")
            if tier.up_to is not None:
                text += f" up to {number_text(tier.up_to)}"
            if tier.flat_fee:
                text += f" plus {money(tier.flat_fee)} {fee_rule}"
            parts.append(text)
        return ", then ".join(parts)

    if spec.model == PER_UNIT:
        body = f"{money(required(spec.unit_price, PER_UNIT, 'unit_price'))} per {one}"
    elif spec.model == PACKAGE:
        size = required(spec.package_size, PACKAGE, "package_size")
        price = required(spec.package_price, PACKAGE, "package_price")
        per = one if size == 1 else _units(size, name)
        body = f"{money(price)} per {per} (a started package is charged whole)"
    elif spec.model == GRADUATED:
        body = tiers_text("once on entering the tier")
    elif spec.model == VOLUME:
        body = "all units at the price of the tier the period total reaches: " + tiers_text(
            "flat when the total lands in the tier"
        )
    else:
        raise ValueError(f"unknown price model {spec.model!r}")
    if included > 0:
        return f"{_units(included, name)} included, then {body}"
    return body
