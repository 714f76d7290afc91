"""The pure pricing engine: price models, rounding, tax and proration (docs/pricing.md).

No database and no Django models: everything here is a plain function of its arguments, in
``Decimal`` only (never a float), so it can be tested exhaustively.

- ``price_spec_parse`` turns API/JSON-ish input into a validated, immutable ``PriceSpec``.
- ``total_amount`` is the exact (unrounded) price of a period's billable quantity.
- ``increment_amount`` is what real-time charging asks for one event: the difference of the
  rounded totals after and before it, so the increments of any split of a period's quantity add up
  exactly to the rounded total of the period.
- ``round_half_up``, ``round_money``, ``tax_amount`` and ``prorate`` are the money arithmetic of
  ledgers and invoices; ``describe_price`` is the sentence finance staff read.

Arithmetic runs in a local decimal context wide enough to be exact for every value the parser
accepts (below 10^18, at most 12 decimal places); ``total_amount`` traps ``Inexact`` so a result is
exact or an error, never silently rounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any

from core.errors import ValidationFailed
from core.numbers import JsonFraction, is_decimal_text
from core.text import number_text, plain, stripped

PRICE_PLACES = 12
"""Decimal places of unit prices and of ledger amounts (docs/charging.md)."""

MAX_VALUE = Decimal(10) ** 18
"""Every price, size and tier bound must be below this."""

MAX_TIERS = 100
PRORATE_PRECISION = 50

PER_UNIT = "per_unit"
PACKAGE = "package"
GRADUATED = "graduated"
VOLUME = "volume"
MODELS = (PER_UNIT, PACKAGE, GRADUATED, VOLUME)

ZERO = Decimal(0)

# Exact arithmetic: additions and multiplications of parsed values need at most ~70 digits; a
# result that would need rounding raises instead of being silently rounded.
_EXACT = Context(prec=200, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
# Rounding (quantize) needs room for the coefficient but must be allowed to round.
_ROUNDING = Context(prec=200, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])

# Proration: 50 significant digits, far below any money's minor unit.
_PRORATE = Context(
    prec=PRORATE_PRECISION, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow]
)

_MAX_NUMBER_CHARS = 64
_TIER_KEYS = frozenset({"up_to", "unit_price", "flat_fee"})


@dataclass(frozen=True)
class Tier:
    """One tier: covers cumulative quantities in ``(previous up_to, up_to]``; ``up_to`` None is
    the open-ended last tier. ``flat_fee`` is charged once when a quantity enters the tier
    (graduated) or lands in it (volume)."""

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class PriceSpec:
    """A validated price model. Build it with ``price_spec_parse``."""

    model: str
    unit_price: Decimal | None = None
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()


# ---------------------------------------------------------------------------------------------
# Parsing and validation


_FIELDS_BY_MODEL: dict[str, tuple[str, ...]] = {
    PER_UNIT: ("unit_price",),
    PACKAGE: ("package_size", "package_price"),
    GRADUATED: ("tiers",),
    VOLUME: ("tiers",),
}
_ALL_FIELDS = ("unit_price", "package_size", "package_price", "tiers")


class _Errors:
    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.by_path.setdefault(path, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_path)


def _decimal_places(value: Decimal) -> int:
    """Decimal places of the value itself (trailing zeros do not count: 1.50 has 1)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        return 0
    trailing = 0
    for digit in reversed(digits):
        if digit != 0 or trailing >= -exponent:
            break
        trailing += 1
    return max(0, -exponent - trailing)


def _parse_number(value: Any, path: str, errors: _Errors) -> Decimal | None:
    """A non-negative finite decimal below 10^18 with at most 12 places, or None (error added).

    Accepts decimal strings (``core.numbers``: ASCII digits, a sign, one ``.``), ints and
    Decimals; refuses floats (they are not exact), JSON numbers with a fraction and bools."""
    if isinstance(value, bool):
        errors.add(path, "Must be a decimal number, not a boolean.")
        return None
    if isinstance(value, float | JsonFraction):  # a JSON number with a fraction: 1.5, 1e3
        errors.add(path, "Send decimal numbers as strings or integers, not floating-point numbers.")
        return None
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if len(value) > _MAX_NUMBER_CHARS or not is_decimal_text(value):
            shown = value if len(value) <= 32 else value[:32] + "…"
            errors.add(path, f"{shown!r} is not a decimal number.")
            return None
        number = Decimal(value)
    else:
        errors.add(path, "Must be a decimal number given as a string or an integer.")
        return None
    if not number.is_finite():
        errors.add(path, "Must be a finite number (NaN and Infinity are not allowed).")
        return None
    if number.is_zero():
        return ZERO
    if number < 0:
        errors.add(path, "Must not be negative.")
        return None
    if number >= MAX_VALUE:
        errors.add(path, "Must be less than 10^18.")
        return None
    if _decimal_places(number) > PRICE_PLACES:
        errors.add(path, f"At most {PRICE_PLACES} decimal places are allowed.")
        return None
    return stripped(number)  # canonical: 0.990000000000 → 0.99, 1E+3 → 1000


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, list | tuple) and len(value) == 0)


def _parse_tiers(value: Any, errors: _Errors) -> tuple[Tier, ...]:
    if value is None:
        errors.add("tiers", "This field is required.")
        return ()
    if not isinstance(value, list | tuple):
        errors.add("tiers", "Must be a list of tiers.")
        return ()
    if not value:
        errors.add("tiers", "At least one tier is required.")
        return ()
    if len(value) > MAX_TIERS:
        errors.add("tiers", f"At most {MAX_TIERS} tiers are allowed.")
        return ()
    tiers: list[Tier] = []
    last_index = len(value) - 1
    previous: Decimal | None = ZERO  # the bound the next up_to must exceed; None = unknown
    for index, raw in enumerate(value):
        path = f"tiers[{index}]"
        if not isinstance(raw, Mapping):
            errors.add(path, "Each tier must be an object with up_to, unit_price and flat_fee.")
            previous = None
            continue
        for key in sorted(set(raw) - _TIER_KEYS, key=str):
            errors.add(f"{path}.{key}", "Unknown tier field.")
        up_to: Decimal | None = None
        if "up_to" not in raw:
            errors.add(f"{path}.up_to", "This field is required (null for the last tier).")
            previous = None
        elif raw["up_to"] is None:
            if index != last_index:
                errors.add(
                    f"{path}.up_to", "Only the last tier may have no upper bound (up_to null)."
                )
            previous = None
        else:
            up_to = _parse_number(raw["up_to"], f"{path}.up_to", errors)
            if up_to is not None:
                if index == last_index:
                    errors.add(
                        f"{path}.up_to",
                        "The last tier must have up_to null, so the tiers cover every quantity.",
                    )
                elif previous is not None and up_to <= previous:
                    if index == 0:
                        errors.add(f"{path}.up_to", "Must be greater than 0.")
                    else:
                        errors.add(
                            f"{path}.up_to",
                            "Must be greater than the previous tier's up_to "
                            f"({number_text(previous)}); up_to must strictly increase.",
                        )
            previous = up_to
        unit_price: Decimal | None = None
        if raw.get("unit_price") is None:
            errors.add(f"{path}.unit_price", "This field is required.")
        else:
            unit_price = _parse_number(raw["unit_price"], f"{path}.unit_price", errors)
        flat_fee: Decimal | None = ZERO
        if raw.get("flat_fee") is not None:
            flat_fee = _parse_number(raw["flat_fee"], f"{path}.flat_fee", errors)
        if unit_price is not None and flat_fee is not None:
            tiers.append(Tier(up_to=up_to, unit_price=unit_price, flat_fee=flat_fee))
    return tuple(tiers)


def price_spec_parse(data: Mapping[str, Any]) -> PriceSpec:
    """Validate a price model given as API/JSON-ish data and return it as a ``PriceSpec``.

    ``data`` holds ``model`` and the fields that model needs: ``unit_price`` (per_unit);
    ``package_size`` and ``package_price`` (package); ``tiers`` (graduated, volume), a list of
    ``{"up_to", "unit_price", "flat_fee"}`` with ``up_to`` strictly increasing and null exactly on
    the last tier. Numbers are strings, ints or Decimals. Fields of other models must be absent or
    null; keys that are no price-model field (``included``, ``asset``, ...) are ignored.

    Raises ``ValidationFailed`` whose ``errors`` are keyed by field path (``"tiers[1].up_to"``).
    """
    if not isinstance(data, Mapping):
        raise ValidationFailed(
            "Invalid price.", errors={"non_field_errors": ["A price must be an object."]}
        )
    errors = _Errors()
    model = data.get("model")
    if model is None:
        errors.add("model", "This field is required.")
    elif not isinstance(model, str) or model not in MODELS:
        shown = model if isinstance(model, str) and len(model) <= 32 else "this value"
        errors.add(
            "model",
            f"Unknown price model {shown!r}; expected one of {', '.join(MODELS)}.",
        )
    if errors:
        raise ValidationFailed("Invalid price.", errors=errors.by_path)
    assert isinstance(model, str)

    needed = _FIELDS_BY_MODEL[model]
    for field in _ALL_FIELDS:
        if field not in needed and not _is_empty(data.get(field)):
            errors.add(field, f"Not used by the {model} model; leave it empty.")

    values: dict[str, Any] = {}
    for field in needed:
        if field == "tiers":
            values["tiers"] = _parse_tiers(data.get("tiers"), errors)
            continue
        raw = data.get(field)
        if raw is None:
            errors.add(field, "This field is required.")
            continue
        number = _parse_number(raw, field, errors)
        if number is None:
            continue
        if field == "package_size" and number <= 0:
            errors.add(field, "Must be greater than 0.")
            continue
        values[field] = number
    if errors:
        raise ValidationFailed("Invalid price.", errors=errors.by_path)
    return PriceSpec(model=model, **values)


def price_spec_as_data(spec: PriceSpec) -> dict[str, Any]:
    """The JSON-ready form of a spec (numbers as strings), accepted back by ``price_spec_parse``."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else plain(value)

    return {
        "model": spec.model,
        "unit_price": text(spec.unit_price),
        "package_size": text(spec.package_size),
        "package_price": text(spec.package_price),
        "tiers": [
            {
                "up_to": text(tier.up_to),
                "unit_price": text(tier.unit_price),
                "flat_fee": text(tier.flat_fee),
            }
            for tier in spec.tiers
        ]
        or None,
    }


# ---------------------------------------------------------------------------------------------
# Amounts


def _check_quantity(value: Decimal, name: str) -> Decimal:
    if type(value) is Decimal and value.is_finite() and value >= 0:
        return value  # the common case, without the checks and copy below
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise ValidationFailed(
            f"Invalid {name}.", errors={name: ["Must be a finite number that is not negative."]}
        )
    return value


def required(value: Decimal | None, model: str, field: str) -> Decimal:
    """The field a price model needs (checked when parsed: a stored spec has it)."""
    if value is None:
        raise ValueError(f"a {model} price needs {field}")
    return value


def _graduated_total(tiers: tuple[Tier, ...], quantity: Decimal) -> Decimal:
    total = ZERO
    lower = ZERO
    for tier in tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        total += (upper - lower) * tier.unit_price + tier.flat_fee
        if tier.up_to is None:
            break
        lower = tier.up_to
    return total


def _volume_tier(tiers: tuple[Tier, ...], quantity: Decimal) -> Tier:
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return tier
    return tiers[-1]  # tiers always end open; kept for a hand-built spec that does not


def total_amount(spec: PriceSpec, quantity: Decimal) -> Decimal:
    """The exact, unrounded price of ``quantity`` billable units in one period.

    - per_unit: quantity * unit_price;
    - package: ceil(quantity / package_size) * package_price (a started package is whole);
    - graduated: each unit pays its tier's price (tier i covers ``(up_to[i-1], up_to[i]]`` of the
      cumulative quantity), plus each tier's flat fee once the quantity enters it;
    - volume: every unit pays the price of the tier the quantity lands in, plus its flat fee.

    A quantity of 0 costs 0 in every model.
    """
    quantity = _check_quantity(quantity, "quantity")
    with localcontext(_EXACT):
        return _total(spec, quantity)


def _total(spec: PriceSpec, quantity: Decimal) -> Decimal:
    """``total_amount`` of a checked quantity, in the exact context."""
    if quantity.is_zero():
        return ZERO
    if spec.model == PER_UNIT:
        return quantity * required(spec.unit_price, PER_UNIT, "unit_price")
    if spec.model == PACKAGE:
        size = required(spec.package_size, PACKAGE, "package_size")
        price = required(spec.package_price, PACKAGE, "package_price")
        whole, rest = divmod(quantity, size)
        packages = whole + (1 if rest else 0)
        return packages * price
    if spec.model == GRADUATED:
        return _graduated_total(spec.tiers, quantity)
    if spec.model == VOLUME:
        tier = _volume_tier(spec.tiers, quantity)
        return quantity * tier.unit_price + tier.flat_fee
    raise ValueError(f"unknown price model {spec.model!r}")


def increment_amount(
    spec: PriceSpec, *, before: Decimal, quantity: Decimal, places: int = PRICE_PLACES
) -> Decimal:
    """What to charge now for ``quantity`` more billable units when the period's cumulative
    billable quantity was ``before``: rounded total after minus rounded total before (half-up at
    ``places``), so the increments of any split add up exactly to the period's rounded total.

    Volume prices are never charged event by event (a later unit can lower an earlier one's
    price): they raise ``ValidationFailed``.
    """
    if spec.model == VOLUME:
        raise ValidationFailed(
            "Volume prices are rated periodically, not charged event by event.",
            errors={"model": ["Volume prices are rated periodically, not in real time."]},
        )
    before = _check_quantity(before, "before")
    quantity = _check_quantity(quantity, "quantity")
    with localcontext(_EXACT):
        after = before + quantity
        return round_half_up(_total(spec, after), places) - round_half_up(
            _total(spec, before), places
        )


ADDITIVE_AGGREGATIONS = ("sum", "count")
"""Meter aggregations whose period quantity is the sum of its events' quantities."""


def rated_periodically(*, aggregation: str, model: str) -> bool:
    """Whether a price is rated over the period's events (``rating_run``) rather than charged
    event by event: a volume price (a later unit can lower an earlier one's price), or a
    meter whose period quantity is not the sum of its events' (max, latest, unique_count)."""
    return aggregation not in ADDITIVE_AGGREGATIONS or model == VOLUME


def peak_amount(spec: PriceSpec, quantity: Decimal) -> Decimal:
    """The most ``total_amount`` reaches for any quantity from 0 to ``quantity``: the price
    of ``quantity`` itself, but for a volume price, which can cost more for fewer units (a
    lower tier at a higher unit price): the most each tier up to ``quantity`` costs at the
    top of what it covers. A bound of the price of a period whose quantity is at most
    ``quantity`` (a count of distinct values, a sum some of whose events were reversed)."""
    quantity = _check_quantity(quantity, "quantity")
    with localcontext(_EXACT):
        if spec.model != VOLUME or quantity.is_zero():
            return _total(spec, quantity)
        peak = ZERO
        for tier in spec.tiers:  # the tiers ``quantity`` reaches, each at its top
            top = quantity if tier.up_to is None else min(quantity, tier.up_to)
            peak = max(peak, top * tier.unit_price + tier.flat_fee)
            if tier.up_to is None or quantity <= tier.up_to:
                break
        return peak


# ---------------------------------------------------------------------------------------------
# Rounding, tax, proration


QUANTA = tuple(Decimal(1).scaleb(-places) for places in range(101))  # 1, 0.1, 0.01, …


def round_half_up(amount: Decimal, places: int) -> Decimal:
    """``amount`` rounded to ``places`` decimal places, ties away from zero (0.005 → 0.01,
    -0.005 → -0.01). The result always has exactly ``places`` places."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    if not 0 <= places <= 100:
        raise ValueError("places must be between 0 and 100")
    return amount.quantize(QUANTA[places], rounding=ROUND_HALF_UP, context=_ROUNDING)


def round_money(amount: Decimal, decimals: int) -> Decimal:
    """An invoice line rounded once, half-up, to the currency's minor unit (JPY 0, USD 2,
    KWD 3)."""
    return round_half_up(amount, decimals)


def tax_amount(subtotal: Decimal, rate_percent: Decimal, decimals: int) -> Decimal:
    """Tax on an invoice subtotal: subtotal * rate / 100, rounded half-up to the minor unit."""
    if not isinstance(rate_percent, Decimal | int) or isinstance(rate_percent, bool):
        raise TypeError("rate_percent must be a Decimal")
    with localcontext(_ROUNDING):
        exact = subtotal * Decimal(rate_percent) / 100
    return round_half_up(exact, decimals)


def _microseconds(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def prorate(
    amount: Decimal,
    *,
    covered_start: datetime,
    covered_end: datetime,
    period_start: datetime,
    period_end: datetime,
) -> Decimal:
    """``amount`` * (covered time / period time), from exact elapsed time of aware datetimes,
    to 50 significant digits (not rounded to money: invoice lines round once, at the end).

    A full period returns ``amount`` unchanged. ``[covered_start, covered_end]`` must lie inside
    ``[period_start, period_end]``, else ``ValidationFailed``.
    """
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    moments = {
        "covered_start": covered_start,
        "covered_end": covered_end,
        "period_start": period_start,
        "period_end": period_end,
    }
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime")
    problems: dict[str, list[str]] = {}
    if period_end <= period_start:
        problems["period_end"] = ["The period must end after it starts."]
    if covered_start < period_start:
        problems["covered_start"] = ["Must not be before the period starts."]
    if covered_end > period_end:
        problems["covered_end"] = ["Must not be after the period ends."]
    if covered_end < covered_start:
        problems.setdefault("covered_end", []).append("Must not be before covered_start.")
    if problems:
        raise ValidationFailed("The covered time must lie inside the period.", errors=problems)
    covered = _microseconds(covered_start, covered_end)
    period = _microseconds(period_start, period_end)
    if covered == period:
        return amount
    numerator = _ROUNDING.multiply(amount, covered)  # exact: 200 digits is far more than needed
    return _PRORATE.divide(numerator, period)
